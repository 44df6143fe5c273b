"""What became of an issue: its status as the recommendations citing it move on.

The loop back to the regional office: an issue is ``open`` until a recommendation cites
it, ``cited_in_draft`` while the most advanced citing one is a draft (or approved, not
yet sent), ``recommended`` once one was submitted, ``answered`` once the addressee
answered, ``closed`` once one was closed; ``withdrawn`` whatever cites it. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

FollowUp = Literal["open", "cited_in_draft", "recommended", "answered", "closed", "withdrawn"]
FOLLOW_UPS: Final[tuple[FollowUp, ...]] = (
    "open",
    "cited_in_draft",
    "recommended",
    "answered",
    "closed",
    "withdrawn",
)

#: recommendation status -> the issue's follow-up status it gives
_BY_RECOMMENDATION: Final[dict[str, FollowUp]] = {
    "draft": "cited_in_draft",
    "approved": "cited_in_draft",
    "submitted": "recommended",
    "responded": "answered",
    "closed": "closed",
}
_ORDER: Final[dict[FollowUp, int]] = {f: i for i, f in enumerate(FOLLOW_UPS)}


def follow_up(withdrawn: bool, recommendation_statuses: Iterable[str]) -> FollowUp:
    """The issue's follow-up status: the most advanced among the recommendations citing it."""
    if withdrawn:
        return "withdrawn"
    best: FollowUp = "open"
    for status in recommendation_statuses:
        step = _BY_RECOMMENDATION.get(status)
        if step is not None and _ORDER[step] > _ORDER[best]:
            best = step
    return best
