"""Replaying the log into a projection's scratch tables: the engine of rebuild and verify.

Each window of the log is applied in its own transaction; with a second connection the
next window is read while this one is applied; a projection whose rows each derive from
one stream's events may replay in several lanes at once (``replay_lanes``). A rebuild or
verify holds ``rebuild_key(name)`` for its whole run (:func:`exclusive`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from events.store.leadership import Connect
from projections.base import Envelope, Projection
from projections.checkpoints import rebuild_key
from projections.skips import skips_of
from projections.window import Lane, apply_batch, load_window

Progress = Callable[[int, int], None]


async def replay(
    conn: asyncpg.Connection,
    projection: Projection,
    schema: str,
    after: int,
    until: Callable[[], Awaitable[int]],
    window: int,
    progress: Progress | None,
    *,
    track: bool,
    reader: asyncpg.Connection | None = None,
    lane: Lane | None = None,
) -> int:
    """Apply the log into ``schema`` from ``after`` until ``until()``; one commit per window.

    With a ``reader`` connection the next window is read and decoded while this one is
    applied, so a replay costs about max(read, apply) per window instead of their sum.
    With ``lane`` only that lane's streams (see ``rebuild``).
    """
    position = after
    ahead: tuple[int, asyncio.Task[list[Envelope]]] | None = None
    try:
        while True:
            target = await until()
            if position >= target:
                return position
            # Re-read each window: a skip recorded during a long replay counts from the
            # next window read on.
            skips = await skips_of(conn, projection.name)
            if ahead is not None:
                up_to, task = ahead
                ahead = None
                batch = await task
            else:
                up_to = min(target, position + window)
                batch = await load_window(reader or conn, projection, position, up_to, lane, skips)
            if reader is not None and up_to < target:
                next_to = min(target, up_to + window)
                ahead = (
                    next_to,
                    asyncio.create_task(
                        load_window(reader, projection, up_to, next_to, lane, skips)
                    ),
                )
            async with conn.transaction():
                await apply_batch(conn, projection, schema, batch, up_to)
                if track:
                    await conn.execute(
                        "UPDATE projections SET rebuild_position = $2 WHERE name = $1",
                        projection.name,
                        up_to,
                    )
            if progress is not None:
                progress(up_to, target)
            position = up_to
    finally:
        if ahead is not None:
            ahead[1].cancel()
            with contextlib.suppress(BaseException):
                await ahead[1]


@contextlib.asynccontextmanager
async def exclusive(conn: asyncpg.Connection, name: str) -> AsyncIterator[None]:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", rebuild_key(name)):
        raise RuntimeError(f"a rebuild or verify of {name!r} is already running")
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", rebuild_key(name))


async def replay_lanes(
    connect: Connect,
    projection: Projection,
    schema: str,
    target: int,
    window: int,
    lanes: int,
    progress: Progress | None,
) -> int:
    """Replay (0, target] in ``lanes`` concurrent lanes, each owning a share of the streams.

    Only for projections whose rows each derive from one stream's events (they declare
    ``replay_lanes``): the lanes then never touch the same rows, each lane keeps its
    streams in log order, and the slowest view's database work (such as computing
    tsvectors) runs on several server processes at once.
    """

    async def fixed() -> int:
        return target

    conns = [await connect() for _ in range(2 * lanes)]
    try:
        await asyncio.gather(
            *(
                replay(
                    conns[2 * i],
                    projection,
                    schema,
                    0,
                    fixed,
                    window,
                    progress if i == 0 else None,
                    track=False,
                    reader=conns[2 * i + 1],
                    lane=(i, lanes),
                )
                for i in range(lanes)
            )
        )
    finally:
        for c in conns:
            await c.close()
    return target
