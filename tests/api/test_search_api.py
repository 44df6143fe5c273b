"""Search that finds: facts on each hit, filters, cursor pages, the field vocabulary."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.payloads import hearing_scheduled, issue_raised, new_id, statement
from tests.api.test_corrections_api import Office


@pytest.fixture
async def kediri(client: Any, token_for: Any) -> Office:
    """KPU Kota Kediri."""
    return Office(client, await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> Office:
    """Setjen Wantannas."""
    return Office(client, await token_for(client, "national", name="Setjen Wantannas"))


async def seed(kediri: Office, national: Office) -> dict[str, str]:
    """Kediri: a hearing with a statement, an UMR issue raised there, a withdrawn one.
    Ambon (national staff at a hearing there): an issue about millennial voters."""
    ids = {"hearing": new_id(), "umr": new_id(), "gone": new_id(), "ambon_hearing": new_id()}
    await kediri.post(f"hearing-{ids['hearing']}", 0, ("HearingScheduled", hearing_scheduled()))
    said = statement("Honorarium KPPS harus minimal UMR karena beban kerja berat.")
    assert (
        await kediri.post(f"hearing-{ids['hearing']}", 1, ("StatementRecorded", said))
    ).status == 201
    umr = issue_raised(ids["hearing"], title="Honorarium KPPS minimal UMR")
    assert (await kediri.post(f"issue-{ids['umr']}", 0, ("IssueRaised", umr))).status == 201
    gone = issue_raised(
        None, title="Honorarium PPS terlambat dibayar", category="budget_honorarium"
    )
    await kediri.post(f"issue-{ids['gone']}", 0, ("IssueRaised", gone))
    await kediri.post(f"issue-{ids['gone']}", 1, ("IssueWithdrawn", {"reason": "Sudah dibayar"}))
    ambon = hearing_scheduled("81.71", scheduled_at="2021-10-27T09:00:00+09:00")
    await national.post(f"hearing-{ids['ambon_hearing']}", 0, ("HearingScheduled", ambon))
    ids["ambon"] = new_id()
    milenial = issue_raised(
        ids["ambon_hearing"],
        "81.71",
        title="Partisipasi milenial rendah",
        description="Generasi milenial jarang datang ke TPS.",
        category="voter_education_participation",
    )
    assert (
        await national.post(f"issue-{ids['ambon']}", 0, ("IssueRaised", milenial))
    ).status == 201
    return ids


async def test_hits_carry_their_facts_and_synonyms_find(kediri: Office, national: Office) -> None:
    """ "pemilih muda" finds "milenial"; "upah minimum" finds "UMR"; hits say where and what."""
    ids = await seed(kediri, national)
    last = max(kediri.last, national.last)
    body = await national.get("/v1/search", q="pemilih muda", min_position=last)
    (hit,) = body["items"]
    assert hit["id"] == ids["ambon"] and hit["kind"] == "issue"
    assert (hit["region_code"], hit["region_name"]) == ("81.71", "Kota Ambon")
    assert hit["category"] == "voter_education_participation" and hit["status"] == "open"
    assert hit["hearing_id"] == ids["ambon_hearing"] and hit["withdrawn"] is False
    body = await national.get("/v1/search", q="upah minimum")
    found = {h["id"]: h for h in body["items"]}
    assert ids["umr"] in found
    statements = [h for h in body["items"] if h["kind"] == "statement"]
    assert statements and statements[0]["hearing_id"] == ids["hearing"]
    assert statements[0]["date"] == "2021-10-26T09:00:00+07:00"
    # A phrase in quotes keeps its exact meaning: no widening.
    assert (await national.get("/v1/search", q='"upah minimum"'))["items"] == []


async def test_filters_and_withdrawn_mark(kediri: Office, national: Office) -> None:
    """Region, category, status, hearing and dates narrow; withdrawn issues are marked."""
    ids = await seed(kediri, national)
    last = max(kediri.last, national.last)
    body = await national.get("/v1/search", q="honorarium", status="withdrawn", min_position=last)
    assert [(h["id"], h["withdrawn"]) for h in body["items"]] == [(ids["gone"], True)]
    body = await national.get("/v1/search", q="honorarium", hearing=ids["hearing"])
    assert {h["kind"] for h in body["items"]} == {"issue", "statement"}
    assert ids["gone"] not in {h["id"] for h in body["items"]}
    body = await national.get("/v1/search", q="milenial", region="35.71")
    assert body["items"] == []
    body = await national.get(
        "/v1/search", q="milenial", province="81", category="voter_education_participation"
    )
    assert [h["id"] for h in body["items"]] == [ids["ambon"]]
    body = await national.get("/v1/search", q="honorarium", **{"from": "2030-01-01"})
    assert [h for h in body["items"] if h["kind"] != "recommendation"] == []
    # Kediri's token never sees Ambon, whatever it asks for.
    body = await kediri.get("/v1/search", q="milenial", region="81.71")
    assert body["items"] == []


async def test_cursor_walks_every_hit_once(kediri: Office, national: Office) -> None:
    """limit=1 pages through all hits, each once, in rank order; a forged cursor is 422."""
    await seed(kediri, national)
    last = max(kediri.last, national.last)
    everything = await national.get("/v1/search", q="honorarium", limit=50, min_position=last)
    assert everything["next_cursor"] is None and len(everything["items"]) >= 3
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "honorarium", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await national.get("/v1/search", **params)
        seen += [h["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [h["id"] for h in everything["items"]]
    for forged in ("bm9wZQ==", "WyJzZWFyY2giLDEsLTFd", "WyJzZWFyY2giLCJ4IiwxXQ=="):
        resp = await national.client.get(
            "/v1/search", params={"q": "honorarium", "cursor": forged}, headers=national.headers
        )
        assert resp.status == 422, await resp.text()
        assert (await resp.json())["field"] == "query.cursor"
