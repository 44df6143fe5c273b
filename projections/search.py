"""Full-text search over issues, statements and recommendations (Indonesian stemming).

PostgreSQL's ``indonesian`` configuration stems affixes and particles, so ``honorarium``
finds ``honorariumnya``. Titles weigh more than bodies; snippets come from
``ts_headline``.

Escape, then mark: a snippet is HTML whose only markup is coord's ``<b>``/``</b>``
around matches; every character of the stored text is HTML-escaped. ``ts_headline``
works on raw text, so it marks matches with two private-use characters (removed from
the text first, so they cannot be forged); the text is escaped in Python and only
then do the markers become tags.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import asyncpg
import msgspec

from events.domain.regions import load_regions, parent_code
from events.domain.types import (
    IssueCorrected,
    IssueRaised,
    RecommendationDrafted,
    RecommendationRevised,
    StatementCorrected,
    StatementRecorded,
    StatementRetracted,
)
from projections.base import Envelope, Row, Table, Where, local_day_sql, schema_of
from projections.issue_board import as_given

NAME = "search"
SCHEMA = schema_of(NAME)

DOCUMENTS = Table(
    "documents",
    [
        ("doc_id", "text"),
        ("kind", "text"),
        ("id", "text"),
        ("position", "bigint"),
        ("region_code", "text"),
        ("title", "text"),
        ("body", "text"),
        ("hearing_id", "text"),
        ("ordinal", "integer"),
        ("speaker", "text"),
        ("org_name", "text"),
        ("quote", "text"),
        ("retracted", "boolean"),
    ],
    key="doc_id",
)

DDL = (
    """CREATE TABLE {s}.documents (
        doc_id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('issue', 'statement', 'recommendation')),
        id text NOT NULL,
        position bigint NOT NULL,
        region_code text,
        title text NOT NULL,
        body text NOT NULL,
        -- statements: their hearing, place in it (0-based, as corrections name them),
        -- the parts their title and body are made of, and whether they were retracted
        hearing_id text,
        ordinal integer,
        speaker text,
        org_name text,
        quote text,
        retracted boolean NOT NULL DEFAULT false,
        tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('indonesian'::regconfig, title), 'A')
            || setweight(to_tsvector('indonesian'::regconfig,
                         body || coalesce(' ' || quote, '')), 'B')) STORED,
        -- the title's lexemes alone (tsv's A part, as ts_filter(tsv, '{{a}}') gives it):
        -- search's title candidates test it row by row, where a small vector costs a
        -- third of filtering the whole one
        title_tsv tsvector GENERATED ALWAYS AS (
            to_tsvector('indonesian'::regconfig, title)) STORED
    )""",
    "CREATE INDEX ON {s}.documents USING gin (tsv)",
    # Search's bounded ranking (see `search`): title matches, earliest matches first.
    "CREATE INDEX ON {s}.documents USING gin (title_tsv)",
    # Search's walks in log order (see `search`); the title set's walk reads its titles from
    # the index alone (an index-only scan: 40 pages for 2,000 documents, not 2,000 rows).
    "CREATE INDEX ON {s}.documents (position) INCLUDE (doc_id, title_tsv) WHERE NOT retracted",
    # A regional scope's walk (see `search`): its own documents in log order.
    "CREATE INDEX ON {s}.documents (region_code, position)",
    "CREATE INDEX ON {s}.documents (hearing_id, ordinal)",
)


class Search:
    """The ``search`` projection: one document per issue, statement and recommendation."""

    name: str = NAME
    handles: frozenset[str] | None = frozenset(
        {
            "IssueRaised",
            "IssueCorrected",
            "StatementRecorded",
            "StatementCorrected",
            "StatementRetracted",
            "RecommendationDrafted",
            "RecommendationRevised",
        }
    )
    reads_payload: bool = True
    # Every document derives from one stream's events (a revision from its own draft),
    # so a rebuild may replay the streams in two lanes at once: PostgreSQL's
    # to_tsvector, the slowest part of any rebuild, then runs on two server processes.
    replay_lanes: int = 2
    ddl: tuple[str, ...] = DDL
    tables: tuple[str, ...] = ("documents",)

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Upsert one document per new text; revisions replace a recommendation's text."""
        revised = {
            f"recommendation:{e.entity_id}"
            for e in batch
            if isinstance(e.event, RecommendationRevised)
        } | {f"issue:{e.entity_id}" for e in batch if isinstance(e.event, IssueCorrected)}
        docs = await DOCUMENTS.load(conn, schema, revised)
        # Statements are named by hearing and place: load the statement documents of
        # hearings whose statements are corrected here, and count those of hearings
        # recording new ones (the next place).
        hearings = {
            e.entity_id
            for e in batch
            if isinstance(e.event, StatementRecorded | StatementCorrected | StatementRetracted)
        }
        by_place: dict[tuple[str, int], str] = {}
        if hearings:
            for r in await conn.fetch(
                f"SELECT doc_id, hearing_id, ordinal FROM {schema}.documents "
                "WHERE hearing_id = ANY($1::text[])",
                sorted(hearings),
            ):
                by_place[(r[1], r[2])] = r[0]
            corrected = {
                by_place[key]
                for key in by_place
                if any(
                    isinstance(e.event, StatementCorrected | StatementRetracted)
                    for e in batch
                    if e.entity_id == key[0]
                )
            }
            docs.update(await DOCUMENTS.load(conn, schema, corrected))
        counts: dict[str, int] = {}
        for hearing_id, _ in by_place:
            counts[hearing_id] = counts.get(hearing_id, 0) + 1
        dirty: set[str] = set()
        # A statement's document is keyed by its event id, unique in the store, so it is
        # new for certain: those (nearly all documents) go in by COPY. Issues' and
        # recommendations' documents are keyed by stream, so they stay upserts.
        statements: set[str] = set()
        for env in batch:
            event = env.event
            doc: Row | None = None
            match event:
                case IssueRaised():
                    doc = _doc(
                        "issue",
                        env.entity_id,
                        env,
                        event.region_code,
                        event.title,
                        event.description,
                    )
                case StatementRecorded():
                    title = f"{event.speaker} ({event.organization.name})"
                    doc = _doc("statement", env.event_id, env, env.region_code, title, event.text)
                    ordinal = counts.get(env.entity_id, 0)
                    counts[env.entity_id] = ordinal + 1
                    by_place[(env.entity_id, ordinal)] = doc["doc_id"]
                    doc.update(
                        hearing_id=env.entity_id,
                        ordinal=ordinal,
                        speaker=event.speaker,
                        org_name=event.organization.name,
                        quote=event.quote,
                    )
                case StatementCorrected() | StatementRetracted():
                    found = docs.get(by_place.get((env.entity_id, event.statement_index), ""))
                    if found is not None:
                        _correct_statement(found, event)
                        dirty.add(found["doc_id"])
                        statements.discard(found["doc_id"])
                case IssueCorrected(title=title, description=description):
                    found = docs.get(f"issue:{env.entity_id}")
                    if found is not None:
                        found["title"] = title if title is not None else found["title"]
                        found["body"] = description if description is not None else found["body"]
                        dirty.add(found["doc_id"])
                case RecommendationDrafted():
                    doc = _doc("recommendation", env.entity_id, env, None, event.title, event.body)
                case RecommendationRevised(title=title, body=body):
                    found = docs.get(f"recommendation:{env.entity_id}")
                    if found is not None:
                        found["title"] = title if title is not None else found["title"]
                        found["body"] = body if body is not None else found["body"]
                        dirty.add(found["doc_id"])
            if doc is not None and doc["doc_id"] not in docs:
                docs[doc["doc_id"]] = doc
                (statements if doc["kind"] == "statement" else dirty).add(doc["doc_id"])
        await DOCUMENTS.insert(conn, schema, (docs[d] for d in sorted(statements)))
        await DOCUMENTS.upsert(conn, schema, (docs[d] for d in sorted(dirty)))


