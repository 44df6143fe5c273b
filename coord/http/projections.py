"""Projections in the app: start-up, status, rebuild, and the read-your-writes snapshot.

Every view reads through :func:`snapshot`: it waits (bounded) for ``min_position`` and
then reads in one REPEATABLE READ transaction whose first statement is the projection's
position, so ``X-Projection-Position`` is exactly the position the data reflects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
import structlog
from aiohttp import web

from coord import db
from coord.apidoc import documented
from coord.http.params import MAX_QUERY_INT, parse_int
from coord.keys import CONFIG, DSN, LOG_READER, POOL, PROJECTION_SETTINGS, PROJECTIONS, STORE
from coord.metrics import METRICS
from coord.problems import Problem, invalid, not_found
from events.store.log_head import committed_head
from projections.checkpoints import ProjectionStatus, ensure, status
from projections.positions import Positions
from projections.rebuild import rebuild
from projections.registry import all_projections
from projections.runner import Runner
from projections.service import ProjectionService, ProjectionSettings

log = structlog.get_logger("coord.projections")

routes = web.RouteTableDef()

POSITION_HEADER = "X-Projection-Position"
_encoder = msgspec.json.Encoder()


async def _listen(dsn: str, positions: Positions) -> None:
    """Hear other processes' runners (NOTIFY coord_projection); reconnect when dropped."""
    while True:
        try:
            conn = await db.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(1.0)
            continue
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener("coord_projection", positions.on_notify)
            await positions.refresh()
            await lost.wait()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("projections.listen_lost", error=str(e))
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
        await asyncio.sleep(0.5)


async def projections_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create missing projection tables, then run this process's runners until shutdown."""
    settings = app.get(PROJECTION_SETTINGS) or ProjectionSettings()
    if wait := os.environ.get("COORD_READ_WAIT_SECONDS"):
        settings.read_wait = float(wait)
    projections = all_projections()
    dsn = app[DSN]
    conn = await db.connect(dsn)
    try:
        await ensure(conn, projections)
    finally:
        await conn.close()
    positions = Positions(app[POOL])
    await positions.refresh()
    runner = Runner(
        functools.partial(db.connect, dsn, name="coord projections", derived=True),
        app[STORE].head,
        projections,
        positions,
        settings.runner,
        log_reader=app[LOG_READER],
    )
    service = ProjectionService(
        projections={p.name: p for p in projections},
        positions=positions,
        settings=settings,
        runner=runner,
    )
    app[PROJECTIONS] = service
    metrics = app.get(METRICS)
    if metrics is not None:
        _export_metrics(app, metrics)
    tasks = [asyncio.create_task(_listen(dsn, positions), name="projection-listener")]
    if app[CONFIG].background:
        tasks.append(asyncio.create_task(runner.run(), name="projection-runner"))
    try:
        yield
    finally:
        for task in [*tasks, *service.rebuilds.values()]:
            task.cancel()
        for task in [*tasks, *service.rebuilds.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _export_metrics(app: web.Application, metrics: Any) -> None:
    async def read(field: str) -> dict[tuple[str, ...], float]:
        service = app[PROJECTIONS]
        rows = await status(app[POOL], list(service.projections))
        return {(r.name,): float(getattr(r, field)) for r in rows}

    async def failed() -> dict[tuple[str, ...], float]:
        rows = await status(app[POOL], list(app[PROJECTIONS].projections))
        return {(r.name,): 1.0 if r.state == "failed" else 0.0 for r in rows}

    for name, field, doc in (
        ("coord_projection_position", "position", "Last log position applied, by projection."),
        ("coord_projection_lag_events", "lag_events", "Events not yet applied, by projection."),
        (
            "coord_projection_lag_seconds",
            "lag_seconds",
            "Age of the oldest unapplied event, by projection.",
        ),
    ):
        metrics.gauge(name, doc, functools.partial(read, field), labelnames=["projection"])
    metrics.gauge(
        "coord_projection_failed",
        "1 if the projection stopped on a failing event.",
        failed,
        labelnames=["projection"],
    )


# --- reading views ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A connection inside a consistent read, and the position the data reflects."""

    conn: asyncpg.Connection
    position: int


@dataclass(frozen=True, slots=True)
class MinPositionParam:
    """A client's `min_position`, and where it came from (the field path of a 422)."""

    value: int
    field: str


def min_position(request: web.Request) -> MinPositionParam | None:
    """``?min_position=N`` or ``X-Min-Position: N``: both are validated, the query wins.

    Given means given: an empty or repeated value is a 422, like any other bad value.
    """
    found = None
    for values, where in (
        (request.headers.getall("X-Min-Position", []), "header.X-Min-Position"),
        (request.query.getall("min_position", []), "query.min_position"),
    ):
        if len(values) > 1:
            raise invalid("min_position must be given once", where)
        if values:
            found = MinPositionParam(parse_int(values[0], "min_position", field=where), where)
    return found


MinPosition = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=MAX_QUERY_INT,
        description="Wait (bounded) until the view reflects this log position "
        "(an append's `last_position`): 503 + `Retry-After` if it does not in time; "
        "422 if the log does not hold this position yet.",
    ),
]


class ViewQuery(msgspec.Struct, kw_only=True):
    """Query parameters every view takes; each view's query adds its own."""

    min_position: MinPosition | None = None


#: Request headers every view takes (`min_position` as a header; the query wins).
VIEW_HEADERS: dict[str, Any] = {"X-Min-Position": MinPosition}
#: Response headers of every view: the log position the data reflects.
VIEW_RESPONSE_HEADERS: dict[str, Any] = {
    POSITION_HEADER: Annotated[
        int, msgspec.Meta(ge=0, description="The log position the view's data reflects.")
    ]
}


