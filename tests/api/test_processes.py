"""Several coord processes on one database: `coord serve --workers 2` (two HTTP workers and a
background process) serves consistent views, sequences every append once, and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from typing import Any

import aiohttp

from tests.api.payloads import append, hearing_scheduled, issue_raised
from tests.conftest import cli_token, free_port


async def test_workers_share_one_log_and_views(database_url: str, tmp_path: Any) -> None:
    """Appends spread over two HTTP workers land once each, in one order, in every view."""
    env = {
        **os.environ,
        "COORD_DATABASE_URL": database_url,
        "COORD_HOME": str(tmp_path),
        "COORD_LOG_LEVEL": "warning",
    }
    env.pop("COORD_DEMO", None)
    token = await cli_token(env, "regional", "KPU Kota Kediri", "35.71")
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coord",
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(base, headers=headers) as http:
            for _ in range(150):
                try:
                    async with http.get("/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            hid = str(uuid.uuid4())
            async with http.post(
                f"/v1/streams/hearing-{hid}/events",
                json=append(0, ("HearingScheduled", hearing_scheduled())),
            ) as r:
                assert r.status == 201, await r.text()

            async def raise_issue(i: int) -> int:
                body = append(0, ("IssueRaised", issue_raised(hid, title=f"Masalah ke-{i}")))
                # A fresh connection per request, so the kernel spreads them over workers.
                async with (
                    aiohttp.ClientSession(base, headers=headers) as one,
                    one.post(f"/v1/streams/issue-{uuid.uuid4()}/events", json=body) as r,
                ):
                    assert r.status == 201, await r.text()
                    return int((await r.json())["last_position"])

            positions = await asyncio.gather(*(raise_issue(i) for i in range(30)))
            assert len(set(positions)) == 30
            async with http.get("/v1/events?category=issue&limit=1000") as r:
                log = (await r.json())["events"]
            assert sorted(e["position"] for e in log) == sorted(positions)
            # Read-your-writes across processes: the background process projects, any
            # worker answers once the view has reached the last position.
            for _ in range(3):
                async with http.get(
                    f"/v1/views/issues?hearing={hid}&limit=100&min_position={max(positions)}"
                ) as r:
                    assert r.status == 200, await r.text()
                    assert int(r.headers["X-Projection-Position"]) >= max(positions)
                    assert len((await r.json())["items"]) == 30
    finally:
        server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), 30)
    assert code == 0