def _correct_statement(doc: Row, event: StatementCorrected | StatementRetracted) -> None:
    if isinstance(event, StatementRetracted):
        # Kept (places must not shift) but no longer found.
        doc["retracted"] = True
        return
    if event.speaker is not None:
        doc["speaker"] = event.speaker
    if event.organization is not None:
        doc["org_name"] = event.organization.name
    if event.text is not None:
        doc["body"] = event.text
    if event.quote is not None:
        doc["quote"] = event.quote
    doc["title"] = f"{doc['speaker']} ({doc['org_name']})"


def _doc(kind: str, id_: str, env: Envelope, region: str | None, title: str, body: str) -> Row:
    return {
        "doc_id": f"{kind}:{id_}",
        "kind": kind,
        "id": id_,
        "position": env.position,
        "region_code": region,
        "title": title,
        "body": body,
        "hearing_id": None,
        "ordinal": None,
        "speaker": None,
        "org_name": None,
        "quote": None,
        "retracted": False,
    }


# Match markers for ts_headline: private-use code points no text of ours needs.
_START = "\ue000"
_STOP = "\ue001"
_HEADLINE_OPTIONS = (
    f'MaxFragments=2, MaxWords=25, MinWords=8, StartSel="{_START}", StopSel="{_STOP}"'
)


