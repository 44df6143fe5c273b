"""Issue 13's fault suite: real faults under load, then the history checker.

Run with `make test-faults` (SHORT=1: shorter faults, for CI). One safe PostgreSQL
and one history for the whole module, so the last test verifies the audit log over
everything the faults did. Figures per fault go to COORD_FAULTS_OUT (JSON) and the
terminal; docs/reliability.md records a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import pytest

from projections.base import schema_of
from tests.api.payloads import hearing_scheduled
from tests.conftest import cli_token, run_coord
from tests.faults.checker import Row, check
from tests.faults.harness import Coord, History, Load, Op, Postgres, recovery_time

SHORT = os.environ.get("COORD_FAULTS_SHORT") == "1"
#: How long PostgreSQL stays down or frozen.
OUTAGE = 4.0 if SHORT else 10.0
WARM = 1.5 if SHORT else 3.0
AFTER = 3.0 if SHORT else 5.0
#: The server-side append deadline here (COORD_APPEND_TIMEOUT_SECONDS): a frozen database
#: answers 503 after it.
APPEND_DEADLINE = 2.0
#: /readyz's own limit (coord/http/health.py), plus scheduling slack on 2 shared cores.
READYZ_LIMIT = 2.0 + 0.75
#: The tmpfs the database's tablespace lives on.
DISK_MB = 512

RESULTS: dict[str, dict[str, Any]] = {}
ALL = History()


def pg_root() -> Path:
    """A directory for a server's data. Not under pytest's tmp_path: pytest resets its
    base to mode 0700, which locks out the server's own user when running as root."""
    return Path(tempfile.mkdtemp(prefix="coord-faults-"))


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    """A PostgreSQL with PostgreSQL's default (safe) durability settings."""
    root = pg_root()
    server = Postgres(root)
    server.start()
    # The database lives on a tmpfs of its own, which test_disk_full fills.
    if server.mount_small_disk(root / "disk", DISK_MB):
        asyncio.run(server.use_small_disk())
    yield server
    server.close()
    server.unmount()
    shutil.rmtree(root, ignore_errors=True)
    out = os.environ.get("COORD_FAULTS_OUT")
    if out:
        Path(out).write_text(json.dumps(RESULTS, indent=2) + "\n")
    for name, figures in RESULTS.items():
        print(f"\n{name}: {figures}", file=sys.stderr)


