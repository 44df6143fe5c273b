"""Operator-approved skips: the audited way past an event a projection cannot apply.

A projection still stops at an event it cannot apply (a decode error, a bug, data
that breaks its tables). ``coord projections skip NAME --position N --reason TEXT``
records a ``ProjectionSkipped`` event in this node's ``system-projections-<node id>``
stream; the runner, rebuild and verify of ``NAME`` then leave out exactly that event.
The log is the only record: nothing but the event says a skip exists, so the audit
trail (export, Merkle tree) carries every skip with who, why and when.

Rules (:func:`decide`), checked under the projection's row lock so that they cannot
race the runner:

* the position holds an event, of a type the projection reads;
* the projection has not applied it yet: a skip never changes what a view already
  shows (an applied event the view should not show needs a fixed handler and a
  rebuild);
* it is not skipped already.

Any such position may be skipped, not only the one the projection stopped at, so an
operator can skip in advance what ``coord check`` lists. A skip binds to the event id
at that position as well: after a restore that renumbered the log it matches nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from events.domain.types import (
    SCHEMA_VERSIONS,
    SYSTEM_PROJECTIONS_STREAM,
    ProjectionSkipped,
    decode_new,
    encode,
    invalid_from_validation,
)
from events.store import logged
from events.store.records import AppendResult, NewEvent
from events.store.store import EventStore
from projections.base import Projection

# Skips are rare: take turns on one key rather than racing for the stream's versions.
_SKIP_LOCK = 0x736B6970  # "skip"

_SKIPS = (
    "SELECT e.data, e.event_id::text AS skip_event_id, e.recorded_at, e.node_id "
    "FROM events e WHERE e.category = 'system' AND e.type = 'ProjectionSkipped' "
    "{where} ORDER BY e.seq"
)
_FACTS = (
    "SELECT p.position, p.state, p.failed_position, "
    "(SELECT coalesce(max(position), 0) FROM log) AS head, "
    + logged.at("e.event_id::text", "$2")
    + " AS event_id, "
    + logged.at("e.type", "$2")
    + " AS type, "
    + logged.at("e.stream_id", "$2")
    + " AS stream_id "
    "FROM projections p WHERE p.name = $1 FOR UPDATE"
)


class SkipInfo(msgspec.Struct, kw_only=True):
    """One recorded skip, as ``GET /v1/projections`` and ``verify`` show it."""

    position: int
    event_id: str
    event_type: str
    stream_id: str
    reason: str
    skipped_by: str
    recorded_at: datetime
    node_id: str
    #: the id of the ``ProjectionSkipped`` event itself (find it in the audit export)
    skip_event_id: str


class SkipRefused(Exception):
    """A skip the rules refuse; the message says why, for an operator."""


class SkipFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the database says about a requested skip (read under the row lock)."""

    projection: str
    applied: int
    head: int
    event_type: str | None  # None: no event at that position
    handles: frozenset[str] | None
    skipped: frozenset[int]


def decide(facts: SkipFacts, position: int) -> None:
    """Raise SkipRefused unless ``facts.projection`` may skip ``position``. Pure."""
    name = facts.projection
    if position < 1 or facts.event_type is None:
        raise SkipRefused(f"no event at position {position} (the log ends at {facts.head})")
    if position <= facts.applied:
        raise SkipRefused(
            f"{name} already applied position {position} (it is at {facts.applied}); "
            "a skip only passes over events not applied yet"
        )
    if position in facts.skipped:
        raise SkipRefused(f"{name} skips position {position} already")
    if facts.handles is not None and facts.event_type not in facts.handles:
        raise SkipRefused(
            f"{name} does not read {facts.event_type} events: nothing to skip at {position}"
        )


def stream_of(node_id: str) -> str:
    """The skip stream of node ``node_id``."""
    return f"{SYSTEM_PROJECTIONS_STREAM}-{node_id}"


async def skips_of(conn: asyncpg.Connection, name: str) -> dict[int, str]:
    """``{position: event id}`` of every skip recorded for projection ``name``."""
    rows = await conn.fetch(_SKIPS.format(where="AND e.data->>'projection' = $1"), name)
    out: dict[int, str] = {}
    for r in rows:
        data = msgspec.json.decode(_bytes(r["data"]))
        out[int(data["position"])] = str(data["event_id"])
    return out


async def list_skips(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, list[SkipInfo]]:
    """Every recorded skip, by projection name, in the order they were recorded."""
    rows = await conn.fetch(_SKIPS.format(where=""))
    out: dict[str, list[SkipInfo]] = {}
    for r in rows:
        event = msgspec.json.decode(_bytes(r["data"]), type=ProjectionSkipped)
        out.setdefault(event.projection, []).append(
            SkipInfo(
                position=event.position,
                event_id=str(event.event_id),
                event_type=event.event_type,
                stream_id=event.stream_id,
                reason=event.reason,
                skipped_by=event.skipped_by,
                recorded_at=r["recorded_at"],
                node_id=r["node_id"],
                skip_event_id=r["skip_event_id"],
            )
        )
    return out


async def record(
    store: EventStore,
    projection: Projection,
    *,
    position: int,
    reason: str,
    skipped_by: str,
    node_id: str,
    metadata: bytes,
) -> tuple[ProjectionSkipped, AppendResult]:
    """Record a skip of ``position`` for ``projection`` (SkipRefused if the rules refuse).

    One transaction: the rules are checked under the projection's row lock, the event is
    appended, and a projection stopped at exactly this position is set running again.
    """
    name = projection.name
    async with store.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SKIP_LOCK)
            row = await conn.fetchrow(_FACTS, name, position)
            if row is None:
                raise SkipRefused(f"no projection {name!r}")
            skipped = await skips_of(conn, name)
            decide(
                SkipFacts(
                    projection=name,
                    applied=row["position"],
                    head=row["head"],
                    event_type=row["type"],
                    handles=projection.handles,
                    skipped=frozenset(skipped),
                ),
                position,
            )
            event = ProjectionSkipped(
                projection=name,
                position=position,
                event_id=uuid.UUID(row["event_id"]),
                event_type=row["type"],
                stream_id=row["stream_id"],
                reason=reason,
                skipped_by=skipped_by,
            )
            data = encode(event)
            try:
                decode_new("ProjectionSkipped", data)  # the schema's bounds (reason length...)
            except msgspec.ValidationError as e:
                invalid = invalid_from_validation(e, "$")
                raise SkipRefused(f"{invalid.detail} at {invalid.field}") from None
            committed = await store.insert(
                conn,
                stream_of(node_id),
                [
                    NewEvent(
                        id=uuid.uuid4(),
                        type="ProjectionSkipped",
                        data=data,
                        metadata=metadata,
                        schema_version=SCHEMA_VERSIONS["ProjectionSkipped"],
                    )
                ],
                -1,  # "any": the advisory lock makes skips take turns
            )
            if row["state"] == "failed" and row["failed_position"] == position:
                await conn.execute(
                    "UPDATE projections SET state = 'running', last_error = NULL, "
                    "failed_position = NULL, updated_at = now() WHERE name = $1",
                    name,
                )
    return event, await store.positions(committed)


def _bytes(value: object) -> bytes:
    # coord's codec hands jsonb over as msgspec.Raw; asyncpg's default, as text.
    return value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]
