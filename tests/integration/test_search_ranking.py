"""Search's bounded ranking (issue 18): the first page equals ranking every match."""

from __future__ import annotations

import asyncpg
import pytest

from projections import hearings, issue_board, recommendations, search
from projections.base import create_tables
from tests.integration.plans import Capturing, plan_nodes


@pytest.fixture(
    params=[(search.WALK, search.GIN_ROW_COST), (3, search.GIN_ROW_COST), (3, 10**9)],
    ids=["walk", "index", "farther"],
)
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Each candidate set from its walk in log order (the documents here are fewer than
    `WALK`); with a walk of 3 documents, from its GIN index; or, when the index is made
    dear, from the longer walk (a set that found none in the first still asks the
    index): the same pages every way."""
    length, cost = request.param
    monkeypatch.setattr(search, "WALK", length)
    monkeypatch.setattr(search, "GIN_ROW_COST", cost)
    return int(length)


async def _documents(conn: asyncpg.Connection, rows: list[tuple[str, int, str, str]]) -> None:
    """A search schema holding (kind, position, title, body) documents, and the (empty)
    read models a hit's facts are joined from."""
    for projection, schema in (
        (search.Search(), search.SCHEMA),
        (issue_board.IssueBoard(), issue_board.SCHEMA),
        (hearings.Hearings(), hearings.SCHEMA),
        (recommendations.Recommendations(), recommendations.SCHEMA),
    ):
        if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
            await create_tables(conn, projection, schema)
    await conn.executemany(
        f"INSERT INTO {search.SCHEMA}.documents (doc_id, kind, id, position, region_code, "
        "title, body) VALUES ($1, $2, $3, $4, '35.71', $5, $6)",
        [(f"{kind}:{pos}", kind, str(pos), pos, title, body) for kind, pos, title, body in rows],
    )
    await conn.execute(f"ANALYZE {search.SCHEMA}.documents")


async def _page(
    conn: asyncpg.Connection, query: str, candidates: int | None, scope: list[str] | None = None
) -> list[str]:
    """The page, asked as the whole statement and (bounded) walks first with hints, the
    second time as the hints learned it: the same page every way."""
    hints = search.SearchHints()
    pages = []
    for h in (None, hints, hints) if candidates is not None else (None,):
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            hits = await search.search(
                conn, query, scope=scope, limit=5, candidates=candidates, hints=h
            )
        pages.append([f"{h.kind}:{h.id}:{h.rank}" for h in hits])
    if candidates is not None:
        # And as the API asks a page without filters: generic plans for the first walks.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await _apply(conn, search.GENERIC_SETTINGS)
            hits = await search.search(
                conn,
                query,
                scope=scope,
                limit=5,
                candidates=candidates,
                hints=search.SearchHints(),
                settings_applied=True,
                generic=True,
            )
        pages.append([f"{h.kind}:{h.id}:{h.rank}" for h in hits])
    assert all(p == pages[0] for p in pages), (query, pages)
    return pages[0]


async def _apply(conn: asyncpg.Connection, settings: tuple[tuple[str, str], ...]) -> None:
    """Run this transaction with `settings`, as the API's search snapshot does."""
    for name, value in settings:
        await conn.execute("SELECT set_config($1, $2, true)", name, value)


async def test_late_title_matches_reach_the_first_page(pool: asyncpg.Pool, walk: int) -> None:
    """Many early body-only matches, the best (title) matches last: still the same page."""
    body = "Honorarium badan ad hoc belum cair; logistik pemilu terlambat."
    rows = [("statement", p, "Ketua KPU (KPU)", body) for p in range(1, 61)]
    rows += [("issue", p, f"Honorarium terlambat {p}", body) for p in range(100, 108)]
    rows += [("issue", 200, "Gudang logistik", "Gudang logistik kurang aman; honorarium.")]
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        for query in ("honorarium", "logistik", "honorarium -gudang", '"badan ad hoc"'):
            everything = await _page(conn, query, None)
            assert await _page(conn, query, 5) == everything, query
        # The title set is what found them: the earliest 5 matches are all statements.
        page = await _page(conn, "honorarium", 5)
        assert [p.split(":")[1] for p in page] == ["100", "101", "102", "103", "104"]
        # The exclusion holds in the title set too.
        assert all(":200:" not in p for p in await _page(conn, "honorarium -gudang", 5))


