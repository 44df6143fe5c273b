"""Domain rules through the HTTP API, and aggregate state (current and as of a version/time)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.payloads import (
    append,
    hearing_scheduled,
    issue_raised,
    new_id,
    recommendation_drafted,
    statement,
)
from tests.conftest import bearer


class Api:
    """A tiny client for one token."""

    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.headers = bearer(token)

    async def post(self, sid: str, expected: Any, *events: tuple[str, dict[str, Any]]) -> Any:
        return await self.client.post(
            f"/v1/streams/{sid}/events", json=append(expected, *events), headers=self.headers
        )

    async def get(self, path: str) -> Any:
        return await self.client.get(path, headers=self.headers)


@pytest.fixture
async def kediri(client: Any, token_for: Any) -> Api:
    """The KPU Kota Kediri office."""
    return Api(client, await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> Api:
    """Wantannas national staff."""
    return Api(client, await token_for(client, "national", name="Setjen Wantannas"))


async def expect_rule(resp: Any, status: int, rule: str) -> None:
    """The response is a problem naming `rule` with `status`."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["rule"] == rule


async def test_first_event_must_create_the_stream(kediri: Api) -> None:
    """A stream's first event must be its creation event; creation twice is a conflict."""
    sid = f"hearing-{new_id()}"
    await expect_rule(
        await kediri.post(sid, 0, ("StatementRecorded", statement())), 409, "hearing.not_scheduled"
    )
    assert (await kediri.post(sid, 0, ("HearingScheduled", hearing_scheduled()))).status == 201
    await expect_rule(
        await kediri.post(sid, 1, ("HearingScheduled", hearing_scheduled())),
        409,
        "hearing.already_scheduled",
    )


async def test_cancelled_hearing_takes_nothing_more(kediri: Api) -> None:
    """No statements or participants on a cancelled hearing, and it cannot be held."""
    sid = f"hearing-{new_id()}"
    await kediri.post(
        sid,
        0,
        ("HearingScheduled", hearing_scheduled()),
        ("HearingCancelled", {"reason": "Pandemi"}),
    )
    await expect_rule(
        await kediri.post(sid, 2, ("StatementRecorded", statement())), 409, "hearing.cancelled"
    )
    participants = {
        "participants": [
            {
                "name": "Pusporini Endah Palupi",
                "role": "Ketua",
                "organization": {"code": "KPU", "name": "KPU Kota Kediri"},
            }
        ]
    }
    await expect_rule(
        await kediri.post(sid, 2, ("ParticipantsRecorded", participants)), 409, "hearing.cancelled"
    )
    held = {
        "held_at": "2021-10-26T09:30:00+07:00",
        "opened_by": "Kepala Kesbangpol Kota Kediri",
        "summary": "Dengar pendapat persiapan pemilu.",
    }
    await expect_rule(await kediri.post(sid, 2, ("HearingHeld", held)), 409, "hearing.cancelled")


async def test_unknown_region_is_422(national: Api) -> None:
    """A region code that is not in the Kemendagri registry is a 422 naming the field."""
    resp = await national.post(
        f"hearing-{new_id()}", 0, ("HearingScheduled", hearing_scheduled("35.99"))
    )
    assert resp.status == 422
    assert (await resp.json())["field"] == "$.events[0].data.region_code"


async def test_issue_hearing_must_exist(kediri: Api) -> None:
    """An issue naming a hearing that does not exist is a 422."""
    resp = await kediri.post(f"issue-{new_id()}", 0, ("IssueRaised", issue_raised(new_id())))
    await expect_rule(resp, 422, "issue.hearing_unknown")


