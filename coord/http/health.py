"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
from aiohttp import web

from coord.db import pending_migrations
from coord.keys import DURABILITY, POOL, STORE

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
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
    try:
        async with asyncio.timeout(2), request.app[POOL].acquire() as conn:
            missing = await pending_migrations(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return web.json_response({"status": "unavailable", "database": str(e)}, status=503)
    if missing:
        return web.json_response({"status": "migrating", "pending": missing}, status=503)
    return web.json_response({"status": "ready", "durability": durability})
