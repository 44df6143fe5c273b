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

import html
import re
from collections.abc import Sequence
from typing import Annotated

import asyncpg
import msgspec

from events.types import (
    IssueCorrected,
    IssueRaised,
    RecommendationDrafted,
    RecommendationRevised,
    StatementCorrected,
    StatementRecorded,
    StatementRetracted,
)
from projections.base import Envelope, Row, Table, Where, schema_of

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
                         body || coalesce(' ' || quote, '')), 'B')) STORED
    )""",
    "CREATE INDEX ON {s}.documents USING gin (tsv)",
    # Search's bounded ranking (see `search`): title matches, earliest matches first.
    "CREATE INDEX ON {s}.documents USING gin (ts_filter(tsv, '{{a}}'))",
    "CREATE INDEX ON {s}.documents (position)",
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


# Matches ranked per search, at most, from each of the candidate sets (see `search`).
CANDIDATES = 1000
# websearch_to_tsquery's OR keyword.
_OR = re.compile(r"(?i)(?:^|\s)or(?:\s|$)")


async def search(
    conn: asyncpg.Connection,
    query: str,
    *,
    scope: list[str] | None,
    kinds: list[str] | None = None,
    limit: int = 20,
    candidates: int | None = CANDIDATES,
) -> list[SearchHit]:
    """Best matches first, with escaped, ``<b>``-highlighted snippets (see the module doc).

    ``query`` uses web-search syntax (words, ``"phrases"``, ``-exclusions``, ``or``).
    Recommendations have no region: a regional scope never sees them.

    The ranking is bounded (issue 18): a common word matches most of a national log, and
    ranking every match before cutting the page cost seconds at 1M events. Ranked are the
    earliest ``candidates`` (at least ``limit``) matches whose *title* matches (a title hit
    weighs A, 1.0, against B, 0.4, for the body: for a one-word query any title hit
    outranks any body-only hit), as many earliest matches of any kind (rank ties go to
    the earlier document, so these hold the page whenever the ranks tie) and, for an
    ``or`` query, as many earliest matches of every word. The page is the exact
    ranking whenever the best ``limit`` documents are among those; ``bench`` checks that
    on its queries against ``candidates=None``, which ranks every match.
    """
    w = Where(2)
    w.clauses.append("NOT d.retracted")
    if scope is not None:
        w.add("d.region_code = ANY({}::text[])", scope)
    if kinds is not None:
        w.add("d.kind = ANY({}::text[])", kinds)
    # Every mention of q is the same constant expression, so that PostgreSQL folds it
    # into the plan and can estimate each condition from the statistics.
    q = "websearch_to_tsquery('indonesian', $1)"
    rank = f"ts_rank(d.tsv, {q})"
    if candidates is None:
        ranked = (
            f"SELECT d.doc_id, d.position, {rank} AS rank FROM {SCHEMA}.documents d"
            f"{w.sql()} AND d.tsv @@ {q}"
        )
    else:
        bound = w.param(max(candidates, limit))
        # The title set: the A-weighted lexemes, which have their own index (and
        # statistics). Without a negation a title match is a match; with one, check it
        # row by row (`|| ''`: not through the big index, whose scan for "common -common"
        # costs as much as ranking everything; the title index already narrowed the rows).
        title = (
            f"ts_filter(d.tsv, '{{a}}') @@ {q} "
            f"AND (strpos({q}::text, '!') = 0 OR (d.tsv || ''::tsvector) @@ {q})"
        )
        # (condition, order): earliest first. On the position index, which stops after
        # `bound` matches when matches are dense (the costly case), or, for a rare word,
        # from the GIN index and sorted.
        sets = [(title, "d.position"), (f"d.tsv @@ {q}", "d.position")]
        if _OR.search(query):
            # "a or b": a document with every word ranks above most with one, but the
            # other two sets can be full of one-word matches. AND implies OR: no check.
            # Its estimate multiplies the words' and is often far too high: `+ 0` keeps
            # it off the position index, which it could walk to the end finding nothing.
            sets.append((f"d.tsv @@ replace({q}::text, ' | ', ' & ')::tsquery", "d.position + 0"))
        ranked = " UNION ".join(
            f"(SELECT d.doc_id, d.position, {rank} AS rank FROM {SCHEMA}.documents d"
            f"{w.sql()} AND {cond} ORDER BY {order} LIMIT {bound})"
            for cond, order in sets
        )
    # Rank and cut first, highlight after: ts_headline re-parses the whole body, so it
    # runs on the `limit` rows shown, not on every match. The markers are taken out of
    # the body first, so that only ts_headline's own become tags.
    options = w.param(_HEADLINE_OPTIONS)
    markers = w.param(_START + _STOP)
    # A prepared statement turns generic after five runs, and a generic plan cannot see
    # the query's words: keep plans custom for this transaction (views run in one).
    await conn.execute("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
    rows = await conn.fetch(
        "SELECT d.kind, d.id, d.title, "
        "ts_headline('indonesian', translate("
        "d.body || coalesce(' \u201c' || d.quote || '\u201d', ''), "
        f"{markers}, ''), {q}, {options}) AS snippet, top.rank "
        f"FROM (SELECT c.doc_id, c.position, c.rank FROM ({ranked}) c "
        f"ORDER BY c.rank DESC, c.position LIMIT {w.param(limit)}) top "
        f"JOIN {SCHEMA}.documents d ON d.doc_id = top.doc_id "
        "ORDER BY top.rank DESC, top.position",
        query,
        *w.params,
    )
    return [
        SearchHit(
            kind=r[0],
            id=r[1],
            title=r[2],
            snippet=html_snippet(r[3]),
            rank=round(float(r[4]), 6),
        )
        for r in rows
    ]
