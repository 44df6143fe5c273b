"""Federation rules an operator meets before any replication: the worker limits add-region
checks, overlapping region lists, and derived ids scoped by their home node (issue 17)."""

from __future__ import annotations

import pytest

from coord.federation import overlaps, worker_shortfalls
from events.domain.topology import Node

DEFAULTS = {
    "max_logical_replication_workers": 4,
    "max_worker_processes": 8,
    "max_active_replication_origins": 10,
    "max_replication_slots": 10,
    "max_wal_senders": 10,
}


def test_postgresql_defaults_carry_three_regions_at_the_hub_and_refuse_a_fourth() -> None:
    """Each incoming link holds an apply worker, and a new one needs a sync worker too."""
    assert worker_shortfalls(DEFAULTS, incoming=3, outgoing=3) == []
    short = worker_shortfalls(DEFAULTS, incoming=4, outgoing=4)
    assert len(short) == 1
    assert short[0].startswith("max_logical_replication_workers = 4, needs at least 5")


# docs/deploy.md (section 3, limits): a hub with n regions, and a region.
def documented_hub(n: int) -> dict[str, int]:
    return {
        "max_logical_replication_workers": n + 1,
        "max_worker_processes": n + 2,
        "max_active_replication_origins": n + 1,
        "max_replication_slots": n + 2,
        "max_wal_senders": n + 2,
    }


DOCUMENTED_REGION = {
    "max_logical_replication_workers": 2,
    "max_worker_processes": 3,
    "max_active_replication_origins": 2,
    "max_replication_slots": 3,
    "max_wal_senders": 3,
}


@pytest.mark.parametrize(("settings", "links"), [(documented_hub(5), 5), (DOCUMENTED_REGION, 1)])
def test_the_documented_limits_are_exactly_what_add_region_asks(
    settings: dict[str, int], links: int
) -> None:
    """Enough as documented; one less of any setting is refused, naming it. A publisher
    needs a slot and a WAL sender per table-sync worker of a peer's copy (2 at once)."""
    assert worker_shortfalls(settings, incoming=links, outgoing=links) == []
    for name, value in settings.items():
        short = worker_shortfalls({**settings, name: value - 1}, incoming=links, outgoing=links)
        assert [s.split(" = ")[0] for s in short] == [name]
        assert f"needs at least {value}" in short[0]


@pytest.mark.parametrize(
    ("setting", "value", "incoming", "outgoing"),
    [
        ("max_worker_processes", 5, 4, 0),
        ("max_active_replication_origins", 2, 2, 0),
        ("max_replication_slots", 2, 0, 2),
        ("max_wal_senders", 3, 0, 3),
    ],
)
def test_each_limit_is_named_with_what_it_needs(
    setting: str, value: int, incoming: int, outgoing: int
) -> None:
    short = worker_shortfalls(
        {**DEFAULTS, "max_logical_replication_workers": 20, setting: value},
        incoming=incoming,
        outgoing=outgoing,
    )
    assert [s.split(" = ")[0] for s in short] == [setting]


def test_a_setting_the_server_does_not_have_is_not_required() -> None:
    """PostgreSQL before 18 has no max_active_replication_origins."""
    settings = {k: v for k, v in DEFAULTS.items() if k != "max_active_replication_origins"}
    assert worker_shortfalls(settings, incoming=3, outgoing=3) == []


@pytest.mark.parametrize(
    ("mine", "theirs", "clash"),
    [
        (("35",), ("35.71",), True),  # a province overlaps its regency
        (("35.71",), ("35",), True),
        (("33.74", "35.78"), ("35.78",), True),
        (("35",), ("33",), False),
        (("35.71",), ("35.78",), False),
    ],
)
def test_overlapping_region_lists_are_refused(
    mine: tuple[str, ...], theirs: tuple[str, ...], clash: bool
) -> None:
    node = Node(node_id="a", mode="regional", regions=mine)
    others = [
        Node(node_id="hub", mode="hub"),
        Node(node_id="b", mode="regional", regions=theirs),
        node,  # itself, as the directory lists it too
    ]
    found = overlaps(node, others)
    assert (found is not None) == clash
    if clash:
        assert found is not None and "node 'b'" in found
