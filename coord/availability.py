"""Is the database there? Errors that mean "not now" become 503, logged once per outage.

When PostgreSQL stops, hangs, runs out of disk or of connections, every request fails
the same way. Each is answered `503` with `Retry-After` (coord/middlewares.py); this
module says which errors those are, and keeps the log to one line when the database
goes away and one when it is back, instead of a traceback per request. "Back" is
decided by a probe on its own short-lived connection (a request pool that is wedged
on a frozen server does not answer it), and only once no request has failed for
`quiet` seconds, so a half-working database (disk full: reads pass, writes fail) does
not flap the state with every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from asyncpg import exceptions as pg

log = structlog.get_logger("coord.database")

# Seconds a client should wait before retrying a request refused for this reason.
RETRY_AFTER_SECONDS = 5

# Server-side errors that say "the database cannot serve now", not "your data is wrong".
_UNAVAILABLE_SQL: tuple[type[BaseException], ...] = (
    pg.PostgresConnectionError,  # class 08: connection lost, refused, cannot connect
    pg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.CannotConnectNowError,
    pg.DatabaseDroppedError,
    pg.IdleSessionTimeoutError,
    pg.PostgresSystemError,  # class 58: I/O error on the server
    pg.SerializationError,  # class 40: the next try may well pass
    pg.DeadlockDetectedError,
    pg.LockNotAvailableError,
    pg.QueryCanceledError,  # statement_timeout or an operator's cancel
)


def unavailable_reason(exc: BaseException) -> str | None:
    """A short name for why `exc` means the database is not serving now; None if it is not."""
    match exc:
        case pg.DiskFullError():
            return "disk-full"
        case pg.TooManyConnectionsError():
            return "too-many-connections"
        case pg.QueryCanceledError():
            return "slow"
        case pg.SerializationError() | pg.DeadlockDetectedError() | pg.LockNotAvailableError():
            return "contention"
        case pg.UndefinedColumnError() | pg.UndefinedTableError():
            # A read model made by an older version, being rebuilt for this one
            # (projections.runner.Runner._upgrade): its view serves again after the swap.
            return "upgrading"
        case _ if isinstance(exc, _UNAVAILABLE_SQL):
            return "unavailable"
        case asyncpg.InterfaceError() if not isinstance(exc, asyncpg.exceptions._base.DataError):
            return "connection"  # "connection is closed" and kin, on the client side
        case TimeoutError():
            return "timeout"
        case OSError():
            return "connection"  # refused, reset, unreachable: the database's socket
    return None


# Reasons that say nothing about the database being down (one slow query, two writers).
NOT_AN_OUTAGE = frozenset({"slow", "contention", "upgrading"})

Probe = Callable[[], Awaitable[None]]


class Availability:
    """The database's state as requests see it: logs each change once, probes for recovery."""

    def __init__(self, probe: Probe, *, interval: float = 1.0, quiet: float = 5.0) -> None:
        self._probe = probe
        self._interval = interval
        self._quiet = quiet
        self._down_since: float | None = None
        self._last_failure = 0.0
        self._watcher: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        """True from the first failure until the probe passes again."""
        return self._down_since is not None

    def report(self, reason: str, exc: BaseException) -> None:
        """A request failed because the database is unavailable (`reason`)."""
        now = time.monotonic()
        self._last_failure = now
        if self._down_since is not None:
            return
        self._down_since = now
        # The message only: a traceback per outage says nothing the class does not.
        log.error("database.unavailable", reason=reason, error=f"{type(exc).__name__}: {exc}")
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="database-availability")

    async def _watch(self) -> None:
        while self._down_since is not None:
            await asyncio.sleep(self._interval)
            if time.monotonic() - self._last_failure < self._quiet:
                continue
            try:
                async with asyncio.timeout(max(self._interval, 2.0)):
                    await self._probe()
            except Exception:  # still down: the first line said why
                continue
            log.warning(
                "database.available",
                after_seconds=round(time.monotonic() - self._down_since, 1),
            )
            self._down_since = None

    async def close(self) -> None:
        """Stop probing (at shutdown)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher


def probe_for(connect: Callable[[], Awaitable[asyncpg.Connection]]) -> Probe:
    """A probe that opens a fresh connection, runs `SELECT 1` and closes it."""

    async def probe() -> None:
        conn = await connect()
        try:
            await conn.fetchval("SELECT 1")
        finally:
            conn.terminate()

    return probe
