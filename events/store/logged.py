"""Logged events: the global log joined to the events it orders, and the codec they travel in.

``log`` numbers the events (``log.seq`` is ``events.seq``); every statement that reads
events by their log position — the log reader, the store's ``read_all``, the tree builder,
the projections' windows, checkpoints and skips — is built here, so the join is written
once: ``l`` is the log row, ``e`` the event. (Reads of one stream start from ``events``
and LEFT JOIN the log instead: an event committed a moment ago may not be numbered yet;
they stay in store.py and the audit trail.)

:func:`init_connection` registers the ``jsonb`` codec these statements (and the whole
store) rely on: ``data`` and ``metadata`` arrive as raw JSON bytes (``msgspec.Raw``),
decoded only where needed, and values go out as JSON text. coord runs it on every
connection it opens (``coord/db.py``).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

#: The log joined to its events.
FROM_LOG = "log l JOIN events e ON e.seq = l.seq"

#: The columns of a logged event, in this order (row[0] is the position).
COLUMNS = (
    "position",
    "event_id",
    "stream_id",
    "version",
    "type",
    "schema_version",
    "data",
    "metadata",
    "recorded_at",
    "region_code",
)


def columns(*, payload: bool = True, event_id_text: bool = True) -> str:
    """The select list of :data:`COLUMNS`.

    ``payload=False`` reads ``data`` as NULL (for readers that never look at it);
    ``event_id_text=False`` keeps the event id a uuid (the tree builder hashes its bytes).
    """
    event_id = "e.event_id::text AS event_id" if event_id_text else "e.event_id"
    data = "e.data" if payload else "NULL::jsonb AS data"
    return (
        f"l.position, {event_id}, e.stream_id, e.version, e.type, e.schema_version, "
        f"{data}, e.metadata, e.recorded_at, e.region_code"
    )


def select(what: str, where: str, *, ordered: bool = True, limit: str | None = None) -> str:
    """``SELECT what`` from the logged events ``WHERE where``, in log order unless not
    ``ordered``, at most ``limit`` (a parameter such as ``$2``)."""
    sql = f"SELECT {what} FROM {FROM_LOG} WHERE {where}"
    if ordered:
        sql += " ORDER BY l.position"
    if limit is not None:
        sql += f" LIMIT {limit}"
    return sql


def at(column: str, position: str) -> str:
    """A scalar subquery: ``column`` of the event logged at ``position`` (NULL if none)."""
    return f"({select(column, f'l.position = {position}', ordered=False)})"


def _encode_jsonb(value: Any) -> bytes:
    # Binary jsonb is a version byte (1) followed by the JSON text.
    if isinstance(value, bytes | bytearray | memoryview):
        return b"\x01" + bytes(value)
    if isinstance(value, str):
        return b"\x01" + value.encode()
    return b"\x01" + msgspec.json.encode(value)


def _decode_jsonb(value: bytes) -> msgspec.Raw:
    # Hand the stored JSON on undecoded; callers decode only what they need.
    return msgspec.Raw(value[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: jsonb travels as raw JSON bytes, never as Python objects."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )
