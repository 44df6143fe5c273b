"""Administrator pages: tokens (issue, shown once; list; revoke with a reason), the
projections' status with a rebuild button, and federation status. Tokens go through the
same TokenService as `/v1/tokens`, a rebuild through the API's own rebuild handler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from coord import federation
from coord.auth import ROLES, principal_of
from coord.console.actions import form_values
from coord.console.frame import page, render, see_other, translator
from coord.console.refusals import refusal
from coord.http.projections import rebuild_projection
from coord.http.streams import origin_of
from coord.keys import POOL, PROJECTIONS, TOKEN_SERVICE
from coord.middlewares import problem_for
from coord.problems import Problem, invalid
from projections.checkpoints import status

routes = web.RouteTableDef()


async def _tokens_page(
    request: web.Request,
    *,
    issued: Any = None,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> web.Response:
    tokens = await request.app[TOKEN_SERVICE].list()
    return render(
        request,
        "tokens.html",
        {
            "tokens": sorted(tokens, key=lambda i: i.created_at, reverse=True),
            "now": datetime.now(UTC),
            "roles": ROLES,
            "issued": issued,
            "v": values or {"role": "regional"},
            "error": error,
        },
        status=status_code,
    )


@routes.get("/admin/token")
@page("admin")
async def tokens(request: web.Request) -> web.StreamResponse:
    """Every token with its state; the form to issue one."""
    return await _tokens_page(request)


def _expiry(days: str) -> datetime | None:
    """The form's "valid for N days" as an instant; empty: until revoked. The upper bound
    is the access rule's (731 days); here only what is not a whole number of days."""
    if not days:
        return None
    if not days.isdecimal() or len(days) > 6 or int(days) < 1:
        raise invalid("expires_days must be a whole number of days, at least 1", "expires_days")
    return datetime.now(UTC) + timedelta(days=int(days))


@routes.post("/admin/token")
@page("admin")
async def issue_token(request: web.Request) -> web.StreamResponse:
    """Issue a token: the answer is the only page that ever shows its secret."""
    values = form_values(await request.post())
    role = values.get("role", "")
    name = values.get("name", "").strip()
    regions = [r for r in values.get("regions", "").replace(",", " ").split() if r]
    try:
        if role not in ROLES:
            raise invalid(f"role must be one of {', '.join(ROLES)}", "role")
        if not 1 <= len(name) <= 200:
            raise invalid("name must have 1 to 200 characters", "name")
        expires_at = _expiry(values.get("expires_days", "").strip())
        issued = await request.app[TOKEN_SERVICE].issue(
            role=role,
            name=name,
            regions=regions,
            expires_at=expires_at,
            by=principal_of(request),
            origin=origin_of(request),
        )
    except Exception as e:
        problem = problem_for(e)
        if problem is None:
            raise
        error = refusal(translator(request), problem)
        return await _tokens_page(request, values=values, error=error, status_code=problem.status)
    return await _tokens_page(request, issued=issued, status_code=201)


@routes.post("/admin/token/{id}/cabut")
@page("admin")
async def revoke_token(request: web.Request) -> web.StreamResponse:
    """Revoke a token at once (its console sessions end with it)."""
    try:
        token_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise invalid("token id must be a UUID", "path.id") from None
    values = form_values(await request.post())
    await request.app[TOKEN_SERVICE].revoke(
        token_id,
        reason=values.get("reason", "").strip() or None,
        by=principal_of(request),
        origin=origin_of(request),
    )
    return see_other("/admin/token")


@routes.get("/admin/proyeksi")
@page("admin", "national", "auditor")
async def projections_status(request: web.Request) -> web.StreamResponse:
    """Each read model's position, lag and state (as `GET /v1/projections`)."""
    return await _projections_page(request)


async def _projections_page(
    request: web.Request, *, error: str | None = None, status_code: int = 200
) -> web.Response:
    rows = await status(request.app[POOL], sorted(request.app[PROJECTIONS].projections))
    rebuilding = request.query.get("dibangun")
    known = request.app[PROJECTIONS].projections
    return render(
        request,
        "projections.html",
        {
            "rows": rows,
            "error": error,
            "rebuilding": rebuilding if rebuilding in known else None,
        },
        status=status_code,
    )


@routes.post("/admin/proyeksi/{name}/bangun-ulang")
@page("admin")
async def rebuild(request: web.Request) -> web.StreamResponse:
    """Start a projection's rebuild: the same handler as `POST /v1/projections/{name}/rebuild`."""
    try:
        await rebuild_projection(request)
    except Problem as problem:
        if problem.status != 409:
            raise  # an unknown name is a 404 page, as in the API
        message = translator(request)("proj.rebuild_running", name=request.match_info["name"])
        return await _projections_page(request, error=message, status_code=409)
    return see_other("/admin/proyeksi?" + urlencode({"dibangun": request.match_info["name"]}))


@routes.get("/admin/federasi")
@page("admin", "national", "auditor")
async def federation_status(request: web.Request) -> web.StreamResponse:
    """This node, its replication links and the directory (as `GET /v1/federation`)."""
    return render(request, "federation.html", {"fed": await federation.status(request.app[POOL])})
