"""The access-token aggregate (the single stream ``access-tokens``).

Token secrets never enter the log; events only say which token id may do what, where.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.domain.rules import InvalidRequest, RuleViolation, field_path
from events.domain.types import AccessEvent, TokenIssued, TokenRevoked, TokenRole

if TYPE_CHECKING:
    from events.domain.context import DecideContext

#: The longest a token may be issued for: a forgotten grant must lapse in bounded time.
MAX_TOKEN_LIFETIME: Final = timedelta(days=731)


def name_key(name: str) -> str:
    """The form in which token names are compared: case and runs of spaces do not count.

    "KPU Kota Kediri" and "kpu  kota kediri" would be told apart by nobody reading a list.
    """
    return " ".join(name.split()).casefold()


class TokenState(msgspec.Struct, frozen=True, kw_only=True):
    """One token's grant and whether it still holds."""

    token_id: UUID
    name: str
    role: TokenRole
    regions: tuple[str, ...]
    created_by: str
    #: when it stops working by itself (None: never)
    expires_at: datetime | None = None
    revoked: bool = False
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def live(self, now: datetime | None) -> bool:
        """Neither revoked nor (when ``now`` is known) expired."""
        if self.revoked:
            return False
        return now is None or self.expires_at is None or self.expires_at > now


class AccessState(msgspec.Struct, frozen=True, kw_only=True):
    """Every token ever issued, by id. ``evolve`` copies the dict, never mutates it."""

    tokens: dict[UUID, TokenState] = msgspec.field(default_factory=dict)

    def active(self, token_id: UUID, now: datetime | None = None) -> TokenState | None:
        """The token if it was issued, is not revoked and (given ``now``) has not expired."""
        token = self.tokens.get(token_id)
        return token if token is not None and token.live(now) else None


def evolve(state: AccessState | None, event: AccessEvent) -> AccessState:
    """Apply one already-accepted event. Pure; trusts that ``decide`` allowed it."""
    tokens = dict(state.tokens) if state is not None else {}
    match event:
        case TokenIssued():
            tokens[event.token_id] = TokenState(
                token_id=event.token_id,
                name=event.name,
                role=event.role,
                regions=tuple(event.regions),
                created_by=event.created_by,
                expires_at=event.expires_at,
            )
        case TokenRevoked(token_id=token_id, reason=reason, revoked_by=revoked_by):
            tokens[token_id] = replace(
                tokens[token_id], revoked=True, revoked_by=revoked_by, revoke_reason=reason
            )
        case _:
            assert_never(event)
    return AccessState(tokens=tokens)


def fold(events: Iterable[AccessEvent]) -> AccessState | None:
    """The state after ``events`` (None for an empty stream)."""
    state: AccessState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def decide(state: AccessState | None, event: AccessEvent, ctx: DecideContext) -> None:
    """Refuse ``event`` on the token registry by raising a DomainError; return if allowed."""
    tokens = state.tokens if state is not None else {}
    match event:
        case TokenIssued():
            if event.token_id in tokens:
                raise RuleViolation("token.already_issued", f"token {event.token_id} exists")
            if event.role == "regional" and not event.regions:
                raise InvalidRequest(
                    "token.regions_required",
                    "a regional token names its regions",
                    field_path("regions"),
                )
            # National, auditor and admin roles see everything; regions would mislead.
            if event.role != "regional" and event.regions:
                raise InvalidRequest(
                    "token.regions_not_allowed",
                    f"a {event.role} token has no regions",
                    field_path("regions"),
                )
            for index, code in enumerate(event.regions):
                if code not in ctx.regions:
                    raise InvalidRequest(
                        "region.unknown",
                        f"unknown region code {code!r}",
                        field_path("regions", index),
                    )
            _decide_expiry(event, ctx.now)
            # Among live tokens only: a revoked or lapsed holder's name is free again, so
            # "KPU Kota Kediri" can be re-issued after its laptop is lost.
            key = name_key(event.name)
            if any(t.live(ctx.now) and name_key(t.name) == key for t in tokens.values()):
                raise RuleViolation(
                    "token.name_taken",
                    f"a live token is already named {event.name!r}; revoke it or pick another name",
                    field_path("name"),
                )
        case TokenRevoked(token_id=token_id):
            token = tokens.get(token_id)
            if token is None:
                raise InvalidRequest(
                    "token.unknown", f"no token {token_id}", field_path("token_id")
                )
            if token.revoked:
                raise RuleViolation("token.already_revoked", f"token {token_id} is revoked")
        case _:
            assert_never(event)


def _decide_expiry(event: TokenIssued, now: datetime | None) -> None:
    """Refuse an expiry already past or beyond MAX_TOKEN_LIFETIME (unchecked without a clock)."""
    if event.expires_at is None or now is None:
        return
    if event.expires_at <= now:
        raise InvalidRequest(
            "token.expiry_past",
            f"expires_at {event.expires_at.isoformat()} is not later than now",
            field_path("expires_at"),
        )
    if event.expires_at > now + MAX_TOKEN_LIFETIME:
        raise InvalidRequest(
            "token.expiry_too_far",
            f"expires_at is more than {MAX_TOKEN_LIFETIME.days} days ahead",
            field_path("expires_at"),
        )


def region_of(state: AccessState) -> None:
    """The token registry is not regional: only admins reach it."""
    return None
