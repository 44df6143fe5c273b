"""The console's read pages: the same projection queries as the JSON views, as HTML.

Filters travel in the query string with the same names as the JSON views' (so a page's
link reproduces its view, and `/isu?...` matches `/v1/views/issues?...`), parsed by the
views' own parsers; region scope comes from the signed-in token exactly as in the API.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from coord.auth import Role, forbidden, principal_of
from coord.console.follow import citing_follow_ups
from coord.console.frame import live_marks, page, render, see_other
from coord.http.params import int_param, list_param, one
from coord.http.projections import snapshot
from coord.http.views import (
    _HEARING_STATUSES,
    _bounds,
    _cursor_errors,
    _issue_filters,
    _scope,
    search_filters,
    search_hits,
    search_snapshot,
)
from coord.problems import invalid, not_found
from events.domain.categories import CATEGORY_CODES
from events.domain.regions import Region, load_regions
from events.domain.timezones import zone_name, zone_of
from projections import activity as activity_model
from projections import hearings as hearings_model
from projections import issue_board, recommendations, search

routes = web.RouteTableDef()

BOARD_PAGE = 50
SEARCH_PAGE = 50
REGION_RECOMMENDATIONS = 30
#: hearings of each kind on a region's page (the calendar has the rest)
REGION_HEARINGS = 20
_REC_STATUSES = frozenset({"draft", "approved", "submitted", "responded", "closed"})
_NATIONAL_READERS: tuple[Role, ...] = ("national", "auditor", "admin")
_SAVED = frozenset({"issue_form", "hearing_form"})


def query_without(request: web.Request, *names: str, **extra: str) -> str:
    """The request's query string without `names` (and with `extra`), for links."""
    pairs = [(k, v) for k, v in request.query.items() if k not in names and k not in extra]
    pairs += [(k, v) for k, v in extra.items() if v]
    return urlencode(pairs)


def parse_uuid(raw: str) -> str:
    """A path id as a canonical UUID string; 404 if it is not one (no such page)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise not_found(f"no page for id {raw!r}") from None


@routes.get("/")
@page()
async def home(request: web.Request) -> web.StreamResponse:
    """A regional office starts at its region; everyone else at the issue board."""
    principal = principal_of(request)
    if principal.role == "regional" and principal.regions:
        return see_other(f"/wilayah/{principal.regions[0]}")
    return see_other("/isu")


def _filter_form(request: web.Request) -> dict[str, Any]:
    """What the board's filter form shows as chosen."""
    return {
        "category": request.query.get("category", ""),
        "province": request.query.get("province", ""),
        "status": request.query.get("status", ""),
        "severity_min": request.query.get("severity_min", ""),
        "sort": request.query.get("sort", "recent"),
        "regions": list_param(request, "region") or [],
    }


@routes.get("/isu")
@page()
async def board(request: web.Request) -> web.StreamResponse:
    """The issue board: filters in the query string, newest or most severe first, paged."""
    filters = _issue_filters(request)
    sort = request.query.get("sort") or "recent"
    if sort not in ("recent", "severity"):
        raise invalid("sort must be recent or severity", "query.sort")
    async with snapshot(request, issue_board.NAME) as snap:
        with _cursor_errors():
            items, cursor = await issue_board.list_issues(
                snap.conn,
                filters,
                sort="recent" if sort == "recent" else "severity",
                cursor=request.query.get("cursor") or None,
                limit=BOARD_PAGE,
            )
        position = snap.position
    plain = query_without(request, "cursor", "min_position")
    return render(
        request,
        "board.html",
        {
            "items": items,
            "form": _filter_form(request),
            "categories": CATEGORY_CODES,
            "provinces": load_regions().provinces(),
            "next_link": f"/isu?{query_without(request, 'cursor', cursor=cursor)}"
            if cursor
            else None,
            "first_link": f"/isu?{plain}" if request.query.get("cursor") else None,
            "csv_link": f"/isu.csv?{plain}",
            "live": live_marks(position, prefix="issue-"),
            "region_chip_links": {
                code: "/isu?"
                + urlencode(
                    [
                        (k, v)
                        for k, v in request.query.items()
                        if k not in ("cursor", "region") and v
                    ]
                    + [("region", c) for c in (list_param(request, "region") or []) if c != code]
                )
                for code in list_param(request, "region") or []
            },
        },
    )


def province_grid(region_codes: list[str]) -> list[tuple[Region, int]]:
    """Every province with the number of `region_codes` in it (itself or its regencies)."""
    regions = load_regions()
    counts: dict[str, int] = {}
    for code in region_codes:
        found = regions.get(code)
        if found is None:
            continue
        province = found.province_code or found.code
        counts[province] = counts.get(province, 0) + 1
    return [(p, counts.get(p.code, 0)) for p in regions.provinces()]


def heat(count: int) -> int:
    """The colour step of a grid cell: 0 none, 1 one, 2 two or three, 3 four to seven, 4 more."""
    if count <= 0:
        return 0
    if count == 1:
        return 1
    if count <= 3:
        return 2
    return 3 if count <= 7 else 4


