"""The issue aggregate (stream ``issue-<uuid>``): state, ``evolve`` and ``decide``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Literal, assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.categories import CategoryCode
from events.organizations import Organization
from events.rules import InvalidRequest, RuleViolation, field_path
from events.types import (
    IssueCategoryCorrected,
    IssueEvent,
    IssueEvidenceAdded,
    IssueRaised,
    IssueWithdrawn,
)

if TYPE_CHECKING:
    from events.domain import DecideContext

IssueStatus = Literal["open", "withdrawn"]


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Supporting material as shown on the issue."""

    description: str
    url: str | None = None
    source: str | None = None


class IssueState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything GET /v1/issues/{id} shows."""

    region_code: str
    hearing_id: UUID | None
    raised_by: Organization
    category: CategoryCode
    title: str
    description: str
    severity: int
    raised_at: datetime | None = None
    status: IssueStatus = "open"
    evidence: tuple[Evidence, ...] = ()
    withdraw_reason: str | None = None


def evolve(state: IssueState | None, event: IssueEvent) -> IssueState:
    """Apply one already-accepted event. Pure; trusts that ``decide`` allowed it."""
    if state is None:
        if not isinstance(event, IssueRaised):
            raise ValueError(f"an issue starts with IssueRaised, not {type(event).__name__}")
        return IssueState(
            region_code=event.region_code,
            hearing_id=event.hearing_id,
            raised_by=event.raised_by,
            category=event.category,
            title=event.title,
            description=event.description,
            severity=event.severity,
            raised_at=event.raised_at,
        )
    match event:
        case IssueRaised():
            raise ValueError("IssueRaised on an existing issue")
        case IssueCategoryCorrected(category=category):
            return replace(state, category=category)
        case IssueEvidenceAdded(description=description, url=url, source=source):
            evidence = Evidence(description=description, url=url, source=source)
            return replace(state, evidence=(*state.evidence, evidence))
        case IssueWithdrawn(reason=reason):
            return replace(state, status="withdrawn", withdraw_reason=reason)
        case _:
            assert_never(event)


def fold(events: Iterable[IssueEvent]) -> IssueState | None:
    """The state after ``events`` (None for an empty stream)."""
    state: IssueState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def decide(state: IssueState | None, event: IssueEvent, ctx: DecideContext) -> None:
    """Refuse ``event`` on an issue in ``state`` by raising a DomainError; return if allowed."""
    if state is None:
        if not isinstance(event, IssueRaised):
            raise RuleViolation(
                "issue.not_raised", f"no such issue: {type(event).__name__} needs one"
            )
        _check_raised(event, ctx)
        return
    if isinstance(event, IssueRaised):
        raise RuleViolation("issue.already_raised", "this issue is already raised")
    if state.status == "withdrawn":
        raise RuleViolation(
            "issue.withdrawn", f"the issue was withdrawn: {type(event).__name__} refused"
        )
    match event:
        case IssueCategoryCorrected(category=category):
            if category == state.category:
                raise RuleViolation(
                    "issue.category_unchanged", f"the issue is already filed under {category!r}"
                )
        case IssueEvidenceAdded() | IssueWithdrawn():
            pass
        case _:
            assert_never(event)


def _check_raised(event: IssueRaised, ctx: DecideContext) -> None:
    if event.region_code not in ctx.regions:
        raise InvalidRequest(
            "region.unknown",
            f"unknown region code {event.region_code!r}",
            field_path("region_code"),
        )
    if event.hearing_id is None:
        return
    hearing = ctx.hearings.get(event.hearing_id)
    # A hearing elsewhere gets the very answer of a hearing that does not exist: the
    # caller may not be allowed to learn that it exists, let alone where (issue 12).
    if hearing is None or hearing.region_code != event.region_code:
        raise InvalidRequest(
            "issue.hearing_unknown",
            f"no hearing {event.hearing_id} in region {event.region_code}",
            field_path("hearing_id"),
        )
    # A cancelled hearing heard nobody, so nothing can have been raised there.
    if hearing.status == "cancelled":
        raise RuleViolation("issue.hearing_cancelled", f"hearing {event.hearing_id} was cancelled")


def region_of(state: IssueState) -> str:
    """The region code access control checks."""
    return state.region_code
