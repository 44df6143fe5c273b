"""Recommendations: status, timeline, cited issues and the breadth of support behind them;
accountability (due date, answer, outcome, progress) and what needs attention (overdue,
cited issues since withdrawn)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from events.domain.accountability import OUTCOMES, closing_outcome, response_due
from events.domain.regions import parent_code
from events.domain.timezones import zone_of
from events.domain.types import (
    IssueCategoryCorrected,
    IssueRaised,
    IssuesCited,
    IssueUncited,
    IssueWithdrawn,
    ProgressReported,
    RecommendationApproved,
    RecommendationClosed,
    RecommendationDrafted,
    RecommendationRevised,
    RecommendationSubmitted,
    ResponseRecorded,
)
from projections import issue_board
from projections.base import (
    BadCursor,
    Envelope,
    Row,
    Table,
    Where,
    decode_cursor,
    encode_cursor,
    region_column,
    schema_of,
)
from projections.issue_board import as_given

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
        ("submitted_at", "timestamptz"),
        ("response_due_at", "timestamptz"),
        ("answered_at", "timestamptz"),
        ("response_outcome", "text"),
        ("progress_percent", "smallint"),
        ("submitted_offset", "integer"),
        ("response_due_offset", "integer"),
        ("answered_offset", "integer"),
        ("progress_at", "timestamptz"),
        ("progress_offset", "integer"),
    ],
)
# The few facts about issues this read model needs, kept here so that it can be
# rebuilt on its own.
ISSUES = Table(
    "issues",
    [
        ("id", "uuid"),
        ("region_code", "text"),
        ("province_code", "text"),
        ("category", "text"),
        ("withdrawn", "boolean"),
    ],
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
        issue_ids uuid[] NOT NULL,
        submitted_at timestamptz,
        response_due_at timestamptz,
        answered_at timestamptz,
        response_outcome text,
        progress_percent smallint,
        submitted_offset integer,
        response_due_offset integer,
        answered_offset integer,
        progress_at timestamptz,
        progress_offset integer
    )""",
    "CREATE INDEX ON {s}.recommendations USING gin (issue_ids)",
    # The list, most recently drafted first: a page reads its own rows, however many there are.
    "CREATE INDEX ON {s}.recommendations (position)",
    """CREATE TABLE {s}.timeline (
        recommendation_id uuid NOT NULL,
        position bigint NOT NULL,
        type text NOT NULL,
        at timestamptz NOT NULL,
        actor jsonb,
        effective_at timestamptz NOT NULL,
        effective_offset integer NOT NULL,
        PRIMARY KEY (recommendation_id, position)
    )""",
    """CREATE TABLE {s}.issues (
        id uuid PRIMARY KEY,
        region_code text NOT NULL,
        province_code text NOT NULL,
        category text NOT NULL,
        withdrawn boolean NOT NULL DEFAULT false
    )""",
)

_TIMELINE = (
    "INSERT INTO {s}.timeline (recommendation_id, position, type, at, actor, effective_at, "
    "effective_offset) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], "
    "$4::timestamptz[], $5::jsonb[], $6::timestamptz[], $7::integer[]) ON CONFLICT DO NOTHING"
)


