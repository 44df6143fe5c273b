"""The national issue board: every issue with its status, and the queries built on it.

Status: ``withdrawn`` if withdrawn, else ``addressed`` while at least one recommendation
cites it, else ``open``. The board also answers the summary, the recurring-issue
clusters (pg_trgm similarity of titles within a category, grouped transitively) and the
coverage gaps (open issues no recommendation cites, ranked by recurrence and severity).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import asyncpg
import msgspec

from events.regions import parent_code
from events.timezones import zone_of
from events.types import (
    IssueCategoryCorrected,
    IssueCorrected,
    IssueRaised,
    IssuesCited,
    IssueUncited,
    IssueWithdrawn,
    RecommendationDrafted,
)
from projections.base import Envelope, Row, Table, Where, schema_of
from projections.similarity import similar_groups, trigram_sets

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
    ],
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
        status text GENERATED ALWAYS AS (
            CASE WHEN withdrawn THEN 'withdrawn'
                 WHEN cardinality(recommendation_ids) > 0 THEN 'addressed'
                 ELSE 'open' END) STORED
    )""",
    "CREATE INDEX ON {s}.issues (raised_at DESC, id DESC)",
    "CREATE INDEX ON {s}.issues (severity DESC, raised_at DESC, id DESC)",
    "CREATE INDEX ON {s}.issues (region_code)",
    "CREATE INDEX ON {s}.issues (hearing_id)",
    "CREATE INDEX ON {s}.issues (raised_date)",
    "CREATE INDEX ON {s}.issues USING gin (title gin_trgm_ops)",
)

_HANDLES = frozenset(
    {
        "IssueRaised",
        "IssueCategoryCorrected",
        "IssueCorrected",
        "IssueWithdrawn",
        "RecommendationDrafted",
        "IssuesCited",
        "IssueUncited",
    }
)


