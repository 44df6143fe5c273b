"""Current (or as-of) state of one hearing, issue or recommendation, folded from its stream.

The loop back to the regional office (issue 15): a current read of an issue carries what
became of it (the recommendations citing it, folded from their streams: status, answers,
progress, outcome), and a regional token may read a recommendation that cites an issue of
its regions, reduced to what concerns the region (no body, no other regions' issues).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from coord.apidoc import AllOf, IdPath, documented
from coord.auth import Principal, principal_of
from coord.http.params import int_param
from coord.http.projections import POSITION_HEADER, min_position, snapshot
from coord.http.streams import json_response
from coord.keys import WRITES
from coord.problems import invalid, not_found
from coord.writes import Loaded, WritePath
from events.domain.accountability import final_outcome, is_overdue
from events.domain.follow_up import FollowUp, follow_up
from events.domain.ids import parse_canonical_uuid
from events.domain.recommendation import Progress, RecommendationState, Response
from events.domain.states import HearingState, IssueState
from projections import recommendations as recommendations_model

routes = web.RouteTableDef()


def _as_of(request: web.Request) -> datetime | None:
    raw = request.query.get("as_of")
    if not raw:
        return None
    try:
        value = msgspec.convert(raw, datetime, strict=False)
    except msgspec.ValidationError:
        raise invalid("as_of must be an RFC 3339 time with a timezone", "query.as_of") from None
    if value.tzinfo is None:
        raise invalid("as_of must carry a timezone (e.g. Z or +07:00)", "query.as_of")
    return value


class CitingRecommendation(msgspec.Struct, kw_only=True):
    """A recommendation as its cited issues' offices see it: what became of their issue."""

    id: str
    title: str
    status: str
    submitted_at: datetime | None = None
    response_due_at: datetime | None = None
    #: submitted, unanswered, open and past its due date (at the time of the read)
    overdue: bool = False
    responses: list[Response] = msgspec.field(default_factory=list)
    progress: list[Progress] = msgspec.field(default_factory=list)
    progress_percent: int | None = None
    #: accepted, partly_accepted, rejected, no_response
    response_outcome: str | None = None


class IssueFollowUp(msgspec.Struct, kw_only=True):
    """What a current read of an issue adds.

    A read ``as_of`` a version leaves these fields out (they describe now, not then), so
    the document marks none of them required; a current read always has them all.
    """

    #: the recommendations citing it now
    recommendation_ids: list[str] = msgspec.field(default_factory=list)
    #: open, cited_in_draft, recommended, answered, closed, withdrawn
    follow_up: FollowUp = "open"
    #: the most favourable outcome among them (null while none has one)
    final_outcome: str | None = None
    recommendations: list[CitingRecommendation] = msgspec.field(default_factory=list)


class RegionalRecommendation(CitingRecommendation, kw_only=True):
    """A recommendation as a regional token reads it: only its own regions' cited issues."""

    version: int
    issue_ids: list[str]


def _citing(rec_id: str, state: RecommendationState, now: datetime) -> CitingRecommendation:
    return CitingRecommendation(
        id=rec_id,
        title=state.title,
        status=state.status,
        submitted_at=state.submitted_at,
        response_due_at=state.response_due_at,
        overdue=is_overdue(state.status, state.response_due_at, bool(state.responses), now),
        responses=list(state.responses),
        progress=list(state.progress),
        progress_percent=state.progress_percent,
        response_outcome=state.response_outcome,
    )


async def _follow_up(
    request: web.Request, issue_id: str, state: IssueState
) -> tuple[IssueFollowUp, int]:
    """The recommendations citing the issue (their ids from the read model, their state
    folded from their streams) and the position the read model stood at."""
    writes: WritePath = request.app[WRITES]
    async with snapshot(request, recommendations_model.NAME) as snap:
        refs = await recommendations_model.citing(snap.conn, [issue_id])
        position = snap.position
    now = datetime.now(UTC)
    found: list[CitingRecommendation] = []
    for ref in refs:
        rec = (await writes.load(f"recommendation-{ref.id}")).state
        # The read model may be ahead of or behind the stream: the stream decides.
        if isinstance(rec, RecommendationState) and any(str(i) == issue_id for i in rec.issue_ids):
            found.append(_citing(ref.id, rec, now))
    body = IssueFollowUp(
        recommendation_ids=[r.id for r in found],
        follow_up=follow_up(state.status == "withdrawn", (r.status for r in found)),
        final_outcome=final_outcome(r.response_outcome for r in found),
        recommendations=found,
    )
    return body, position


