"""The national views through the HTTP API, on crafted data written through the API."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from coord.app import create_app
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS, PROJECTIONS
from projections.runner import RunnerSettings
from projections.service import ProjectionSettings
from tests.api.payloads import (
    append,
    hearing_scheduled,
    issue_raised,
    new_id,
    recommendation_drafted,
    statement,
)
from tests.conftest import bearer

# Sentences of the seed article (Kota Kediri, 26 Oct 2021).
SEED_HONORARIUM = (
    "Persoalan yang dihadapi adalah peningkatan beban kerja dari badan adhoc bisa diimbangi "
    "dengan kenaikan honorariumnya. Minimal sesuai UMR karena seperti KPPS dengan masa "
    "1 bulan harus bekerja ekstra."
)
SEED_KAMPANYE = (
    "Kami berharap ada peninjauan kembali regulasi pelaksanaan kampanye, serta persyaratan "
    "usia minimal saksi menjadi 17 th agar lebih mudah dalam perekrutan."
)


def fast_settings() -> ProjectionSettings:
    """Projection knobs for tests: short waits, quick takeover."""
    return ProjectionSettings(
        read_wait=5.0,
        heartbeat=0.3,
        runner=RunnerSettings(window=500, poll_interval=0.2, lock_retry=0.2),
    )


@pytest.fixture
async def vclient(config: Config, aiohttp_client: Any) -> Any:
    """A coord app with test-sized projection settings."""
    app = create_app(config)
    app[PROJECTION_SETTINGS] = fast_settings()
    return await aiohttp_client(app)


@dataclass
class World:
    """Crafted data: who wrote what, and the last position written."""

    client: Any
    regional: dict[str, str]
    national: dict[str, str]
    auditor: dict[str, str]
    kediri: dict[str, str]
    hearings: dict[str, str] = field(default_factory=dict)
    issues: dict[str, str] = field(default_factory=dict)
    recommendation: str = ""
    last: int = 0

    async def write(self, who: dict[str, str], sid: str, expected: Any, *events: Any) -> int:
        resp = await self.client.post(
            f"/v1/streams/{sid}/events", json=append(expected, *events), headers=who
        )
        assert resp.status == 201, await resp.text()
        self.last = int((await resp.json())["last_position"])
        return self.last

    async def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> Any:
        # Read the world's own writes: every projection catches up at its own pace.
        params.setdefault("min_position", self.last)
        headers = dict(who or self.national)
        resp = await self.client.get(path, params=params, headers=headers)
        assert resp.status == 200, await resp.text()
        assert int(resp.headers["X-Projection-Position"]) >= 0
        return await resp.json()


HONORARIUM_TITLES = {
    "35.71": "Honorarium KPPS minimal sesuai UMR",
    "35.78": "Honorarium KPPS minimal sesuai UMR daerah",
    "11.71": "Honorarium KPPS minimal sesuai UMR provinsi",
    "32.73": "Honorarium KPPS minimal UMR",
}


@pytest.fixture
async def world(vclient: Any, token_for: Any) -> World:
    """Hearings in four cities, issues (a recurring honorarium one), a recommendation."""
    w = World(
        client=vclient,
        regional=bearer(await token_for(vclient, "regional", ["35", "11", "32"], "Kesbangpol")),
        national=bearer(await token_for(vclient, "national", name="Setjen Wantannas")),
        auditor=bearer(await token_for(vclient, "auditor", name="Auditor")),
        kediri=bearer(await token_for(vclient, "regional", ["35.71"], "KPU Kota Kediri")),
    )
    h_kediri, h_sby, h_aceh = new_id(), new_id(), new_id()
    w.hearings = {"35.71": h_kediri, "35.78": h_sby, "11.71": h_aceh}
    await w.write(
        w.kediri,
        f"hearing-{h_kediri}",
        0,
        ("HearingScheduled", hearing_scheduled("35.71")),
        ("StatementRecorded", statement(SEED_HONORARIUM)),
        ("StatementRecorded", statement(SEED_KAMPANYE)),
        (
            "HearingHeld",
            {
                "held_at": "2021-10-26T09:30:00+07:00",
                "opened_by": "Kepala Kesbangpol Kota Kediri",
                "summary": "Dengar pendapat persiapan Pemilu dan Pemilihan 2024.",
            },
        ),
    )
    await w.write(
        w.regional,
        f"hearing-{h_sby}",
        0,
        (
            "HearingScheduled",
            hearing_scheduled(
                "35.78", scheduled_at="2030-03-01T09:00:00+07:00", title="DP Surabaya"
            ),
        ),
    )
    await w.write(
        w.regional,
        f"hearing-{h_aceh}",
        0,
        ("HearingScheduled", hearing_scheduled("11.71", scheduled_at="2021-11-02T09:00:00+07:00")),
        ("HearingCancelled", {"reason": "Banjir"}),
    )
    for region, title in HONORARIUM_TITLES.items():
        iid = new_id()
        w.issues[f"honor-{region}"] = iid
        who = w.kediri if region == "35.71" else w.regional
        hearing = h_kediri if region == "35.71" else None
        await w.write(
            who,
            f"issue-{iid}",
            0,
            ("IssueRaised", issue_raised(hearing, region, title=title, severity=3)),
        )
    w.issues["regulasi"] = iid = new_id()
    await w.write(
        w.kediri,
        f"issue-{iid}",
        0,
        (
            "IssueRaised",
            issue_raised(
                h_kediri,
                "35.71",
                raised_by={"code": "BAWASLU", "name": "Bawaslu Kota Kediri"},
                category="regulation",
                title="Integrasi regulasi pemilu dan pemilihan",
                description="Diperlukan integrasi regulasi pemilu dan pemilihan agar tidak ambigu.",
                severity=5,
            ),
        ),
    )
    w.issues["personil"] = iid = new_id()
    await w.write(
        w.regional,
        f"issue-{iid}",
        0,
        (
            "IssueRaised",
            issue_raised(
                None,
                "11.71",
                category="personnel",
                title="Kekurangan jumlah personil KPU",
                description="Kekurangan jumlah personil di intern KPU.",
                severity=2,
            ),
        ),
        ("IssueWithdrawn", {"reason": "Sudah terpenuhi"}),
    )
    w.recommendation = new_id()
    await w.write(
        w.national,
        f"recommendation-{w.recommendation}",
        0,
        (
            "RecommendationDrafted",
            recommendation_drafted([w.issues["honor-35.71"], w.issues["honor-11.71"]]),
        ),
    )
    return w


async def test_issue_board_content_and_status(world: World) -> None:
    """The board lists every issue with status open/addressed/withdrawn and its citations."""
    body = await world.get("/v1/views/issues", min_position=world.last)
    by_id = {i["id"]: i for i in body["items"]}
    assert len(by_id) == 6 and body["next_cursor"] is None
    cited = by_id[world.issues["honor-35.71"]]
    assert cited["status"] == "addressed"
    assert cited["recommendation_ids"] == [world.recommendation]
    assert cited["raised_by"] == {"code": "KPU", "name": "KPU Kota Kediri"}
    assert cited["hearing_id"] == world.hearings["35.71"]
    assert cited["province_code"] == "35"
    assert set(cited) == {
        "id", "region_code", "region_name", "province_code", "province_name", "hearing_id",
        "category", "title", "description",
        "severity", "status", "raised_by", "raised_at", "recommendation_ids", "cluster_id",
        "raised_at_utc", "recorded_at", "recorded_after_seconds", "corrected",
    }  # fmt: skip
    assert by_id[world.issues["honor-35.78"]]["status"] == "open"
    assert by_id[world.issues["personil"]]["status"] == "withdrawn"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "regulation"}, ["regulasi"]),
        ({"province": "11"}, ["honor-11.71", "personil"]),
        ({"region": "35.78"}, ["honor-35.78"]),
        ({"raised_by": "BAWASLU"}, ["regulasi"]),
        ({"status": "withdrawn"}, ["personil"]),
        ({"status": "open", "province": "35"}, ["honor-35.78", "regulasi"]),
        ({"severity_min": "4"}, ["regulasi"]),
        ({"severity_max": "2"}, ["personil"]),
        ({"from": "2099-01-01"}, []),
    ],
)
async def test_issue_board_filters(
    world: World, params: dict[str, str], expected: list[str]
) -> None:
    """Each filter of the board narrows the list to exactly the matching issues."""
    body = await world.get("/v1/views/issues", min_position=world.last, **params)
    assert sorted(i["id"] for i in body["items"]) == sorted(world.issues[k] for k in expected)


async def test_issue_board_hearing_filter_sort_and_keyset_pages(world: World) -> None:
    """Filter by hearing; sort by severity; pages of 2 via the cursor cover everything once."""
    body = await world.get(
        "/v1/views/issues", min_position=world.last, hearing=world.hearings["35.71"]
    )
    assert {i["id"] for i in body["items"]} == {
        world.issues["honor-35.71"],
        world.issues["regulasi"],
    }
    body = await world.get("/v1/views/issues", sort="severity")
    assert [i["severity"] for i in body["items"]][:2] == [5, 3]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "severity"}
        if cursor:
            params["cursor"] = cursor
        page = await world.get("/v1/views/issues", **params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and set(seen) == set(world.issues.values())
    resp = await world.client.get(
        "/v1/views/issues", params={"cursor": "nonsense"}, headers=world.national
    )
    assert resp.status == 422


async def test_regional_token_sees_its_regions_only(world: World) -> None:
    """A regional token's views hold its regions' data only; other regions' dossiers are 403."""
    body = await world.get("/v1/views/issues", world.kediri, min_position=world.last)
    assert {i["region_code"] for i in body["items"]} == {"35.71"}
    assert len(body["items"]) == 2
    summary = await world.get("/v1/views/issues/summary", world.kediri)
    assert {r["province_code"] for r in summary["by_category_province"]} == {"35"}
    cal = await world.get("/v1/views/hearings", world.kediri)
    assert [h["region_code"] for h in cal["items"]] == ["35.71"]
    hits = await world.get("/v1/search", world.kediri, q="honorarium")
    assert hits["items"] and all(h["kind"] != "recommendation" for h in hits["items"])
    for path in ("/v1/views/regions/35.78", "/v1/views/regions/35"):
        resp = await world.client.get(path, headers=world.kediri)
        assert resp.status == 403
    for path in ("/v1/views/recommendations", "/v1/views/activity"):
        resp = await world.client.get(path, headers=world.kediri)
        assert resp.status == 403
    resp = await world.client.get("/v1/views/issues")
    assert resp.status == 401


