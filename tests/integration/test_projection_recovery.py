"""Projections on a real PostgreSQL: poison events and skips, transient faults, crashed rebuilds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from coord import db
from events.store.log_reader import LogReader
from events.store.store import EventStore
from projections.base import Projection
from projections.checkpoints import ensure, rebuild_key, status
from projections.issue_board import IssueBoard
from projections.positions import Positions
from projections.rebuild import rebuild
from projections.runner import Runner, RunnerSettings
from projections.skips import SkipRefused, record
from projections.verify import verify
from tests.conftest import run_coord
from tests.integration.test_projections import caught_up, connector, issue, seed

QUICK = RunnerSettings(window=100, poll_interval=0.1, lock_retry=0.1, retry_max=0.4)


@contextlib.asynccontextmanager
async def running(
    store: EventStore,
    dsn: str,
    pool: asyncpg.Pool,
    projections: list[Projection],
    settings: RunnerSettings = QUICK,
) -> AsyncIterator[Runner]:
    """A Runner over `projections` in the background, reading through a shared LogReader."""

    async def connect() -> asyncpg.Connection:
        return await db.connect(dsn)

    async with pool.acquire() as conn:
        await ensure(conn, projections)
    reader = LogReader(connect)
    runner = Runner(connect, store.head, projections, Positions(pool), settings, log_reader=reader)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await reader.close()


async def store_poison(pool: asyncpg.Pool, region: str = "35.71") -> tuple[str, str]:
    """Store an IssueRaised on `issue-urn:uuid:<uuid>` past the write path (as an old coord did).

    Returns (event id, stream id). It is sequenced with the next append.
    """
    entity = uuid.uuid4()
    event_id = uuid.uuid4()
    stream = f"issue-urn:uuid:{entity}"
    data = msgspec.json.decode(issue(region).data)
    await pool.execute(
        "SELECT * FROM coord_append($1, 0, ARRAY[$2::uuid], ARRAY['IssueRaised'], ARRAY[1], "
        "ARRAY[$3::text::jsonb], ARRAY['{}'::jsonb], $4)",
        stream,
        event_id,
        msgspec.json.encode(data).decode(),
        region,
    )
    return str(event_id), stream


async def position_of(pool: asyncpg.Pool, event_id: str) -> int:
    """The log position of a stored event."""
    position: int = await pool.fetchval(
        "SELECT l.position FROM log l JOIN events e ON e.seq = l.seq WHERE e.event_id = $1",
        uuid.UUID(event_id),
    )
    return position


async def board_state(pool: asyncpg.Pool, wanted: str, tries: int = 200) -> Any:
    """Wait until the issue board's state is `wanted`; its status row."""
    for _ in range(tries):
        (row,) = await status(pool, ["issue_board"])
        if row.state == wanted:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"issue_board never {wanted}: {row}")


