"""The issue board's tables kept on apply (summary counts, coverage gaps) equal what a
fresh query over the issues gives, through corrections, withdrawals, citations and
re-categorisation, live and replayed; and the national views read from them answer
exactly what counting the issues per request answers."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from events.domain.regions import load_regions
from events.store.store import EventStore
from projections import issue_board
from projections.issue_board import IssueBoard, IssueFilters
from projections.verify import verify
from tests.integration.test_projections import caught_up, connector, event, issue, running

# Each count table against grouping the issues by its key.
COUNTS = {
    "issue_counts": "category, province_code, raised_by_code, status",
    "issue_counts_by_province": "category, province_code, status",
    "issue_counts_by_organization": "category, raised_by_code, status",
}
# The coverage gaps as the view defined them before they were kept: open issues, with
# the regions of their recurring problem's visible (open or addressed) members.
UNCOVERED_FROM_ISSUES = (
    "SELECT u.id, u.cluster_id, u.category, coalesce(r.n, 1)::int AS recurrence, u.severity, "
    "u.raised_at FROM proj_issue_board.issues u LEFT JOIN (SELECT cluster_id, "
    "count(DISTINCT region_code) AS n FROM proj_issue_board.issues "
    "WHERE status IN ('open', 'addressed') GROUP BY cluster_id) r ON r.cluster_id = u.cluster_id "
    "WHERE u.status = 'open' ORDER BY u.id"
)
REGIONS = ("35.71", "35.78", "11.71", "32.73", "35.09")


async def _seed(store: EventStore) -> list[str]:
    """Issues of two recurring problems across regions, categories and organizations, then
    every kind of change the counts and the gaps depend on."""
    ids = [str(uuid.uuid4()) for _ in range(40)]
    for n, iid in enumerate(ids):
        region = REGIONS[n % len(REGIONS)]
        events = [
            issue(
                region,
                severity=1 + n % 5,
                title=("Honorarium KPPS terlambat dibayar", "Gudang logistik bocor")[n % 2],
                category=("budget_honorarium", "logistics")[n % 2],
                raised_by={"code": ("KPU", "BAWASLU")[n % 3 == 0], "name": f"Org {region}"},
            )
        ]
        if n % 5 == 1:
            events.append(event("IssueCategoryCorrected", category="personnel", reason="salah"))
        if n % 6 == 2:
            events.append(
                event(
                    "IssueCorrected", severity=5, raised_at="2021-03-01T08:00:00+07:00", reason="r"
                )
            )
        if n % 7 == 3:
            events.append(event("IssueWithdrawn", reason="selesai"))
        await store.append(f"issue-{iid}", events, 0, region_code=region)
    rec = uuid.uuid4()
    await store.append(
        f"recommendation-{rec}",
        [
            event("RecommendationDrafted", title="T", body="B", addressee="Presiden",
                  issue_ids=ids[:6]),
            event("IssueUncited", issue_id=ids[1]),
            event("IssuesCited", issue_ids=[ids[8], ids[9]]),
        ],
        0,
    )  # fmt: skip
    return ids


async def _tables(pool: asyncpg.Pool) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """(kept counts, counted issues, kept gaps, gaps from the issues), each in key order."""
    kept_counts, counted = [], []
    for table, key in COUNTS.items():
        kept_counts += [
            (table, *r)
            for r in await pool.fetch(
                f"SELECT {key}, n FROM proj_issue_board.{table} ORDER BY {key}"
            )
        ]
        counted += [
            (table, *r)
            for r in await pool.fetch(
                f"SELECT {key}, count(*)::int FROM proj_issue_board.issues GROUP BY {key} "
                f"ORDER BY {key}"
            )
        ]
    kept = await pool.fetch(
        "SELECT id, cluster_id, category, recurrence, severity, raised_at "
        "FROM proj_issue_board.uncovered ORDER BY id"
    )
    return (
        kept_counts,
        counted,
        [tuple(r) for r in kept],
        [tuple(r) for r in await pool.fetch(UNCOVERED_FROM_ISSUES)],
    )


async def test_kept_tables_equal_fresh_queries_live_and_replayed(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Counts and gaps follow every change, in the live runner and in a replay."""
    ids = await _seed(store)
    async with running(store, database_url, pool, [IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
        counts, fresh_counts, kept, fresh_gaps = await _tables(pool)
        assert counts == fresh_counts
        assert {r[-2] for r in counts} == {"open", "addressed", "withdrawn"}
        assert kept == fresh_gaps and len(kept) > 10
        assert {r[3] for r in kept} - {1}, "some gaps recur in more than one region"
        # Later changes: the last open member of a region leaves (the recurrence of its
        # problem drops), a cited issue is uncited (back among the gaps), an open one is
        # re-categorised and corrected, and a new region raises the problem.
        before = {r[0]: r[3] for r in kept}
        gone = [i for i in ids if uuid.UUID(i) in before][:3]
        for iid in gone[:2]:
            await store.append(f"issue-{iid}", [event("IssueWithdrawn", reason="x")], "exists")
        await store.append(
            f"issue-{gone[2]}",
            [
                event("IssueCategoryCorrected", category="regulation", reason="salah"),
                event("IssueCorrected", severity=1, title="Honorarium KPPS terlambat", reason="r"),
            ],
            "exists",
        )
        rec = str(uuid.uuid4())
        await store.append(
            f"recommendation-{rec}",
            [
                event("RecommendationDrafted", title="T", body="B", addressee="KPU",
                      issue_ids=[ids[12], ids[13]]),
                event("IssueUncited", issue_id=ids[12]),
            ],
            0,
        )  # fmt: skip
        await store.append(
            f"issue-{uuid.uuid4()}",
            [issue("91.03", title="Honorarium KPPS terlambat dibayar")],
            0,
            region_code="91.03",
        )
        await caught_up(pool, store, ["issue_board"])
        counts, fresh_counts, kept, fresh_gaps = await _tables(pool)
        assert counts == fresh_counts
        assert kept == fresh_gaps
        after = {r[0]: r[3] for r in kept}
        assert uuid.UUID(ids[12]) in after and uuid.UUID(ids[13]) not in after
        assert any(after.get(i, n) != n for i, n in before.items()), "a recurrence moved"
    for window in (1, 7, 1000):
        _, diffs = await verify(connector(database_url), IssueBoard(), window=window)
        assert diffs == [], window


async def test_national_views_answer_as_counting_the_issues(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """The summary from the kept counts equals counting the issues under the same filters;
    the national gaps, page by page, equal the gaps counted over every region."""
    await _seed(store)
    async with running(store, database_url, pool, [IssueBoard()]):
        await caught_up(pool, store, ["issue_board"])
    # An instant before every issue: a filter the counts do not answer, same rows.
    early = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
    async with pool.acquire() as conn:
        for filters in (
            IssueFilters(statuses=["open", "addressed"]),
            IssueFilters(),
            IssueFilters(categories=["logistics", "personnel"], statuses=["open"]),
            IssueFilters(provinces=["35"], raised_by=["KPU"]),
            IssueFilters(provinces=["11", "32"], statuses=["withdrawn", "addressed"]),
            IssueFilters(categories=["logistics"], raised_by=["BAWASLU"], provinces=["35"]),
            IssueFilters(categories=["nope"]),
        ):
            kept = await issue_board.summary(conn, filters)
            counted = await issue_board.summary(conn, dataclasses.replace(filters, date_from=early))
            assert msgspec.json.encode(kept) == msgspec.json.encode(counted), filters
        everywhere = [r.code for r in load_regions()]
        for categories, limit in ((None, 3), (["logistics"], 2), (None, 500)):
            national = await _walk(conn, None, categories, limit)
            scoped = await _walk(conn, everywhere, categories, limit)
            assert [i.id for i in national] == [i.id for i in scoped]
            assert msgspec.json.encode(national) == msgspec.json.encode(scoped)
            key = [(-i.recurrence, -i.severity, -i.raised_at.timestamp(), i.id) for i in national]
            assert key == sorted(key) and len(set(key)) == len(key)


async def _walk(
    conn: asyncpg.Connection, scope: list[str] | None, categories: list[str] | None, limit: int
) -> list[issue_board.UncoveredItem]:
    """Every page of the gaps, following the cursors."""
    out: list[issue_board.UncoveredItem] = []
    cursor = None
    while True:
        items, cursor = await issue_board.uncovered(
            conn, scope, categories=categories, cursor=cursor, limit=limit
        )
        assert len(items) <= limit
        out += items
        if cursor is None:
            return out
