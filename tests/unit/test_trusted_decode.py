"""Read models decode stored payloads into unconstrained twins of the event types."""

from __future__ import annotations

import json

import msgspec
import pytest

from events.domain.types import (
    EVENT_TYPES,
    HearingScheduled,
    StatementRecorded,
    decode_new,
    decode_stored,
    decode_trusted,
    encode,
    trusted_type,
)
from tests.unit.test_types import HEARING_SCHEDULED, VALID, dumps, with_


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_trusted_decode_reads_what_was_stored(name: str) -> None:
    """Same fields, same encoding, same name; `isinstance` and `match` see the real type."""
    stored = encode(decode_new(name, dumps(VALID[name])))
    event = decode_trusted(name, 1, stored)
    assert isinstance(event, EVENT_TYPES[name]) and type(event) is not EVENT_TYPES[name]
    assert type(event).__name__ == name
    assert encode(event) == stored
    assert msgspec.to_builtins(event) == msgspec.to_builtins(decode_stored(name, 1, stored))


def test_trusted_decode_skips_the_write_time_constraints() -> None:
    """A blank text passed nowhere at write time; read back, it is not re-validated."""
    blank = with_(HEARING_SCHEDULED, venue=" ")
    with pytest.raises(msgspec.ValidationError):
        decode_new("HearingScheduled", dumps(blank))
    event = decode_trusted("HearingScheduled", 1, dumps(blank))
    assert isinstance(event, HearingScheduled) and event.venue == " "
    match decode_trusted("StatementRecorded", 1, dumps(VALID["StatementRecorded"])):
        case StatementRecorded(speaker=speaker):
            assert speaker == VALID["StatementRecorded"]["speaker"]
        case _:
            pytest.fail("a twin must match its real type")


def test_unknown_fields_and_old_versions_take_the_lenient_path() -> None:
    grown = dumps(with_(HEARING_SCHEDULED, livestream_url="https://youtube.com/x"))
    event = decode_trusted("HearingScheduled", 1, grown)
    assert type(event) is HearingScheduled  # decode_stored's result, unknown field dropped
    assert json.loads(encode(event)) == HEARING_SCHEDULED
    assert trusted_type(HearingScheduled) is trusted_type(HearingScheduled)  # built once
