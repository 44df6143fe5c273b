"""Group commit for appends that open new streams: many requests, one statement, one commit.

Concurrent requests that each open a new stream (expected version 0) queue here;
a flush inserts all of their events and pending rows in one statement, so they
share one round trip and one WAL flush. Batches form by themselves: while a
flush is in flight, the next requests queue behind it (at most `max_flushes` in
flight, so the pool is never emptied by appends alone). Each request stays
atomic: if the shared statement fails (a stream already exists, an event id is
taken), nothing of the batch was written, and every request of it is told to
retry alone (GoAlone) through the normal path, which reports its own conflict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from events.store.records import NewEvent

# One statement for a whole batch; data-modifying CTEs always run to completion.
_APPEND_MANY = """
WITH ins AS (
    INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata,
                        region_code)
    SELECT u.id, u.sid, u.ver, u.typ, u.sv, u.dat, u.met, u.reg
    FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::jsonb[],
                $7::jsonb[], $8::text[]) WITH ORDINALITY
         AS u(id, sid, ver, typ, sv, dat, met, reg, ord)
    ORDER BY u.ord
    RETURNING seq, stream_id, version
), grouped AS (
    SELECT stream_id, min(seq) AS first_seq, array_agg(seq ORDER BY version) AS seqs
    FROM ins GROUP BY stream_id
), queued AS (
    INSERT INTO pending (first_seq, seqs) SELECT first_seq, seqs FROM grouped
)
SELECT stream_id, seqs FROM grouped
"""


class GoAlone(Exception):
    """This request's batch was refused as a whole: append it on its own."""


@dataclass(slots=True)
class _Request:
    stream_id: str
    events: Sequence[NewEvent]
    region_code: str | None
    done: asyncio.Future[list[int]]


class GroupCommit:
    """Queue of new-stream appends, flushed in shared statements."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 256, max_flushes: int = 4) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._max_flushes = max_flushes
        self._queue: list[_Request] = []
        self._flushing = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], region_code: str | None
    ) -> list[int]:
        """Insert a new stream's events (in some shared transaction); their seqs.

        Raises GoAlone when the shared statement was refused (nothing written).
        """
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(stream_id, events, region_code, done))
        if self._flushing < self._max_flushes:
            self._flushing += 1
            # Hold a reference: the loop keeps only weak ones to running tasks.
            task = asyncio.get_running_loop().create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit(batch)
        finally:
            self._flushing -= 1

    async def _commit(self, batch: list[_Request]) -> None:
        if len(batch) == 1 or len({r.stream_id for r in batch}) < len(batch):
            self._each_alone(batch)
            return
        cols: tuple[list[object], ...] = ([], [], [], [], [], [], [], [])
        for r in batch:
            for version, e in enumerate(r.events, start=1):
                for col, value in zip(
                    cols,
                    (
                        e.id,
                        r.stream_id,
                        version,
                        e.type,
                        e.schema_version,
                        e.data,
                        e.metadata,
                        r.region_code,
                    ),
                    strict=True,
                ):
                    col.append(value)
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_APPEND_MANY, *cols)
        except asyncpg.UniqueViolationError:
            self._each_alone(batch)  # someone's conflict: let each learn its own
            return
        except BaseException as e:
            for r in batch:
                if not r.done.done():
                    r.done.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        by_stream = {row["stream_id"]: row["seqs"] for row in rows}
        for r in batch:
            r.done.set_result(by_stream[r.stream_id])

    @staticmethod
    def _each_alone(batch: list[_Request]) -> None:
        for r in batch:
            if not r.done.done():
                r.done.set_exception(GoAlone())
