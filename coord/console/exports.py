"""CSV downloads of what a page shows (the current filter), for a spreadsheet.

UTF-8 with a byte-order mark (so spreadsheet programs read Indonesian names right), one
header row in the page's language, times in each region's zone. A cell that a spreadsheet
would run as a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``: issue
titles are written by offices, and a download must not execute them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from aiohttp import web

from coord.console.frame import harden, page, region_label, translator
from coord.http.params import list_param
from coord.http.projections import snapshot
from coord.http.views import _cursor_errors, _issue_filters
from coord.problems import invalid
from events.domain.timezones import local_time, zone_name
from projections import issue_board, recommendations

routes = web.RouteTableDef()

#: Rows in one download at most; narrow the filter for more.
CSV_MAX_ROWS = 100_000
_PAGE = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A value as a CSV cell that no spreadsheet evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_line(values: Iterable[object]) -> bytes:
    """One CSV line (RFC 4180 quoting, CRLF)."""
    out = io.StringIO()
    csv.writer(out).writerow([cell(v) for v in values])
    return out.getvalue().encode()


def local_stamp(moment: datetime | None, region_code: str | None) -> str:
    """``2021-10-26 09:00`` in the region's zone (sortable in a spreadsheet)."""
    if moment is None:
        return ""
    return local_time(moment, region_code).strftime("%Y-%m-%d %H:%M")


async def _start(request: web.Request, name: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    harden(response)
    await response.prepare(request)
    await response.write(b"\xef\xbb\xbf")
    return response


@routes.get("/isu.csv")
@page()
async def issues_csv(request: web.Request) -> web.StreamResponse:
    """The issue board's current filter as CSV (every page of it, up to CSV_MAX_ROWS)."""
    t = translator(request)
    filters = _issue_filters(request)
    sort = request.query.get("sort") or "recent"
    if sort not in ("recent", "severity"):
        raise invalid("sort must be recent or severity", "query.sort")
    async with snapshot(request, issue_board.NAME) as snap:
        # The first page is read before the response starts, so a bad filter is still a
        # clean error page, not a half-written file.
        with _cursor_errors():
            items, cursor = await issue_board.list_issues(
                snap.conn, filters, sort="recent" if sort == "recent" else "severity", limit=_PAGE
            )
        response = await _start(request, "isu.csv")
        await response.write(
            csv_line(
                t(f"csv.issue.{c}")
                for c in (
                    "id region_code region category title description severity status raised_by"
                    " organization raised_at zone"
                ).split()
            )
        )
        written = 0
        while True:
            for i in items:
                await response.write(
                    csv_line(
                        (
                            i.id,
                            i.region_code,
                            region_label(i.region_code),
                            t.category(i.category),
                            i.title,
                            i.description,
                            i.severity,
                            t.status(i.status),
                            i.raised_by.name,
                            i.raised_by.code,
                            local_stamp(i.raised_at, i.region_code),
                            zone_name(i.region_code),
                        )
                    )
                )
            written += len(items)
            if cursor is None or written >= CSV_MAX_ROWS:
                break
            items, cursor = await issue_board.list_issues(
                snap.conn,
                filters,
                sort="recent" if sort == "recent" else "severity",
                cursor=cursor,
                limit=min(_PAGE, CSV_MAX_ROWS - written),
            )
    await response.write_eof()
    return response


@routes.get("/rekomendasi.csv")
@page("national", "auditor", "admin")
async def recommendations_csv(request: web.Request) -> web.StreamResponse:
    """Recommendations (the list's status filter) as CSV."""
    t = translator(request)
    statuses = list_param(
        request,
        "status",
        allowed=frozenset({"draft", "approved", "submitted", "responded", "closed"}),
    )
    async with snapshot(request, recommendations.NAME) as snap:
        items, cursor = await recommendations.list_recommendations(
            snap.conn, statuses=statuses, limit=_PAGE
        )
        response = await _start(request, "rekomendasi.csv")
        await response.write(
            csv_line(
                t(f"csv.rec.{c}")
                for c in (
                    "id title status addressee issues regions provinces categories drafted_at"
                    " changed_at"
                ).split()
            )
        )
        while True:
            for r in items:
                first = r.timeline[0].at if r.timeline else None
                last = r.timeline[-1].at if r.timeline else None
                await response.write(
                    csv_line(
                        (
                            r.id,
                            r.title,
                            t.status(r.status),
                            r.addressee,
                            len(r.issue_ids),
                            r.region_count,
                            r.province_count,
                            "; ".join(t.category(c) for c in r.categories),
                            local_stamp(first, None),
                            local_stamp(last, None),
                        )
                    )
                )
            if cursor is None:
                break
            items, cursor = await recommendations.list_recommendations(
                snap.conn, statuses=statuses, cursor=cursor, limit=_PAGE
            )
    await response.write_eof()
    return response
