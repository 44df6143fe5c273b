"""One entry point over the aggregates, for the HTTP handlers.

A handler reads the stream, folds it, asks :func:`references` which other streams the
new event points at, folds those into a :class:`~events.domain.context.DecideContext`,
calls :func:`decide`, then appends. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias, TypeVar, cast

from events.domain import access, cluster, hearing, issue, recommendation
from events.domain.access import AccessState
from events.domain.cluster import ClusterState
from events.domain.context import DecideContext
from events.domain.recommendation import RecommendationState
from events.domain.states import HearingState, IssueState
from events.domain.streams import entity_id_of
from events.domain.types import (
    AccessEvent,
    AnyEvent,
    ClusterEvent,
    HearingEvent,
    IssueEvent,
    IssueRaised,
    IssueReassigned,
    IssuesCited,
    RecommendationDrafted,
    RecommendationEvent,
    stream_category,
    stream_id,
    type_name,
)

_S = TypeVar("_S")

AnyState: TypeAlias = HearingState | IssueState | RecommendationState | AccessState | ClusterState


def references(event: AnyEvent) -> list[str]:
    """Stream ids of the other streams ``decide`` needs to judge ``event``."""
    match event:
        case IssueRaised(hearing_id=hearing_id) if hearing_id is not None:
            return [stream_id("hearing", hearing_id)]
        case (
            RecommendationDrafted(issue_ids=ids)
            | IssuesCited(issue_ids=ids)
            | IssueReassigned(issue_ids=ids)
        ):
            return list(dict.fromkeys(stream_id("issue", i) for i in ids))
        case _:
            return []


def evolve(state: AnyState | None, event: AnyEvent) -> AnyState:
    """Apply ``event`` with its aggregate's ``evolve``."""
    category = stream_category(type_name(event))
    # The casts are safe: the category fixes both the event's and the state's type.
    if category == "hearing":
        return hearing.evolve(_state(state, HearingState), cast(HearingEvent, event))
    if category == "issue":
        return issue.evolve(_state(state, IssueState), cast(IssueEvent, event))
    if category == "recommendation":
        return recommendation.evolve(
            _state(state, RecommendationState), cast(RecommendationEvent, event)
        )
    if category == "cluster":
        return cluster.evolve(_state(state, ClusterState), cast(ClusterEvent, event))
    return access.evolve(_state(state, AccessState), cast(AccessEvent, event))


def fold(events: Iterable[AnyEvent]) -> AnyState | None:
    """The state of one stream after ``events`` (None for an empty stream)."""
    state: AnyState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def decide(
    state: AnyState | None, event: AnyEvent, ctx: DecideContext, stream: str | None = None
) -> None:
    """Raise a :class:`~events.domain.rules.DomainError` if ``event`` may not follow ``state``.

    ``stream`` is the stream's id (a cluster's decisions name other clusters).
    """
    category = stream_category(type_name(event))
    if category == "hearing":
        hearing.decide(_state(state, HearingState), cast(HearingEvent, event), ctx)
    elif category == "issue":
        issue.decide(_state(state, IssueState), cast(IssueEvent, event), ctx)
    elif category == "recommendation":
        recommendation.decide(
            _state(state, RecommendationState), cast(RecommendationEvent, event), ctx
        )
    elif category == "cluster":
        own = entity_id_of(stream) if stream is not None else None
        cluster.decide(_state(state, ClusterState), cast(ClusterEvent, event), ctx, own)
    else:
        access.decide(_state(state, AccessState), cast(AccessEvent, event), ctx)


def region_of(state: AnyState) -> str | None:
    """The region an aggregate belongs to, for access control; None means national."""
    if isinstance(state, HearingState):
        return hearing.region_of(state)
    if isinstance(state, IssueState):
        return issue.region_of(state)
    return None


def _state(state: AnyState | None, kind: type[_S]) -> _S | None:
    if state is not None and not isinstance(state, kind):
        # A handler folded one stream and appended to another: a bug, not a client error.
        raise TypeError(f"expected {kind.__name__}, got {type(state).__name__}")
    return state
