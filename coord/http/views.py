"""The national views over HTTP: thin handlers over the projections' own queries.

Every view filters by the caller's access (a regional token sees its regions only), can
wait for ``min_position`` (read your writes) and answers with ``X-Projection-Position``.

Each view is declared once, by :func:`_view`: its query Struct is both what the OpenAPI
document shows and what the handler receives (parsed by
:func:`coord.http.params.parse_query`), and its ``roles`` are both documented and checked.
What needs more than types (local-day dates in :func:`_bounds`, cursors, region codes)
stays a validator on the parsed values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

import asyncpg
import msgspec
from aiohttp import web

from coord.apidoc import Body, IdPath, RegionPath, documented
from coord.auth import Role, forbidden, principal_of
from coord.http import exports as exports_module
from coord.http.exports import export_format, one_page, stream_items
from coord.http.params import MAX_QUERY_INT, parse_query
from coord.http.projections import (
    VIEW_HEADERS,
    VIEW_RESPONSE_HEADERS,
    Snapshot,
    ViewQuery,
    snapshot,
    view_response,
)
from coord.keys import SEARCH_HINTS
from coord.problems import invalid, not_found
from events.domain.categories import CategoryCode
from events.domain.ids import CanonicalUUID, parse_canonical_uuid
from events.domain.regions import load_regions
from projections import activity as activity_model
from projections import hearings as hearings_model
from projections import issue_board, recommendations, search, search_terms
from projections.base import BadCursor
from projections.issue_board import IssueFilters
from projections.issue_text import Vocabulary

routes = web.RouteTableDef()


# --- wire shapes: every list view is `{"items": [...], "next_cursor": <opaque> | null}` -----


T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """A page of a list view; pass `next_cursor` back as `cursor`, null at the end."""

    items: list[T]
    next_cursor: str | None


IssuePage = Page[issue_board.IssueItem]
UncoveredPage = Page[issue_board.UncoveredItem]
RecommendationPage = Page[recommendations.RecommendationItem]
HearingPage = Page[hearings_model.HearingItem]
ActivityPage = Page[activity_model.ActivityItem]


@contextlib.contextmanager
def _cursor_errors() -> Iterator[None]:
    """A cursor that does not decode is the client's error: 422 on `cursor`."""
    try:
        yield
    except BadCursor as e:
        raise invalid(str(e), "query.cursor") from None
    except (RecursionError, asyncpg.exceptions._base.DataError, asyncpg.DataError):
        # A crafted cursor decodes, but its values do not fit the query's parameters.
        raise invalid("cursor is not valid", "query.cursor") from None


# --- query parameters: the document shows these Structs, `_view` parses each request into one

Names = Annotated[
    list[str], msgspec.Meta(description="Repeat the parameter or separate values by commas.")
]
TimeParam = Annotated[
    str,
    msgspec.Meta(
        description=(
            "An RFC 3339 time with offset (an instant), or a date: a whole day in the zone"
            " of each item's region (WIB, WITA or WIT; national records: WIB)."
        ),
        examples=["2024-02-14", "2024-02-14T09:00:00+07:00"],
    ),
]
Cursor = Annotated[str, msgspec.Meta(description="`next_cursor` of the previous page.")]
Similarity = Annotated[
    float,
    msgspec.Meta(
        ge=0.05,
        le=1.0,
        description="Deprecated, accepted for compatibility and ignored (still validated: "
        "0.05-1). Recurring problems are grouped as issues arrive, with the grouping's own "
        "defaults (average linkage at 0.11; see the README), not per request, so no query "
        "changes which issues share a cluster.",
        extra_json_schema={"deprecated": True},
    ),
]


