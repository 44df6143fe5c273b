"""Aggregate rules: evolve folds events into state, decide refuses what may not happen."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import msgspec
import pytest

from events.domain import access, hearing, issue, recommendation
from events.domain import dispatch as domain
from events.domain.context import DecideContext
from events.domain.dispatch import AnyState, references
from events.domain.organizations import Organization
from events.domain.regions import load_regions
from events.domain.rules import RULES, DomainError, InvalidRequest, RuleViolation
from events.domain.states import HearingState, IssueState
from events.domain.types import (
    AnyEvent,
    HearingCancelled,
    HearingHeld,
    HearingRescheduled,
    HearingScheduled,
    IssueCategoryCorrected,
    IssueEvidenceAdded,
    IssueRaised,
    IssuesCited,
    IssueUncited,
    IssueWithdrawn,
    Participant,
    ParticipantsRecorded,
    RecommendationApproved,
    RecommendationClosed,
    RecommendationDrafted,
    RecommendationRevised,
    RecommendationSubmitted,
    ResponseRecorded,
    StatementRecorded,
    TokenIssued,
    TokenRevoked,
)

WIB = timezone(timedelta(hours=7))
KEDIRI = "35.71"
JATIM = "35"
SURABAYA = "35.78"

WANTANNAS = Organization(code="WANTANNAS", name="Setjen Wantannas")
KESBANGPOL = Organization(code="KESBANGPOL", name="Kesbangpol Kota Kediri")
KPU = Organization(code="KPU", name="KPU Kota Kediri")
BAWASLU = Organization(code="BAWASLU", name="Bawaslu Kota Kediri")


def scheduled(region_code: str = KEDIRI) -> HearingScheduled:
    return HearingScheduled(
        region_code=region_code,
        title="Dengar pendapat persiapan Pemilu dan Pemilihan 2024",
        agenda="Persiapan pelaksanaan pemilu dan pemilihan 2024",
        venue="Ruang Joyoboyo",
        scheduled_at=datetime(2021, 10, 26, 9, tzinfo=WIB),
        convened_by=WANTANNAS,
        host_organization=KESBANGPOL,
    )


RESCHEDULED = HearingRescheduled(
    scheduled_at=datetime(2021, 10, 27, 9, tzinfo=WIB), reason="Ruang Joyoboyo dipakai"
)
CANCELLED = HearingCancelled(reason="Pandemi: pertemuan tatap muka dibatalkan")
PARTICIPANTS = ParticipantsRecorded(
    participants=[
        Participant(name="Pusporini Endah Palupi", role="Ketua", organization=KPU),
        Participant(name="Mansur", role="Ketua", organization=BAWASLU),
    ]
)
STATEMENT = StatementRecorded(
    speaker="Brigjen Pol Drs. Ismail Bafadal MH",
    organization=WANTANNAS,
    text="Permasalahan yang dihadapi oleh penyelenggara adalah hal penting yang perlu dijaring.",
    quote=(
        "Tugas kami disini adalah mendengarkan permasalahan yang dihadapi oleh Kabupaten/Kota "
        "dalam persiapan pelaksanaan Pemilu dan Pemilihan 2024"
    ),
)
HELD = HearingHeld(
    held_at=datetime(2021, 10, 26, 9, 30, tzinfo=WIB),
    opened_by="Kepala Kesbangpol Kota Kediri",
    summary="Dengar pendapat mengenai persiapan pemilu dan pemilihan 2024 dari KPU dan Bawaslu.",
)


def raised(region_code: str = KEDIRI, hearing_id: UUID | None = None) -> IssueRaised:
    return IssueRaised(
        region_code=region_code,
        hearing_id=hearing_id,
        raised_by=KPU,
        category="budget_honorarium",
        title="Honorarium badan adhoc minimal sesuai UMR",
        description="Peningkatan beban kerja badan adhoc perlu diimbangi kenaikan honorarium.",
        severity=4,
    )


RECATEGORISED = IssueCategoryCorrected(
    category="adhoc_bodies_welfare_safety",
    reason="Menyangkut kesejahteraan dan keselamatan kerja badan adhoc",
)
EVIDENCE = IssueEvidenceAdded(
    description="Minimal sesuai UMR karena seperti KPPS dengan masa 1 bulan harus bekerja ekstra.",
    source="Pusporini Endah Palupi, KPU Kota Kediri",
)
WITHDRAWN = IssueWithdrawn(reason="Sudah diatur dalam regulasi baru")


def drafted(*issue_ids: UUID) -> RecommendationDrafted:
    return RecommendationDrafted(
        title="Standar honorarium KPPS minimal UMR",
        body="Peningkatan beban kerja badan adhoc perlu diimbangi dengan kenaikan honorarium.",
        addressee="Presiden",
        issue_ids=list(issue_ids),
    )


REVISED = RecommendationRevised(body="Honorarium KPPS minimal sesuai UMR setempat.")
APPROVED = RecommendationApproved(approved_by="Deputi Politik dan Strategi")
SUBMITTED = RecommendationSubmitted(
    submitted_to="Presiden", submitted_at=datetime(2021, 11, 30, 10, tzinfo=WIB)
)
RESPONSE = ResponseRecorded(
    responder="Kementerian Sekretariat Negara",
    text="Rekomendasi diterima untuk ditindaklanjuti.",
    received_at=datetime(2021, 12, 15, 10, tzinfo=WIB),
)
CLOSED = RecommendationClosed(outcome="Honorarium KPPS dinaikkan pada Pemilu 2024")

HEARING_ID = UUID("6f1c2b7e-3d4a-4c5b-9e8f-0a1b2c3d4e5f")
ISSUE_A = UUID("2b7e6f1c-4a3d-4b5c-8f9e-5f4e3d2c1b0a")
ISSUE_B = UUID("3c8f7a2d-5b4e-4c6d-9a0f-6a5f4e3d2c1b")
WITHDRAWN_ISSUE = UUID("4d9a8b3e-6c5f-4d7e-8b1a-7b6a5f4e3d2c")


def hearing_state(*events: AnyEvent) -> HearingState:
    state = domain.fold([scheduled(), *events])
    assert isinstance(state, HearingState)
    return state


def issue_state(*events: AnyEvent) -> IssueState:
    state = domain.fold([raised(), *events])
    assert isinstance(state, IssueState)
    return state


def context(
    hearings: dict[UUID, HearingState] | None = None,
    issues: dict[UUID, IssueState] | None = None,
) -> DecideContext:
    return DecideContext(regions=load_regions(), hearings=hearings or {}, issues=issues or {})


CTX = context(
    hearings={HEARING_ID: hearing_state()},
    issues={
        ISSUE_A: issue_state(),
        ISSUE_B: issue_state(),
        WITHDRAWN_ISSUE: issue_state(WITHDRAWN),
    },
)


def decide(history: Sequence[AnyEvent], event: AnyEvent, ctx: DecideContext = CTX) -> None:
    domain.decide(domain.fold(history), event, ctx)


def refused(
    history: Sequence[AnyEvent],
    event: AnyEvent,
    rule: str,
    *,
    field: str | None = None,
    ctx: DecideContext = CTX,
) -> DomainError:
    with pytest.raises(DomainError) as info:
        decide(history, event, ctx)
    error = info.value
    assert error.rule == rule
    assert error.status == RULES[rule][0]
    assert isinstance(error, RuleViolation if error.status == 409 else InvalidRequest)
    assert error.field == field
    return error


# --- hearing ---------------------------------------------------------------------------


def test_hearing_starts_with_scheduled() -> None:
    """HearingScheduled in a known region opens a hearing stream."""
    decide([], scheduled())


@pytest.mark.parametrize("event", [RESCHEDULED, CANCELLED, PARTICIPANTS, STATEMENT, HELD])
def test_hearing_must_be_scheduled_first(event: AnyEvent) -> None:
    """Any other event on an empty hearing stream is a 409 hearing.not_scheduled."""
    refused([], event, "hearing.not_scheduled")


def test_hearing_cannot_be_scheduled_twice() -> None:
    """HearingScheduled on an existing hearing is a 409 hearing.already_scheduled."""
    refused([scheduled()], scheduled(), "hearing.already_scheduled")


@pytest.mark.parametrize("code", ["35.99", "99", "36.99"])
def test_hearing_region_must_exist(code: str) -> None:
    """A hearing in a region unknown to Kemendagri is a 422 naming $.data.region_code."""
    error = refused([], scheduled(code), "region.unknown", field="$.data.region_code")
    assert code in error.detail


def test_hearing_may_be_in_a_province() -> None:
    """A province-level hearing (Jawa Timur) is allowed: the code exists."""
    decide([], scheduled(JATIM))


@pytest.mark.parametrize("event", [RESCHEDULED, CANCELLED, PARTICIPANTS, STATEMENT, HELD])
def test_nothing_is_recorded_on_a_cancelled_hearing(event: AnyEvent) -> None:
    """A cancelled hearing takes no participants, statements, reschedule, holding or cancel."""
    refused([scheduled(), CANCELLED], event, "hearing.cancelled")


@pytest.mark.parametrize("event", [HELD, RESCHEDULED, CANCELLED])
def test_a_held_hearing_is_history(event: AnyEvent) -> None:
    """A held hearing cannot be held again, rescheduled or cancelled (409 hearing.already_held)."""
    refused([scheduled(), HELD], event, "hearing.already_held")


@pytest.mark.parametrize(
    "history",
    [[scheduled()], [scheduled(), RESCHEDULED], [scheduled(), HELD]],
    ids=["scheduled", "rescheduled", "held"],
)
@pytest.mark.parametrize("event", [PARTICIPANTS, STATEMENT])
def test_minutes_are_recorded_before_or_after_holding(
    history: list[AnyEvent], event: AnyEvent
) -> None:
    """Participants and statements are accepted on a scheduled or held hearing."""
    decide(history, event)


@pytest.mark.parametrize("event", [RESCHEDULED, CANCELLED, HELD])
def test_a_scheduled_hearing_can_move_be_cancelled_or_held(event: AnyEvent) -> None:
    """Rescheduling, cancelling and holding are allowed on a scheduled hearing."""
    decide([scheduled(), RESCHEDULED], event)


def test_hearing_state_shows_the_whole_record() -> None:
    """Folding a hearing's events yields everything GET /v1/hearings/{id} shows."""
    moved = HearingRescheduled(
        scheduled_at=datetime(2021, 10, 26, 13, tzinfo=WIB), venue="Ruang Joyoboyo Balai Kota"
    )
    state = hearing_state(RESCHEDULED, moved, PARTICIPANTS, STATEMENT, HELD)
    assert state.status == "held"
    assert state.scheduled_at == datetime(2021, 10, 26, 13, tzinfo=WIB)
    assert state.venue == "Ruang Joyoboyo Balai Kota"
    assert state.reschedule_count == 2
    assert [p.name for p in state.participants] == ["Pusporini Endah Palupi", "Mansur"]
    assert state.statements[0].quote is not None
    assert state.statements[0].quote.startswith("Tugas kami disini")
    assert (state.held_at, state.opened_by) == (HELD.held_at, "Kepala Kesbangpol Kota Kediri")
    assert domain.region_of(state) == hearing.region_of(state) == KEDIRI
    encoded = msgspec.json.decode(msgspec.json.encode(state))
    assert encoded["status"] == "held"
    assert encoded["scheduled_at"] == "2021-10-26T13:00:00+07:00"


