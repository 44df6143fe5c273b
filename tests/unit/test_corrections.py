"""Corrections and time rules: what may be corrected, by whom, and the history kept."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from events.domain import dispatch as domain
from events.domain.context import DecideContext
from events.domain.organizations import Organization
from events.domain.rules import RULES, DomainError
from events.domain.states import HearingState, IssueState
from events.domain.types import (
    AnyEvent,
    HearingDetailsCorrected,
    HearingHeld,
    HearingStatusCorrected,
    IssueCategoryCorrected,
    IssueCorrected,
    IssueRaised,
    ParticipantRemoved,
    StatementCorrected,
    StatementRetracted,
)
from tests.unit.test_domain import (
    BAWASLU,
    CANCELLED,
    CTX,
    HEARING_ID,
    HELD,
    PARTICIPANTS,
    STATEMENT,
    WIB,
    WITHDRAWN,
    context,
    hearing_state,
    raised,
    scheduled,
)

NOW = datetime(2021, 11, 1, 12, tzinfo=UTC)


def writer(role: str, recorders: Sequence[str | None], ctx: DecideContext = CTX) -> DecideContext:
    return ctx.written_by(role, recorders, NOW)


def refused(
    history: Sequence[AnyEvent], event: AnyEvent, rule: str, ctx: DecideContext = CTX
) -> DomainError:
    with pytest.raises(DomainError) as info:
        domain.decide(domain.fold(history), event, ctx)
    assert info.value.rule == rule
    assert info.value.status == RULES[rule][0]
    return info.value


def allowed(history: Sequence[AnyEvent], event: AnyEvent, ctx: DecideContext = CTX) -> None:
    domain.decide(domain.fold(history), event, ctx)


# --- issue -------------------------------------------------------------------------------

FIX_TITLE = IssueCorrected(
    title="Honorarium badan adhoc minimal sesuai UMR setempat", reason="Judul kurang lengkap"
)


def test_issue_correction_changes_fields_and_keeps_history() -> None:
    """The corrected value replaces the old one, marked corrected, with from/to kept."""
    fix = IssueCorrected(severity=5, raised_at=datetime(2021, 10, 26, 10, tzinfo=WIB), reason="x")
    state = domain.fold([raised(), FIX_TITLE, fix])
    assert isinstance(state, IssueState)
    assert state.title == FIX_TITLE.title and state.severity == 5
    assert state.raised_at == datetime(2021, 10, 26, 10, tzinfo=WIB)
    assert state.corrected == ("raised_at", "severity", "title")
    assert state.version == 3
    first, second = state.corrections
    assert first.type == "IssueCorrected" and first.version == 2
    assert first.changes["title"].before == "Honorarium badan adhoc minimal sesuai UMR"
    assert set(second.changes) == {"severity", "raised_at"}
    assert second.changes["severity"].before == 4 and second.changes["severity"].to == 5


def test_category_correction_is_in_the_history() -> None:
    """The older category correction also marks the field and keeps from/to."""
    state = domain.fold([raised(), IssueCategoryCorrected(category="personnel", reason="r")])
    assert isinstance(state, IssueState)
    assert state.corrected == ("category",)
    assert state.corrections[0].changes["category"].before == "budget_honorarium"


@pytest.mark.parametrize(
    ("event", "rule"),
    [
        (IssueCorrected(reason="tanpa perubahan"), "correction.empty"),
        (IssueCorrected(severity=4, reason="sama"), "correction.unchanged"),
        (
            IssueCorrected(title="Honorarium badan adhoc minimal sesuai UMR", reason="sama"),
            "correction.unchanged",
        ),
    ],
)
def test_issue_correction_must_change_something(event: IssueCorrected, rule: str) -> None:
    """An empty correction is invalid; a field given with its current value is refused."""
    refused([raised()], event, rule)


def test_withdrawn_issue_is_not_corrected() -> None:
    """A withdrawn issue's record is closed."""
    refused([raised(), WITHDRAWN], FIX_TITLE, "issue.withdrawn")


@pytest.mark.parametrize(
    ("recorder", "actor", "ok"),
    [
        ("regional", "regional", True),
        ("national", "national", True),
        ("regional", "national", False),
        ("national", "regional", False),
        (None, "national", True),  # an event stored without a stamped role
    ],
)
def test_the_recording_office_corrects_an_issue(recorder: str | None, actor: str, ok: bool) -> None:
    """A regional record is corrected by a regional token, a national one by national."""
    ctx = writer(actor, [recorder])
    for event in (FIX_TITLE, IssueCategoryCorrected(category="personnel", reason="r")):
        if ok:
            allowed([raised()], event, ctx)
        else:
            error = refused([raised()], event, "correction.not_recorder", ctx)
            assert error.status == 403