_ListNote = msgspec.Meta(description="Repeat the parameter or separate values by commas.")
# ASCII digits ([0-9], not \d: Python's \d also matches other scripts' digits).
_PROVINCE = re.compile(r"[0-9]{2}")
_REGION = re.compile(r"[0-9]{2}(\.[0-9]{2})?")
ProvinceCodes = Annotated[
    list[Annotated[str, msgspec.Meta(pattern=f"^{_PROVINCE.pattern}$")]], _ListNote
]
RegionCodes = Annotated[
    list[Annotated[str, msgspec.Meta(pattern=f"^{_REGION.pattern}$")]], _ListNote
]
Categories = Annotated[list[CategoryCode], _ListNote]
IssueStatuses = Annotated[list[Literal["open", "addressed", "withdrawn"]], _ListNote]
HearingStatus = Literal["scheduled", "held", "cancelled"]
#: the console's calendar form offers these
_HEARING_STATUSES = frozenset(get_args(HearingStatus))
HearingStatuses = Annotated[list[HearingStatus], _ListNote]
RecommendationStatuses = Annotated[
    list[Literal["draft", "approved", "submitted", "responded", "closed"]], _ListNote
]
SearchKinds = Annotated[list[Literal["issue", "statement", "recommendation"]], _ListNote]


ExportFormat = Annotated[
    Literal["json", "csv", "jsonl"],
    msgspec.Meta(
        description="csv or jsonl: every matching item (all pages, from `cursor` if "
        "given; `limit` is ignored), streamed. Wins over the Accept header."
    ),
]


class ExportQuery(ViewQuery, kw_only=True):
    """A view that also answers as CSV or JSON Lines (``Accept`` does the same)."""

    format: ExportFormat | None = None


class IssueFilterQuery(ExportQuery, kw_only=True):
    """Filters of the issue board and its summary."""

    category: Categories | None = None
    province: ProvinceCodes | None = None
    region: RegionCodes | None = None
    raised_by: Names | None = None
    status: IssueStatuses | None = None
    severity_min: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    severity_max: Annotated[int, msgspec.Meta(ge=1, le=5)] = 5
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: TimeParam | None = None
    hearing: CanonicalUUID | None = None


class IssueSummaryQuery(IssueFilterQuery, kw_only=True):
    """Query of ``GET /v1/views/issues/summary``."""

    #: count withdrawn issues too (with no `status` filter they are left out)
    include_withdrawn: bool = False


class IssueBoardQuery(IssueFilterQuery, kw_only=True):
    """Query of ``GET /v1/views/issues``."""

    sort: Literal["recent", "severity"] = "recent"
    cursor: Cursor | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


class RecurringQuery(ExportQuery, kw_only=True):
    """Query of ``GET /v1/views/issues/recurring``."""

    category: Categories | None = None
    similarity: Similarity = 0.4
    min_regions: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_INT)] = 2
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


class UncoveredQuery(ExportQuery, kw_only=True):
    """Query of ``GET /v1/views/issues/uncovered``."""

    category: Categories | None = None
    similarity: Similarity = 0.4
    cursor: Cursor | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


class RecommendationsQuery(ExportQuery, kw_only=True):
    """Query of ``GET /v1/views/recommendations``."""

    status: RecommendationStatuses | None = None
    addressee: Names | None = None
    cursor: Cursor | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


class ProgressQuery(ExportQuery, kw_only=True):
    """Query of ``GET /v1/views/recommendations/progress`` (all addressees, one page)."""


class HearingsQuery(ExportQuery, kw_only=True):
    """Query of ``GET /v1/views/hearings``; `from`/`to` bound the scheduled time."""

    province: ProvinceCodes | None = None
    region: RegionCodes | None = None
    status: HearingStatuses | None = None
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: TimeParam | None = None
    cursor: Cursor | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class SearchFilterQuery(ViewQuery, kw_only=True):
    """The filters and cursor of ``GET /v1/search`` (the console's /cari takes them too)."""

    kind: SearchKinds | None = None
    region: RegionCodes | None = None
    province: ProvinceCodes | None = None
    category: Categories | None = None
    status: (
        Annotated[
            list[
                Literal["open", "addressed", "withdrawn", "draft", "approved", "submitted"]
                | Literal["responded", "closed"]
            ],
            _ListNote,
        ]
        | None
    ) = None
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: TimeParam | None = None
    hearing: CanonicalUUID | None = None
    cursor: Cursor | None = None


