"""Current (or as-of) state of one hearing, issue or recommendation, folded from its stream."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from coord.auth import principal_of
from coord.http.params import int_param
from coord.http.streams import json_response
from coord.keys import WRITES
from coord.problems import invalid, not_found

routes = web.RouteTableDef()


def _as_of(request: web.Request) -> datetime | None:
    raw = request.query.get("as_of")
    if not raw:
        return None
    try:
        value = msgspec.convert(raw, datetime, strict=False)
    except msgspec.ValidationError:
        raise invalid("as_of must be an RFC 3339 time with a timezone", "query.as_of") from None
    if value.tzinfo is None:
        raise invalid("as_of must carry a timezone (e.g. Z or +07:00)", "query.as_of")
    return value


async def _aggregate(request: web.Request, category: str) -> web.Response:
    raw_id = request.match_info["id"]
    try:
        entity_id = uuid.UUID(raw_id)
    except ValueError:
        raise invalid(f"{category} id must be a UUID", "path.id") from None
    as_of = _as_of(request)
    as_of_version = int_param(request, "as_of_version", 0, minimum=1) or None
    loaded = await request.app[WRITES].load(
        f"{category}-{entity_id}", as_of=as_of, as_of_version=as_of_version
    )
    principal = principal_of(request)
    # Another region's object is answered exactly as a missing one (at any `as_of`), so
    # neither its existence nor its creation time can be probed.
    if loaded.state is None or (
        principal.role == "regional" and not principal.covers(loaded.region_code)
    ):
        raise not_found(f"no {category} {entity_id}" + (" at that time" if as_of else ""))
    body: dict[str, Any] = {"id": str(entity_id), "version": loaded.version}
    body.update(msgspec.to_builtins(loaded.state))
    if loaded.events:
        body["updated_at"] = loaded.events[-1].recorded_at.isoformat()
    return json_response(body)


@routes.get("/v1/hearings/{id}")
async def get_hearing(request: web.Request) -> web.Response:
    """A hearing's state; `?as_of=<time>` or `?as_of_version=N` for an earlier one."""
    return await _aggregate(request, "hearing")


@routes.get("/v1/issues/{id}")
async def get_issue(request: web.Request) -> web.Response:
    """An issue's state; `?as_of=<time>` or `?as_of_version=N` for an earlier one."""
    return await _aggregate(request, "issue")


@routes.get("/v1/recommendations/{id}")
async def get_recommendation(request: web.Request) -> web.Response:
    """A recommendation's state; `?as_of=<time>` or `?as_of_version=N` for an earlier one."""
    return await _aggregate(request, "recommendation")
