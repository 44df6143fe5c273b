"""Which node is home for a stream: the federation's write rule, pure and I/O-free.

A federation is one hub and regional nodes (issue 7). A *regional* node is home
for streams of the regions it serves (a province such as `35`, or regencies such
as `35.71`); the *hub* is home for national streams (recommendations and the
`access-tokens` stream) and for the streams of regions no regional node serves
(issue 17: otherwise nobody could write them). A node accepts a write only for
streams homed on it; a *standalone* node (the default) is home for everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import msgspec

from events.domain.regions import covers

Mode = Literal["standalone", "regional", "hub"]
MODES: Final[tuple[Mode, ...]] = ("standalone", "regional", "hub")

# Streams that belong to the whole country, not to one region (cluster: analysts' decisions
# on recurring problems).
NATIONAL_CATEGORIES: Final = frozenset({"recommendation", "access", "cluster"})


class Node(msgspec.Struct, frozen=True, kw_only=True):
    """One coord node: its id, its role and (regional) the regions it serves."""

    node_id: str
    mode: Mode
    regions: tuple[str, ...] = ()


def is_national(category: str) -> bool:
    """Is a stream of this category national (homed at the hub)?"""
    return category in NATIONAL_CATEGORIES


def accepts(node: Node, category: str, region_code: str | None) -> bool:
    """May `node` write a stream of `category` in `region_code`?

    A regional stream whose region is not known yet (a new stream without its
    creation event) is accepted here: the domain rules refuse it anyway.
    """
    if node.mode == "standalone":
        return True
    if is_national(category):
        return node.mode == "hub"
    if node.mode == "hub":
        return False
    return region_code is None or covers(node.regions, region_code)


def home_of(category: str, region_code: str | None, directory: Sequence[Node]) -> Node | None:
    """The node in `directory` that is home for such a stream, if the directory knows one.

    The most specific region wins: a node serving `35.71` beats one serving `35`.
    A region no regional node serves is homed at the hub.
    """
    hub = next((n for n in directory if n.mode == "hub"), None)
    if is_national(category):
        return hub
    if region_code is None:
        return None
    best: tuple[int, Node] | None = None
    for node in directory:
        if node.mode != "regional":
            continue
        for r in node.regions:
            if covers([r], region_code) and (best is None or len(r) > best[0]):
                best = (len(r), node)
    return best[1] if best else hub


def is_home(node: Node, category: str, region_code: str | None, directory: Sequence[Node]) -> bool:
    """`accepts`, with the directory: the hub also takes regions no regional node serves.

    Exactly the node `home_of` names accepts, so a 421 never points at a node that
    would refuse the write too.
    """
    if accepts(node, category, region_code):
        return True
    if node.mode != "hub" or region_code is None:
        return False
    home = home_of(category, region_code, directory)
    return home is not None and home.node_id == node.node_id
