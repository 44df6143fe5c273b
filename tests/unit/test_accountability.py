"""Accountability and the loop back: due dates, progress, outcomes, an issue's follow-up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from events.domain import recommendation
from events.domain.accountability import (
    DEFAULT_RESPONSE_WINDOW,
    closing_outcome,
    final_outcome,
    is_overdue,
    response_due,
)
from events.domain.context import DecideContext
from events.domain.follow_up import follow_up
from events.domain.organizations import Organization
from events.domain.recommendation import RecommendationState
from events.domain.regions import load_regions
from events.domain.rules import DomainError
from events.domain.states import IssueState
from events.domain.types import (
    ProgressReported,
    RecommendationApproved,
    RecommendationClosed,
    RecommendationDrafted,
    RecommendationEvent,
    RecommendationSubmitted,
    ResponseRecorded,
)

WIB = timezone(timedelta(hours=7))
ISSUE = UUID("2b7e6f1c-4a3d-4b5c-8f9e-5f4e3d2c1b0a")
NOW = datetime(2022, 3, 1, 3, tzinfo=UTC)
CTX = DecideContext(
    regions=load_regions(),
    issues={
        ISSUE: IssueState(
            region_code="35.71",
            hearing_id=None,
            raised_by=Organization(code="KPU", name="KPU Kota Kediri"),
            category="budget_honorarium",
            title="Honorarium badan adhoc minimal sesuai UMR",
            description="Beban kerja naik.",
            severity=4,
        )
    },
    now=NOW,
)
SUBMITTED_AT = datetime(2022, 1, 15, 10, tzinfo=WIB)
HISTORY: list[RecommendationEvent] = [
    RecommendationDrafted(
        title="UMR", body="Honorarium KPPS", addressee="Presiden", issue_ids=[ISSUE]
    ),
    RecommendationApproved(approved_by="Deputi Polstra"),
]


def submitted(due: datetime | None = None) -> RecommendationSubmitted:
    return RecommendationSubmitted(
        submitted_to="Presiden", submitted_at=SUBMITTED_AT, response_due_at=due
    )


def progress(percent: int, at: datetime | None = None) -> ProgressReported:
    return ProgressReported(percent=percent, note="Rapat koordinasi", reported_at=at)


def state_after(events: Sequence[RecommendationEvent]) -> RecommendationState:
    state = recommendation.fold(events)
    assert state is not None
    return state


def refused(events: Sequence[RecommendationEvent], event: RecommendationEvent) -> DomainError:
    state = recommendation.fold(events)
    with pytest.raises(DomainError) as caught:
        recommendation.decide(state, event, CTX)
    return caught.value


def test_answer_is_due_thirty_days_after_submission_unless_given() -> None:
    """The default window applies only when the submission names no date."""
    state = state_after([*HISTORY, submitted()])
    assert state.response_due_at == SUBMITTED_AT + DEFAULT_RESPONSE_WINDOW
    given = datetime(2022, 2, 1, 9, tzinfo=WIB)
    assert state_after([*HISTORY, submitted(given)]).response_due_at == given
    assert response_due(SUBMITTED_AT, None) == SUBMITTED_AT + timedelta(days=30)


def test_due_date_must_follow_submission() -> None:
    """A due date at or before the submission is a 422 naming response_due_at."""
    error = refused(HISTORY, submitted(SUBMITTED_AT))
    assert (error.rule, error.status) == ("recommendation.due_before_submission", 422)
    assert error.field == "$.data.response_due_at"


def test_progress_needs_a_submitted_recommendation() -> None:
    """Progress on a draft is a 409; after submission it is kept in order, latest percent."""
    error = refused(HISTORY, progress(10))
    assert (error.rule, error.status) == ("recommendation.not_submitted", 409)
    events = [*HISTORY, submitted()]
    recommendation.decide(state_after(events), progress(40), CTX)
    state = state_after([*events, progress(40), progress(25)])
    assert [p.percent for p in state.progress] == [40, 25]
    assert state.progress_percent == 25


def test_progress_in_the_future_is_refused() -> None:
    """reported_at is an effective time: not beyond now plus the tolerance."""
    error = refused([*HISTORY, submitted()], progress(50, NOW + timedelta(hours=1)))
    assert (error.rule, error.field) == ("time.in_future", "$.data.reported_at")


def test_progress_after_closing_is_refused() -> None:
    """A closed recommendation takes no more reports."""
    closed = RecommendationClosed(outcome="Selesai")
    error = refused([*HISTORY, submitted(), closed], progress(100))
    assert error.rule == "recommendation.closed"


def test_outcome_follows_the_answer_and_no_answer_closes_as_no_response() -> None:
    """The latest answer naming an outcome decides; closing unanswered is no_response."""
    answer = ResponseRecorded(
        responder="Kemensetneg",
        text="Diterima sebagian",
        received_at=datetime(2022, 2, 10, 10, tzinfo=WIB),
        outcome="partly_accepted",
    )
    plain = ResponseRecorded(
        responder="Kemensetneg", text="Catatan", received_at=datetime(2022, 2, 11, tzinfo=WIB)
    )
    closed = RecommendationClosed(outcome="Selesai")
    assert state_after([*HISTORY, submitted(), answer, plain]).response_outcome == (
        "partly_accepted"
    )
    assert state_after([*HISTORY, submitted(), answer, closed]).response_outcome == (
        "partly_accepted"
    )
    assert state_after([*HISTORY, submitted(), closed]).response_outcome == "no_response"
    # Answered without saying what it decided: closing does not invent "no_response".
    assert state_after([*HISTORY, submitted(), plain, closed]).response_outcome is None
    assert closing_outcome(None, answered=False) == "no_response"


@pytest.mark.parametrize(
    ("status", "due_offset", "answered", "overdue"),
    [
        ("submitted", -1, False, True),
        ("submitted", 1, False, False),
        ("submitted", -1, True, False),
        ("closed", -1, False, False),
        ("draft", -1, False, False),
    ],
)
def test_overdue(status: str, due_offset: int, answered: bool, overdue: bool) -> None:
    """Only a submitted, unanswered, open recommendation past its due date is overdue."""
    due = NOW + timedelta(days=due_offset)
    assert is_overdue(status, due, answered, NOW) is overdue


def test_final_outcome_is_the_most_favourable() -> None:
    """An issue carried by an accepted and a rejected recommendation was taken up."""
    assert final_outcome(["rejected", None, "accepted"]) == "accepted"
    assert final_outcome(["no_response", "rejected"]) == "rejected"
    assert final_outcome([None]) is None


@pytest.mark.parametrize(
    ("withdrawn", "statuses", "expected"),
    [
        (False, [], "open"),
        (False, ["draft"], "cited_in_draft"),
        (False, ["approved", "draft"], "cited_in_draft"),
        (False, ["draft", "submitted"], "recommended"),
        (False, ["responded", "submitted"], "answered"),
        (False, ["closed", "draft"], "closed"),
        (True, ["responded"], "withdrawn"),
    ],
)
def test_follow_up_is_the_most_advanced_recommendation(
    withdrawn: bool, statuses: list[str], expected: str
) -> None:
    """An issue's follow-up status follows the furthest recommendation citing it."""
    assert follow_up(withdrawn, statuses) == expected