class SearchQuery(SearchFilterQuery, kw_only=True):
    """Query of ``GET /v1/search``."""

    q: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    format: ExportFormat | None = None


class ActivityQuery(ExportQuery, kw_only=True):
    """Query of ``GET /v1/views/activity``."""

    actor: Annotated[str, msgspec.Meta(description="A token id or a token name.")] | None = None
    region: RegionCodes | None = None
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: TimeParam | None = None
    cursor: Cursor | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


Q = TypeVar("Q", bound=msgspec.Struct)
R = TypeVar("R", bound=web.StreamResponse)


def _view(
    query: type[Q],
    response: Any,
    *,
    path: type[msgspec.Struct] | None = None,
    errors: tuple[int, ...] = (),
    roles: tuple[Role, ...] = (),
    tags: tuple[str, ...] = ("views",),
    exports: Any = None,
) -> Callable[[Callable[[web.Request, Q], Awaitable[R]]], Callable[[web.Request], Awaitable[R]]]:
    """Declare a view once: what the document shows is what the handler gets and checks.

    The handler receives the request's query parsed into `query` (a 422 on
    `query.<name>` otherwise; see :func:`coord.http.params.parse_query`), after
    `documented` checked the caller's role against `roles` (none: every role). The
    document adds min_position, X-Projection-Position and 503 to every view.
    ``exports``: the item type of the view's CSV / JSON Lines export, if it has one.
    """
    ok: Any = response
    if exports is not None:
        ok = (
            Body(response),
            Body(list[exports], exports_module.CSV_TYPE),
            Body(exports, exports_module.JSONL_TYPE),
        )
    document = documented(
        query=query,
        path=path,
        responses={200: ok},
        headers=VIEW_HEADERS,
        response_headers=VIEW_RESPONSE_HEADERS,
        errors=(*errors, 503),
        roles=roles,
        tags=tags,
    )

    def declare(
        handler: Callable[[web.Request, Q], Awaitable[R]],
    ) -> Callable[[web.Request], Awaitable[R]]:
        @functools.wraps(handler)
        async def view(request: web.Request) -> R:
            return await handler(request, parse_query(request, query))

        return document(view)

    return declare


def _time_param(raw: str | None, name: str) -> datetime | None:
    """An RFC 3339 time with its offset (dates are `_bounds`' business: local days)."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name} must be an RFC 3339 time or a date", f"query.{name}") from None
    if value.tzinfo is None:
        raise invalid(f"{name} needs a time zone offset", f"query.{name}")
    return value


def _bounds(start: str | None, end: str | None) -> dict[str, Any]:
    """``from``/``to`` as filter arguments: a date is a local day of each item's region
    (``day_from``/``day_to``, both inclusive); a time with an offset is an exact instant."""
    bounds: dict[str, Any] = {}
    for name, raw, last in (("from", start, False), ("to", end, True)):
        if raw is not None and len(raw) == 10:
            try:
                bounds["day_to" if last else "day_from"] = date.fromisoformat(raw)
            except ValueError:
                raise invalid(
                    f"{name} must be an RFC 3339 time or a date", f"query.{name}"
                ) from None
        else:
            bounds["date_to" if last else "date_from"] = _time_param(raw, name)
    return bounds


def _strs(values: Sequence[str] | None) -> list[str] | None:
    """A parsed list of enum values as the `list[str]` the projections' queries take."""
    return None if values is None else list(values)


def _scope(request: web.Request) -> list[str] | None:
    return principal_of(request).region_scope(load_regions())


