"""Recommendations: status, timeline, cited issues and the breadth of support behind them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from events.regions import parent_code
from events.types import (
    IssueCategoryCorrected,
    IssueRaised,
    IssuesCited,
    IssueUncited,
    RecommendationApproved,
    RecommendationClosed,
    RecommendationDrafted,
    RecommendationRevised,
    RecommendationSubmitted,
    ResponseRecorded,
)
from projections.base import Envelope, Row, Table, Where, schema_of
from projections.issue_board import BadCursor, decode_cursor, encode_cursor

NAME = "recommendations"
SCHEMA = schema_of(NAME)

RECOMMENDATIONS = Table(
    "recommendations",
    [
        ("id", "uuid"),
        ("position", "bigint"),
        ("title", "text"),
        ("body", "text"),
        ("addressee", "text"),
        ("status", "text"),
        ("issue_ids", "uuid[]"),
    ],
)
# The few facts about issues this read model needs, kept here so that it can be
# rebuilt on its own.
ISSUES = Table(
    "issues",
    [("id", "uuid"), ("region_code", "text"), ("province_code", "text"), ("category", "text")],
)

DDL = (
    """CREATE TABLE {s}.recommendations (
        id uuid PRIMARY KEY,
        position bigint NOT NULL,
        title text NOT NULL,
        body text NOT NULL,
        addressee text NOT NULL,
        status text NOT NULL
            CHECK (status IN ('draft', 'approved', 'submitted', 'responded', 'closed')),
        issue_ids uuid[] NOT NULL
    )""",
    "CREATE INDEX ON {s}.recommendations USING gin (issue_ids)",
    """CREATE TABLE {s}.timeline (
        recommendation_id uuid NOT NULL,
        position bigint NOT NULL,
        type text NOT NULL,
        at timestamptz NOT NULL,
        actor jsonb,
        PRIMARY KEY (recommendation_id, position)
    )""",
    """CREATE TABLE {s}.issues (
        id uuid PRIMARY KEY,
        region_code text NOT NULL,
        province_code text NOT NULL,
        category text NOT NULL
    )""",
)

_TIMELINE = (
    "INSERT INTO {s}.timeline (recommendation_id, position, type, at, actor) "
    "SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::jsonb[]) "
    "ON CONFLICT DO NOTHING"
)


class Recommendations:
    """The ``recommendations`` projection."""

    name: str = NAME
    handles: frozenset[str] | None = frozenset(
        {
            "IssueRaised",
            "IssueCategoryCorrected",
            "RecommendationDrafted",
            "IssuesCited",
            "IssueUncited",
            "RecommendationRevised",
            "RecommendationApproved",
            "RecommendationSubmitted",
            "ResponseRecorded",
            "RecommendationClosed",
        }
    )
    reads_payload: bool = True
    ddl: tuple[str, ...] = DDL
    tables: tuple[str, ...] = ("recommendations", "timeline", "issues")

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Fold the batch into touched rows; append the timeline."""
        issue_events = [e for e in batch if e.stream_id.startswith("issue-")]
        rec_events = [e for e in batch if e.stream_id.startswith("recommendation-")]
        if issue_events:
            issues = await ISSUES.load(conn, schema, {e.entity_id for e in issue_events})
            for env in issue_events:
                event = env.event
                if isinstance(event, IssueRaised) and env.entity_id not in issues:
                    issues[env.entity_id] = {
                        "id": env.entity_id,
                        "region_code": event.region_code,
                        "province_code": parent_code(event.region_code),
                        "category": event.category,
                    }
                elif isinstance(event, IssueCategoryCorrected) and env.entity_id in issues:
                    issues[env.entity_id]["category"] = event.category
            await ISSUES.upsert(conn, schema, (issues[i] for i in sorted(issues)))
        if not rec_events:
            return
        rows = await RECOMMENDATIONS.load(conn, schema, {e.entity_id for e in rec_events})
        dirty: set[str] = set()
        timeline: list[list[Any]] = [[], [], [], [], []]
        for env in rec_events:
            row = self._fold(rows, env)
            if row is None:
                continue
            dirty.add(env.entity_id)
            actor = env.metadata().who()
            for column, value in zip(
                timeline,
                (
                    env.entity_id,
                    env.position,
                    env.type,
                    env.recorded_at,
                    msgspec.json.encode(actor) if actor is not None else None,
                ),
                strict=True,
            ):
                column.append(value)
        await RECOMMENDATIONS.upsert(conn, schema, (rows[i] for i in sorted(dirty)))
        if timeline[0]:
            await conn.execute(_TIMELINE.format(s=schema), *timeline)

    @staticmethod
    def _fold(rows: dict[Any, Row], env: Envelope) -> Row | None:
        # Mirrors events.recommendation.evolve: changing content sends it back to draft.
        event = env.event
        if isinstance(event, RecommendationDrafted):
            if env.entity_id in rows:
                return None
            row: Row = {
                "id": env.entity_id,
                "position": env.position,
                "title": event.title,
                "body": event.body,
                "addressee": event.addressee,
                "status": "draft",
                "issue_ids": list(dict.fromkeys(str(i) for i in event.issue_ids)),
            }
            rows[env.entity_id] = row
            return row
        found = rows.get(env.entity_id)
        if found is None:
            return None
        match event:
            case IssuesCited(issue_ids=ids):
                found["issue_ids"] = list(dict.fromkeys([*found["issue_ids"], *map(str, ids)]))
                found["status"] = "draft"
            case IssueUncited(issue_id=issue_id):
                found["issue_ids"] = [i for i in found["issue_ids"] if i != str(issue_id)]
                found["status"] = "draft"
            case RecommendationRevised(title=title, body=body, addressee=addressee):
                found["title"] = title if title is not None else found["title"]
                found["body"] = body if body is not None else found["body"]
                found["addressee"] = addressee if addressee is not None else found["addressee"]
                found["status"] = "draft"
            case RecommendationApproved():
                found["status"] = "approved"
            case RecommendationSubmitted():
                found["status"] = "submitted"
            case ResponseRecorded():
                found["status"] = "responded"
            case RecommendationClosed():
                found["status"] = "closed"
        return found


