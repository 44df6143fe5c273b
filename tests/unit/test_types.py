"""Event schemas: strict decoding of new events, lenient decoding and upcasting of stored ones."""

import json
from typing import Any
from uuid import UUID

import msgspec
import pytest

from events.domain.categories import CATEGORIES, CATEGORY_CODES
from events.domain.organizations import ORGANIZATION_CODES, Organization
from events.domain.rules import RULES, DomainError, InvalidRequest, UnknownEventType
from events.domain.types import (
    EVENT_TYPES,
    SCHEMA_VERSIONS,
    STREAM_CATEGORIES,
    UPCASTERS,
    Event,
    EventCodec,
    HearingScheduled,
    IssueRaised,
    RecommendationDrafted,
    SchemaVersionError,
    check_stream,
    decode_new,
    decode_stored,
    encode,
    invalid_from_validation,
    stream_category,
    stream_id,
    type_name,
    upcast,
)

HEARING_ID = "6f1c2b7e-3d4a-4c5b-9e8f-0a1b2c3d4e5f"
ISSUE_ID = "2b7e6f1c-4a3d-4b5c-8f9e-5f4e3d2c1b0a"

# The three payloads external clients send, verbatim.
HEARING_SCHEDULED = {
    "region_code": "35.71",
    "title": "Dengar pendapat persiapan Pemilu dan Pemilihan 2024",
    "agenda": "Persiapan pelaksanaan pemilu dan pemilihan 2024",
    "venue": "Ruang Joyoboyo",
    "scheduled_at": "2021-10-26T09:00:00+07:00",
    "convened_by": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
    "host_organization": {"code": "KESBANGPOL", "name": "Kesbangpol Kota Kediri"},
}
ISSUE_RAISED = {
    "region_code": "35.71",
    "hearing_id": HEARING_ID,
    "raised_by": {"code": "KPU", "name": "KPU Kota Kediri"},
    "category": "budget_honorarium",
    "title": "Honorarium badan adhoc minimal sesuai UMR",
    "description": "Peningkatan beban kerja badan adhoc perlu diimbangi kenaikan honorarium.",
    "severity": 4,
}
RECOMMENDATION_DRAFTED = {
    "title": "Standar honorarium KPPS minimal UMR",
    "body": "Minimal sesuai UMR karena seperti KPPS dengan masa 1 bulan harus bekerja ekstra.",
    "addressee": "Presiden",
    "issue_ids": [ISSUE_ID],
}
KPU = {"code": "KPU", "name": "KPU Kota Kediri"}
BAWASLU = {"code": "BAWASLU", "name": "Bawaslu Kota Kediri"}

