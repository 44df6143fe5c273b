"""The loop back to the regional office and accountability, through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.payloads import hearing_scheduled, issue_raised, new_id, recommendation_drafted
from tests.api.test_corrections_api import Office, problem


@pytest.fixture
async def kediri(client: Any, token_for: Any) -> Office:
    """KPU Kota Kediri (WIB)."""
    return Office(client, await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))


@pytest.fixture
async def ambon(client: Any, token_for: Any) -> Office:
    """Kesbangpol Kota Ambon (WIT), another region."""
    return Office(client, await token_for(client, "regional", ["81.71"], "Kesbangpol Ambon"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> Office:
    """Setjen Wantannas."""
    return Office(client, await token_for(client, "national", name="Setjen Wantannas"))


async def raise_issue(office: Office, region: str = "35.71", **over: Any) -> str:
    iid = new_id()
    resp = await office.post(f"issue-{iid}", 0, ("IssueRaised", issue_raised(None, region, **over)))
    assert resp.status == 201, await resp.text()
    return iid


async def draft(national: Office, *issue_ids: str) -> str:
    rid = new_id()
    resp = await national.post(
        f"recommendation-{rid}",
        0,
        ("RecommendationDrafted", recommendation_drafted(list(issue_ids))),
    )
    assert resp.status == 201, await resp.text()
    return rid


def submitted(at: str = "2022-01-15T10:00:00+07:00", **over: Any) -> tuple[str, dict[str, Any]]:
    return ("RecommendationSubmitted", {"submitted_to": "Presiden", "submitted_at": at, **over})


APPROVED = ("RecommendationApproved", {"approved_by": "Deputi Polstra"})


async def test_issue_follows_its_recommendation(kediri: Office, national: Office) -> None:
    """open -> cited_in_draft -> recommended -> answered -> closed, with the outcome."""
    iid = await raise_issue(kediri)
    state = await kediri.get(f"/v1/issues/{iid}")
    assert state["follow_up"] == "open" and state["recommendation_ids"] == []
    rid = await draft(national, iid)
    state = await kediri.get(f"/v1/issues/{iid}", min_position=national.last)
    assert state["follow_up"] == "cited_in_draft" and state["recommendation_ids"] == [rid]
    (rec,) = state["recommendations"]
    assert rec["title"] == "Standar honorarium KPPS minimal UMR" and "body" not in rec
    sid = f"recommendation-{rid}"
    assert (await national.post(sid, 1, APPROVED, submitted())).status == 201
    state = await kediri.get(f"/v1/issues/{iid}")
    assert state["follow_up"] == "recommended"
    assert state["recommendations"][0]["response_due_at"] == "2022-02-14T10:00:00+07:00"
    progress = {
        "percent": 40,
        "note": "Rancangan Perpres dibahas",
        "reported_at": "2022-02-01T09:00:00+07:00",
    }
    answer = {
        "responder": "Kemensetneg",
        "text": "Diterima sebagian",
        "received_at": "2022-02-10T10:00:00+07:00",
        "outcome": "partly_accepted",
    }
    resp = await national.post(sid, 3, ("ProgressReported", progress), ("ResponseRecorded", answer))
    assert resp.status == 201, await resp.text()
    state = await kediri.get(f"/v1/issues/{iid}")
    assert state["follow_up"] == "answered" and state["final_outcome"] == "partly_accepted"
    rec = state["recommendations"][0]
    assert rec["progress_percent"] == 40 and rec["responses"][0]["text"] == "Diterima sebagian"
    await national.post(sid, 5, ("RecommendationClosed", {"outcome": "Perpres terbit"}))
    assert (await kediri.get(f"/v1/issues/{iid}"))["follow_up"] == "closed"
    # An as-of read is the issue's own record only.
    assert "follow_up" not in await kediri.get(f"/v1/issues/{iid}", as_of_version=1)


async def test_regional_token_reads_only_recommendations_citing_its_issues(
    kediri: Office, ambon: Office, national: Office
) -> None:
    """Kediri reads the recommendation citing its issue (without the body or Ambon's
    issue); Ambon, whose issue is not cited, gets the 404 of a missing one."""
    own = await raise_issue(kediri)
    other = await raise_issue(ambon, "81.71")
    rid = await draft(national, own)
    elsewhere = await draft(national, other)
    rec = await kediri.get(f"/v1/recommendations/{rid}")
    assert rec["issue_ids"] == [own] and rec["status"] == "draft"
    assert "body" not in rec and "addressee" not in rec
    for office, target in ((kediri, elsewhere), (ambon, rid), (kediri, new_id())):
        resp = await office.client.get(f"/v1/recommendations/{target}", headers=office.headers)
        assert resp.status == 404
        assert (await resp.json())["detail"] == f"no recommendation {target}"
    # The national view of recommendations stays national.
    resp = await kediri.client.get("/v1/views/recommendations", headers=kediri.headers)
    assert resp.status == 403


async def test_withdrawn_cited_issue_needs_attention(kediri: Office, national: Office) -> None:
    """A recommendation citing an issue withdrawn later says so and is listed for attention."""
    kept, dropped = await raise_issue(kediri), await raise_issue(kediri)
    rid = await draft(national, kept, dropped)
    quiet = await draft(national, kept)
    await kediri.post(f"issue-{dropped}", 1, ("IssueWithdrawn", {"reason": "Sudah diatur"}))
    last = max(kediri.last, national.last)
    one = await national.get(f"/v1/views/recommendations/{rid}", min_position=last)
    assert one["withdrawn_issue_ids"] == [dropped] and one["attention"] == ["cited_issue_withdrawn"]
    listing = await national.get("/v1/views/recommendations/attention")
    assert [r["id"] for r in listing["items"]] == [rid]
    assert quiet not in [r["id"] for r in listing["items"]]
    assert (await kediri.get(f"/v1/issues/{dropped}"))["follow_up"] == "withdrawn"


async def test_overdue_and_progress_by_addressee(kediri: Office, national: Office) -> None:
    """An unanswered recommendation past its due date is overdue; an answered one is not."""
    iid = await raise_issue(kediri)
    late, answered = await draft(national, iid), await draft(national, iid)
    recent = datetime.now(UTC) - timedelta(days=2)
    await national.post(
        f"recommendation-{late}",
        1,
        APPROVED,
        submitted(recent.isoformat(), response_due_at=(recent + timedelta(days=1)).isoformat()),
    )
    reply = {
        "responder": "Kemensetneg",
        "text": "Ditolak",
        "received_at": recent.isoformat(),
        "outcome": "rejected",
    }
    await national.post(
        f"recommendation-{answered}",
        1,
        APPROVED,
        submitted(recent.isoformat(), response_due_at=(recent + timedelta(days=1)).isoformat()),
        ("ResponseRecorded", reply),
    )
    overdue = await national.get("/v1/views/recommendations/overdue", min_position=national.last)
    assert [r["id"] for r in overdue["items"]] == [late]
    assert overdue["items"][0]["overdue"] is True
    assert overdue["items"][0]["attention"] == ["overdue"]
    (row,) = (await national.get("/v1/views/recommendations/progress"))["addressees"]
    assert row["addressee"] == "Presiden" and row["submitted"] == 2
    assert (row["answered"], row["overdue"]) == (1, 1)
    assert row["outcomes"]["rejected"] == 1 and row["outcomes"]["accepted"] == 0
    state = await kediri.get(f"/v1/issues/{iid}")
    assert state["final_outcome"] == "rejected"
    assert [r["overdue"] for r in state["recommendations"]].count(True) == 1


async def test_progress_rules_through_the_api(national: Office, kediri: Office) -> None:
    """Progress on a draft is 409; percent out of range and a due date before submission
    are 422 with their field; nothing is written."""
    rid = await draft(national, await raise_issue(kediri))
    sid = f"recommendation-{rid}"
    await problem(
        await national.post(sid, 1, ("ProgressReported", {"percent": 10, "note": "Awal"})),
        409,
        "recommendation.not_submitted",
    )
    body = await problem(
        await national.post(sid, 1, APPROVED, submitted(response_due_at="2022-01-01T00:00:00Z")),
        422,
        "recommendation.due_before_submission",
    )
    assert body["field"] == "$.events[1].data.response_due_at"
    assert (await national.post(sid, 1, APPROVED, submitted())).status == 201
    resp = await national.post(sid, 3, ("ProgressReported", {"percent": 101, "note": "x"}))
    assert resp.status == 422 and (await resp.json())["field"] == "$.events[0].data.percent"
    assert (await national.get(f"/v1/recommendations/{rid}"))["version"] == 3


async def test_national_staff_raise_issues_on_hearings(kediri: Office, national: Office) -> None:
    """Wantannas records an issue raised at a hearing in Kediri; Kediri sees it, stamped
    national, and cannot withdraw it (national's record)."""
    hid = new_id()
    await national.post(f"hearing-{hid}", 0, ("HearingScheduled", hearing_scheduled()))
    iid = new_id()
    resp = await national.post(f"issue-{iid}", 0, ("IssueRaised", issue_raised(hid)))
    assert resp.status == 201, await resp.text()
    stream = await kediri.get(f"/v1/streams/issue-{iid}")
    assert stream["events"][0]["metadata"]["role"] == "national"
    await problem(
        await kediri.post(f"issue-{iid}", 1, ("IssueWithdrawn", {"reason": "Salah catat"})),
        403,
        "correction.not_recorder",
    )
    await problem(
        await national.post(f"issue-{new_id()}", 0, ("IssueRaised", issue_raised(None))),
        422,
        "issue.national_needs_hearing",
    )