def test_reschedule_without_venue_keeps_the_venue() -> None:
    """HearingRescheduled with no venue moves only the time."""
    state = hearing_state(RESCHEDULED)
    assert (state.venue, state.scheduled_at) == ("Ruang Joyoboyo", RESCHEDULED.scheduled_at)


def test_cancel_records_reason() -> None:
    """A cancelled hearing shows its status and reason."""
    state = hearing_state(CANCELLED)
    assert (state.status, state.cancel_reason) == ("cancelled", CANCELLED.reason)


# --- issue -----------------------------------------------------------------------------


def test_issue_without_hearing_is_raised() -> None:
    """An issue may be raised on its own, in a known region."""
    decide([], raised())


@pytest.mark.parametrize("history", [[], [HELD]], ids=["scheduled", "held"])
def test_issue_at_a_hearing_in_its_region(history: list[AnyEvent]) -> None:
    """An issue may name a scheduled or held hearing in the same region."""
    ctx = context(hearings={HEARING_ID: hearing_state(*history)})
    decide([], raised(hearing_id=HEARING_ID), ctx)


@pytest.mark.parametrize("event", [RECATEGORISED, EVIDENCE, WITHDRAWN])
def test_issue_must_be_raised_first(event: AnyEvent) -> None:
    """Any other event on an empty issue stream is a 409 issue.not_raised."""
    refused([], event, "issue.not_raised")


