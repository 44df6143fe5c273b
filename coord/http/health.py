"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from coord.db import pending_migrations
from coord.keys import POOL

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """The database answers and every migration is applied."""
    try:
        async with asyncio.timeout(2), request.app[POOL].acquire() as conn:
            missing = await pending_migrations(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return web.json_response({"status": "unavailable", "database": str(e)}, status=503)
    if missing:
        return web.json_response({"status": "migrating", "pending": missing}, status=503)
    return web.json_response({"status": "ready"})