def test_raised_at_is_not_in_the_future() -> None:
    """raised_at later than now plus the tolerance is refused, on raising and correcting."""
    ctx = writer("regional", [])
    late = NOW + timedelta(minutes=11)
    with pytest.raises(DomainError, match=r"time\.in_future"):
        domain.decide(None, msgspec_replace(raised(), raised_at=late), ctx)
    allowed([], msgspec_replace(raised(), raised_at=NOW + timedelta(minutes=9)), ctx)
    error = refused([raised()], IssueCorrected(raised_at=late, reason="r"), "time.in_future", ctx)
    assert error.field == "$.data.raised_at"


def test_an_issue_is_not_raised_before_its_hearing() -> None:
    """raised_at before its hearing (a day before an unheld one's time) is refused."""
    at_hearing = msgspec_replace(raised(hearing_id=HEARING_ID), raised_at=scheduled().scheduled_at)
    allowed([], at_hearing)
    day_before = scheduled().scheduled_at - timedelta(days=1, minutes=1)
    error = refused(
        [], msgspec_replace(at_hearing, raised_at=day_before), "issue.raised_before_hearing"
    )
    assert error.field == "$.data.raised_at"
    held = context(hearings={HEARING_ID: hearing_state(HELD)})
    refused(
        [],
        msgspec_replace(at_hearing, raised_at=HELD.held_at - timedelta(hours=1)),
        "issue.raised_before_hearing",
        held,
    )


def msgspec_replace(event: IssueRaised, **changes: object) -> IssueRaised:
    import msgspec

    return msgspec.structs.replace(event, **changes)


# --- hearing -----------------------------------------------------------------------------

MINUTES = [scheduled(), PARTICIPANTS, STATEMENT]


def test_hearing_details_correction() -> None:
    """Title, agenda, venue and host are corrected field by field, history kept."""
    host = Organization(code="PEMDA", name="Pemerintah Kota Kediri")
    state = domain.fold(
        [scheduled(), HearingDetailsCorrected(venue="Aula", host_organization=host, reason="r")]
    )
    assert isinstance(state, HearingState)
    assert state.venue == "Aula" and state.host_organization == host
    assert state.corrected == ("host_organization", "venue")
    assert state.corrections[0].changes["venue"].before == "Ruang Joyoboyo"
    refused([scheduled()], HearingDetailsCorrected(reason="r"), "correction.empty")
    refused(
        [scheduled()],
        HearingDetailsCorrected(venue="Ruang Joyoboyo", reason="r"),
        "correction.unchanged",
    )


def test_participant_removed_keeps_its_place() -> None:
    """A removed participant stays listed, marked, so indexes never shift."""
    state = domain.fold([*MINUTES, ParticipantRemoved(participant_index=0, reason="salah")])
    assert isinstance(state, HearingState)
    assert [p.removed for p in state.participants] == [True, False]
    assert state.participants[0].remove_reason == "salah"
    assert state.corrections[-1].item == "participants[0]"
    refused(
        [*MINUTES, ParticipantRemoved(participant_index=0, reason="salah")],
        ParticipantRemoved(participant_index=0, reason="lagi"),
        "hearing.participant_removed",
    )
    error = refused(
        MINUTES, ParticipantRemoved(participant_index=2, reason="r"), "hearing.participant_unknown"
    )
    assert error.field == "$.data.participant_index"


def test_statement_corrected_and_retracted() -> None:
    """A misattributed statement is corrected; a retracted one is marked and then frozen."""
    fix = StatementCorrected(statement_index=0, speaker="Mansur", organization=BAWASLU, reason="r")
    state = domain.fold([*MINUTES, fix])
    assert isinstance(state, HearingState)
    statement = state.statements[0]
    assert statement.speaker == "Mansur" and statement.organization == BAWASLU
    assert statement.text == STATEMENT.text
    assert statement.corrected == ("organization", "speaker")
    assert state.corrections[-1].changes["speaker"].before == STATEMENT.speaker
    retract = StatementRetracted(statement_index=0, reason="off the record")
    state = domain.fold([*MINUTES, retract])
    assert isinstance(state, HearingState)
    assert state.statements[0].retracted and state.statements[0].text == STATEMENT.text
    for again in (retract, fix):
        refused([*MINUTES, retract], again, "hearing.statement_retracted")
    refused(MINUTES, StatementRetracted(statement_index=1, reason="r"), "hearing.statement_unknown")
    refused(MINUTES, StatementCorrected(statement_index=0, reason="r"), "correction.empty")


