"""Canonical leaf encoding (docs/audit-format.md §2), no I/O.

`reference_leaf_bytes` below is an encoder written from the document's rules alone, not
from events/audit/leaf.py: the known-answer vectors and the property test in
tests/integration/test_audit_canonical.py hold the production encoder against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from events.audit.leaf import (
    LeafError,
    canonical_json,
    encode,
    event_leaf_hash,
    event_object,
    format_recorded_at,
    leaf_bytes,
    parse_json,
    stored_leaf_bytes,
)

EXAMPLE_ID = uuid.UUID("6f1c2d4e-0b6a-4a57-9d59-3f0c1e2a7b10")
DOC = Path(__file__).parents[2] / "docs" / "audit-format.md"


# --- the document's rules, implemented independently ------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES["\r"] = "\\r"


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("repeated member name")  # §2.2: names are unique
    return dict(pairs)


def reference_parse(text: str | bytes) -> Any:
    """Parse JSON as §2.2 says: numbers as exact decimals (integers too), names unique."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal, object_pairs_hook=_unique)


def _ref_number(d: Decimal) -> str:
    """§2.2 number: exact value, plain notation, no leading/trailing zeros, never -0."""
    sign, digit_tuple, exp = d.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    if exp >= 0:
        whole, fraction = digits + "0" * exp, ""
    else:
        digits = digits.rjust(-exp + 1, "0")
        whole, fraction = digits[:exp], digits[exp:]
    text = (whole.lstrip("0") or "0") + ("." + fraction.rstrip("0") if fraction.strip("0") else "")
    return "-" + text if sign and text != "0" else text


def _ref_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("lone surrogate")  # no UTF-8 for it
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _ref_value(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Decimal):
        return _ref_number(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _ref_string(v)
    if isinstance(v, list):
        return "[" + ",".join(_ref_value(x) for x in v) + "]"
    assert isinstance(v, dict), v
    members = sorted(v.items(), key=lambda kv: kv[0].encode("utf-8"))
    return "{" + ",".join(_ref_string(k) + ":" + _ref_value(x) for k, x in members) + "}"


def reference_leaf_bytes(event: dict[str, Any]) -> bytes:
    """§2 leaf bytes of a parsed event object (as `reference_parse` returns it)."""
    assert sorted(event) == [
        *("data", "id", "metadata", "position", "recorded_at", "region_code"),
        *("schema_version", "stream_id", "type", "version"),
    ]
    for name in ("position", "version", "schema_version"):
        n = event[name]
        assert isinstance(n, Decimal) and n == n.to_integral_value(), name
    return _ref_value(event).encode("utf-8")


def reference_leaf_hash(event: dict[str, Any]) -> bytes:
    """§2.3: SHA-256(0x00 || leaf bytes)."""
    return hashlib.sha256(b"\x00" + reference_leaf_bytes(event)).digest()


# --- the production encoder -----------------------------------------------------------------


def example(**over: Any) -> dict[str, object]:
    """The worked example of docs/audit-format.md §2.4, as stored (``over`` replaces fields)."""
    fields: dict[str, Any] = {
        "id": EXAMPLE_ID,
        "stream_id": "hearing-6f1c2d4e",
        "version": 1,
        "position": 1,
        "type": "HearingScheduled",
        "schema_version": 1,
        "data": b'{"title": "Dengar pendapat", "region_code": "35.71", "quorum": 1.50}',
        "metadata": b'{"actor": {"role": "regional", "name": "Surabaya"}}',
        "recorded_at": datetime(2024, 5, 1, 8, 30, 0, 120000, tzinfo=UTC),
        "region_code": "35.71",
    }
    return event_object(**(fields | over))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1", "1"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("0e5", "0"),
        ("1.0", "1"),
        ("4.0", "4"),
        ("1.10", "1.1"),
        ("1e2", "100"),
        ("1.5E+3", "1500"),
        ("1E-7", "0.0000001"),
        ("0.0000001", "0.0000001"),
        ("-12.3400", "-12.34"),
        ("0.30000000000000000001", "0.30000000000000000001"),
        ("1E+309", "1" + "0" * 309),
        ("18446744073709551617", "18446744073709551617"),
        ("123456789012345678901234567890.5", "123456789012345678901234567890.5"),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_numbers_are_exact_plain_decimals(text: str, canonical: str) -> None:
    """Numbers keep their exact decimal value, in plain notation with no trailing zeros."""
    expected = f"[{canonical}]".encode()
    assert canonical_json(f"[{text}]") == expected  # the database's text
    assert encode(parse_json(f"[{text}]")) == expected  # an export line's text
    assert reference_leaf_bytes_of_value(f"[{text}]") == expected


def reference_leaf_bytes_of_value(text: str) -> bytes:
    """The reference encoder on any JSON value."""
    return _ref_value(reference_parse(text)).encode()


def test_keys_sorted_no_whitespace_strings_escaped() -> None:
    """Object keys sort by UTF-8 bytes at every depth; only quote, backslash and controls escape."""
    raw = (
        '{"b": 1, "a": {"z": [true, null], "y": "\\u00e9\\t\\"/\\u001f\\u007f\\u2028"}, '
        '"\\uffff": 2, "\\ud83d\\ude00": 3}'
    )
    expected = (
        '{"a":{"y":"é\\t\\"/\\u001f\x7f\u2028","z":[true,null]},"b":1,"\uffff":2,"\U0001f600":3}'
    ).encode()
    assert canonical_json(raw) == expected
    assert encode(parse_json(raw)) == expected
    assert reference_leaf_bytes_of_value(raw) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"title": "PALSU", "title": "asli"}', "repeated member name 'title'"),
        ('{"a": {"b": 1, "b": 1}}', "repeated member name 'b'"),
        ("[NaN]", "not a JSON number"),
        ("[-Infinity]", "not a JSON number"),
        ("[1e999999999]", "range"),
        ('{"a": 1', "invalid JSON"),
        (b'["\xed\xa0\x80"]', "invalid JSON"),  # a surrogate's bytes are not UTF-8
        (b'["\xff"]', "invalid JSON"),
    ],
)
def test_parser_refuses_what_canonical_json_cannot_hold(text: str | bytes, match: str) -> None:
    """Untrusted JSON with repeated names, non-numbers, absurd numbers or bad UTF-8 is refused."""
    with pytest.raises(LeafError, match=match):
        parse_json(text)


