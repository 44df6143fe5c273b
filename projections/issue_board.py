"""The national issue board: every issue with its status, and the queries built on it.

Status: ``withdrawn`` if withdrawn, else ``addressed`` while at least one recommendation
cites it, else ``open``. The board also answers the summary, the recurring problems
(issues grouped by what they say: ``projections/grouping.py``, maintained on apply and
stored as each issue's ``cluster_id``) and the coverage gaps (open issues no
recommendation cites, ranked by recurrence and severity).

The national summary and coverage gaps read tables kept on apply (``issue_counts*``,
``uncovered``), so that what a request costs does not grow with the log: counts per
category, province, organization and status (bounded by the vocabularies), and the open
issues with their recurrence in the order the gaps are listed.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import asyncpg
import msgspec

from events.domain.regions import load_regions, parent_code
from events.domain.timezones import zone_of
from events.domain.types import (
    ClusterNamed,
    ClustersMerged,
    IssueCategoryCorrected,
    IssueCorrected,
    IssueRaised,
    IssueReassigned,
    IssuesCited,
    IssueUncited,
    IssueWithdrawn,
    RecommendationDrafted,
)
from projections.base import (
    BadCursor,
    Envelope,
    Row,
    Table,
    Where,
    add_counts,
    decode_cursor,
    encode_cursor,
    region_column,
    schema_of,
)
from projections.grouping import Grouping
from projections.issue_text import Vocabulary

NAME = "issue_board"
SCHEMA = schema_of(NAME)

ISSUES = Table(
    "issues",
    [
        ("id", "uuid"),
        ("position", "bigint"),
        ("region_code", "text"),
        ("province_code", "text"),
        ("hearing_id", "uuid"),
        ("category", "text"),
        ("title", "text"),
        ("description", "text"),
        ("severity", "smallint"),
        ("withdrawn", "boolean"),
        ("raised_by_code", "text"),
        ("raised_by_name", "text"),
        ("raised_at", "timestamptz"),
        ("recommendation_ids", "uuid[]"),
        ("raised_offset", "integer"),
        ("raised_date", "date"),
        ("recorded_at", "timestamptz"),
        ("corrected", "text[]"),
        ("terms", "text"),
    ],
)

CLUSTERS = Table(
    "clusters",
    [("id", "uuid"), ("label_issue_id", "uuid"), ("name", "text"), ("curated", "boolean")],
)

DDL = (
    """CREATE TABLE {s}.issues (
        id uuid PRIMARY KEY,
        position bigint NOT NULL,
        region_code text NOT NULL,
        province_code text NOT NULL,
        hearing_id uuid,
        category text NOT NULL,
        title text NOT NULL,
        description text NOT NULL,
        severity smallint NOT NULL,
        withdrawn boolean NOT NULL,
        raised_by_code text NOT NULL,
        raised_by_name text NOT NULL,
        raised_at timestamptz NOT NULL,
        recommendation_ids uuid[] NOT NULL,
        raised_offset integer NOT NULL,
        raised_date date NOT NULL,
        recorded_at timestamptz NOT NULL,
        corrected text[] NOT NULL,
        terms text NOT NULL DEFAULT '',
        cluster_id uuid,
        -- an analyst placed the issue in its cluster (IssueReassigned): grouping leaves it
        pinned boolean NOT NULL DEFAULT false,
        status text GENERATED ALWAYS AS (
            CASE WHEN withdrawn THEN 'withdrawn'
                 WHEN cardinality(recommendation_ids) > 0 THEN 'addressed'
                 ELSE 'open' END) STORED
    )""",
    "CREATE INDEX ON {s}.issues (raised_at DESC, id DESC)",
    "CREATE INDEX ON {s}.issues (severity DESC, raised_at DESC, id DESC)",
    # A region's or a province's dossier: the newest first from the index, the counts by
    # status and category from it too (index-only).
    "CREATE INDEX ON {s}.issues (region_code, raised_at DESC, id DESC) INCLUDE (status, category)",
    "CREATE INDEX ON {s}.issues (province_code, raised_at DESC, id DESC) "
    "INCLUDE (status, category)",
    # ...and the recommendations citing its issues: the cited issues only, with what they
    # cite (index-only: a province's thousand cited issues lie on as many heap pages).
    "CREATE INDEX ON {s}.issues (province_code, region_code) INCLUDE (recommendation_ids) "
    "WHERE cardinality(recommendation_ids) > 0",
    "CREATE INDEX ON {s}.issues (hearing_id)",
    "CREATE INDEX ON {s}.issues (raised_date)",
    "CREATE INDEX ON {s}.issues USING gin (title gin_trgm_ops)",
    "CREATE INDEX ON {s}.issues (cluster_id)",
    # A recurring problem: its label is its analyst's name, else its most central title.
    """CREATE TABLE {s}.clusters (
        id uuid PRIMARY KEY,
        label_issue_id uuid NOT NULL,
        name text,
        -- an analyst decided about it: grouping no longer takes its members away
        curated boolean NOT NULL DEFAULT false,
        -- what the national, unfiltered recurring view shows, kept on apply
        label text NOT NULL DEFAULT '',
        category text NOT NULL DEFAULT '',
        n integer NOT NULL DEFAULT 0,
        region_count integer NOT NULL DEFAULT 0,
        province_count integer NOT NULL DEFAULT 0,
        issue_ids text[] NOT NULL DEFAULT '{{}}',
        region_codes text[] NOT NULL DEFAULT '{{}}',
        provinces text[] NOT NULL DEFAULT '{{}}',
        recommendation_ids text[] NOT NULL DEFAULT '{{}}',
        recommendation_count integer NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX ON {s}.clusters (region_count DESC, province_count DESC, n DESC)",
    # Where the in-memory grouping of this schema stands (not diffed by verify: the
    # generation is random, so a rebuilt schema is never mistaken for the old one).
    """CREATE TABLE {s}.grouping_state (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        generation uuid NOT NULL DEFAULT gen_random_uuid(),
        position bigint NOT NULL DEFAULT 0,
        created bigint NOT NULL DEFAULT 0,
        -- the weights in force (Grouping.weights_n / weights_df), as "term:df ..."
        weights_n bigint NOT NULL DEFAULT 0,
        weights_df text NOT NULL DEFAULT ''
    )""",
    "INSERT INTO {s}.grouping_state DEFAULT VALUES",
    # The summary's counts, per status, at three grains: each breakdown on its own (what a
    # summary filtered by category and status reads) and both together (for a breakdown
    # filtered by the other's dimension). At most categories x provinces x organization
    # kinds x statuses rows, whatever the number of issues; a count at 0 is deleted.
    """CREATE TABLE {s}.issue_counts (
        category text NOT NULL,
        province_code text NOT NULL,
        raised_by_code text NOT NULL,
        status text NOT NULL,
        n integer NOT NULL,
        PRIMARY KEY (category, province_code, raised_by_code, status)
    )""",
    """CREATE TABLE {s}.issue_counts_by_province (
        category text NOT NULL,
        province_code text NOT NULL,
        status text NOT NULL,
        n integer NOT NULL,
        PRIMARY KEY (category, province_code, status)
    )""",
    """CREATE TABLE {s}.issue_counts_by_organization (
        category text NOT NULL,
        raised_by_code text NOT NULL,
        status text NOT NULL,
        n integer NOT NULL,
        PRIMARY KEY (category, raised_by_code, status)
    )""",
    # The coverage gaps: every open issue with its national recurrence (its recurring
    # problem's region_count), indexed in the order the national view lists them.
    """CREATE TABLE {s}.uncovered (
        id uuid PRIMARY KEY,
        cluster_id uuid,
        category text NOT NULL,
        recurrence integer NOT NULL,
        severity smallint NOT NULL,
        raised_at timestamptz NOT NULL
    )""",
    "CREATE INDEX ON {s}.uncovered (recurrence DESC, severity DESC, raised_at DESC, id)",
    "CREATE INDEX ON {s}.uncovered (cluster_id)",
)

