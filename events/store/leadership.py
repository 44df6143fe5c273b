"""One leader per database for a background job, by a PostgreSQL session advisory lock.

The sequencer, the tree builder, the cosigner and each projection's runner must run in
exactly one process at a time, and another process must take over when that one dies. A
session advisory lock held on a dedicated connection does both: PostgreSQL releases it
the moment the connection (or process) is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger("coord.leadership")

Connect = Callable[[], Awaitable[asyncpg.Connection]]


async def lead_forever(
    connect: Connect,
    lock_key: int,
    lead: Callable[[asyncpg.Connection], Awaitable[None]],
    *,
    name: str,
    retry_interval: float,
    on_change: Callable[[bool], None] | None = None,
    on_error: Callable[[Exception, asyncpg.Connection | None], float] | None = None,
    application_name: str | None = None,
    announce: bool = True,
) -> None:
    """Compete for `lock_key`; while holding it run `lead(conn)`. Runs until cancelled.

    Any failure drops the connection, and the lock with it, and competes again
    after `retry_interval`; `on_change(True/False)` reports leadership.
    `on_error(error, conn)` (conn None if connecting failed), when given, logs a failure
    in place of `{name}.lost` and returns the seconds to wait before competing again
    (the projection runners back off with jitter). `application_name` names the
    connection's backend, so its cost shows in pg_stat_activity. `announce=False` leaves
    the `{name}.leader` line to `on_change`.
    """
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect()
            if application_name is not None:
                await conn.execute(
                    "SELECT set_config('application_name', $1, false)", application_name
                )
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
                await asyncio.sleep(retry_interval)
            if on_change is not None:
                on_change(True)
            if announce:
                log.info(f"{name}.leader")
            await lead(conn)
        except Exception as e:  # any failure: drop the connection (and lock), compete again
            task = asyncio.current_task()
            # A cancelled wait can surface as another error (Condition's "Lock is not
            # acquired"): never let it keep a cancelled leader alive.
            if task is not None and task.cancelling():
                raise
            if on_error is None:
                log.warning(f"{name}.lost", error=str(e))
                wait = retry_interval
            else:
                wait = on_error(e, conn)
            await asyncio.sleep(wait)
        finally:
            if on_change is not None:
                on_change(False)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
