"""What became of issues: the recommendations citing them, as their offices see them."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from coord.http import aggregates
from coord.keys import WRITES
from events.domain.recommendation import RecommendationState
from projections import recommendations


async def citing_follow_ups(
    request: web.Request, refs: list[recommendations.RecommendationRef]
) -> list[aggregates.CitingRecommendation]:
    """The recommendations `refs` with their responses, progress and outcome, each folded
    from its stream as `GET /v1/issues/{id}` does (the read model only says which)."""
    now = datetime.now(UTC)
    found = []
    for ref in refs:
        state = (await request.app[WRITES].load(f"recommendation-{ref.id}")).state
        if isinstance(state, RecommendationState):
            found.append(aggregates._citing(ref.id, state, now))
    return found
