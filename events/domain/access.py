"""The access-token aggregate (the single stream ``access-tokens``).

Token secrets never enter the log; events only say which token id may do what, where.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.domain.rules import InvalidRequest, RuleViolation, field_path
from events.domain.types import AccessEvent, TokenIssued, TokenRevoked, TokenRole

if TYPE_CHECKING:
    from events.domain.dispatch import DecideContext


class TokenState(msgspec.Struct, frozen=True, kw_only=True):
    """One token's grant and whether it still holds."""

    token_id: UUID
    name: str
    role: TokenRole
    regions: tuple[str, ...]
    created_by: str
    revoked: bool = False
    revoked_by: str | None = None
    revoke_reason: str | None = None


class AccessState(msgspec.Struct, frozen=True, kw_only=True):
    """Every token ever issued, by id. ``evolve`` copies the dict, never mutates it."""

    tokens: dict[UUID, TokenState] = msgspec.field(default_factory=dict)

    def active(self, token_id: UUID) -> TokenState | None:
        """The token if it was issued and not revoked."""
        token = self.tokens.get(token_id)
        return token if token is not None and not token.revoked else None


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


def region_of(state: AccessState) -> None:
    """The token registry is not regional: only admins reach it."""
    return None
