"""Bearer tokens, roles and region scope.

Roles: `regional` (bound to region codes; a province code covers its regencies),
`national`, `auditor`, `admin`. Tokens are 256-bit random strings, shown once and
stored only as a SHA-256 hash (they carry full entropy, so a slow hash buys nothing).
Issuing and revoking are events in the `access-tokens` stream; the `access_tokens`
table is their synchronous projection, written in the same transaction, so a
revocation holds from the moment it commits. Each process caches lookups and
drops a token from its cache on the `coord_tokens` notification sent by the
revoking transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

import asyncpg
import msgspec
from aiohttp import web

from coord.problems import Problem
from coord.ratelimit import RATE_LIMITS, client_key, too_many
from events.regions import Regions, covers, load_regions

Role = Literal["regional", "national", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("regional", "national", "auditor", "admin")
TOKEN_PREFIX = "coord_"

# Paths anyone may call without a token.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/openapi.json"})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a token's id, name, role and (for `regional`) region codes."""

    token_id: str
    name: str
    role: Role
    regions: tuple[str, ...] = ()

    def covers(self, region_code: str | None) -> bool:
        """May this caller see (and, by role, write) data of `region_code`?"""
        if self.role != "regional":
            return True
        return region_code is not None and covers(self.regions, region_code)

    def region_scope(self, regions: Regions | None = None) -> list[str] | None:
        """Every region code this caller may see, expanded (None: all of them)."""
        if self.role != "regional":
            return None
        regions = regions or load_regions()
        codes: set[str] = set()
        for code in self.regions:
            codes.add(code)
            codes.update(r.code for r in regions.children(code))
        return sorted(codes)

    def actor(self) -> dict[str, str]:
        """The actor stamped into event metadata."""
        return {"token_id": self.token_id, "name": self.name, "role": self.role}


def new_token() -> str:
    """A fresh bearer token: 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_id() -> str:
    """A token's public id (shown in lists and in event metadata)."""
    return str(uuid.uuid4())


_LOOKUP = (
    "SELECT token_id::text, name, role, regions FROM access_tokens "
    "WHERE token_hash = $1 AND revoked_at IS NULL"
)


class TokenCache:
    """Principal by token hash, with explicit invalidation on revocation."""

    def __init__(self, pool: asyncpg.Pool, *, max_entries: int = 10_000) -> None:
        self._pool = pool
        self._by_hash: dict[str, Principal] = {}
        self._max = max_entries
        # Bumped by every forget: a lookup that raced a revocation does not cache its row.
        self._generation = 0

    async def principal(self, token: str) -> Principal | None:
        """The principal for a bearer token, or None if unknown or revoked."""
        digest = token_hash(token)
        found = self._by_hash.get(digest)
        if found is not None:
            return found
        generation = self._generation
        row = await self._pool.fetchrow(_LOOKUP, digest)
        if row is None:
            return None
        principal = Principal(
            token_id=row["token_id"],
            name=row["name"],
            role=row["role"],
            regions=tuple(row["regions"]),
        )
        if generation != self._generation:
            return principal  # a revocation landed meanwhile: answer, but do not cache
        if len(self._by_hash) >= self._max:
            self._by_hash.clear()
        self._by_hash[digest] = principal
        return principal

    def cached(self, token: str) -> Principal | None:
        """The principal for a token this process has already verified (no database)."""
        return self._by_hash.get(token_hash(token))

    def forget(self, token_ids: Iterable[str]) -> None:
        """Drop cached entries of these token ids (called when they are revoked)."""
        gone = set(token_ids)
        self._generation += 1
        for digest, principal in list(self._by_hash.items()):
            if principal.token_id in gone:
                del self._by_hash[digest]

    def on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """asyncpg listener for `coord_tokens`: payload is a revoked token id."""
        self.forget([payload])


TOKENS = web.AppKey("tokens", TokenCache)
PRINCIPAL = web.RequestKey("principal", Principal)


def unauthorized(detail: str) -> Problem:
    """401 with the challenge header."""
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="coord"'},
    )


def forbidden(detail: str) -> Problem:
    """403: authenticated, but not allowed to do this."""
    return Problem(403, "forbidden", "Forbidden", detail)


@web.middleware
async def authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Resolve `Authorization: Bearer <token>` into the request's principal; 401 if not."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    # Requests without a valid token draw on a strict bucket per client address, checked
    # before the token is looked up: guessing tokens is slow, and costs no database work.
    # A token already verified here still passes, so that a valid caller sharing an
    # address (NAT, proxy) with a token guesser is not locked out.
    bucket = request.app[RATE_LIMITS].unauthenticated
    client = client_key(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if (wait := bucket.wait(client)) and (
        scheme.lower() != "bearer" or not token or request.app[TOKENS].cached(token) is None
    ):
        raise too_many(wait, "too many requests without a valid token from this address")
    if scheme.lower() != "bearer" or not token:
        bucket.take(client)
        raise unauthorized("send `Authorization: Bearer <token>`")
    principal = await request.app[TOKENS].principal(token)
    if principal is None:
        bucket.take(client)
        raise unauthorized("the token is unknown or revoked")
    request[PRINCIPAL] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller of this request."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None:  # only on public paths, which never ask
        raise unauthorized("send `Authorization: Bearer <token>`")
    return principal


def require_role(request: web.Request, *roles: Role) -> Principal:
    """The caller, if their role is one of `roles`; else 403."""
    principal = principal_of(request)
    if principal.role not in roles:
        raise forbidden(
            f"this needs one of the roles {', '.join(roles)}; the token is {principal.role}"
        )
    return principal
