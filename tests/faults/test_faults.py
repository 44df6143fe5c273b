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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import pytest

from tests.api.payloads import hearing_scheduled
from tests.conftest import cli_token, run_coord
from tests.faults.checker import Row, check
from tests.faults.harness import Coord, History, Load, Op, Postgres, recovery_time

SHORT = os.environ.get("COORD_FAULTS_SHORT") == "1"
#: How long PostgreSQL stays down or frozen.
OUTAGE = 4.0 if SHORT else 10.0
WARM = 1.5 if SHORT else 3.0
AFTER = 3.0 if SHORT else 5.0

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
    yield server
    server.close()
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
    }
    env.pop("COORD_DEMO", None)
    env.pop("COORD_ALLOW_UNSAFE_DURABILITY", None)
    return env


@pytest.fixture(scope="module")
async def token(env: dict[str, str]) -> str:
    """A writer for region 35.71 (the load's hearings)."""
    return await cli_token(env, "regional", "Penguji gangguan", "35.71")


@pytest.fixture(scope="module")
async def foreign(pg: Postgres, token: str) -> frozenset[str]:
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
    rows = await read_log(pg.dsn)
    verdict = check(ALL, rows, foreign=foreign)
    mine = check(history, rows, foreign=foreign | {i for op in ALL.ops for i in op.event_ids})
    figures = {
        **{k: mine.figures()[k] for k in ("attempted", "acknowledged", "indeterminate", "refused")},
        **{k: verdict.figures()[k] for k in ("lost", "duplicated", "unexpected", "misplaced")},
        "fault_s": round(lifted - began, 2),
        "retried": sum(1 for op in history.ops if op.attempts > 1),
        "recovery_s": recovery_time(history, lifted),
        **extra,
    }
    RESULTS[name] = figures
    assert verdict.clean, (figures, verdict.problems[:5])
    assert mine.acknowledged > 0, figures
    assert figures["recovery_s"] is not None, f"{name}: no append succeeded after the fault"
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
    """Probe /readyz and one append while a fault lasts: statuses, Retry-After, latency."""
    seen: dict[str, list[Any]] = {"readyz": [], "append": [], "retry_after": []}
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
                        method, url + path, json=body, timeout=aiohttp.ClientTimeout(total=3)
                    ) as r:
                        seen[what].append((r.status, round(time.monotonic() - start, 2)))
                        if what == "append":
                            probe.outcome = _outcome(r.status)
                            if r.status in (200, 201):
                                got = await r.json()
                                probe.first_position = got["first_position"]
                                probe.first_version = got["first_version"]
                        if "Retry-After" in r.headers:
                            seen["retry_after"].append(r.headers["Retry-After"])
                except (aiohttp.ClientError, TimeoutError):
                    seen[what].append(("timeout", round(time.monotonic() - start, 2)))
                    if what == "append":
                        probe.outcome = "indeterminate"
            await asyncio.sleep(0.5)
    return seen


async def test_postgres_stopped_hard(
    coord: Coord, token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """`pg_ctl stop -m immediate` for the outage, then start: coord recovers by itself."""

    async def fault() -> dict[str, Any]:
        await asyncio.to_thread(pg.stop_hard)
        seen = await _statuses_during(coord.url, token, OUTAGE)
        await asyncio.to_thread(pg.restart)
        return {"during": _summary(seen)}

    figures = await under_load("postgres stop -m immediate", coord.url, token, pg, foreign, fault)
    assert coord.proc is not None and coord.proc.poll() is None, "coord must not exit"
    # /readyz must say the database is gone (503), never 200, while it is.
    assert 200 not in figures["during"]["readyz_statuses"], figures


async def test_postgres_frozen(
    coord: Coord, token: str, pg: Postgres, foreign: frozenset[str]
) -> None:
    """Every PostgreSQL process SIGSTOPped for the outage, then SIGCONT."""

    async def fault() -> dict[str, Any]:
        pg.signal_all(signal.SIGSTOP)
        try:
            seen = await _statuses_during(coord.url, token, OUTAGE)
        finally:
            pg.signal_all(signal.SIGCONT)
        return {"during": _summary(seen)}

    figures = await under_load("postgres frozen (SIGSTOP)", coord.url, token, pg, foreign, fault)
    assert coord.proc is not None and coord.proc.poll() is None
    assert 200 not in figures["during"]["readyz_statuses"], figures


def _outcome(status: int) -> str:
    if status in (200, 201):
        return "ok"
    return "failed" if 400 <= status < 500 else "indeterminate"


def _summary(seen: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "readyz_statuses": sorted({s for s, _ in seen["readyz"]}, key=str),
        "readyz_max_s": max((t for _, t in seen["readyz"]), default=None),
        "append_statuses": sorted({s for s, _ in seen["append"]}, key=str),
        "retry_after": sorted(set(seen["retry_after"])),
    }


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