def test_issue_cannot_be_raised_twice() -> None:
    """IssueRaised on an existing issue is a 409 issue.already_raised."""
    refused([raised()], raised(), "issue.already_raised")


def test_issue_region_must_exist() -> None:
    """An issue in an unknown region is a 422 naming $.data.region_code."""
    refused([], raised("35.99"), "region.unknown", field="$.data.region_code")


def test_issue_hearing_must_exist() -> None:
    """An issue naming a hearing that does not exist is a 422 naming $.data.hearing_id."""
    refused([], raised(hearing_id=uuid4()), "issue.hearing_unknown", field="$.data.hearing_id")


@pytest.mark.parametrize("region", [SURABAYA, JATIM])
def test_issue_hearing_must_share_its_region(region: str) -> None:
    """An issue in another region than its hearing (even the hearing's province) is a 422,
    answered as for a hearing that does not exist: the hearing's region is not named."""
    error = refused(
        [],
        raised(region, hearing_id=HEARING_ID),
        "issue.hearing_unknown",
        field="$.data.hearing_id",
    )
    assert KEDIRI not in error.detail


def test_issue_cannot_come_from_a_cancelled_hearing() -> None:
    """A cancelled hearing heard nobody: raising an issue there is a 409."""
    ctx = context(hearings={HEARING_ID: hearing_state(CANCELLED)})
    refused([], raised(hearing_id=HEARING_ID), "issue.hearing_cancelled", ctx=ctx)


