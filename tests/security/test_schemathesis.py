"""Schemathesis against `/v1/openapi.json`, with a token of each role: no input gets a 5xx,
every status and body matches the document, and input the document forbids is refused.

A real `coord serve` (demo data, so ids in paths name real objects) on the test database;
`st run` (schemathesis' CLI) drives it over HTTP with the examples, coverage and fuzzing
phases. The SSE route is excluded (an endless response) and covered by its own tests.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.skipif(
    shutil.which("st", path=str(Path(sys.executable).parent)) is None,
    reason="schemathesis is not installed (pip install -e '.[test]')",
)

CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,negative_data_rejection"
)
# Per role: examples per operation and a time budget (seconds) for the role's whole run;
# the four budgets plus start-up keep the test near two minutes (make test stays under 10).
BUDGET = {"national": (20, 40), "regional": (12, 25), "auditor": (8, 16), "admin": (8, 16)}

HOOKS = '''
"""Schemathesis hooks for coord: read NDJSON responses (the audit export) line by line."""
import json

import schemathesis


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx, response):
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]
'''


async def _ids(base: str, token: str) -> dict[str, str]:
    """Ids of demo objects this token can read, so that path parameters name real things."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:

        async def first(path: str, key: str) -> str | None:
            # The demo loads in the background after start: wait for the views to show it.
            for _ in range(300):
                async with http.get(path) as r:
                    if r.status == 403:
                        return None  # this role does not read that view
                    assert r.status == 200, await r.text()
                    body: Any = await r.json()
                if body["items"]:
                    return str(body["items"][0][key])
                await asyncio.sleep(0.1)
            raise AssertionError(f"{path} stayed empty")

        found = {
            "issue": await first("/v1/views/issues?limit=1", "id"),
            "hearing": await first("/v1/views/hearings?limit=1", "id"),
            "recommendation": await first("/v1/views/recommendations?limit=1", "id"),
        }
        async with http.get("/v1/views/hearings?limit=1") as r:
            if r.status == 200 and (items := (await r.json())["items"]):
                found["region"] = items[0]["region_code"]
        return {k: v for k, v in found.items() if v is not None}


def _config(ids: dict[str, str], path: Path) -> None:
    """A schemathesis.toml that points id parameters at demo objects."""
    by_path: dict[str, dict[str, str]] = {}
    for kind in ("issue", "hearing", "recommendation"):
        if kind in ids:
            by_path[f"/v1/{kind}s/{{id}}"] = {"id": ids[kind]}
    if "recommendation" in ids:
        by_path["/v1/views/recommendations/{id}"] = {"id": ids["recommendation"]}
    if "issue" in ids:
        for template in ("/v1/streams/{stream_id}", "/v1/audit/streams/{stream_id}"):
            by_path[template] = {"stream_id": f"issue-{ids['issue']}"}
    if "region" in ids:
        for template in ("/v1/regions/{code}", "/v1/views/regions/{code}"):
            by_path[template] = {"code": ids["region"]}
    lines = []
    for template, params in by_path.items():
        values = ", ".join(f'{k} = "{v}"' for k, v in params.items())
        lines += [
            "[[operations]]",
            f'include-path = "{template}"',
            f"parameters = {{ {values} }}",
            "",
        ]
    path.write_text("\n".join(lines))


async def _wait_ready(base: str) -> None:
    async with aiohttp.ClientSession(base) as http:
        for _ in range(600):
            try:
                async with http.get("/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("coord did not become ready")


async def test_schemathesis_finds_nothing(database_url: str, tmp_path: Path) -> None:
    """Every role: zero schemathesis failures over examples, coverage and fuzzing."""
    # Minutes by design, each step bounded by its own timeout: no stack dump at 120 s.
    faulthandler.cancel_dump_traceback_later()
    env = {
        **os.environ,
        "COORD_DATABASE_URL": database_url,
        "COORD_HOME": str(tmp_path),
        "COORD_DEMO": "1",
        "COORD_LOG_LEVEL": "warning",
        # The fuzzer sends thousands of requests a minute; rate limits are tested elsewhere.
        "COORD_RATE_LIMIT_PER_TOKEN": "100000",
        "COORD_RATE_LIMIT_BURST": "100000",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coord", "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _wait_ready(base)
        tokens = json.loads((tmp_path / "demo-tokens.json").read_text())
        national = await _ids(base, tokens["national"])
        (tmp_path / "coord_st_hooks.py").write_text(HOOKS)
        st = str(Path(sys.executable).parent / "st")
        failures = []
        for role, (examples, seconds) in BUDGET.items():
            # Ids this role can read (a regional token: its own regions), else the national ones.
            config = tmp_path / f"schemathesis-{role}.toml"
            _config({**national, **await _ids(base, tokens[role])}, config)
            # One worker: with two, Hypothesis describes filters from several threads at once
            # and CPython 3.11's ast.parse fails ("AST constructor recursion depth mismatch").
            proc = await asyncio.create_subprocess_exec(
                st, "--config-file", str(config), "run", f"{base}/v1/openapi.json",
                "-H", f"Authorization: Bearer {tokens[role]}",
                "--phases", "examples,coverage,fuzzing", "--checks", CHECKS,
                "--exclude-path", "/v1/events/stream",
                "-n", str(examples), "--max-time", str(seconds), "--no-shrink",
                "--seed", "20261207", "--workers", "1", "--no-color",
                "--generation-database", "none",
                env={
                    **os.environ,
                    "SCHEMATHESIS_HOOKS": "coord_st_hooks",
                    "PYTHONPATH": str(tmp_path),
                },
                # In the test's directory: st keeps its own files (.schemathesis/) there.
                cwd=str(tmp_path),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(proc.communicate(), seconds + 120)
            text = out.decode(errors="replace")
            # The run's summary (test cases, failures) in the test's output, for the record.
            summary = [line for line in text.splitlines() if "generated," in line or "===" in line]
            print(f"--- role {role} ---", *summary[-2:], sep="\n")
            if proc.returncode != 0:
                failures.append(f"--- role {role} ---\n{text[-20000:]}")
        if failures:
            # pytest.fail, not assert: an assert's message is cut to a few hundred characters.
            pytest.fail("\n".join(failures), pytrace=False)
    finally:
        server.terminate()
        await server.wait()