@routes.get("/isu/berulang")
@page()
async def recurring(request: web.Request) -> web.StreamResponse:
    """Recurring issues: similar titles of one category raised in several regions."""
    min_regions = int_param(request, "min_regions", 2, minimum=1)
    categories = list_param(request, "category")
    async with snapshot(request, issue_board.NAME) as snap:
        # Stored groups (maintained on apply): nothing is clustered per page view.
        kept = await issue_board.clusters(
            snap.conn, _scope(request), categories=categories, min_regions=min_regions, limit=50
        )
    return render(
        request,
        "recurring.html",
        {
            "clusters": kept,
            "grids": {c.cluster_id: province_grid(c.region_codes) for c in kept},
            "heat": heat,
            "categories": CATEGORY_CODES,
            "category": request.query.get("category", ""),
            "min_regions": min_regions,
        },
    )


@routes.get("/rekomendasi")
@page(*_NATIONAL_READERS)
async def recommendation_list(request: web.Request) -> web.StreamResponse:
    """Recommendations with status, breadth and last change (national roles)."""
    statuses = list_param(request, "status", allowed=_REC_STATUSES)
    async with snapshot(request, recommendations.NAME) as snap:
        with _cursor_errors():
            items, cursor = await recommendations.list_recommendations(
                snap.conn,
                statuses=statuses,
                cursor=request.query.get("cursor") or None,
                limit=BOARD_PAGE,
            )
    return render(
        request,
        "recommendations.html",
        {
            "items": items,
            "statuses": sorted(_REC_STATUSES),
            "status": request.query.get("status", ""),
            "next_link": f"/rekomendasi?{query_without(request, 'cursor', cursor=cursor)}"
            if cursor
            else None,
            "csv_link": f"/rekomendasi.csv?{query_without(request, 'cursor', 'min_position')}",
        },
    )


@routes.get("/wilayah/{code}")
@page()
async def region(request: web.Request) -> web.StreamResponse:
    """A region's dossier (printable); for its office also the forms to write."""
    code = request.match_info["code"]
    regions = load_regions()
    found = regions.get(code)
    if found is None:
        raise not_found(f"no region {code!r}")
    principal = principal_of(request)
    if not principal.covers(code):
        raise forbidden(f"region {code} is outside this token's regions")
    async with snapshot(
        request, hearings_model.NAME, issue_board.NAME, recommendations.NAME
    ) as snap:
        hearings = await hearings_model.region_hearings(
            snap.conn, code, now=datetime.now(UTC), limit=REGION_HEARINGS
        )
        issues = await issue_board.region_issues(snap.conn, code, limit=BOARD_PAGE)
        refs, ref_total = await recommendations.citing_region(
            snap.conn, code, limit=REGION_RECOMMENDATIONS
        )
    # Each is folded from its stream: the most recent ones, not a province's whole history.
    followed = await citing_follow_ups(request, refs)
    writes_here = principal.role == "regional" and principal.covers(code)
    return render(
        request,
        "region.html",
        {
            "region": found,
            "zone": zone_name(code),
            "province": regions.get(found.province_code) if found.province_code else None,
            "children": regions.children(code),
            # Overdue ones are still scheduled: listed with the upcoming, as before.
            "upcoming": hearings.upcoming + hearings.overdue,
            "held": hearings.held,
            "cancelled": hearings.cancelled,
            "hearing_counts": hearings.counts,
            "calendar_link": "/kalender?" + urlencode({"province": found.province_code or code}),
            "issues": issues.items,
            "issue_total": issues.total,
            "by_status": issues.by_status,
            "by_category": sorted(issues.by_category.items(), key=lambda kv: (-kv[1], kv[0])),
            "recommendations": followed,
            "recommendations_more": max(0, ref_total - len(refs)),
            "can_raise": writes_here,
            "request_saved": saved if (saved := request.query.get("saved")) in _SAVED else None,
            "can_schedule": writes_here or principal.role == "national",
            "board_link": "/isu?" + urlencode({"region": code})
            if found.level == "regency"
            else "/isu?" + urlencode({"province": code}),
        },
    )


_SEARCH_STATUSES = ("open", "addressed", "withdrawn", "draft", "approved", "submitted",
                    "responded", "closed")  # fmt: skip


@routes.get("/cari")
@page()
async def search_page(request: web.Request) -> web.StreamResponse:
    """Full-text search (Indonesian stemming, the field vocabulary) over issues, statements,
    recommendations, with the filters and cursor pages of `GET /v1/search`."""
    query = request.query.get("q", "").strip()
    hits: list[search.SearchHit] = []
    next_cursor: str | None = None
    if len(query) > 500:
        raise invalid("q is at most 500 characters", "query.q")
    if query:
        async with search_snapshot(request) as snap:
            hits, next_cursor = await search_hits(request, snap.conn, query, SEARCH_PAGE)
    else:
        search_filters(request)  # a bad filter is a 422 even before a query is typed
    regions = load_regions()
    province = request.query.get("province", "")
    chosen = list_param(request, "region") or []
    stray = [c for c in chosen if province and not c.startswith(f"{province}.")]
    if stray:
        # The form kept a regency of the province chosen before: drop it with the change.
        kept = [(k, v) for k, v in request.query.items() if not (k == "region" and v in stray)]
        return see_other("/cari?" + urlencode(kept))
    return render(
        request,
        "search.html",
        {
            "q": query,
            "hits": hits,
            "searched": bool(query),
            "form": {
                k: request.query.get(k, "")
                for k in ("kind", "category", "province", "status", "from", "to", "hearing")
            },
            "categories": CATEGORY_CODES,
            "statuses": _SEARCH_STATUSES,
            "provinces": regions.provinces(),
            # A regency is chosen within the chosen province (no 514-item list on a phone).
            "regencies": regions.children(province) if regions.get(province) else [],
            "regions": chosen,
            "next_link": f"/cari?{query_without(request, 'cursor', cursor=next_cursor)}"
            if next_cursor
            else None,
            "first_link": f"/cari?{query_without(request, 'cursor', 'min_position')}"
            if request.query.get("cursor")
            else None,
        },
    )