async def _regional_recommendation(
    writes: WritePath, principal: Principal, loaded: Loaded
) -> RegionalRecommendation | None:
    """The reduced recommendation if it cites an issue of the token's regions, else None."""
    state = loaded.state
    assert isinstance(state, RecommendationState)
    own = [str(i) for i in state.issue_ids if await writes.may_read(principal, f"issue-{i}")]
    if not own:
        return None
    citing = _citing(loaded.stream_id.partition("-")[2], state, datetime.now(UTC))
    return RegionalRecommendation(
        **msgspec.structs.asdict(citing), version=loaded.version, issue_ids=own
    )


async def _aggregate(request: web.Request, category: str) -> web.Response:
    # One spelling per entity (as in its stream id): an alias must not reach another stream.
    entity_id = parse_canonical_uuid(request.match_info["id"])
    if entity_id is None:
        raise invalid(f"{category} id must be a UUID in lowercase canonical form", "path.id")
    as_of = _as_of(request)
    as_of_version = int_param(request, "as_of_version", 0, minimum=1) or None
    # Only a current issue read waits on a read model, but a bad value is refused on
    # every read (what the document forbids is never silently ignored).
    min_position(request)
    loaded = await request.app[WRITES].load(
        f"{category}-{entity_id}", as_of=as_of, as_of_version=as_of_version
    )
    principal = principal_of(request)
    missing = f"no {category} {entity_id}" + (" at that time" if as_of else "")
    if (
        category == "recommendation"
        and principal.role == "regional"
        and isinstance(loaded.state, RecommendationState)
    ):
        reduced = await _regional_recommendation(request.app[WRITES], principal, loaded)
        if reduced is None:
            raise not_found(missing)
        return json_response(msgspec.to_builtins(reduced))
    # Another region's object is answered exactly as a missing one (at any `as_of`), so
    # neither its existence nor its creation time can be probed.
    if loaded.state is None or (
        principal.role == "regional" and not principal.covers(loaded.region_code)
    ):
        raise not_found(missing)
    body: dict[str, Any] = {"id": str(entity_id), "version": loaded.version}
    body.update(msgspec.to_builtins(loaded.state))
    if loaded.events:
        body["updated_at"] = loaded.events[-1].recorded_at.isoformat()
    headers: dict[str, str] = {}
    if isinstance(loaded.state, IssueState) and as_of is None and as_of_version is None:
        extra, position = await _follow_up(request, str(entity_id), loaded.state)
        body.update(msgspec.to_builtins(extra))
        headers[POSITION_HEADER] = str(position)
    response = json_response(body)
    response.headers.update(headers)
    return response


class AggregateHeader(msgspec.Struct, kw_only=True):
    """Members every aggregate read adds to the folded state."""

    id: uuid.UUID
    version: int
    updated_at: datetime | None = None


class AsOfQuery(msgspec.Struct, kw_only=True):
    """State as it was at a time or after a version."""

    as_of: datetime | None = None
    as_of_version: Annotated[int, msgspec.Meta(ge=1)] | None = None


class IssueReadQuery(AsOfQuery, kw_only=True):
    """`GET /v1/issues/{id}`: a current read also waits for `min_position` (the follow-up)."""

    min_position: Annotated[int, msgspec.Meta(ge=0)] | None = None


@routes.get("/v1/hearings/{id:[^/]+}")
@documented(
    path=IdPath,
    query=AsOfQuery,
    responses={200: AllOf((AggregateHeader, HearingState))},
    errors=(404,),
    tags=("aggregates",),
)
async def get_hearing(request: web.Request) -> web.Response:
    """A hearing's state; `?as_of=<time>` or `?as_of_version=N` for an earlier one."""
    return await _aggregate(request, "hearing")


@routes.get("/v1/issues/{id:[^/]+}")
@documented(
    path=IdPath,
    query=IssueReadQuery,
    # A current read adds what became of the issue (left out of as-of reads).
    responses={200: AllOf((AggregateHeader, IssueState, IssueFollowUp))},
    errors=(404,),
    tags=("aggregates",),
)
async def get_issue(request: web.Request) -> web.Response:
    """An issue's state; `?as_of=<time>` or `?as_of_version=N` for an earlier one."""
    return await _aggregate(request, "issue")


@routes.get("/v1/recommendations/{id:[^/]+}")
@documented(
    path=IdPath,
    query=AsOfQuery,
    responses={200: AllOf((AggregateHeader, RecommendationState))},
    summary=(
        "A recommendation's state. National roles get all of it; a regional token only "
        "a recommendation citing an issue of its regions (else 404), and only the members "
        "of RegionalRecommendation: title, status, due date, answers, progress, outcome "
        "and its own regions' issue_ids."
    ),
    errors=(404,),
    tags=("aggregates",),
)
async def get_recommendation(request: web.Request) -> web.Response:
    """A recommendation's state; `?as_of=<time>` or `?as_of_version=N` for an earlier one."""
    return await _aggregate(request, "recommendation")
