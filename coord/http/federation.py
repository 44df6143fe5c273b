"""`GET /v1/federation` and the federation gauges in `/metrics`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from coord import federation
from coord.apidoc import documented
from coord.http.streams import json_response
from coord.keys import POOL
from coord.metrics import METRICS

routes = web.RouteTableDef()


class StatusCache:
    """One status read shared by the gauges of a scrape (they ask within milliseconds)."""

    def __init__(self, app: web.Application, ttl: float = 1.0) -> None:
        self.app = app
        self.ttl = ttl
        self._at = 0.0
        self._status: federation.Status | None = None

    async def get(self) -> federation.Status:
        """The link status, at most `ttl` seconds old."""
        if self._status is None or time.monotonic() - self._at > self.ttl:
            self._status = await federation.status(self.app[POOL], remote_timeout=1.0)
            self._at = time.monotonic()
        return self._status


@routes.get("/v1/federation")
@documented(
    responses={200: federation.Status},
    roles=("national", "auditor", "admin"),
    summary="This node's federation role, its replication links (state, lag, last event "
    "received) and the directory of nodes it knows.",
    tags=("federation",),
)
async def get_federation(request: web.Request) -> web.Response:
    """This node, each replication link (state, lag, last event received), the directory."""
    return json_response(await federation.status(request.app[POOL]))


def export_metrics(app: web.Application) -> None:
    """Register `coord_federation_*` gauges, one series per link."""
    cache = StatusCache(app)

    def reader(field: str) -> Callable[[], Awaitable[dict[tuple[str, ...], float]]]:
        async def read() -> dict[tuple[str, ...], float]:
            values: dict[tuple[str, ...], float] = {}
            for link in (await cache.get()).links:
                value = (
                    (link.state == "partitioned")
                    if field == "partitioned"
                    else getattr(link, field)
                )
                if value is not None:
                    values[(link.name, link.direction)] = float(value)
            return values

        return read

    for name, field, doc in (
        ("coord_federation_link_connected", "connected", "1 if the replication link is up."),
        ("coord_federation_lag_bytes", "lag_bytes", "WAL not yet confirmed by the receiver."),
        ("coord_federation_lag_seconds", "lag_seconds", "Replication delay of the link."),
        (
            "coord_federation_errors",
            "errors",
            "Received events set aside as conflicts, unresolved (never a mere reconnect).",
        ),
        (
            "coord_federation_partitioned",
            "partitioned",
            "1 if the link's peer cannot be reached (a partition, not a conflict).",
        ),
        (
            "coord_federation_events_received",
            "events_received",
            "Events received over an incoming link since set-up.",
        ),
    ):
        app[METRICS].gauge(name, doc, reader(field), labelnames=["link", "direction"])

    async def refusals() -> dict[tuple[str, ...], float]:
        rows = await app[POOL].fetch(
            "SELECT origin, count(*) AS n FROM audit_cosign_refusals GROUP BY origin"
        )
        return {(r["origin"],): float(r["n"]) for r in rows}

    app[METRICS].gauge(
        "coord_federation_cosign_refusals",
        "Checkpoints this node refused to cosign, by the log's origin (alert on any): at the "
        "hub, region checkpoints its mirror of the region's tree does not reproduce; at a "
        "region, hub checkpoints that do not verify or are not consistent with the last "
        "one it cosigned.",
        refusals,
        labelnames=["origin"],
    )
