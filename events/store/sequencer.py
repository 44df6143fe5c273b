"""The sequencer: gives committed events dense global positions, without serialising writers.

Why not a plain sequence? Writers take sequence numbers in one order and commit
in another. A reader following `position > last_seen` reads 7 while the
transaction holding 6 is still open, and never looks back: event 6 is skipped
forever. (PostgreSQL documents that sequence values are handed out without
regard to commit order: https://www.postgresql.org/docs/current/functions-sequence.html)

Known fixes and why coord uses the third:

1. Serialise writers (table lock, per-append advisory lock): correct, but every
   writer in the database queues behind one lock.
2. Stamp rows with `pg_current_xact_id()` and sequence only rows below the
   snapshot's xmin: writers run free, but *any* long transaction anywhere in the
   database (a migration, a big rebuild) holds xmin back and stalls the log.
3. (coord) Writers insert their events plus one `pending` row per append in
   their own transaction, with no shared lock. One leader per database (a
   session advisory lock) repeatedly runs `coord_sequence()`: it deletes
   *committed* pending rows and writes them into `log` with dense positions
   after the current head, in one statement, then commits before the next
   batch. It can only see committed rows, so it never needs a watermark, and
   nothing outside coord can stall it. Positions become visible strictly in
   increasing order, so readers cannot skip.

Failure modes, and what happens:

* The leader's connection or process dies: PostgreSQL drops its advisory lock
  and rolls back its open batch; another process's sequencer takes the lock
  within `retry_interval` and continues from the log's head. Nothing is lost
  (pending rows stay until sequenced) and nothing is doubled (`log` has unique
  positions and unique seqs).
* No sequencer runs at all: appends commit, but their requests wait for
  positions and end in SequencingTimeout (the events are safe and are
  sequenced as soon as a sequencer runs; retries are idempotent).
* Sequencing lag: one extra short transaction after commit, a few ms; batches
  grow with load, so throughput rises with concurrency.
* Regional nodes (later): positions are per node, the `log` of each node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from events.store.leadership import lead_forever
from events.store.log_head import LogHead

log = structlog.get_logger("coord.sequencer")

Connect = Callable[[], Awaitable[asyncpg.Connection]]

# An arbitrary, fixed advisory-lock key that names "the coord sequencer".
SEQUENCER_LOCK_KEY = 0x636F6F7264_01  # "coord" 1
_SEQUENCE = "SELECT pos, seq FROM coord_sequence($1)"


class Sequencer:
    """Runs in every process; at most one of them (the lock holder) sequences at a time."""

    def __init__(
        self,
        connect: Connect,
        head: LogHead,
        *,
        batch_size: int = 2000,
        poll_interval: float = 0.05,
        retry_interval: float = 1.0,
    ) -> None:
        self._connect = connect
        self._head = head
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_interval = retry_interval
        self._wake = asyncio.Event()
        self._poking = False
        self.is_leader = False

    async def poke(self, pool: asyncpg.Pool) -> None:
        """After a commit: wake whichever process's sequencer leads.

        Locally that is an in-memory event; elsewhere a NOTIFY `coord_pending`,
        coalesced so that a burst of appends sends one notification at a time.
        """
        self._wake.set()
        if self.is_leader or self._poking:
            return
        self._poking = True
        try:
            await pool.execute("SELECT pg_notify('coord_pending', '')")
        finally:
            self._poking = False

    async def run(self) -> None:
        """Compete for leadership and sequence while leader, until cancelled."""

        async def lead(conn: asyncpg.Connection) -> None:
            # A new leader continues from the database's head: it must not be behind
            # positions this process already gave out (events/store/integrity.py).
            await self._head.verify(conn, "sequencer leadership")
            await conn.add_listener("coord_pending", self._on_pending)
            await self._lead(conn)

        await lead_forever(
            self._connect,
            SEQUENCER_LOCK_KEY,
            lead,
            name="sequencer",
            retry_interval=self._retry_interval,
            on_change=self._set_leader,
        )

    def _set_leader(self, leading: bool) -> None:
        self.is_leader = self._head.sequencing_here = leading

    def _on_pending(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._wake.set()

    async def _lead(self, conn: asyncpg.Connection) -> None:
        while True:
            rows = await conn.fetch(_SEQUENCE, self._batch_size)
            if rows:
                self._head.resolve((r["pos"], r["seq"]) for r in rows)
                if len(rows) >= self._batch_size:
                    continue
            # Nothing pending: sleep until a local append wakes us, a remote one
            # notifies `coord_pending`, or the poll interval passes.
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that races its timeout, and this task would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            self._wake.clear()
