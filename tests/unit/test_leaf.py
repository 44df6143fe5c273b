"""Canonical leaf encoding (docs/audit-format.md §2), no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from events.leaf import (
    LeafError,
    canonical_json,
    event_leaf_hash,
    event_object,
    format_recorded_at,
    leaf_bytes,
    stored_leaf_bytes,
)

EXAMPLE_ID = uuid.UUID("6f1c2d4e-0b6a-4a57-9d59-3f0c1e2a7b10")


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
        ("1.0", "1"),
        ("1.10", "1.1"),
        ("1e2", "100"),
        ("1.5E+3", "1500"),
        ("1E-7", "0.0000001"),
        ("-12.3400", "-12.34"),
        ("0.30000000000000000001", "0.30000000000000000001"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("123456789012345678901234567890.5", "123456789012345678901234567890.5"),
    ],
)
def test_numbers_are_exact_plain_decimals(text: str, canonical: str) -> None:
    """Numbers keep their exact decimal value, in plain notation with no trailing zeros."""
    assert canonical_json(f"[{text}]") == f"[{canonical}]".encode()


def test_keys_sorted_no_whitespace_strings_escaped() -> None:
    """Object keys sort by UTF-8 bytes at every depth; only quote, backslash and controls escape."""
    raw = (
        '{"b": 1, "a": {"z": [true, null], "y": "\\u00e9\\t\\"/\\u001f"}, '
        '"\\uffff": 2, "\\ud83d\\ude00": 3}'
    )
    assert (
        canonical_json(raw)
        == (
            '{"a":{"y":"é\\t\\"/\\u001f","z":[true,null]},"b":1,"\uffff":2,"\U0001f600":3}'
        ).encode()
    )


def test_recorded_at_is_fixed_utc_microseconds() -> None:
    """recorded_at is RFC 3339 UTC with exactly six fraction digits and a Z."""
    wib = timezone(timedelta(hours=7))
    assert format_recorded_at(datetime(2024, 5, 1, 15, 30, tzinfo=wib)) == (
        "2024-05-01T08:30:00.000000Z"
    )
    with pytest.raises(LeafError, match="timezone"):
        format_recorded_at(datetime(2024, 5, 1))


def test_export_object_rehashes_to_the_same_leaf() -> None:
    """The object written to the export, decoded and re-encoded, gives the stored leaf bytes."""
    obj = example()
    stored = leaf_bytes(obj)
    exported = msgspec.json.encode({"leaf_index": 0, "event": obj})
    decoded = msgspec.json.decode(exported)["event"]
    assert leaf_bytes(decoded) == stored
    assert leaf_bytes(msgspec.json.encode(obj)) == stored


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


@pytest.mark.parametrize(
    "recorded_at",
    [
        datetime(2024, 5, 1, 8, 30, 0, 120000, tzinfo=UTC),
        datetime(2024, 5, 1, 8, 30, 0, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 8, 30, 0, 0, tzinfo=UTC),  # no fraction: msgspec would drop it
        datetime(2024, 5, 1, 15, 30, 0, 5, tzinfo=timezone(timedelta(hours=7))),
    ],
)
@pytest.mark.parametrize(
    ("data", "region"),
    [
        (b'{"title": "Dengar pendapat", "quorum": 1.50, "n": [1, 2e0]}', "35.71"),
        (rb'{"teks": "honorarium \u201cPPK\u201d \"kecil\"", "z": {}, "a": null}', None),
    ],
)
def test_stored_fast_path_gives_the_same_bytes(
    recorded_at: datetime, data: bytes, region: str | None
) -> None:
    """The tree builder's fast path encodes exactly what the checked path does."""
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
    assert stored_leaf_bytes(stored) == leaf_bytes(stored)
    # As an export line carries it (decoded JSON, the verifier's way): the timestamp is
    # exactly format_recorded_at's text, and the leaf is the same.
    line = msgspec.json.decode(msgspec.json.encode(stored))
    assert line["recorded_at"] == format_recorded_at(recorded_at)
    assert leaf_bytes(line) == stored_leaf_bytes(stored)


def test_position_override_changes_the_leaf() -> None:
    """The position is part of the leaf: the same event elsewhere in the log hashes differently."""
    obj = example()
    assert event_leaf_hash(obj, position=2) != event_leaf_hash(obj)
    assert event_leaf_hash(dict(obj, position=2)) == event_leaf_hash(obj, position=2)


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"position": "1"},
        {"version": 1.0},
        {"schema_version": True},
    ],
)
def test_wrong_shapes_are_refused(change: dict[str, object]) -> None:
    """An event object with other members or non-integer counters is not a leaf."""
    obj = msgspec.json.decode(msgspec.json.encode(example()))
    obj.update(change)
    with pytest.raises(LeafError):
        leaf_bytes(obj)


def test_absurd_numbers_are_refused() -> None:
    """A number PostgreSQL could never have stored is refused instead of expanded."""
    with pytest.raises(LeafError, match="range"):
        canonical_json("[1e999999999]")


WORKED_EXAMPLE_HASH = "3f6d0f4bcff59a90e352da6dee3c99644e93fa84d7141bf74cc4c39d65ff4058"
