"""Which node is home for a stream: the federation's write rule, without a database."""

from __future__ import annotations

import pytest

from coord.config import Config, parse_regions
from events.domain.regions import covers as serves
from events.domain.topology import Node, accepts, home_of, is_home

HUB = Node(node_id="hub", mode="hub")
JATIM = Node(node_id="jatim", mode="regional", regions=("35",))
KEDIRI = Node(node_id="kediri", mode="regional", regions=("35.71",))
JATENG = Node(node_id="jateng", mode="regional", regions=("33.74", "33.72"))
LOCAL = Node(node_id="local", mode="standalone")


def test_a_province_serves_its_regencies_and_nothing_that_merely_shares_a_prefix() -> None:
    assert serves(["35"], "35") and serves(["35"], "35.71") and serves(["35"], "35.71.01")
    assert not serves(["35"], "36.01") and not serves(["3"], "35.71")
    assert not serves(["35.7"], "35.71")  # 35.7 is not a prefix code of 35.71
    assert serves(["33.74", "33.72"], "33.72") and not serves(["33.74"], "33")


@pytest.mark.parametrize(
    ("node", "category", "region", "ok"),
    [
        (LOCAL, "hearing", "35.71", True),
        (LOCAL, "recommendation", None, True),
        (JATIM, "hearing", "35.71", True),
        (JATIM, "issue", "35.78", True),
        (JATIM, "hearing", "33.74", False),
        (JATIM, "recommendation", None, False),
        (JATIM, "access", None, False),
        (JATIM, "hearing", None, True),  # unborn: the domain rules refuse it (409)
        (HUB, "recommendation", None, True),
        (HUB, "access", None, True),
        (HUB, "hearing", "35.71", False),
        (HUB, "issue", "33.74", False),
    ],
)
def test_accepts(node: Node, category: str, region: str | None, ok: bool) -> None:
    assert accepts(node, category, region) is ok


def test_home_of_names_the_hub_for_national_streams_and_the_most_specific_region() -> None:
    directory = [HUB, JATIM, KEDIRI, JATENG]
    assert home_of("recommendation", None, directory) == HUB
    assert home_of("access", None, directory) == HUB
    assert home_of("hearing", "35.71", directory) == KEDIRI
    assert home_of("hearing", "35.78", directory) == JATIM
    assert home_of("issue", "33.72", directory) == JATENG
    assert home_of("issue", "32.01", directory) == HUB  # served by no region: the hub's
    assert home_of("issue", "32.01", [JATIM]) is None  # a directory without a hub
    assert home_of("hearing", None, directory) is None
    assert home_of("recommendation", None, [JATIM]) is None


@pytest.mark.parametrize(
    ("node", "category", "region", "ok"),
    [
        (HUB, "hearing", "32.01", True),  # no regional node serves 32: the hub is home
        (HUB, "issue", "35.71", False),
        (HUB, "hearing", "33.74", False),
        (HUB, "recommendation", None, True),
        (HUB, "hearing", None, False),
        (JATIM, "hearing", "32.01", False),
        (JATIM, "hearing", "35.78", True),
    ],
)
def test_is_home_agrees_with_the_node_home_of_names(
    node: Node, category: str, region: str | None, ok: bool
) -> None:
    """The node a 421 names is the one that accepts: never a node that refuses too."""
    directory = [HUB, JATIM, JATENG]
    assert is_home(node, category, region, directory) is ok
    home = home_of(category, region, directory)
    if ok:
        assert home == node
    elif home is not None:
        assert is_home(home, category, region, directory)


def test_config_reads_the_federation_settings() -> None:
    config = Config.from_env(
        {"COORD_NODE_ID": "jatim", "COORD_MODE": "regional", "COORD_REGIONS": "35, 36.01,"}
    )
    assert (config.node_id, config.mode, config.regions) == ("jatim", "regional", ("35", "36.01"))
    assert Config.from_env({}).mode is None  # None: what the database recorded
    assert parse_regions(" 35 ,") == ("35",)
    with pytest.raises(ValueError, match="COORD_MODE"):
        Config.from_env({"COORD_MODE": "leader"})
