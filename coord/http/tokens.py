"""Token management over HTTP (admin only). Secrets are shown once, at creation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from coord.apidoc import documented
from coord.auth import TOKENS, Role, principal_of
from coord.http.streams import json_response, origin_of, require_json
from coord.keys import TOKEN_SERVICE
from coord.problems import invalid
from coord.tokens import IssuedToken, TokenInfo
from events.domain.ids import CanonicalUUID, parse_canonical_uuid

routes = web.RouteTableDef()


class CreateToken(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/tokens` body."""

    role: Role
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    regions: list[str] = msgspec.field(default_factory=list)
    #: RFC 3339 with an offset; omitted: valid until revoked. Bounds: coord.tokens / access.
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class RevokeToken(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Optional `DELETE /v1/tokens/{id}` body: why the token is revoked (kept in the event)."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2_000, pattern=r"\S")] | None = (
        None
    )


class TokenList(msgspec.Struct, kw_only=True):
    """`GET /v1/tokens`."""

    items: list[TokenInfo]


class TokenPath(msgspec.Struct):
    """Path of token routes (a token id in lowercase canonical form)."""

    token_id: CanonicalUUID


_create = msgspec.json.Decoder(CreateToken)


@routes.post("/v1/tokens")
@documented(
    body=CreateToken,
    responses={201: IssuedToken},
    # 409: the name is that of a live token (token.name_taken, field $.name)
    errors=(409, 421),
    roles=("admin",),
    tags=("tokens",),
)
async def create_token(request: web.Request) -> web.Response:
    """Issue a token (201); the response is the only place its secret appears."""
    admin = principal_of(request)
    require_json(request)
    body = _create.decode(await request.read())
    issued = await request.app[TOKEN_SERVICE].issue(
        role=body.role,
        name=body.name,
        regions=body.regions,
        expires_at=body.expires_at,
        by=admin,
        origin=origin_of(request),
    )
    return json_response(issued, status=201)


@routes.get("/v1/tokens")
@documented(responses={200: TokenList}, roles=("admin",), tags=("tokens",))
async def list_tokens(request: web.Request) -> web.Response:
    """Every token issued, with its state (never its secret)."""
    return json_response({"items": await request.app[TOKEN_SERVICE].list()})


@routes.delete("/v1/tokens/{token_id:[^/]+}")
@documented(
    path=TokenPath,
    body=RevokeToken,
    body_required=False,
    responses={204: None},
    errors=(409, 421),
    roles=("admin",),
    tags=("tokens",),
)
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token; it stops working at once (204)."""
    admin = principal_of(request)
    token_id = parse_canonical_uuid(request.match_info["token_id"])
    if token_id is None:
        raise invalid("token id must be a UUID in lowercase canonical form", "path.token_id")
    reason = None
    # `read()`, not `can_read_body`: a middleware has already read (and cached) the body.
    if raw := await request.read():
        reason = msgspec.json.decode(raw, type=RevokeToken).reason
    await request.app[TOKEN_SERVICE].revoke(
        token_id, reason=reason, by=admin, origin=origin_of(request)
    )
    # The NOTIFY reaches this process too, but later: the next request must already fail.
    request.app[TOKENS].forget([str(token_id)])
    return web.Response(status=204)