async def test_summary_counts(world: World) -> None:
    """The summary counts issues by category x province and by category x organization;
    the withdrawn issue only when asked for (issue 15)."""
    body = await world.get("/v1/views/issues/summary", min_position=world.last)
    rows = {(r["category"], r["province_code"]): r["count"] for r in body["by_category_province"]}
    assert rows == {
        ("budget_honorarium", "11"): 1,
        ("budget_honorarium", "32"): 1,
        ("budget_honorarium", "35"): 2,
        ("regulation", "35"): 1,
    }
    assert body["total"] == 5
    body = await world.get("/v1/views/issues/summary", include_withdrawn="true")
    rows = {(r["category"], r["province_code"]): r["count"] for r in body["by_category_province"]}
    assert rows[("personnel", "11")] == 1 and body["total"] == 6
    orgs = {
        (r["category"], r["organization"]): r["count"] for r in body["by_category_organization"]
    }
    assert orgs[("budget_honorarium", "KPU")] == 4
    assert orgs[("regulation", "BAWASLU")] == 1


async def test_recurring_clusters_and_coverage_gaps(world: World) -> None:
    """Similar titles of one category form a cluster ranked by regions; gaps list uncited ones."""
    body = await world.get("/v1/views/issues/recurring", min_position=world.last)
    top = body["clusters"][0]
    assert top["category"] == "budget_honorarium"
    assert top["region_count"] == 4 and top["province_count"] == 3
    assert sorted(top["region_codes"]) == ["11.71", "32.73", "35.71", "35.78"]
    assert sorted(top["issue_ids"]) == sorted(world.issues[f"honor-{r}"] for r in HONORARIUM_TITLES)
    assert top["recommendation_ids"] == [world.recommendation]
    assert top["label"] in HONORARIUM_TITLES.values()
    assert [c["region_count"] for c in body["clusters"]] == sorted(
        (c["region_count"] for c in body["clusters"]), reverse=True
    )
    # The withdrawn issue is in no cluster.
    assert all(world.issues["personil"] not in c["issue_ids"] for c in body["clusters"])
    assert top["provinces"] == ["11", "32", "35"]
    gaps = await world.get("/v1/views/issues/uncovered")
    ids = [i["id"] for i in gaps["items"]]
    # Uncited open issues only; the recurring ones (4 regions) before the lone severe one.
    assert ids == [world.issues[k] for k in ("honor-32.73", "honor-35.78", "regulasi")]
    assert [i["recurrence"] for i in gaps["items"]] == [4, 4, 1]
    # The board and the gaps name each issue's recurring problem by its stable id.
    assert {i["cluster_id"] for i in gaps["items"][:2]} == {top["cluster_id"]}
    board = await world.get("/v1/views/issues")
    by_id = {i["id"]: i for i in board["items"]}
    assert by_id[world.issues["honor-35.71"]]["cluster_id"] == top["cluster_id"]
    assert by_id[world.issues["personil"]]["cluster_id"] is None  # withdrawn
    assert by_id[world.issues["regulasi"]]["cluster_id"] != top["cluster_id"]


