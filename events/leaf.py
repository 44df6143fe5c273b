"""Canonical leaf encoding of an event: the bytes each Merkle leaf hashes.

An event's leaf bytes are the *canonical JSON* of one object with exactly ten members:
``data, id, metadata, position, recorded_at, region_code, schema_version, stream_id,
type, version`` (docs/audit-format.md §2 specifies it for verifiers in other languages).
The export writes that object verbatim as the ``event`` member of each line, so a
verifier rebuilds the leaf from the line alone.

Canonical JSON here is: object keys sorted by their UTF-8 bytes, no whitespace,
msgspec's string escaping, integers in plain decimal, and every other number as its
*exact* decimal value in plain notation without trailing zeros. Numbers are never
routed through binary floating point: jsonb stores exact decimals (``numeric``) and
treats ``1.0`` and ``1.00`` as the same value, so the canonical form identifies exactly
the values jsonb cannot tell apart, and no two values jsonb keeps apart hash alike.
We hash bytes we produce, never the text jsonb returns (its key order and number
formatting are PostgreSQL's business and may change).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from events.merkle import leaf_hash

__all__ = [
    "LEAF_FIELDS",
    "LeafError",
    "canonical_json",
    "event_leaf_hash",
    "event_object",
    "format_recorded_at",
    "leaf_bytes",
    "stored_leaf_bytes",
]

#: The members of the leaf object, in canonical (sorted) order.
LEAF_FIELDS = (
    "data",
    "id",
    "metadata",
    "position",
    "recorded_at",
    "region_code",
    "schema_version",
    "stream_id",
    "type",
    "version",
)

# PostgreSQL numeric holds at most 131072 digits before and 16383 after the point;
# anything beyond cannot have come from jsonb, and expanding it would let a hostile
# export make the verifier build gigantic strings.
_MAX_EXPONENT = 140_000

# Set by the float hook: only documents with a non-integer number need the slow walk
# (nearly none: coord's payloads hold text, ids, timestamps and small integers).
_saw_number = [False]


def _exact_number(text: str) -> Decimal:
    _saw_number[0] = True
    return Decimal(text)


_decoder = msgspec.json.Decoder(float_hook=_exact_number)
_encoder = msgspec.json.Encoder(order="sorted")
# For objects whose members are already inserted in canonical order (stored_leaf_bytes).
_in_order = msgspec.json.Encoder()


class LeafError(ValueError):
    """The event cannot be encoded canonically (bad JSON, absurd number, wrong shape)."""


def _number(d: Decimal) -> msgspec.Raw:
    """Exact decimal in plain notation: no exponent, no trailing fraction zeros, no -0."""
    if not d.is_finite():
        raise LeafError(f"non-finite number {d}")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if abs(exponent) > _MAX_EXPONENT or abs(d.adjusted()) > _MAX_EXPONENT:
        raise LeafError("number out of the range PostgreSQL numeric can store")
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return msgspec.Raw(text.encode())


def _canonical(value: Any) -> Any:
    """Replace non-integer numbers by their canonical text, recursively."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, Decimal):
        return _number(value)
    return value


def canonical_json(raw: bytes | msgspec.Raw | str) -> bytes:
    """Return the canonical JSON bytes of a JSON document."""
    _saw_number[0] = False
    try:
        value = _decoder.decode(raw)
    except msgspec.DecodeError as e:
        raise LeafError(f"invalid JSON: {e}") from e
    return _encoder.encode(_canonical(value) if _saw_number[0] else value)


def format_recorded_at(ts: datetime) -> str:
    """RFC 3339 UTC with exactly six fraction digits: ``2024-05-01T08:30:00.000000Z``."""
    if ts.tzinfo is None:
        raise LeafError("recorded_at must be timezone-aware")
    if ts.tzinfo is not UTC:  # asyncpg already returns UTC
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_object(
    *,
    id: uuid.UUID | str,
    stream_id: str,
    version: int,
    position: int,
    type: str,
    schema_version: int,
    data: bytes | msgspec.Raw,
    metadata: bytes | msgspec.Raw,
    recorded_at: datetime,
    region_code: str | None,
) -> dict[str, Any]:
    """The leaf object of a stored event, ready for ``msgspec`` encoding (data stays raw).

    Members are inserted in canonical order. ``recorded_at`` stays a datetime when
    msgspec writes it exactly as ``format_recorded_at`` would (UTC, non-zero fraction:
    six digits and a Z), which saves formatting it by hand for every event.
    """
    at: datetime | str = recorded_at
    if recorded_at.tzinfo is not UTC or not recorded_at.microsecond:
        at = format_recorded_at(recorded_at)
    return {
        "data": msgspec.Raw(canonical_json(data)),
        "id": str(id),
        "metadata": msgspec.Raw(canonical_json(metadata)),
        "position": position,
        "recorded_at": at,
        "region_code": region_code,
        "schema_version": schema_version,
        "stream_id": stream_id,
        "type": type,
        "version": version,
    }


def stored_leaf_bytes(event: dict[str, Any]) -> bytes:
    """``leaf_bytes(event)`` for an ``event_object`` built from a stored row, unchecked.

    The tree builder's path (once per event): the members are typed by the database
    row, so nothing needs validating, and ``event_object`` inserted them in canonical
    order, so nothing needs sorting. Same bytes, in under half the time.
    """
    return _in_order.encode(event)


def leaf_bytes(
    event: dict[str, Any] | bytes | msgspec.Raw, *, position: int | None = None
) -> bytes:
    """Canonical leaf bytes of an event object (as decoded from an export, or raw JSON).

    ``position`` overrides the object's position: the verifier uses it to recognise an
    event that was moved to another place in the log.
    """
    if isinstance(event, bytes | msgspec.Raw):
        try:
            event = _decoder.decode(event)
        except msgspec.DecodeError as e:
            raise LeafError(f"invalid JSON: {e}") from e
    if not isinstance(event, dict) or tuple(sorted(event)) != LEAF_FIELDS:
        raise LeafError(f"an event object has exactly the members {', '.join(LEAF_FIELDS)}")
    obj = dict(event)
    if position is not None:
        obj["position"] = position
    for name in ("position", "version", "schema_version"):
        if type(obj[name]) is not int:
            raise LeafError(f"{name} must be an integer")
    # An object from event_object holds data and metadata as canonical raw JSON already;
    # only decoded documents (an export line) can hide a number that needs the walk.
    if any(isinstance(v, dict | list | Decimal) for v in obj.values()):
        return _encoder.encode(_canonical(obj))
    return _encoder.encode(obj)


def event_leaf_hash(
    event: dict[str, Any] | bytes | msgspec.Raw, *, position: int | None = None
) -> bytes:
    """RFC 9162 leaf hash of an event object (see ``leaf_bytes``)."""
    return leaf_hash(leaf_bytes(event, position=position))
