"""Hearings as a calendar: when and where, and what became of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from events.domain.regions import Regions, load_regions, parent_code
from events.domain.types import (
    HearingCancelled,
    HearingDetailsCorrected,
    HearingHeld,
    HearingRescheduled,
    HearingScheduled,
    HearingStatusCorrected,
    ParticipantRemoved,
    ParticipantsRecorded,
    StatementRecorded,
    StatementRetracted,
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
from projections.issue_board import as_given, effective

NAME = "hearings"
SCHEMA = schema_of(NAME)

HEARINGS = Table(
    "hearings",
    [
        ("id", "uuid"),
        ("position", "bigint"),
        ("region_code", "text"),
        ("province_code", "text"),
        ("title", "text"),
        ("venue", "text"),
        ("scheduled_at", "timestamptz"),
        ("status", "text"),
        ("held_at", "timestamptz"),
        ("cancel_reason", "text"),
        ("convened_by", "text"),
        ("host_organization", "text"),
        ("participant_count", "integer"),
        ("statement_count", "integer"),
        ("reschedule_count", "integer"),
        ("scheduled_offset", "integer"),
        ("scheduled_date", "date"),
        ("held_offset", "integer"),
        ("recorded_at", "timestamptz"),
        ("held_recorded_at", "timestamptz"),
        ("corrected", "text[]"),
    ],
)

DDL = (
    """CREATE TABLE {s}.hearings (
        id uuid PRIMARY KEY,
        position bigint NOT NULL,
        region_code text NOT NULL,
        province_code text NOT NULL,
        title text NOT NULL,
        venue text NOT NULL,
        scheduled_at timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('scheduled', 'held', 'cancelled')),
        held_at timestamptz,
        cancel_reason text,
        convened_by text NOT NULL,
        host_organization text NOT NULL,
        participant_count integer NOT NULL,
        statement_count integer NOT NULL,
        reschedule_count integer NOT NULL,
        scheduled_offset integer NOT NULL,
        scheduled_date date NOT NULL,
        held_offset integer,
        recorded_at timestamptz NOT NULL,
        held_recorded_at timestamptz,
        corrected text[] NOT NULL
    )""",
    "CREATE INDEX ON {s}.hearings (scheduled_at, id)",
    # One province's (or region's) calendar in time order, read from its start (or its
    # cursor) on: a page costs its own rows, however many hearings the place has.
    "CREATE INDEX ON {s}.hearings (province_code, scheduled_at, id)",
    "CREATE INDEX ON {s}.hearings (region_code, scheduled_at, id)",
    "CREATE INDEX ON {s}.hearings (scheduled_date)",
    # A region's or a province's dossier: each status's list index-ordered (a rare status
    # is not found by walking all of a province's hearings), counts from the index.
    "CREATE INDEX ON {s}.hearings (region_code, status, scheduled_at, id)",
    "CREATE INDEX ON {s}.hearings (province_code, status, scheduled_at, id)",
    # How many hearings of each status a region has, kept on apply: a dossier counts a
    # province's thousands of hearings without reading them.
    """CREATE TABLE {s}.hearing_counts (
        region_code text NOT NULL,
        province_code text NOT NULL,
        status text NOT NULL,
        -- no CHECK (n >= 0): PostgreSQL checks the proposed row (a delta, maybe -1)
        -- before ON CONFLICT turns it into an update; a count at 0 is deleted
        n integer NOT NULL,
        PRIMARY KEY (region_code, province_code, status)
    )""",
    "CREATE INDEX ON {s}.hearing_counts (province_code)",
)


class Hearings:
    """The ``hearings`` projection."""

    name: str = NAME
    handles: frozenset[str] | None = frozenset(
        {
            "HearingScheduled",
            "HearingRescheduled",
            "HearingCancelled",
            "ParticipantsRecorded",
            "StatementRecorded",
            "HearingHeld",
            "HearingDetailsCorrected",
            "HearingStatusCorrected",
            "ParticipantRemoved",
            "StatementRetracted",
        }
    )
    reads_payload: bool = True
    replay_lanes: int = 1
    ddl: tuple[str, ...] = DDL
    tables: tuple[str, ...] = ("hearings", "hearing_counts")

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Fold the batch into the touched hearing rows and upsert them."""
        rows = await HEARINGS.load(conn, schema, {env.entity_id for env in batch})
        # (region, province, status) each loaded hearing was counted under before the batch
        counted = {i: (r["region_code"], r["province_code"], r["status"]) for i, r in rows.items()}
        dirty: set[str] = set()
        for env in batch:
            event = env.event
            if isinstance(event, HearingScheduled):
                if env.entity_id not in rows:
                    rows[env.entity_id] = _scheduled(env, event)
                    dirty.add(env.entity_id)
                continue
            row = rows.get(env.entity_id)
            if row is None:
                continue
            dirty.add(env.entity_id)
            match event:
                case HearingRescheduled(scheduled_at=at, venue=venue):
                    row["scheduled_at"] = at
                    row["scheduled_offset"], row["scheduled_date"] = effective(
                        at, row["region_code"]
                    )
                    row["venue"] = venue if venue is not None else row["venue"]
                    row["reschedule_count"] += 1
                case HearingCancelled(reason=reason):
                    row["status"] = "cancelled"
                    row["cancel_reason"] = reason
                case ParticipantsRecorded(participants=participants):
                    row["participant_count"] += len(participants)
                case StatementRecorded():
                    row["statement_count"] += 1
                case HearingHeld(held_at=held_at):
                    _held(row, env, held_at)
                # Corrections: the calendar counts what is on the record now.
                case ParticipantRemoved():
                    row["participant_count"] -= 1
                case StatementRetracted():
                    row["statement_count"] -= 1
                case HearingDetailsCorrected():
                    _correct_details(row, event)
                case HearingStatusCorrected(status=status):
                    row["status"] = status
                    row["cancel_reason"] = event.reason if status == "cancelled" else None
                    if status == "held" and event.held_at is not None:
                        _held(row, env, event.held_at)
                    else:
                        row["held_at"] = row["held_offset"] = row["held_recorded_at"] = None
                    row["corrected"] = sorted({*row["corrected"], "status"})
        await HEARINGS.upsert(conn, schema, (rows[i] for i in sorted(dirty)))
        await _count(conn, schema, counted, [rows[i] for i in dirty])


