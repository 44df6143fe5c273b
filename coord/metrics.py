"""Prometheus metrics: one registry per app, a middleware that counts requests, `/metrics`.

What is exported (text exposition format, `GET /metrics`, no token):

* `coord_http_requests_total{method,route,status}` and
  `coord_http_request_duration_seconds{method,route}` (histogram). `route` is the
  route's template (`/v1/streams/{stream_id}/events`), never the raw path, so the
  number of series stays bounded; requests that match no route are `unmatched`.
  A request whose handler was cancelled (its client went away) counts as `499`.
* `coord_http_requests_in_flight`.
* `coord_append_requests_total{route,result}` (`created`, `replayed` = idempotent
  retry, `conflict`, `rejected`, `error`) and `coord_events_appended_total{route}`
  for the append routes (:attr:`Metrics.append_routes`).
* `coord_conflicts_total{kind}`: every 409 by its problem type (`version-conflict`,
  `duplicate-event-id`, `rule-violation`, ...).
* `coord_db_pool_size`, `coord_db_pool_in_use`, `coord_db_pool_max_size`.

Other modules export their own figures through ``app[METRICS]``:

* a value computed at scrape time (sync or async callable; a mapping from label
  values to numbers for a labelled gauge)::

      app[METRICS].gauge(
          "coord_projection_lag_events", "Events the projection is behind the log head.",
          lambda: {(name,): runner.lag for name, runner in runners.items()},
          labelnames=("projection",),
      )

* or any prometheus_client metric bound to the app's registry::

      Counter("coord_feed_clients_total", "...", registry=app[METRICS].registry)

There is no global registry: tests build many apps, each with its own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from coord.apidoc import Body, documented
from coord.keys import POOL
from coord.problems import TYPE_BASE

log = structlog.get_logger("coord.metrics")

GaugeValue: TypeAlias = float | Mapping[tuple[str, ...], float]
GaugeReader: TypeAlias = Callable[[], GaugeValue | Awaitable[GaugeValue]]

# Latency buckets in seconds: appends wait for sequencing (milliseconds), reads are sub-ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Routes whose 2xx bodies are append results (`{first_version, last_version, ...}` or a list).
# nginx's status for a request whose client closed the connection before the answer: a
# cancelled handler is no server error.
CLIENT_CLOSED = 499

APPEND_ROUTES = frozenset({("POST", "/v1/streams/{stream_id}/events"), ("POST", "/v1/cloudevents")})


class _Appended(msgspec.Struct):
    """The two fields of an append result the counters need (the rest is ignored)."""

    first_version: int
    last_version: int


class _ProblemType(msgspec.Struct):
    type: str = ""


_appended = msgspec.json.Decoder(_Appended | list[_Appended])
_problem = msgspec.json.Decoder(_ProblemType)


class _CallbackGauges:
    """A collector of gauges whose values were read by `Metrics.refresh` before a scrape."""

    def __init__(self) -> None:
        self.readers: list[tuple[str, str, tuple[str, ...], GaugeReader]] = []
        self.values: dict[str, GaugeValue] = {}

    def collect(self) -> Iterable[Metric]:
        for name, documentation, labelnames, _ in self.readers:
            value = self.values.get(name)
            if value is None:
                continue
            family = GaugeMetricFamily(name, documentation, labels=labelnames or None)
            if isinstance(value, Mapping):
                for labels, number in value.items():
                    family.add_metric(list(labels), float(number))
            else:
                family.add_metric([], float(value))
            yield family


class Metrics:
    """The app's registry, its standard metrics, the middleware and the `/metrics` handler."""

    def __init__(self, *, gauge_timeout: float = 2.0) -> None:
        self.gauge_timeout = gauge_timeout
        self.registry = CollectorRegistry(auto_describe=True)
        self.append_routes: set[tuple[str, str]] = set(APPEND_ROUTES)
        r = self.registry
        self.requests = Counter(
            "coord_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "coord_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "coord_http_requests_in_flight", "HTTP requests being served.", registry=r
        )
        self.append_requests = Counter(
            "coord_append_requests",
            "Append requests by route and result (created, replayed, conflict, rejected, error).",
            ["route", "result"],
            registry=r,
        )
        self.events_appended = Counter(
            "coord_events_appended", "Events written by append requests.", ["route"], registry=r
        )
        self.conflicts = Counter(
            "coord_conflicts", "409 responses by problem type.", ["kind"], registry=r
        )
        self.pool_size = Gauge("coord_db_pool_size", "Open database connections.", registry=r)
        self.pool_in_use = Gauge(
            "coord_db_pool_in_use", "Database connections currently acquired.", registry=r
        )
        self.pool_max_size = Gauge(
            "coord_db_pool_max_size", "Largest size the database pool may grow to.", registry=r
        )
        self._callbacks = _CallbackGauges()
        r.register(self._callbacks)
        # Labelled children are cached: `labels()` takes a lock and builds a key each call.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._append_children: dict[tuple[str, str], Counter] = {}

    # -- extension points ------------------------------------------------

    def gauge(
        self,
        name: str,
        documentation: str,
        read: GaugeReader,
        *,
        labelnames: Sequence[str] = (),
    ) -> None:
        """Export a gauge read at scrape time by `read` (sync or async).

        `read` returns a number, or (with `labelnames`) a mapping from label-value
        tuples to numbers. If it raises or (async) takes longer than `gauge_timeout`
        seconds, the gauge is left out of that scrape.
        """
        if any(name == n for n, *_ in self._callbacks.readers):
            raise ValueError(f"gauge {name!r} is already registered")
        self._callbacks.readers.append((name, documentation, tuple(labelnames), read))

    async def refresh(self) -> None:
        """Read every callback gauge (called by the scrape handler before exposition)."""
        values: dict[str, GaugeValue] = {}
        for name, _, _, read in self._callbacks.readers:
            try:
                value = read()
                if inspect.isawaitable(value):
                    # A scrape must answer even when a gauge's database query hangs.
                    async with asyncio.timeout(self.gauge_timeout):
                        value = await value
            except Exception:
                log.exception("metrics.gauge_failed", gauge=name)
                continue
            values[name] = value
        self._callbacks.values = values

    # -- hot path ----------------------------------------------------------

    def observe(
        self, method: str, route: str, status: int, seconds: float, body: Any = None
    ) -> None:
        """Count one finished request (`body`: the response body, read only for appends/409)."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status == 409:
            self.conflicts.labels(_conflict_kind(body)).inc()
        if (method, route) in self.append_routes:
            self._observe_append(route, status, body)

    def _observe_append(self, route: str, status: int, body: Any) -> None:
        if status == 201:
            result = "created"
            events = _events_in(body)
            if events:
                self._append_child("events", route).inc(events)
        elif status == 200:
            result = "replayed"
        elif status == 409:
            result = "conflict"
        elif status < 500:
            result = "rejected"
        else:
            result = "error"
        self._append_child(result, route).inc()

    def _append_child(self, result: str, route: str) -> Counter:
        child = self._append_children.get((result, route))
        if child is None:
            if result == "events":
                child = self.events_appended.labels(route)
            else:
                child = self.append_requests.labels(route, result)
            self._append_children[(result, route)] = child
        return child

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time and count every request by its route template and final status."""
        start = time.perf_counter()
        self.in_flight.inc()
        status = 500
        body: Any = None
        try:
            response = await handler(request)
            status = response.status
            if isinstance(response, web.Response):
                body = response.body
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED  # the client went away (or the server is stopping)
            raise
        finally:
            self.in_flight.dec()
            self.observe(
                request.method, _route_of(request), status, time.perf_counter() - start, body
            )

    # -- exposition --------------------------------------------------------

    @documented(
        responses={200: Body(str, "text/plain; version=0.0.4")},
        summary="Prometheus metrics in the text exposition format.",
        tags=("health",),
    )
    async def handle(self, request: web.Request) -> web.Response:
        """`GET /metrics`: the Prometheus text exposition format."""
        pool = request.app.get(POOL)
        if pool is not None:
            size = pool.get_size()
            self.pool_size.set(size)
            self.pool_in_use.set(size - pool.get_idle_size())
            self.pool_max_size.set(pool.get_max_size())
        await self.refresh()
        resp = web.Response(body=generate_latest(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
        return resp


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _events_in(body: Any) -> int:
    if not isinstance(body, bytes):
        return 0
    try:
        decoded = _appended.decode(body)
    except msgspec.DecodeError:
        return 0
    results = decoded if isinstance(decoded, list) else [decoded]
    return sum(r.last_version - r.first_version + 1 for r in results)


def _conflict_kind(body: Any) -> str:
    if isinstance(body, bytes):
        try:
            kind = _problem.decode(body).type
        except msgspec.DecodeError:
            return "unknown"
        if kind.startswith(TYPE_BASE):
            return kind[len(TYPE_BASE) :]
    return "unknown"


METRICS = web.AppKey("metrics", Metrics)