async def test_poison_event_stops_the_board_until_skipped_with_the_cli(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """A stored event the board cannot apply stops it; `coord projections skip` lets it pass."""
    await seed(store, 10)
    poison_id, poison_stream = await store_poison(pool)
    after = await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
    poison = await position_of(pool, poison_id)
    async with running(store, database_url, pool, [IssueBoard()]):
        row = await board_state(pool, "failed")
        assert (row.failed_position, row.position) == (poison, poison - 1)
        assert row.last_error is not None and "UUID" in row.last_error

        env = {**os.environ, "COORD_DATABASE_URL": database_url, "COORD_LOG_LEVEL": "warning"}
        env.pop("COORD_DEMO", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coord", "check", "--json", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        report_json, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1  # findings
        report = msgspec.json.decode(report_json)
        assert [(f["position"], f["rule"]) for f in report["findings"]] == [
            (poison, "stream.not_canonical")
        ]
        assert {(s["projection"], s["stopped"]) for s in report["suggestions"]} >= {
            ("issue_board", True)
        }
        out = await run_coord(
            env, "projections", "skip", "issue_board", "--position", str(poison),
            "--reason", "stream id tidak kanonis (issue 12)",
        )  # fmt: skip
        assert f"issue_board skips position {poison}" in out and poison_stream in out
        await caught_up(pool, store, ["issue_board"])
        row = await board_state(pool, "running")
    assert row.last_error is None and row.position >= after.last_position
    (skip,) = row.skips
    assert (skip.position, skip.event_id, skip.stream_id) == (poison, poison_id, poison_stream)
    assert skip.reason == "stream id tidak kanonis (issue 12)" and skip.node_id == "local"
    assert skip.skipped_by and skip.event_type == "IssueRaised"
    # The event after the poison is on the board; the poison is not.
    ids = {str(r[0]) for r in await pool.fetch("SELECT id FROM proj_issue_board.issues")}
    assert len(ids) == 11 and poison_stream.rpartition(":")[2] not in ids

    # The skip is an event of the log, stamped like every CLI-written event.
    (logged,) = [e for e in await store.read_all(0, 1000) if e.type == "ProjectionSkipped"]
    assert logged.stream_id == "system-projections-local" and str(logged.id) == skip.skip_event_id
    meta = msgspec.json.decode(logged.metadata)
    assert meta["actor"]["token_id"] == "cli" and "coord command line" in meta["actor"]["name"]
    assert (meta["role"], meta["node_id"]) == ("admin", "local")

    # Rebuild and verify honour the skip (before it, a rebuild failed at the same event).
    position = await rebuild(connector(database_url), IssueBoard())
    assert position == await store.head_position()
    checked, diffs = await verify(connector(database_url), IssueBoard())
    assert (checked, diffs) == (position, [])
    listed = await run_coord(env, "projections", "verify", "issue_board")
    assert f"issue_board skips position {poison}" in listed and "0 differing rows" in listed


async def test_skip_refusals_write_nothing(store: EventStore, pool: asyncpg.Pool) -> None:
    """Applied, already skipped, missing and unread positions are refused with a reason."""
    await seed(store, 5)
    poison_id, _ = await store_poison(pool)
    await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
    poison = await position_of(pool, poison_id)
    head = await store.head_position()
    board = IssueBoard()

    async def skip(position: int) -> None:
        await record(
            store, board, position=position, reason="uji", skipped_by="ops", node_id="local",
            metadata=b"{}",
        )  # fmt: skip

    async with pool.acquire() as c:
        await ensure(c, [board])
    await pool.execute("UPDATE projections SET position = 2 WHERE name = 'issue_board'")
    with pytest.raises(SkipRefused, match="already applied position 2"):
        await skip(2)
    with pytest.raises(SkipRefused, match=f"no event at position {head + 5}"):
        await skip(head + 5)
    hearing = await pool.fetchval(
        "SELECT l.position FROM log l JOIN events e ON e.seq = l.seq "
        "WHERE e.type = 'HearingScheduled'"
    )
    with pytest.raises(SkipRefused, match="does not read HearingScheduled"):
        await skip(hearing)
    with pytest.raises(SkipRefused, match=r"length >= 1 at \$\.reason"):
        await record(
            store, board, position=poison, reason="", skipped_by="ops", node_id="local",
            metadata=b"{}",
        )  # fmt: skip
    assert await pool.fetchval("SELECT count(*) FROM events WHERE category = 'system'") == 0
    await skip(poison)
    with pytest.raises(SkipRefused, match=f"skips position {poison} already"):
        await skip(poison)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE category = 'system'") == 1


@contextlib.asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[None]:
    """Another session holds an ACCESS EXCLUSIVE lock on `table` until the block ends."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_lock_timeouts_are_retried_not_blamed_on_an_event(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """A lock timeout while applying is retried with backoff; the projection never fails."""
    name = await pool.fetchval("SELECT current_database()")
    # Every new session of the runner gives up waiting for a lock after 100 ms.
    await pool.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '100ms'")
    await seed(store, 5)
    async with running(store, database_url, pool, [IssueBoard()]) as runner:
        await caught_up(pool, store, ["issue_board"])
        async with table_locked(database_url, "proj_issue_board.issues"):
            last = await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
            await asyncio.sleep(1.5)  # several lock timeouts and retries
            (row,) = await status(pool, ["issue_board"])
            assert row.state == "running" and row.last_error is None
            assert row.position < last.last_position
        await caught_up(pool, store, ["issue_board"])
        assert runner.active["issue_board"]
    (row,) = await status(pool, ["issue_board"])
    assert (row.state, row.failed_position) == ("running", None)
    assert (await verify(connector(database_url), IssueBoard()))[1] == []


async def test_a_terminated_backend_is_retried_not_blamed_on_an_event(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """pg_terminate_backend of the runner's connection mid-wait: it reconnects and catches up."""
    await seed(store, 5)
    async with running(store, database_url, pool, [IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
        async with table_locked(database_url, "proj_issue_board.issues"):
            await store.append(f"issue-{uuid.uuid4()}", [issue()], 0, region_code="35.71")
            for _ in range(100):  # the runner is blocked on the lock inside its batch
                pid = await pool.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name = 'coord projection issue_board'"
                )
                if pid:
                    break
                await asyncio.sleep(0.05)
            assert pid and await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
            await asyncio.sleep(0.3)
            (row,) = await status(pool, ["issue_board"])
            assert row.state == "running"
        await caught_up(pool, store, ["issue_board"])
    (row,) = await status(pool, ["issue_board"])
    assert (row.state, row.last_error) == ("running", None)


async def test_a_rebuild_killed_mid_way_is_cleaned_up_at_start(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """kill -9 during a rebuild leaves `rebuilding` and proj_<name>_next; start-up reverts both."""
    await seed(store, 20)
    async with pool.acquire() as c:
        await ensure(c, [IssueBoard()])
    env = {**os.environ, "COORD_DATABASE_URL": database_url, "COORD_LOG_LEVEL": "warning"}
    env.pop("COORD_DEMO", None)
    holder = await asyncpg.connect(database_url)
    proc = None
    try:
        # A long reader of the live board: the rebuild replays, then waits inside its swap
        # transaction (dropping the old tables needs this lock); kill -9 it there.
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE proj_issue_board.issues IN ACCESS SHARE MODE")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coord", "projections", "rebuild", "issue_board",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(600):
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                "'proj_issue_board.issues'::regclass AND mode = 'AccessExclusiveLock'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the rebuild never reached its swap"
        proc.kill()
        await proc.wait()
        await tx.rollback()
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await holder.close()
    # PostgreSQL ends the dead process's sessions (and frees its rebuild lock) soon after.
    probe = await asyncpg.connect(database_url)
    try:
        for _ in range(200):
            if await probe.fetchval("SELECT pg_try_advisory_lock($1)", rebuild_key("issue_board")):
                await probe.execute("SELECT pg_advisory_unlock_all()")
                break
            await asyncio.sleep(0.05)
    finally:
        await probe.close()
    row = await pool.fetchrow(
        "SELECT state, rebuild_position FROM projections WHERE name = 'issue_board'"
    )
    assert row["state"] == "rebuilding"  # what a crash left behind, for ever before
    assert await pool.fetchval(
        "SELECT true FROM pg_namespace WHERE nspname = 'proj_issue_board_next'"
    )
    async with pool.acquire() as c:
        await ensure(c, [IssueBoard()])  # what every coord process runs at start
    row = await pool.fetchrow(
        "SELECT state, rebuild_position FROM projections WHERE name = 'issue_board'"
    )
    assert (row["state"], row["rebuild_position"]) == ("running", None)
    assert not await pool.fetchval(
        "SELECT true FROM pg_namespace WHERE nspname = 'proj_issue_board_next'"
    )
    assert await rebuild(connector(database_url), IssueBoard()) == await store.head_position()


async def test_start_leaves_a_running_rebuild_alone(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """While another session holds the rebuild lock, start-up does not touch its tables."""
    await seed(store, 5)
    async with pool.acquire() as c:
        await ensure(c, [IssueBoard()])
        await c.execute("CREATE SCHEMA proj_issue_board_next")
        await c.execute("UPDATE projections SET state = 'rebuilding' WHERE name = 'issue_board'")
    other = await asyncpg.connect(database_url)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", rebuild_key("issue_board"))
        async with pool.acquire() as c:
            await ensure(c, [IssueBoard()])
        assert (
            await pool.fetchval("SELECT state FROM projections WHERE name = 'issue_board'")
            == "rebuilding"
        )
    finally:
        await other.close()


async def test_the_command_line_leaves_upgrades_to_the_runners(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """`coord projections` runs no runners of its own: `list` on a database whose tables
    are of another version rebuilds nothing, and `rebuild` is not refused by an upgrade
    its own process started."""
    await seed(store, 5)
    async with running(store, database_url, pool, [IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
    # As if the tables had been made by another version of coord.
    await pool.execute("UPDATE projections SET ddl_checksum = 'older' WHERE name = 'issue_board'")
    env = {**os.environ, "COORD_DATABASE_URL": database_url, "COORD_LOG_LEVEL": "warning"}
    env.pop("COORD_DEMO", None)

    async def cli(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coord", "projections", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()
        return out.decode()

    listed = await cli("list")
    checksum = "SELECT ddl_checksum FROM projections WHERE name = 'issue_board'"
    assert await pool.fetchval(checksum) == "older"
    rebuilt = await cli("rebuild", "issue_board")
    assert "rebuilt issue_board" in rebuilt
    assert await pool.fetchval(checksum) != "older"
    # Its own process never started an upgrade (the runners' log line says so when one does).
    assert "projection.upgrading" not in listed + rebuilt