@pytest.mark.parametrize("event", [RECATEGORISED, EVIDENCE, WITHDRAWN])
def test_nothing_follows_withdrawal(event: AnyEvent) -> None:
    """A withdrawn issue refuses every further event (409 issue.withdrawn)."""
    refused([raised(), WITHDRAWN], event, "issue.withdrawn")


@pytest.mark.parametrize("event", [RECATEGORISED, EVIDENCE, WITHDRAWN])
def test_open_issue_accepts_changes(event: AnyEvent) -> None:
    """An open issue accepts a category correction, evidence and withdrawal."""
    decide([raised()], event)


def test_category_correction_must_change_the_category() -> None:
    """Correcting to the current category is a 409 issue.category_unchanged."""
    same = IssueCategoryCorrected(category="budget_honorarium", reason="Salah ketik")
    refused([raised()], same, "issue.category_unchanged")
    refused([raised(), RECATEGORISED], RECATEGORISED, "issue.category_unchanged")


def test_issue_state_shows_the_whole_record() -> None:
    """Folding an issue's events yields everything GET /v1/issues/{id} shows."""
    state = issue_state(RECATEGORISED, EVIDENCE, EVIDENCE)
    assert state.category == "adhoc_bodies_welfare_safety"
    assert (state.status, state.severity, state.raised_by) == ("open", 4, KPU)
    assert len(state.evidence) == 2
    assert state.evidence[0].source == "Pusporini Endah Palupi, KPU Kota Kediri"
    assert domain.region_of(state) == issue.region_of(state) == KEDIRI
    withdrawn = issue_state(WITHDRAWN)
    assert (withdrawn.status, withdrawn.withdraw_reason) == ("withdrawn", WITHDRAWN.reason)