@pytest.fixture(scope="module")
def env(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every coord process here: no opt-out from safe durability."""
    home = tmp_path_factory.mktemp("home")
    env = {
        **os.environ,
        "COORD_DATABASE_URL": pg.dsn,
        "COORD_HOME": str(home),
        "COORD_LOG_LEVEL": "warning",
        "COORD_LOG_FORMAT": "json",
        "COORD_APPEND_TIMEOUT_SECONDS": str(APPEND_DEADLINE),
        # test_kill_coord_during_rebuild rebuilds every projection, twice.
        "COORD_RATE_LIMIT_EXPENSIVE_BURST": "20",
        # The load is many offices' worth through one token, and retries of indeterminate
        # appends come fast: per-token limits (tests/security) would answer 429s here.
        "COORD_RATE_LIMIT_PER_TOKEN": "0",
    }
    env.pop("COORD_DEMO", None)
    env.pop("COORD_ALLOW_UNSAFE_DURABILITY", None)
    return env


@pytest.fixture(scope="module")
async def token(env: dict[str, str]) -> str:
    """A writer for region 35.71 (the load's hearings)."""
    return await cli_token(env, "regional", "Penguji gangguan", "35.71")


@pytest.fixture(scope="module")
async def admin(env: dict[str, str]) -> str:
    """An admin (starts rebuilds)."""
    return await cli_token(env, "admin", "Pengelola gangguan")


@pytest.fixture(scope="module")
async def foreign(pg: Postgres, token: str, admin: str) -> frozenset[str]:
    """Event ids written before any load (the tokens)."""
    return frozenset(r.event_id for r in await read_log(pg.dsn))


@pytest.fixture
async def coord(env: dict[str, str]) -> AsyncIterator[Coord]:
    """A single-process coord, ready."""
    c = Coord(env)
    c.start()
    await c.wait_ready()
    yield c
    c.stop()


async def read_log(dsn: str) -> list[Row]:
    """The whole log, read back from the database."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT l.position, e.event_id::text AS id, e.stream_id, e.version "
            "FROM log l JOIN events e ON e.seq = l.seq ORDER BY l.position"
        )
    finally:
        await conn.close()
    return [Row(r["position"], r["id"], r["stream_id"], r["version"]) for r in rows]


async def under_load(
    name: str,
    url: str,
    token: str,
    pg: Postgres,
    foreign: frozenset[str],
    fault: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run the load, inject `fault` (which returns when the fault is lifted), check it all."""
    load = Load(url, token)
    load.start()
    await asyncio.sleep(WARM)
    began = time.monotonic()
    try:
        extra = await fault()
        lifted = time.monotonic()
        await asyncio.sleep(AFTER)
    finally:
        # Even when the fault itself failed: the load's writes belong to the history.
        history = await load.stop()
        ALL.ops.extend(history.ops)
    for key, value in list(extra.items()):
        if isinstance(value, asyncio.Task):
            extra[key] = await value
    rows = await read_log(pg.dsn)
    verdict = check(ALL, rows, foreign=foreign)
    mine = check(history, rows, foreign=foreign | {i for op in ALL.ops for i in op.event_ids})
    figures = {
        **{k: mine.figures()[k] for k in ("attempted", "acknowledged", "indeterminate", "refused")},
        **{k: verdict.figures()[k] for k in ("lost", "duplicated", "unexpected", "misplaced")},
        "fault_s": round(lifted - began, 2),
        "retried": sum(1 for op in history.ops if op.attempts > 1),
        "recovery_s": recovery_time(history, lifted),
        # Every answer that was not a 2xx, by status (0: no answer: reset or client timeout).
        "refusals": dict(
            sorted(
                Counter(s for op in history.ops for s in op.statuses if s not in (200, 201)).items()
            )
        ),
        **extra,
    }
    RESULTS[name] = figures
    assert verdict.clean, (figures, verdict.problems[:5])
    assert mine.acknowledged > 0, figures
    assert figures["recovery_s"] is not None, f"{name}: no append succeeded after the fault"
    # A database that cannot serve is a 503 (with Retry-After), never a 500.
    assert not [s for s in figures["refusals"] if s >= 500 and s != 503], figures
    assert all(len(op.retry_after) == op.statuses.count(503) for op in history.ops), (
        "a 503 without Retry-After"
    )
    # Every append the checker could not settle is at most the ones cut off at the end.
    return figures


async def test_kill_coord_mid_load_and_restart(
    coord: Coord, token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """kill -9 of coord: nothing acknowledged is lost; a restarted coord serves again."""

    async def fault() -> dict[str, Any]:
        coord.kill()
        coord.start()
        return {"ready_after_restart_s": round(await coord.wait_ready(), 2)}

    await under_load("kill -9 coord", coord.url, token, pg, foreign, fault)


async def _statuses_during(url: str, token: str, seconds: float) -> dict[str, list[Any]]:
    """Probe /readyz and one append while a fault lasts: (status, seconds, Retry-After)."""
    seen: dict[str, list[Any]] = {"readyz": [], "append": []}
    headers = {"Authorization": f"Bearer {token}"}
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers=headers) as http:
        while time.monotonic() < end:
            # A real append: it is part of the history like the load's.
            probe = Op(f"hearing-{uuid.uuid4()}", 0, [str(uuid.uuid4())])
            ALL.ops.append(probe)
            append = {
                "expected_version": 0,
                "events": [
                    {
                        "type": "HearingScheduled",
                        "data": hearing_scheduled(),
                        "id": probe.event_ids[0],
                    }
                ],
            }
            for what, method, path, body in (
                ("readyz", "GET", "/readyz", None),
                ("append", "POST", f"/v1/streams/{probe.stream}/events", append),
            ):
                start = time.monotonic()
                try:
                    async with http.request(
                        method, url + path, json=body, timeout=aiohttp.ClientTimeout(total=6)
                    ) as r:
                        took = round(time.monotonic() - start, 2)
                        seen[what].append((r.status, took, r.headers.get("Retry-After")))
                        if what == "append":
                            probe.statuses.append(r.status)
                            probe.outcome = _outcome(r.status)
                            if r.status in (200, 201):
                                got = await r.json()
                                probe.first_position = got["first_position"]
                                probe.first_version = got["first_version"]
                except (aiohttp.ClientError, TimeoutError):
                    seen[what].append(("timeout", round(time.monotonic() - start, 2), None))
                    if what == "append":
                        probe.outcome = "indeterminate"
            await asyncio.sleep(0.5)
    return seen


async def _ready_again(url: str, timeout: float = 60.0) -> float | None:
    """Seconds until /readyz answers 200 (polled every 0.1 s); None if not within `timeout`."""
    start = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - start < timeout:
            try:
                async with http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(3)) as r:
                    if r.status == 200:
                        return round(time.monotonic() - start, 2)
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    return None


def _assert_unavailable(figures: dict[str, Any], *, append_limit: float) -> None:
    """While the database could not serve: /readyz 503 within its limit; every probe
    append 503 with Retry-After within `append_limit` seconds; ready again afterwards."""
    during = figures["during"]
    assert during["readyz_statuses"] == [503], figures
    assert during["readyz_max_s"] <= READYZ_LIMIT, figures
    assert during["append_statuses"] == [503], figures
    assert during["append_503_without_retry_after"] == 0, figures
    assert during["append_max_s"] <= append_limit, figures
    assert figures["ready_again_s"] is not None, figures


async def test_postgres_stopped_hard(
    coord: Coord, token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """`pg_ctl stop -m immediate` for the outage, then start: 503 + Retry-After meanwhile,
    and coord recovers by itself (the same process)."""
    assert coord.proc is not None
    pid = coord.proc.pid

    async def fault() -> dict[str, Any]:
        await asyncio.to_thread(pg.stop_hard)
        seen = await _statuses_during(coord.url, token, OUTAGE)
        await asyncio.to_thread(pg.restart)
        return {
            "during": _summary(seen),
            "ready_again_s": asyncio.create_task(_ready_again(coord.url)),
        }

    figures = await under_load("postgres stop -m immediate", coord.url, token, pg, foreign, fault)
    assert coord.proc.pid == pid and coord.proc.poll() is None, "coord must not exit"
    # Nothing waits on a stopped server: refused at once (1.5 s of slack for 2 shared cores).
    _assert_unavailable(figures, append_limit=1.5)


async def test_postgres_frozen(
    coord: Coord, token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """Every PostgreSQL process SIGSTOPped for the outage, then SIGCONT: appends 503 at their
    deadline, /readyz 503 within its limit, recovery without restarting coord."""
    assert coord.proc is not None
    pid = coord.proc.pid

    async def fault() -> dict[str, Any]:
        pg.signal_all(signal.SIGSTOP)
        try:
            seen = await _statuses_during(coord.url, token, OUTAGE)
        finally:
            pg.signal_all(signal.SIGCONT)
        return {
            "during": _summary(seen),
            "ready_again_s": asyncio.create_task(_ready_again(coord.url)),
        }

    figures = await under_load("postgres frozen (SIGSTOP)", coord.url, token, pg, foreign, fault)
    assert coord.proc.pid == pid and coord.proc.poll() is None, "coord must not exit"
    _assert_unavailable(figures, append_limit=APPEND_DEADLINE + 0.75)


def _outcome(status: int) -> str:
    if status in (200, 201):
        return "ok"
    return "failed" if 400 <= status < 500 else "indeterminate"


def _summary(seen: dict[str, list[Any]]) -> dict[str, Any]:
    appends = seen["append"]
    return {
        "readyz_statuses": sorted({s for s, _, _ in seen["readyz"]}, key=str),
        "readyz_max_s": max((t for _, t, _ in seen["readyz"]), default=None),
        "append_statuses": sorted({s for s, _, _ in appends}, key=str),
        "append_max_s": max((t for _, t, _ in appends), default=None),
        "append_503_without_retry_after": sum(1 for s, _, ra in appends if s == 503 and not ra),
        "retry_after": sorted({ra for _, _, ra in [*seen["readyz"], *appends] if ra}),
    }


# -- projections under faults -------------------------------------------------------------


async def _projections(dsn: str) -> list[asyncpg.Record]:
    """Each projection's row (name, position, state, rebuild_position) and the log head."""
    conn = await asyncpg.connect(dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT p.name, p.position, p.state, p.rebuild_position, "
                "(SELECT coalesce(max(position), 0) FROM log) AS head "
                "FROM projections p ORDER BY p.name"
            )
        )
    finally:
        await conn.close()


async def _leftover_schemas(dsn: str) -> list[str]:
    """Schemas a rebuild or verify left behind (`proj_<name>_next`, `_old`, `_verify`)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ '^proj_.*_(next|old|verify)$'"
        )
    finally:
        await conn.close()
    return sorted(r["nspname"] for r in rows)


async def _all_running_past(dsn: str, position: int, timeout: float) -> float | None:
    """Seconds until every projection is `running` at `position` or beyond; None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        rows = await _projections(dsn)
        if all(r["state"] == "running" and r["position"] >= position for r in rows):
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(0.1)
    return None


async def _schema_oids(dsn: str, names: list[str]) -> dict[str, int]:
    """The oid of each projection's live schema (a rebuild swaps in a new one)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT nspname, oid::int8 AS oid FROM pg_namespace WHERE nspname = ANY($1)",
            [schema_of(n) for n in names],
        )
    finally:
        await conn.close()
    by_schema = {r["nspname"]: r["oid"] for r in rows}
    return {n: by_schema[schema_of(n)] for n in names if schema_of(n) in by_schema}


async def _verify_all(env: dict[str, str]) -> int:
    """`coord projections verify all` (exits non-zero on a difference): rows compared clean."""
    out = await run_coord(env, "projections", "verify", "all")
    verified = [line for line in out.splitlines() if line.startswith("verified ")]
    assert verified and all(line.endswith(": 0 differing rows") for line in verified), out
    return len(verified)


async def test_disk_full(coord: Coord, token: str, pg: Postgres, foreign: frozenset[str]) -> None:
    """The database's disk filled to the last byte for the outage, then space freed: no false
    201, 503 + Retry-After meanwhile, no projection marked failed, all running again."""
    if pg.disk is None:
        pytest.skip("mounting a tmpfs needs root; the disk-full fault was not run")
    failed: set[str] = set()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            failed.update(r["name"] for r in await _projections(pg.dsn) if r["state"] == "failed")
            await asyncio.sleep(0.25)

    async def fault() -> dict[str, Any]:
        ballast = await asyncio.to_thread(pg.fill_disk)
        try:
            seen = await _statuses_during(coord.url, token, OUTAGE)
        finally:
            pg.free_disk()
        head = max(r.position for r in await read_log(pg.dsn))
        return {
            "ballast_mb": round(ballast / 2**20),
            "during": _summary(seen),
            "projections_running_s": asyncio.create_task(_all_running_past(pg.dsn, head, 60)),
        }

    watcher = asyncio.create_task(watch())
    try:
        figures = await under_load("disk full", coord.url, token, pg, foreign, fault)
    finally:
        stop.set()
        await watcher
    during = figures["during"]
    # The checker already proved every 201 is in the log; here: refused as 503 while full.
    assert 503 in during["append_statuses"], figures
    assert set(during["append_statuses"]) <= {201, 503}, figures
    assert during["append_503_without_retry_after"] == 0, figures
    assert not failed, f"projections marked failed by a full disk: {failed}"
    assert figures["projections_running_s"] is not None, figures
    assert coord.proc is not None and coord.proc.poll() is None


async def test_kill_coord_during_projection_catch_up(
    env: dict[str, str], token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """Every projection replays from 0 (its tables dropped, as for a newly deployed one) while
    a coord without runners takes the load; kill -9 the coord that catches up, mid-way, restart
    it: every projection catches up, and `coord projections verify all` finds no difference."""
    conn = await asyncpg.connect(pg.dsn)
    try:
        for name in await conn.fetchval("SELECT array_agg(name) FROM projections"):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema_of(name)} CASCADE")
    finally:
        await conn.close()
    writer = Coord(env, background=False)
    catcher = Coord(env)
    writer.start()
    try:
        await writer.wait_ready()

        async def fault() -> dict[str, Any]:
            catcher.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows = await _projections(pg.dsn)
                moved = [r for r in rows if r["position"] > 0]
                if moved and any(r["position"] < r["head"] for r in rows):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(
                    "no kill landed mid catch-up (it never started or ended too soon)"
                )
            catcher.kill()
            behind = sum(1 for r in rows if r["position"] < r["head"])
            catcher.start()
            return {
                "killed_with_behind": f"{behind} of {len(rows)} projections",
                "killed_at_min_position": min(r["position"] for r in rows),
                "head_at_kill": rows[0]["head"],
                "ready_after_restart_s": round(await catcher.wait_ready(), 2),
            }

        figures = await under_load(
            "kill -9 during projection catch-up", writer.url, token, pg, foreign, fault
        )
        head = max(r.position for r in await read_log(pg.dsn))
        figures["caught_up_s"] = await _all_running_past(pg.dsn, head, 90)
        assert figures["caught_up_s"] is not None, figures
        figures["verified_projections"] = await _verify_all(env)
    finally:
        catcher.stop()
        writer.stop()


async def test_kill_coord_during_rebuild(
    coord: Coord, env: dict[str, str], token: str, admin: str, pg: Postgres,
    foreign: frozenset[str],
) -> None:  # fmt: skip
    """kill -9 of coord while every projection rebuilds (`POST /v1/projections/{name}/rebuild`)
    under load: the restarted coord drops the half-replayed schemas and puts each projection
    back to `running`; a rebuild then completes; `coord projections verify all` is clean."""
    names = [r["name"] for r in await _projections(pg.dsn)]
    headers = {"Authorization": f"Bearer {admin}"}

    async def rebuild_all(http: aiohttp.ClientSession) -> None:
        for name in names:
            async with http.post(f"{coord.url}/v1/projections/{name}/rebuild") as r:
                assert r.status == 202, await r.text()

    async def fault() -> dict[str, Any]:
        async with aiohttp.ClientSession(headers=headers) as http:
            await rebuild_all(http)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = await _projections(pg.dsn)
            replaying = [r for r in rows if r["state"] == "rebuilding" and r["rebuild_position"]]
            if replaying:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("no rebuild got under way")
        coord.kill()
        left = await _leftover_schemas(pg.dsn)
        stuck = [r["name"] for r in await _projections(pg.dsn) if r["state"] == "rebuilding"]
        coord.start()
        return {
            "rebuilding_at_kill": len(stuck),
            "leftover_schemas_at_kill": len(left),
            "ready_after_restart_s": round(await coord.wait_ready(), 2),
        }

    figures = await under_load("kill -9 during a rebuild", coord.url, token, pg, foreign, fault)
    assert figures["rebuilding_at_kill"] >= 1 and figures["leftover_schemas_at_kill"] >= 1
    # Cleaned up by the restart: no leftover schema, nothing left `rebuilding`.
    assert await _leftover_schemas(pg.dsn) == []
    assert {r["state"] for r in await _projections(pg.dsn)} == {"running"}
    # A rebuild after the crash completes: each live schema is swapped for a new one.
    before = await _schema_oids(pg.dsn, names)
    started = time.monotonic()
    async with aiohttp.ClientSession(headers=headers) as http:
        await rebuild_all(http)
    while time.monotonic() - started < 90:
        rows = await _projections(pg.dsn)
        after = await _schema_oids(pg.dsn, names)
        swapped = all(after.get(name) not in (None, before[name]) for name in names)
        if swapped and all(r["state"] == "running" for r in rows):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the rebuilds after the crash did not finish: {rows}")
    figures["rebuild_again_s"] = round(time.monotonic() - started, 2)
    assert await _leftover_schemas(pg.dsn) == []
    figures["verified_projections"] = await _verify_all(env)


async def _sequencer_backend(dsn: str) -> int | None:
    conn = await asyncpg.connect(dsn)
    try:
        pid: int | None = await conn.fetchval(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'coord sequencer'"
        )
    finally:
        await conn.close()
    return pid


def _workers(supervisor: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(supervisor).children()
        if "--no-background" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE
    ]


async def test_workers_survive_the_sequencer_leader_killed(
    env: dict[str, str], token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """`--workers 2`: kill -9 workers until the sequencer's leader died; the node serves on,
    the dead one is restarted; then kill -9 of the supervisor takes every child with it."""
    node = Coord(env, workers=2)
    node.start()
    try:
        await node.wait_ready()
        assert node.proc is not None
        supervisor = node.proc.pid
        for _ in range(100):
            if len(_workers(supervisor)) == 2:
                break
            await asyncio.sleep(0.1)
        children = {p.pid for p in psutil.Process(supervisor).children()}

        async def fault() -> dict[str, Any]:
            killed = []
            for _ in range(2):
                leader = await _sequencer_backend(pg.dsn)
                victim = _workers(supervisor)[0]
                killed.append(victim.pid)
                victim.kill()
                await asyncio.sleep(1.5)
                if await _sequencer_backend(pg.dsn) != leader:
                    break
            return {"killed_workers": len(killed)}

        figures = await under_load(
            "--workers 2, sequencer leader kill -9", node.url, token, pg, foreign, fault
        )
        assert node.proc.poll() is None, "the supervisor must keep running"
        assert len(_workers(supervisor)) == 2, "the dead worker is restarted"
        log = node.log.read_text()
        assert "supervisor.child_died" in log and "SIGKILL" in log, log[-2000:]
        assert figures["killed_workers"] >= 1
        # Now the supervisor itself: its children must not outlive it.
        children |= {p.pid for p in psutil.Process(supervisor).children()}
        node.proc.kill()
        node.proc.wait(10)
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            await asyncio.sleep(0.2)
        assert not any(_alive(pid) for pid in children), "children outlived their supervisor"
    finally:
        node.stop()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_unsafe_postgres_is_refused(env: dict[str, str]) -> None:
    """fsync, synchronous_commit, full_page_writes off: coord refuses, naming each, and writes
    nothing; `--workers` does not restart a refusing child; the opt-out serves and says so."""
    root = pg_root()
    unsafe = Postgres(
        root,
        settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"},
    )
    unsafe.start()
    try:
        bad = {**env, "COORD_DATABASE_URL": unsafe.dsn}
        for workers in (0, 2):
            node = Coord(bad, workers=workers)
            node.start()
            assert node.proc is not None
            code = node.proc.wait(60)
            text = node.log.read_text()
            assert code == 78, text[-2000:]
            for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
                assert setting in text, text[-2000:]
        conn = await asyncpg.connect(unsafe.dsn)
        try:
            assert await conn.fetchval("SELECT to_regclass('events')") is None
        finally:
            await conn.close()
        allowed = Coord({**bad, "COORD_ALLOW_UNSAFE_DURABILITY": "1"})
        allowed.start()
        try:
            await allowed.wait_ready()
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{allowed.url}/readyz") as r,
            ):
                body = await r.json()
            assert body["durability"]["settings"]["fsync"] == "off"
            assert len(body["durability"]["unsafe"]) == 3
        finally:
            allowed.stop()
    finally:
        unsafe.close()
        shutil.rmtree(root, ignore_errors=True)


async def test_after_everything_the_log_verifies(
    coord: Coord, env: dict[str, str], pg: Postgres, foreign: frozenset[str]
) -> None:
    """`coord export` + `coord verify` VERIFIED over everything the faults left."""
    assert check(ALL, await read_log(pg.dsn), foreign=foreign).clean
    auditor = await cli_token(env, "auditor", "Pemeriksa")
    size = len(await read_log(pg.dsn))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {auditor}"}) as http:
        for _ in range(200):
            async with http.get(f"{coord.url}/v1/audit/checkpoint") as r:
                text = await r.text()
            if r.status == 200 and f"\n{size}\n" in text:
                break
            await asyncio.sleep(0.1)
        async with http.get(f"{coord.url}/v1/audit/public-key") as r:
            vkey = (await r.json())["vkey"]
    home = Path(env["COORD_HOME"])
    out, cp = home / "export.ndjson", home / "checkpoint.txt"
    await run_coord(
        env, "export", "--url", coord.url, "--token", auditor, "--out", str(out),
        "--checkpoint-out", str(cp),
    )  # fmt: skip
    verified = await run_coord(env, "verify", str(out), "--checkpoint", str(cp), "--vkey", vkey)
    assert "VERIFIED" in verified, verified
    RESULTS["export + verify"] = {"events": size, "verified": True}
