"""Server-generated event ids: UUID version 7, time-ordered, random below the millisecond."""

from __future__ import annotations

import time
import uuid

from coord.writes import WritePath
from events.domain.ids import HOME_NAMESPACE, home_scoped, new_event_ids, with_event_ids
from events.domain.topology import Node


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


def test_home_scoped_ids_are_per_node_deterministic_and_never_server_ids() -> None:
    """A federated node stores a client's id scoped to itself: the same id at two nodes
    gives two ids, a retry at one node the same id, and no scoped id is a version 7
    (server-generated) id; an id scoped at one node and sent again at another is
    scoped again there, so a client cannot claim another node's stored id."""
    assert HOME_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "urn:coord:home-scoped")
    given = uuid.uuid4()
    jatim, jateng = home_scoped("jatim", given), home_scoped("jateng", given)
    assert jatim != jateng and jatim != given and jateng != given
    assert home_scoped("jatim", given) == jatim
    assert jatim == uuid.uuid5(HOME_NAMESPACE, f"jatim\n{given}")
    assert jatim.version == 5 and jatim.variant == uuid.RFC_4122
    assert home_scoped("jateng", jatim) not in (jatim, jateng)
    server = new_event_ids(1)[0]
    assert home_scoped("jatim", server) != server


def test_the_write_path_scopes_client_ids_only_on_federated_nodes() -> None:
    """Standalone keeps a client's id; a regional node and the hub scope it to themselves;
    an event without an id gets a fresh server id everywhere."""
    given = uuid.uuid4()
    for node, want in (
        (Node(node_id="local", mode="standalone"), given),
        (Node(node_id="jatim", mode="regional", regions=("35",)), home_scoped("jatim", given)),
        (Node(node_id="hub", mode="hub"), home_scoped("hub", given)),
    ):
        path = WritePath(None, None, node=node)  # type: ignore[arg-type]
        assert path.stored_id(given) == want
        assert path.stored_id(None) is None