def _issue_filters(request: web.Request, query: IssueFilterQuery | None = None) -> IssueFilters:
    """The board's filters (`query`: already parsed; else parsed here, for the console)."""
    q = parse_query(request, IssueFilterQuery) if query is None else query
    return IssueFilters(
        scope=_scope(request),
        categories=_strs(q.category),
        provinces=q.province,
        regions=q.region,
        raised_by=q.raised_by,
        statuses=_strs(q.status),
        severity_min=q.severity_min if q.severity_min > 1 else None,
        severity_max=q.severity_max if q.severity_max < 5 else None,
        hearing_id=q.hearing,
        **_bounds(q.from_, q.to),
    )


Fetch = Callable[[str | None], Awaitable[tuple[list[Any], str | None]]]


async def _export(
    request: web.Request,
    fmt: exports_module.Format,
    item_type: type[msgspec.Struct],
    fetch: Fetch,
    snap: Any,
    name: str,
    cursor: str | None,
) -> web.StreamResponse:
    """Stream every page of a view (from `cursor`, if given) as CSV or JSON Lines.

    The first page is read before the response starts, so a bad cursor is still a 422.
    """
    with _cursor_errors():
        first, cursor = await fetch(cursor)

    async def pages() -> AsyncIterator[list[Any]]:
        nonlocal cursor
        yield first
        while cursor is not None:
            items, cursor = await fetch(cursor)
            yield items

    return await stream_items(request, fmt, item_type, pages(), snap, name)


_EXPORT_PAGE = 500


# --- issues ----------------------------------------------------------------------------------


@routes.get("/v1/views/issues")
@_view(IssueBoardQuery, IssuePage, exports=issue_board.IssueItem)
async def issues_view(request: web.Request, q: IssueBoardQuery) -> web.StreamResponse:
    """The national issue board, filtered, newest (``sort=recent``) or most severe first."""
    filters = _issue_filters(request, q)
    fmt = export_format(request, q.format)
    async with snapshot(request, issue_board.NAME) as snap:

        async def fetch(cursor: str | None, size: int = _EXPORT_PAGE) -> Any:
            return await issue_board.list_issues(
                snap.conn,
                filters,
                sort=q.sort,
                cursor=cursor,
                limit=size,
            )

        if fmt != "json":
            return await _export(
                request, fmt, issue_board.IssueItem, fetch, snap, "issues", q.cursor
            )
        with _cursor_errors():
            items, cursor = await fetch(q.cursor, q.limit)
        return view_response(IssuePage(items=items, next_cursor=cursor), snap)


@routes.get("/v1/views/issues/summary")
@_view(IssueSummaryQuery, issue_board.Summary, exports=issue_board.SummaryRow)
async def issues_summary(request: web.Request, q: IssueSummaryQuery) -> web.StreamResponse:
    """Counts by category x province and by category x organization, with totals.

    Withdrawn issues are left out unless ``status`` names them or ``include_withdrawn=true``.
    """
    filters = _issue_filters(request, q)
    if filters.statuses is None and not q.include_withdrawn:
        filters = dataclasses.replace(filters, statuses=["open", "addressed"])
    fmt = export_format(request, q.format)
    async with snapshot(request, issue_board.NAME) as snap:
        found = await issue_board.summary(snap.conn, filters)
        if fmt != "json":
            rows = issue_board.summary_rows(found)
            return await stream_items(
                request, fmt, issue_board.SummaryRow, one_page(rows), snap, "summary"
            )
        return view_response(found, snap)


class Clusters(msgspec.Struct, kw_only=True):
    """``GET /v1/views/issues/recurring``: the recurring problems, most regions first."""

    clusters: list[issue_board.Cluster]


class _StoredClusters(msgspec.Struct, kw_only=True):
    """:class:`Clusters` whose list PostgreSQL already wrote as JSON (the national page)."""

    clusters: msgspec.Raw