async def test_or_query_finds_late_documents_with_every_word(pool: asyncpg.Pool, walk: int) -> None:
    """ "a or b": early title hits of one word do not hide later documents with both."""
    rows = [("statement", p, "Ketua KPU Kota Kediri", "Laporan singkat.") for p in range(1, 41)]
    rows += [("issue", p, f"Masalah di Kota Kediri {p}", "Gudang logistik.") for p in (90, 91)]
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        everything = await _page(conn, "kediri or gudang", None)
        assert [p.split(":")[1] for p in everything[:2]] == ["90", "91"]
        assert await _page(conn, "kediri or gudang", 5) == everything


async def test_bounded_ranking_sees_only_its_candidates(pool: asyncpg.Pool, walk: int) -> None:
    """The bound is real: a body-only match beyond the candidates is not ranked."""
    short = "Laporan singkat honorarium."
    rows = [("statement", p, "Ketua KPU (KPU)", short) for p in range(1, 11)]
    rows += [("statement", 50, "Ketua KPU (KPU)", "honorarium honorarium honorarium honorarium")]
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        everything = await _page(conn, "honorarium", None)
        assert everything[0].startswith("statement:50:")
        assert all(not p.startswith("statement:50:") for p in await _page(conn, "honorarium", 5))


async def test_a_set_short_in_its_first_walk_reads_on(pool: asyncpg.Pool, walk: int) -> None:
    """One match in three documents: the first walk of 3 finds too few, and the set is
    filled from farther on (or the index): the earliest matches, never a non-match."""
    rows = [
        ("statement", p, "Ketua KPU (KPU)", "Honorarium belum cair." if p % 3 == 0 else "Rapat.")
        for p in range(1, 41)
    ]
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        everything = await _page(conn, "honorarium", None)
        assert [p.split(":")[1] for p in everything] == ["3", "6", "9", "12", "15"]
        assert await _page(conn, "honorarium", 5) == everything


async def test_scoped_sets_count_what_their_walk_saw(pool: asyncpg.Pool, walk: int) -> None:
    """A regional scope: a walk that read every document in scope needs no index, and
    one that did not still reaches the scope's late title matches."""
    body = "Honorarium belum cair."
    rows = [("statement", p, "Ketua KPU (KPU)", body) for p in range(1, 31)]
    rows += [("issue", p, f"Honorarium {p}", body) for p in range(31, 36)]
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        pages = [await _page(conn, "honorarium", c, scope=["35.71"]) for c in (None, 5)]
        assert [p.split(":")[1] for p in pages[0]] == ["31", "32", "33", "34", "35"]
        assert pages[1] == pages[0]


async def test_hints_ask_the_whole_statement_only_when_the_walks_are_short(
    pool: asyncpg.Pool,
) -> None:
    """A common word (in titles too) is settled by the first walks (one statement); a word
    too rare for them costs two statements once, then the hint asks the whole one at once."""
    rows = [("issue", p, f"Honorarium {p}", "Honorarium belum cair.") for p in range(1, 31)]
    rows += [("statement", 40, "Ketua KPU (KPU)", "Gudang logistik kurang aman.")]
    hints = search.SearchHints()
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        counted = Capturing(conn)
        asked = []
        for query in ("honorarium", "honorarium", "gudang", "gudang"):
            before = counted.fetches
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                hits = await search.search(
                    counted,  # type: ignore[arg-type]
                    query,
                    scope=None,
                    limit=5,
                    hints=hints,
                )
            asked.append((query, counted.fetches - before, len(hits)))
    assert asked == [
        ("honorarium", 1, 5),
        ("honorarium", 1, 5),
        ("gudang", 2, 1),
        ("gudang", 1, 1),
    ]