@pytest.mark.parametrize("text", ['["\\ud800"]', '{"\\udc00": 1}', '["a\\ud83d"]'])
def test_lone_surrogates_cannot_be_encoded(text: str) -> None:
    """A lone surrogate has no UTF-8 form: the encoder refuses it instead of guessing."""
    with pytest.raises(LeafError, match="surrogates"):
        encode(parse_json(text))


@pytest.mark.parametrize("value", [{"y": 4.0}, [1e-7], {"n": Decimal("1.5")}, {1: "a"}])
def test_encoder_refuses_values_not_read_by_a_canonical_reader(value: Any) -> None:
    """Floats (which msgspec would write as 4.0 and 1e-07) never reach the bytes."""
    with pytest.raises(LeafError):
        encode(value)


def test_recorded_at_is_fixed_utc_microseconds() -> None:
    """recorded_at is RFC 3339 UTC with exactly six fraction digits and a Z."""
    wib = timezone(timedelta(hours=7))
    assert format_recorded_at(datetime(2024, 5, 1, 15, 30, tzinfo=wib)) == (
        "2024-05-01T08:30:00.000000Z"
    )
    with pytest.raises(LeafError, match="timezone"):
        format_recorded_at(datetime(2024, 5, 1))


def test_export_object_rehashes_to_the_same_leaf() -> None:
    """The export writes the leaf bytes; parsed and re-encoded they are the same bytes."""
    stored = leaf_bytes(example())
    line = msgspec.json.encode({"leaf_index": 0, "event": msgspec.Raw(stored)})
    assert leaf_bytes(parse_json(line)["event"]) == stored
    assert leaf_bytes(stored) == stored
    assert reference_leaf_bytes(reference_parse(line)["event"]) == stored