class Recommendations:
    """The ``recommendations`` projection."""

    name: str = NAME
    handles: frozenset[str] | None = frozenset(
        {
            "IssueRaised",
            "IssueCategoryCorrected",
            "IssueWithdrawn",
            "RecommendationDrafted",
            "IssuesCited",
            "IssueUncited",
            "RecommendationRevised",
            "RecommendationApproved",
            "RecommendationSubmitted",
            "ResponseRecorded",
            "RecommendationClosed",
            "ProgressReported",
        }
    )
    reads_payload: bool = True
    replay_lanes: int = 1
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
                        "withdrawn": False,
                    }
                elif isinstance(event, IssueCategoryCorrected) and env.entity_id in issues:
                    issues[env.entity_id]["category"] = event.category
                elif isinstance(event, IssueWithdrawn) and env.entity_id in issues:
                    issues[env.entity_id]["withdrawn"] = True
            await ISSUES.upsert(conn, schema, (issues[i] for i in sorted(issues)))
        if not rec_events:
            return
        rows = await RECOMMENDATIONS.load(conn, schema, {e.entity_id for e in rec_events})
        dirty: set[str] = set()
        timeline: list[list[Any]] = [[], [], [], [], [], [], []]
        for env in rec_events:
            row = self._fold(rows, env)
            if row is None:
                continue
            dirty.add(env.entity_id)
            actor = env.metadata().who()
            effective_at = _effective_at(env)
            for column, value in zip(
                timeline,
                (
                    env.entity_id,
                    env.position,
                    env.type,
                    env.recorded_at,
                    msgspec.json.encode(actor) if actor is not None else None,
                    effective_at,
                    offset_of(effective_at),
                ),
                strict=True,
            ):
                column.append(value)
        await RECOMMENDATIONS.upsert(conn, schema, (rows[i] for i in sorted(dirty)))
        if timeline[0]:
            await conn.execute(_TIMELINE.format(s=schema), *timeline)

    @staticmethod
    def _fold(rows: dict[Any, Row], env: Envelope) -> Row | None:
        # Mirrors events.domain.recommendation.evolve: changing content sends it back to draft.
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
                "submitted_at": None,
                "response_due_at": None,
                "answered_at": None,
                "response_outcome": None,
                "progress_percent": None,
                "submitted_offset": None,
                "response_due_offset": None,
                "answered_offset": None,
                "progress_at": None,
                "progress_offset": None,
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
            case RecommendationSubmitted(submitted_at=at, response_due_at=due):
                found["status"] = "submitted"
                found["submitted_at"] = at
                found["submitted_offset"] = offset_of(at)
                # A default due date keeps the submission's offset (30 days after it).
                found["response_due_at"] = response_due(at, due)
                found["response_due_offset"] = offset_of(found["response_due_at"])
            case ResponseRecorded(received_at=at, outcome=outcome):
                found["status"] = "responded"
                if found["answered_at"] is None:
                    found["answered_at"] = at
                    found["answered_offset"] = offset_of(at)
                found["response_outcome"] = outcome or found["response_outcome"]
            case ProgressReported(percent=percent):
                found["progress_percent"] = percent
                found["progress_at"] = _effective_at(env)
                found["progress_offset"] = offset_of(found["progress_at"])
            case RecommendationClosed():
                found["status"] = "closed"
                found["response_outcome"] = closing_outcome(
                    found["response_outcome"], found["answered_at"] is not None
                )
        return found


def _effective_at(env: Envelope) -> datetime:
    """When the event happened as the record states it, at the offset it was given; else
    when it was recorded, in the national zone (recommendations are national records)."""
    match env.event:
        case RecommendationSubmitted(submitted_at=at) | ResponseRecorded(received_at=at):
            return at
        case ProgressReported(reported_at=at) if at is not None:
            return at
        case _:
            return env.recorded_at.astimezone(zone_of(None))


def offset_of(at: datetime) -> int:
    """The UTC offset (seconds) a time was given with: what ``as_given`` puts back."""
    offset = at.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _given(at: datetime | None, offset: int | None) -> datetime | None:
    # The fold sets a time and its offset together.
    return as_given(at, offset or 0) if at is not None else None


class TimelineEntry(msgspec.Struct, kw_only=True):
    """One event in a recommendation's life (in the order recorded, which the rules make
    the order of the steps; a drafted or approved step has no effective time of its own)."""

    type: str
    #: when it happened as recorded (submitted_at, received_at, reported_at) at the offset
    #: given, else ``at`` in the national zone (WIB)
    effective_at: datetime
    effective_at_utc: datetime
    #: when the server stored it
    at: datetime
    actor: msgspec.Raw | None


class RecommendationItem(msgspec.Struct, kw_only=True):
    """A recommendation with the breadth of the issues behind it and its accountability."""

    id: str
    title: str
    status: str
    addressee: str
    issue_ids: list[str]
    region_count: int
    province_count: int
    categories: list[str]
    timeline: list[TimelineEntry]
    #: effective times at the offset the office gave, each with its ``_utc`` twin
    submitted_at: datetime | None = None
    submitted_at_utc: datetime | None = None
    #: when an answer is due (given at submission, else 30 days after it)
    response_due_at: datetime | None = None
    response_due_at_utc: datetime | None = None
    #: when the first answer arrived (its ``received_at``)
    answered_at: datetime | None = None
    answered_at_utc: datetime | None = None
    #: accepted, partly_accepted, rejected, no_response (closed unanswered), or null
    response_outcome: str | None = None
    #: the latest progress report's percent
    progress_percent: int | None = None
    #: when that progress stood so (its ``reported_at``, else when it was recorded)
    progress_reported_at: datetime | None = None
    progress_reported_at_utc: datetime | None = None
    #: submitted, unanswered, open and past ``response_due_at`` (at the time of the read)
    overdue: bool = False
    #: cited issues withdrawn since they were cited ("1 cited issue withdrawn")
    withdrawn_issue_ids: list[str] = msgspec.field(default_factory=list)
    #: why it needs attention: ``overdue``, ``cited_issue_withdrawn``
    attention: list[str] = msgspec.field(default_factory=list)