async def test_coverage_gaps_page_by_cursor(world: World) -> None:
    """Pages of one follow each other by cursor to the same list, national or regional;
    a cursor of another view is a 422 on `query.cursor`."""
    for who in (world.national, world.regional):
        whole = await world.get("/v1/views/issues/uncovered", who)
        assert whole["next_cursor"] is None and whole["items"]
        paged: list[Any] = []
        cursor = None
        while True:
            params = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
            page = await world.get("/v1/views/issues/uncovered", who, **params)
            paged += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == whole["items"]
    board = await world.get("/v1/views/issues", limit=1)
    resp = await world.client.get(
        "/v1/views/issues/uncovered",
        params={"cursor": board["next_cursor"]},
        headers=world.national,
    )
    assert resp.status == 422 and (await resp.json())["field"] == "query.cursor"


async def test_national_summary_counts_equal_counting_the_issues(world: World) -> None:
    """The counts kept on apply answer as counting the issues does (a `from` long before
    every issue makes the view count them)."""
    for params in (
        {},
        {"include_withdrawn": "true"},
        {"status": "withdrawn,open"},
        {"category": "budget_honorarium", "province": "35,11"},
        {"raised_by": "KPU"},
    ):
        kept = await world.get("/v1/views/issues/summary", **params)
        counted = await world.get("/v1/views/issues/summary", **params, **{"from": "2000-01-01"})
        assert kept == counted, params
        assert kept["total"] == sum(r["count"] for r in kept["by_category_province"])


