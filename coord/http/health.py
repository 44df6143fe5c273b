"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Literal

import asyncpg
import msgspec
from aiohttp import web

from coord.apidoc import documented
from coord.db import pending_migrations
from coord.keys import DURABILITY, POOL, STORE

routes = web.RouteTableDef()

# /readyz answers within this many seconds, whatever state PostgreSQL is in.
READY_TIMEOUT_SECONDS = 2.0


class Readiness:
    """The readiness probe in flight, shared by concurrent `/readyz` calls.

    On a hung database at most one probe waits (and holds a pool connection) at a
    time, however often the orchestrator asks.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[list[str]] | None = None

    def probe(self, pool: asyncpg.Pool) -> asyncio.Task[list[str]]:
        """The running probe, or a new one: the migrations still pending."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(_pending(pool), name="readiness-probe")
        return self._task


READINESS = web.AppKey("readiness", Readiness)


class HealthStatus(msgspec.Struct, kw_only=True):
    """`/healthz` and `/readyz`."""

    status: Literal["ok", "ready", "unavailable", "migrating"]
    database: str | None = None
    pending: list[str] | None = None


async def _pending(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return await pending_migrations(conn)


@routes.get("/healthz")
@documented(responses={200: HealthStatus}, tags=("health",))
async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@documented(responses={200: HealthStatus, 503: HealthStatus}, tags=("health",))
async def readyz(request: web.Request) -> web.Response:
    """The database answers, every migration is applied, and nothing it held was lost.

    `durability` shows the server settings coord read at start (and which are unsafe).
    """
    durability = msgspec.to_builtins(request.app[DURABILITY])
    integrity = request.app[STORE].head.integrity
    if integrity.lost is not None:
        # The database lost what this process had cached or signed: an operator decides.
        body = {"status": "data_lost", "reason": integrity.lost, **integrity.details}
        return web.json_response({**body, "durability": durability}, status=503)
    task = request.app[READINESS].probe(request.app[POOL])
    # Waiting on the task (not cancelling it) bounds the answer: asyncpg's cleanup of a
    # cancelled query can itself hang on a frozen server.
    done, _ = await asyncio.wait({task}, timeout=READY_TIMEOUT_SECONDS)
    if not done:
        return web.json_response(
            {"status": "unavailable", "database": "no answer within 2 s"},
            status=503,
            headers={"Retry-After": "5"},
        )
    try:
        missing = task.result()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return web.json_response(
            {"status": "unavailable", "database": type(e).__name__},
            status=503,
            headers={"Retry-After": "5"},
        )
    if missing:
        return web.json_response({"status": "migrating", "pending": missing}, status=503)
    return web.json_response({"status": "ready", "durability": durability})
