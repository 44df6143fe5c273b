"""A node that cannot start says why in one line and exits EX_CONFIG (78), so a supervisor
or Kubernetes does not restart it in a loop: no traceback (issue 17)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from coord import db, federation
from coord.supervisor import EX_CONFIG
from tests.conftest import free_port


async def _serve(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coord",
        "serve",
        "--port",
        str(free_port()),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, err.decode()


async def test_a_placeholder_signing_key_is_refused_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    """The manifests' `CHANGE-ME` is neither a key nor a key file."""
    env = {
        **os.environ,
        "COORD_DATABASE_URL": database_url,
        "COORD_HOME": str(tmp_path),
        "COORD_SIGNING_KEY": "CHANGE-ME",
        "COORD_ALLOW_UNSAFE_DURABILITY": "1",
        "COORD_LOG_LEVEL": "error",
    }
    env.pop("COORD_DEMO", None)
    code, err = await _serve(env)
    assert code == EX_CONFIG, err
    assert "COORD_SIGNING_KEY is neither a signer key" in err
    assert "Traceback" not in err


async def test_a_regional_database_started_as_hub_is_refused_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    """The mode flip of issue 17, as an operator meets it: one line, exit 78."""
    env = {
        **os.environ,
        "COORD_DATABASE_URL": database_url,
        "COORD_HOME": str(tmp_path),
        "COORD_ALLOW_UNSAFE_DURABILITY": "1",
        "COORD_LOG_LEVEL": "error",
    }
    env.pop("COORD_DEMO", None)
    conn = await asyncpg.connect(database_url)
    try:
        await db.migrate(conn)
        await federation.ensure_identity(conn, node_id="jatim", mode="regional", regions=["35"])
    finally:
        await conn.close()
    code, err = await _serve(env, "--mode", "hub")
    assert code == EX_CONFIG, err
    assert "cannot start as --mode hub" in err and "Traceback" not in err