@routes.get("/isu/celah")
@page()
async def coverage_gaps(request: web.Request) -> web.StreamResponse:
    """Open issues no recommendation cites yet, the most recurring and severe first."""
    async with snapshot(request, issue_board.NAME) as snap:
        with _cursor_errors():
            items, cursor = await issue_board.uncovered(
                snap.conn,
                _scope(request),
                categories=list_param(request, "category"),
                cursor=request.query.get("cursor") or None,
                limit=BOARD_PAGE,
            )
    return render(
        request,
        "gaps.html",
        {
            "items": items,
            "categories": CATEGORY_CODES,
            "category": request.query.get("category", ""),
            "next_link": f"/isu/celah?{query_without(request, 'cursor', cursor=cursor)}"
            if cursor
            else None,
        },
    )


@routes.get("/aktivitas")
@page("auditor", "national")
async def activity_page(request: web.Request) -> web.StreamResponse:
    """What each token wrote, newest first (the roles of `GET /v1/views/activity`)."""
    async with snapshot(request, activity_model.NAME) as snap:
        with _cursor_errors():
            items, cursor = await activity_model.activity(
                snap.conn,
                actor=request.query.get("actor") or None,
                regions=list_param(request, "region"),
                # As the API: a date is a local day of each write's region.
                **_bounds(one(request, "from"), one(request, "to")),
                cursor=request.query.get("cursor") or None,
                limit=BOARD_PAGE * 2,
            )
    return render(
        request,
        "activity.html",
        {
            "items": items,
            "form": {k: request.query.get(k, "") for k in ("actor", "region", "from", "to")},
            "next_link": f"/aktivitas?{query_without(request, 'cursor', cursor=cursor)}"
            if cursor
            else None,
        },
    )


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month: its first and last day and its neighbours (`YYYY-MM`)."""

    year: int
    month: int

    @property
    def first(self) -> date:
        """Its first day."""
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        """Its last day."""
        return self.next.first - timedelta(days=1)

    @property
    def next(self) -> Month:
        """The month after."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def previous(self) -> Month:
        """The month before."""
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_month(raw: str | None, today: date) -> Month:
    """`YYYY-MM` (years 1 to 9998), or this month when absent; 422 otherwise."""
    if not raw:
        return Month(today.year, today.month)
    found = _MONTH.fullmatch(raw)
    if found is None or not 1 <= int(found.group(1)) <= 9998:
        raise invalid("bulan must be a month YYYY-MM", "query.bulan")
    return Month(int(found.group(1)), int(found.group(2)))


def _month_link(request: web.Request, month: Month) -> str:
    return "/kalender?" + query_without(request, "cursor", "min_position", bulan=str(month))


@routes.get("/kalender")
@page()
async def hearing_calendar(request: web.Request) -> web.StreamResponse:
    """Hearings of one month by day, each day and time in its region's own zone."""
    today = datetime.now(UTC).astimezone(zone_of(None)).date()
    month = parse_month(request.query.get("bulan"), today)
    provinces = list_param(request, "province")
    async with snapshot(request, hearings_model.NAME) as snap:
        with _cursor_errors():
            items, cursor = await hearings_model.calendar(
                snap.conn,
                scope=_scope(request),
                provinces=provinces,
                statuses=list_param(request, "status", allowed=_HEARING_STATUSES),
                # The day in each hearing's own zone: "26 Oktober" in Papua is WIT's.
                day_from=month.first,
                day_to=month.last,
                cursor=request.query.get("cursor") or None,
                limit=200,
            )
    days: dict[date, list[hearings_model.HearingItem]] = {}
    for item in items:
        days.setdefault(item.local_date, []).append(item)
    return render(
        request,
        "calendar.html",
        {
            "month": month,
            "days": sorted(days.items()),
            "provinces": load_regions().provinces(),
            "form": {
                "province": request.query.get("province", ""),
                "status": request.query.get("status", ""),
            },
            "statuses": sorted(_HEARING_STATUSES),
            "previous_link": _month_link(request, month.previous),
            "next_month_link": _month_link(request, month.next),
            "next_link": f"/kalender?{query_without(request, 'cursor', cursor=cursor)}"
            if cursor
            else None,
        },
    )