def html_snippet(marked: str) -> str:
    """HTML of a ts_headline result: the text escaped, then the markers made `<b>` tags."""
    return html.escape(marked, quote=True).replace(_START, "<b>").replace(_STOP, "</b>")


class SearchHit(msgspec.Struct, kw_only=True):
    """One search result."""

    kind: str
    id: str
    title: Annotated[
        str, msgspec.Meta(description="The document's title as plain text (not HTML).")
    ]
    snippet: Annotated[
        str,
        msgspec.Meta(
            description=(
                "HTML fragment: up to two passages of the text (PostgreSQL's headline "
                "may leave out parts that look like markup), HTML-escaped (`<` as `&lt;`, "
                "`&` as `&amp;`, quotes as `&quot;`/`&#x27;`), with the matches then "
                "wrapped in `<b>`...`</b>`, the only tags it ever holds. Safe to insert "
                "as HTML; for plain text, drop the two tags and unescape."
            )
        ),
    ]
    rank: float
    #: the region (null for recommendations, which are national), with its province
    region_code: str | None = None
    region_name: str | None = None
    province_code: str | None = None
    province_name: str | None = None
    #: issues: their category
    category: str | None = None
    #: issues: open, addressed, withdrawn; recommendations: their status
    status: str | None = None
    #: issues: raised_at; statements: their hearing's scheduled time; recommendations:
    #: submitted_at (effective times, at the offset the office gave)
    date: datetime | None = None
    date_utc: datetime | None = None
    #: statements: their hearing; issues: the hearing they were raised at
    hearing_id: str | None = None
    #: the issue was withdrawn (still found, marked)
    withdrawn: bool = False
    #: pass as ``cursor`` to continue after this hit
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What a search may be narrowed to (None: no restriction)."""

    regions: list[str] | None = None
    provinces: list[str] | None = None
    categories: list[str] | None = None
    statuses: list[str] | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    #: date-only bounds (both inclusive): local days in each hit's region's zone
    day_from: date | None = None
    day_to: date | None = None
    hearing_id: str | None = None

    def joined(self) -> bool:
        """Do these filters need the other read models joined before ranking?"""
        return (
            any(
                v is not None
                for v in (
                    self.categories,
                    self.statuses,
                    self.date_from,
                    self.date_to,
                    self.day_from,
                    self.day_to,
                )
            )
            or self.hearing_id is not None
        )


class BadSearchCursor(ValueError):
    """The cursor was not made by this search."""


def encode_search_cursor(rank: float, position: int) -> str:
    """The cursor after a hit (its exact rank and its log position)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(["search", rank, position])).decode()


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        kind, rank, position = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
        if kind != "search" or not isinstance(position, int) or isinstance(position, bool):
            raise ValueError("not a search cursor")
        if not 0 <= position < 2**62:
            raise ValueError("position out of range")
        return float(rank), position
    except (ValueError, TypeError, msgspec.DecodeError) as e:
        raise BadSearchCursor("cursor is not valid") from e