def test_hints_remember_a_bounded_number_of_searches() -> None:
    """The oldest search is forgotten first, so a flood of distinct queries stays bounded."""
    hints = search.SearchHints(size=2)
    hints.note(("a",), True)
    hints.note(("b",), True)
    hints.note(("a",), False)  # known: updated in place, nothing forgotten
    assert (hints.short(("a",)), hints.short(("b",))) == (False, True)
    hints.note(("c",), True)
    assert (hints.short(("a",)), hints.short(("b",)), hints.short(("c",))) == (False, True, True)
    assert len(hints._short) == 2


async def test_the_title_walk_reads_titles_from_the_index_alone(pool: asyncpg.Pool) -> None:
    """The title set's walk is an index-only scan (no heap page per document walked): rows
    are read from the table only for titles that match. Same page as ranking everything."""
    rows = [
        ("issue", p, f"Honorarium {p}" if p % 40 == 0 else f"Gudang {p}", "Logistik pemilu.")
        for p in range(1, 801)
    ]
    async with pool.acquire() as conn:
        # The test server commits asynchronously; VACUUM sets a page all-visible only once
        # its rows' commits are flushed, as every commit is in production.
        await conn.execute("SET synchronous_commit = on")
        await _documents(conn, rows)
        await conn.execute(f"VACUUM {search.SCHEMA}.documents")  # the visibility map
        assert await _page(conn, "honorarium", search.CANDIDATES) == await _page(
            conn, "honorarium", None
        )
        capturing = Capturing(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await search.search(
                capturing,  # type: ignore[arg-type]
                "honorarium",
                scope=None,
                limit=5,
                hints=search.SearchHints(),
            )
            nodes = await plan_nodes(conn, *capturing.fetched[0])
    walks = [n for n in nodes if n.get("Node Type") == "Index Only Scan"]
    assert walks, [n.get("Node Type") for n in nodes]
    assert all(n["Heap Fetches"] == 0 for n in walks), walks
    # The title walk read every document up to its bound; the table, only the matches'.
    assert max(int(n["Actual Rows"]) for n in walks) >= 5 * 40


async def test_a_national_search_walks_on_a_generic_plan_and_others_return_to_custom(
    pool: asyncpg.Pool,
) -> None:
    """Asked as the API asks a page without filters, the first walks run on a generic plan
    (planned once per connection, not per search); a scoped search, or one its walks left
    short, first returns the transaction to custom plans. Same pages as without."""
    rows = [("issue", p, f"Honorarium {p}", "Honorarium belum cair.") for p in range(1, 31)]
    rows += [("statement", 40, "Ketua KPU (KPU)", "Gudang logistik kurang aman.")]
    async with pool.acquire() as conn:
        await _documents(conn, rows)
        asked = []
        for query, scope in [
            ("honorarium", None),
            ("honorarium", None),
            ("honorarium or gudang", None),
            ("honorarium", ["35.71"]),
            ("gudang", None),
        ]:
            counted = Capturing(conn)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await _apply(conn, search.GENERIC_SETTINGS)
                hits = await search.search(
                    counted,  # type: ignore[arg-type]
                    query,
                    scope=scope,
                    limit=5,
                    hints=search.SearchHints(),
                    settings_applied=True,
                    generic=True,
                )
                mode = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
            asked.append((query, scope, counted.fetches, counted.executes, mode, len(hits)))
        generic = await conn.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'WITH tq AS MATERIALIZED%'"
        )
    assert asked == [
        ("honorarium", None, 1, 0, "force_generic_plan", 5),
        ("honorarium", None, 1, 0, "force_generic_plan", 5),
        # no document has both words: the "every word" set is short after its walk
        ("honorarium or gudang", None, 2, 1, "force_custom_plan", 5),
        ("honorarium", ["35.71"], 1, 1, "force_custom_plan", 5),
        ("gudang", None, 2, 1, "force_custom_plan", 1),
    ]
    # The walks of "honorarium" (twice, one statement), "honorarium or gudang" and
    # "gudang" ran on generic plans, and on nothing else.
    assert generic and all(r["custom_plans"] == 0 for r in generic)
    assert sum(r["generic_plans"] for r in generic) == 4