def test_items_are_corrected_by_the_office_that_recorded_them() -> None:
    """A national-scheduled hearing's minutes, typed by the regional office, are theirs."""
    recorders = ["national", "regional", "regional"]
    retract = StatementRetracted(statement_index=0, reason="r")
    allowed(MINUTES, retract, writer("regional", recorders))
    refused(MINUTES, retract, "correction.not_recorder", writer("national", recorders))
    details = HearingDetailsCorrected(title="Judul baru", reason="r")
    allowed(MINUTES, details, writer("national", recorders))
    refused(MINUTES, details, "correction.not_recorder", writer("regional", recorders))
    # Minutes recorded in the same request are the writer's own.
    allowed(
        [scheduled(), PARTICIPANTS],
        ParticipantRemoved(participant_index=0, reason="r"),
        writer("regional", ["national"]),
    )


HELD_FIX = HearingStatusCorrected(
    status="held",
    held_at=datetime(2021, 10, 26, 9, 30, tzinfo=WIB),
    opened_by="Kepala Kesbangpol",
    summary="Dengar pendapat berlangsung.",
    reason="Salah tandai batal",
)


def test_status_correction_undoes_a_wrong_cancel_or_hold() -> None:
    """Cancelled by mistake -> held (with its details); held by mistake -> scheduled."""
    state = domain.fold([scheduled(), CANCELLED, HELD_FIX])
    assert isinstance(state, HearingState)
    assert state.status == "held" and state.cancel_reason is None
    assert state.held_at == HELD_FIX.held_at and state.corrected == ("status",)
    back = HearingStatusCorrected(status="scheduled", reason="Belum dilaksanakan")
    state = domain.fold([scheduled(), HELD, back])
    assert isinstance(state, HearingState)
    assert state.status == "scheduled" and state.held_at is None and state.summary is None
    assert state.corrections[0].changes["status"].before == "held"
    # Once corrected back, the hearing can be held for real.
    allowed([scheduled(), HELD, back], HELD)


@pytest.mark.parametrize(
    ("history", "event", "rule"),
    [
        (
            [scheduled()],
            HearingStatusCorrected(status="scheduled", reason="r"),
            "hearing.status_unchanged",
        ),
        (
            [scheduled(), CANCELLED],
            HearingStatusCorrected(status="held", reason="r"),
            "hearing.held_details_required",
        ),
        (
            [scheduled(), HELD],
            HearingStatusCorrected(status="cancelled", summary="x", reason="r"),
            "hearing.held_details_not_allowed",
        ),
    ],
)
def test_status_correction_rules(
    history: list[AnyEvent], event: HearingStatusCorrected, rule: str
) -> None:
    """A status correction changes the status and carries exactly the details it needs."""
    refused(history, event, rule)


def test_cancelled_hearing_takes_corrections_only() -> None:
    """A cancelled hearing still refuses new minutes but its record can be corrected."""
    history = [scheduled(), PARTICIPANTS, CANCELLED]
    allowed(history, ParticipantRemoved(participant_index=1, reason="r"))
    allowed(history, HearingDetailsCorrected(title="Judul", reason="r"))
    refused(history, STATEMENT, "hearing.cancelled")


def test_held_at_sanity() -> None:
    """held_at is not in the future, nor more than a day before the scheduled time."""
    ctx = writer("regional", ["regional"])
    future = HearingHeld(held_at=NOW + timedelta(hours=1), opened_by="x", summary="y")
    refused([scheduled()], future, "time.in_future", ctx)
    early = HearingHeld(
        held_at=scheduled().scheduled_at - timedelta(days=1, seconds=1), opened_by="x", summary="y"
    )
    error = refused([scheduled()], early, "hearing.held_before_scheduled", ctx)
    assert error.field == "$.data.held_at"
    refused(
        [scheduled(), CANCELLED],
        HearingStatusCorrected(
            status="held", held_at=early.held_at, opened_by="x", summary="y", reason="r"
        ),
        "hearing.held_before_scheduled",
        ctx,
    )
    allowed([scheduled()], HELD, ctx)