#: the count tables by the columns of their key (the last is always the status)
_COUNTS = {
    "issue_counts": ("category", "province_code", "raised_by_code", "status"),
    "issue_counts_by_province": ("category", "province_code", "status"),
    "issue_counts_by_organization": ("category", "raised_by_code", "status"),
}

_HANDLES = frozenset(
    {
        "IssueRaised",
        "IssueCategoryCorrected",
        "IssueCorrected",
        "IssueWithdrawn",
        "RecommendationDrafted",
        "IssuesCited",
        "IssueUncited",
        "ClusterNamed",
        "ClustersMerged",
        "IssueReassigned",
    }
)


class IssueBoard:
    """The ``issue_board`` projection."""

    name: str = NAME
    handles: frozenset[str] | None = _HANDLES
    reads_payload: bool = True
    replay_lanes: int = 1
    ddl: tuple[str, ...] = DDL
    tables: tuple[str, ...] = (
        "issues",
        "clusters",
        *_COUNTS,
        "uncovered",
    )

    def __init__(self) -> None:
        # The grouping of each schema (live, rebuild, verify), with where it stands.
        self._groupings: dict[str, _Grouped] = {}
        # A malformed vocabulary file is a startup error here (VocabularyError naming the
        # file and line), never a projection stuck on its first batch; later edits that
        # fail to parse keep the vocabulary in force (projections/issue_text.py).
        Vocabulary.current()

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Fold the batch into the touched issue rows, regroup, and upsert them."""
        grouped = await self._grouping(conn, schema)
        try:
            await self._apply(conn, schema, batch, grouped)
        except BaseException:
            # The transaction will not commit: the memory is ahead of the tables.
            self._groupings.pop(schema, None)
            raise

    async def _grouping(self, conn: asyncpg.Connection, schema: str) -> _Grouped:
        """The schema's grouping, reloaded if the tables moved without this process."""
        state = await conn.fetchrow(
            f"SELECT generation::text, position, created, weights_n, weights_df "
            f"FROM {schema}.grouping_state"
        )
        assert state is not None
        cached = self._groupings.get(schema)
        if (
            cached is not None
            and cached.generation == state["generation"]
            and cached.position == state["position"]
        ):
            return cached
        grouping = Grouping(
            created=state["created"],
            weights_n=state["weights_n"],
            weights_df=dict(_parse_terms(state["weights_df"])),
        )
        rows = await conn.fetch(
            f"SELECT id::text, category, terms, cluster_id::text, pinned FROM {schema}.issues "
            "WHERE NOT withdrawn ORDER BY position"
        )
        for r in rows:
            grouping.load(r["id"], _parse_terms(r["terms"]), r["category"], r["cluster_id"])
            if r["pinned"]:
                grouping.pinned.add(r["id"])
        grouping.curated.update(
            await conn.fetchval(
                f"SELECT coalesce(array_agg(id::text), '{{}}') FROM {schema}.clusters WHERE curated"
            )
        )
        cached = _Grouped(grouping, state["generation"], state["position"])
        self._groupings[schema] = cached
        return cached

    async def _apply(
        self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope], grouped: _Grouped
    ) -> None:
        grouping = grouped.grouping
        weights_version = grouping.weights_version
        vocabulary = Vocabulary.current()
        moved: dict[str, str | None] = {}
        dirty_groups: set[str] = set()
        named: dict[str, str] = {}

        def regrouped(changes: dict[str, str]) -> None:
            for issue_id, group in changes.items():
                moved[issue_id] = group
                dirty_groups.add(group)

        touched: set[str] = set()
        for env in batch:
            match env.event:
                case RecommendationDrafted(issue_ids=ids) | IssuesCited(issue_ids=ids):
                    touched.update(str(i) for i in ids)
                case IssueUncited(issue_id=issue_id):
                    touched.add(str(issue_id))
                case _:
                    touched.add(env.entity_id)
        rows = await ISSUES.load(conn, schema, touched)
        counted = {issue_id: _count_key(row) for issue_id, row in rows.items()}
        dirty: set[str] = set()
        for env in batch:
            event = env.event
            if isinstance(event, ClusterNamed | ClustersMerged | IssueReassigned):
                # An analyst's decision: it wins over the algorithm (see grouping.py).
                target = env.entity_id
                if isinstance(event, ClusterNamed):
                    if target in grouping.groups:
                        grouping.curate(target)
                        named[target] = event.name
                        dirty_groups.add(target)
                elif isinstance(event, ClustersMerged):
                    for other in event.cluster_ids:
                        if str(other) in grouping.groups:
                            dirty_groups.add(str(other))
                            regrouped(grouping.merge(target, str(other)))
                else:
                    for placed in map(str, event.issue_ids):
                        old = grouping.group_of.get(placed)
                        if old is not None:
                            dirty_groups.add(old)
                        regrouped(grouping.place(placed, target))
                continue
            if isinstance(event, IssueRaised):
                if env.entity_id not in rows:  # idempotent per position
                    raised = rows[env.entity_id] = _raised(env, event)
                    terms = vocabulary.issue_terms(event.title, event.description)
                    raised["terms"] = _format_terms(terms)
                    dirty.add(env.entity_id)
                    regrouped(grouping.add(env.entity_id, terms, event.category))
                continue
            if isinstance(event, RecommendationDrafted | IssuesCited | IssueUncited):
                ids = [event.issue_id] if isinstance(event, IssueUncited) else event.issue_ids
                for issue_id in ids:
                    row = rows.get(str(issue_id))
                    if row is None:
                        continue
                    cited = set(row["recommendation_ids"])
                    if isinstance(event, IssueUncited):
                        cited.discard(env.entity_id)
                    else:
                        cited.add(env.entity_id)
                    # Sorted, so the array never depends on how batches were cut.
                    row["recommendation_ids"] = sorted(cited)
                    dirty.add(row["id"])
                continue
            row = rows.get(env.entity_id)
            if row is None:
                continue
            if isinstance(event, IssueCategoryCorrected):
                row["category"] = event.category
                row["corrected"] = sorted({*row["corrected"], "category"})
                grouping.recategorize(env.entity_id, event.category)
            elif isinstance(event, IssueCorrected):
                _correct(row, event)
                if (event.title is not None or event.description is not None) and not row[
                    "withdrawn"
                ]:
                    # What the issue says changed: so may its recurring problem.
                    terms = vocabulary.issue_terms(row["title"], row["description"])
                    row["terms"] = _format_terms(terms)
                    old = grouping.group_of.get(env.entity_id)
                    if old is not None:
                        dirty_groups.add(old)
                    regrouped(grouping.retext(env.entity_id, terms))
            elif isinstance(event, IssueWithdrawn) and not row["withdrawn"]:
                row["withdrawn"] = True
                old = grouping.group_of.get(env.entity_id)
                grouping.remove(env.entity_id)
                moved[env.entity_id] = None
                if old is not None:
                    dirty_groups.add(old)
            dirty.add(env.entity_id)
        await ISSUES.upsert(conn, schema, (rows[i] for i in sorted(dirty)))
        await _store_counts(conn, schema, counted, [rows[i] for i in dirty])
        # A cited, corrected or recategorised member changes its group's summary.
        dirty_groups.update(g for i in dirty if (g := grouping.group_of.get(i)) is not None)
        regrouped_ids = await _store_grouping(conn, schema, grouping, moved, dirty_groups, named)
        await _store_uncovered(conn, schema, sorted(dirty | moved.keys()), regrouped_ids)
        position = batch[-1].position if batch else grouped.position
        await conn.execute(
            f"UPDATE {schema}.grouping_state SET position = $1, created = $2",
            position,
            grouping.created,
        )
        if grouping.weights_version != weights_version:
            await conn.execute(
                f"UPDATE {schema}.grouping_state SET weights_n = $1, weights_df = $2",
                grouping.weights_n,
                _format_terms(Counter(grouping.weights_df)),
            )
        grouped.position = position