# One valid payload per event type; the round-trip test checks the table is complete.
VALID: dict[str, dict[str, Any]] = {
    "HearingScheduled": HEARING_SCHEDULED,
    "HearingRescheduled": {"scheduled_at": "2021-10-27T09:00:00+07:00", "venue": "Aula Kota"},
    "HearingCancelled": {"reason": "Ruang Joyoboyo dipakai acara lain"},
    "ParticipantsRecorded": {
        "participants": [
            {"name": "Pusporini Endah Palupi", "role": "Ketua", "organization": KPU},
            {"name": "Mansur", "role": "Ketua", "organization": BAWASLU},
        ]
    },
    "StatementRecorded": {
        "speaker": "Mansur",
        "organization": BAWASLU,
        "text": "Diperlukan integrasi regulasi pemilu dan pemilihan sehingga tidak ambigu.",
        "quote": "Kami berharap ada peninjauan kembali regulasi pelaksanaan kampanye",
    },
    "HearingHeld": {
        "held_at": "2021-10-26T09:30:00+07:00",
        "opened_by": "Kepala Kesbangpol Kota Kediri",
        "summary": "Dengar pendapat mengenai persiapan pemilu dan pemilihan 2024.",
    },
    "HearingDetailsCorrected": {
        "venue": "Aula Kantor Kesbangpol Kota Kediri",
        "reason": "Pindah ruang pada hari itu",
    },
    "ParticipantRemoved": {"participant_index": 1, "reason": "Tidak hadir; salah catat"},
    "StatementCorrected": {
        "statement_index": 0,
        "speaker": "Mansur",
        "organization": BAWASLU,
        "reason": "Salah atribusi pembicara",
    },
    "StatementRetracted": {"statement_index": 0, "reason": "Disampaikan secara off the record"},
    "HearingStatusCorrected": {"status": "scheduled", "reason": "Salah tandai sebagai batal"},
    "IssueRaised": ISSUE_RAISED,
    "IssueCorrected": {
        "severity": 5,
        "raised_at": "2021-10-26T10:15:00+07:00",
        "reason": "Salah ketik tingkat keparahan",
    },
    "IssueCategoryCorrected": {
        "category": "adhoc_bodies_welfare_safety",
        "reason": "Kesejahteraan",
    },
    "IssueEvidenceAdded": {
        "description": "Berita KPU Kota Kediri",
        "url": "https://kota-kediri.kpu.go.id/",
        "source": "KPU Kota Kediri",
    },
    "IssueWithdrawn": {"reason": "Sudah diatur dalam regulasi baru"},
    "RecommendationDrafted": RECOMMENDATION_DRAFTED,
    "IssuesCited": {"issue_ids": [ISSUE_ID]},
    "IssueUncited": {"issue_id": ISSUE_ID, "reason": "Tidak relevan"},
    "ClusterNamed": {"name": "Honor KPPS di bawah upah minimum"},
    "ClustersMerged": {"cluster_ids": [ISSUE_ID]},
    "IssueReassigned": {"issue_ids": [ISSUE_ID]},
    "RecommendationRevised": {"addressee": "Presiden Republik Indonesia"},
    "RecommendationApproved": {"approved_by": "Deputi Politik dan Strategi"},
    "RecommendationSubmitted": {
        "submitted_to": "Presiden",
        "submitted_at": "2021-11-30T10:00:00+07:00",
    },
    "ResponseRecorded": {
        "responder": "Kementerian Sekretariat Negara",
        "text": "Diterima untuk ditindaklanjuti.",
        "received_at": "2021-12-15T10:00:00+07:00",
    },
    "RecommendationClosed": {"outcome": "Honorarium KPPS dinaikkan"},
    "ProgressReported": {
        "percent": 40,
        "note": "Rancangan Perpres honorarium dibahas",
        "evidence_url": "https://jdih.setneg.go.id/perpres-honorarium",
        "reported_at": "2022-02-01T10:00:00+07:00",
    },
    "TokenIssued": {
        "token_id": "0c9a7d1e-1111-4222-8333-444455556666",
        "name": "Kesbangpol Kota Kediri",
        "role": "regional",
        "regions": ["35.71"],
        "created_by": "admin",
    },
    "TokenRevoked": {"token_id": "0c9a7d1e-1111-4222-8333-444455556666", "revoked_by": "admin"},
    "ProjectionSkipped": {
        "projection": "issue_board",
        "position": 1042,
        "event_id": "0c9a7d1e-1111-4222-8333-444455556666",
        "event_type": "IssueRaised",
        "stream_id": "issue-urn:uuid:0c9a7d1e-1111-4222-8333-444455556666",
        "reason": "Stream id yang tidak kanonis membekukan papan isu",
        "skipped_by": "ops",
    },
}


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_client_payloads_decode_exactly() -> None:
    """The documented client payloads decode into their structs, field for field."""
    hearing = decode_new("HearingScheduled", dumps(HEARING_SCHEDULED))
    assert isinstance(hearing, HearingScheduled)
    assert hearing.host_organization == Organization(
        code="KESBANGPOL", name="Kesbangpol Kota Kediri"
    )
    assert hearing.scheduled_at.utcoffset() is not None
    assert hearing.scheduled_at.isoformat() == "2021-10-26T09:00:00+07:00"

    issue = decode_new("IssueRaised", dumps(ISSUE_RAISED))
    assert isinstance(issue, IssueRaised)
    assert issue.hearing_id == UUID(HEARING_ID)
    assert (issue.severity, issue.category, issue.raised_at) == (4, "budget_honorarium", None)

    draft = decode_new("RecommendationDrafted", dumps(RECOMMENDATION_DRAFTED))
    assert isinstance(draft, RecommendationDrafted)
    assert draft.issue_ids == [UUID(ISSUE_ID)]


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_round_trips(name: str) -> None:
    """Every event type decodes its sample, and encoding gives back the same payload."""
    event = decode_new(name, dumps(VALID[name]))
    assert type_name(event) == name
    assert json.loads(encode(event)) == VALID[name]
    assert decode_stored(name, 1, encode(event)) == event


def test_sample_table_covers_every_type() -> None:
    """The sample table has exactly one payload per registered event type."""
    assert set(VALID) == set(EVENT_TYPES)


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(base))
    data.update(changes)
    return data


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    data = dict(base)
    del data[key]
    return data


