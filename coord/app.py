"""The application factory: everything wired explicitly, nothing at import time."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import structlog
from aiohttp import web

from coord import db, federation
from coord.audit import audit_ctx
from coord.auth import TOKENS, TokenCache, authenticate
from coord.availability import Availability, probe_for
from coord.config import Config
from coord.console import setup_console
from coord.demo import banner, load_demo, read_tokens
from coord.durability import read_durability
from coord.embedded import EmbeddedPostgres
from coord.http import aggregates, feed, health, regions, streams, tokens, views, vocabulary
from coord.http import audit as audit_http
from coord.http import cloudevents as cloudevents_http
from coord.http import federation as federation_http
from coord.http import openapi as openapi_http
from coord.http import projections as projection_http
from coord.keys import (
    AVAILABILITY,
    CONFIG,
    DSN,
    DURABILITY,
    LOG_READER,
    NODE,
    POOL,
    REGIONS,
    SEARCH_HINTS,
    STORE,
    TOKEN_SERVICE,
    WRITES,
)
from coord.metrics import METRICS, Metrics
from coord.middlewares import deadline, intake, problems, rate_limit, request_context
from coord.ratelimit import RATE_LIMITS, RateLimits
from coord.tokens import TokenService
from coord.writes import WritePath
from events.domain.regions import load_regions
from events.store.log_head import LogHead
from events.store.log_reader import LogReader
from events.store.sequencer import Sequencer
from events.store.store import EventStore
from projections.search import SearchHints

log = structlog.get_logger("coord.app")

BACKGROUND = web.AppKey("background_tasks", list[asyncio.Task[None]])


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Find (or start) PostgreSQL, migrate, open the pool; undo it all on shutdown."""
    config = app[CONFIG]
    embedded: EmbeddedPostgres | None = None
    dsn = config.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(config.home / "pgdata")
        dsn = await asyncio.to_thread(embedded.start)
        log.info("embedded_postgres.started", pgdata=str(embedded.pgdata))
    app[DSN] = dsn
    try:
        conn = await db.connect(dsn)
        try:
            # Before anything is written: a server that may lose a 201 is refused.
            app[DURABILITY] = await read_durability(
                conn, allow_unsafe=config.allow_unsafe_durability
            )
            if app[DURABILITY].unsafe:
                log.warning("durability.unsafe_allowed", unsafe=app[DURABILITY].unsafe)
            await db.migrate(conn)
            app[NODE] = await federation.ensure_identity(
                conn, node_id=config.node_id, mode=config.mode, regions=config.regions
            )
        finally:
            await conn.close()
        app[POOL] = await db.create_pool(
            dsn, min_size=config.pool_min_size, max_size=config.pool_max_size
        )
        app[AVAILABILITY] = Availability(
            probe_for(functools.partial(db.connect, dsn, name="coord probe"))
        )
        try:
            yield
        finally:
            await app[AVAILABILITY].close()
            await app[POOL].close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def spawn(app: web.Application, coro: Coroutine[Any, Any, None], name: str) -> None:
    """Run a background task for the app's lifetime (cancelled and awaited on shutdown)."""
    app[BACKGROUND].append(asyncio.create_task(coro, name=name))


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The event store with its log head follower and (competing) sequencer."""
    config = app[CONFIG]
    tokens = TokenCache(app[POOL], lifetime=config.token_cache_lifetime)
    app[TOKENS] = tokens
    head = LogHead(
        functools.partial(db.connect, app[DSN], name="coord log-head"),
        listeners={"coord_tokens": tokens.on_notify},
        on_listen=[tokens.clear],
    )
    sequencer = Sequencer(functools.partial(db.connect, app[DSN], name="coord sequencer"), head)
    app[STORE] = EventStore(
        app[POOL], head, sequencer, sequencing_timeout=config.sequencing_timeout
    )
    app[REGIONS] = load_regions()
    unknown = [r for r in app[NODE].regions if r not in app[REGIONS]]
    if unknown:
        raise federation.FederationError(f"unknown region codes: {', '.join(unknown)}")
    app[WRITES] = WritePath(app[STORE], app[REGIONS], node=app[NODE])
    app[TOKEN_SERVICE] = TokenService(app[WRITES])
    app[LOG_READER] = LogReader(
        functools.partial(db.connect, app[DSN], name="coord log-reader"),
        integrity=head.integrity,
    )
    app[BACKGROUND] = []
    spawn(app, head.run(), "log-head")
    spawn(app, tokens.usage.run(), "token-usage")
    if config.sequence:
        spawn(app, sequencer.run(), "sequencer")
    if config.background and app[NODE].mode != "standalone":
        spawn(app, federation.watch_conflicts(app[POOL]), "federation-conflicts")
    try:
        yield
    finally:
        tasks = app[BACKGROUND]
        for task in tasks:
            task.cancel()
        # Shutdown must finish whatever state a task died in; say what it was.
        for task, outcome in zip(
            tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True
        ):
            if isinstance(outcome, Exception):
                log.warning("background_task.failed", task=task.get_name(), error=repr(outcome))
        await app[LOG_READER].close()


async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """In demo mode: load the demo data set once, and print the demo tokens."""
    config = app[CONFIG]
    if config.demo and app[NODE].mode != "standalone":
        # The demo writes hearings in many regions and national streams: one node's
        # share of them would be refused, so a federated node starts empty.
        log.warning("demo.skipped", reason=f"{app[NODE].mode} node")
    elif config.demo:
        await load_demo(app[WRITES], app[TOKEN_SERVICE], config.home)
        tokens = read_tokens(config.home)
        if tokens is not None:
            print(banner(tokens), file=sys.stderr, flush=True)
    yield


def create_app(config: Config) -> web.Application:
    """Build the coord web application for `config`."""
    metrics = Metrics()
    app = web.Application(
        client_max_size=config.max_body_bytes,
        # Outermost first: count, identify, map errors, bound the time, authenticate (bad
        # tokens throttled per address), throttle per token, then read the body in time.
        middlewares=[
            metrics.middleware,
            request_context,
            problems,
            deadline,
            authenticate,
            rate_limit,
            intake,
        ],
    )
    app[CONFIG] = config
    app[RATE_LIMITS] = RateLimits(config)
    app[SEARCH_HINTS] = SearchHints()
    app[health.READINESS] = health.Readiness()
    app[METRICS] = metrics
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(demo_ctx)
    app.add_routes(health.routes)
    app.add_routes(streams.routes)
    app.add_routes(aggregates.routes)
    app.add_routes(vocabulary.routes)
    app.add_routes(regions.routes)
    app.add_routes(tokens.routes)
    app.cleanup_ctx.append(projection_http.projections_ctx)
    app.add_routes(projection_http.routes)
    app.add_routes(views.routes)
    app.add_routes(feed.routes)
    app.router.add_get("/metrics", metrics.handle)
    app.add_routes(cloudevents_http.routes)
    app.add_routes(openapi_http.routes)
    app.cleanup_ctx.append(audit_ctx)
    app.add_routes(audit_http.routes)
    app.add_routes(federation_http.routes)
    federation_http.export_metrics(app)
    setup_console(app)
    return app
