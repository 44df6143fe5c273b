"""Read your writes: where each projection is, as this process knows it, and waiting on it.

A write answers with the log position it reached; a view asked for ``min_position`` waits
here until its projections have applied that far (or answers 503 after ``read_wait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg


class Positions:
    """This process's view of every projection's committed position, and waiting on it.

    Local runners report their commits directly; other processes' runners arrive by
    NOTIFY ``coord_projection``; waiters also re-read the table now and then, so a lost
    notification only costs a fraction of a second.
    """

    def __init__(self, pool: asyncpg.Pool, *, poll_interval: float = 0.2) -> None:
        self._pool = pool
        self._known: dict[str, int] = {}
        self._moved = asyncio.Event()
        self._poll_interval = poll_interval

    def get(self, name: str) -> int:
        """The last known position of ``name`` (0 if unknown)."""
        return self._known.get(name, 0)

    def report(self, name: str, position: int) -> None:
        """Record that ``name`` committed up to ``position``."""
        if position > self._known.get(name, 0):
            self._known[name] = position
            self._moved.set()

    def on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """asyncpg listener for ``coord_projection`` (payload ``name:position``)."""
        name, _, position = payload.rpartition(":")
        with contextlib.suppress(ValueError):
            self.report(name, int(position))

    async def refresh(self) -> None:
        """Re-read every position from the table (a rebuild may also move them back)."""
        rows = await self._pool.fetch("SELECT name, position FROM projections")
        for r in rows:
            self._known[r["name"]] = r["position"]
        self._moved.set()

    async def wait_for(self, names: Sequence[str], position: int, timeout: float) -> bool:
        """Wait until every projection in ``names`` has reached ``position``; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self.get(n) >= position for n in names):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self._poll_interval)):
                    await self._moved.wait()
            if not self._moved.is_set():
                await self.refresh()
