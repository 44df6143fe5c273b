"""`GET /metrics`: Prometheus text format with requests, latencies, appends, conflicts, pool."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from coord.app import create_app
from coord.config import Config
from coord.metrics import METRICS
from tests.api.payloads import append, hearing_scheduled, new_id, statement
from tests.conftest import bearer

APPEND = "/v1/streams/{stream_id}/events"


async def scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by (name, labels)."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    """One sample's value, or None if it is absent."""
    return samples.get((name, frozenset(labels.items())))


async def test_requests_appends_conflicts_and_pool(client: Any, token_for: Any) -> None:
    """Appends, conflicts and 404s are counted by route template and status; pool is reported."""
    headers = bearer(await token_for(client, "national"))
    sid = f"hearing-{new_id()}"
    body = append(0, ("HearingScheduled", hearing_scheduled()), ("StatementRecorded", statement()))
    assert (
        await client.post(f"/v1/streams/{sid}/events", json=body, headers=headers)
    ).status == 201
    stale = append(0, ("StatementRecorded", statement()))
    assert (
        await client.post(f"/v1/streams/{sid}/events", json=stale, headers=headers)
    ).status == 409
    assert (await client.get("/no/such/path", headers=headers)).status == 404

    samples = await scrape(client)
    created = dict(method="POST", route=APPEND, status="201")
    assert sample(samples, "coord_http_requests_total", **created) == 1
    assert (
        sample(samples, "coord_http_requests_total", method="POST", route=APPEND, status="409") == 1
    )
    assert (
        sample(samples, "coord_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        sample(samples, "coord_http_request_duration_seconds_count", method="POST", route=APPEND)
        == 2
    )
    assert sample(samples, "coord_events_appended_total", route=APPEND) == 2
    assert sample(samples, "coord_append_requests_total", route=APPEND, result="created") == 1
    assert sample(samples, "coord_append_requests_total", route=APPEND, result="conflict") == 1
    assert sample(samples, "coord_conflicts_total", kind="version-conflict") == 1
    size = sample(samples, "coord_db_pool_size")
    in_use = sample(samples, "coord_db_pool_in_use")
    assert size is not None and size >= 1
    assert in_use is not None and 0 <= in_use <= size
    assert sample(samples, "coord_db_pool_max_size") == 10


async def test_each_app_has_its_own_registry(config: Config, aiohttp_client: Any) -> None:
    """Two apps in one process count separately (no global registry)."""
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    for _ in range(3):
        await first.get("/healthz")
    await second.get("/healthz")
    healthz = dict(method="GET", route="/healthz", status="200")
    assert sample(await scrape(first), "coord_http_requests_total", **healthz) == 3
    assert sample(await scrape(second), "coord_http_requests_total", **healthz) == 1


async def test_callback_gauges(config: Config, aiohttp_client: Any) -> None:
    """Gauges registered by other modules are read at scrape time; a failing one is left out."""
    app = create_app(config)
    lag = {"issue_board": 3.0, "search": 0.0}

    async def tree_size() -> float:
        return 42

    def broken() -> float:
        raise RuntimeError("boom")

    metrics = app[METRICS]
    metrics.gauge(
        "coord_test_lag_events",
        "Events behind the log head.",
        lambda: {(k,): v for k, v in lag.items()},
        labelnames=("projection",),
    )
    metrics.gauge("coord_test_tree_size", "Leaves in the audit tree.", tree_size)
    metrics.gauge("coord_broken", "Always fails.", broken)
    client = await aiohttp_client(app)
    samples = await scrape(client)
    assert sample(samples, "coord_test_lag_events", projection="issue_board") == 3
    assert sample(samples, "coord_test_tree_size") == 42
    assert not any(name == "coord_broken" for name, _ in samples)
    lag["issue_board"] = 1.0
    assert sample(await scrape(client), "coord_test_lag_events", projection="issue_board") == 1