@dataclass
class _Grouped:
    grouping: Grouping
    generation: str
    position: int


async def _store_grouping(
    conn: asyncpg.Connection,
    schema: str,
    grouping: Grouping,
    moved: dict[str, str | None],
    dirty_groups: set[str],
    named: dict[str, str],
) -> list[str]:
    """Write the issues' new groups and the labels of the groups that changed.

    Returns the groups that changed and still exist.
    """
    if moved:
        ids = sorted(moved)
        # The groups they leave change too.
        dirty_groups = dirty_groups | {
            r[0]
            for r in await conn.fetch(
                f"SELECT cluster_id::text FROM {schema}.issues "
                "WHERE id = ANY($1::uuid[]) AND cluster_id IS NOT NULL",
                ids,
            )
        }
        await conn.execute(
            f"UPDATE {schema}.issues AS i SET cluster_id = u.cluster_id, pinned = u.pinned "
            "FROM unnest($1::uuid[], $2::uuid[], $3::boolean[]) AS u(id, cluster_id, pinned) "
            "WHERE i.id = u.id",
            ids,
            [moved[i] for i in ids],
            [i in grouping.pinned for i in ids],
        )
    if not dirty_groups:
        return []
    gone = sorted(g for g in dirty_groups if g not in grouping.groups)
    if gone:
        await conn.execute(f"DELETE FROM {schema}.clusters WHERE id = ANY($1::uuid[])", gone)
    live = sorted(g for g in dirty_groups if g in grouping.groups)
    names = await CLUSTERS.load(conn, schema, live)
    await CLUSTERS.upsert(
        conn,
        schema,
        (
            {
                "id": g,
                "label_issue_id": grouping.central(g),
                "name": named.get(g, names[g]["name"] if g in names else None),
                "curated": g in grouping.curated,
            }
            for g in live
        ),
    )
    await _summarise(conn, schema, live)
    return live


def _count_key(row: Row) -> tuple[str, str, str, str]:
    """What ``issue_counts`` counts the issue under (its status as the generated column)."""
    status = (
        "withdrawn" if row["withdrawn"] else "addressed" if row["recommendation_ids"] else "open"
    )
    return row["category"], row["province_code"], row["raised_by_code"], status


async def _store_counts(
    conn: asyncpg.Connection,
    schema: str,
    before: dict[str, tuple[str, str, str, str]],
    changed: list[Row],
) -> None:
    """Move the changed issues from the counts they were under (``before``) to their new ones."""
    delta: Counter[tuple[str, str, str, str]] = Counter()
    for row in changed:
        if (old := before.get(row["id"])) is not None:
            delta[old] -= 1
        delta[_count_key(row)] += 1
    full = _COUNTS["issue_counts"]
    for table, columns in _COUNTS.items():
        picks = [full.index(c) for c in columns]
        grain: Counter[tuple[str, ...]] = Counter()
        for key, n in delta.items():
            grain[tuple(key[i] for i in picks)] += n
        await add_counts(conn, schema, table, columns, grain)


async def _store_uncovered(
    conn: asyncpg.Connection, schema: str, issue_ids: list[str], groups: list[str]
) -> None:
    """Bring ``uncovered`` up to date: the changed issues' rows (in while open, out
    otherwise), then the recurrence of every open member of a changed group."""
    if issue_ids:
        await conn.execute(
            "WITH o AS (SELECT i.id, i.cluster_id, i.category, "
            "coalesce(c.region_count, 1) AS recurrence, i.severity, i.raised_at "
            f"FROM {schema}.issues i LEFT JOIN {schema}.clusters c ON c.id = i.cluster_id "
            "WHERE i.id = ANY($1::uuid[]) AND i.status = 'open'), "
            f"gone AS (DELETE FROM {schema}.uncovered u WHERE u.id = ANY($1::uuid[]) "
            "AND u.id NOT IN (SELECT id FROM o)) "
            f"INSERT INTO {schema}.uncovered AS u SELECT * FROM o ON CONFLICT (id) DO UPDATE "
            "SET cluster_id = EXCLUDED.cluster_id, category = EXCLUDED.category, "
            "recurrence = EXCLUDED.recurrence, severity = EXCLUDED.severity, "
            "raised_at = EXCLUDED.raised_at",
            issue_ids,
        )
    if groups:
        # A region joining or leaving a recurring problem: its open members move in the list.
        await conn.execute(
            f"UPDATE {schema}.uncovered u SET recurrence = c.region_count "
            f"FROM {schema}.clusters c WHERE c.id = ANY($1::uuid[]) AND u.cluster_id = c.id "
            "AND u.recurrence <> c.region_count",
            groups,
        )


async def _summarise(conn: asyncpg.Connection, schema: str, groups: list[str]) -> None:
    """Store what the recurring view shows of these groups (their visible members)."""
    await conn.execute(
        "WITH i AS (SELECT id, cluster_id, category, title, region_code, province_code, "
        f"raised_at, recommendation_ids FROM {schema}.issues "
        "WHERE cluster_id = ANY($1::uuid[]) AND status IN ('open', 'addressed')), "
        "g AS (SELECT cluster_id, count(*) AS n, count(DISTINCT region_code) AS region_count, "
        "count(DISTINCT province_code) AS province_count, array_agg(id) AS ids, "
        "(array_agg(title ORDER BY raised_at, id))[1] AS first_title, "
        "mode() WITHIN GROUP (ORDER BY category) AS category, "
        "array_agg(DISTINCT region_code ORDER BY region_code) AS region_codes, "
        "array_agg(DISTINCT province_code ORDER BY province_code) AS provinces, "
        f"(array_agg(id::text ORDER BY raised_at, id))[1:{MEMBERS_LISTED}] AS issue_ids "
        "FROM i GROUP BY cluster_id), "
        "r AS (SELECT i.cluster_id, count(DISTINCT r) AS n, "
        f"(array_agg(DISTINCT r::text ORDER BY r::text))[1:{MEMBERS_LISTED}] AS ids "
        "FROM i, unnest(i.recommendation_ids) AS r GROUP BY i.cluster_id) "
        f"UPDATE {schema}.clusters c SET n = g.n, region_count = g.region_count, "
        "province_count = g.province_count, category = g.category, issue_ids = g.issue_ids, "
        "region_codes = g.region_codes, provinces = g.provinces, "
        "recommendation_ids = coalesce(r.ids, '{}'), recommendation_count = coalesce(r.n, 0), "
        "label = coalesce(c.name, CASE WHEN c.label_issue_id = ANY(g.ids) THEN "
        f"(SELECT title FROM {schema}.issues WHERE id = c.label_issue_id) END, g.first_title) "
        "FROM g LEFT JOIN r ON r.cluster_id = g.cluster_id WHERE c.id = g.cluster_id",
        groups,
    )


def _format_terms(terms: Counter[str]) -> str:
    # Terms are lower-case letters, digits, "-" and "/": space and ":" separate safely.
    return " ".join(f"{t}:{n}" for t, n in sorted(terms.items()))


