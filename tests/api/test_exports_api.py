"""Open data: CSV and JSON Lines exports of the views, names beside codes, the summary."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.api.payloads import hearing_scheduled, issue_raised, new_id
from tests.api.test_corrections_api import Office


@pytest.fixture
async def kediri(client: Any, token_for: Any) -> Office:
    """KPU Kota Kediri."""
    return Office(client, await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> Office:
    """Setjen Wantannas."""
    return Office(client, await token_for(client, "national", name="Setjen Wantannas"))


TRICKY = 'Honorarium "KPPS", PPS dan PPK\nbelum sesuai UMR'
FORMULA = '=HYPERLINK("http://evil.example","klik")'


async def seed(kediri: Office, national: Office) -> dict[str, str]:
    """Three Kediri issues (one with quotes, comma and a line break, one a formula), one in
    Ambon (recorded by national staff at a hearing there), one withdrawn."""
    ids: dict[str, str] = {}
    for key, title in (("tricky", TRICKY), ("formula", FORMULA), ("plain", "Logistik terlambat")):
        ids[key] = new_id()
        resp = await kediri.post(
            f"issue-{ids[key]}", 0, ("IssueRaised", issue_raised(None, title=title))
        )
        assert resp.status == 201, await resp.text()
    hid = new_id()
    ambon = hearing_scheduled("81.71", scheduled_at="2021-10-27T09:00:00+09:00")
    await national.post(f"hearing-{hid}", 0, ("HearingScheduled", ambon))
    ids["ambon"] = new_id()
    resp = await national.post(
        f"issue-{ids['ambon']}", 0, ("IssueRaised", issue_raised(hid, "81.71"))
    )
    assert resp.status == 201, await resp.text()
    await kediri.post(f"issue-{ids['plain']}", 1, ("IssueWithdrawn", {"reason": "Selesai"}))
    return ids


async def fetch(
    office: Office, path: str, headers: dict[str, str] | None = None, **params: Any
) -> Any:
    resp = await office.client.get(
        path, params=params, headers={**office.headers, **(headers or {})}
    )
    assert resp.status == 200, await resp.text()
    return resp


async def test_issue_board_as_csv_has_names_quoting_and_every_page(
    kediri: Office, national: Office
) -> None:
    """format=csv: header row, region/province names beside codes, RFC 4180 quoting, a
    formula made inert, every page (limit ignored), the caller's regions only."""
    ids = await seed(kediri, national)
    last = max(kediri.last, national.last)
    resp = await fetch(kediri, "/v1/views/issues", format="csv", limit=1, min_position=last)
    assert resp.content_type == "text/csv" and resp.charset == "utf-8"
    raw = await resp.read()
    assert b"\r\n" in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert sorted(r["id"] for r in rows) == sorted(ids[k] for k in ("tricky", "formula", "plain"))
    header = raw.decode().split("\r\n", 1)[0].split(",")
    assert header.index("region_name") == header.index("region_code") + 1
    by_id = {r["id"]: r for r in rows}
    tricky = by_id[ids["tricky"]]
    assert tricky["title"] == TRICKY
    assert (tricky["region_name"], tricky["province_name"]) == ("Kota Kediri", "Jawa Timur")
    assert tricky["raised_by.code"] == "KPU"
    assert by_id[ids["formula"]]["title"] == "'" + FORMULA
    assert by_id[ids["plain"]]["status"] == "withdrawn"
    # National staff see Ambon too, and the JSON view carries the names as well.
    board = await national.get("/v1/views/issues", region="81.71")
    (item,) = board["items"]
    assert item["region_name"] == "Kota Ambon" and item["province_name"] == "Maluku"


async def test_accept_header_chooses_json_lines(kediri: Office, national: Office) -> None:
    """Accept: application/jsonl streams one JSON object per line; text/csv gives CSV;
    ?format wins over Accept."""
    await seed(kediri, national)
    last = max(kediri.last, national.last)
    resp = await fetch(
        national, "/v1/views/issues", {"Accept": "application/jsonl"}, min_position=last
    )
    assert resp.content_type == "application/jsonl"
    lines = (await resp.text()).splitlines()
    assert len(lines) == 4 and {json.loads(line)["region_code"] for line in lines} == {
        "35.71",
        "81.71",
    }
    # The hearings read model too must have the seeded events (it follows the log apart).
    resp = await fetch(
        national,
        "/v1/views/hearings",
        {"Accept": "text/csv, application/json;q=0.5"},
        min_position=last,
    )
    assert resp.content_type == "text/csv"
    assert "Kota Ambon" in await resp.text()
    resp = await fetch(national, "/v1/views/hearings", {"Accept": "text/csv"}, format="json")
    assert resp.content_type == "application/json"


async def test_summary_totals_and_withdrawn_left_out(kediri: Office, national: Office) -> None:
    """The summary has totals, leaves withdrawn issues out unless asked, and exports."""
    await seed(kediri, national)
    last = max(kediri.last, national.last)
    body = await national.get("/v1/views/issues/summary", min_position=last)
    assert body["total"] == 3
    names = {p["province_code"]: p["province_name"] for p in body["by_province"]}
    assert names == {"35": "Jawa Timur", "81": "Maluku"}
    assert (await national.get("/v1/views/issues/summary", include_withdrawn="true"))["total"] == 4
    assert (await national.get("/v1/views/issues/summary", status="withdrawn"))["total"] == 1
    resp = await fetch(national, "/v1/views/issues/summary", format="csv")
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    (total,) = [r for r in rows if r["breakdown"] == "total"]
    assert total["count"] == "3"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xlsx"}, "query.format"),
        ({"format": "csv", "cursor": "bm90LWEtY3Vyc29y"}, "query.cursor"),
        ({"format": "csv", "include_withdrawn": "maybe"}, "query.include_withdrawn"),
    ],
)
async def test_bad_export_requests_are_422(
    national: Office, params: dict[str, str], field: str
) -> None:
    """An unknown format or a bad cursor is a problem, not a half-written file."""
    path = "/v1/views/issues/summary" if "include_withdrawn" in params else "/v1/views/issues"
    resp = await national.client.get(path, params=params, headers=national.headers)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["field"] == field


async def test_region_dossier_lists_issues_and_overdue_hearings(
    kediri: Office, national: Office
) -> None:
    """A past hearing neither held nor cancelled is overdue; the dossier lists its issues."""
    ids = await seed(kediri, national)
    hid = new_id()
    await kediri.post(f"hearing-{hid}", 0, ("HearingScheduled", hearing_scheduled()))
    city = await kediri.get("/v1/views/regions/35.71", min_position=kediri.last)
    assert [h["id"] for h in city["hearings"]["overdue"]] == [hid]
    assert city["hearings"]["upcoming"] == []
    assert city["province_name"] == "Jawa Timur"
    assert {i["id"] for i in city["issues"]["items"]} == {
        ids[k] for k in ("tricky", "formula", "plain")
    }


async def test_recommendation_exports(kediri: Office, national: Office) -> None:
    """Recommendations export as CSV for national staff (the regional 403 stays)."""
    ids = await seed(kediri, national)
    rid = new_id()
    draft = {
        "title": "Standar honorarium",
        "body": "Isi",
        "addressee": "Presiden",
        "issue_ids": [ids["tricky"]],
    }
    await national.post(f"recommendation-{rid}", 0, ("RecommendationDrafted", draft))
    resp = await fetch(
        national, "/v1/views/recommendations", format="csv", min_position=national.last
    )
    (row,) = list(csv.DictReader(io.StringIO(await resp.text())))
    assert row["id"] == rid and row["issue_ids"] == ids["tricky"]
    resp = await kediri.client.get(
        "/v1/views/recommendations", params={"format": "csv"}, headers=kediri.headers
    )
    assert resp.status == 403


