"""Indonesian first: problems in Indonesian on request, and the vocabulary of codes."""

from __future__ import annotations

from typing import Any

from events.domain.categories import CATEGORY_CODES
from tests.api.payloads import append, issue_raised, new_id
from tests.conftest import bearer


async def test_problem_in_indonesian_when_asked(client: Any, token_for: Any) -> None:
    """Accept-Language: id gives an Indonesian title and rule detail; English otherwise."""
    office = bearer(await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))
    iid = new_id()
    body = append(0, ("IssueRaised", issue_raised(None)))
    assert (
        await client.post(f"/v1/streams/issue-{iid}/events", json=body, headers=office)
    ).status == 201
    withdraw = append(1, ("IssueWithdrawn", {"reason": "Selesai"}))
    await client.post(f"/v1/streams/issue-{iid}/events", json=withdraw, headers=office)
    again = append(2, ("IssueWithdrawn", {"reason": "Lagi"}))
    resp = await client.post(
        f"/v1/streams/issue-{iid}/events",
        json=again,
        headers={**office, "Accept-Language": "id-ID,id;q=0.9,en;q=0.5"},
    )
    assert resp.status == 409 and resp.headers["Content-Language"] == "id"
    problem = await resp.json()
    assert problem["title"] == "Konflik keadaan"
    assert problem["detail"] == "tidak ada yang menyusul penarikan isu"
    assert "withdrawn" in problem["detail_en"] and problem["rule"] == "issue.withdrawn"
    resp = await client.post(f"/v1/streams/issue-{iid}/events", json=again, headers=office)
    problem = await resp.json()
    assert problem["title"] == "State conflict" and "detail_en" not in problem
    resp = await client.get("/v1/views/issues?limit=0", headers={**office, "Accept-Language": "id"})
    problem = await resp.json()
    assert resp.status == 422 and problem["title"] == "Permintaan tidak valid"
    assert problem["field"] == "query.limit"


async def test_vocabulary_labels_every_code(client: Any, token_for: Any) -> None:
    """Every category, status, follow-up, outcome and organization code has id/en labels."""
    office = bearer(await token_for(client, "regional", ["35.71"]))
    resp = await client.get("/v1/vocabulary", headers=office)
    assert resp.status == 200
    body = await resp.json()
    assert [t["code"] for t in body["categories"]] == list(CATEGORY_CODES)
    honorarium = next(t for t in body["categories"] if t["code"] == "budget_honorarium")
    assert honorarium["id"] == "Anggaran dan Honorarium"
    assert [t["code"] for t in body["outcomes"]] == [
        "accepted",
        "partly_accepted",
        "rejected",
        "no_response",
    ]
    assert {t["code"] for t in body["issue_follow_ups"]} >= {"cited_in_draft", "recommended"}
    assert all(t["id"] and t["en"] for terms in body.values() for t in terms)
    assert (await client.get("/v1/vocabulary")).status == 401