#: the key of ``hearing_counts`` (the province is the region's: it only lets a province's
#: dossier read its own rows)
_COUNTED = ("region_code", "province_code", "status")


async def _count(
    conn: asyncpg.Connection,
    schema: str,
    before: dict[str, tuple[str, str, str]],
    changed: list[Row],
) -> None:
    """Move the changed hearings from the counts they were under to their status's now."""
    delta: Counter[tuple[str, ...]] = Counter()
    for row in changed:
        if (old := before.get(row["id"])) is not None:
            delta[old] -= 1
        delta[(row["region_code"], row["province_code"], row["status"])] += 1
    await add_counts(conn, schema, "hearing_counts", _COUNTED, delta)


def _held(row: Row, env: Envelope, held_at: datetime) -> None:
    row["status"] = "held"
    row["held_at"] = held_at
    row["held_offset"] = effective(held_at, row["region_code"])[0]
    row["held_recorded_at"] = env.recorded_at


def _correct_details(row: Row, event: HearingDetailsCorrected) -> None:
    changed: dict[str, Any] = {}
    if event.title is not None:
        changed["title"] = event.title
    if event.venue is not None:
        changed["venue"] = event.venue
    if event.host_organization is not None:
        changed["host_organization"] = event.host_organization.name
    row.update(changed)
    # The agenda is not on the calendar, but its correction is still a corrected field.
    marks = set(changed) | ({"agenda"} if event.agenda is not None else set())
    row["corrected"] = sorted({*row["corrected"], *marks})


def _scheduled(env: Envelope, event: HearingScheduled) -> Row:
    offset, local_date = effective(event.scheduled_at, event.region_code)
    return {
        "id": env.entity_id,
        "position": env.position,
        "region_code": event.region_code,
        "province_code": parent_code(event.region_code),
        "title": event.title,
        "venue": event.venue,
        "scheduled_at": event.scheduled_at,
        "status": "scheduled",
        "held_at": None,
        "cancel_reason": None,
        "convened_by": event.convened_by.name,
        "host_organization": event.host_organization.name,
        "participant_count": 0,
        "statement_count": 0,
        "reschedule_count": 0,
        "scheduled_offset": offset,
        "scheduled_date": local_date,
        "held_offset": None,
        "recorded_at": env.recorded_at,
        "held_recorded_at": None,
        "corrected": [],
    }