async def test_recommendation_lifecycle(kediri: Api, national: Api) -> None:
    """Cited issues exist and are not withdrawn; approve, submit, respond, close in that order."""
    hid, iid, withdrawn = new_id(), new_id(), new_id()
    await kediri.post(f"hearing-{hid}", 0, ("HearingScheduled", hearing_scheduled()))
    assert (await kediri.post(f"issue-{iid}", 0, ("IssueRaised", issue_raised(hid)))).status == 201
    await kediri.post(
        f"issue-{withdrawn}",
        0,
        ("IssueRaised", issue_raised(hid)),
        ("IssueWithdrawn", {"reason": "Sudah diselesaikan"}),
    )
    rid = f"recommendation-{new_id()}"
    await expect_rule(
        await national.post(rid, 0, ("RecommendationDrafted", recommendation_drafted([new_id()]))),
        422,
        "recommendation.issue_unknown",
    )
    await expect_rule(
        await national.post(rid, 0, ("RecommendationDrafted", recommendation_drafted([withdrawn]))),
        409,
        "recommendation.issue_withdrawn",
    )
    assert (
        await national.post(rid, 0, ("RecommendationDrafted", recommendation_drafted([iid])))
    ).status == 201
    submitted = {"submitted_to": "Presiden", "submitted_at": "2021-11-30T10:00:00+07:00"}
    await expect_rule(
        await national.post(rid, 1, ("RecommendationSubmitted", submitted)),
        409,
        "recommendation.not_approved",
    )
    response = {
        "responder": "Kementerian Sekretariat Negara",
        "text": "Diterima",
        "received_at": "2021-12-10T10:00:00+07:00",
    }
    await expect_rule(
        await national.post(rid, 1, ("ResponseRecorded", response)),
        409,
        "recommendation.not_submitted",
    )
    resp = await national.post(
        rid,
        1,
        ("RecommendationApproved", {"approved_by": "Sesjen"}),
        ("RecommendationSubmitted", submitted),
        ("ResponseRecorded", response),
        ("RecommendationClosed", {"outcome": "Ditindaklanjuti"}),
    )
    assert resp.status == 201, await resp.text()
    await expect_rule(
        await national.post(rid, 5, ("RecommendationRevised", {"title": "Baru"})),
        409,
        "recommendation.closed",
    )
    state = await (await national.get(f"/v1/recommendations/{rid.split('-', 1)[1]}")).json()
    assert state["status"] == "closed" and state["version"] == 5
    # The rejected multi-event append wrote nothing: version stays 5.
    assert state["issue_ids"] == [iid]


async def test_rejected_batch_writes_nothing(kediri: Api, national: Api) -> None:
    """If any event in an append breaks a rule, none of them is stored."""
    sid = f"hearing-{new_id()}"
    resp = await kediri.post(
        sid,
        0,
        ("HearingScheduled", hearing_scheduled()),
        ("HearingCancelled", {"reason": "Banjir"}),
        ("StatementRecorded", statement()),
    )
    await expect_rule(resp, 409, "hearing.cancelled")
    assert (await national.get(f"/v1/streams/{sid}")).status == 404


async def test_aggregate_as_of_version_and_time(kediri: Api) -> None:
    """GET /v1/hearings/{id} folds the stream; as_of_version and as_of give earlier states."""
    hid = new_id()
    await kediri.post(f"hearing-{hid}", 0, ("HearingScheduled", hearing_scheduled()))
    await asyncio.sleep(0.05)
    between = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.05)
    held = {
        "held_at": "2021-10-26T09:30:00+07:00",
        "opened_by": "Kepala Kesbangpol Kota Kediri",
        "summary": "Persiapan pemilu dan pemilihan 2024.",
    }
    await kediri.post(
        f"hearing-{hid}", 1, ("StatementRecorded", statement()), ("HearingHeld", held)
    )
    now = await (await kediri.get(f"/v1/hearings/{hid}")).json()
    assert now["version"] == 3 and now["status"] == "held"
    assert now["region_code"] == "35.71" and now["venue"] == "Ruang Joyoboyo"
    assert len(now["statements"]) == 1
    v1 = await (await kediri.get(f"/v1/hearings/{hid}?as_of_version=1")).json()
    assert v1["version"] == 1 and v1["status"] == "scheduled" and v1["statements"] == []
    then = await kediri.client.get(
        f"/v1/hearings/{hid}", params={"as_of": between}, headers=kediri.headers
    )
    assert (await then.json())["version"] == 1
    resp = await kediri.client.get(
        f"/v1/hearings/{hid}", params={"as_of": "2000-01-01T00:00:00Z"}, headers=kediri.headers
    )
    assert resp.status == 404
    resp = await kediri.get(f"/v1/hearings/{hid}?as_of=yesterday")
    assert resp.status == 422
    assert (await kediri.get(f"/v1/hearings/{new_id()}")).status == 404
    assert (await kediri.get("/v1/hearings/not-a-uuid")).status == 422


async def test_regions_reference_data(kediri: Api) -> None:
    """/v1/regions serves 38 provinces and 514 regencies; a code resolves with its parent."""
    body = await (await kediri.get("/v1/regions")).json()
    levels = [r["level"] for r in body["items"]]
    assert (levels.count("province"), levels.count("regency")) == (38, 514)
    kota = await (await kediri.get("/v1/regions/35.71")).json()
    assert kota["region"]["name"] == "Kota Kediri"
    assert kota["province"]["name"] == "Jawa Timur"
    jatim = await (await kediri.get("/v1/regions/35")).json()
    assert "35.71" in [r["code"] for r in jatim["children"]]
    assert (await kediri.get("/v1/regions/99.99")).status == 404
