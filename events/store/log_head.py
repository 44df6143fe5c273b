"""Follow the head of the global log: who is waiting for which positions, and who to wake.

One `LogHead` per process. It LISTENs on `coord_log` (the sequencer notifies the
new head after every batch) on a dedicated connection, and

* resolves appends waiting for their events' global positions,
* wakes subscribers and projection runners when the head moves.

If the listening connection drops, it reconnects with backoff; while it is
down, waiters fall back to polling, so nothing waits forever on a lost NOTIFY.
Each reconnect first checks that the database's head is not behind the head this
process has seen (events/store/integrity.py): a lower head means the database lost
acknowledged events, and every cache of the log is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import asyncpg
import structlog

from events.domain.errors import SequencingTimeout
from events.store.integrity import Integrity

log = structlog.get_logger("coord.log_head")

Connect = Callable[[], Awaitable[asyncpg.Connection]]
Listener = Callable[[object, int, str, str], None]

_POSITIONS_OF = "SELECT seq, position FROM log WHERE seq = ANY($1::bigint[])"
_HEAD = "SELECT coalesce(max(position), 0) FROM log"
_RECENT = 65_536


async def committed_head(conn: asyncpg.Connection) -> int:
    """The position of the last event in the log as `conn` sees it now (0 if empty)."""
    head: int = await conn.fetchval(_HEAD)
    return head


class LogHead:
    """The last known head position of the log, and the futures waiting on it."""

    def __init__(
        self,
        connect: Connect,
        *,
        poll_interval: float = 0.25,
        listeners: Mapping[str, Listener] | None = None,
        on_listen: Sequence[Callable[[], None]] = (),
        integrity: Integrity | None = None,
    ) -> None:
        self._connect = connect
        #: This process's trust in what it cached about the log (shared with its followers).
        self.integrity = integrity or Integrity()
        self.integrity.on_loss(self._forget)
        # Other channels this process wants to hear on the same connection.
        self._listeners = dict(listeners or {})
        # Called each time those listeners are (re-)established: whatever was notified
        # while no connection listened is lost, so caches fed by them start over.
        self._on_listen = tuple(on_listen)
        self._poll_interval = poll_interval
        self._waiters: dict[int, asyncio.Future[int]] = {}
        self._sharing: dict[int, int] = {}  # seq -> how many wait on its future
        self._moved = asyncio.Condition()
        self._position = 0
        self._conn: asyncpg.Connection | None = None
        self._kick = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Positions given to seqs before anyone waited for them (bounded, oldest out).
        self._recent: dict[int, int] = {}
        self._recent_order: deque[int] = deque()
        #: True while this process's own sequencer leads (set by the Sequencer).
        self.sequencing_here = False
        # One connection, used by the run loop and by NOTIFY callbacks alike.
        self._poll_lock = asyncio.Lock()

    @property
    def position(self) -> int:
        """The highest position this process knows to be in the log."""
        return self._position

    async def verify(self, conn: asyncpg.Connection, where: str) -> int:
        """The database's head; reports a loss if it is behind the head seen here."""
        head = await committed_head(conn)
        if head < self._position:
            self.integrity.report(
                "the database's log head is behind the head this process saw",
                where=where,
                cached_head=self._position,
                database_head=head,
                lost_positions=f"{head + 1}..{self._position}",
            )
        return head

    def _forget(self) -> None:
        # Positions handed out before the loss may now belong to other events.
        self._recent.clear()
        self._recent_order.clear()
        self._position = 0

    # -- waiting for one's own events --------------------------------------

    async def position_of(self, seq: int, timeout: float) -> int:
        """Wait until the event with internal number `seq` has a global position."""
        # The sequencer may have numbered this seq before its request got here.
        known = self._recent.get(seq)
        if known is not None:
            return known
        loop = asyncio.get_running_loop()
        fut = self._waiters.get(seq)
        if fut is None:
            fut = self._waiters[seq] = loop.create_future()
        # Several requests may wait for one seq (idempotent retries of one append).
        self._sharing[seq] = self._sharing.get(seq, 0) + 1
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(fut)
        except TimeoutError:
            raise SequencingTimeout(
                f"event seq {seq} was committed but not sequenced within {timeout}s"
            ) from None
        finally:
            # The last one out removes the future, and only its own: a later waiter's
            # future must stay where resolve() and the safety poll look for it.
            left = self._sharing.pop(seq) - 1
            if left:
                self._sharing[seq] = left
            elif self._waiters.get(seq) is fut:
                del self._waiters[seq]

    def resolve(self, rows: Iterable[tuple[int, int]]) -> None:
        """Record `(position, seq)` pairs the sequencer just committed, waking their waiters."""
        top = self._position
        recent, order = self._recent, self._recent_order
        for position, seq in rows:
            if position > top:
                top = position
            fut = self._waiters.pop(seq, None)
            if fut is not None and not fut.done():
                fut.set_result(position)
            # Remembered either way: the append's request may still be on its way here,
            # or a retry of it may ask again once these waiters are gone.
            recent[seq] = position
            order.append(seq)
            if len(order) > _RECENT:
                recent.pop(order.popleft(), None)
        self.advance(top)

    def advance(self, position: int) -> None:
        """Move the known head forward and wake everyone waiting for the log to grow."""
        if position > self._position:
            self._position = position
            self._kick.set()

    async def wait_beyond(self, position: int, timeout: float) -> bool:
        """Wait until the head is past `position` (or `timeout`); True if it moved."""
        if self._position > position:
            return True
        async with self._moved:
            try:
                async with asyncio.timeout(timeout):
                    await self._moved.wait_for(lambda: self._position > position)
            except TimeoutError:
                return self._position > position
        return True

    # -- the background task -----------------------------------------------

    async def run(self) -> None:
        """Listen for head moves until cancelled; reconnect on a dropped connection."""
        backoff = 0.1
        notifier = asyncio.create_task(self._notify_loop())
        try:
            while True:
                try:
                    conn = await self._connect()
                except (OSError, asyncpg.PostgresError) as e:
                    log.warning("log_head.connect_failed", error=str(e), retry_in=backoff)
                    await self._poll_once_safely()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                lost = asyncio.Event()
                try:
                    conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                    await conn.add_listener("coord_log", self._on_notify)
                    for channel, callback in self._listeners.items():
                        await conn.add_listener(channel, callback)
                    for hook in self._on_listen:
                        hook()
                    await self.verify(conn, "log head reconnect")
                    self._conn = conn
                    # Anything that happened before LISTEN took effect.
                    await self._poll(conn)
                    while not lost.is_set():
                        # Safety net for waiters whose NOTIFY was missed.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self._poll_interval):
                                await lost.wait()
                        if self._waiters and not lost.is_set():
                            await self._poll(conn)
                except Exception as e:  # any failure: reconnect; waiters poll meanwhile
                    log.warning("log_head.connection_lost", error=str(e))
                finally:
                    self._conn = None
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
        finally:
            notifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notifier

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            head = int(payload)
            if head > self._position:
                self._position = head
                self._kick.set()
                # Where the local sequencer leads, it has resolved this batch's waiters
                # itself; those left wait for a later batch, so a poll would find nothing.
                if self._waiters and not self.sequencing_here:
                    # Hold a reference: the loop keeps only weak ones to running tasks.
                    task = asyncio.get_running_loop().create_task(self._poll_safely())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _notify_loop(self) -> None:
        # Condition.notify_all needs the lock; do it from one task, coalescing kicks.
        while True:
            await self._kick.wait()
            self._kick.clear()
            async with self._moved:
                self._moved.notify_all()

    async def _poll_safely(self) -> None:
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await self._poll(conn)

    async def _poll_once_safely(self) -> None:
        if not self._waiters:
            return
        with contextlib.suppress(Exception):
            conn = await self._connect()
            try:
                await self._poll(conn)
            finally:
                await conn.close(timeout=1)

    async def _poll(self, conn: asyncpg.Connection) -> None:
        async with self._poll_lock:
            if self._waiters:
                rows = await conn.fetch(_POSITIONS_OF, list(self._waiters))
                self.resolve((r["position"], r["seq"]) for r in rows)
            self.advance(await committed_head(conn))
