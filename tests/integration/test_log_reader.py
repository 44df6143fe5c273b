"""The shared log reader against a real PostgreSQL: exact windows, one read per event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from coord import db
from events.store.log_reader import LogReader, LogReadFailed
from events.store.logged import COLUMNS
from events.store.records import NewEvent
from events.store.store import EventStore
from tests.ids import sid


def statement(n: int) -> NewEvent:
    """A StatementRecorded-shaped event (the reader does not look inside)."""
    data = {"speaker": f"Pembicara {n}", "text": "Honorarium badan ad hoc belum cair."}
    return NewEvent(id=uuid.uuid4(), type="StatementRecorded", data=msgspec.json.encode(data))


async def fill(store: EventStore, streams: int, per_stream: int) -> int:
    """Append `streams` streams of `per_stream` events; return the head position."""
    for s in range(streams):
        events = [statement(s * per_stream + i) for i in range(per_stream)]
        await store.append(sid("hearing", f"{uuid.uuid4()}"), events, 0, region_code="35.71")
    return await store.head_position()


async def direct(pool: asyncpg.Pool, after: int, up_to: int) -> list[tuple[object, ...]]:
    """The window read without the reader, as plain tuples."""
    rows = await pool.fetch(
        "SELECT l.position, e.event_id::text, e.stream_id, e.version, e.type, "
        "e.schema_version, e.data, e.metadata, e.recorded_at, e.region_code "
        "FROM log l JOIN events e ON e.seq = l.seq "
        "WHERE l.position > $1 AND l.position <= $2 ORDER BY l.position",
        after,
        up_to,
    )
    return [tuple(r) for r in rows]


def plain(rows: object) -> list[tuple[object, ...]]:
    """Rows as tuples (msgspec.Raw compares by bytes)."""
    return [tuple(r) for r in rows]  # type: ignore[attr-defined]


@pytest.fixture
async def reader(database_url: str) -> AsyncIterator[LogReader]:
    """A reader keeping at most 50 events."""

    async def connect() -> asyncpg.Connection:
        return await db.connect(database_url)

    r = LogReader(connect, keep=50)
    yield r
    await r.close()


async def test_windows_are_exact_and_read_once(
    store: EventStore, pool: asyncpg.Pool, reader: LogReader
) -> None:
    """Every window equals a direct read; what is cached is served without a query."""
    head = await fill(store, 6, 5)
    assert head == 30
    first = await reader.read(0, 10)
    assert plain(first) == await direct(pool, 0, 10)
    assert [r[0] for r in first] == list(range(1, 11))
    assert list(first[0].keys()) == list(COLUMNS)
    assert reader.reads == 10
    assert plain(await reader.read(3, 8)) == await direct(pool, 3, 8)
    assert reader.reads == 10  # from memory
    # Partly cached: only the new part is read.
    assert plain(await reader.read(5, 25)) == await direct(pool, 5, 25)
    assert reader.reads == 25
    assert await reader.read(7, 7) == []


async def test_concurrent_followers_share_one_read(
    store: EventStore, pool: asyncpg.Pool, reader: LogReader
) -> None:
    """Six followers asking for the same new window at once cause one read of it."""
    head = await fill(store, 8, 5)
    results = await asyncio.gather(*(reader.read(0, head) for _ in range(6)))
    expected = await direct(pool, 0, head)
    assert all(plain(r) == expected for r in results)
    assert reader.reads == head


async def test_memory_is_bounded_and_laggards_do_not_evict(
    store: EventStore, pool: asyncpg.Pool, reader: LogReader
) -> None:
    """At most `keep` events stay; a follower behind them reads for itself."""
    head = await fill(store, 20, 6)  # 120 events, keep is 50
    for after in range(0, head, 20):
        await reader.read(after, after + 20)
    assert reader.reads == head
    assert plain(await reader.read(head - 50, head)) == await direct(pool, head - 50, head)
    assert reader.reads == head  # the last 50 are in memory
    assert plain(await reader.read(10, 40)) == await direct(pool, 10, 40)
    assert reader.reads == head + 30  # behind the cache: read directly
    await reader.read(head - 50, head)
    assert reader.reads == head + 30  # and it evicted nothing


async def test_a_lost_connection_is_replaced(
    store: EventStore, pool: asyncpg.Pool, reader: LogReader
) -> None:
    """A read on a killed connection fails as LogReadFailed (or reconnects); then exact."""
    head = await fill(store, 4, 5)
    await reader.read(0, 5)
    pid = await reader_backend(pool)
    await pool.execute("SELECT pg_terminate_backend($1)", pid)
    try:
        rows = await reader.read(5, 10)
    except LogReadFailed as e:
        # The read met the dead connection: a ConnectionError, which runners retry.
        assert isinstance(e, ConnectionError)
    else:
        assert plain(rows) == await direct(pool, 5, 10)  # it noticed first and reconnected
    assert plain(await reader.read(5, head)) == await direct(pool, 5, head)
    assert await reader_backend(pool) != pid


async def reader_backend(pool: asyncpg.Pool) -> int:
    """The pid of the reader's backend (its query text is its own)."""
    for _ in range(100):
        pids = await pool.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'SELECT l.position, e.event_id::text AS event_id%'"
        )
        if len(pids) == 1:
            return int(pids[0][0])
        await asyncio.sleep(0.02)  # a terminated backend takes a moment to go
    raise AssertionError(f"expected one reader backend, found {pids}")
