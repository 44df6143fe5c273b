"""The event store contract, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import msgspec
import pytest

from coord import db
from events.domain.errors import DuplicateEventId, WrongExpectedVersion
from events.store.records import NewEvent
from events.store.store import EventStore, ReadFilter
from tests.conftest import running_store
from tests.ids import sid


def ev(type_: str = "Noted", **data: Any) -> NewEvent:
    """A new event with a fresh id."""
    return NewEvent(id=uuid.uuid4(), type=type_, data=msgspec.json.encode(data or {"n": 1}))


async def count_events(pool: asyncpg.Pool, stream_id: str | None = None) -> int:
    """Rows in the events table (for one stream, or all)."""
    if stream_id is None:
        return int(await pool.fetchval("SELECT count(*) FROM events"))
    return int(await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream_id))


async def test_versions_and_positions_are_dense(store: EventStore) -> None:
    """Events get versions 1..n in their stream and dense global positions in append order."""
    a = await store.append(sid("hearing", "a"), [ev(), ev(), ev()], 0)
    b = await store.append(sid("hearing", "b"), [ev()], 0)
    c = await store.append(sid("hearing", "a"), [ev()], 3)
    assert (a.first_version, a.last_version, a.first_position, a.last_position) == (1, 3, 1, 3)
    assert (b.first_version, b.first_position) == (1, 4)
    assert (c.first_version, c.first_position) == (4, 5)
    events = await store.read_stream(sid("hearing", "a"))
    assert [e.version for e in events] == [1, 2, 3, 4]
    assert [e.position for e in events] == [1, 2, 3, 5]
    assert [e.position for e in await store.read_all()] == [1, 2, 3, 4, 5]


async def test_read_stream_from_version_and_limit(store: EventStore) -> None:
    """read_stream starts at from_version and returns at most limit events."""
    await store.append(sid("issue", "x"), [ev(n=i) for i in range(5)], 0)
    page = await store.read_stream(sid("issue", "x"), from_version=2, limit=2)
    assert [e.version for e in page] == [2, 3]
    assert [msgspec.json.decode(e.data) for e in page] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    ("existing", "expected", "actual"),
    [(0, 1, 0), (2, 0, 2), (2, 1, 2), (2, 5, 2), (0, "exists", 0)],
)
async def test_wrong_expected_version_writes_nothing(
    store: EventStore, pool: asyncpg.Pool, existing: int, expected: Any, actual: int
) -> None:
    """A mismatched expected version raises with the actual version and stores nothing."""
    if existing:
        await store.append(sid("issue", "v"), [ev() for _ in range(existing)], 0)
    with pytest.raises(WrongExpectedVersion) as info:
        await store.append(sid("issue", "v"), [ev()], expected)
    assert info.value.actual == actual
    assert info.value.expected == expected
    assert await count_events(pool, sid("issue", "v")) == existing


async def test_any_and_exists(store: EventStore) -> None:
    """'any' appends to new or existing streams; 'exists' only to existing ones."""
    r1 = await store.append(sid("issue", "any"), [ev()], "any")
    r2 = await store.append(sid("issue", "any"), [ev()], "any")
    r3 = await store.append(sid("issue", "any"), [ev()], "exists")
    assert [r1.first_version, r2.first_version, r3.first_version] == [1, 2, 3]


async def test_append_is_atomic(store: EventStore, pool: asyncpg.Pool) -> None:
    """If one event of an append cannot be stored, none is (here: a repeated id in the batch)."""
    e = ev()
    with pytest.raises(DuplicateEventId):
        await store.append(sid("issue", "atomic"), [ev(), e, e], 0)
    assert await count_events(pool) == 0
    assert await store.stream_version(sid("issue", "atomic")) == 0


async def test_idempotent_retry_returns_original_result(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """Re-appending the same ids to the same stream returns the first result and writes nothing."""
    events = [ev(n=1), ev(n=2)]
    first = await store.append(sid("issue", "idem"), events, 0)
    await store.append(sid("issue", "other"), [ev()], 0)
    for expected in (0, "any"):
        again = await store.append(sid("issue", "idem"), events, expected)
        assert again.created is False
        assert (again.first_version, again.last_version) == (1, 2)
        assert (again.first_position, again.last_position) == (
            first.first_position,
            first.last_position,
        )
    assert await count_events(pool) == 3


async def test_same_id_with_other_content_or_stream_conflicts(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """An event id already stored with other data, type, or in another stream is a conflict."""
    e = ev(n=1)
    await store.append(sid("issue", "dup"), [e], 0)
    with pytest.raises(DuplicateEventId, match="other data"):
        await store.append(
            sid("issue", "dup"), [NewEvent(id=e.id, type=e.type, data=b'{"n": 2}')], 0
        )
    with pytest.raises(DuplicateEventId, match="another type"):
        await store.append(sid("issue", "dup"), [NewEvent(id=e.id, type="Other", data=e.data)], 0)
    with pytest.raises(DuplicateEventId, match="stream"):
        await store.append(sid("issue", "elsewhere"), [e], 0)
    with pytest.raises(DuplicateEventId):
        await store.append(
            sid("issue", "dup"), [e, ev()], 0
        )  # a retry that grew: not the same append
    assert await count_events(pool) == 1


async def test_racing_writers_one_wins(store: EventStore, pool: asyncpg.Pool) -> None:
    """Many writers racing on one stream with the same expected version: exactly one wins."""
    writers = 24

    async def write(i: int) -> str:
        try:
            await store.append(sid("hearing", "race"), [ev(writer=i), ev(writer=i)], 0)
            return "won"
        except WrongExpectedVersion as e:
            assert e.actual == 2
            return "conflict"

    outcomes = await asyncio.gather(*(write(i) for i in range(writers)))
    assert outcomes.count("won") == 1
    assert outcomes.count("conflict") == writers - 1
    rows = await pool.fetch("SELECT data FROM events WHERE stream_id = $1", sid("hearing", "race"))
    assert len(rows) == 2
    assert len({msgspec.json.decode(r["data"])["writer"] for r in rows}) == 1


async def test_racing_any_writers_all_land_in_order(store: EventStore) -> None:
    """Writers with 'any' on one stream all land, each at a distinct version."""
    results = await asyncio.gather(
        *(store.append(sid("hearing", "any"), [ev(i=i)], "any") for i in range(20))
    )
    assert sorted(r.first_version for r in results) == list(range(1, 21))
    events = await store.read_stream(sid("hearing", "any"))
    # Stream order and global order agree.
    assert [e.position for e in events] == sorted(e.position for e in events)


async def test_reader_never_skips_with_slow_committers(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Randomly delayed commits: a concurrent reader sees every event once, in order."""
    rng = random.Random(7)
    async with running_store(pool, database_url) as store:
        committed: list[uuid.UUID] = []
        done = asyncio.Event()

        async def writer(w: int) -> None:
            conn = await db.connect(database_url)
            try:
                for i in range(15):
                    batch = [ev(w=w, i=i) for _ in range(rng.randint(1, 3))]
                    tx = conn.transaction()
                    await tx.start()
                    got = await store.insert(conn, sid("issue", f"w{w}"), batch, -1)  # -1: "any"
                    # Hold the transaction open a random while: later sequence
                    # numbers commit first, the case a naive reader gets wrong.
                    await asyncio.sleep(rng.random() * 0.03)
                    if rng.random() < 0.1:
                        await tx.rollback()
                        continue
                    await tx.commit()
                    committed.extend(e.id for e in batch)
                    await store.positions(got)
            finally:
                await conn.close()

        seen: list[tuple[int, uuid.UUID]] = []

        async def reader() -> None:
            last = 0
            while True:
                page = await store.read_all(last, 7)
                for e in page:
                    seen.append((e.position, e.id))
                    last = e.position
                if not page:
                    if done.is_set() and last == await store.head_position():
                        return
                    await asyncio.sleep(0.001)

        reading = asyncio.create_task(reader())
        await asyncio.gather(*(writer(w) for w in range(8)))
        done.set()
        await asyncio.wait_for(reading, 30)

    positions = [p for p, _ in seen]
    assert positions == list(range(1, len(committed) + 1))  # dense, increasing, no repeats
    assert sorted(i for _, i in seen) == sorted(committed)  # every committed event, once