class HearingItem(msgspec.Struct, kw_only=True):
    """A hearing on the calendar."""

    id: str
    region_code: str
    #: names beside codes (Kemendagri registry), for reports
    region_name: str | None
    province_code: str
    province_name: str | None
    title: str
    venue: str
    #: effective times at the offset the office gave, and in UTC
    scheduled_at: datetime
    scheduled_at_utc: datetime
    #: the scheduled day in the region's own zone (what date filters match)
    local_date: date
    status: str
    held_at: datetime | None
    held_at_utc: datetime | None
    cancel_reason: str | None
    convened_by: str
    host_organization: str
    participant_count: int
    statement_count: int
    #: when the hearing was scheduled on the server
    recorded_at: datetime
    #: how long after the hearing was held it was recorded as held ("3 days after")
    held_recorded_after_seconds: int | None
    #: fields corrected since the hearing was scheduled (the "corrected" mark)
    corrected: list[str]


_COLUMNS = (
    "id::text, region_code, province_code, title, venue, scheduled_at, status, held_at, "
    "cancel_reason, convened_by, host_organization, participant_count, statement_count, "
    "scheduled_offset, scheduled_date, held_offset, recorded_at, held_recorded_at, corrected"
)


def _item(r: asyncpg.Record, names: Regions) -> HearingItem:
    held_at = r["held_at"]
    held_recorded = r["held_recorded_at"]
    return HearingItem(
        id=r["id"],
        region_code=r["region_code"],
        region_name=names.name_of(r["region_code"]),
        province_code=r["province_code"],
        province_name=names.name_of(r["province_code"]),
        title=r["title"],
        venue=r["venue"],
        scheduled_at=as_given(r["scheduled_at"], r["scheduled_offset"]),
        scheduled_at_utc=r["scheduled_at"],
        local_date=r["scheduled_date"],
        status=r["status"],
        held_at=as_given(held_at, r["held_offset"]) if held_at is not None else None,
        held_at_utc=held_at,
        cancel_reason=r["cancel_reason"],
        convened_by=r["convened_by"],
        host_organization=r["host_organization"],
        participant_count=r["participant_count"],
        statement_count=r["statement_count"],
        recorded_at=r["recorded_at"],
        held_recorded_after_seconds=(
            int((held_recorded - held_at).total_seconds())
            if held_at is not None and held_recorded is not None
            else None
        ),
        corrected=list(r["corrected"]),
    )


