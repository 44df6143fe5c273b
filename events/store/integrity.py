"""Does this process's memory of the log still match the database?

A process caches what it learned about the log: the head it has seen, positions of
recent appends, recent events (LogReader), the tree it signed. If the database then
loses data it had acknowledged (a crash with unsafe durability settings, a failover
to an asynchronous standby, a point-in-time restore while coord runs), that memory
describes events that no longer exist, and the tree builder would sign them. Every
reconnect and leadership change checks the database against it (issue 13); on a
mismatch `Integrity.report` drops every cache, stops signing and marks the process
not ready until an operator restarts it, with a critical log naming the positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("coord.integrity")


class Integrity:
    """One per process: None while trusted, else what the database lost."""

    def __init__(self) -> None:
        #: Why this process no longer trusts its memory of the log (None: it does).
        self.lost: str | None = None
        #: The positions named in the report (for /readyz and the log).
        self.details: dict[str, Any] = {}
        self._drop: list[Callable[[], None]] = []

    def on_loss(self, drop: Callable[[], None]) -> None:
        """Call `drop` (forget a cache) when a loss is reported."""
        self._drop.append(drop)

    def report(self, message: str, **details: Any) -> None:
        """The database no longer holds what this process cached: drop, stop, say so."""
        first = self.lost is None
        if first:
            self.lost, self.details = message, details
        log.critical("integrity.data_lost", message=message, **details)
        for drop in self._drop:
            drop()
