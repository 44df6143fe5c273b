"""Read the global log once per process for all of its followers.

A background process runs several followers of the log: one runner per projection and
the Merkle tree builder. Each used to read every event itself (a join of ``log`` and
``events``, the payload sent and decoded again), six reads of every event on the same
PostgreSQL. ``LogReader`` reads each window of the log once, on its own connection,
and keeps the most recent events in memory, so the projection runners near the head (all
of them, under load) share one read. The tree builder does not: it hashes only rows it
reads in the transaction that stores their leaves (events/audit/audit_log.py).

Sharing is safe because the log is immutable and dense: a position at or below a head
that a follower has seen committed never changes, whichever connection reads it. A
follower far behind (a projection catching up) reads its window directly instead of
evicting what the others are using. Memory stays bounded by ``keep`` events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from events.store import logged
from events.store.integrity import Integrity
from events.store.log_head import committed_head

Connect = Callable[[], Awaitable[asyncpg.Connection]]

_READ = logged.select(logged.columns(), "l.position > $1 AND l.position <= $2")


class LogReadFailed(ConnectionError):
    """The shared read failed (its connection is dropped); retrying reconnects."""


class LogReader:
    """Windows of the log, ``(after, up_to]``, read once and shared (see module doc)."""

    def __init__(
        self, connect: Connect, *, keep: int = 10_000, integrity: Integrity | None = None
    ) -> None:
        self._connect = connect
        # Cached rows outliving a loss of the database would be served as the log.
        self._integrity = integrity or Integrity()
        self._integrity.on_loss(self.forget)
        self._keep = keep
        self._conn: asyncpg.Connection | None = None
        # One query at a time on the connection; also makes concurrent readers of the
        # same new window wait for one fetch instead of issuing their own.
        self._lock = asyncio.Lock()
        # The cached events hold positions (_start, _start + len(_rows)], densely.
        self._start = 0
        self._rows: list[asyncpg.Record] = []
        #: Events read from PostgreSQL (the rest were served from memory).
        self.reads = 0

    @property
    def _end(self) -> int:
        return self._start + len(self._rows)

    def _cached(self, after: int, up_to: int) -> list[asyncpg.Record] | None:
        if self._start <= after and up_to <= self._end:
            return self._rows[after - self._start : up_to - self._start]
        return None

    async def read(self, after: int, up_to: int) -> Sequence[asyncpg.Record]:
        """The events at positions ``(after, up_to]``, in order.

        ``up_to`` must not exceed a head the caller has seen committed. Raises
        LogReadFailed (a ConnectionError, so transient to the runners) if the read
        fails; the next call reconnects.
        """
        if up_to <= after:
            return []
        hit = self._cached(after, up_to)
        if hit is not None:
            return hit
        async with self._lock:
            hit = self._cached(after, up_to)  # filled while this one waited
            if hit is not None:
                return hit
            if after < self._start:
                # Behind what the others use: a follower catching up reads for itself.
                return await self._fetch(after, up_to)
            if self._start <= after <= self._end and self._rows:
                known = self._rows[after - self._start :]
                base = self._end
            else:
                known, base = [], after
            fetched = await self._fetch(base, up_to)
            self._remember(base, fetched)
            return known + fetched

    def _remember(self, base: int, fetched: list[asyncpg.Record]) -> None:
        if not fetched:
            return
        if fetched[0][0] != base + 1 or fetched[-1][0] != base + len(fetched):
            self._start, self._rows = 0, []  # never expected (the log is dense): keep nothing
            return
        if base != self._end:
            self._start, self._rows = base, []
        self._rows.extend(fetched)
        if len(self._rows) > self._keep:
            drop = len(self._rows) - self._keep
            del self._rows[:drop]
            self._start += drop

    def forget(self) -> None:
        """Drop every cached event."""
        self._start, self._rows = 0, []

    async def _fetch(self, after: int, up_to: int) -> list[asyncpg.Record]:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._connect()
                # A reconnect may meet a database that lost what is cached here.
                head = await committed_head(self._conn)
                if head < self._end:
                    self._integrity.report(
                        "the database's log head is behind the events cached in memory",
                        where="log reader reconnect",
                        cached_end=self._end,
                        database_head=head,
                        lost_positions=f"{head + 1}..{self._end}",
                    )
                    # The caller may hold rows read from the cache: make it read again.
                    raise LogReadFailed("the log lost cached events; read again")
            rows: list[asyncpg.Record] = await self._conn.fetch(_READ, after, up_to)
        except BaseException as e:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.terminate()
            if isinstance(e, Exception):
                # Whatever broke (a killed backend can surface as asyncpg's
                # InternalClientError), followers see one retryable error.
                raise LogReadFailed(f"reading the log failed: {e!r}") from e
            raise
        self.reads += len(rows)
        return rows

    async def close(self) -> None:
        """Close the connection (a later read opens a new one)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close(timeout=1)