# `now()` is the read transaction's start: overdue is a fact of the read, never stored.
_OVERDUE = "(r.status = 'submitted' AND r.answered_at IS NULL AND r.response_due_at < now())"


def _select(chosen: str) -> str:
    """The list item of each recommendation `chosen` selects (a query over ``r``, the
    recommendations table, in its order), with the facts of the issues it cites.

    The facts come from one lateral read of the cited issues per recommendation (not one
    per fact), and only for the rows chosen: `chosen` is cut (ORDER BY / LIMIT) before it;
    the timeline of each, in its order, in the same statement (one round trip).
    """
    return f"""
SELECT r.id::text AS id, r.title, r.status, r.addressee, r.issue_ids::text[] AS issue_ids,
       r.position, r.submitted_at, r.response_due_at, r.answered_at, r.response_outcome,
       r.progress_percent, r.submitted_offset, r.response_due_offset, r.answered_offset,
       r.progress_at, r.progress_offset, {_OVERDUE} AS overdue,
       f.withdrawn_issue_ids, f.region_count, f.province_count, f.categories,
       ARRAY(SELECT ROW(t.type, t.effective_at, t.at, t.actor, t.effective_offset)
             FROM {SCHEMA}.timeline t WHERE t.recommendation_id = r.id
             ORDER BY t.position) AS timeline
FROM ({chosen}) r
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(i.id::text ORDER BY i.id) FILTER (WHERE i.withdrawn), '{{}}')
             AS withdrawn_issue_ids,
           count(DISTINCT i.region_code) AS region_count,
           count(DISTINCT i.province_code) AS province_count,
           coalesce(array_agg(DISTINCT i.category ORDER BY i.category), '{{}}') AS categories
    FROM {SCHEMA}.issues i WHERE i.id = ANY(r.issue_ids)) f"""


def _items(rows: list[asyncpg.Record]) -> list[RecommendationItem]:
    items = []
    for r in rows:
        withdrawn = list(r["withdrawn_issue_ids"])
        attention = [
            reason
            for reason, applies in (
                ("overdue", r["overdue"]),
                ("cited_issue_withdrawn", bool(withdrawn) and r["status"] != "closed"),
            )
            if applies
        ]
        items.append(
            RecommendationItem(
                id=r["id"],
                title=r["title"],
                status=r["status"],
                addressee=r["addressee"],
                issue_ids=list(r["issue_ids"]),
                region_count=r["region_count"],
                province_count=r["province_count"],
                categories=list(r["categories"]),
                timeline=[
                    TimelineEntry(
                        type=t[0],
                        effective_at=as_given(t[1], t[4]),
                        effective_at_utc=t[1],
                        at=t[2],
                        actor=t[3],
                    )
                    for t in r["timeline"]
                ],
                submitted_at=_given(r["submitted_at"], r["submitted_offset"]),
                submitted_at_utc=r["submitted_at"],
                response_due_at=_given(r["response_due_at"], r["response_due_offset"]),
                response_due_at_utc=r["response_due_at"],
                answered_at=_given(r["answered_at"], r["answered_offset"]),
                answered_at_utc=r["answered_at"],
                response_outcome=r["response_outcome"],
                progress_percent=r["progress_percent"],
                progress_reported_at=_given(r["progress_at"], r["progress_offset"]),
                progress_reported_at_utc=r["progress_at"],
                overdue=r["overdue"],
                withdrawn_issue_ids=withdrawn,
                attention=attention,
            )
        )
    return items


RecommendationSelection = Literal["all", "attention", "overdue"]


async def list_recommendations(
    conn: asyncpg.Connection,
    *,
    statuses: list[str] | None = None,
    addressees: list[str] | None = None,
    selection: RecommendationSelection = "all",
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[RecommendationItem], str | None]:
    """Recommendations, most recently drafted first.

    ``selection``: ``overdue`` (answer past due), ``attention`` (overdue, or citing an
    issue since withdrawn, and not closed), or ``all``.
    """
    w = Where()
    if statuses is not None:
        w.add("r.status = ANY({}::text[])", statuses)
    if addressees is not None:
        w.add("r.addressee = ANY({}::text[])", addressees)
    if selection == "overdue":
        w.add(_OVERDUE)
    elif selection == "attention":
        w.add(
            f"({_OVERDUE} OR (r.status <> 'closed' AND EXISTS (SELECT 1 FROM {SCHEMA}.issues i "
            "WHERE i.id = ANY(r.issue_ids) AND i.withdrawn)))"
        )
    if cursor is not None:
        values = decode_cursor(cursor)
        if len(values) != 1 or not isinstance(values[0], int):
            raise BadCursor("cursor is not valid")
        w.add("r.position < {}", values[0])
    chosen = (
        f"SELECT * FROM {SCHEMA}.recommendations r{w.sql()} "
        f"ORDER BY r.position DESC LIMIT {w.param(limit + 1)}"
    )
    rows = await conn.fetch(f"{_select(chosen)} ORDER BY r.position DESC", *w.params)
    items = _items(rows[:limit])
    next_cursor = encode_cursor([rows[limit - 1]["position"]]) if len(rows) > limit else None
    return items, next_cursor