@routes.get("/v1/views/issues/recurring")
@_view(RecurringQuery, Clusters, exports=issue_board.Cluster)
async def recurring(request: web.Request, q: RecurringQuery) -> web.StreamResponse:
    """Recurring problems: issues saying the same thing, ranked by how many regions raised them.

    ``min_regions`` defaults to 2: a problem one region raised does not recur.
    """
    # `similarity` is validated (by its declaration) and ignored: see RecurringQuery
    scope = _scope(request)
    categories = _strs(q.category)
    fmt = export_format(request, q.format)
    async with snapshot(request, issue_board.NAME) as snap:
        if fmt == "json" and scope is None and categories is None:
            stored = await issue_board.stored_clusters_json(snap.conn, q.min_regions, q.limit)
            return view_response(_StoredClusters(clusters=msgspec.Raw(stored.encode())), snap)
        found = await issue_board.clusters(
            snap.conn,
            scope,
            categories=categories,
            min_regions=q.min_regions,
            limit=q.limit if fmt == "json" else None,
        )
        if fmt != "json":
            return await stream_items(
                request, fmt, issue_board.Cluster, one_page(found), snap, "recurring"
            )
        return view_response(Clusters(clusters=found), snap)


class ClusterPath(msgspec.Struct, kw_only=True):
    """Path of ``GET /v1/views/issues/recurring/{cluster_id}``."""

    cluster_id: CanonicalUUID


@routes.get("/v1/views/issues/recurring/{cluster_id}")
@_view(ViewQuery, issue_board.ClusterDetail, path=ClusterPath, errors=(404, 422))
async def recurring_cluster(request: web.Request, q: ViewQuery) -> web.Response:
    """One recurring problem and its members with their regions (the caller's regions only)."""
    cluster = _uuid(request.match_info["cluster_id"], "cluster_id")
    scope = _scope(request)
    async with snapshot(request, issue_board.NAME) as snap:
        detail = await issue_board.cluster_detail(snap.conn, scope, cluster)
        if detail is None:
            raise not_found(f"no recurring problem {cluster}")
        return view_response(detail, snap)


@routes.get("/v1/views/issues/uncovered")
@_view(UncoveredQuery, UncoveredPage, exports=issue_board.UncoveredItem)
async def uncovered(request: web.Request, q: UncoveredQuery) -> web.StreamResponse:
    """Open issues no recommendation cites, by recurrence and severity."""
    scope = _scope(request)
    fmt = export_format(request, q.format)
    async with snapshot(request, issue_board.NAME) as snap:

        async def fetch(cursor: str | None, size: int = _EXPORT_PAGE) -> Any:
            return await issue_board.uncovered(
                snap.conn, scope, categories=_strs(q.category), cursor=cursor, limit=size
            )

        if fmt != "json":
            return await _export(
                request, fmt, issue_board.UncoveredItem, fetch, snap, "uncovered", q.cursor
            )
        with _cursor_errors():
            items, next_cursor = await fetch(q.cursor, q.limit)
        return view_response(UncoveredPage(items=items, next_cursor=next_cursor), snap)


# --- recommendations ---------------------------------------------------------------------------


async def _recommendation_list(
    request: web.Request,
    q: RecommendationsQuery,
    selection: recommendations.RecommendationSelection,
) -> web.StreamResponse:
    fmt = export_format(request, q.format)
    async with snapshot(request, recommendations.NAME) as snap:

        async def fetch(cursor: str | None, size: int = _EXPORT_PAGE) -> Any:
            return await recommendations.list_recommendations(
                snap.conn,
                statuses=_strs(q.status),
                addressees=q.addressee,
                selection=selection,
                cursor=cursor,
                limit=size,
            )

        if fmt != "json":
            name = "recommendations" if selection == "all" else f"recommendations-{selection}"
            return await _export(
                request, fmt, recommendations.RecommendationItem, fetch, snap, name, q.cursor
            )
        with _cursor_errors():
            items, cursor = await fetch(q.cursor, q.limit)
        return view_response(RecommendationPage(items=items, next_cursor=cursor), snap)