# --- recommendation --------------------------------------------------------------------

DRAFT = drafted(ISSUE_A)
LIFECYCLE: dict[str, list[AnyEvent]] = {
    "draft": [DRAFT],
    "approved": [DRAFT, APPROVED],
    "submitted": [DRAFT, APPROVED, SUBMITTED],
    "responded": [DRAFT, APPROVED, SUBMITTED, RESPONSE],
    "closed": [DRAFT, CLOSED],
}


@pytest.mark.parametrize("ids", [(), (ISSUE_A,), (ISSUE_A, ISSUE_B)])
def test_recommendation_is_drafted(ids: tuple[UUID, ...]) -> None:
    """A draft may cite open issues, or none yet."""
    decide([], drafted(*ids))


@pytest.mark.parametrize(
    "event",
    [IssuesCited(issue_ids=[ISSUE_A]), REVISED, APPROVED, SUBMITTED, RESPONSE, CLOSED],
)
def test_recommendation_must_be_drafted_first(event: AnyEvent) -> None:
    """Any other event on an empty recommendation stream is a 409."""
    refused([], event, "recommendation.not_drafted")


def test_recommendation_cannot_be_drafted_twice() -> None:
    """RecommendationDrafted on an existing stream is a 409."""
    refused([DRAFT], DRAFT, "recommendation.already_drafted")


@pytest.mark.parametrize(
    ("history", "event", "rule", "field"),
    [
        ([], drafted(ISSUE_A, uuid4()), "recommendation.issue_unknown", "$.data.issue_ids[1]"),
        ([], drafted(ISSUE_A, WITHDRAWN_ISSUE), "recommendation.issue_withdrawn", None),
        ([], drafted(ISSUE_A, ISSUE_A), "recommendation.issue_duplicate", "$.data.issue_ids[1]"),
        (
            [DRAFT],
            IssuesCited(issue_ids=[uuid4()]),
            "recommendation.issue_unknown",
            "$.data.issue_ids[0]",
        ),
        ([DRAFT], IssuesCited(issue_ids=[WITHDRAWN_ISSUE]), "recommendation.issue_withdrawn", None),
        (
            [DRAFT],
            IssuesCited(issue_ids=[ISSUE_B, ISSUE_B]),
            "recommendation.issue_duplicate",
            "$.data.issue_ids[1]",
        ),
        (
            [DRAFT],
            IssuesCited(issue_ids=[ISSUE_B, ISSUE_A]),
            "recommendation.issue_already_cited",
            None,
        ),
        ([DRAFT], IssueUncited(issue_id=ISSUE_B), "recommendation.issue_not_cited", None),
    ],
)
def test_citations_name_open_issues_once(
    history: list[AnyEvent], event: AnyEvent, rule: str, field: str | None
) -> None:
    """Cited issues must exist (422), be open (409), be listed once (422) and be new (409)."""
    refused(history, event, rule, field=field)


def test_cite_and_uncite_open_issues() -> None:
    """An open issue can be cited, and a cited issue uncited."""
    decide([DRAFT], IssuesCited(issue_ids=[ISSUE_B]))
    decide([DRAFT], IssueUncited(issue_id=ISSUE_A, reason="Digabung"))
    state = domain.fold([DRAFT, IssuesCited(issue_ids=[ISSUE_B]), IssueUncited(issue_id=ISSUE_A)])
    assert isinstance(state, recommendation.RecommendationState)
    assert state.issue_ids == (ISSUE_B,)


