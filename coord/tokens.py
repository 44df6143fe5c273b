"""Issuing, listing and revoking bearer tokens. Each change is an event in `access-tokens`.

The `access_tokens` table is written in the same transaction as the event, so a
token works (or stops working) the moment its event commits. An expiry travels in the
TokenIssued event (and so to every node); `last_used_at` is this node's own record
(`token_usage`, coord/auth.py UsageRecorder), never replicated.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from coord.auth import Principal, Role, new_token, token_hash
from coord.writes import Also, Origin, Proposed, WritePath
from events.domain.access import AccessState
from events.domain.rules import DomainError
from events.domain.types import ACCESS_STREAM, TokenIssued, TokenRevoked, encode

# Who acts when tokens are managed from the command line (no token of its own).
CLI_ADMIN = Principal(token_id="cli", name="coord command line", role="admin")
CLI_ORIGIN = Origin(request_id="cli")


class TokenInfo(msgspec.Struct, kw_only=True):
    """A token as listed (never its secret)."""

    token_id: str
    name: str
    role: str
    regions: list[str]
    created_at: datetime
    created_by: str
    #: when it stops working by itself (None: until revoked)
    expires_at: datetime | None = None
    #: last authenticated use on this node (to the minute; None: never used here)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    #: why it was revoked (from its TokenRevoked event)
    revoke_reason: str | None = None


class IssuedToken(msgspec.Struct, kw_only=True):
    """A freshly issued token: the only time its secret is shown."""

    token_id: str
    name: str
    role: str
    regions: list[str]
    expires_at: datetime | None = None
    token: str


class TokenService:
    """Token management on top of the write path (access rules live in events/domain/access.py)."""

    def __init__(self, writes: WritePath) -> None:
        self._writes = writes

    async def issue(
        self,
        *,
        role: Role,
        name: str,
        regions: list[str] | None = None,
        expires_at: datetime | None = None,
        by: Principal = CLI_ADMIN,
        origin: Origin = CLI_ORIGIN,
    ) -> IssuedToken:
        """Issue a token; raises DomainError (422/409) if the grant is invalid.

        `expires_at` (timezone-aware) is checked by the access rules: later than now, at
        most two years ahead. The name must not be that of another live token (409).
        """
        token = new_token()
        token_id = uuid.uuid4()
        regions = list(regions or [])
        event = TokenIssued(
            token_id=token_id,
            name=name,
            role=role,
            regions=regions,
            created_by=by.name,
            expires_at=expires_at,
        )

        async def insert_row(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "INSERT INTO access_tokens"
                " (token_id, token_hash, name, role, regions, created_by, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                token_id,
                token_hash(token),
                name,
                role,
                regions,
                by.name,
                expires_at,
            )

        await self._write(by, event, "TokenIssued", origin, insert_row)
        return IssuedToken(
            token_id=str(token_id),
            name=name,
            role=role,
            regions=regions,
            expires_at=expires_at,
            token=token,
        )

    async def revoke(
        self,
        token_id: uuid.UUID,
        *,
        reason: str | None = None,
        by: Principal = CLI_ADMIN,
        origin: Origin = CLI_ORIGIN,
    ) -> None:
        """Revoke a token at once; every coord process drops it from its cache."""
        event = TokenRevoked(token_id=token_id, reason=reason, revoked_by=by.name)

        async def mark_revoked(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE access_tokens SET revoked_at = now(), revoked_by = $2 WHERE token_id = $1",
                token_id,
                by.name,
            )
            await conn.execute("SELECT pg_notify('coord_tokens', $1)", str(token_id))

        await self._write(by, event, "TokenRevoked", origin, mark_revoked)

    async def list(self) -> list[TokenInfo]:
        """Every token ever issued, oldest first, with its last use on this node."""
        rows = await self._writes.store.pool.fetch(
            "SELECT t.token_id::text, name, role, regions, created_at, created_by, expires_at,"
            " u.last_used_at, revoked_at, revoked_by FROM access_tokens t"
            " LEFT JOIN token_usage u ON u.token_id = t.token_id"
            " ORDER BY created_at, t.token_id"
        )
        # The reason lives in the TokenRevoked event only: fold the access stream for it.
        state = (await self._writes.load(ACCESS_STREAM)).state
        reasons: dict[str, str | None] = {}
        if isinstance(state, AccessState):
            reasons = {str(k): t.revoke_reason for k, t in state.tokens.items() if t.revoked}
        return [TokenInfo(**dict(r), revoke_reason=reasons.get(r["token_id"])) for r in rows]

    async def _write(
        self, by: Principal, event: Any, type_name: str, origin: Origin, also: Also
    ) -> None:
        # Token events are appended as the admin through the one write pipeline (access
        # rules decided on the state appended on); the token table changes in its transaction.
        admin = Principal(token_id=by.token_id, name=by.name, role="admin")
        proposed = [Proposed(type=type_name, data=encode(event))]
        try:
            await self._writes.write(
                admin, ACCESS_STREAM, proposed, "any", origin, also=also, attempts=10
            )
        except DomainError as e:
            # The event's fields are the request body's (POST /v1/tokens, the console form):
            # `$.events[0].data.name` would point into an envelope the caller never sent.
            if e.field is not None and e.field.startswith(_EVENT_ROOT):
                e.field = "$." + e.field.removeprefix(_EVENT_ROOT)
            raise


_EVENT_ROOT = "$.events[0].data."
