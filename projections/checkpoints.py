"""The ``projections`` table: each projection's checkpoint row, its locks, setup and status.

* **One transaction per batch.** A runner locks its projection's row (``LOCK_ROW``, ``FOR
  UPDATE``), reads the log after the stored position, applies the batch and moves the
  position (``ADVANCE``, which notifies ``coord_projection``), then commits: a crash at
  any moment leaves the tables and the checkpoint in agreement. Reading the checkpoint
  under the row lock (not from memory) is also what lets a rebuild switch tables under a
  running runner.
* **Advisory locks**: ``lock_key(name)`` names the runner of a projection (one across all
  processes), ``rebuild_key(name)`` a rebuild or verify of it (one at a time).
* :func:`ensure` creates missing rows and live schemas and cleans up after a rebuild that
  died with its process (:func:`abandon_rebuild`); :func:`status` reports position, lag,
  state and skips.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec
import structlog

from events.store import logged
from projections.base import Projection, create_tables, ddl_checksum, schema_of
from projections.skips import SkipInfo, list_skips

log = structlog.get_logger("coord.projections")

# "proj" in the high 32 bits: distinct from the store's 0x636F6F7264_00/01 keys.
LOCK_BASE = 0x70726F6A << 32
REBUILD_LOCK_BASE = 0x70726F62 << 32  # "prob": one rebuild/verify per projection at a time

NOTIFY_CHANNEL = "coord_projection"

# The operator's skips (projections/skips.py) come with the row: no extra round trip.
_SKIPPED = (
    "ARRAY(SELECT {column} FROM events e WHERE e.category = 'system' "
    "AND e.type = 'ProjectionSkipped' AND e.data->>'projection' = $1 ORDER BY e.seq)"
)

LOCK_ROW = (
    "SELECT position, state, (SELECT coalesce(max(position), 0) FROM log) AS head, "
    + _SKIPPED.format(column="(e.data->>'position')::bigint")
    + " AS skip_positions, "
    + _SKIPPED.format(column="e.data->>'event_id'")
    + " AS skip_ids FROM projections WHERE name = $1 FOR UPDATE"
)

ADVANCE = (
    "UPDATE projections SET position = $2, updated_at = now() WHERE name = $1 "
    "RETURNING pg_notify('" + NOTIFY_CHANNEL + "', name || ':' || position)"
)

FAIL = (
    "UPDATE projections SET state = 'failed', last_error = $2, failed_position = $3, "
    "updated_at = now() WHERE name = $1"
)

_STATUS = (
    "SELECT p.name, p.position, p.state, p.last_error, p.failed_position, p.rebuild_position, "
    "h.head, " + logged.at("e.recorded_at", "p.position + 1") + " AS next_recorded_at "
    "FROM projections p, (SELECT coalesce(max(position), 0) AS head FROM log) h "
    "WHERE p.name = ANY($1::text[]) ORDER BY p.name"
)


def lock_key(name: str) -> int:
    """The advisory-lock key that names "the runner of projection `name`"."""
    return LOCK_BASE | zlib.crc32(name.encode())


def rebuild_key(name: str) -> int:
    """The advisory-lock key of "a rebuild or verify of projection `name`"."""
    return REBUILD_LOCK_BASE | zlib.crc32(name.encode())


def skips_of_row(row: Any) -> dict[int, str]:
    return dict(zip(row["skip_positions"], row["skip_ids"], strict=True))


async def ensure(conn: asyncpg.Connection, projections: Sequence[Projection]) -> None:
    """Create missing checkpoint rows and live schemas; safe to run from many processes.

    A projection whose DDL changed since its tables were created is left as is and
    logged: the runner that leads it rebuilds it (``Runner._upgrade``) before applying.
    """
    async with conn.transaction():
        # Processes starting together take turns (released at commit).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_BASE)
        for p in projections:
            checksum = ddl_checksum(p)
            row = await conn.fetchrow(
                "SELECT ddl_checksum FROM projections WHERE name = $1", p.name
            )
            exists = await conn.fetchval(
                "SELECT true FROM pg_namespace WHERE nspname = $1", schema_of(p.name)
            )
            if row is None or not exists:
                if exists:
                    await conn.execute(f"DROP SCHEMA {schema_of(p.name)} CASCADE")
                await create_tables(conn, p, schema_of(p.name))
                await conn.execute(
                    "INSERT INTO projections (name, ddl_checksum) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET position = 0, state = 'running', "
                    "last_error = NULL, failed_position = NULL, ddl_checksum = $2",
                    p.name,
                    checksum,
                )
            elif row["ddl_checksum"] != checksum:
                log.warning(
                    "projection.ddl_changed", projection=p.name, hint="its runner rebuilds it"
                )
            await abandon_rebuild(conn, p.name)


async def abandon_rebuild(conn: asyncpg.Connection, name: str) -> bool:
    """Clean up after a rebuild or verify that died with its process; True if there was one.

    A crash during a rebuild left the projection ``rebuilding`` for ever, with the half
    replayed ``proj_<name>_next`` (and ``_verify`` after a verify) taking space. When no
    rebuild or verify of ``name`` runs (its advisory lock is free, which PostgreSQL
    guarantees once the process or its connection is gone), the leftovers are dropped
    and the projection goes back to ``running`` on its live tables. Reverting rather
    than resuming: the live tables were kept current by the live runner throughout, so
    nothing is lost but the partial replay, and a resumed replay could not be trusted
    (lanes do not record their progress). Run ``coord projections rebuild NAME`` again.
    """
    leftovers = [
        schema
        for schema in (schema_of(name, suffix) for suffix in ("_next", "_old", "_verify"))
        if await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema)
    ]
    state = await conn.fetchval("SELECT state FROM projections WHERE name = $1", name)
    if state != "rebuilding" and not leftovers:
        return False
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", rebuild_key(name)):
        return False  # a rebuild or verify is running right now, elsewhere
    try:
        for schema in leftovers:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(
            "UPDATE projections SET state = 'running', rebuild_position = NULL, "
            "updated_at = now() WHERE name = $1 AND state = 'rebuilding'",
            name,
        )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", rebuild_key(name))
    log.warning(
        "projection.rebuild_abandoned",
        projection=name,
        was=state,
        dropped=leftovers,
        hint="the live tables serve on; run the rebuild again if it is still needed",
    )
    return True


class ProjectionStatus(msgspec.Struct, kw_only=True):
    """One row of ``GET /v1/projections``."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    state: str
    last_error: str | None
    failed_position: int | None = None
    rebuild_position: int | None = None
    #: events an operator let this projection pass over (``coord projections skip``)
    skips: list[SkipInfo] = msgspec.field(default_factory=list)


async def status(pool: asyncpg.Pool, names: Sequence[str]) -> list[ProjectionStatus]:
    """Position, head, lag, state and recorded skips of each projection."""
    rows = await pool.fetch(_STATUS, list(names))
    skips = await list_skips(pool)
    now = time.time()
    out: list[ProjectionStatus] = []
    for r in rows:
        behind = r["next_recorded_at"]
        out.append(
            ProjectionStatus(
                name=r["name"],
                position=r["position"],
                head=r["head"],
                lag_events=max(r["head"] - r["position"], 0),
                # How long the oldest unapplied event has waited.
                lag_seconds=round(max(now - behind.timestamp(), 0.0), 3) if behind else 0.0,
                state=r["state"],
                last_error=r["last_error"],
                failed_position=r["failed_position"],
                rebuild_position=r["rebuild_position"],
                skips=skips.get(r["name"], []),
            )
        )
    return out
