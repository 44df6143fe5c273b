"""Activity by actor: which token wrote what, when, where (for auditors and national staff)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

import asyncpg
import msgspec

from events.domain.regions import load_regions, parent_code
from events.domain.timezones import ZONES
from projections.base import (
    BadCursor,
    Envelope,
    Where,
    decode_cursor,
    encode_cursor,
    local_day_sql,
    schema_of,
)

NAME = "activity"
SCHEMA = schema_of(NAME)

_LOCAL_DAY = local_day_sql("region_code", "recorded_at")
# The zones a day can start in first (WIT) and end in last (WIB).
_EARLIEST = max(ZONES.values(), key=lambda z: z.utcoffset(None))
_LATEST = min(ZONES.values(), key=lambda z: z.utcoffset(None))


def _day_start(day: date, zone: timezone) -> datetime:
    return datetime.combine(day, time(), zone)


DDL = (
    """CREATE TABLE {s}.entries (
        position bigint PRIMARY KEY,
        event_id uuid NOT NULL,
        stream_id text NOT NULL,
        type text NOT NULL,
        region_code text,
        token_id text,
        actor_name text,
        actor_role text,
        request_id text,
        recorded_at timestamptz NOT NULL
    )""",
    "CREATE INDEX ON {s}.entries (token_id, position)",
    "CREATE INDEX ON {s}.entries (actor_name, position)",
    "CREATE INDEX ON {s}.entries (recorded_at)",
)

_COLUMNS = (
    "position",
    "event_id",
    "stream_id",
    "type",
    "region_code",
    "token_id",
    "actor_name",
    "actor_role",
    "request_id",
    "recorded_at",
)


class Activity:
    """The ``activity`` projection: one row per event, with its actor."""

    name: str = NAME
    handles: frozenset[str] | None = None
    reads_payload: bool = False
    replay_lanes: int = 1
    ddl: tuple[str, ...] = DDL
    tables: tuple[str, ...] = ("entries",)

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Insert one entry per event.

        By COPY: every event is new to this table (the runner applies each once, in the
        transaction that moves the checkpoint), and COPY costs half the CPU of an
        INSERT from arrays on both sides.
        """
        entries = []
        for env in batch:
            meta = env.metadata()
            actor = meta.who()
            entries.append(
                (
                    env.position,
                    env.event_id,
                    env.stream_id,
                    env.type,
                    env.region_code,
                    actor.token_id if actor else None,
                    actor.name if actor else None,
                    actor.role if actor else None,
                    meta.request_id,
                    env.recorded_at,
                )
            )
        await conn.copy_records_to_table(
            "entries", schema_name=schema, records=entries, columns=_COLUMNS
        )


class ActorOut(msgspec.Struct, kw_only=True):
    """The token that wrote an event."""

    token_id: str | None
    name: str | None
    role: str | None


class ActivityItem(msgspec.Struct, kw_only=True):
    """One write."""

    position: int
    event_id: str
    stream_id: str
    type: str
    region_code: str | None
    actor: ActorOut
    request_id: str | None
    recorded_at: datetime
    #: names beside codes (Kemendagri registry); null for national writes
    region_name: str | None = None
    province_code: str | None = None
    province_name: str | None = None


async def activity(
    conn: asyncpg.Connection,
    *,
    actor: str | None = None,
    regions: list[str] | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[ActivityItem], str | None]:
    """Writes, newest first; ``actor`` matches a token id or a token name.

    ``date_from``/``date_to`` are instants; ``day_from``/``day_to`` (both inclusive) are
    local days in the zone of each write's region (national writes: the national zone).
    """
    w = Where()
    if actor is not None:
        w.add("(token_id = {} OR actor_name = {})", actor, actor)
    if regions is not None:
        # A province code covers its regencies and cities.
        w.add(
            "(region_code = ANY({}::text[]) OR split_part(region_code, '.', 1) = ANY({}::text[]))",
            regions,
            regions,
        )
    if date_from is not None:
        w.add("recorded_at >= {}", date_from)
    if date_to is not None:
        w.add("recorded_at < {}", date_to)
    # A local day lies within [00:00 UTC+9, 24:00 UTC+7) of that date: that instant range
    # keeps the recorded_at index in use, the local date of each row decides exactly.
    if day_from is not None:
        if day_from > date.min:  # 0001-01-01 at UTC+9 is before year 1 in UTC
            w.add("recorded_at >= {}", _day_start(day_from, _EARLIEST))
        w.add(f"{_LOCAL_DAY} >= {{}}", day_from)
    if day_to is not None:
        if day_to < date.max:
            w.add("recorded_at < {}", _day_start(day_to + timedelta(days=1), _LATEST))
        w.add(f"{_LOCAL_DAY} <= {{}}", day_to)
    if cursor is not None:
        values = decode_cursor(cursor)
        if len(values) != 1 or not isinstance(values[0], int):
            raise BadCursor("cursor is not valid")
        w.add("position < {}", values[0])
    rows = await conn.fetch(
        "SELECT position, event_id::text, stream_id, type, region_code, token_id, actor_name, "
        f"actor_role, request_id, recorded_at FROM {SCHEMA}.entries{w.sql()} "
        f"ORDER BY position DESC LIMIT {w.param(limit + 1)}",
        *w.params,
    )
    names = load_regions()
    items = [
        ActivityItem(
            position=r["position"],
            event_id=r["event_id"],
            stream_id=r["stream_id"],
            type=r["type"],
            region_code=r["region_code"],
            actor=ActorOut(token_id=r["token_id"], name=r["actor_name"], role=r["actor_role"]),
            request_id=r["request_id"],
            recorded_at=r["recorded_at"],
            region_name=names.name_of(r["region_code"]),
            province_code=parent_code(r["region_code"]) if r["region_code"] else None,
            province_name=names.name_of(parent_code(r["region_code"]))
            if r["region_code"]
            else None,
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor([items[-1].position]) if len(rows) > limit else None
    return items, next_cursor
