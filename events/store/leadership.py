"""One leader per database for a background job, by a PostgreSQL session advisory lock.

The sequencer and the tree builder each must run in exactly one process at a
time, and another process must take over when that one dies. A session advisory
lock held on a dedicated connection does both: PostgreSQL releases it the moment
the connection (or process) is gone.
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
) -> None:
    """Compete for `lock_key`; while holding it run `lead(conn)`. Runs until cancelled.

    Any failure drops the connection, and the lock with it, and competes again
    after `retry_interval`; `on_change(True/False)` reports leadership.
    """
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect()
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
                await asyncio.sleep(retry_interval)
            if on_change is not None:
                on_change(True)
            log.info(f"{name}.leader")
            await lead(conn)
        except Exception as e:  # any failure: drop the connection (and lock), compete again
            log.warning(f"{name}.lost", error=str(e))
            await asyncio.sleep(retry_interval)
        finally:
            if on_change is not None:
                on_change(False)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