async def test_recurring_cluster_detail(world: World) -> None:
    """One recurring problem lists its members with their regions, within the caller's scope."""
    body = await world.get("/v1/views/issues/recurring", min_position=world.last)
    top = body["clusters"][0]
    detail = await world.get(f"/v1/views/issues/recurring/{top['cluster_id']}")
    assert detail["cluster_id"] == top["cluster_id"] and detail["label"] == top["label"]
    assert {m["id"]: m["region_code"] for m in detail["members"]} == {
        world.issues[f"honor-{r}"]: r for r in HONORARIUM_TITLES
    }
    # Citing the cluster = citing its open issues (the cited ones are "addressed").
    assert sorted(detail["open_issue_ids"]) == sorted(
        m["id"] for m in detail["members"] if m["status"] == "open"
    )
    assert 0 < len(detail["open_issue_ids"]) < len(detail["members"])
    # A regional token sees its own regions' members only.
    mine = await world.get(f"/v1/views/issues/recurring/{top['cluster_id']}", world.kediri)
    assert [m["region_code"] for m in mine["members"]] == ["35.71"]
    assert mine["region_codes"] == ["35.71"] and mine["provinces"] == ["35"]
    for path, status in (
        (f"/v1/views/issues/recurring/{new_id()}", 404),
        ("/v1/views/issues/recurring/not-a-uuid", 422),
    ):
        resp = await world.client.get(path, headers=world.national)
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/problem+json"


async def test_recommendation_view(world: World) -> None:
    """A recommendation shows status, cited issues, breadth, categories and its timeline."""
    listing = await world.get("/v1/views/recommendations", min_position=world.last)
    assert [r["id"] for r in listing["items"]] == [world.recommendation]
    one = await world.get(f"/v1/views/recommendations/{world.recommendation}")
    assert one["status"] == "draft"
    assert one["addressee"] == "Presiden"
    assert one["region_count"] == 2 and one["province_count"] == 2
    assert one["categories"] == ["budget_honorarium"]
    assert [t["type"] for t in one["timeline"]] == ["RecommendationDrafted"]
    assert one["timeline"][0]["actor"]["name"] == "Setjen Wantannas"
    await world.write(
        world.national,
        f"recommendation-{world.recommendation}",
        1,
        ("RecommendationApproved", {"approved_by": "Sekjen Wantannas"}),
        (
            "RecommendationSubmitted",
            {"submitted_to": "Presiden", "submitted_at": "2021-12-01T10:00:00+07:00"},
        ),
    )
    one = await world.get(
        f"/v1/views/recommendations/{world.recommendation}", min_position=world.last
    )
    assert one["status"] == "submitted"
    assert [t["type"] for t in one["timeline"]][1:] == [
        "RecommendationApproved",
        "RecommendationSubmitted",
    ]
    resp = await world.client.get(f"/v1/views/recommendations/{new_id()}", headers=world.national)
    assert resp.status == 404


