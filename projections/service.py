"""Everything a coord process keeps about its projections, as one piece of app state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from projections.base import Projection
from projections.positions import Positions
from projections.runner import Runner, RunnerSettings


@dataclass
class ProjectionSettings:
    """Knobs of the projection layer (tests shrink them)."""

    #: how long a view waits for ``min_position`` before answering 503
    read_wait: float = 5.0
    #: seconds between SSE heartbeats on an idle feed
    heartbeat: float = 15.0
    runner: RunnerSettings = field(default_factory=RunnerSettings)


@dataclass
class ProjectionService:
    """The projections, their positions, this process's runner and running rebuilds."""

    projections: dict[str, Projection]
    positions: Positions
    settings: ProjectionSettings
    runner: Runner | None = None
    rebuilds: dict[str, asyncio.Task[int]] = field(default_factory=dict)