def _uuid(text: str) -> str:
    """SQL: ``text`` as a uuid, or null when it is not one (a cast error is no answer)."""
    return f"CASE WHEN pg_input_is_valid({text}, 'uuid') THEN ({text})::uuid END"


# The other read models a hit's facts come from (one database, one read snapshot), each by
# its primary key: a lookup per row shown, where comparing `id::text` read every issue
# and hearing of the log for each page.
_JOINS = (
    " LEFT JOIN proj_issue_board.issues i"
    f" ON d.kind = 'issue' AND i.id = {_uuid('d.id')}"
    " LEFT JOIN proj_hearings.hearings h"
    f" ON h.id = coalesce({_uuid('d.hearing_id')}, i.hearing_id)"
    " LEFT JOIN proj_recommendations.recommendations r"
    f" ON d.kind = 'recommendation' AND r.id = {_uuid('d.id')}"
)
_DATE = (
    "CASE d.kind WHEN 'issue' THEN i.raised_at WHEN 'statement' THEN h.scheduled_at "
    "ELSE r.submitted_at END"
)
# The hit's date as a local day of its region: the board and the calendar keep it (from the
# region's zone, events/domain/timezones.py); a recommendation is national, so its day is in the
# national zone. A UTC day would put a 06:00 WIB hearing on 1 March under 28/29 February.
_LOCAL_DAY = (
    "CASE d.kind WHEN 'issue' THEN i.raised_date WHEN 'statement' THEN h.scheduled_date "
    f"ELSE {local_day_sql(None, 'r.submitted_at')} END"
)
_OFFSET = (
    "CASE d.kind WHEN 'issue' THEN i.raised_offset WHEN 'statement' THEN h.scheduled_offset "
    "ELSE r.submitted_offset END"
)


# Matches ranked per search, at most, from each of the candidate sets (see `search`).
CANDIDATES = 25
# Documents each candidate set reads in log order first; when too few match there, it
# reads up to FARTHER times as many, or asks its GIN index (see `search`).
WALK = 2000
FARTHER = 8
# A match from a GIN index (bitmap, a heap page of its own, recheck) costs about this many
# documents read in a walk (measured on the bench's documents: 5 with the table in
# shared buffers at 100k events, about 1 at 1M, where walks miss them too).
GIN_ROW_COST = 2
# What a search's transaction runs with (`set_config(..., true)`: this transaction only). A
# prepared statement turns generic after five runs, and a generic plan cannot see the
# query's words: plans stay custom. No sequential scans: a candidate set's GIN index is
# asked only for a rare word, which an estimate from the statistics can take for a common
# one (and read the table). No parallel workers either: starting them costs more than the
# bounded sets, and would be paid even when the one-time filter skips the index.
SETTINGS = (
    ("plan_cache_mode", "force_custom_plan"),
    ("enable_seqscan", "off"),
    ("max_parallel_workers_per_gather", "0"),
)
# The same with generic plans, for a search with no scope, filter or cursor (see `search`):
# its first walks read the position index whatever the words, and planning them anew
# cost as much as running them. `search` returns to custom plans before anything else.
GENERIC_SETTINGS = (("plan_cache_mode", "force_generic_plan"), *SETTINGS[1:])
_CUSTOM = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"
# websearch_to_tsquery's OR keyword.
_OR = re.compile(r"(?i)(?:^|\s)or(?:\s|$)")


