"""Server-generated event ids: UUID version 7, time-ordered, random below the millisecond."""

from __future__ import annotations

import time
import uuid

from events.domain.ids import new_event_ids, with_event_ids


def test_ids_are_rfc_9562_version_7_with_the_current_millisecond() -> None:
    """Version 7, RFC variant, and the leading 48 bits are the time they were made."""
    before = time.time_ns() // 1_000_000
    ids = new_event_ids(50)
    after = time.time_ns() // 1_000_000
    assert len(ids) == 50
    for i in ids:
        assert i.version == 7
        assert i.variant == uuid.RFC_4122
        assert before <= i.int >> 80 <= after


def test_ids_are_unique_and_random_below_the_millisecond() -> None:
    """Ids of one call differ in their 74 random bits; nothing repeats across calls."""
    ids = new_event_ids(20_000) + new_event_ids(20_000)
    assert len(set(ids)) == len(ids)
    low = {i.int & ((1 << 62) - 1) for i in ids}
    assert len(low) == len(ids)
    # The 12 bits after the version are random too (not a counter stuck at zero).
    assert len({(i.int >> 64) & 0xFFF for i in ids}) > 1000


def test_later_ids_sort_after_earlier_ones() -> None:
    """Ids made in a later millisecond sort after (what keeps index inserts together)."""
    first = new_event_ids(10)
    time.sleep(0.002)
    second = new_event_ids(10)
    assert max(first) < min(second)
    assert max(str(i) for i in first) < min(str(i) for i in second)


def test_client_ids_are_kept_and_only_missing_ones_made() -> None:
    """Ids a client sent stay as they are, in place; the gaps get fresh version 7 ids."""
    mine = uuid.uuid4()
    filled = with_event_ids([None, mine, None])
    assert filled[1] is mine
    assert [i.version for i in (filled[0], filled[2])] == [7, 7]
    assert filled[0] != filled[2]
