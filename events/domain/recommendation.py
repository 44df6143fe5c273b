"""The recommendation aggregate (stream ``recommendation-<uuid>``).

Lifecycle: draft -> approved -> submitted -> responded (any number of responses), and
closed from any state. Content (title, body, addressee, cited issues) may change until
submission; changing an *approved* recommendation sends it back to draft, because the
approval was given to the earlier text and must be given again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.domain import timing
from events.domain.accountability import closing_outcome, response_due
from events.domain.rules import InvalidRequest, RuleViolation, field_path
from events.domain.types import (
    IssuesCited,
    IssueUncited,
    ProgressReported,
    RecommendationApproved,
    RecommendationClosed,
    RecommendationDrafted,
    RecommendationEvent,
    RecommendationRevised,
    RecommendationSubmitted,
    ResponseRecorded,
)

if TYPE_CHECKING:
    from events.domain.context import DecideContext

RecommendationStatus = Literal["draft", "approved", "submitted", "responded", "closed"]


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """An answer from the addressee."""

    responder: str
    text: str
    received_at: datetime
    outcome: str | None = None


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """A progress report on carrying out the recommendation."""

    percent: int
    note: str
    evidence_url: str | None = None
    #: the effective time (the report's ``reported_at``, else when it was recorded)
    reported_at: datetime | None = None


class RecommendationState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything GET /v1/recommendations/{id} shows."""

    title: str
    body: str
    addressee: str
    issue_ids: tuple[UUID, ...] = ()
    status: RecommendationStatus = "draft"
    approved_by: str | None = None
    submitted_to: str | None = None
    submitted_at: datetime | None = None
    responses: tuple[Response, ...] = ()
    outcome: str | None = None
    revision: int = 0
    #: when an answer is due (given at submission, else 30 days after it)
    response_due_at: datetime | None = None
    #: what came of it: accepted, partly_accepted, rejected (the answer's), no_response
    response_outcome: str | None = None
    progress: tuple[Progress, ...] = ()
    #: the latest progress report's percent
    progress_percent: int | None = None


def evolve(state: RecommendationState | None, event: RecommendationEvent) -> RecommendationState:
    """Apply one already-accepted event. Pure; trusts that ``decide`` allowed it."""
    if state is None:
        if not isinstance(event, RecommendationDrafted):
            raise ValueError(
                f"a recommendation starts with RecommendationDrafted, not {type(event).__name__}"
            )
        return RecommendationState(
            title=event.title,
            body=event.body,
            addressee=event.addressee,
            issue_ids=tuple(dict.fromkeys(event.issue_ids)),
        )
    match event:
        case RecommendationDrafted():
            raise ValueError("RecommendationDrafted on an existing recommendation")
        case IssuesCited(issue_ids=ids):
            return _back_to_draft(
                replace(state, issue_ids=tuple(dict.fromkeys((*state.issue_ids, *ids))))
            )
        case IssueUncited(issue_id=issue_id):
            remaining = tuple(i for i in state.issue_ids if i != issue_id)
            return _back_to_draft(replace(state, issue_ids=remaining))
        case RecommendationRevised(title=title, body=body, addressee=addressee):
            revised = replace(
                state,
                title=title if title is not None else state.title,
                body=body if body is not None else state.body,
                addressee=addressee if addressee is not None else state.addressee,
                revision=state.revision + 1,
            )
            return _back_to_draft(revised)
        case RecommendationApproved(approved_by=approved_by):
            return replace(state, status="approved", approved_by=approved_by)
        case RecommendationSubmitted(submitted_to=to, submitted_at=at, response_due_at=due):
            return replace(
                state,
                status="submitted",
                submitted_to=to,
                submitted_at=at,
                response_due_at=response_due(at, due),
            )
        case ResponseRecorded(responder=responder, text=text, received_at=received_at):
            response = Response(
                responder=responder, text=text, received_at=received_at, outcome=event.outcome
            )
            return replace(
                state,
                status="responded",
                responses=(*state.responses, response),
                # The latest answer that says what it decided is the outcome.
                response_outcome=event.outcome or state.response_outcome,
            )
        case ProgressReported(percent=percent, note=note, evidence_url=url, reported_at=at):
            report = Progress(percent=percent, note=note, evidence_url=url, reported_at=at)
            return replace(state, progress=(*state.progress, report), progress_percent=percent)
        case RecommendationClosed(outcome=outcome):
            return replace(
                state,
                status="closed",
                outcome=outcome,
                response_outcome=closing_outcome(state.response_outcome, bool(state.responses)),
            )
        case _:
            assert_never(event)