class SearchHints:
    """Which searches the first walks did not settle (see `search`), remembered per query,
    filters, scope and page kind: such a search asks the whole statement at once the next
    time instead of paying for both. A hint only picks the statement, never the hits (both
    give the same page), and is nearly always right: the walks read the earliest documents,
    which later appends do not change. At most `size` searches are remembered (the oldest
    go first).
    """

    def __init__(self, size: int = 4096) -> None:
        self._short: dict[tuple[object, ...], bool] = {}
        self._size = size

    def short(self, key: tuple[object, ...]) -> bool:
        """Did the first walks leave this search short the last time?"""
        return self._short.get(key, False)

    def note(self, key: tuple[object, ...], short: bool) -> None:
        """Remember how this search went."""
        if key not in self._short and len(self._short) >= self._size:
            del self._short[next(iter(self._short))]
        self._short[key] = short


async def search(
    conn: asyncpg.Connection,
    query: str,
    *,
    scope: list[str] | None,
    kinds: list[str] | None = None,
    limit: int = 20,
    filters: SearchFilters | None = None,
    cursor: str | None = None,
    expanded: str | None = None,
    candidates: int | None = CANDIDATES,
    hints: SearchHints | None = None,
    settings_applied: bool = False,
    generic: bool = False,
) -> list[SearchHit]:
    """Best matches first, with escaped, ``<b>``-highlighted snippets (see the module doc).

    ``query`` uses web-search syntax (words, ``"phrases"``, ``-exclusions``, ``or``).
    ``expanded`` (``projections/search_terms.py``) is the query widened by the field
    vocabulary, ORed in. ``cursor`` continues after a hit (``encode_search_cursor``).
    Recommendations have no region: a regional scope never sees them.

    The ranking is bounded (issue 18): a common word matches most of a national log, and
    ranking every match before cutting the page cost seconds at 1M events. Ranked are the
    earliest ``candidates`` (at least ``limit``) matches whose *title* matches (a title hit
    weighs A, 1.0, against B, 0.4, for the body: for a one-word query any title hit
    outranks any body-only hit), as many earliest matches of any kind (rank ties go to
    the earlier document, so these hold the page whenever the ranks tie) and, for an
    ``or`` query, as many earliest matches of every word. The page is the exact ranking
    whenever the best ``limit`` documents are among those, and only then: a document
    ranked higher than the page but later than every candidate set's bound is not seen
    (``bench`` checks its queries against ``candidates=None``, which ranks every match).
    Filters and the cursor narrow each candidate set, so a later page is ranked the same
    way.

    Whatever the planner's estimates say (a tsquery's are often far off), each set is
    found the same way: it reads the first ``WALK`` documents in log order (the position
    index) and keeps the earliest matches, which is all a common word needs. When fewer
    than its bound match there, the share that did decides: read on, up to ``FARTHER``
    times as far, if the bound lies within that and the matches are too many for their
    index to be cheaper; else ask the GIN index for every match and sort them (a rare
    word). So a set costs at most a few thousand documents read, or the matches of a
    rare word, not all the matches of a common one. The set is the same either way.

    With ``hints``, the first walks alone are asked first, in a statement a third the size:
    when every set is full after them (a common word), the longer walks and the indexes
    would not run, and planning and starting their plan cost as much as the walks. When a
    set came up short the whole statement is asked as well (same page), and ``hints``
    remembers to ask it at once for that search next time. Without ``hints``: the whole
    statement. ``settings_applied``: the caller's transaction already runs with
    :data:`SETTINGS` (one round trip fewer); ``generic``: with :data:`GENERIC_SETTINGS`
    instead. Then the first walks of a search without scope, filters or cursor run on a
    generic plan, their query computed once (an InitPlan) instead of folded into a plan
    made for it; anything else first returns the transaction to custom plans.
    """
    filters = filters or SearchFilters()
    w = Where(2)
    w.clauses.append("NOT d.retracted")
    # Every mention of q is the same constant expression, so that PostgreSQL folds it
    # into the plan and can estimate each condition from the statistics.
    typed = "websearch_to_tsquery('indonesian', $1)"
    q = typed
    if expanded is not None:
        q = f"({typed} || to_tsquery('indonesian', {w.param(expanded)}))"
    rank = f"ts_rank(d.tsv, {q})::float8"
    if scope is not None:
        w.add("d.region_code = ANY({}::text[])", scope)
    if kinds is not None:
        w.add("d.kind = ANY({}::text[])", kinds)
    if filters.regions is not None:
        w.add("d.region_code = ANY({}::text[])", filters.regions)
    if filters.provinces is not None:
        w.add("split_part(d.region_code, '.', 1) = ANY({}::text[])", filters.provinces)
    if filters.categories is not None:
        w.add("i.category = ANY({}::text[])", filters.categories)
    if filters.statuses is not None:
        w.add("coalesce(i.status, r.status) = ANY({}::text[])", filters.statuses)
    if filters.date_from is not None:
        w.add(f"{_DATE} >= {{}}", filters.date_from)
    if filters.date_to is not None:
        w.add(f"{_DATE} < {{}}", filters.date_to)
    if filters.day_from is not None:
        w.add(f"{_LOCAL_DAY} >= {{}}", filters.day_from)
    if filters.day_to is not None:
        w.add(f"{_LOCAL_DAY} <= {{}}", filters.day_to)
    if filters.hearing_id is not None:
        w.add("coalesce(d.hearing_id, i.hearing_id::text) = {}", filters.hearing_id)
    if cursor is not None:
        after, position = _decode_cursor(cursor)
        # Keyset on (rank, position): the same float the previous page ranked with.
        after_rank, after_position = w.param(after), w.param(position)
        w.clauses.append(
            f"({rank} < {after_rank} OR ({rank} = {after_rank} AND d.position > {after_position}))"
        )
    source = f"{SCHEMA}.documents d{_JOINS if filters.joined() else ''}"

    def statement(walks_only: bool, generic: bool = False) -> tuple[str, list[object]]:
        # Each statement numbers its own parameters after the filters' (a copy of `w`).
        v = Where(2)
        v.clauses, v.params = list(w.clauses), list(w.params)
        # A generic plan cannot fold the query into a constant: it is computed once, first.
        first = f"tq AS MATERIALIZED (SELECT {q} AS q), " if generic else ""
        q_ = "(SELECT tq.q FROM tq)" if generic else q
        rank = f"ts_rank(d.tsv, {q_})::float8"
        if candidates is None:
            ranked = (
                f"SELECT d.doc_id, d.position, {rank} AS rank FROM {source}{v.sql()} "
                f"AND d.tsv @@ {q_}"
            )
        else:
            bound = max(candidates, limit)
            ranked = _candidates(
                v, source, query, q_, rank, bound, walks_only=walks_only, generic=generic
            )
        short = "c.short" if walks_only else "false"
        # Rank and cut first, highlight after: ts_headline re-parses the whole body, so it
        # runs on the `limit` rows shown, not on every match. The markers are taken out of
        # the body first, so that only ts_headline's own become tags. The other read models
        # give the facts of the rows shown only.
        options = v.param(_HEADLINE_OPTIONS)
        markers = v.param(_START + _STOP)
        sql = (
            f"WITH {first}ranked AS ({ranked}) "
            "SELECT d.kind, d.id, d.title, "
            "ts_headline('indonesian', translate("
            "d.body || coalesce(' \u201c' || d.quote || '\u201d', ''), "
            f"{markers}, ''), {q_}, {options}) AS snippet, top.rank, top.position, "
            "d.region_code, i.category, coalesce(i.status, r.status) AS status, "
            "coalesce(d.hearing_id, i.hearing_id::text) AS hearing_id, "
            f"{_DATE} AS date, {_OFFSET} AS date_offset, top.short "
            f"FROM (SELECT c.doc_id, c.position, c.rank, {short} AS short FROM ranked c "
            f"ORDER BY c.rank DESC, c.position LIMIT {v.param(limit)}) top "
            f"JOIN {SCHEMA}.documents d ON d.doc_id = top.doc_id{_JOINS} "
            "ORDER BY top.rank DESC, top.position"
        )
        return sql, [query, *v.params]

    if not settings_applied:
        await conn.execute(
            "SELECT " + ", ".join(f"set_config('{k}', '{v}', true)" for k, v in SETTINGS)
        )
    key = (query, expanded, repr(scope), repr(kinds), repr(filters), cursor is None)
    walks_first = candidates is not None and hints is not None and not hints.short(key)
    # Only the national walks (no clause but NOT retracted) plan the same for every query.
    generic_walks = generic and walks_first and len(w.clauses) == 1
    if generic and not generic_walks:
        await conn.execute(_CUSTOM)
    sql, params = statement(walks_only=walks_first, generic=generic_walks)
    rows = await conn.fetch(sql, *params)
    if walks_first:
        short = not rows or bool(rows[0]["short"])
        if short:
            if generic_walks:
                await conn.execute(_CUSTOM)
            sql, params = statement(walks_only=False)
            rows = await conn.fetch(sql, *params)
        if hints is not None:
            hints.note(key, short)
    names = load_regions()
    return [
        SearchHit(
            kind=r["kind"],
            id=r["id"],
            title=r["title"],
            snippet=html_snippet(r["snippet"]),
            rank=round(float(r["rank"]), 6),
            region_code=r["region_code"],
            region_name=names.name_of(r["region_code"]),
            province_code=parent_code(r["region_code"]) if r["region_code"] else None,
            province_name=names.name_of(parent_code(r["region_code"]))
            if r["region_code"]
            else None,
            category=r["category"],
            status=r["status"],
            date=as_given(r["date"], r["date_offset"] or 0) if r["date"] is not None else None,
            date_utc=r["date"],
            hearing_id=r["hearing_id"],
            withdrawn=r["status"] == "withdrawn" and r["kind"] == "issue",
            cursor=encode_search_cursor(float(r["rank"]), r["position"]),
        )
        for r in rows
    ]