async def calendar(
    conn: asyncpg.Connection,
    *,
    scope: list[str] | None,
    provinces: list[str] | None = None,
    regions: list[str] | None = None,
    statuses: list[str] | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[HearingItem], str | None]:
    """Hearings in time order (earliest first) within the filters, one page at a time."""
    w = Where()
    for column, values in (
        ("region_code", scope),
        ("province_code", provinces),
        ("region_code", regions),
        ("status", statuses),
    ):
        if values is not None and len(values) == 1:
            # An equality (not `= ANY` of one) lets an index on (column, scheduled_at, id)
            # return the page in order.
            w.add(f"{column} = {{}}", values[0])
        elif values is not None:
            w.add(f"{column} = ANY({{}}::text[])", list(values))
    if date_from is not None:
        w.add("scheduled_at >= {}", date_from)
    if date_to is not None:
        w.add("scheduled_at < {}", date_to)
    # Date-only bounds are days in each hearing's own zone, both inclusive.
    if day_from is not None:
        w.add("scheduled_date >= {}", day_from)
    if day_to is not None:
        w.add("scheduled_date <= {}", day_to)
    if cursor is not None:
        values = decode_cursor(cursor)
        try:
            w.add(
                "(scheduled_at, id) > ({}, {}::uuid)", datetime.fromisoformat(values[0]), values[1]
            )
        except (TypeError, ValueError, IndexError) as e:
            raise BadCursor("cursor is not valid") from e
    # `h.id`, not `id`: ORDER BY would take the output column (`id::text`), which no
    # index serves, and sort every matching hearing before the LIMIT.
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.hearings h{w.sql()} ORDER BY h.scheduled_at, h.id "
        f"LIMIT {w.param(limit + 1)}",
        *w.params,
    )
    names = load_regions()
    items = [_item(r, names) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last: list[Any] = [items[-1].scheduled_at.isoformat(), items[-1].id]
        next_cursor = encode_cursor(last)
    return items, next_cursor


class RegionHearings(msgspec.Struct, kw_only=True):
    """A region's hearings by what became of them: the counts of all, the latest few of each."""

    #: how many of each there are (the lists hold at most the dossier's `limit`)
    counts: dict[str, int]
    #: held, the most recent first
    held: list[HearingItem]
    #: scheduled for a time still to come, the soonest first
    upcoming: list[HearingItem]
    #: cancelled, the most recently scheduled first
    cancelled: list[HearingItem]
    #: scheduled in the past, neither held nor cancelled (at the time of the read), the most
    #: recently scheduled first
    overdue: list[HearingItem] = msgspec.field(default_factory=list)


# (list, condition, order) of a dossier's hearing lists; `$2` is the time of the read.
# `h.id`, not `id`: that would be the output column `id::text`, which no index serves.
_REGION_LISTS = (
    ("held", "status = 'held'", "h.scheduled_at DESC, h.id DESC"),
    ("upcoming", "status = 'scheduled' AND scheduled_at >= $2", "h.scheduled_at, h.id"),
    ("cancelled", "status = 'cancelled'", "h.scheduled_at DESC, h.id DESC"),
    ("overdue", "status = 'scheduled' AND scheduled_at < $2", "h.scheduled_at DESC, h.id DESC"),
)


async def region_hearings(
    conn: asyncpg.Connection, code: str, *, now: datetime, limit: int
) -> RegionHearings:
    """The hearings of a province (with its regencies) or a regency for its dossier: counts
    of all, at most `limit` of each list.

    Bounded whatever the region's history (a province holds thousands of hearings at
    national scale; the calendar pages through them): each list is read in the order of
    an index on (region or province, status, time), the counts from that index.
    """
    column = region_column(code)
    # One statement (one round trip): held, cancelled and scheduled from the kept counts,
    # the scheduled split at `now` by counting the upcoming ones in the index (hearings
    # still to come are few), joined to every row of the lists; a region without hearings
    # still gets its row of counts (with no list).
    lists_sql = " UNION ALL ".join(
        f"(SELECT '{name}' AS list, {_COLUMNS} FROM {SCHEMA}.hearings h "
        f"WHERE {column} = $1 AND {cond} ORDER BY {order} LIMIT $3)"
        for name, cond, order in _REGION_LISTS
    )
    rows = await conn.fetch(
        "SELECT c.held, c.cancelled, c.scheduled, c.upcoming, l.* FROM ("
        "SELECT coalesce(sum(n) FILTER (WHERE status = 'held'), 0) AS held, "
        "coalesce(sum(n) FILTER (WHERE status = 'cancelled'), 0) AS cancelled, "
        "coalesce(sum(n) FILTER (WHERE status = 'scheduled'), 0) AS scheduled, "
        f"(SELECT count(*) FROM {SCHEMA}.hearings WHERE {column} = $1 "
        "AND status = 'scheduled' AND scheduled_at >= $2) AS upcoming "
        f"FROM {SCHEMA}.hearing_counts WHERE {column} = $1) c "
        f"LEFT JOIN LATERAL ({lists_sql}) l ON true",
        code,
        now,
        limit,
    )
    counts = rows[0]
    lists: dict[str, list[HearingItem]] = {name: [] for name, _, _ in _REGION_LISTS}
    names = load_regions()
    for r in rows:
        if r["list"] is not None:
            lists[r["list"]].append(_item(r, names))
    totals = {
        "held": int(counts["held"]),
        "upcoming": counts["upcoming"],
        "cancelled": int(counts["cancelled"]),
        "overdue": int(counts["scheduled"]) - counts["upcoming"],
    }
    return RegionHearings(counts=totals, **lists)