async def test_read_all_filters(store: EventStore) -> None:
    """read_all filters by event type, stream category and region, keeping global order."""
    await store.append(sid("hearing", "1"), [ev("HearingScheduled")], 0, region_code="35.71")
    await store.append(sid("issue", "1"), [ev("IssueRaised")], 0, region_code="35.71")
    await store.append(sid("issue", "2"), [ev("IssueRaised")], 0, region_code="11.01")
    await store.append(sid("issue", "1"), [ev("IssueWithdrawn")], 1, region_code="35.71")

    async def ids(f: ReadFilter) -> list[tuple[str, str]]:
        return [(e.stream_id, e.type) for e in await store.read_all(0, 100, f)]

    assert await ids(ReadFilter(types=["IssueRaised"])) == [
        (sid("issue", "1"), "IssueRaised"),
        (sid("issue", "2"), "IssueRaised"),
    ]
    assert await ids(ReadFilter(categories=["hearing"])) == [
        (sid("hearing", "1"), "HearingScheduled")
    ]
    assert await ids(ReadFilter(regions=["35.71"], categories=["issue"])) == [
        (sid("issue", "1"), "IssueRaised"),
        (sid("issue", "1"), "IssueWithdrawn"),
    ]
    assert [e.position for e in await store.read_all(2, 1)] == [3]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{\"n\": 2}'",
        "UPDATE log SET position = position + 10",
        "DELETE FROM events",
        "DELETE FROM log",
        "TRUNCATE events CASCADE",
        "TRUNCATE log",
    ],
)
async def test_database_refuses_changes(
    store: EventStore, pool: asyncpg.Pool, statement: str
) -> None:
    """UPDATE, DELETE and TRUNCATE on the event tables fail, even for the owner."""
    await store.append(sid("issue", "imm"), [ev()], 0)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
        await pool.execute(statement)
    assert await count_events(pool) == 1