@routes.get("/v1/views/recommendations")
@_view(
    RecommendationsQuery,
    RecommendationPage,
    roles=("national", "auditor", "admin"),
    exports=recommendations.RecommendationItem,
)
async def recommendations_view(request: web.Request, q: RecommendationsQuery) -> web.StreamResponse:
    """Recommendations with status, timeline, cited issues and breadth (national roles)."""
    return await _recommendation_list(request, q, "all")


# Registered before `/v1/views/recommendations/{id}`: aiohttp matches in order.
@routes.get("/v1/views/recommendations/attention")
@_view(
    RecommendationsQuery,
    RecommendationPage,
    roles=("national", "auditor", "admin"),
    exports=recommendations.RecommendationItem,
)
async def recommendations_attention(
    request: web.Request, q: RecommendationsQuery
) -> web.StreamResponse:
    """Recommendations needing attention: overdue, or citing an issue since withdrawn."""
    return await _recommendation_list(request, q, "attention")


@routes.get("/v1/views/recommendations/overdue")
@_view(
    RecommendationsQuery,
    RecommendationPage,
    roles=("national", "auditor", "admin"),
    exports=recommendations.RecommendationItem,
)
async def recommendations_overdue(
    request: web.Request, q: RecommendationsQuery
) -> web.StreamResponse:
    """Submitted recommendations whose answer is past due (``response_due_at``)."""
    return await _recommendation_list(request, q, "overdue")


class ProgressByAddressee(msgspec.Struct, kw_only=True):
    """``GET /v1/views/recommendations/progress``."""

    addressees: list[recommendations.AddresseeProgress]


@routes.get("/v1/views/recommendations/progress")
@_view(
    ProgressQuery,
    ProgressByAddressee,
    roles=("national", "auditor", "admin"),
    exports=recommendations.AddresseeProgress,
)
async def recommendations_progress(request: web.Request, q: ProgressQuery) -> web.StreamResponse:
    """Per addressee: submitted, answered, overdue, closed, outcomes and mean progress."""
    fmt = export_format(request, q.format)
    async with snapshot(request, recommendations.NAME) as snap:
        found = await recommendations.progress_by_addressee(snap.conn)
        if fmt != "json":
            return await stream_items(
                request,
                fmt,
                recommendations.AddresseeProgress,
                one_page(found),
                snap,
                "recommendations-progress",
            )
        return view_response(ProgressByAddressee(addressees=found), snap)


@routes.get("/v1/views/recommendations/{id:[^/]+}")
@_view(
    ViewQuery,
    recommendations.RecommendationItem,
    path=IdPath,
    errors=(404,),
    roles=("national", "auditor", "admin"),
)
async def recommendation_view(request: web.Request, q: ViewQuery) -> web.Response:
    """One recommendation (national roles)."""
    rec_id = _uuid(request.match_info["id"], "id")
    async with snapshot(request, recommendations.NAME) as snap:
        item = await recommendations.get_recommendation(snap.conn, rec_id)
        if item is None:
            raise not_found(f"no recommendation {rec_id}")
        return view_response(item, snap)


def _uuid(raw: str, field: str) -> str:
    # Only the canonical spelling: views key entities by it, as the stream ids do.
    if parse_canonical_uuid(raw) is None:
        raise invalid(f"{field} must be a UUID in lowercase canonical form", field)
    return raw


# --- regions and hearings -------------------------------------------------------------------


class DossierQuery(ViewQuery, kw_only=True):
    """Query of ``GET /v1/views/regions/{code}``."""

    #: at most this many items in each list (the counts cover all; the board and the
    #: calendar page through the rest)
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20


class Dossier(msgspec.Struct, kw_only=True):
    """``GET /v1/views/regions/{code}``."""

    code: str
    name: str
    level: str
    province_code: str | None
    province_name: str | None = None
    region_codes: list[str]
    hearings: hearings_model.RegionHearings
    issues: issue_board.RegionIssues
    #: the most recent recommendations citing the region's issues (at most `limit`)
    recommendations: list[recommendations.RecommendationRef]
    #: how many recommendations cite the region's issues in all
    recommendation_total: int = 0


