"""Corrections and local time through the HTTP API: who corrects, what the views show."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.payloads import append, hearing_scheduled, issue_raised, new_id, statement
from tests.conftest import bearer


class Office:
    """A client for one token, remembering the last log position it wrote."""

    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.headers = bearer(token)
        self.last = 0

    async def post(self, sid: str, expected: Any, *events: tuple[str, dict[str, Any]]) -> Any:
        resp = await self.client.post(
            f"/v1/streams/{sid}/events", json=append(expected, *events), headers=self.headers
        )
        if resp.status == 201:
            self.last = max(self.last, (await resp.json())["last_position"])
        return resp

    async def get(self, path: str, **params: Any) -> Any:
        resp = await self.client.get(path, params=params, headers=self.headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()


@pytest.fixture
async def kediri(client: Any, token_for: Any) -> Office:
    """KPU Kota Kediri (WIB)."""
    return Office(client, await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> Office:
    """Setjen Wantannas."""
    return Office(client, await token_for(client, "national", name="Setjen Wantannas"))


async def problem(resp: Any, status: int, rule: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["rule"] == rule
    return body


async def test_issue_correction_shows_marked_value_and_history(kediri: Office) -> None:
    """IssueCorrected changes the fields it names; the board and the issue mark them."""
    iid = new_id()
    sid = f"issue-{iid}"
    raised = issue_raised(None, raised_at="2021-10-26T10:00:00+07:00")
    assert (await kediri.post(sid, 0, ("IssueRaised", raised))).status == 201
    fix = {"severity": 5, "title": "Honorarium KPPS minimal UMR", "reason": "Salah ketik"}
    assert (await kediri.post(sid, 1, ("IssueCorrected", fix))).status == 201
    state = await kediri.get(f"/v1/issues/{iid}")
    assert state["severity"] == 5 and state["title"] == fix["title"]
    assert state["corrected"] == ["severity", "title"]
    (history,) = state["corrections"]
    assert history["reason"] == "Salah ketik" and history["version"] == 2
    assert history["changes"]["severity"] == {"from": 4, "to": 5}
    # The original value is still there as of version 1.
    assert (await kediri.get(f"/v1/issues/{iid}", as_of_version=1))["severity"] == 4
    board = await kediri.get("/v1/views/issues", min_position=kediri.last)
    (item,) = board["items"]
    assert item["title"] == fix["title"] and item["corrected"] == ["severity", "title"]
    hits = await kediri.get("/v1/search", q="KPPS", min_position=kediri.last)
    assert [h["id"] for h in hits["items"]] == [iid]


@pytest.mark.parametrize(
    ("data", "status", "rule", "field"),
    [
        ({"reason": "kosong"}, 422, "correction.empty", "$.events[0].data"),
        ({"severity": 4, "reason": "sama"}, 409, "correction.unchanged", None),
        (
            {"raised_at": "2999-01-01T09:00:00+07:00", "reason": "masa depan"},
            422,
            "time.in_future",
            "$.events[0].data.raised_at",
        ),
    ],
)
async def test_bad_issue_corrections_are_refused(
    kediri: Office, data: dict[str, Any], status: int, rule: str, field: str | None
) -> None:
    """Empty, unchanged and future corrections are refused and nothing is written."""
    iid = new_id()
    await kediri.post(f"issue-{iid}", 0, ("IssueRaised", issue_raised(None)))
    body = await problem(
        await kediri.post(f"issue-{iid}", 1, ("IssueCorrected", data)), status, rule
    )
    assert body.get("field") == field
    assert (await kediri.get(f"/v1/issues/{iid}"))["version"] == 1


async def test_reason_is_required(kediri: Office) -> None:
    """A correction without a reason is a 422 that names the missing field."""
    iid = new_id()
    await kediri.post(f"issue-{iid}", 0, ("IssueRaised", issue_raised(None)))
    resp = await kediri.post(f"issue-{iid}", 1, ("IssueCorrected", {"severity": 2}))
    assert resp.status == 422
    body = await resp.json()
    assert body["field"] == "$.events[0].data" and "`reason`" in body["detail"]


async def test_national_hearing_is_corrected_by_national_staff(
    kediri: Office, national: Office
) -> None:
    """Wantannas scheduled it: Kediri records minutes and corrects them, not the hearing."""
    hid = new_id()
    sid = f"hearing-{hid}"
    assert (await national.post(sid, 0, ("HearingScheduled", hearing_scheduled()))).status == 201
    assert (await kediri.post(sid, 1, ("StatementRecorded", statement()))).status == 201
    details = {"venue": "Aula Kesbangpol", "reason": "Pindah ruang"}
    body = await problem(
        await kediri.post(sid, 2, ("HearingDetailsCorrected", details)),
        403,
        "correction.not_recorder",
    )
    assert body["type"].endswith("forbidden")
    retract = {"statement_index": 0, "reason": "Off the record"}
    await problem(
        await national.post(sid, 2, ("StatementRetracted", retract)),
        403,
        "correction.not_recorder",
    )
    assert (await national.post(sid, 2, ("HearingDetailsCorrected", details))).status == 201
    assert (await kediri.post(sid, 3, ("StatementRetracted", retract))).status == 201
    state = await kediri.get(f"/v1/hearings/{hid}")
    assert state["venue"] == "Aula Kesbangpol" and state["corrected"] == ["venue"]
    assert state["statements"][0]["retracted"] is True
    assert [c["type"] for c in state["corrections"]] == [
        "HearingDetailsCorrected",
        "StatementRetracted",
    ]
    calendar = await kediri.get("/v1/views/hearings", min_position=kediri.last)
    (item,) = calendar["items"]
    assert item["venue"] == "Aula Kesbangpol" and item["statement_count"] == 0
    hits = await kediri.get("/v1/search", q="mendengarkan", min_position=kediri.last)
    assert hits["items"] == []


async def test_wrongly_cancelled_hearing_is_corrected_to_held(kediri: Office) -> None:
    """HearingStatusCorrected turns a mistaken cancellation into the held hearing it was."""
    hid = new_id()
    sid = f"hearing-{hid}"
    await kediri.post(
        sid, 0, ("HearingScheduled", hearing_scheduled()), ("HearingCancelled", {"reason": "x"})
    )
    await problem(
        await kediri.post(sid, 2, ("HearingStatusCorrected", {"status": "held", "reason": "r"})),
        422,
        "hearing.held_details_required",
    )
    fix = {
        "status": "held",
        "held_at": "2021-10-26T09:30:00+07:00",
        "opened_by": "Kepala Kesbangpol",
        "summary": "Dengar pendapat berlangsung.",
        "reason": "Salah tandai batal",
    }
    assert (await kediri.post(sid, 2, ("HearingStatusCorrected", fix))).status == 201
    calendar = await kediri.get("/v1/views/hearings", min_position=kediri.last)
    (item,) = calendar["items"]
    assert item["status"] == "held" and item["cancel_reason"] is None
    assert item["held_at"] == "2021-10-26T09:30:00+07:00"
    assert item["held_at_utc"] == "2021-10-26T02:30:00Z"
    assert item["corrected"] == ["status"]
    assert item["held_recorded_after_seconds"] > 3600 * 24 * 365


async def test_local_time_and_local_dates(client: Any, token_for: Any) -> None:
    """A 06:00 WIB hearing on 1 March is on 1 March, offsets are kept, UTC is beside them."""
    office = Office(client, await token_for(client, "national", name="Setjen Wantannas"))
    times = {
        "35.71": "2024-03-01T06:00:00+07:00",  # Kota Kediri, WIB: 29 Feb 23:00 UTC
        "81.71": "2024-03-01T08:30:00+09:00",  # Kota Ambon, WIT: 29 Feb 23:30 UTC
        "73.71": "2024-02-29T23:30:00+08:00",  # Kota Makassar, WITA: 29 Feb 15:30 UTC
    }
    for region, at in times.items():
        data = hearing_scheduled(region, scheduled_at=at)
        assert (
            await office.post(f"hearing-{new_id()}", 0, ("HearingScheduled", data))
        ).status == 201
    march = await office.get(
        "/v1/views/hearings", min_position=office.last, **{"from": "2024-03-01", "to": "2024-03-01"}
    )
    assert sorted(i["region_code"] for i in march["items"]) == ["35.71", "81.71"]
    by_region = {i["region_code"]: i for i in march["items"]}
    assert by_region["81.71"]["scheduled_at"] == "2024-03-01T08:30:00+09:00"
    assert by_region["81.71"]["scheduled_at_utc"] == "2024-02-29T23:30:00Z"
    assert by_region["81.71"]["local_date"] == "2024-03-01"
    february = await office.get("/v1/views/hearings", **{"from": "2024-02-29", "to": "2024-02-29"})
    assert [i["region_code"] for i in february["items"]] == ["73.71"]
    # An exact instant still means that instant.
    exact = await office.get("/v1/views/hearings", **{"from": "2024-02-29T23:15:00Z"})
    assert [i["region_code"] for i in exact["items"]] == ["81.71"]
    resp = await client.get("/v1/views/hearings?from=2024-02-30", headers=office.headers)
    assert resp.status == 422 and (await resp.json())["field"] == "query.from"


async def test_issue_board_keeps_the_offset_and_shows_the_lag(kediri: Office) -> None:
    """raised_at as the office gave it, plus UTC, recorded time and the lag; local-day filter."""
    await kediri.post(
        f"issue-{new_id()}",
        0,
        ("IssueRaised", issue_raised(None, raised_at="2024-03-01T06:00:00+07:00")),
    )
    board = await kediri.get(
        "/v1/views/issues", min_position=kediri.last, **{"from": "2024-03-01", "to": "2024-03-01"}
    )
    (item,) = board["items"]
    assert item["raised_at"] == "2024-03-01T06:00:00+07:00"
    assert item["raised_at_utc"] == "2024-02-29T23:00:00Z"
    assert item["recorded_after_seconds"] > 0
    none = await kediri.get("/v1/views/issues", **{"from": "2024-02-29", "to": "2024-02-29"})
    assert none["items"] == []


async def test_time_sanity_rules(kediri: Office) -> None:
    """Holding in the future or two days early, or raising before the hearing, is refused."""
    hid = new_id()
    sid = f"hearing-{hid}"
    await kediri.post(sid, 0, ("HearingScheduled", hearing_scheduled()))
    held = {"opened_by": "Kepala Kesbangpol", "summary": "Berlangsung."}
    await problem(
        await kediri.post(sid, 1, ("HearingHeld", {**held, "held_at": "2999-01-01T09:00:00Z"})),
        422,
        "time.in_future",
    )
    await problem(
        await kediri.post(
            sid, 1, ("HearingHeld", {**held, "held_at": "2021-10-24T09:00:00+07:00"})
        ),
        422,
        "hearing.held_before_scheduled",
    )
    early = issue_raised(hid, raised_at="2021-10-20T09:00:00+07:00")
    body = await problem(
        await kediri.post(f"issue-{new_id()}", 0, ("IssueRaised", early)),
        422,
        "issue.raised_before_hearing",
    )
    assert body["field"] == "$.events[0].data.raised_at"


def participant(name: str, role: str = "Narasumber") -> dict[str, Any]:
    """One Participant of a ParticipantsRecorded payload."""
    return {
        "name": name,
        "role": role,
        "organization": {"code": "KPU", "name": "KPU Kota Kediri"},
    }


async def test_misspelled_participant_is_removed_then_recorded_again(kediri: Office) -> None:
    """ParticipantRemoved marks the entry (kept in place, with its reason) and the calendar
    stops counting it; ParticipantsRecorded then adds the right spelling."""
    hid = new_id()
    sid = f"hearing-{hid}"
    recorded = {"participants": [participant("Ismial Bafadal"), participant("Siti Aminah")]}
    assert (
        await kediri.post(
            sid, 0, ("HearingScheduled", hearing_scheduled()), ("ParticipantsRecorded", recorded)
        )
    ).status == 201
    remove = {"participant_index": 0, "reason": "Salah eja: Ismail Bafadal"}
    assert (await kediri.post(sid, 2, ("ParticipantRemoved", remove))).status == 201
    again = {"participants": [participant("Ismail Bafadal")]}
    assert (await kediri.post(sid, 3, ("ParticipantsRecorded", again))).status == 201

    state = await kediri.get(f"/v1/hearings/{hid}")
    names = [(p["name"], p["removed"], p["remove_reason"]) for p in state["participants"]]
    assert names == [
        ("Ismial Bafadal", True, "Salah eja: Ismail Bafadal"),
        ("Siti Aminah", False, None),
        ("Ismail Bafadal", False, None),
    ]
    (fix,) = state["corrections"]
    assert fix["type"] == "ParticipantRemoved" and fix["item"] == "participants[0]"
    assert fix["reason"] == remove["reason"] and fix["version"] == 3
    # History kept: as of version 2 the misspelled participant was on the record, unmarked.
    before = await kediri.get(f"/v1/hearings/{hid}", as_of_version=2)
    assert [p["removed"] for p in before["participants"]] == [False, False]
    calendar = await kediri.get("/v1/views/hearings", min_position=kediri.last)
    (item,) = calendar["items"]
    assert item["participant_count"] == 2


@pytest.mark.parametrize(
    ("data", "status", "rule", "field"),
    [
        # Out of range: the index names no participant (hostile: far beyond the list).
        ({"participant_index": 2}, 422, "hearing.participant_unknown", ".participant_index"),
        ({"participant_index": 99_999}, 422, "hearing.participant_unknown", ".participant_index"),
        ({"participant_index": -1}, 422, "event.invalid", ".participant_index"),
        ({"participant_index": "0"}, 422, "event.invalid", ".participant_index"),
        ({"participant_index": 0.5}, 422, "event.invalid", ".participant_index"),
        ({"participant_index": 0, "reason": " "}, 422, "event.invalid", ".reason"),
        ({"participant_index": 1}, 409, "hearing.participant_removed", None),
    ],
)
async def test_bad_participant_removals_are_refused(
    kediri: Office, data: dict[str, Any], status: int, rule: str, field: str | None
) -> None:
    """Unknown, negative, mistyped or already-removed participants: nothing is written."""
    hid = new_id()
    sid = f"hearing-{hid}"
    recorded = {"participants": [participant("Siti Aminah"), participant("Budi")]}
    first = {"participant_index": 1, "reason": "Tidak hadir"}
    await kediri.post(
        sid,
        0,
        ("HearingScheduled", hearing_scheduled()),
        ("ParticipantsRecorded", recorded),
        ("ParticipantRemoved", first),
    )
    body = await problem(
        await kediri.post(sid, 3, ("ParticipantRemoved", {"reason": "Salah", **data})),
        status,
        rule,
    )
    assert body.get("field") == (None if field is None else f"$.events[0].data{field}")
    assert (await kediri.get(f"/v1/hearings/{hid}"))["version"] == 3


async def test_misattributed_statement_is_corrected(kediri: Office) -> None:
    """StatementCorrected changes the named fields; the hearing marks them, keeps the history,
    and search finds the corrected text only."""
    hid = new_id()
    sid = f"hearing-{hid}"
    said = statement("Honorarium petugas pemutakhiran data pemilih terlambat dibayar.")
    await kediri.post(
        sid, 0, ("HearingScheduled", hearing_scheduled()), ("StatementRecorded", said)
    )
    fix = {
        "statement_index": 0,
        "speaker": "Siti Aminah",
        "organization": {"code": "KPU", "name": "KPU Kota Kediri"},
        "text": "Honorarium petugas pantarlih terlambat dibayar dua bulan.",
        "reason": "Salah atribusi dan salah ketik",
    }
    assert (await kediri.post(sid, 2, ("StatementCorrected", fix))).status == 201
    state = await kediri.get(f"/v1/hearings/{hid}")
    (now,) = state["statements"]
    assert now["speaker"] == "Siti Aminah" and now["text"] == fix["text"]
    assert now["corrected"] == ["organization", "speaker", "text"] and not now["retracted"]
    (history,) = state["corrections"]
    assert history["type"] == "StatementCorrected" and history["item"] == "statements[0]"
    assert history["reason"] == fix["reason"]
    assert history["changes"]["speaker"] == {"from": "Ismail Bafadal", "to": "Siti Aminah"}
    then = await kediri.get(f"/v1/hearings/{hid}", as_of_version=2)
    assert then["statements"][0]["speaker"] == "Ismail Bafadal"
    assert then["statements"][0]["corrected"] == []
    hits = await kediri.get("/v1/search", q="pantarlih", min_position=kediri.last)
    assert [h["kind"] for h in hits["items"]] == ["statement"]
    assert (await kediri.get("/v1/search", q="pemutakhiran"))["items"] == []


@pytest.mark.parametrize(
    ("data", "status", "rule", "field"),
    [
        ({"statement_index": 1, "text": "x"}, 422, "hearing.statement_unknown", ".statement_index"),
        ({"statement_index": -3, "text": "x"}, 422, "event.invalid", ".statement_index"),
        ({"statement_index": [0], "text": "x"}, 422, "event.invalid", ".statement_index"),
        ({"statement_index": 0}, 422, "correction.empty", ""),
        ({"statement_index": 0, "speaker": "Ismail Bafadal"}, 409, "correction.unchanged", None),
        ({"statement_index": 0, "text": "x" * 100_001}, 422, "event.invalid", ".text"),
        ({"statement_index": 0, "speaker": "Siti", "evil": 1}, 422, "event.invalid", ""),
    ],
)
async def test_bad_statement_corrections_are_refused(
    kediri: Office, data: dict[str, Any], status: int, rule: str, field: str | None
) -> None:
    """Unknown, mistyped, empty, unchanged or oversized corrections: nothing is written."""
    hid = new_id()
    sid = f"hearing-{hid}"
    await kediri.post(
        sid, 0, ("HearingScheduled", hearing_scheduled()), ("StatementRecorded", statement())
    )
    resp = await kediri.post(sid, 2, ("StatementCorrected", {"reason": "Salah", **data}))
    body = await problem(resp, status, rule)
    if field is None:
        assert "field" not in body
    else:
        assert body["field"].startswith(f"$.events[0].data{field}")
    assert (await kediri.get(f"/v1/hearings/{hid}"))["version"] == 2


async def test_retracted_statement_is_not_corrected(kediri: Office) -> None:
    """A retracted statement stays retracted: correcting it is 409."""
    hid = new_id()
    sid = f"hearing-{hid}"
    retract = {"statement_index": 0, "reason": "Off the record"}
    await kediri.post(
        sid,
        0,
        ("HearingScheduled", hearing_scheduled()),
        ("StatementRecorded", statement()),
        ("StatementRetracted", retract),
    )
    fix = {"statement_index": 0, "speaker": "Siti Aminah", "reason": "Salah atribusi"}
    await problem(
        await kediri.post(sid, 3, ("StatementCorrected", fix)), 409, "hearing.statement_retracted"
    )