async def test_region_dossier_for_province_and_regency(world: World) -> None:
    """A dossier shows hearings by fate, issue counts and citing recommendations."""
    city = await world.get("/v1/views/regions/35.71", world.kediri, min_position=world.last)
    assert [h["id"] for h in city["hearings"]["held"]] == [world.hearings["35.71"]]
    assert city["issues"]["by_status"] == {"open": 1, "addressed": 1, "withdrawn": 0}
    assert city["issues"]["by_category"] == {"budget_honorarium": 1, "regulation": 1}
    assert [r["id"] for r in city["recommendations"]] == [world.recommendation]
    province = await world.get("/v1/views/regions/35", world.regional)
    assert province["level"] == "province"
    assert [h["id"] for h in province["hearings"]["upcoming"]] == [world.hearings["35.78"]]
    assert province["issues"]["total"] == 3
    aceh = await world.get("/v1/views/regions/11.71")
    assert [h["id"] for h in aceh["hearings"]["cancelled"]] == [world.hearings["11.71"]]
    assert aceh["hearings"]["counts"] == {"held": 0, "upcoming": 0, "cancelled": 1, "overdue": 0}
    # A province where nothing happened: its counts (all 0) and empty lists, not a 404.
    for code in ("12.71", "12"):  # a regency's counts come from its issues, a province's kept
        empty = await world.get(f"/v1/views/regions/{code}")
        assert empty["issues"]["total"] == 0, code
    assert empty["hearings"]["counts"] == {"held": 0, "upcoming": 0, "cancelled": 0, "overdue": 0}
    assert all(empty["hearings"][k] == [] for k in ("held", "upcoming", "cancelled", "overdue"))
    assert empty["issues"] == {
        "total": 0,
        "by_status": {"open": 0, "addressed": 0, "withdrawn": 0},
        "by_category": {},
        "items": [],
    }
    assert (empty["recommendations"], empty["recommendation_total"]) == ([], 0)
    resp = await world.client.get("/v1/views/regions/99.99", headers=world.national)
    assert resp.status == 404


async def test_region_dossier_lists_are_bounded_and_its_counts_are_not(world: World) -> None:
    """A province's dossier holds at most `limit` of each list (a province has thousands of
    hearings at national scale) while its counts cover everything; a bad limit is 422."""
    full = await world.get("/v1/views/regions/35", world.national, min_position=world.last)
    one = await world.get("/v1/views/regions/35?limit=1", world.national)
    assert full["issues"]["total"] == one["issues"]["total"] == 3
    assert full["issues"]["by_status"] == one["issues"]["by_status"]
    assert len(full["issues"]["items"]) == 3 and len(one["issues"]["items"]) == 1
    # newest first: the one kept is the newest of the full list
    assert one["issues"]["items"][0]["id"] == full["issues"]["items"][0]["id"]
    assert one["hearings"]["counts"] == full["hearings"]["counts"]
    counts = full["hearings"]["counts"]
    for kind in ("held", "upcoming", "cancelled", "overdue"):
        assert counts[kind] == len(full["hearings"][kind])
        assert len(one["hearings"][kind]) == min(1, counts[kind])
    assert full["recommendation_total"] == len(full["recommendations"]) >= 1
    assert one["recommendation_total"] == full["recommendation_total"]
    # A province's counts (kept on apply) are its regencies' (counted from their issues).
    regencies = [await world.get(f"/v1/views/regions/{c}") for c in ("35.71", "35.78")]
    for key in ("open", "addressed", "withdrawn"):
        assert full["issues"]["by_status"][key] == sum(
            r["issues"]["by_status"][key] for r in regencies
        )
    for kind in ("held", "upcoming", "cancelled", "overdue"):
        assert counts[kind] == sum(r["hearings"]["counts"][kind] for r in regencies)
    for bad in ("0", "501", "-1", "x", "1e3"):
        resp = await world.client.get(f"/v1/views/regions/35?limit={bad}", headers=world.national)
        assert resp.status == 422, bad
        assert (await resp.json())["field"] == "query.limit"


