"""Canonical JSON and the leaf encoding of an event: the bytes each Merkle leaf hashes.

docs/audit-format.md §2 specifies both for verifiers in other languages; this module is
the one implementation coord uses everywhere: the tree builder, the export, `coord verify`
(whole exports and single events with an inclusion proof) all go through ``encode``.

The value model. JSON is read into ``dict`` (str keys), ``list``, ``str``, ``int``,
``bool``, ``None`` and, for every number with a fraction or an exponent, a
``msgspec.Raw`` holding that number's canonical text (``canonical_number``). There is no
``float`` anywhere: a number never passes through binary floating point, so ``4.0`` is
written ``4`` and ``1E-7`` is written ``0.0000001`` by construction. Two readers build it:

* ``parse_json`` for text coord did not write itself (export lines, proofs, events handed
  to the verifier). It refuses what the canonical form cannot hold: repeated member names,
  invalid UTF-8, ``NaN``/``Infinity``, numbers beyond PostgreSQL ``numeric``'s range.
  Lone surrogates (``"\\ud800"``) parse, but ``encode`` refuses them: they have no UTF-8.
* ``canonical_json`` for ``jsonb`` text from coord's own database, through msgspec (fast:
  the tree builder runs it for every event). PostgreSQL never hands out repeated names,
  lone surrogates or non-finite numbers, and the same number hook applies.

Canonical JSON is then: object keys sorted by code point (= UTF-8 bytes), no whitespace,
msgspec's string escaping (only ``"``, ``\\`` and U+0000..U+001F), integers in plain
decimal, other numbers as their exact decimal value in plain notation without trailing
zeros. jsonb stores numbers as exact ``numeric`` and treats ``1.0`` and ``1.00`` as one
value, so the canonical form identifies exactly the values jsonb cannot tell apart. We
hash bytes we produce, never the text jsonb returns (its formatting is PostgreSQL's).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from events.audit.merkle import leaf_hash

__all__ = [
    "LEAF_FIELDS",
    "LeafError",
    "canonical_json",
    "canonical_number",
    "check_event",
    "encode",
    "event_leaf_hash",
    "event_object",
    "format_recorded_at",
    "leaf_bytes",
    "parse_json",
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
# Python refuses int(text) beyond 4300 digits (CVE-2020-10735); longer integer literals
# stay text, which is already their canonical form.
_MAX_INT_DIGITS = 4000

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RECORDED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class LeafError(ValueError):
    """Not canonical: bad JSON, a repeated name, an absurd number, a wrong event shape."""


def canonical_number(text: str) -> msgspec.Raw:
    """The canonical text of a JSON number literal: exact, plain, no trailing zeros, no -0."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise LeafError(f"not a number: {text[:40]!r}") from None
    if not d.is_finite():
        raise LeafError(f"non-finite number {text[:40]!r}")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if abs(exponent) > _MAX_EXPONENT or abs(d.adjusted()) > _MAX_EXPONENT:
        raise LeafError("number out of the range PostgreSQL numeric can store")
    out = format(d, "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    if out in ("-0", ""):
        out = "0"
    return msgspec.Raw(out.encode())


def _integer(text: str) -> int | msgspec.Raw:
    if len(text) <= _MAX_INT_DIGITS:
        return int(text)
    return canonical_number(text)


def _constant(name: str) -> Any:
    raise LeafError(f"{name} is not a JSON number")


class _Names:
    """object_pairs_hook that notes repeated member names (and whether the outermost had one)."""

    def __init__(self) -> None:
        self.repeated: str | None = None
        self.last_repeated = False  # the most recent object built had a repeated name

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        self.last_repeated = len(obj) != len(pairs)
        if self.last_repeated and self.repeated is None:
            seen: set[str] = set()
            for name, _ in pairs:
                if name in seen:
                    self.repeated = name
                    break
                seen.add(name)
        return obj


def parse_json(raw: bytes | str, *, names: _Names | None = None) -> Any:
    """Read untrusted JSON text into the value model, refusing what canonical JSON cannot hold.

    Raises ``LeafError`` for invalid UTF-8 or JSON, ``NaN``/``Infinity``, absurd numbers and
    repeated member names. With ``names`` given, repeated names are recorded there instead
    (the verifier then tells where they are); the last value wins, as in PostgreSQL.
    """
    hook = names if names is not None else _Names()
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(
            text,
            parse_float=canonical_number,
            parse_int=_integer,
            parse_constant=_constant,
            object_pairs_hook=hook,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise LeafError(f"invalid JSON: {e}") from None
    if names is None and hook.repeated is not None:
        raise LeafError(f"repeated member name {hook.repeated!r}")
    return value


_encoder = msgspec.json.Encoder(order="sorted")
# Trusted text from jsonb: non-integer numbers go straight to their canonical text.
_stored = msgspec.json.Decoder(float_hook=canonical_number)


def encode(value: Any) -> bytes:
    """The canonical JSON bytes of a value-model value (see the module docstring).

    Values from ``parse_json`` or ``canonical_json`` hold no float by construction; the
    walk refuses one anyway (msgspec would write ``4.0`` and ``1e-07``), as well as keys
    that are not strings. Lone surrogates are refused by msgspec (no UTF-8 for them).
    """
    _check(value)
    try:
        return _encoder.encode(value)
    except (UnicodeEncodeError, TypeError, ValueError) as e:
        raise LeafError(f"not canonical JSON: {e}") from None


def _check(value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if type(k) is not str:
                raise LeafError(f"object member name {k!r} is not a string")
            _check(v)
    elif isinstance(value, list):
        for v in value:
            _check(v)
    elif isinstance(value, float | Decimal):
        raise LeafError("numbers must be parsed with canonical_number, not as float/Decimal")


def canonical_json(raw: bytes | msgspec.Raw | str) -> bytes:
    """Canonical bytes of JSON text from coord's database (``jsonb``): ``encode(parse)``.

    msgspec reads it (the tree builder's hot path; no walk needed: its float hook leaves no
    float behind). Text msgspec cannot read (an integer beyond 4300 digits) goes through
    the strict reader instead.
    """
    try:
        value = _stored.decode(raw)
    except msgspec.MsgspecError:
        value = parse_json(bytes(raw) if isinstance(raw, msgspec.Raw) else raw)
        return encode(value)
    try:
        return _encoder.encode(value)
    except UnicodeEncodeError as e:
        raise LeafError(f"not canonical JSON: {e}") from None


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
    """The leaf object of a stored event (data and metadata as canonical raw JSON)."""
    return {
        "data": msgspec.Raw(canonical_json(data)),
        "id": str(id),
        "metadata": msgspec.Raw(canonical_json(metadata)),
        "position": position,
        "recorded_at": format_recorded_at(recorded_at),
        "region_code": region_code,
        "schema_version": schema_version,
        "stream_id": stream_id,
        "type": type,
        "version": version,
    }


def stored_leaf_bytes(event: dict[str, Any]) -> bytes:
    """``leaf_bytes`` of an ``event_object``: the tree builder's and the export's path.

    The same encoder, without the input checks (twice as fast; it runs for every event):
    the members come typed from the database row, and data and metadata are already
    canonical raw JSON, so there is nothing to refuse.
    """
    return _encoder.encode(event)


def check_event(event: Any) -> dict[str, Any]:
    """Refuse an event object the canonical form cannot have produced (docs §2.1).

    Checks the members and their JSON types, not their content: a changed title is an
    altered event for the verifier to find, a ``"position": 250.0`` is malformed input.
    """
    if not isinstance(event, dict):
        raise LeafError("an event must be a JSON object")
    if tuple(sorted(event)) != LEAF_FIELDS:
        raise LeafError(f"an event object has exactly the members {', '.join(LEAF_FIELDS)}")
    for name in ("position", "version", "schema_version"):
        v = event[name]
        if type(v) is not int or (name != "schema_version" and v < 1):
            raise LeafError(f"{name} must be an integer (>= 1), not {_show(v)}")
    for name in ("data", "metadata"):
        if not isinstance(event[name], dict | msgspec.Raw):
            raise LeafError(f"{name} must be an object")
    for name in ("id", "recorded_at", "stream_id", "type"):
        if type(event[name]) is not str:
            raise LeafError(f"{name} must be a string")
    if not _UUID.fullmatch(event["id"]):
        raise LeafError("id must be a UUID in lowercase 8-4-4-4-12 form")
    if not _RECORDED_AT.fullmatch(event["recorded_at"]):
        raise LeafError("recorded_at must be YYYY-MM-DDTHH:MM:SS.ffffffZ")
    if event["region_code"] is not None and type(event["region_code"]) is not str:
        raise LeafError("region_code must be a string or null")
    return event


def _show(v: Any) -> str:
    return bytes(v).decode() if isinstance(v, msgspec.Raw) else repr(v)


def leaf_bytes(
    event: dict[str, Any] | bytes | msgspec.Raw, *, position: int | None = None
) -> bytes:
    """Canonical leaf bytes of an event object (``event_object``, parsed, or JSON text).

    ``position`` overrides the object's position: the verifier uses it to recognise an
    event that was moved to another place in the log.
    """
    obj = check_event(parse_json(bytes(event)) if isinstance(event, bytes | msgspec.Raw) else event)
    if position is not None:
        obj = {**obj, "position": position}
    return encode(obj)


def event_leaf_hash(
    event: dict[str, Any] | bytes | msgspec.Raw, *, position: int | None = None
) -> bytes:
    """RFC 9162 leaf hash of an event object (see ``leaf_bytes``)."""
    return leaf_hash(leaf_bytes(event, position=position))