class IssueBoard:
    """The ``issue_board`` projection."""

    name: str = NAME
    handles: frozenset[str] | None = _HANDLES
    reads_payload: bool = True
    ddl: tuple[str, ...] = DDL
    tables: tuple[str, ...] = ("issues",)

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Fold the batch into the touched issue rows and upsert them."""
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
        dirty: set[str] = set()
        for env in batch:
            event = env.event
            if isinstance(event, IssueRaised):
                if env.entity_id not in rows:  # idempotent per position
                    rows[env.entity_id] = _raised(env, event)
                    dirty.add(env.entity_id)
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
            elif isinstance(event, IssueCorrected):
                _correct(row, event)
            elif isinstance(event, IssueWithdrawn):
                row["withdrawn"] = True
            dirty.add(env.entity_id)
        await ISSUES.upsert(conn, schema, (rows[i] for i in sorted(dirty)))


def effective(at: datetime, region_code: str) -> tuple[int, date]:
    """The offset an effective time was given with (seconds) and its local date in the region."""
    offset = at.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0, at.astimezone(
        zone_of(region_code)
    ).date()


def as_given(at: datetime, offset_seconds: int) -> datetime:
    """A stored (UTC) time back at the offset the office gave."""
    return at.astimezone(timezone(timedelta(seconds=offset_seconds)))


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
    province_code: str
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
    "recommendation_ids::text[] AS recommendation_ids, raised_offset, recorded_at, corrected"
)


def _item(r: asyncpg.Record) -> IssueItem:
    return IssueItem(
        id=r["id"],
        region_code=r["region_code"],
        province_code=r["province_code"],
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
    )


class BadCursor(ValueError):
    """The cursor was not produced by this query."""


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The values inside a cursor; BadCursor if it is not one of ours."""
    try:
        values = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, msgspec.DecodeError) as e:
        raise BadCursor("cursor is not valid") from e
    if not isinstance(values, list):
        raise BadCursor("cursor is not valid")
    return values


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
    order = (
        "raised_at DESC, id DESC" if sort == "recent" else "severity DESC, raised_at DESC, id DESC"
    )
    sql = (
        f"SELECT {_COLUMNS} FROM {SCHEMA}.issues{w.sql()} ORDER BY {order} "
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
    count: int


class CategoryOrganizationCount(msgspec.Struct, kw_only=True):
    """Issues of one category raised by one kind of organization."""

    category: str
    organization: str
    count: int


class Summary(msgspec.Struct, kw_only=True):
    """``GET /v1/views/issues/summary``."""

    by_category_province: list[CategoryProvinceCount]
    by_category_organization: list[CategoryOrganizationCount]


async def summary(conn: asyncpg.Connection, filters: IssueFilters) -> Summary:
    """Counts by category x province and by category x organization."""
    w = filters.where()
    by_province = await conn.fetch(
        f"SELECT category, province_code, count(*) AS n FROM {SCHEMA}.issues{w.sql()} "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        *w.params,
    )
    by_org = await conn.fetch(
        f"SELECT category, raised_by_code, count(*) AS n FROM {SCHEMA}.issues{w.sql()} "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        *w.params,
    )
    return Summary(
        by_category_province=[
            CategoryProvinceCount(category=r[0], province_code=r[1], count=r[2])
            for r in by_province
        ],
        by_category_organization=[
            CategoryOrganizationCount(category=r[0], organization=r[1], count=r[2]) for r in by_org
        ],
    )


class Cluster(msgspec.Struct, kw_only=True):
    """Similar issues of one category, and how widely they were raised."""

    category: str
    label: str
    issue_ids: list[str]
    region_codes: list[str]
    region_count: int
    province_count: int
    recommendation_ids: list[str]


async def clusters(
    conn: asyncpg.Connection,
    scope: list[str] | None,
    *,
    categories: list[str] | None = None,
    similarity: float = 0.4,
) -> tuple[list[Cluster], dict[str, int]]:
    """Clusters of similar non-withdrawn issues, most regions first; and recurrence by issue.

    Two issues are similar when the trigram similarity of their titles reaches
    ``similarity`` (pg_trgm's, as the ``%`` operator); clusters are the connected groups.
    """
    filters = IssueFilters(scope=scope, categories=categories, statuses=["open", "addressed"])
    w = filters.where()
    rows = await conn.fetch(
        f"SELECT id::text, category, title, region_code, province_code, raised_at, "
        f"recommendation_ids::text[] FROM {SCHEMA}.issues{w.sql()} ORDER BY raised_at, id",
        *w.params,
    )
    # Similarity is a property of titles: group the distinct titles of each category
    # (projections/similarity.py; PostgreSQL supplies each title's trigrams).
    distinct = sorted({r[2] for r in rows})
    grams = trigram_sets(
        await conn.fetch("SELECT t, show_trgm(t) FROM unnest($1::text[]) AS t", distinct)
    )
    by_category: dict[str, set[str]] = {}
    for r in rows:
        by_category.setdefault(r[1], set()).add(r[2])
    root: dict[tuple[str, str], tuple[str, str]] = {}
    for category, titles in by_category.items():
        for group in similar_groups({t: grams[t] for t in titles}, similarity):
            for title in group:
                root[(category, title)] = (category, group[0])
    groups: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for r in rows:
        groups.setdefault(root[(r[1], r[2])], []).append(r)
    out: list[Cluster] = []
    recurrence: dict[str, int] = {}
    for members in groups.values():
        # The most frequent title; ties go to the one raised first (rows are in that
        # order, and most_common keeps insertion order among equal counts).
        label = Counter(m[2] for m in members).most_common(1)[0][0]
        regions = sorted({m[3] for m in members})
        cluster = Cluster(
            category=members[0][1],
            label=label,
            issue_ids=[m[0] for m in members],
            region_codes=regions,
            region_count=len(regions),
            province_count=len({m[4] for m in members}),
            recommendation_ids=sorted({rec for m in members for rec in m[6]}),
        )
        out.append(cluster)
        for m in members:
            recurrence[m[0]] = cluster.region_count
    out.sort(
        key=lambda c: (-c.region_count, -c.province_count, -len(c.issue_ids), c.category, c.label)
    )
    return out, recurrence


async def uncovered(
    conn: asyncpg.Connection,
    scope: list[str] | None,
    *,
    categories: list[str] | None = None,
    similarity: float = 0.4,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[UncoveredItem], int | None]:
    """Open issues no recommendation cites, by recurrence, then severity, then recency."""
    _, recurrence = await clusters(conn, scope, categories=categories, similarity=similarity)
    w = IssueFilters(scope=scope, categories=categories, statuses=["open"]).where()
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {SCHEMA}.issues{w.sql()}", *w.params)
    items = [
        UncoveredItem(**msgspec.structs.asdict(_item(r)), recurrence=recurrence.get(r["id"], 1))
        for r in rows
    ]
    items.sort(key=lambda i: (-i.recurrence, -i.severity, -i.raised_at.timestamp(), i.id))
    page = items[offset : offset + limit]
    return page, offset + limit if len(items) > offset + limit else None


async def issues_in_regions(conn: asyncpg.Connection, regions: list[str]) -> list[IssueItem]:
    """Every issue of these regions (for the region dossier), newest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.issues WHERE region_code = ANY($1::text[]) "
        "ORDER BY raised_at DESC, id DESC",
        regions,
    )
    return [_item(r) for r in rows]


async def issues_by_ids(conn: asyncpg.Connection, ids: list[str]) -> list[IssueItem]:
    """These issues (e.g. the ones a recommendation cites), newest first; unknown ids skipped."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.issues WHERE id = ANY($1::uuid[]) "
        "ORDER BY raised_at DESC, id DESC",
        ids,
    )
    return [_item(r) for r in rows]