async def get_recommendation(conn: asyncpg.Connection, rec_id: str) -> RecommendationItem | None:
    """One recommendation, or None."""
    rows = await conn.fetch(
        _select(f"SELECT * FROM {SCHEMA}.recommendations WHERE id = $1::uuid"), rec_id
    )
    items = _items(rows)
    return items[0] if items else None


class Outcomes(msgspec.Struct, kw_only=True):
    """How many recommendations came to each outcome (a struct, not a map, so that the
    CSV export has one column per outcome: ``outcomes.accepted``...)."""

    accepted: int = 0
    partly_accepted: int = 0
    rejected: int = 0
    no_response: int = 0


class AddresseeProgress(msgspec.Struct, kw_only=True):
    """How the recommendations sent to one addressee are faring."""

    addressee: str
    #: submitted to it (draft and approved ones are not yet its business)
    submitted: int
    answered: int
    overdue: int
    closed: int
    #: by outcome: accepted, partly_accepted, rejected, no_response
    outcomes: Outcomes
    #: mean of the latest progress percent of those with a progress report
    mean_progress_percent: float | None
    reported: int
    #: the most recent progress report among them, at the offset it was given, and in UTC
    last_progress_reported_at: datetime | None = None
    last_progress_reported_at_utc: datetime | None = None


async def progress_by_addressee(conn: asyncpg.Connection) -> list[AddresseeProgress]:
    """Per addressee, the submitted recommendations: answered, overdue, outcomes, progress."""
    rows = await conn.fetch(
        f"SELECT r.addressee, count(*) AS submitted, "
        "count(*) FILTER (WHERE r.answered_at IS NOT NULL) AS answered, "
        f"count(*) FILTER (WHERE {_OVERDUE}) AS overdue, "
        "count(*) FILTER (WHERE r.status = 'closed') AS closed, "
        "count(r.progress_percent) AS reported, "
        "avg(r.progress_percent)::float8 AS mean_progress, "
        "array_remove(array_agg(r.response_outcome), NULL) AS outcomes, "
        "max(r.progress_at) AS last_progress, "
        "(array_agg(r.progress_offset ORDER BY r.progress_at DESC NULLS LAST))[1] "
        "AS last_progress_offset "
        f"FROM {SCHEMA}.recommendations r WHERE r.submitted_at IS NOT NULL "
        "GROUP BY r.addressee ORDER BY r.addressee"
    )
    found = []
    for r in rows:
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for outcome in r["outcomes"]:
            if outcome in counts:  # the event schema allows no other; a new one needs a field
                counts[outcome] += 1
        outcomes = Outcomes(**counts)
        mean = r["mean_progress"]
        found.append(
            AddresseeProgress(
                addressee=r["addressee"],
                submitted=r["submitted"],
                answered=r["answered"],
                overdue=r["overdue"],
                closed=r["closed"],
                outcomes=outcomes,
                mean_progress_percent=round(mean, 1) if mean is not None else None,
                reported=r["reported"],
                last_progress_reported_at=_given(r["last_progress"], r["last_progress_offset"]),
                last_progress_reported_at_utc=r["last_progress"],
            )
        )
    return found


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


async def citing_region(
    conn: asyncpg.Connection, code: str, *, limit: int
) -> tuple[list[RecommendationRef], int]:
    """The most recent `limit` recommendations citing issues of a province (with its
    regencies) or a regency, and how many there are in all (for its dossier).

    Read from the board's cited issues (a partial index holds only those), so that it costs
    what the region's citations number, not its issues.
    """
    column = region_column(code)
    rows = await conn.fetch(
        "WITH cited AS (SELECT DISTINCT unnest(recommendation_ids) AS id "
        f"FROM {issue_board.SCHEMA}.issues "
        f"WHERE {column} = $1 AND cardinality(recommendation_ids) > 0) "
        "SELECT r.id::text, r.title, r.status, count(*) OVER () AS total "
        f"FROM cited JOIN {SCHEMA}.recommendations r USING (id) "
        "ORDER BY r.position DESC LIMIT $2",
        code,
        limit,
    )
    total = rows[0]["total"] if rows else 0
    return [RecommendationRef(id=r[0], title=r[1], status=r[2]) for r in rows], total