async def test_hearing_calendar(world: World) -> None:
    """The calendar lists hearings in time order within from/to, province and region."""
    body = await world.get("/v1/views/hearings", min_position=world.last)
    assert [h["region_code"] for h in body["items"]] == ["35.71", "11.71", "35.78"]
    assert body["items"][0]["status"] == "held" and body["items"][0]["statement_count"] == 2
    body = await world.get("/v1/views/hearings", **{"from": "2021-11-01", "to": "2021-12-31"})
    assert [h["id"] for h in body["items"]] == [world.hearings["11.71"]]
    body = await world.get("/v1/views/hearings", province="35")
    assert {h["region_code"] for h in body["items"]} == {"35.71", "35.78"}
    body = await world.get("/v1/views/hearings", region="35.78")
    assert [h["id"] for h in body["items"]] == [world.hearings["35.78"]]


@pytest.mark.parametrize(
    ("query", "kind", "needle"),
    [
        ("honorarium", "statement", "<b>honorariumnya</b>"),  # stemming: -nya
        ("kampanye saksi", "statement", "<b>kampanye</b>"),
        ("regulasi ambigu", "issue", "<b>ambigu</b>"),
        ("standar KPPS UMR", "recommendation", "<b>UMR</b>"),
    ],
)
async def test_search_indonesian(world: World, query: str, kind: str, needle: str) -> None:
    """Full-text search stems Indonesian words, ranks hits and highlights them in snippets."""
    body = await world.get("/v1/search", min_position=world.last, q=query)
    hits = [h for h in body["items"] if h["kind"] == kind]
    assert hits, body
    assert needle in hits[0]["snippet"]
    assert set(hits[0]) == {
        "kind", "id", "title", "snippet", "rank", "region_code", "region_name",
        "province_code", "province_name", "category", "status", "date", "date_utc",
        "hearing_id", "withdrawn", "cursor",
    }  # fmt: skip
    ranks = [h["rank"] for h in body["items"]]
    assert ranks == sorted(ranks, reverse=True)


async def test_activity_by_actor(world: World) -> None:
    """The activity view shows what each token wrote, filtered by actor and region."""
    body = await world.get("/v1/views/activity", world.auditor, min_position=world.last)
    assert body["items"][0]["position"] == world.last
    kediri = await world.get("/v1/views/activity", world.auditor, actor="KPU Kota Kediri")
    assert kediri["items"] and all(i["actor"]["name"] == "KPU Kota Kediri" for i in kediri["items"])
    assert {i["stream_id"].split("-")[0] for i in kediri["items"]} == {"hearing", "issue"}
    aceh = await world.get("/v1/views/activity", world.auditor, region="11")
    assert {i["region_code"] for i in aceh["items"]} == {"11.71"}
    assert all(i["actor"]["role"] == "regional" for i in aceh["items"])


async def test_read_your_writes_and_beyond_the_log(world: World) -> None:
    """min_position waits for the view; a position the log does not hold is a 422 at once."""
    iid = new_id()
    last = await world.write(
        world.kediri,
        f"issue-{iid}",
        0,
        (
            "IssueRaised",
            issue_raised(None, "35.71", title="Logistik terlambat", category="logistics"),
        ),
    )
    resp = await world.client.get(
        "/v1/views/issues", headers={**world.national, "X-Min-Position": str(last)}
    )
    assert resp.status == 200
    assert int(resp.headers["X-Projection-Position"]) >= last
    assert iid in {i["id"] for i in (await resp.json())["items"]}
    for params, headers, where in (
        ({"min_position": str(last + 1000)}, {}, "query.min_position"),
        ({}, {"X-Min-Position": str(last + 1000)}, "header.X-Min-Position"),
        ({"min_position": str(2**62)}, {}, "query.min_position"),
    ):
        started = time.monotonic()
        resp = await world.client.get(
            "/v1/views/issues", params=params, headers={**world.national, **headers}
        )
        assert resp.status == 422, await resp.text()
        assert (await resp.json())["field"] == where
        # Answered at once: waiting cannot bring a position nobody has appended.
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"min_position": "99999999999999999999999"}, {}, "query.min_position"),
        ({"min_position": str(2**62 + 1)}, {}, "query.min_position"),
        ({"min_position": "-1"}, {}, "query.min_position"),
        ({"min_position": "1e3"}, {}, "query.min_position"),
        ({"min_position": ""}, {}, "query.min_position"),
        ([("min_position", "1"), ("min_position", "2")], {}, "query.min_position"),
        ({}, {"X-Min-Position": "99999999999999999999999"}, "header.X-Min-Position"),
        ({}, {"X-Min-Position": ""}, "header.X-Min-Position"),
        ({}, {"X-Min-Position": "abc"}, "header.X-Min-Position"),
        # Both given: both are checked, not only the one that wins.
        ({"min_position": "0"}, {"X-Min-Position": "x"}, "header.X-Min-Position"),
        ({"min_position": "x"}, {"X-Min-Position": "0"}, "query.min_position"),
    ],
)
async def test_min_position_is_bounded(
    vclient: Any, token_for: Any, params: Any, headers: dict[str, str], field: str
) -> None:
    """A min_position that is not a bounded integer is a 422 naming where it came from."""
    national = bearer(await token_for(vclient, "national"))
    resp = await vclient.get("/v1/views/issues", params=params, headers={**national, **headers})
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["field"] == field