def _parse_terms(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for item in text.split():
        term, _, n = item.rpartition(":")
        out[term] = int(n)
    return out


def effective(at: datetime, region_code: str) -> tuple[int, date]:
    """The offset an effective time was given with (seconds) and its local date in the region."""
    offset = at.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0, at.astimezone(
        zone_of(region_code)
    ).date()


def as_given(at: datetime, offset_seconds: int) -> datetime:
    """A stored (UTC) time back at the offset the office gave."""
    return at.astimezone(_offset_zone(offset_seconds))


@functools.lru_cache(maxsize=64)
def _offset_zone(offset_seconds: int) -> timezone:
    # Views convert every item's times: one zone object per offset, not one per time.
    return timezone(timedelta(seconds=offset_seconds))


def _correct(row: Row, event: IssueCorrected) -> None:
    changed = {
        name: value
        for name in ("title", "description", "severity", "raised_at")
        if (value := getattr(event, name)) is not None
    }
    row.update(changed)
    if event.raised_at is not None:
        row["raised_offset"], row["raised_date"] = effective(event.raised_at, row["region_code"])
    row["corrected"] = sorted({*row["corrected"], *changed})


def _raised(env: Envelope, event: IssueRaised) -> Row:
    # The office may give the time it was raised; else the time it was recorded, shown
    # in the region's zone.
    raised_at = event.raised_at or env.recorded_at.astimezone(zone_of(event.region_code))
    offset, local_date = effective(raised_at, event.region_code)
    return {
        "id": env.entity_id,
        "position": env.position,
        "region_code": event.region_code,
        "province_code": parent_code(event.region_code),
        "hearing_id": str(event.hearing_id) if event.hearing_id else None,
        "category": event.category,
        "title": event.title,
        "description": event.description,
        "severity": event.severity,
        "withdrawn": False,
        "raised_by_code": event.raised_by.code,
        "raised_by_name": event.raised_by.name,
        "raised_at": raised_at,
        "recommendation_ids": [],
        "raised_offset": offset,
        "raised_date": local_date,
        "recorded_at": env.recorded_at,
        "corrected": [],
        "terms": "",
    }


# --- queries -----------------------------------------------------------------------------

IssueStatus = Literal["open", "addressed", "withdrawn"]
IssueSort = Literal["recent", "severity"]


class Org(msgspec.Struct, kw_only=True):
    """An organization as shown on an issue."""

    code: str
    name: str


class IssueItem(msgspec.Struct, kw_only=True):
    """An issue on the board."""

    id: str
    region_code: str
    #: names beside codes (Kemendagri registry), for reports
    region_name: str | None
    province_code: str
    province_name: str | None
    hearing_id: str | None
    category: str
    title: str
    description: str
    severity: int
    status: str
    raised_by: Org
    #: the effective time, at the offset the office gave (the region's zone if none)
    raised_at: datetime
    raised_at_utc: datetime
    #: when the server stored IssueRaised, and how long after raised_at that was
    recorded_at: datetime
    recorded_after_seconds: int
    recommendation_ids: list[str]
    #: fields corrected since the issue was raised (the "corrected" mark)
    corrected: list[str]
    #: the recurring problem it belongs to (null once withdrawn)
    cluster_id: str | None = None


class UncoveredItem(IssueItem, kw_only=True):
    """An open issue no recommendation cites, with how many regions raised similar ones."""

    recurrence: int


@dataclass(frozen=True, slots=True)
class IssueFilters:
    """Filters of the board; ``scope`` is the caller's regions (None: all)."""

    scope: list[str] | None = None
    categories: list[str] | None = None
    provinces: list[str] | None = None
    regions: list[str] | None = None
    raised_by: list[str] | None = None
    statuses: list[str] | None = None
    severity_min: int | None = None
    severity_max: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    hearing_id: str | None = None
    #: date-only bounds (inclusive): the local date of each issue's region
    day_from: date | None = None
    day_to: date | None = None

    def where(self, first_param: int = 1) -> Where:
        """The WHERE clauses for these filters."""
        w = Where(first_param)
        for column, values in (
            ("region_code", self.scope),
            ("category", self.categories),
            ("province_code", self.provinces),
            ("region_code", self.regions),
            ("raised_by_code", self.raised_by),
            ("status", self.statuses),
        ):
            if values is not None:
                w.add(f"{column} = ANY({{}}::text[])", list(values))
        if self.severity_min is not None:
            w.add("severity >= {}", self.severity_min)
        if self.severity_max is not None:
            w.add("severity <= {}", self.severity_max)
        if self.date_from is not None:
            w.add("raised_at >= {}", self.date_from)
        if self.date_to is not None:
            w.add("raised_at < {}", self.date_to)
        if self.hearing_id is not None:
            w.add("hearing_id = {}::uuid", self.hearing_id)
        if self.day_from is not None:
            w.add("raised_date >= {}", self.day_from)
        if self.day_to is not None:
            w.add("raised_date <= {}", self.day_to)
        return w


_COLUMNS = (
    "id::text, region_code, province_code, hearing_id::text, category, title, description, "
    "severity, status, raised_by_code, raised_by_name, raised_at, "
    "recommendation_ids::text[] AS recommendation_ids, raised_offset, recorded_at, corrected, "
    "cluster_id::text"
)


def _item(r: asyncpg.Record) -> IssueItem:
    names = load_regions()
    return IssueItem(
        id=r["id"],
        region_code=r["region_code"],
        region_name=names.name_of(r["region_code"]),
        province_code=r["province_code"],
        province_name=names.name_of(r["province_code"]),
        hearing_id=r["hearing_id"],
        category=r["category"],
        title=r["title"],
        description=r["description"],
        severity=r["severity"],
        status=r["status"],
        raised_by=Org(code=r["raised_by_code"], name=r["raised_by_name"]),
        raised_at=as_given(r["raised_at"], r["raised_offset"]),
        raised_at_utc=r["raised_at"],
        recorded_at=r["recorded_at"],
        recorded_after_seconds=int((r["recorded_at"] - r["raised_at"]).total_seconds()),
        recommendation_ids=list(r["recommendation_ids"]),
        corrected=list(r["corrected"]),
        cluster_id=r["cluster_id"],
    )


async def list_issues(
    conn: asyncpg.Connection,
    filters: IssueFilters,
    *,
    sort: IssueSort = "recent",
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[IssueItem], str | None]:
    """A page of issues, newest (or most severe) first, and the cursor of the next page."""
    w = filters.where()
    if cursor is not None:
        values = decode_cursor(cursor)
        try:
            if sort == "recent" and values[0] == "recent" and len(values) == 3:
                w.add(
                    "(raised_at, id) < ({}, {}::uuid)", datetime.fromisoformat(values[1]), values[2]
                )
            elif sort == "severity" and values[0] == "severity" and len(values) == 4:
                w.add(
                    "(severity, raised_at, id) < ({}, {}, {}::uuid)",
                    int(values[1]),
                    datetime.fromisoformat(values[2]),
                    values[3],
                )
            else:
                raise BadCursor("cursor belongs to another sort order")
        except (TypeError, ValueError, IndexError) as e:
            raise BadCursor("cursor is not valid") from e
    # `i.id`, not `id`: that is the output column `id::text`, which no index serves.
    order = (
        "i.raised_at DESC, i.id DESC"
        if sort == "recent"
        else "i.severity DESC, i.raised_at DESC, i.id DESC"
    )
    sql = (
        f"SELECT {_COLUMNS} FROM {SCHEMA}.issues i{w.sql()} ORDER BY {order} "
        f"LIMIT {w.param(limit + 1)}"
    )
    rows = await conn.fetch(sql, *w.params)
    items = [_item(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        key: list[Any] = [last.raised_at.isoformat(), last.id]
        next_cursor = encode_cursor(
            ["recent", *key] if sort == "recent" else ["severity", last.severity, *key]
        )
    return items, next_cursor


class CategoryProvinceCount(msgspec.Struct, kw_only=True):
    """Issues of one category in one province."""

    category: str
    province_code: str
    province_name: str | None = None
    count: int


class CategoryOrganizationCount(msgspec.Struct, kw_only=True):
    """Issues of one category raised by one kind of organization."""

    category: str
    organization: str
    count: int


class ProvinceCount(msgspec.Struct, kw_only=True):
    """Issues in one province."""

    province_code: str
    province_name: str | None
    count: int


class Summary(msgspec.Struct, kw_only=True):
    """``GET /v1/views/issues/summary``."""

    by_category_province: list[CategoryProvinceCount]
    by_category_organization: list[CategoryOrganizationCount]
    #: totals over the same filters
    total: int = 0
    by_category: dict[str, int] = msgspec.field(default_factory=dict)
    by_province: list[ProvinceCount] = msgspec.field(default_factory=list)


#: the filters the count tables answer; any other goes to the issues themselves
_COUNTED = ("categories", "provinces", "raised_by", "statuses")


async def summary(conn: asyncpg.Connection, filters: IssueFilters) -> Summary:
    """Counts by category x province and by category x organization, with totals.

    Filtered by category, province, organization and status only (a national caller),
    it adds up the counts kept on apply; other filters count the matching issues.
    """
    if dataclasses.replace(filters, **dict.fromkeys(_COUNTED)) == IssueFilters():
        # Each breakdown from the smallest table that has every filtered column, both in
        # one round trip.
        p_sql, p_params = _counted(
            filters,
            "issue_counts" if filters.raised_by is not None else "issue_counts_by_province",
            "province_code",
            1,
        )
        o_sql, o_params = _counted(
            filters,
            "issue_counts" if filters.provinces is not None else "issue_counts_by_organization",
            "raised_by_code",
            len(p_params) + 1,
        )
        rows = await conn.fetch(f"{p_sql} UNION ALL {o_sql}", *p_params, *o_params)
        by_province = [r[1:] for r in rows if r[0] == "p"]
        by_org = [r[1:] for r in rows if r[0] == "o"]
    else:
        w = filters.where()
        by_province = await conn.fetch(
            f"SELECT category, province_code, count(*) AS n FROM {SCHEMA}.issues{w.sql()} "
            "GROUP BY 1, 2",
            *w.params,
        )
        by_org = await conn.fetch(
            f"SELECT category, raised_by_code, count(*) AS n FROM {SCHEMA}.issues{w.sql()} "
            "GROUP BY 1, 2",
            *w.params,
        )
    # Sorted here, by code point: a few hundred rows cost PostgreSQL more to sort (text
    # under a collation) than Python, and the order is the same whatever the collation.
    by_province.sort(key=_first_two)
    by_org.sort(key=_first_two)
    return _summary(by_province, by_org)


def _first_two(row: Sequence[Any]) -> tuple[Any, Any]:
    return row[0], row[1]


def _counted(
    filters: IssueFilters, table: str, breakdown: str, first_param: int
) -> tuple[str, list[Any]]:
    """The SELECT of one breakdown from one count table: rows of ('p' for province or 'o'
    for organization, category, code, count), and its parameters."""
    w = Where(first_param)
    for column, values in (
        ("category", filters.categories),
        ("province_code", filters.provinces),
        ("raised_by_code", filters.raised_by),
        ("status", filters.statuses),
    ):
        if values is not None:
            w.add(f"{column} = ANY({{}}::text[])", list(values))
    kind = "p" if breakdown == "province_code" else "o"
    return (
        f"SELECT '{kind}' AS breakdown, category, {breakdown} AS code, sum(n)::bigint AS n "
        f"FROM {SCHEMA}.{table}{w.sql()} GROUP BY category, {breakdown}",
        w.params,
    )


def _summary(by_province: Sequence[Sequence[Any]], by_org: Sequence[Sequence[Any]]) -> Summary:
    names = load_regions()
    by_category: dict[str, int] = {}
    provinces: dict[str, int] = {}
    for r in by_province:
        by_category[r[0]] = by_category.get(r[0], 0) + r[2]
        provinces[r[1]] = provinces.get(r[1], 0) + r[2]
    # Each province's name once, not once per category (a national summary has ~400 rows).
    province_names = {code: names.name_of(code) for code in provinces}
    return Summary(
        by_category_province=[
            CategoryProvinceCount(
                category=r[0], province_code=r[1], province_name=province_names[r[1]], count=r[2]
            )
            for r in by_province
        ],
        by_category_organization=[
            CategoryOrganizationCount(category=r[0], organization=r[1], count=r[2]) for r in by_org
        ],
        total=sum(by_category.values()),
        by_category=by_category,
        by_province=[
            ProvinceCount(province_code=code, province_name=province_names[code], count=n)
            for code, n in sorted(provinces.items())
        ],
    )


class SummaryRow(msgspec.Struct, kw_only=True):
    """One line of the summary as CSV / JSON Lines: a count of one breakdown."""

    breakdown: str
    category: str | None
    province_code: str | None
    province_name: str | None
    organization: str | None
    count: int


def summary_rows(found: Summary) -> list[SummaryRow]:
    """The summary flattened for export: one row per count, totals included."""
    rows = [
        SummaryRow(
            breakdown="category_province",
            category=c.category,
            province_code=c.province_code,
            province_name=c.province_name,
            organization=None,
            count=c.count,
        )
        for c in found.by_category_province
    ]
    rows += [
        SummaryRow(
            breakdown="category_organization",
            category=c.category,
            province_code=None,
            province_name=None,
            organization=c.organization,
            count=c.count,
        )
        for c in found.by_category_organization
    ]
    rows += [
        SummaryRow(
            breakdown="category",
            category=category,
            province_code=None,
            province_name=None,
            organization=None,
            count=n,
        )
        for category, n in found.by_category.items()
    ]
    rows += [
        SummaryRow(
            breakdown="province",
            category=None,
            province_code=p.province_code,
            province_name=p.province_name,
            organization=None,
            count=p.count,
        )
        for p in found.by_province
    ]
    rows.append(
        SummaryRow(
            breakdown="total",
            category=None,
            province_code=None,
            province_name=None,
            organization=None,
            count=found.total,
        )
    )
    return rows


#: member ids a recurring problem lists in the list view (its page lists them all)
MEMBERS_LISTED = 100


class Cluster(msgspec.Struct, kw_only=True):
    """A recurring problem: issues that say the same thing, and how widely it was raised."""

    cluster_id: str
    #: the analyst's name for it, else its most central title
    label: str
    #: the most frequent category of its issues (a hint: members may sit under others)
    category: str
    #: its first members in the order raised, at most ``MEMBERS_LISTED`` (100): a problem
    #: a whole country raises has thousands; ``/recurring/{cluster_id}`` lists them all
    issue_ids: list[str]
    #: how many members it has (visible to the caller)
    issue_count: int = 0
    region_codes: list[str]
    region_count: int
    provinces: list[str]
    province_count: int
    #: the recommendations citing its members, at most ``MEMBERS_LISTED``
    recommendation_ids: list[str]
    #: how many recommendations cite its members
    recommendation_count: int = 0


async def clusters(
    conn: asyncpg.Connection,
    scope: list[str] | None,
    *,
    categories: list[str] | None = None,
    min_regions: int = 1,
    limit: int | None = None,
    cluster: str | None = None,
    every_member: bool = False,
) -> list[Cluster]:
    """Recurring problems among the visible non-withdrawn issues, most regions first.

    The groups are the stored ones (``projections/grouping.py``, maintained on apply);
    ``scope`` and ``categories`` only choose which members are visible. Each lists its first
    ``MEMBERS_LISTED`` members (``every_member``: all of them, for one cluster's page).
    """
    if scope is None and categories is None and cluster is None:
        return await _stored_clusters(conn, min_regions, limit)
    filters = IssueFilters(scope=scope, categories=categories, statuses=["open", "addressed"])
    w = filters.where()
    w.add("cluster_id IS NOT NULL")
    if cluster is not None:
        w.add("cluster_id = {}::uuid", cluster)
    having = w.param(min_regions)
    members = "" if every_member else f"[1:{MEMBERS_LISTED}]"
    sql = (
        "WITH i AS (SELECT id, cluster_id, category, title, region_code, province_code, "
        f"raised_at, recommendation_ids FROM {SCHEMA}.issues{w.sql()}), "
        "g AS (SELECT cluster_id, count(DISTINCT region_code) AS region_count, "
        "count(DISTINCT province_code) AS province_count, count(*) AS n, "
        "array_agg(id) AS ids, array_agg(title ORDER BY raised_at, id) AS titles, "
        "mode() WITHIN GROUP (ORDER BY category) AS category, "
        "array_agg(DISTINCT region_code ORDER BY region_code) AS region_codes, "
        "array_agg(DISTINCT province_code ORDER BY province_code) AS provinces, "
        f"(array_agg(id::text ORDER BY raised_at, id)){members} AS issue_ids "
        f"FROM i GROUP BY cluster_id HAVING count(DISTINCT region_code) >= {having}) "
        "SELECT g.cluster_id::text AS cluster_id, g.category, g.issue_ids, g.n, g.region_codes, "
        "g.provinces, g.region_count, g.province_count, "
        "coalesce(c.name, CASE WHEN c.label_issue_id = ANY(g.ids) THEN l.title END, "
        "g.titles[1]) AS label, coalesce(r.ids, '{}') AS recommendation_ids, "
        "coalesce(r.n, 0) AS recommendation_count "
        f"FROM g LEFT JOIN {SCHEMA}.clusters c ON c.id = g.cluster_id "
        f"LEFT JOIN {SCHEMA}.issues l ON l.id = c.label_issue_id "
        # The recommendations of every cluster in one pass (not one scan per cluster).
        "LEFT JOIN (SELECT i.cluster_id, count(DISTINCT r) AS n, "
        f"(array_agg(DISTINCT r::text ORDER BY r::text)){members} AS ids "
        "FROM i, unnest(i.recommendation_ids) AS r GROUP BY i.cluster_id) r "
        "ON r.cluster_id = g.cluster_id "
        "ORDER BY g.region_count DESC, g.province_count DESC, g.n DESC, g.category, label, "
        "g.cluster_id"
    )
    if limit is not None:
        sql += f" LIMIT {w.param(limit)}"
    rows = await conn.fetch(sql, *w.params)
    return [
        Cluster(
            cluster_id=r["cluster_id"],
            label=r["label"],
            category=r["category"],
            issue_ids=list(r["issue_ids"]),
            issue_count=r["n"],
            region_codes=list(r["region_codes"]),
            region_count=r["region_count"],
            provinces=list(r["provinces"]),
            province_count=r["province_count"],
            recommendation_ids=list(r["recommendation_ids"]),
            recommendation_count=r["recommendation_count"],
        )
        for r in rows
    ]


# The national list's problems (the summaries kept on apply) in its order; $1 min_regions,
# $2 limit (NULL: all). Read as rows (`_stored_clusters`) or as JSON (`stored_clusters_json`).
_STORED_ORDER = "region_count DESC, province_count DESC, n DESC, category, label, id"
_STORED = (
    f"SELECT * FROM {SCHEMA}.clusters WHERE n > 0 AND region_count >= $1 "
    f"ORDER BY {_STORED_ORDER} LIMIT $2"
)


async def _stored_clusters(
    conn: asyncpg.Connection, min_regions: int, limit: int | None
) -> list[Cluster]:
    """Every member visible (a national caller, no category): the summaries kept on apply."""
    rows = await conn.fetch(
        "SELECT id::text AS cluster_id, label, category, issue_ids, n, region_codes, "
        "region_count, provinces, province_count, recommendation_ids, recommendation_count "
        f"FROM ({_STORED}) c ORDER BY {_STORED_ORDER}",
        min_regions,
        limit,
    )
    return [
        Cluster(
            cluster_id=r["cluster_id"],
            label=r["label"],
            category=r["category"],
            issue_ids=list(r["issue_ids"]),
            issue_count=r["n"],
            region_codes=list(r["region_codes"]),
            region_count=r["region_count"],
            provinces=list(r["provinces"]),
            province_count=r["province_count"],
            recommendation_ids=list(r["recommendation_ids"]),
            recommendation_count=r["recommendation_count"],
        )
        for r in rows
    ]


async def stored_clusters_json(
    conn: asyncpg.Connection, min_regions: int, limit: int | None
) -> str:
    """What :func:`clusters` gives a national caller with no category (the summaries kept
    on apply), as the JSON array its :class:`Cluster` items encode to, built by PostgreSQL.

    The national list is the hot one, and its members' ids are most of it (at 100k events
    ~140 KB): passed through as text they cost a fraction of decoding every id into Python
    and encoding it again. Same items, same order (a test compares it with the export,
    which goes through :class:`Cluster`).
    """
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT coalesce(json_agg(json_build_object('cluster_id', id::text, 'label', label, "
        "'category', category, 'issue_ids', issue_ids, 'issue_count', n, "
        "'region_codes', region_codes, 'region_count', region_count, 'provinces', provinces, "
        "'province_count', province_count, 'recommendation_ids', recommendation_ids, "
        f"'recommendation_count', recommendation_count) ORDER BY {_STORED_ORDER}), '[]')::text "
        f"FROM ({_STORED}) c",
        min_regions,
        limit,
    )


class ClusterMember(msgspec.Struct, kw_only=True):
    """An issue of a recurring problem, with where it was raised."""

    id: str
    title: str
    category: str
    region_code: str
    province_code: str
    raised_by: Org
    raised_at: datetime
    status: str


class ClusterDetail(Cluster, kw_only=True):
    """``GET /v1/views/issues/recurring/{cluster_id}``: a recurring problem and its members."""

    members: list[ClusterMember]
    #: its open issues: what a recommendation that cites the whole cluster lists in
    #: ``issue_ids`` (RecommendationDrafted / IssuesCited), as of this read
    open_issue_ids: list[str]


async def cluster_detail(
    conn: asyncpg.Connection, scope: list[str] | None, cluster: str
) -> ClusterDetail | None:
    """One recurring problem with its visible members (None if none is visible)."""
    found = await clusters(conn, scope, cluster=cluster, every_member=True)
    if not found:
        return None
    w = IssueFilters(scope=scope, statuses=["open", "addressed"]).where()
    w.add("cluster_id = {}::uuid", cluster)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.issues{w.sql()} ORDER BY raised_at, id", *w.params
    )
    members = [
        ClusterMember(
            id=i.id,
            title=i.title,
            category=i.category,
            region_code=i.region_code,
            province_code=i.province_code,
            raised_by=i.raised_by,
            raised_at=i.raised_at,
            status=i.status,
        )
        for i in map(_item, rows)
    ]
    return ClusterDetail(
        **msgspec.structs.asdict(found[0]),
        members=members,
        open_issue_ids=[m.id for m in members if m.status == "open"],
    )


#: ``uncovered``'s order, and the cursor of its next page after the last item
_UNCOVERED_ORDER = "recurrence DESC, severity DESC, raised_at DESC, id"
_INT_MAX = 2**31 - 1


def _uncovered_after(cursor: str) -> tuple[int, int, datetime, str]:
    """The last item of the previous page as (recurrence, severity, raised_at, id)."""
    values = decode_cursor(cursor)
    try:
        tag, recurrence, severity, raised_at, issue_id = values
        at = datetime.fromisoformat(raised_at)
        if (
            tag != "uncovered"
            or not all(type(v) is int and 0 <= v <= _INT_MAX for v in (recurrence, severity))
            or at.tzinfo is None
        ):
            raise ValueError("not an uncovered cursor")
        return recurrence, severity, at, str(uuid.UUID(issue_id))
    except (TypeError, ValueError, AttributeError) as e:
        raise BadCursor("cursor is not valid") from e


def _after(w: Where, after: tuple[int, int, datetime, str], id_sql: str = "id") -> None:
    """Keep what the order puts after ``after``. The row comparison of the first three
    keys is an index condition (all DESC); only items tied on all three are left to id."""
    recurrence, severity, raised_at, issue_id = after
    key = "(recurrence, severity, raised_at)"
    w.add(
        f"{key} <= ({{}}, {{}}, {{}}) AND ({key} <> ({{}}, {{}}, {{}}) OR {id_sql} > {{}}::uuid)",
        *(recurrence, severity, raised_at) * 2,
        issue_id,
    )


async def uncovered(
    conn: asyncpg.Connection,
    scope: list[str] | None,
    *,
    categories: list[str] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[UncoveredItem], str | None]:
    """Open issues no recommendation cites, by recurrence, then severity, then recency.

    Recurrence is the number of regions (visible to the caller) that raised the issue's
    recurring problem. A national caller reads the list kept on apply (``uncovered``, in
    this order: one index range per page); a regional one counts its own regions.
    """
    after = _uncovered_after(cursor) if cursor is not None else None
    if scope is None:
        w = Where()
        if categories is not None:
            w.add("category = ANY({}::text[])", list(categories))
        if after is not None:
            _after(w, after)
        sql = (
            f"WITH page AS (SELECT id AS page_id, recurrence FROM {SCHEMA}.uncovered{w.sql()} "
            f"ORDER BY {_UNCOVERED_ORDER} LIMIT {w.param(limit + 1)}) "
            f"SELECT {_COLUMNS}, recurrence FROM page JOIN {SCHEMA}.issues ON id = page_id "
            "ORDER BY recurrence DESC, severity DESC, raised_at DESC, page_id"
        )
        rows = await conn.fetch(sql, *w.params)
    else:
        w = IssueFilters(scope=scope, categories=categories, statuses=["open"]).where()
        v = IssueFilters(scope=scope, statuses=["open", "addressed"]).where(len(w.params) + 1)
        k = Where(len(w.params) + len(v.params) + 1)
        if after is not None:
            _after(k, after, "id::uuid")
        rows = await conn.fetch(
            f"WITH u AS (SELECT {_COLUMNS} FROM {SCHEMA}.issues{w.sql()}), "
            f"r AS (SELECT cluster_id, count(DISTINCT region_code) AS recurrence "
            f"FROM {SCHEMA}.issues{v.sql()}{' AND' if v.clauses else ' WHERE'} cluster_id IN "
            "(SELECT cluster_id::uuid FROM u) GROUP BY cluster_id), "
            "g AS (SELECT u.*, coalesce(r.recurrence, 1) AS recurrence FROM u "
            "LEFT JOIN r ON r.cluster_id = u.cluster_id::uuid) "
            f"SELECT * FROM g{k.sql()} ORDER BY {_UNCOVERED_ORDER} LIMIT {k.param(limit + 1)}",
            *w.params,
            *v.params,
            *k.params,
        )
    items = [
        UncoveredItem(**msgspec.structs.asdict(_item(r)), recurrence=r["recurrence"])
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(
            ["uncovered", last.recurrence, last.severity, last.raised_at.isoformat(), last.id]
        )
    return items, next_cursor


#: (status, category, how many) of a region's issue counts, as the dossier reads them
_Count = tuple[str, str, int]


class RegionIssues(msgspec.Struct, kw_only=True):
    """A region's issues counted by status and by category, and the newest of them."""

    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    #: the newest issues (at most the dossier's `limit`; the board pages through all)
    items: list[IssueItem] = msgspec.field(default_factory=list)


async def region_issues(conn: asyncpg.Connection, code: str, *, limit: int) -> RegionIssues:
    """The issues of a province (with its regencies) or a regency for its dossier: counts of
    all (a province's from the summary's counts kept on apply, a regency's few from the
    index), the newest `limit` from the index."""
    column = region_column(code)
    counts_sql = (
        f"SELECT status, category, n FROM {SCHEMA}.issue_counts_by_province "
        "WHERE province_code = $1"
        if column == "province_code"
        else f"SELECT status, category, count(*) AS n FROM {SCHEMA}.issues "
        f"WHERE {column} = $1 GROUP BY status, category"
    )
    # One statement (one round trip): the counts as one JSON array beside every row of
    # the list; a region without issues still gets its row (with no issue).
    rows = await conn.fetch(
        "SELECT c.counts, l.* FROM (SELECT coalesce(json_agg(json_build_array("
        f"k.status, k.category, k.n)), '[]')::text AS counts FROM ({counts_sql}) k) c "
        f"LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM {SCHEMA}.issues i WHERE {column} = $1 "
        "ORDER BY i.raised_at DESC, i.id DESC LIMIT $2) l ON true",
        code,
        limit,
    )
    by_status = {"open": 0, "addressed": 0, "withdrawn": 0}
    by_category: Counter[str] = Counter()
    for status, category, n in msgspec.json.decode(rows[0]["counts"], type=list[_Count]):
        by_status[status] += n
        by_category[category] += n
    rows = [r for r in rows if r["id"] is not None]
    return RegionIssues(
        total=sum(by_status.values()),
        by_status=by_status,
        by_category=dict(sorted(by_category.items())),
        items=[_item(r) for r in rows],
    )


async def issues_by_ids(conn: asyncpg.Connection, ids: list[str]) -> list[IssueItem]:
    """These issues (e.g. the ones a recommendation cites), newest first; unknown ids skipped."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.issues WHERE id = ANY($1::uuid[]) "
        "ORDER BY raised_at DESC, id DESC",
        ids,
    )
    return [_item(r) for r in rows]
