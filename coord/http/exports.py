"""Open data: every list view and the summary as CSV or JSON Lines, streamed.

``?format=csv|jsonl|json`` or ``Accept: text/csv`` / ``application/jsonl``
(``application/x-ndjson``) chooses the format; the query wins. The export has the view's
filters and access rules and walks every page of it inside the view's one consistent
snapshot, writing rows as they come. CSV is UTF-8 with a header row and RFC 4180 quoting
(CRLF line ends, fields with a comma, quote or line break quoted, quotes doubled); nested
members become dotted columns (``raised_by.code``), lists are joined by ``; ``, lists of
objects are JSON. A text cell a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return) is prefixed with ``'`` (OWASP's advice for
CSV injection): the files are meant to be opened in spreadsheets.
"""

from __future__ import annotations

import asyncio
import csv
import io
import typing
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from typing import Any, Final, Literal

import msgspec
import structlog
from aiohttp import web

from coord.http.projections import POSITION_HEADER, Snapshot

log = structlog.get_logger("coord.exports")

Format = Literal["json", "csv", "jsonl"]
CSV_TYPE: Final = "text/csv"
JSONL_TYPE: Final = "application/jsonl"
_BY_MEDIA: Final[dict[str, Format]] = {
    "text/csv": "csv",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/json": "json",
}
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
#: rows written per flush of the response
_CHUNK: Final = 200


def export_format(request: web.Request, asked: Format | None) -> Format:
    """The format asked for: ``?format=`` (`asked`, parsed with the view's query) first,
    then the Accept header, else JSON."""
    if asked is not None:
        return asked
    best: tuple[float, Format] = (0.0, "json")
    for part in request.headers.get("Accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        fmt = _BY_MEDIA.get(media.lower())
        if fmt is None:
            continue
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Equal weights: the first listed wins, JSON when nothing better is asked for.
        if q > best[0]:
            best = (q, fmt)
    return best[1]


def columns_of(item_type: type[msgspec.Struct]) -> list[str]:
    """The CSV columns of a struct type: its fields, nested structs as dotted names."""
    hints = typing.get_type_hints(item_type)
    out: list[str] = []
    for f in msgspec.structs.fields(item_type):
        inner = _struct_in(hints[f.name])
        if inner is not None:
            out.extend(f"{f.encode_name}.{c}" for c in columns_of(inner))
        else:
            out.append(f.encode_name)
    return out


def _struct_in(tp: Any) -> type[msgspec.Struct] | None:
    args = typing.get_args(tp)
    candidates = [tp, *args] if args else [tp]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, msgspec.Struct):
            return c
    return None


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(v, f"{prefix}{k}.", out)
    else:
        out[prefix[:-1]] = value


def cell(value: Any) -> str:
    """One CSV cell: text made formula-safe, lists joined, objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return _safe("; ".join(cell(v) for v in value))
        return _safe(msgspec.json.encode(value).decode())
    if isinstance(value, dict):
        return _safe(msgspec.json.encode(value).decode())
    if isinstance(value, str):
        return _safe(value)
    return str(value)


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


_encoder = msgspec.json.Encoder()


def csv_row(item: msgspec.Struct, columns: list[str]) -> list[str]:
    """The cells of one item, in column order (times as their JSON spelling)."""
    flat: dict[str, Any] = {}
    # Through JSON: items may hold pre-encoded members (msgspec.Raw), e.g. timeline actors.
    _flat(msgspec.json.decode(_encoder.encode(item)), "", flat)
    return [cell(flat.get(c)) for c in columns]


def csv_line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(list(cells))
    return buffer.getvalue()


async def stream_items(
    request: web.Request,
    fmt: Format,
    item_type: type[msgspec.Struct],
    pages: AsyncIterator[list[Any]],
    snap: Snapshot,
    name: str,
) -> web.StreamResponse:
    """Stream every item of ``pages`` as CSV or JSON Lines (``name`` for the file name)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": (
                f"{CSV_TYPE}; charset=utf-8; header=present" if fmt == "csv" else JSONL_TYPE
            ),
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            POSITION_HEADER: str(snap.position),
        }
    )
    await response.prepare(request)
    columns = columns_of(item_type)
    try:
        if fmt == "csv":
            await response.write(csv_line(columns).encode())
        async for page in pages:
            for start in range(0, len(page), _CHUNK):
                chunk = page[start : start + _CHUNK]
                if fmt == "csv":
                    text = "".join(csv_line(csv_row(item, columns)) for item in chunk).encode()
                else:
                    text = b"".join(_encoder.encode(item) + b"\n" for item in chunk)
                await response.write(text)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        # The status line is sent: no problem body can follow. Cut the connection without
        # the last chunk, so that the client sees a broken download, never a short file.
        log.exception("export.failed", export=name)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def one_page(items: list[Any]) -> AsyncIterator[list[Any]]:
    """A view that is not paged, as a page iterator."""
    yield items
