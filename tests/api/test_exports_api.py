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
    resp = await fetch(
        national, "/v1/views/hearings", {"Accept": "text/csv, application/json;q=0.5"}
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
