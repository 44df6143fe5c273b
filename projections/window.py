"""Reading and applying a window of the log for one projection.

A window is the events in (after, up_to] that a projection handles, decoded into
:class:`~projections.base.Envelope` (only if the projection reads payloads), less the
events an operator let it skip. The runner, a rebuild and a verify all apply the log this
way, on the caller's transaction; a handler's failure comes back as :class:`HandlerFailed`
naming the window's first position, for the caller to narrow down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from events.domain.types import Event, decode_trusted
from events.store import logged
from projections.base import UNDECODED, Envelope, Projection
from projections.failures import is_transient


class HandlerFailed(Exception):
    """A projection's handler raised on the event at ``position``."""

    def __init__(self, name: str, position: int, window_end: int, error: BaseException) -> None:
        super().__init__(f"{name} failed at position {position}: {error!r}")
        self.position = position
        self.window_end = window_end
        self.error = error


def transient(conn: asyncpg.Connection, e: BaseException) -> bool:
    """A fault of the database or the connection (see projections/failures.py)."""
    return is_transient(e, connection_closed=conn.is_closed())


#: ``{position: event id}``: the events a projection leaves out (projections/skips.py).
Skips = Mapping[int, str]


Lane = tuple[int, int]  # (this lane, number of lanes): a share of the streams


def _read_sql(projection: Projection, lane: Lane | None = None) -> str:
    types = "" if projection.handles is None else " AND e.type = ANY($3::text[])"
    if lane is not None:
        n = 3 if projection.handles is None else 4
        types += f" AND abs(hashtext(e.stream_id) % ${n + 1}) = ${n}"
    columns = logged.columns(payload=projection.reads_payload)
    return logged.select(columns, f"l.position > $1 AND l.position <= $2{types}")


def _undecoded(type_name: str, schema_version: int, data: Any) -> Event:
    return UNDECODED


async def load_window(
    conn: asyncpg.Connection,
    projection: Projection,
    after: int,
    up_to: int,
    lane: Lane | None = None,
    skips: Skips | None = None,
) -> list[Envelope]:
    """Read and decode the events in (after, up_to] that ``projection`` handles.

    With ``lane`` only the events of that lane's share of the streams; ``skips`` are
    left out (never decoded). Raises HandlerFailed naming the window's first position
    if an event cannot be decoded.
    """
    args: list[Any] = [after, up_to]
    if projection.handles is not None:
        args.append(sorted(projection.handles))
    if lane is not None:
        args.extend(lane)
    rows = await conn.fetch(_read_sql(projection, lane), *args)
    return envelopes(projection, rows, up_to, filtered=True, skips=skips)


def envelopes(
    projection: Projection,
    rows: Sequence[Any],
    up_to: int,
    *,
    filtered: bool = False,
    skips: Skips | None = None,
) -> list[Envelope]:
    """Decode the logged events ``rows`` (``events.store.logged.COLUMNS``) for ``projection``.

    Keeps only the types it handles unless the rows are ``filtered`` already, and leaves
    out the ``skips`` (position and event id must both match). Raises HandlerFailed
    naming the first row's position if an event cannot be decoded.
    """
    handles = None if filtered else projection.handles
    decode = decode_trusted if projection.reads_payload else _undecoded
    if skips:
        rows = [r for r in rows if skips.get(r[0]) != r[1]]
        if not rows:
            return []
    try:
        return [
            Envelope(
                position=r[0],
                event_id=r[1],
                stream_id=r[2],
                version=r[3],
                type=r[4],
                event=decode(r[4], r[5], r[6]),
                metadata_json=bytes(r[7]),
                recorded_at=r[8],
                region_code=r[9],
            )
            for r in rows
            if handles is None or r[4] in handles
        ]
    except Exception as e:  # whatever decoding raised, the event is the cause
        raise HandlerFailed(projection.name, rows[0][0], up_to, e) from e


async def apply_batch(
    conn: asyncpg.Connection,
    projection: Projection,
    schema: str,
    batch: Sequence[Envelope],
    up_to: int,
) -> int:
    """Apply a loaded window to ``schema`` on the caller's transaction; return its size.

    Raises HandlerFailed naming the window's first position when the handler fails (the
    caller narrows it down).
    """
    if not batch:
        return 0
    try:
        await projection.apply(conn, schema, batch)
    except Exception as e:
        # The database's or the connection's fault: retried. Anything else came from
        # applying these events (their data, or a bug they trigger): the culprit stops it.
        if transient(conn, e):
            raise
        raise HandlerFailed(projection.name, batch[0].position, up_to, e) from e
    return len(batch)


async def apply_window(
    conn: asyncpg.Connection,
    projection: Projection,
    schema: str,
    after: int,
    up_to: int,
    skips: Skips | None = None,
) -> int:
    """Apply the events in (after, up_to] that ``projection`` handles; return their count.

    Runs on the caller's transaction. Raises HandlerFailed naming the first position of
    the window when the handler fails (the caller narrows it down).
    """
    batch = await load_window(conn, projection, after, up_to, skips=skips)
    return await apply_batch(conn, projection, schema, batch, up_to)