@pytest.mark.parametrize(
    ("state", "event", "rule"),
    [
        ("draft", SUBMITTED, "recommendation.not_approved"),
        ("draft", RESPONSE, "recommendation.not_submitted"),
        ("approved", RESPONSE, "recommendation.not_submitted"),
        ("approved", APPROVED, "recommendation.already_approved"),
        ("submitted", APPROVED, "recommendation.already_submitted"),
        ("submitted", SUBMITTED, "recommendation.already_submitted"),
        ("submitted", REVISED, "recommendation.already_submitted"),
        ("submitted", IssuesCited(issue_ids=[ISSUE_B]), "recommendation.already_submitted"),
        ("submitted", IssueUncited(issue_id=ISSUE_A), "recommendation.already_submitted"),
        ("responded", REVISED, "recommendation.already_submitted"),
        ("responded", SUBMITTED, "recommendation.already_submitted"),
    ],
)
def test_lifecycle_order_is_enforced(state: str, event: AnyEvent, rule: str) -> None:
    """Approve before submitting, submit before responses, no content change once submitted."""
    refused(LIFECYCLE[state], event, rule)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        ("draft", APPROVED),
        ("draft", REVISED),
        ("draft", CLOSED),
        ("approved", SUBMITTED),
        ("approved", REVISED),
        ("approved", IssuesCited(issue_ids=[ISSUE_B])),
        ("approved", CLOSED),
        ("submitted", RESPONSE),
        ("submitted", CLOSED),
        ("responded", RESPONSE),
        ("responded", CLOSED),
    ],
)
def test_lifecycle_steps_in_order_are_allowed(state: str, event: AnyEvent) -> None:
    """Each step that follows its predecessor is accepted."""
    decide(LIFECYCLE[state], event)


@pytest.mark.parametrize(
    "event",
    [
        IssuesCited(issue_ids=[ISSUE_B]),
        IssueUncited(issue_id=ISSUE_A),
        REVISED,
        APPROVED,
        SUBMITTED,
        RESPONSE,
        CLOSED,
    ],
)
def test_nothing_follows_closing(event: AnyEvent) -> None:
    """A closed recommendation refuses every event (409 recommendation.closed)."""
    refused([*LIFECYCLE["responded"], CLOSED], event, "recommendation.closed")


def test_approval_needs_a_cited_issue() -> None:
    """A draft citing no issue cannot be approved (409 recommendation.no_issues)."""
    refused([drafted()], APPROVED, "recommendation.no_issues")
    refused([DRAFT, IssueUncited(issue_id=ISSUE_A)], APPROVED, "recommendation.no_issues")


def test_empty_revision_is_invalid() -> None:
    """A revision changing nothing is a 422 recommendation.empty_revision."""
    refused([DRAFT], RecommendationRevised(), "recommendation.empty_revision", field="$.data")


@pytest.mark.parametrize(
    "change", [REVISED, IssuesCited(issue_ids=[ISSUE_B]), IssueUncited(issue_id=ISSUE_A)]
)
def test_changing_an_approved_recommendation_needs_new_approval(change: AnyEvent) -> None:
    """Revising or re-citing an approved recommendation sends it back to draft."""
    state = domain.fold([drafted(ISSUE_A, ISSUE_B), APPROVED, change])
    assert isinstance(state, recommendation.RecommendationState)
    assert (state.status, state.approved_by) == ("draft", None)
    refused([drafted(ISSUE_A, ISSUE_B), APPROVED, change], SUBMITTED, "recommendation.not_approved")