def _back_to_draft(state: RecommendationState) -> RecommendationState:
    # Approval covered the earlier content; a change needs a fresh approval.
    return replace(state, status="draft", approved_by=None)


def fold(events: Iterable[RecommendationEvent]) -> RecommendationState | None:
    """The state after ``events`` (None for an empty stream)."""
    state: RecommendationState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def decide(
    state: RecommendationState | None, event: RecommendationEvent, ctx: DecideContext
) -> None:
    """Refuse ``event`` on a recommendation in ``state`` by raising a DomainError."""
    if state is None:
        if not isinstance(event, RecommendationDrafted):
            raise RuleViolation(
                "recommendation.not_drafted",
                f"no such recommendation: {type(event).__name__} needs one",
            )
        _check_citable(event.issue_ids, (), ctx)
        return
    if isinstance(event, RecommendationDrafted):
        raise RuleViolation("recommendation.already_drafted", "this recommendation exists")
    if state.status == "closed":
        raise RuleViolation(
            "recommendation.closed",
            f"the recommendation was closed: {type(event).__name__} refused",
        )
    name = type(event).__name__
    match event:
        case IssuesCited() | IssueUncited() | RecommendationRevised():
            _require_unsubmitted(state, name)
            if isinstance(event, IssuesCited):
                _check_citable(event.issue_ids, state.issue_ids, ctx)
            elif isinstance(event, IssueUncited):
                if event.issue_id not in state.issue_ids:
                    raise RuleViolation(
                        "recommendation.issue_not_cited", f"issue {event.issue_id} is not cited"
                    )
            elif event.title is None and event.body is None and event.addressee is None:
                raise InvalidRequest(
                    "recommendation.empty_revision", "give a title, body or addressee", "$.data"
                )
        case RecommendationApproved():
            _require_unsubmitted(state, name)
            if state.status == "approved":
                raise RuleViolation(
                    "recommendation.already_approved", f"already approved by {state.approved_by}"
                )
            if not state.issue_ids:
                raise RuleViolation(
                    "recommendation.no_issues", "cite at least one issue before approval"
                )
        case RecommendationSubmitted():
            _require_unsubmitted(state, name)
            if state.status != "approved":
                raise RuleViolation(
                    "recommendation.not_approved", "approve the recommendation before submitting"
                )
            timing.not_in_future(event.submitted_at, ctx, "submitted_at")
            if event.response_due_at is not None and event.response_due_at <= event.submitted_at:
                raise InvalidRequest(
                    "recommendation.due_before_submission",
                    f"response_due_at {event.response_due_at.isoformat()} is not after "
                    f"submitted_at {event.submitted_at.isoformat()}",
                    field_path("response_due_at"),
                )
        case ResponseRecorded():
            if state.status not in ("submitted", "responded"):
                raise RuleViolation(
                    "recommendation.not_submitted", "a response needs a submitted recommendation"
                )
            timing.not_in_future(event.received_at, ctx, "received_at")
        case ProgressReported():
            if state.status not in ("submitted", "responded"):
                raise RuleViolation(
                    "recommendation.not_submitted",
                    "progress is reported on a submitted recommendation",
                )
            timing.not_in_future(event.reported_at, ctx, "reported_at")
        case RecommendationClosed():
            pass
        case _:
            assert_never(event)


def _require_unsubmitted(state: RecommendationState, name: str) -> None:
    if state.status in ("submitted", "responded"):
        raise RuleViolation(
            "recommendation.already_submitted",
            f"submitted to {state.submitted_to}: {name} refused",
        )


def _check_citable(issue_ids: Sequence[UUID], cited: Sequence[UUID], ctx: DecideContext) -> None:
    """Each new citation names an existing, open issue, once."""
    seen: set[UUID] = set()
    for index, issue_id in enumerate(issue_ids):
        path = field_path("issue_ids", index)
        if issue_id in seen:
            raise InvalidRequest(
                "recommendation.issue_duplicate", f"issue {issue_id} is listed twice", path
            )
        seen.add(issue_id)
        if issue_id in cited:
            raise RuleViolation("recommendation.issue_already_cited", f"issue {issue_id} is cited")
        issue = ctx.issues.get(issue_id)
        if issue is None:
            raise InvalidRequest("recommendation.issue_unknown", f"no issue {issue_id}", path)
        if issue.status == "withdrawn":
            raise RuleViolation("recommendation.issue_withdrawn", f"issue {issue_id} was withdrawn")


def region_of(state: RecommendationState) -> None:
    """Recommendations are national: no region, so only national roles reach them."""
    return None