def test_worked_example() -> None:
    """The worked example's leaf bytes and hash are the ones documented."""
    assert leaf_bytes(example()) == (
        b'{"data":{"quorum":1.5,"region_code":"35.71","title":"Dengar pendapat"},'
        b'"id":"6f1c2d4e-0b6a-4a57-9d59-3f0c1e2a7b10",'
        b'"metadata":{"actor":{"name":"Surabaya","role":"regional"}},'
        b'"position":1,"recorded_at":"2024-05-01T08:30:00.120000Z","region_code":"35.71",'
        b'"schema_version":1,"stream_id":"hearing-6f1c2d4e","type":"HearingScheduled",'
        b'"version":1}'
    )
    assert event_leaf_hash(example()).hex() == WORKED_EXAMPLE_HASH
    assert WORKED_EXAMPLE_HASH in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "recorded_at",
    [
        datetime(2024, 5, 1, 8, 30, 0, 120000, tzinfo=UTC),
        datetime(2024, 5, 1, 8, 30, 0, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 8, 30, 0, 0, tzinfo=UTC),  # no fraction: still six digits
        datetime(2024, 5, 1, 15, 30, 0, 5, tzinfo=timezone(timedelta(hours=7))),
    ],
)
@pytest.mark.parametrize(
    ("data", "region"),
    [
        (b'{"title": "Dengar pendapat", "quorum": 1.50, "n": [1, 2e0, 4.0, 1E-7]}', "35.71"),
        (rb'{"teks": "honorarium \u201cPPK\u201d \"kecil\"", "z": {}, "a": null}', None),
    ],
)
def test_stored_rows_and_export_lines_give_the_same_bytes(
    recorded_at: datetime, data: bytes, region: str | None
) -> None:
    """What the tree builder hashes from a row, the verifier rebuilds from the export line."""
    stored = example(
        version=3,
        position=17,
        type="StatementRecorded",
        schema_version=2,
        data=data,
        metadata=b'{"role": "regional", "actor": {"name": "Kediri"}}',
        recorded_at=recorded_at,
        region_code=region,
    )
    built = leaf_bytes(stored)
    assert stored_leaf_bytes(stored) == built  # the tree builder's unchecked path
    parsed = parse_json(built)
    assert parsed["recorded_at"] == format_recorded_at(recorded_at)
    assert leaf_bytes(parsed) == built
    assert reference_leaf_bytes(reference_parse(built)) == built


def test_position_override_changes_the_leaf() -> None:
    """The position is part of the leaf: the same event elsewhere in the log hashes differently."""
    obj = example()
    assert event_leaf_hash(obj, position=2) != event_leaf_hash(obj)
    assert event_leaf_hash(dict(obj, position=2)) == event_leaf_hash(obj, position=2)


@pytest.mark.parametrize(
    ("member", "text"),
    [
        ("extra", "1"),
        ("position", '"1"'),
        ("position", "1.0"),
        ("position", "250.0"),
        ("position", "1e0"),
        ("position", "0"),
        ("version", "1.0"),
        ("schema_version", "true"),
        ("id", '"6F1C2D4E-0B6A-4A57-9D59-3F0C1E2A7B10"'),
        ("recorded_at", '"2024-05-01T08:30:00.12Z"'),
        ("region_code", "35"),
        ("data", "[]"),
        ("metadata", "null"),
    ],
)
def test_wrong_shapes_are_refused(member: str, text: str) -> None:
    """An event object with other members, or members of other JSON types, is not a leaf."""
    line = leaf_bytes(example())
    obj = parse_json(line)
    obj[member] = parse_json(text)
    with pytest.raises(LeafError):
        leaf_bytes(obj)


# --- known answers of the document ------------------------------------------------------------

_VECTOR = re.compile(
    r"^input +(?P<input>\{.*\})\n"
    r"leaf_bytes +(?P<b64>[A-Za-z0-9+/=]+)\n"
    r"leaf_hash +(?P<hex>[0-9a-f]{64})\n"
    r" +(?P<hash_b64>[A-Za-z0-9+/=]{44})$",
    re.MULTILINE,
)


def doc_vectors() -> list[dict[str, str]]:
    """The known-answer leaf vectors of docs/audit-format.md §2.5."""
    return [m.groupdict() for m in _VECTOR.finditer(DOC.read_text(encoding="utf-8"))]


def test_document_has_known_answer_vectors() -> None:
    """§2.5 lists several awkward events (the parser above must find all of them)."""
    assert len(doc_vectors()) >= 4


@pytest.mark.parametrize("vector", doc_vectors(), ids=lambda v: v["hex"][:8])
def test_known_answer_vectors(vector: dict[str, str]) -> None:
    """The production encoder and the reference encoder reproduce every vector of §2.5."""
    expected = base64.b64decode(vector["b64"], validate=True)
    assert leaf_bytes(parse_json(vector["input"])) == expected
    assert event_leaf_hash(parse_json(vector["input"])).hex() == vector["hex"]
    assert reference_leaf_bytes(reference_parse(vector["input"])) == expected
    assert base64.b64encode(bytes.fromhex(vector["hex"])).decode() == vector["hash_b64"]
    assert hashlib.sha256(b"\x00" + expected).hexdigest() == vector["hex"]


WORKED_EXAMPLE_HASH = "3f6d0f4bcff59a90e352da6dee3c99644e93fa84d7141bf74cc4c39d65ff4058"