def test_recommendation_state_shows_the_whole_record() -> None:
    """Folding a recommendation's events yields everything GET /v1/recommendations/{id} shows."""
    state = domain.fold(
        [
            DRAFT,
            REVISED,
            IssuesCited(issue_ids=[ISSUE_B]),
            APPROVED,
            SUBMITTED,
            RESPONSE,
            RESPONSE,
            CLOSED,
        ]
    )
    assert isinstance(state, recommendation.RecommendationState)
    assert state.title == DRAFT.title
    assert state.body == "Honorarium KPPS minimal sesuai UMR setempat."
    assert state.addressee == "Presiden"
    assert state.issue_ids == (ISSUE_A, ISSUE_B)
    assert state.approved_by == "Deputi Politik dan Strategi"
    assert (state.submitted_to, state.submitted_at) == ("Presiden", SUBMITTED.submitted_at)
    assert len(state.responses) == 2
    assert (state.status, state.outcome, state.revision) == ("closed", CLOSED.outcome, 1)
    assert domain.region_of(state) is None


# --- access tokens ---------------------------------------------------------------------

TOKEN = UUID("0c9a7d1e-1111-4222-8333-444455556666")


def issued(role: str = "regional", regions: Sequence[str] = (KEDIRI,)) -> TokenIssued:
    return msgspec.convert(
        {
            "token_id": str(TOKEN),
            "name": "Kesbangpol Kota Kediri",
            "role": role,
            "regions": list(regions),
            "created_by": "admin",
        },
        TokenIssued,
    )


REVOKED = TokenRevoked(token_id=TOKEN, reason="Pergantian pejabat", revoked_by="admin")


@pytest.mark.parametrize(
    ("role", "regions"),
    [("regional", [KEDIRI]), ("regional", [JATIM, KEDIRI]), ("national", []), ("admin", [])],
)
def test_token_is_issued(role: str, regions: list[str]) -> None:
    """Regional tokens name known regions; other roles name none."""
    decide([], issued(role, regions))


@pytest.mark.parametrize(
    ("history", "event", "rule", "field"),
    [
        ([issued()], issued(), "token.already_issued", None),
        ([], issued("regional", []), "token.regions_required", "$.data.regions"),
        ([], issued("auditor", [KEDIRI]), "token.regions_not_allowed", "$.data.regions"),
        ([], issued("regional", [KEDIRI, "35.99"]), "region.unknown", "$.data.regions[1]"),
        ([], REVOKED, "token.unknown", "$.data.token_id"),
        ([issued(), REVOKED], REVOKED, "token.already_revoked", None),
    ],
)
def test_token_rules(
    history: list[AnyEvent], event: AnyEvent, rule: str, field: str | None
) -> None:
    """Token ids are issued and revoked once; regions fit the role and exist."""
    refused(history, event, rule, field=field)


def test_token_state() -> None:
    """The token registry shows grants and revocations; active() hides revoked tokens."""
    state = domain.fold([issued()])
    assert isinstance(state, access.AccessState)
    assert state.active(TOKEN) == access.TokenState(
        token_id=TOKEN,
        name="Kesbangpol Kota Kediri",
        role="regional",
        regions=(KEDIRI,),
        created_by="admin",
    )
    revoked = domain.evolve(state, REVOKED)
    assert isinstance(revoked, access.AccessState)
    assert revoked.active(TOKEN) is None
    assert revoked.tokens[TOKEN].revoked_by == "admin"
    assert state.active(TOKEN) is not None  # evolve did not mutate the earlier state
    assert domain.region_of(revoked) is None


NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
AT_NOW = context().written_by("admin", [], NOW)


def named(name: str, *, expires_at: datetime | None = None) -> TokenIssued:
    """A national token with a fresh id, this name and expiry."""
    return TokenIssued(
        token_id=uuid4(), name=name, role="national", created_by="admin", expires_at=expires_at
    )


@pytest.mark.parametrize(
    ("expires_at", "rule"),
    [
        (NOW, "token.expiry_past"),
        (NOW - timedelta(days=1), "token.expiry_past"),
        (NOW + access.MAX_TOKEN_LIFETIME + timedelta(seconds=1), "token.expiry_too_far"),
    ],
)
def test_token_expiry_is_bounded(expires_at: datetime, rule: str) -> None:
    """An expiry is later than now and at most MAX_TOKEN_LIFETIME ahead."""
    refused([], named("Deputi", expires_at=expires_at), rule, field="$.data.expires_at", ctx=AT_NOW)
    decide([], named("Deputi", expires_at=NOW + access.MAX_TOKEN_LIFETIME), AT_NOW)