async def test_position_in_the_log_but_not_in_the_view_is_503(
    config: Config, aiohttp_client: Any, token_for: Any
) -> None:
    """The log holds the position, the projection has not reached it: a bounded wait, then
    503 projection-behind with Retry-After (this process runs no projection runner)."""
    app = create_app(msgspec.structs.replace(config, background=False))
    app[PROJECTION_SETTINGS] = dataclasses.replace(fast_settings(), read_wait=0.3)
    client = await aiohttp_client(app)
    kediri = bearer(await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))
    resp = await client.post(
        f"/v1/streams/issue-{new_id()}/events",
        json=append(0, ("IssueRaised", issue_raised(None, "35.71", category="logistics"))),
        headers=kediri,
    )
    assert resp.status == 201, await resp.text()
    last = int((await resp.json())["last_position"])
    resp = await client.get("/v1/views/issues", params={"min_position": str(last)}, headers=kediri)
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["type"].endswith("projection-behind")


async def test_projection_status(world: World) -> None:
    """GET /v1/projections reports position, head, lag and state of every projection."""
    await world.get("/v1/views/activity", world.auditor, min_position=world.last)
    resp = await world.client.get("/v1/projections", headers=world.auditor)
    assert resp.status == 200
    items = {p["name"]: p for p in (await resp.json())["items"]}
    assert set(items) == {"activity", "hearings", "issue_board", "recommendations", "search"}
    act = items["activity"]
    assert act["state"] == "running" and act["last_error"] is None
    assert act["head"] >= world.last and act["position"] == world.last
    assert act["lag_events"] == act["head"] - act["position"]
    resp = await world.client.get("/v1/projections", headers=world.kediri)
    assert resp.status == 403


async def test_rebuild_endpoint_is_admin_only_and_swaps(world: World, token_for: Any) -> None:
    """POST /v1/projections/{name}/rebuild: 403 unless admin; 202 then the view is rebuilt."""
    resp = await world.client.post("/v1/projections/search/rebuild", headers=world.national)
    assert resp.status == 403
    admin = bearer(await token_for(world.client, "admin", name="admin"))
    resp = await world.client.post("/v1/projections/nope/rebuild", headers=admin)
    assert resp.status == 404
    resp = await world.client.post("/v1/projections/search/rebuild", headers=admin)
    assert resp.status == 202
    await world.client.server.app[PROJECTIONS].rebuilds["search"]
    hits = await world.get("/v1/search", q="honorarium", min_position=world.last)
    assert any(h["kind"] == "statement" for h in hits["items"])


async def test_views_on_demo_data(config: Config, aiohttp_client: Any, tmp_path: Any) -> None:
    """On the demo data the national views have substance: recurring issues span regions."""
    from coord.demo import read_tokens

    demo = msgspec.structs.replace(config, demo=True, home=tmp_path)
    app = create_app(demo)
    app[PROJECTION_SETTINGS] = fast_settings()
    client = await aiohttp_client(app)
    tokens = read_tokens(tmp_path)
    assert tokens is not None
    national = bearer(tokens.national)
    # Wait for the whole demo log, then look.
    status = await (await client.get("/v1/projections", headers=national)).json()
    top = max(p["head"] for p in status["items"])
    resp = await client.get(
        "/v1/views/issues/recurring", params={"min_position": top}, headers=national
    )
    clusters = (await resp.json())["clusters"]
    assert clusters[0]["region_count"] >= 2
    board = await (
        await client.get("/v1/views/issues", params={"region": "35.71"}, headers=national)
    ).json()
    assert len(board["items"]) >= 7
    hits = await (
        await client.get("/v1/search", params={"q": "honorarium"}, headers=national)
    ).json()
    assert hits["items"]
    dossier = await (await client.get("/v1/views/regions/35", headers=national)).json()
    assert dossier["hearings"]["held"]


