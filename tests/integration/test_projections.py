"""The projection engine against a real PostgreSQL: exactly once, failures, takeover, replay."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
import msgspec
import pytest

from coord import db
from events.store.log_reader import LogReader
from events.store.records import NewEvent
from events.store.store import EventStore
from projections.base import Envelope, Projection, ddl_checksum
from projections.checkpoints import ensure, status
from projections.hearings import Hearings
from projections.issue_board import IssueBoard
from projections.positions import Positions
from projections.rebuild import rebuild
from projections.registry import all_projections
from projections.runner import Runner, RunnerSettings
from projections.verify import verify

FAST = RunnerSettings(window=100, poll_interval=0.1, lock_retry=0.1)


def issue(region: str = "35.71", **over: Any) -> NewEvent:
    """An IssueRaised event."""
    data = {
        "region_code": region,
        "raised_by": {"code": "KPU", "name": f"KPU {region}"},
        "category": "budget_honorarium",
        "title": "Honorarium KPPS minimal sesuai UMR",
        "description": "Beban kerja badan adhoc perlu diimbangi kenaikan honorarium.",
        "severity": 3,
        **over,
    }
    return NewEvent(id=uuid.uuid4(), type="IssueRaised", data=msgspec.json.encode(data))


def hearing(region: str = "35.71") -> NewEvent:
    """A HearingScheduled event."""
    data = {
        "region_code": region,
        "title": "Dengar pendapat",
        "agenda": "Persiapan pemilu 2024",
        "venue": "Ruang Joyoboyo",
        "scheduled_at": "2021-10-26T09:00:00+07:00",
        "convened_by": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
        "host_organization": {"code": "KESBANGPOL", "name": "Kesbangpol"},
    }
    return NewEvent(id=uuid.uuid4(), type="HearingScheduled", data=msgspec.json.encode(data))


def event(type_: str, **data: Any) -> NewEvent:
    """Any domain event."""
    return NewEvent(id=uuid.uuid4(), type=type_, data=msgspec.json.encode(data))


async def seed(store: EventStore, issues: int = 60) -> list[str]:
    """Issues (every 7th withdrawn, every 5th re-categorised), hearings, one recommendation."""
    ids = [str(uuid.uuid4()) for _ in range(issues)]
    for n, iid in enumerate(ids):
        region = ("35.71", "35.78", "11.71")[n % 3]
        events = [issue(region, severity=1 + n % 5, title=f"Honorarium KPPS {n % 4}")]
        if n % 5 == 0:
            events.append(event("IssueCategoryCorrected", category="personnel", reason="salah"))
        if n % 7 == 3:
            events.append(event("IssueWithdrawn", reason="selesai"))
        await store.append(f"issue-{iid}", events, 0, region_code=region)
        if n % 10 == 0:
            await store.append(f"hearing-{uuid.uuid4()}", [hearing(region)], 0, region_code=region)
    rec = uuid.uuid4()
    await store.append(
        f"recommendation-{rec}",
        [
            event("RecommendationDrafted", title="T", body="B", addressee="Presiden",
                  issue_ids=ids[:3]),
            event("IssueUncited", issue_id=ids[1]),
            event("IssuesCited", issue_ids=[ids[4]]),
        ],
        0,
    )  # fmt: skip
    return ids


@contextlib.asynccontextmanager
async def running(
    store: EventStore,
    dsn: str,
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    *,
    shared: bool = True,
) -> AsyncIterator[Runner]:
    """A Runner over `projections` in the background.

    ``shared``: the runners read through one LogReader, as in coord (keeping fewer
    events than a window, so reads from memory, fetches and direct reads of runners
    behind the others all happen); else each reads for itself.
    """

    async def connect() -> asyncpg.Connection:
        return await db.connect(dsn)

    conn = await connect()
    try:
        await ensure(conn, projections)
    finally:
        await conn.close()
    reader = LogReader(connect, keep=FAST.window * 2 // 3) if shared else None
    runner = Runner(connect, store.head, projections, Positions(pool), FAST, log_reader=reader)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if reader is not None:
            await reader.close()


async def caught_up(pool: asyncpg.Pool, store: EventStore, names: Sequence[str]) -> None:
    """Wait until every named projection is at the head of the log."""
    head = await store.head_position()
    for _ in range(300):
        rows = await status(pool, list(names))
        if all(r.position >= head for r in rows):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not caught up: {rows}")


async def rows_of(pool: asyncpg.Pool, table: str) -> list[Any]:
    """Every row of a projection table, in key order."""
    return [dict(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1")]


def connector(dsn: str) -> Callable[[], Any]:
    """A connect function for rebuild/verify."""

    async def connect() -> asyncpg.Connection:
        return await db.connect(dsn)

    return connect


async def test_views_follow_events_and_checkpoint(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """The runner applies every event once: statuses, categories and citations are exact."""
    ids = await seed(store)
    async with running(store, database_url, pool, [IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
    rows = {str(r["id"]): r for r in await pool.fetch("SELECT * FROM proj_issue_board.issues")}
    assert len(rows) == len(ids)
    assert rows[ids[0]]["status"] == "addressed" and rows[ids[0]]["category"] == "personnel"
    assert rows[ids[1]]["status"] == "open"  # cited, then uncited
    assert [str(u) for u in rows[ids[4]]["recommendation_ids"]] != []
    assert rows[ids[3]]["status"] == "withdrawn"
    assert sum(r["status"] == "withdrawn" for r in rows.values()) == len(
        [n for n in range(len(ids)) if n % 7 == 3]
    )


class Stalling(IssueBoard):
    """An issue board that stalls inside its first batch until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = asyncio.Event()
        self.go_on = asyncio.Event()
        self.pid = 0
        self.calls = 0

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        await super().apply(conn, schema, batch)
        self.calls += 1
        if self.calls == 1:
            self.pid = conn.get_server_pid()
            self.inside.set()
            await self.go_on.wait()