def participants(n: int, **override: Any) -> list[dict[str, Any]]:
    people = [{"name": f"Peserta {i}", "role": "Anggota", "organization": KPU} for i in range(n)]
    for index, person in override.items():
        people[int(index.removeprefix("at"))] = person
    return people


@pytest.mark.parametrize(
    ("name", "data", "path"),
    [
        (
            "HearingScheduled",
            with_(HEARING_SCHEDULED, scheduled_at="2021-10-26T09:00:00"),
            "$.scheduled_at",
        ),
        ("HearingScheduled", with_(HEARING_SCHEDULED, region_code="Kota Kediri"), "$.region_code"),
        ("HearingScheduled", with_(HEARING_SCHEDULED, title=""), "$.title"),
        ("HearingScheduled", with_(HEARING_SCHEDULED, title="   "), "$.title"),
        ("HearingScheduled", with_(HEARING_SCHEDULED, title="x" * 201), "$.title"),
        ("HearingScheduled", without(HEARING_SCHEDULED, "venue"), "$"),
        (
            "HearingScheduled",
            with_(HEARING_SCHEDULED, convened_by={"code": "KPK", "name": "KPK"}),
            "$.convened_by.code",
        ),
        (
            "HearingScheduled",
            with_(HEARING_SCHEDULED, host_organization={"code": "KPU", "name": ""}),
            "$.host_organization.name",
        ),
        (
            "HearingScheduled",
            with_(HEARING_SCHEDULED, host_organization={"code": "KPU", "name": "x" * 201}),
            "$.host_organization.name",
        ),
        ("ParticipantsRecorded", {"participants": []}, "$.participants"),
        ("ParticipantsRecorded", {"participants": participants(501)}, "$.participants"),
        (
            "ParticipantsRecorded",
            {
                "participants": participants(
                    3, at2={"name": "", "role": "Ketua", "organization": KPU}
                )
            },
            "$.participants[2].name",
        ),
        (
            "ParticipantsRecorded",
            {
                "participants": participants(
                    3,
                    at1={
                        "name": "Mansur",
                        "role": "Ketua",
                        "organization": {"code": "bawaslu", "name": "Bawaslu"},
                    },
                )
            },
            "$.participants[1].organization.code",
        ),
        ("HearingHeld", with_(VALID["HearingHeld"], held_at="26/10/2021"), "$.held_at"),
        ("IssueRaised", with_(ISSUE_RAISED, severity=0), "$.severity"),
        ("IssueRaised", with_(ISSUE_RAISED, severity=6), "$.severity"),
        ("IssueRaised", with_(ISSUE_RAISED, severity="4"), "$.severity"),
        ("IssueRaised", with_(ISSUE_RAISED, category="honorarium"), "$.category"),
        ("IssueRaised", with_(ISSUE_RAISED, hearing_id="hearing-" + HEARING_ID), "$.hearing_id"),
        ("IssueRaised", with_(ISSUE_RAISED, raised_at="2021-10-26T10:00:00"), "$.raised_at"),
        ("IssueEvidenceAdded", with_(VALID["IssueEvidenceAdded"], url="ftp://kpu.go.id"), "$.url"),
        (
            "RecommendationDrafted",
            with_(RECOMMENDATION_DRAFTED, issue_ids=["bukan-uuid"]),
            "$.issue_ids[0]",
        ),
        (
            "RecommendationDrafted",
            with_(RECOMMENDATION_DRAFTED, issue_ids=[ISSUE_ID] * 201),
            "$.issue_ids",
        ),
        ("IssuesCited", {"issue_ids": []}, "$.issue_ids"),
        (
            "RecommendationSubmitted",
            with_(VALID["RecommendationSubmitted"], submitted_at="2021-11-30T10:00:00"),
            "$.submitted_at",
        ),
        ("TokenIssued", with_(VALID["TokenIssued"], role="superuser"), "$.role"),
        ("TokenIssued", with_(VALID["TokenIssued"], regions=["35.7"]), "$.regions[0]"),
    ],
)
def test_bad_payload_names_its_path(name: str, data: dict[str, Any], path: str) -> None:
    """A payload that breaks its schema is refused with the path of the offending value."""
    with pytest.raises(msgspec.ValidationError) as info:
        decode_new(name, dumps(data))
    message = str(info.value)
    if path == "$":
        assert "- at `" not in message  # a missing top-level field has no deeper path
        assert "missing required field" in message
    else:
        assert message.endswith(f"- at `{path}`"), message


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("HearingScheduled", with_(HEARING_SCHEDULED, hearing_id=HEARING_ID)),
        ("IssueRaised", with_(ISSUE_RAISED, priority="tinggi")),
        ("HearingScheduled", with_(HEARING_SCHEDULED, convened_by={**KPU, "alamat": "Kediri"})),
    ],
)
def test_new_events_reject_unknown_fields(name: str, data: dict[str, Any]) -> None:
    """Incoming payloads may not carry fields the schema does not know, at any depth."""
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        decode_new(name, dumps(data))