async def test_projection_metrics_exported(world: World) -> None:
    """/metrics exports each projection's position, lag and failed flag."""
    await world.get("/v1/views/issues", min_position=world.last)
    text = await (await world.client.get("/metrics")).text()
    assert 'coord_projection_position{projection="issue_board"}' in text
    assert 'coord_projection_lag_events{projection="search"}' in text
    assert 'coord_projection_failed{projection="hearings"} 0.0' in text


async def test_slow_view_is_cut_off_with_503(
    client: Any, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view query running past the bound is cancelled in PostgreSQL and answered 503."""
    from coord.http import projections as projection_http
    from projections import issue_board

    async def slow_clusters(conn: Any, *args: Any, **kwargs: Any) -> Any:
        await conn.execute("SELECT pg_sleep(5)")
        raise AssertionError("the statement timeout should have cancelled the sleep")

    monkeypatch.setattr(projection_http, "VIEW_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(issue_board, "clusters", slow_clusters)
    monkeypatch.setattr(issue_board, "stored_clusters_json", slow_clusters)  # national list
    headers = {"Authorization": f"Bearer {await token_for(client, 'national')}"}
    resp = await client.get("/v1/views/issues/recurring", headers=headers)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    assert (await resp.json())["type"].endswith("view-timeout")
    # The connection went back to the pool in a usable state.
    assert (await client.get("/v1/views/issues/summary", headers=headers)).status == 200


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        # Empty values the document's uuid/enum/pattern/integer schemas refuse.
        ("/v1/views/issues", "hearing=", "query.hearing"),
        ("/v1/views/issues/summary", "hearing=", "query.hearing"),
        ("/v1/views/issues", "category=", "query.category"),
        ("/v1/views/issues", "category=false", "query.category"),
        ("/v1/views/issues", "category=logistics,", "query.category"),
        ("/v1/views/issues/recurring", "category=false", "query.category"),
        ("/v1/views/issues/uncovered", "category=nope", "query.category"),
        ("/v1/views/issues", "province=", "query.province"),
        ("/v1/views/issues", "province=3%D9%A5", "query.province"),  # Arabic-Indic digit
        ("/v1/views/hearings", "region=", "query.region"),
        ("/v1/views/hearings", "region=35.7", "query.region"),
        ("/v1/views/activity", "actor=a&actor=b", "query.actor"),
        ("/v1/views/activity", "region=x", "query.region"),
        ("/v1/views/issues", "limit=", "query.limit"),
        ("/v1/views/issues", "limit=5&limit=6", "query.limit"),
        ("/v1/views/issues", "sort=", "query.sort"),
        ("/v1/views/issues/recurring", "similarity=", "query.similarity"),
        (
            "/v1/views/issues",
            "hearing=00000000-0000-0000-0000-000000000000&hearing=x",
            "query.hearing",
        ),
    ],
)
async def test_values_the_document_refuses_are_422(
    vclient: Any, token_for: Any, path: str, query: str, field: str
) -> None:
    """Server and document agree: a given value is validated, an empty one included."""
    auditor = bearer(await token_for(vclient, "national"))
    resp = await vclient.get(f"{path}?{query}", headers=auditor)
    assert resp.status == 422, (path, query, await resp.text())
    assert (await resp.json())["field"] == field


async def test_valid_filter_values_still_filter(world: World) -> None:
    """The stricter parsing keeps every valid spelling working."""
    for path, query in (
        ("/v1/views/issues", "category=logistics,budget_honorarium&province=35&region=35.71"),
        (
            "/v1/views/issues",
            "category=logistics&category=personnel&hearing=" + world.hearings["35.71"],
        ),
        ("/v1/views/hearings", "region=35.71,11.71&province=35"),
        ("/v1/views/activity", "actor=00000000-0000-0000-0000-000000000000"),
        ("/v1/views/issues", "cursor=&raised_by="),  # free strings: empty means no filter
    ):
        resp = await world.client.get(f"{path}?{query}", headers=world.national)
        assert resp.status == 200, (path, query, await resp.text())