async def test_search_exports_in_the_callers_scope(kediri: Office, national: Office) -> None:
    """Search answers as CSV and JSON Lines: every hit (limit ignored), the filters, names
    beside codes, RFC 4180 quoting of a title with a comma, quotes and a line break, and a
    regional token's hits only."""
    ids = await seed(kediri, national)
    last = max(kediri.last, national.last)
    resp = await fetch(
        kediri, "/v1/search", q="honorarium", format="csv", limit=1, min_position=last
    )
    assert resp.content_type == "text/csv" and resp.charset == "utf-8"
    raw = await resp.text()
    # The quoted cell as RFC 4180 spells it: in quotes, quotes doubled, the line break kept.
    assert '"Honorarium ""KPPS"", PPS dan PPK\nbelum sesuai UMR"' in raw
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert {r["id"] for r in rows} == {ids[k] for k in ("tricky", "formula", "plain")}
    assert {r["region_code"] for r in rows} == {"35.71"}
    header = raw.split("\r\n", 1)[0].split(",")
    assert header.index("region_name") == header.index("region_code") + 1
    by_id = {r["id"]: r for r in rows}
    assert by_id[ids["tricky"]]["title"] == TRICKY
    assert (by_id[ids["tricky"]]["region_name"], by_id[ids["tricky"]]["province_name"]) == (
        "Kota Kediri",
        "Jawa Timur",
    )
    assert by_id[ids["plain"]]["withdrawn"] == "true"
    # National staff find Ambon's issue too; a filter narrows the export as it does the view.
    resp = await fetch(national, "/v1/search", {"Accept": "application/jsonl"}, q="honorarium")
    assert resp.content_type == "application/jsonl"
    hits = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert ids["ambon"] in {h["id"] for h in hits}
    resp = await fetch(national, "/v1/search", q="honorarium", province="81", format="jsonl")
    (hit,) = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert (hit["id"], hit["province_name"], hit["region_name"]) == (
        ids["ambon"],
        "Maluku",
        "Kota Ambon",
    )
    resp = await national.client.get(
        "/v1/search",
        params={"q": "honorarium", "format": "csv", "cursor": "bm90LWEtY3Vyc29y"},
        headers=national.headers,
    )
    assert resp.status == 422 and (await resp.json())["field"] == "query.cursor"


async def test_progress_by_addressee_exports(kediri: Office, national: Office) -> None:
    """The progress view exports one row per addressee with a column per outcome, quoting
    an addressee with a comma, quotes and a line break; a regional token stays 403."""
    iid = (await seed(kediri, national))["tricky"]
    addressee = 'Menteri "PAN", RB\nKemenpan'
    rid = new_id()
    draft = {"title": "Standar", "body": "Isi", "addressee": addressee, "issue_ids": [iid]}
    reply = {"responder": "Kemenpan", "text": "Diterima", "received_at": "2022-02-01T09:00:00Z"}
    resp = await national.post(
        f"recommendation-{rid}",
        0,
        ("RecommendationDrafted", draft),
        ("RecommendationApproved", {"approved_by": "Deputi"}),
        (
            "RecommendationSubmitted",
            {"submitted_to": "Menteri", "submitted_at": "2022-01-15T10:00:00+07:00"},
        ),
        ("ResponseRecorded", {**reply, "outcome": "partly_accepted"}),
    )
    assert resp.status == 201, await resp.text()
    resp = await fetch(
        national,
        "/v1/views/recommendations/progress",
        {"Accept": "text/csv"},
        min_position=national.last,
    )
    raw = await resp.text()
    assert '"Menteri ""PAN"", RB\nKemenpan"' in raw
    (row,) = list(csv.DictReader(io.StringIO(raw)))
    assert row["addressee"] == addressee
    assert (row["submitted"], row["answered"]) == ("1", "1")
    assert (row["outcomes.partly_accepted"], row["outcomes.accepted"]) == ("1", "0")
    body = await national.get("/v1/views/recommendations/progress")
    assert body["addressees"][0]["outcomes"]["partly_accepted"] == 1
    resp = await kediri.client.get(
        "/v1/views/recommendations/progress", params={"format": "csv"}, headers=kediri.headers
    )
    assert resp.status == 403 and resp.content_type == "application/problem+json"


async def test_activity_export_names_regions(kediri: Office, national: Office) -> None:
    """Activity rows carry region and province names beside the codes."""
    await seed(kediri, national)
    last = max(kediri.last, national.last)
    resp = await fetch(national, "/v1/views/activity", region="81", format="csv", min_position=last)
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert rows and {(r["region_name"], r["province_code"], r["province_name"]) for r in rows} == {
        ("Kota Ambon", "81", "Maluku")
    }