async def test_crash_between_batch_and_checkpoint_leaves_view_exact(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Killing the runner's connection mid-batch loses and repeats nothing."""
    await seed(store)
    stalling = Stalling()
    async with running(store, database_url, pool, [stalling]):
        await asyncio.wait_for(stalling.inside.wait(), 10)
        # The batch's rows are written but not committed, nor is the checkpoint.
        assert (
            await pool.fetchval("SELECT position FROM projections WHERE name = 'issue_board'") == 0
        )
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", stalling.pid)
        stalling.go_on.set()
        await caught_up(pool, store, ["issue_board"])
        assert stalling.calls > 1
    position, diffs = await verify(connector(database_url), IssueBoard())
    assert position == await store.head_position()
    assert diffs == []


class Failing(Hearings):
    """A projection whose handler breaks on one event id."""

    name = "hearings"

    def __init__(self, bad: str) -> None:
        self.bad = bad

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        if any(e.event_id == self.bad for e in batch):
            raise ValueError("handler bug")
        await super().apply(conn, schema, batch)


async def test_failing_handler_stops_only_its_projection(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """A handler error stops its projection at that position as failed; the others run on."""
    await seed(store, 20)
    bad = hearing("35.78")
    result = await store.append(f"hearing-{uuid.uuid4()}", [bad], 0, region_code="35.78")
    await store.append(f"hearing-{uuid.uuid4()}", [hearing()], 0, region_code="35.71")
    async with running(store, database_url, pool, [Failing(str(bad.id)), IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
        for _ in range(100):
            (row,) = await status(pool, ["hearings"])
            if row.state == "failed":
                break
            await asyncio.sleep(0.05)
        assert row.state == "failed"
        assert row.failed_position == result.last_position
        assert row.position == result.last_position - 1
        assert row.last_error is not None and "handler bug" in row.last_error
        # Everything before the culprit was committed.
        before = await pool.fetchval("SELECT count(*) FROM proj_hearings.hearings")
        assert before == 2
    # The fix is deployed: a rebuild replays everything and the projection runs again.
    head = await rebuild(connector(database_url), Hearings())
    (row,) = await status(pool, ["hearings"])
    assert (row.state, row.position, row.last_error) == ("running", head, None)
    assert await pool.fetchval("SELECT count(*) FROM proj_hearings.hearings") == 4


async def test_one_runner_per_projection_and_takeover(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Two processes: each projection has one active runner; a dead one is replaced."""
    await seed(store, 10)
    names = [p.name for p in all_projections()]
    process_a = contextlib.AsyncExitStack()
    a = await process_a.enter_async_context(running(store, database_url, pool, all_projections()))
    await caught_up(pool, store, names)
    async with running(store, database_url, pool, all_projections()) as b:
        await asyncio.sleep(0.3)
        for name in names:
            assert a.active[name] and not b.active[name]
        await process_a.aclose()  # process a dies: its connections and locks go with it
        for _ in range(100):
            if all(b.active.values()):
                break
            await asyncio.sleep(0.05)
        assert all(b.active.values())
        await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
        await caught_up(pool, store, names)


async def test_rebuild_and_verify_equal_live(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Rebuild replays into fresh tables identical to live; verify reports tampering exactly."""
    await seed(store)
    projections = all_projections()
    names = [p.name for p in projections]
    async with running(store, database_url, pool, projections):
        await caught_up(pool, store, names)
        before = await rows_of(pool, "proj_issue_board.issues")
        seen: list[tuple[int, int]] = []
        for p in projections:
            await rebuild(
                connector(database_url), p, window=50, progress=lambda a, b: seen.append((a, b))
            )
        assert seen and seen[-1][0] == seen[-1][1]
        assert await rows_of(pool, "proj_issue_board.issues") == before
        # Secondary indexes are built after the replay, but they are all there.
        index = "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname"
        for p in projections:
            schema = f"proj_{p.name}"
            defs = [r[0] for r in await pool.fetch(index, schema)]
            wanted = [d for d in p.ddl if d.lstrip().upper().startswith("CREATE INDEX")]
            assert len([d for d in defs if " UNIQUE " not in d]) == len(wanted), (p.name, defs)
        # The live runner carries on in the swapped-in tables.
        await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
        await caught_up(pool, store, names)
        assert len(await rows_of(pool, "proj_issue_board.issues")) == len(before) + 1
        for p in projections:
            _, diffs = await verify(connector(database_url), p, window=50)
            assert diffs == [], p.name
        victim = before[0]["id"]
        await pool.execute(
            "UPDATE proj_issue_board.issues SET severity = 5 - severity WHERE id = $1", victim
        )
        _, diffs = await verify(connector(database_url), IssueBoard())
    assert sorted(d.side for d in diffs) == ["live", "replayed"]
    assert {msgspec.json.decode(d.row)["id"] for d in diffs} == {str(victim)}
    schemas = await pool.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'proj_%'")
    assert sorted(r[0] for r in schemas) == sorted(f"proj_{n}" for n in names)


@pytest.mark.parametrize(("window", "shared"), [(1, True), (7, True), (1000, True), (7, False)])
async def test_batch_boundaries_do_not_matter(
    store: EventStore, pool: asyncpg.Pool, database_url: str, window: int, shared: bool
) -> None:
    """Whatever the batch size (or how the live runners read), replayed equals live."""
    await seed(store, 30)
    async with running(store, database_url, pool, all_projections(), shared=shared):
        await caught_up(pool, store, [p.name for p in all_projections()])
    for p in all_projections():
        _, diffs = await verify(connector(database_url), p, window=window)
        assert diffs == [], p.name


async def test_runners_survive_the_shared_reader_losing_its_connection(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Killing the shared reader's backend costs a reconnect, not a runner or an event."""
    await seed(store, 10)
    names = [p.name for p in all_projections()]
    async with running(store, database_url, pool, all_projections()) as runner:
        await caught_up(pool, store, names)
        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() "
            "AND query LIKE 'SELECT l.position, e.event_id::text AS event_id%'"
        )
        assert killed == 1
        await seed(store, 10)
        await caught_up(pool, store, names)
        assert all(runner.active.values())
    for p in all_projections():
        _, diffs = await verify(connector(database_url), p)
        assert diffs == [], p.name


async def test_a_new_version_of_a_projection_is_rebuilt_before_its_runner_applies(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """An upgrade whose DDL differs (here an index more) is rebuilt by the runner that leads
    it, online, before it applies a single event to the old tables; then it carries on."""
    await seed(store, issues=20)
    async with running(store, database_url, pool, [IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
    before = await rows_of(pool, "proj_issue_board.issues")

    class NextIssueBoard(IssueBoard):
        ddl = (*IssueBoard.ddl, "CREATE INDEX upgraded_idx ON {s}.issues (severity)")

    upgraded = NextIssueBoard()
    index = "SELECT true FROM pg_indexes WHERE schemaname = 'proj_issue_board' AND indexname = $1"
    assert await pool.fetchval(index, "upgraded_idx") is None
    async with running(store, database_url, pool, [upgraded]):
        for _ in range(300):
            stored = await pool.fetchval(
                "SELECT ddl_checksum FROM projections WHERE name = 'issue_board'"
            )
            if stored == ddl_checksum(upgraded):
                break
            await asyncio.sleep(0.05)
        assert stored == ddl_checksum(upgraded)
        assert await pool.fetchval(index, "upgraded_idx")
        assert await rows_of(pool, "proj_issue_board.issues") == before
        await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
        await caught_up(pool, store, ["issue_board"])
        assert len(await rows_of(pool, "proj_issue_board.issues")) == len(before) + 1
    _, diffs = await verify(connector(database_url), upgraded, window=50)
    assert diffs == []