def test_stored_events_ignore_unknown_fields() -> None:
    """Stored payloads written by a newer build still decode; unknown fields are dropped."""
    grown = with_(
        HEARING_SCHEDULED,
        livestream_url="https://youtube.com/kpukotakediri",
        convened_by={"code": "WANTANNAS", "name": "Setjen Wantannas", "unit": "Deputi Polstra"},
    )
    event = decode_stored("HearingScheduled", 1, dumps(grown))
    assert event == decode_new("HearingScheduled", dumps(HEARING_SCHEDULED))
    grown_participants = {
        "participants": [
            {"name": "Mansur", "role": "Ketua", "organization": BAWASLU, "nip": "1975"}
        ]
    }
    mansur = {"participants": [{"name": "Mansur", "role": "Ketua", "organization": BAWASLU}]}
    assert decode_stored("ParticipantsRecorded", 1, dumps(grown_participants)) == decode_new(
        "ParticipantsRecorded", dumps(mansur)
    )


def test_stored_events_still_validate_values() -> None:
    """Leniency is about unknown fields only: a bad stored value still fails with its path."""
    with pytest.raises(msgspec.ValidationError, match=r"\$\.severity"):
        decode_stored("IssueRaised", 1, dumps(with_(ISSUE_RAISED, severity=9)))


@pytest.mark.parametrize("decode", ["new", "stored"])
def test_unknown_type_name_is_a_named_error(decode: str) -> None:
    """An unknown event type name raises UnknownEventType (422, rule event.unknown_type)."""
    with pytest.raises(UnknownEventType, match="HearingPostponed") as info:
        if decode == "new":
            decode_new("HearingPostponed", b"{}")
        else:
            decode_stored("HearingPostponed", 1, b"{}")
    assert (info.value.rule, info.value.status, info.value.field) == (
        "event.unknown_type",
        422,
        "$.type",
    )


def test_schema_versions_start_at_one_and_upcast_is_identity() -> None:
    """Every type is at schema version 1 with no upcasters, so upcasting changes nothing."""
    assert set(SCHEMA_VERSIONS) == set(EVENT_TYPES)
    assert set(SCHEMA_VERSIONS.values()) == {1}
    assert UPCASTERS == {}
    assert upcast("IssueRaised", 1, dict(ISSUE_RAISED)) == ISSUE_RAISED


# --- a fake schema break: IssueRaised v1 had "priority" (tinggi/sedang/rendah), v2 has severity.


class FakeIssueRaisedV2(Event, frozen=True, kw_only=True):
    title: str
    severity: int


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["severity"] = {"rendah": 2, "sedang": 3, "tinggi": 4}[data.pop("priority")]
    return data


FAKE_CODEC = EventCodec(
    types={"IssueRaised": FakeIssueRaisedV2},
    versions={"IssueRaised": 2},
    upcasters={("IssueRaised", 1): _v1_to_v2},
)


def test_upcaster_turns_v1_into_v2() -> None:
    """A stored v1 event is upcast step by step before it is decoded as the v2 struct."""
    v1 = {"title": "Honorarium badan adhoc minimal sesuai UMR", "priority": "tinggi"}
    event = FAKE_CODEC.decode_stored("IssueRaised", 1, dumps(v1))
    assert event == FakeIssueRaisedV2(title=v1["title"], severity=4)


def test_current_version_is_not_upcast() -> None:
    """A stored event already at the current version is decoded as is."""
    v2 = {"title": "Honorarium KPPS", "severity": 5}
    assert FAKE_CODEC.decode_stored("IssueRaised", 2, dumps(v2)) == FakeIssueRaisedV2(
        title="Honorarium KPPS", severity=5
    )


