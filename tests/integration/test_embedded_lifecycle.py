"""Issue 13, item 6: leftovers of a kill -9 must not break the embedded PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coord.config import Config
from coord.durability import UnsafeDurability
from coord.embedded import clear_leftovers
from coord.runtime import started_app


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_users_are_dropped(tmp_path: Path) -> None:
    """A pid killed with -9 leaves the list; the living stay."""
    dead = _dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".handle_pids.json").write_text(json.dumps([dead, alive.pid]))
        clear_leftovers(tmp_path)
        assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [alive.pid]
    finally:
        alive.kill()
        alive.wait()


def test_pidfile_of_another_process_is_removed(tmp_path: Path) -> None:
    """postmaster.pid naming a live process that is not this data directory's postmaster."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "postmaster.pid").write_text(f"{other.pid}\n{tmp_path}\n")
        clear_leftovers(tmp_path)
        assert not (tmp_path / "postmaster.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_pidfile_of_a_dead_process_is_left_to_postgresql(tmp_path: Path) -> None:
    """A dead pid: PostgreSQL itself recognises a stale file; nothing to do here."""
    (tmp_path / "postmaster.pid").write_text(f"{_dead_pid()}\n{tmp_path}\n")
    clear_leftovers(tmp_path)
    assert (tmp_path / "postmaster.pid").exists()


async def test_unsafe_server_is_refused_without_the_opt_out(database_url: str) -> None:
    """The test server runs with synchronous_commit = off: coord refuses it, naming it."""
    config = Config(database_url=database_url, allow_unsafe_durability=False)
    with pytest.raises(UnsafeDurability, match="synchronous_commit = off"):
        async with started_app(config):
            pass