async def test_sequencer_failover(pool: asyncpg.Pool, database_url: str) -> None:
    """When the leading sequencer dies, another process's sequencer takes over."""
    async with (
        running_store(pool, database_url) as first,
        running_store(pool, database_url) as second,
    ):
        await first.append(sid("issue", "fo"), [ev()], 0)
        leader, follower = (first, second) if first._sequencer.is_leader else (second, first)  # type: ignore[union-attr]
        assert leader._sequencer.is_leader and not follower._sequencer.is_leader  # type: ignore[union-attr]
        # Drop the leader's lock-holding connection: its advisory lock goes with it.
        await pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
        )
        result = await follower.append(sid("issue", "fo"), [ev()], 1)
        assert (result.first_version, result.first_position) == (2, 2)


async def test_concurrent_migrations_apply_once(pg_server: str) -> None:
    """Two processes migrating a fresh database at once: each migration applies exactly once."""
    name = f"coord_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        from tests.conftest import with_database

        url = with_database(pg_server, name)
        conns = [await db.connect(url) for _ in range(3)]
        try:
            applied = await asyncio.gather(*(db.migrate(c) for c in conns))
            assert sorted(len(a) for a in applied) == [0, 0, len(db.migration_files())]
            assert await db.pending_migrations(conns[0]) == []
        finally:
            for c in conns:
                await c.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_no_sequencer_times_out_then_retry_is_idempotent(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Without a sequencer an append commits but times out; a retry later gets its positions."""
    from events.domain.errors import SequencingTimeout
    from events.store.log_head import LogHead

    async def connect() -> asyncpg.Connection:
        return await db.connect(database_url)

    lonely = EventStore(pool, LogHead(connect), None, sequencing_timeout=0.2)
    events = [ev(n=1), ev(n=2)]
    with pytest.raises(SequencingTimeout):
        await lonely.append(sid("issue", "late"), events, 0)
    assert await count_events(pool, sid("issue", "late")) == 2  # stored, waiting for positions
    async with running_store(pool, database_url) as store:
        again = await store.append(sid("issue", "late"), events, 0)
    assert again.created is False
    assert (again.first_position, again.last_position) == (1, 2)


async def test_group_commit_keeps_each_append_atomic_and_its_own(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """New-stream appends share commits; collisions and retries still get their own answer."""
    taken = ev()
    await store.append(sid("issue", "taken"), [taken], 0)
    retry = [ev(), ev()]
    first = await store.append(sid("issue", "retry"), retry, 0)

    async def attempt(i: int) -> str:
        try:
            if i % 10 == 3:  # a stream that exists already
                await store.append(sid("issue", "taken"), [ev()], 0)
            elif i % 10 == 7:  # an idempotent retry of a whole append
                again = await store.append(sid("issue", "retry"), retry, 0)
                assert again.created is False and again.last_position == first.last_position
                return "retried"
            elif i % 10 == 9:  # two appends racing to open the same new stream
                await store.append(sid("issue", f"pair-{i // 20}"), [ev(), ev()], 0)
            else:
                result = await store.append(sid("issue", f"n{i}"), [ev(i=i), ev(i=i)], 0)
                assert result.last_position - result.first_position == 1
            return "ok"
        except WrongExpectedVersion:
            return "conflict"

    outcomes = await asyncio.gather(*(attempt(i) for i in range(200)))
    assert outcomes.count("retried") == 20
    assert outcomes.count("conflict") == 20 + 10  # every "taken", one of each pair
    rows = await pool.fetch("SELECT stream_id, count(*) AS n FROM events GROUP BY stream_id")
    counts = {r["stream_id"]: r["n"] for r in rows}
    assert counts[sid("issue", "taken")] == 1 and counts[sid("issue", "retry")] == 2
    assert all(counts[sid("issue", f"pair-{k}")] == 2 for k in range(10))
    assert sum(counts.values()) == 1 + 2 + 20 + 2 * 140
    positions = [e.position for e in await store.read_all(0, 10_000)]
    assert positions == list(range(1, len(positions) + 1)) and len(positions) == 303


async def test_connections_say_who_they_are_and_derived_ones_do_not_wait_for_flush(
    database_url: str,
) -> None:
    """application_name names the part of coord; only derived writers skip the WAL wait."""
    plain = await db.connect(database_url, name="coord sequencer")
    derived = await db.connect(database_url, name="coord projection search", derived=True)
    try:
        assert await plain.fetchval("SHOW application_name") == "coord sequencer"
        assert await derived.fetchval("SHOW application_name") == "coord projection search"
        assert await derived.fetchval("SHOW synchronous_commit") == "off"
        # The plain one keeps the server's setting (whatever the test server's is).
        source = "SELECT source FROM pg_settings WHERE name = 'synchronous_commit'"
        assert await plain.fetchval(source) != "client"
        assert await derived.fetchval(source) == "client"
    finally:
        await plain.close()
        await derived.close()