@pytest.mark.parametrize(
    ("version", "upcasters", "match"),
    [
        (3, {("IssueRaised", 1): _v1_to_v2}, "knows v1..v2"),
        (0, {("IssueRaised", 1): _v1_to_v2}, "knows v1..v2"),
        (1, {}, "no upcaster for IssueRaised v1 -> v2"),
    ],
)
def test_unreadable_schema_version_is_refused(
    version: int, upcasters: dict[tuple[str, int], Any], match: str
) -> None:
    """A version newer than the code, or a missing upcaster step, fails loudly."""
    with pytest.raises(SchemaVersionError, match=match):
        upcast(
            "IssueRaised",
            version,
            {"priority": "tinggi"},
            upcasters=upcasters,
            versions={"IssueRaised": 2},
        )


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("HearingScheduled", "hearing"),
        ("StatementRecorded", "hearing"),
        ("IssueWithdrawn", "issue"),
        ("IssueUncited", "recommendation"),
        ("ResponseRecorded", "recommendation"),
        ("TokenRevoked", "access"),
        ("ProjectionSkipped", "system"),
    ],
)
def test_stream_category(name: str, category: str) -> None:
    """Each event type belongs to one stream category."""
    assert stream_category(name) == category == STREAM_CATEGORIES[name]


def test_stream_ids() -> None:
    """Stream ids are category-uuid; the access stream is the single access-tokens."""
    assert stream_id("hearing", UUID(HEARING_ID)) == f"hearing-{HEARING_ID}"
    assert stream_id("access") == "access-tokens"
    with pytest.raises(ValueError, match="needs a uuid"):
        stream_id("issue")


@pytest.mark.parametrize(
    ("stream", "name", "ok"),
    [
        (f"hearing-{HEARING_ID}", "HearingHeld", True),
        (f"issue-{HEARING_ID}", "HearingHeld", False),
        ("hearing-kediri", "HearingHeld", False),
        (f"recommendation-{ISSUE_ID}", "IssuesCited", True),
        ("access-tokens", "TokenIssued", True),
        (f"access-{ISSUE_ID}", "TokenIssued", False),
        ("system-projections-local", "ProjectionSkipped", True),
        ("system-projections", "ProjectionSkipped", False),
        (f"issue-{ISSUE_ID}", "ProjectionSkipped", False),
        ("system-projections-local", "IssueRaised", False),
    ],
)
def test_check_stream(stream: str, name: str, ok: bool) -> None:
    """An event type may only be appended to a stream of its own category (422 otherwise)."""
    if ok:
        check_stream(stream, name)
    else:
        with pytest.raises(InvalidRequest) as info:
            check_stream(stream, name)
        assert info.value.rule == "event.wrong_stream"


def test_validation_error_becomes_invalid_request_under_data() -> None:
    """msgspec's path is re-rooted at $.data so domain and schema errors share one shape."""
    bad = {"participants": participants(3, at2={"name": "", "role": "Ketua", "organization": KPU})}
    with pytest.raises(msgspec.ValidationError) as info:
        decode_new("ParticipantsRecorded", dumps(bad))
    error = invalid_from_validation(info.value)
    assert (error.rule, error.status, error.field) == (
        "event.invalid",
        422,
        "$.data.participants[2].name",
    )
    assert error.detail == "Expected `str` of length >= 1"


def test_categories_literal_matches_labels() -> None:
    """The category Literal and the label table list the same eleven codes."""
    assert set(CATEGORY_CODES) == set(CATEGORIES)
    assert len(CATEGORIES) == 11
    assert CATEGORIES["personnel"] == ("Personnel", "SDM")
    assert CATEGORIES["regulation"][1] == "Regulasi"


def test_organization_codes() -> None:
    """The organization codes are the nine listed, and unknown codes are refused."""
    assert ORGANIZATION_CODES == (
        "KPU",
        "BAWASLU",
        "DKPP",
        "KESBANGPOL",
        "WANTANNAS",
        "PEMDA",
        "POLRI",
        "TNI",
        "OTHER",
    )
    with pytest.raises(msgspec.ValidationError, match=r"\$\.code"):
        msgspec.json.decode(b'{"code": "KPK", "name": "KPK"}', type=Organization)


def test_errors_must_use_catalogued_rules() -> None:
    """A domain error with an uncatalogued rule, or the wrong status for it, is a bug."""
    assert RULES["hearing.cancelled"][0] == 409
    with pytest.raises(ValueError, match="not catalogued"):
        DomainError("hearing.postponed", "x", 409)
    with pytest.raises(ValueError, match="not catalogued"):
        InvalidRequest("hearing.cancelled", "x")