@routes.get("/v1/views/regions/{code}")
@_view(DossierQuery, Dossier, path=RegionPath, errors=(404,))
async def region_dossier(request: web.Request, q: DossierQuery) -> web.Response:
    """A province (with its regencies) or a regency: counts of its hearings, issues and the
    recommendations citing them, and the latest `limit` of each."""
    code = request.match_info["code"]
    regions = load_regions()
    if code not in regions:
        raise not_found(f"no region {code!r}")
    if not principal_of(request).covers(code):
        raise forbidden(f"region {code} is outside this token's regions")
    region = next(r for r in regions.all() if r.code == code)
    codes = [code, *(r.code for r in regions.children(code))]
    async with snapshot(
        request, hearings_model.NAME, issue_board.NAME, recommendations.NAME
    ) as snap:
        held = await hearings_model.region_hearings(
            snap.conn, code, now=datetime.now(UTC), limit=q.limit
        )
        issues = await issue_board.region_issues(snap.conn, code, limit=q.limit)
        refs, ref_total = await recommendations.citing_region(snap.conn, code, limit=q.limit)
        body = Dossier(
            code=code,
            name=region.name,
            level=region.level,
            province_code=region.province_code,
            province_name=regions.name_of(region.province_code or region.code),
            region_codes=codes,
            hearings=held,
            issues=issues,
            recommendations=refs,
            recommendation_total=ref_total,
        )
        return view_response(body, snap)


@routes.get("/v1/views/hearings")
@_view(HearingsQuery, HearingPage, exports=hearings_model.HearingItem)
async def hearing_calendar(request: web.Request, q: HearingsQuery) -> web.StreamResponse:
    """Hearings in time order, ``from``/``to`` on the scheduled time, by province or region."""
    scope = _scope(request)
    bounds = _bounds(q.from_, q.to)
    fmt = export_format(request, q.format)
    async with snapshot(request, hearings_model.NAME) as snap:

        async def fetch(cursor: str | None, size: int = _EXPORT_PAGE) -> Any:
            return await hearings_model.calendar(
                snap.conn,
                scope=scope,
                provinces=q.province,
                regions=q.region,
                statuses=_strs(q.status),
                **bounds,
                cursor=cursor,
                limit=size,
            )

        if fmt != "json":
            return await _export(
                request, fmt, hearings_model.HearingItem, fetch, snap, "hearings", q.cursor
            )
        with _cursor_errors():
            items, cursor = await fetch(q.cursor, q.limit)
        return view_response(HearingPage(items=items, next_cursor=cursor), snap)


# --- search and activity ------------------------------------------------------------------------


class SearchResults(msgspec.Struct, kw_only=True):
    """``GET /v1/search``."""

    items: list[search.SearchHit]
    #: pass back as `cursor` for the next hits; null at the end
    next_cursor: str | None = None


@routes.get("/v1/search")
@_view(SearchQuery, SearchResults, tags=("views", "search"), exports=search.SearchHit)
async def search_view(request: web.Request, q: SearchQuery) -> web.StreamResponse:
    """Full-text search (Indonesian stemming, the field vocabulary's synonyms), ranked, with
    highlighted snippets, filters and cursor pages."""
    query = q.q.strip()
    if not query:
        raise invalid("q is required", "query.q")
    fmt = export_format(request, q.format)
    # A national page without filters walks the same way for every query: generic plans.
    generic = (
        fmt == "json"
        and q.cursor is None
        and q.kind is None
        and _scope(request) is None
        and search_filters(request, q) == search.SearchFilters()
    )
    async with search_snapshot(request, generic=generic) as snap:
        if fmt != "json":

            async def fetch(cursor: str | None) -> Any:
                page = msgspec.structs.replace(q, cursor=cursor)
                return await search_hits(request, snap.conn, query, _EXPORT_PAGE, page)

            return await _export(request, fmt, search.SearchHit, fetch, snap, "search", q.cursor)
        hits, next_cursor = await search_hits(
            request, snap.conn, query, q.limit, q, generic=generic
        )
        return view_response(SearchResults(items=hits, next_cursor=next_cursor), snap)