def _candidates(
    w: Where,
    source: str,
    query: str,
    q: str,
    rank: str,
    bound: int,
    *,
    walks_only: bool = False,
    generic: bool = False,
) -> str:
    """SQL of the bounded candidate sets of `search` (doc_id, position, rank), as CTEs
    followed by their union: each set is the earliest `bound` documents of its condition,
    from a walk in log order, a longer walk, or the condition's GIN index. The later two
    are gated by one-time filters on what the walks found: PostgreSQL runs neither when
    it is not needed. With `walks_only`, the first walks alone, each row with `short`:
    whether any set found fewer than `bound` there (then the whole SQL decides). `generic`:
    `q` is the `tq` CTE's query, and the "every word" query a scalar subquery: each is
    computed once, as a generic plan cannot fold them into constants."""
    where = w.sql()
    # (name, condition). The title set: without a negation a title match is a match;
    # with one, check the whole document too (`|| ''`: not through the big index, whose
    # scan for "common -common" costs as much as ranking everything).
    negated = f"(strpos({q}::text, '!') = 0 OR (d.tsv || ''::tsvector) @@ {q})"
    title = f"d.title_tsv @@ {q}"
    by_title = f"{title} AND {negated}"
    sets = [("by_title", by_title), ("by_any", f"d.tsv @@ {q}")]
    if _OR.search(query):
        # "a or b": a document with every word ranks above most with one, but the other
        # two sets can be full of one-word matches. AND implies OR: no check.
        every = "replace(websearch_to_tsquery('indonesian', $1)::text, ' | ', ' & ')::tsquery"
        if generic:
            every = f"(SELECT {every})"
        sets.append(("by_every", f"d.tsv @@ {every}"))
    n, w1 = w.param(bound), w.param(WALK)

    def walk(name: str, cond: str, length: str, gate: str = "") -> str:
        # A LIMIT on the position index in a subquery, which no condition from outside can
        # turn into a scan of the whole table; the outer LIMIT stops it at `n` matches.
        if cond == by_title:
            # Titles from the index alone; the rest of a row only for the titles that match
            # (a match joins its own row, for its rank and a negation).
            return (
                f"{name} AS (SELECT d.doc_id, m.position, {rank} AS rank FROM ("
                f"SELECT d.doc_id, d.position FROM ("
                f"SELECT d.doc_id, d.position, d.title_tsv FROM {source}{where} "
                f"ORDER BY d.position LIMIT {length}) d WHERE {title}) m "
                f"JOIN {SCHEMA}.documents d ON d.doc_id = m.doc_id WHERE {negated}{gate} "
                f"ORDER BY m.position LIMIT {n})"
            )
        return (
            f"{name} AS (SELECT d.doc_id, d.position, {rank} AS rank FROM ("
            f"SELECT d.doc_id, d.position, d.tsv, d.title_tsv FROM {source}{where} "
            f"ORDER BY d.position LIMIT {length}) d WHERE {cond}{gate} "
            f"ORDER BY d.position LIMIT {n})"
        )

    if walks_only:
        short = " OR ".join(f"(SELECT count(*) FROM {name}) < {n}" for name, _ in sets)
        return (
            "WITH "
            + ", ".join(walk(name, cond, w1) for name, cond in sets)
            + " "
            + " UNION ".join(f"SELECT b.*, ({short}) AS short FROM {name} b" for name, _ in sets)
        )
    w2 = w.param(WALK * FARTHER)
    ctes, union = [], []
    # How many documents there are to walk, up to the longer walk's length, when filters
    # may leave few (a regional scope): a walk that read them all needs no index. Counted
    # only when a set still comes up short (an InitPlan runs when first needed).
    seen_all = ""
    if len(w.clauses) > 1:
        ctes.append(
            f"walked AS (SELECT count(*) AS n FROM (SELECT 1 FROM {source}{where} "
            f"ORDER BY d.position LIMIT {w2}) x)"
        )
        seen_all = "AND (SELECT n FROM walked) >= {w1} AND ({far} OR (SELECT n FROM walked) = {w2})"

    # The documents there are (PostgreSQL's count from its last ANALYZE, which is close
    # enough to size the choice below; unknown counts as many).
    table = f"'{SCHEMA}.documents'::regclass"
    total = f"greatest((SELECT reltuples FROM pg_class WHERE oid = {table}), {w2})"
    for name, cond in sets:
        found, more = f"(SELECT count(*) FROM {name})", f"(SELECT count(*) FROM {name}_far)"
        # Too far to walk: from the first walk's share of matches, the bound lies beyond the
        # longer walk, or the index holds fewer matches than the walk would read (a row
        # from the index costs about GIN_ROW_COST read in a walk). None found: the index.
        far = (
            f"({found} * {w2} < {n} * {w1}"
            f" OR {GIN_ROW_COST} * {total} * {found} * {found} < {n} * {w1}::float8 * {w1})"
        )
        ctes.append(walk(name, cond, w1))
        ctes.append(walk(f"{name}_far", cond, w2, f" AND {found} < {n} AND NOT ({far})"))
        union += [f"SELECT * FROM {name}", f"SELECT * FROM {name}_far"]
        # `position + 0`: the position index must not serve this order (it would walk on
        # finding few); the GIN index does, then a top-N sort.
        gate = f"{found} < {n} AND {more} < {n} " + seen_all.format(w1=w1, w2=w2, far=far)
        union.append(
            f"(SELECT d.doc_id, d.position, {rank} AS rank FROM {source}{where} AND {cond}"
            f" AND {gate} ORDER BY d.position + 0 LIMIT {n})"
        )
    return "WITH " + ", ".join(ctes) + " " + " UNION ".join(union)
