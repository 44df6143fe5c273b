"""A dossier's recommendations: read from the cited issues' index alone (issue 18)."""

from __future__ import annotations

import uuid

import asyncpg

from projections import issue_board, recommendations
from projections.base import create_tables
from tests.integration.plans import Capturing, plan_nodes


async def test_a_province_reads_its_cited_issues_from_the_index_alone(pool: asyncpg.Pool) -> None:
    """The recommendations citing a province's issues (and their count) come from an
    index-only scan of its cited issues: no heap page per issue. Regencies of other
    provinces and uncited issues are not counted."""
    recs = [uuid.uuid4() for _ in range(30)]
    issues = []
    for i in range(600):
        region = ("35.71", "35.06", "33.74")[i % 3]
        cited = [recs[i % 30]] if i % 4 == 0 else []
        issues.append((uuid.uuid4(), i + 1, region, region[:2], cited))
    async with pool.acquire() as conn:
        # The test server commits asynchronously; VACUUM marks pages all-visible only once
        # their rows' commits are flushed, as every commit is in production.
        await conn.execute("SET synchronous_commit = on")
        await create_tables(conn, issue_board.IssueBoard(), issue_board.SCHEMA)
        await create_tables(conn, recommendations.Recommendations(), recommendations.SCHEMA)
        await conn.executemany(
            f"INSERT INTO {issue_board.SCHEMA}.issues (id, position, region_code, province_code,"
            " category, title, description, severity, withdrawn, raised_by_code, raised_by_name,"
            " raised_at, recommendation_ids, raised_offset, raised_date, recorded_at, corrected)"
            " VALUES ($1, $2, $3, $4, 'logistics', 'Gudang', 'Bocor', 3, false, 'kpu', 'KPU',"
            " now(), $5, 25200, current_date, now(), '{}')",
            issues,
        )
        await conn.executemany(
            f"INSERT INTO {recommendations.SCHEMA}.recommendations (id, position, title, body,"
            " addressee, status, issue_ids) VALUES ($1, $2, $3, 'Isi', 'Presiden', 'draft', '{}')",
            [(r, 1000 + n, f"Rekomendasi {n}") for n, r in enumerate(recs)],
        )
        await conn.execute(f"VACUUM ANALYZE {issue_board.SCHEMA}.issues")
        capturing = Capturing(conn)
        refs, total = await recommendations.citing_region(
            capturing,  # type: ignore[arg-type]
            "35",
            limit=5,
        )
        nodes = await plan_nodes(conn, *capturing.fetched[0])
    cited = {r for _, _, region, _, rs in issues if region.startswith("35.") for r in rs}
    assert total == len(cited)
    newest = sorted(cited, key=recs.index, reverse=True)[:5]
    assert [r.id for r in refs] == [str(r) for r in newest]
    scans = [n for n in nodes if n.get("Relation Name") == "issues"]
    assert [n["Node Type"] for n in scans] == ["Index Only Scan"], scans
    assert scans[0]["Heap Fetches"] == 0
