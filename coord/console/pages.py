"""The console's read pages: the same projection queries as the JSON views, as HTML.

Filters travel in the query string with the same names as the JSON views' (so a page's
link reproduces its view, and `/isu?...` matches `/v1/views/issues?...`), parsed by the
views' own parsers; region scope comes from the signed-in token exactly as in the API.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from coord.auth import Role, forbidden, principal_of
from coord.console.frame import live_marks, page, render, see_other
from coord.http.params import int_param, list_param
from coord.http.projections import snapshot
from coord.http.views import _choices, _cursor_errors, _issue_filters, _scope
from coord.problems import invalid, not_found
from events.categories import CATEGORY_CODES
from events.regions import load_regions
from events.timezones import zone_name
from projections import hearings as hearings_model
from projections import issue_board, recommendations, search

routes = web.RouteTableDef()

BOARD_PAGE = 50
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
            "categories": CATEGORY_CODES,
            "category": request.query.get("category", ""),
            "min_regions": min_regions,
        },
    )


@routes.get("/rekomendasi")
@page(*_NATIONAL_READERS)
async def recommendation_list(request: web.Request) -> web.StreamResponse:
    """Recommendations with status, breadth and last change (national roles)."""
    statuses = _choices(request, "status", _REC_STATUSES)
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
    codes = [code, *(r.code for r in regions.children(code))]
    async with snapshot(
        request, hearings_model.NAME, issue_board.NAME, recommendations.NAME
    ) as snap:
        hearings, _ = await hearings_model.calendar(
            snap.conn, scope=None, regions=codes, limit=10_000
        )
        issues = await issue_board.issues_in_regions(snap.conn, codes)
        refs = await recommendations.citing(snap.conn, [i.id for i in issues])
    by_status = {"open": 0, "addressed": 0, "withdrawn": 0}
    by_category: dict[str, int] = {}
    for issue in issues:
        by_status[issue.status] += 1
        by_category[issue.category] = by_category.get(issue.category, 0) + 1
    writes_here = principal.role == "regional" and principal.covers(code)
    return render(
        request,
        "region.html",
        {
            "region": found,
            "zone": zone_name(code),
            "province": regions.get(found.province_code) if found.province_code else None,
            "children": regions.children(code),
            "upcoming": [h for h in hearings if h.status == "scheduled"],
            "held": [h for h in hearings if h.status == "held"][-20:][::-1],
            "cancelled": [h for h in hearings if h.status == "cancelled"],
            "issues": issues[:BOARD_PAGE],
            "issue_total": len(issues),
            "by_status": by_status,
            "by_category": sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0])),
            "recommendations": refs,
            "can_raise": writes_here,
            "request_saved": saved if (saved := request.query.get("saved")) in _SAVED else None,
            "can_schedule": writes_here or principal.role == "national",
            "board_link": "/isu?" + urlencode({"region": code})
            if found.level == "regency"
            else "/isu?" + urlencode({"province": code}),
        },
    )


@routes.get("/cari")
@page()
async def search_page(request: web.Request) -> web.StreamResponse:
    """Full-text search (Indonesian stemming) over issues, statements, recommendations."""
    query = request.query.get("q", "").strip()
    kinds = _choices(request, "kind", frozenset({"issue", "statement", "recommendation"}))
    hits: list[search.SearchHit] = []
    if len(query) > 500:
        raise invalid("q is at most 500 characters", "query.q")
    if query:
        async with snapshot(request, search.NAME) as snap:
            hits = await search.search(
                snap.conn, query, scope=_scope(request), kinds=kinds, limit=50
            )
    return render(
        request,
        "search.html",
        {"q": query, "kind": request.query.get("kind", ""), "hits": hits, "searched": bool(query)},
    )