VIEW_TIMEOUT_SECONDS: float = 15


@contextlib.asynccontextmanager
async def snapshot(
    request: web.Request, *names: str, settings: Sequence[tuple[str, str]] = ()
) -> AsyncIterator[Snapshot]:
    """Wait for read-your-writes if asked, then a consistent read of the named projections
    (its transaction running with `settings` too: name, value pairs for `set_config`)."""
    service = request.app[PROJECTIONS]
    asked = min_position(request)
    if asked is not None:
        await _held_by_log(request, asked)
    wanted = None if asked is None else asked.value
    if wanted is not None and not await service.positions.wait_for(
        names, wanted, service.settings.read_wait
    ):
        behind = {n: service.positions.get(n) for n in names}
        raise Problem(
            503,
            "projection-behind",
            "Projection behind",
            f"the view has not reached position {wanted} yet; retry shortly",
            headers={"Retry-After": "1"},
            min_position=wanted,
            positions=behind,
        )
    async with (
        request.app[POOL].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        # One round trip: the snapshot's position, and a bound on every query of this
        # view, so that one costly view cannot hold a connection (and memory) for minutes.
        configs = "".join(
            f", set_config(${3 + 2 * i}, ${4 + 2 * i}, true) AS s{i}" for i in range(len(settings))
        )
        position = await conn.fetchval(
            "SELECT (SELECT coalesce(min(position), 0) FROM projections"
            " WHERE name = ANY($1::text[]))"
            f" FROM set_config('statement_timeout', $2, true){configs}",
            list(names),
            f"{int(VIEW_TIMEOUT_SECONDS * 1000)}ms",
            *(part for pair in settings for part in pair),
        )
        try:
            yield Snapshot(conn, position)
        except asyncpg.QueryCanceledError:
            raise Problem(
                503,
                "view-timeout",
                "View took too long",
                f"the view did not finish within {VIEW_TIMEOUT_SECONDS} s; narrow it with "
                "filters (category, province, region) and retry",
                headers={"Retry-After": "5"},
            ) from None


async def _held_by_log(request: web.Request, asked: MinPositionParam) -> None:
    """422 for a position beyond the committed log: no append has answered it yet, so
    waiting cannot help (a client got every real position from an acknowledged append)."""
    if asked.value <= request.app[STORE].head.position:
        return  # this process already saw the log reach it: no query needed
    async with request.app[POOL].acquire() as conn:
        head = await committed_head(conn)
    if asked.value > head:
        raise invalid(
            f"min_position {asked.value} is beyond the log's last position {head}; "
            "pass an append's last_position",
            asked.field,
        )


def view_response(body: Any, snap: Snapshot, status: int = 200) -> web.Response:
    """A JSON view response carrying ``X-Projection-Position``."""
    return web.Response(
        body=_encoder.encode(body),
        status=status,
        content_type="application/json",
        headers={POSITION_HEADER: str(snap.position)},
    )


# --- status and rebuild -------------------------------------------------------------------


class ProjectionList(msgspec.Struct, kw_only=True):
    """``GET /v1/projections``."""

    items: list[ProjectionStatus]


class ProjectionName(msgspec.Struct):
    """Path of `POST /v1/projections/{name}/rebuild`."""

    name: str


class RebuildStarted(msgspec.Struct, kw_only=True):
    """``POST /v1/projections/{name}/rebuild``: the rebuild runs in the background."""

    name: str
    state: Literal["rebuilding"]


@routes.get("/v1/projections")
@documented(
    responses={200: ProjectionList}, roles=("national", "auditor", "admin"), tags=("projections",)
)
async def list_projections(request: web.Request) -> web.Response:
    """Each projection's position, the log head, lag (events, seconds), state, last error and
    the skips an operator recorded (`coord projections skip`: who, why, when, which event)."""
    service = request.app[PROJECTIONS]
    rows = await status(request.app[POOL], sorted(service.projections))
    return web.Response(
        body=_encoder.encode(ProjectionList(items=list(rows))), content_type="application/json"
    )


@routes.post("/v1/projections/{name}/rebuild")
@documented(
    path=ProjectionName,
    responses={202: RebuildStarted},
    errors=(404, 409),
    roles=("admin",),
    tags=("projections",),
)
async def rebuild_projection(request: web.Request) -> web.Response:
    """Start replaying one projection from position 0 into fresh tables (admin only); 202."""
    service = request.app[PROJECTIONS]
    name = request.match_info["name"]
    projection = service.projections.get(name)
    if projection is None:
        raise not_found(f"no projection {name!r}")
    running = service.rebuilds.get(name)
    if running is not None and not running.done():
        raise Problem(409, "rebuild-running", "Rebuild running", f"{name} is already rebuilding")
    dsn = request.app[DSN]
    task = asyncio.create_task(
        rebuild(functools.partial(db.connect, dsn, name=f"coord rebuild {name}"), projection),
        name=f"rebuild-{name}",
    )
    task.add_done_callback(functools.partial(_rebuild_done, name))
    service.rebuilds[name] = task
    return web.Response(
        status=202,
        body=_encoder.encode(RebuildStarted(name=name, state="rebuilding")),
        content_type="application/json",
    )


def _rebuild_done(name: str, task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    if (error := task.exception()) is not None:
        log.error("projection.rebuild_failed", projection=name, error=repr(error))
