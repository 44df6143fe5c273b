"""The analysts' decisions about a recurring problem (stream ``cluster-<uuid>``).

The grouping of issues into recurring problems is computed by the ``issue_board``
projection (``projections/grouping.py``); its cluster ids are the uuids of these streams.
National staff overrule it with events on the cluster's stream: ``ClusterNamed`` (its
label), ``ClustersMerged`` (other clusters' issues join this one) and ``IssueReassigned``
(issues move into this cluster; a uuid no cluster has yet splits them off into a new
one). The stream has no creation event: the first decision opens it. Whether the
clusters named exist is a fact of the projection, not of the log, so a merge of a
cluster that has no open issue changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.domain.rules import InvalidRequest, RuleViolation, field_path
from events.domain.types import ClusterEvent, ClusterNamed, ClustersMerged, IssueReassigned

if TYPE_CHECKING:
    from events.domain.context import DecideContext


class ClusterState(msgspec.Struct, frozen=True, kw_only=True):
    """What the analysts decided about one cluster."""

    name: str | None = None
    merged: tuple[UUID, ...] = ()
    reassigned: tuple[UUID, ...] = ()


def evolve(state: ClusterState | None, event: ClusterEvent) -> ClusterState:
    """Apply one already-accepted event. Pure; trusts that ``decide`` allowed it."""
    state = state or ClusterState()
    match event:
        case ClusterNamed(name=name):
            return replace(state, name=name)
        case ClustersMerged(cluster_ids=ids):
            return replace(state, merged=tuple(dict.fromkeys((*state.merged, *ids))))
        case IssueReassigned(issue_ids=ids):
            return replace(state, reassigned=tuple(dict.fromkeys((*state.reassigned, *ids))))
        case _:
            assert_never(event)


def decide(
    state: ClusterState | None, event: ClusterEvent, ctx: DecideContext, cluster: UUID | None
) -> None:
    """Raise a DomainError if ``event`` may not be appended to the stream of ``cluster``.

    National roles only reach these streams (``coord/writes.py``): no role check here.
    """
    match event:
        case ClusterNamed(name=name):
            if state is not None and state.name == name:
                raise RuleViolation("cluster.name_unchanged", "the cluster already has this name")
        case ClustersMerged(cluster_ids=ids):
            seen: set[UUID] = set()
            for n, other in enumerate(ids):
                path = field_path("cluster_ids", n)
                if other == cluster:
                    raise InvalidRequest(
                        "cluster.merge_self", "a cluster is not merged into itself", path
                    )
                if other in seen:
                    raise InvalidRequest(
                        "cluster.duplicate", f"cluster {other} is listed twice", path
                    )
                seen.add(other)
        case IssueReassigned(issue_ids=ids):
            listed: set[UUID] = set()
            for n, issue_id in enumerate(ids):
                path = field_path("issue_ids", n)
                if issue_id in listed:
                    raise InvalidRequest(
                        "cluster.issue_duplicate", f"issue {issue_id} is listed twice", path
                    )
                listed.add(issue_id)
                issue = ctx.issues.get(issue_id)
                if issue is None:
                    raise InvalidRequest("cluster.issue_unknown", f"no issue {issue_id}", path)
                if issue.status == "withdrawn":
                    raise RuleViolation(
                        "cluster.issue_withdrawn", f"issue {issue_id} was withdrawn"
                    )
        case _:
            assert_never(event)


def region_of(state: ClusterState) -> None:
    """Recurring problems are national: only national roles reach their streams."""
    return None