class TimelineEntry(msgspec.Struct, kw_only=True):
    """One event in a recommendation's life."""

    type: str
    at: datetime
    actor: msgspec.Raw | None


class RecommendationItem(msgspec.Struct, kw_only=True):
    """A recommendation with the breadth of the issues behind it."""

    id: str
    title: str
    status: str
    addressee: str
    issue_ids: list[str]
    region_count: int
    province_count: int
    categories: list[str]
    timeline: list[TimelineEntry]


_SELECT = f"""
SELECT r.id::text AS id, r.title, r.status, r.addressee, r.issue_ids::text[] AS issue_ids,
       r.position,
       (SELECT count(DISTINCT i.region_code) FROM {SCHEMA}.issues i
         WHERE i.id = ANY(r.issue_ids)) AS region_count,
       (SELECT count(DISTINCT i.province_code) FROM {SCHEMA}.issues i
         WHERE i.id = ANY(r.issue_ids)) AS province_count,
       (SELECT coalesce(array_agg(DISTINCT i.category ORDER BY i.category), '{{}}')
          FROM {SCHEMA}.issues i WHERE i.id = ANY(r.issue_ids)) AS categories
FROM {SCHEMA}.recommendations r"""


async def _with_timelines(
    conn: asyncpg.Connection, rows: list[asyncpg.Record]
) -> list[RecommendationItem]:
    ids = [r["id"] for r in rows]
    entries: dict[str, list[TimelineEntry]] = {i: [] for i in ids}
    if ids:
        for t in await conn.fetch(
            f"SELECT recommendation_id::text, type, at, actor FROM {SCHEMA}.timeline "
            "WHERE recommendation_id = ANY($1::uuid[]) ORDER BY position",
            ids,
        ):
            entries[t[0]].append(TimelineEntry(type=t[1], at=t[2], actor=t[3]))
    return [
        RecommendationItem(
            id=r["id"],
            title=r["title"],
            status=r["status"],
            addressee=r["addressee"],
            issue_ids=list(r["issue_ids"]),
            region_count=r["region_count"],
            province_count=r["province_count"],
            categories=list(r["categories"]),
            timeline=entries[r["id"]],
        )
        for r in rows
    ]


async def list_recommendations(
    conn: asyncpg.Connection,
    *,
    statuses: list[str] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[RecommendationItem], str | None]:
    """Recommendations, most recently drafted first."""
    w = Where()
    if statuses is not None:
        w.add("r.status = ANY({}::text[])", statuses)
    if cursor is not None:
        values = decode_cursor(cursor)
        if len(values) != 1 or not isinstance(values[0], int):
            raise BadCursor("cursor is not valid")
        w.add("r.position < {}", values[0])
    rows = await conn.fetch(
        f"{_SELECT}{w.sql()} ORDER BY r.position DESC LIMIT {w.param(limit + 1)}", *w.params
    )
    items = await _with_timelines(conn, rows[:limit])
    next_cursor = encode_cursor([rows[limit - 1]["position"]]) if len(rows) > limit else None
    return items, next_cursor


async def get_recommendation(conn: asyncpg.Connection, rec_id: str) -> RecommendationItem | None:
    """One recommendation, or None."""
    rows = await conn.fetch(f"{_SELECT} WHERE r.id = $1::uuid", rec_id)
    items = await _with_timelines(conn, rows)
    return items[0] if items else None


class RecommendationRef(msgspec.Struct, kw_only=True):
    """A recommendation as listed on a region dossier."""

    id: str
    title: str
    status: str


async def citing(conn: asyncpg.Connection, issue_ids: list[str]) -> list[RecommendationRef]:
    """Recommendations citing any of these issues, most recent first."""
    rows = await conn.fetch(
        f"SELECT id::text, title, status FROM {SCHEMA}.recommendations "
        "WHERE issue_ids && $1::uuid[] ORDER BY position DESC",
        issue_ids,
    )
    return [RecommendationRef(id=r[0], title=r[1], status=r[2]) for r in rows]
