"""The issue aggregate (stream ``issue-<uuid>``): state, ``evolve`` and ``decide``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, assert_never

from msgspec.structs import replace

from events.domain import timing
from events.domain.corrections import changes, check_changes, check_corrector
from events.domain.rules import InvalidRequest, RuleViolation, field_path
from events.domain.states import Correction, Evidence, IssueState
from events.domain.types import (
    IssueCategoryCorrected,
    IssueCorrected,
    IssueEvent,
    IssueEvidenceAdded,
    IssueRaised,
    IssueWithdrawn,
)

if TYPE_CHECKING:
    from events.domain.context import DecideContext

_CORRECTABLE = ("title", "description", "severity", "raised_at")


def _proposed(event: IssueCorrected) -> dict[str, object]:
    return {name: getattr(event, name) for name in _CORRECTABLE}


def _current(state: IssueState) -> dict[str, object]:
    return {name: getattr(state, name) for name in _CORRECTABLE}


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
    version = state.version + 1
    state = replace(state, version=version)
    match event:
        case IssueRaised():
            raise ValueError("IssueRaised on an existing issue")
        case IssueCategoryCorrected(category=category, reason=reason):
            fix = Correction(
                type="IssueCategoryCorrected",
                reason=reason,
                version=version,
                changes=changes({"category": state.category}, {"category": category}),
            )
            return replace(
                state,
                category=category,
                corrected=tuple(sorted({*state.corrected, "category"})),
                corrections=(*state.corrections, fix),
            )
        case IssueCorrected(reason=reason):
            proposed = _proposed(event)
            fix = Correction(
                type="IssueCorrected",
                reason=reason,
                version=version,
                changes=changes(_current(state), proposed),
            )
            return replace(
                state,
                **{k: v for k, v in proposed.items() if v is not None},
                corrected=tuple(sorted({*state.corrected, *fix.changes})),
                corrections=(*state.corrections, fix),
            )
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
            check_corrector(ctx, 1, "the issue")
            if category == state.category:
                raise RuleViolation(
                    "issue.category_unchanged", f"the issue is already filed under {category!r}"
                )
        case IssueCorrected():
            check_corrector(ctx, 1, "the issue")
            check_changes(_current(state), _proposed(event))
            timing.not_in_future(event.raised_at, ctx, "raised_at")
        case IssueWithdrawn():
            # Withdrawing is the recording office's call, like a correction.
            check_corrector(ctx, 1, "the issue")
        case IssueEvidenceAdded():
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
    timing.not_in_future(event.raised_at, ctx, "raised_at")
    if event.hearing_id is None:
        if ctx.actor_role == "national":
            # Wantannas records issues raised at hearings; regions raise their own otherwise.
            raise InvalidRequest(
                "issue.national_needs_hearing",
                "a national token raises issues on a hearing: give hearing_id",
                field_path("hearing_id"),
            )
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
    if event.raised_at is not None:
        timing.raised_after_hearing(
            event.raised_at, hearing.scheduled_at, hearing.held_at, "raised_at"
        )


def region_of(state: IssueState) -> str:
    """The region code access control checks."""
    return state.region_code