def test_token_names_are_unique_among_live_tokens() -> None:
    """Case and spacing aside; a revoked or expired holder frees the name."""
    live = named("KPU Kota Kediri")
    refused([live], named("kpu  kota KEDIRI"), "token.name_taken", field="$.data.name", ctx=AT_NOW)
    revoked = TokenRevoked(token_id=live.token_id, revoked_by="admin")
    decide([live, revoked], named("KPU Kota Kediri"), AT_NOW)
    lapsed = named("KPU Kota Kediri", expires_at=NOW)
    decide([lapsed], named("KPU Kota Kediri"), AT_NOW)
    state = domain.fold([lapsed])
    assert isinstance(state, access.AccessState)
    assert state.active(lapsed.token_id, NOW) is None
    assert state.active(lapsed.token_id, NOW - timedelta(seconds=1)) is not None


# --- façade ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (raised(hearing_id=HEARING_ID), [f"hearing-{HEARING_ID}"]),
        (raised(), []),
        (drafted(ISSUE_A, ISSUE_B, ISSUE_A), [f"issue-{ISSUE_A}", f"issue-{ISSUE_B}"]),
        (IssuesCited(issue_ids=[ISSUE_B]), [f"issue-{ISSUE_B}"]),
        (IssueUncited(issue_id=ISSUE_A), []),
        (HELD, []),
        (REVOKED, []),
    ],
)
def test_references(event: AnyEvent, expected: list[str]) -> None:
    """references() names the other streams whose state decide() needs."""
    assert references(event) == expected


def test_context_from_streams() -> None:
    """Folded referenced streams become the context; missing streams stay missing."""
    missing = uuid4()
    states: dict[str, AnyState | None] = {
        f"hearing-{HEARING_ID}": hearing_state(),
        f"issue-{ISSUE_A}": issue_state(),
        f"issue-{missing}": None,
    }
    ctx = DecideContext.from_streams(load_regions(), states)
    assert set(ctx.hearings) == {HEARING_ID}
    assert set(ctx.issues) == {ISSUE_A}
    domain.decide(None, drafted(ISSUE_A), ctx)
    with pytest.raises(InvalidRequest, match=r"recommendation\.issue_unknown"):
        domain.decide(None, drafted(ISSUE_A, missing), ctx)


def test_state_of_another_aggregate_is_a_bug() -> None:
    """Passing a hearing's state with an issue event is a programming error, not a 4xx."""
    with pytest.raises(TypeError, match="expected IssueState"):
        domain.decide(hearing_state(), WITHDRAWN, CTX)
    with pytest.raises(TypeError, match="expected HearingState"):
        domain.evolve(issue_state(), HELD)


@pytest.mark.parametrize(
    ("module", "event"),
    [(hearing, HELD), (issue, WITHDRAWN), (recommendation, APPROVED)],
)
def test_evolve_refuses_a_stream_without_its_creation_event(
    module: object, event: AnyEvent
) -> None:
    """evolve trusts decide but still will not invent a stream from a non-creation event."""
    with pytest.raises(ValueError, match="starts with"):
        module.evolve(None, event)  # type: ignore[attr-defined]


def test_naive_datetimes_cannot_be_built_from_json() -> None:
    """Times must carry a zone: a naive scheduled_at is refused when decoding."""
    data = msgspec.json.encode(scheduled())
    naive = data.replace(b"+07:00", b"")
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        msgspec.json.decode(naive, type=HearingScheduled)
    assert msgspec.json.decode(
        data.replace(b"+07:00", b"Z"), type=HearingScheduled
    ).scheduled_at == (datetime(2021, 10, 26, 9, tzinfo=UTC))