#: the read models a search reads (its own, and those its filters join)
SEARCH_MODELS = (search.NAME, issue_board.NAME, hearings_model.NAME, recommendations.NAME)


def search_snapshot(
    request: web.Request, *, generic: bool = False
) -> contextlib.AbstractAsyncContextManager[Snapshot]:
    """The snapshot a search reads in: the read models it joins, with search's settings
    (`generic`: :data:`projections.search.GENERIC_SETTINGS`, for `search_hits(generic=)`)."""
    settings = search.GENERIC_SETTINGS if generic else search.SETTINGS
    return snapshot(request, *SEARCH_MODELS, settings=settings)


def search_filters(
    request: web.Request, q: SearchFilterQuery | None = None
) -> search.SearchFilters:
    """The filters of ``GET /v1/search`` (`q`: already parsed; else from the query string,
    for the console; 422 on a bad one)."""
    q = parse_query(request, SearchFilterQuery) if q is None else q
    return search.SearchFilters(
        regions=q.region,
        provinces=q.province,
        categories=_strs(q.category),
        statuses=_strs(q.status),
        # A date is a local day of each hit's region (as on the board), a time an instant.
        **_bounds(q.from_, q.to),
        hearing_id=q.hearing,
    )


async def search_hits(
    request: web.Request,
    conn: Any,
    query: str,
    limit: int,
    q: SearchFilterQuery | None = None,
    *,
    generic: bool = False,
) -> tuple[list[search.SearchHit], str | None]:
    """One page of ``GET /v1/search`` (kinds, filters, cursor, the field vocabulary) in the
    caller's scope, and the cursor of the next page; shared with the console's /cari. `conn`
    is a :func:`search_snapshot`'s (`generic`: as that snapshot was asked)."""
    q = parse_query(request, SearchFilterQuery) if q is None else q
    filters = search_filters(request, q)
    expanded = search_terms.expand(query, Vocabulary.current())
    try:
        hits = await search.search(
            conn,
            query,
            scope=_scope(request),
            kinds=_strs(q.kind),
            limit=limit + 1,
            filters=filters,
            cursor=q.cursor,
            expanded=expanded,
            hints=request.app[SEARCH_HINTS],
            settings_applied=True,
            generic=generic,
        )
    except search.BadSearchCursor as e:
        raise invalid(str(e), "query.cursor") from None
    more = len(hits) > limit
    hits = hits[:limit]
    return hits, hits[-1].cursor if more else None


@routes.get("/v1/views/activity")
@_view(
    ActivityQuery, ActivityPage, roles=("auditor", "national"), exports=activity_model.ActivityItem
)
async def activity_view(request: web.Request, q: ActivityQuery) -> web.StreamResponse:
    """What each token wrote, when (auditors and national staff)."""
    # A date is a local day in each write's region's zone, a time with an offset an instant.
    bounds = _bounds(q.from_, q.to)
    fmt = export_format(request, q.format)
    async with snapshot(request, activity_model.NAME) as snap:

        async def fetch(cursor: str | None, size: int = _EXPORT_PAGE) -> Any:
            return await activity_model.activity(
                snap.conn,
                actor=q.actor,
                regions=q.region,
                **bounds,
                cursor=cursor,
                limit=size,
            )

        if fmt != "json":
            return await _export(
                request, fmt, activity_model.ActivityItem, fetch, snap, "activity", q.cursor
            )
        with _cursor_errors():
            items, cursor = await fetch(q.cursor, q.limit)
        return view_response(ActivityPage(items=items, next_cursor=cursor), snap)
