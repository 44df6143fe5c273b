"""What every console page shares: the session check, CSRF, security headers, rendering.

A handler decorated with :func:`page` runs only for a live session (else the browser is
sent to sign in), with the session's principal set as the request's principal, so the
API's own helpers (scope, `require_role`) apply unchanged. Errors the API would answer
with a problem document become an HTML page with the same status.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import structlog
from aiohttp import web

from coord.auth import PRINCIPAL, Principal, Role, forbidden
from coord.console.i18n import Translator, negotiate
from coord.console.sessions import SESSION_COOKIE, Session, clear_cookie, find_session, same_secret
from coord.keys import POOL
from coord.middlewares import problem_for
from coord.problems import Problem
from events.domain.regions import load_regions

log = structlog.get_logger("coord.console")

SESSION = web.RequestKey("console_session", Session)
TRANSLATOR = web.RequestKey("console_translator", Translator)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# No inline script or style anywhere: everything the page runs or wears is a file of ours.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show one person's view of restricted data: never keep them in a shared cache.
    "Cache-Control": "no-store",
}


def harden(response: web.StreamResponse) -> None:
    """Add the console's security headers to a response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to; anything else (other hosts, `//x`, `/\\x`) is `default`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\r\n\\") or target.startswith("/v1"):
        return default
    return target


def see_other(location: str) -> web.Response:
    """303 to a console path (after a post, or to the sign-in page)."""
    response = web.Response(status=303, headers={"Location": location})
    harden(response)
    return response


def translator(request: web.Request) -> Translator:
    """The request's translator (its language)."""
    found: Translator | None = request.get(TRANSLATOR)
    if found is None:
        found = Translator(negotiate(request))
        request[TRANSLATOR] = found
    return found


def session_of(request: web.Request) -> Session | None:
    """The signed-in session of this request, if any."""
    return request.get(SESSION)


def page(*roles: Role, signed_in: bool = True) -> Callable[[Handler], Handler]:
    """Decorate a console handler: session (unless `signed_in=False`), roles, CSRF, errors."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            translator(request)
            try:
                response = await _guarded(request, handler, roles, signed_in)
            except Exception as e:
                problem = problem_for(e)
                if problem is None:
                    log.exception("console.unhandled_error")
                    problem = Problem(500, "internal", "Internal server error")
                response = error_page(request, problem)
            if not response.prepared:  # a download sets its headers before streaming
                harden(response)
            return response

        # Left out of the OpenAPI document (coord/openapi.py): a page, not an API operation.
        setattr(run, "console_page", True)  # noqa: B010
        return run

    return wrap


async def _guarded(
    request: web.Request, handler: Handler, roles: tuple[Role, ...], signed_in: bool
) -> web.StreamResponse:
    if request.method == "GET" and "" in request.query.values():
        # A filter form sends its "all" choices as `name=`, which the views' parsers
        # refuse (the API's contract): the same view without them, under a clean link.
        kept = [(k, v) for k, v in request.query.items() if v != ""]
        return see_other(request.path + ("?" + urlencode(kept) if kept else ""))
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await find_session(request.app[POOL], cookie) if cookie else None
    if session is not None:
        request[SESSION] = session
        request[PRINCIPAL] = session.principal
    if not signed_in:
        return await handler(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else "/"
        response = see_other("/masuk?" + urlencode({"next": target}))
        if cookie:  # expired, signed out elsewhere, or its token revoked
            clear_cookie(response, request, SESSION_COOKIE)
        return response
    if roles and session.principal.role not in roles:
        raise forbidden(f"this page needs one of the roles {', '.join(roles)}")
    if request.method == "POST":
        form = await request.post()
        sent = form.get("csrf")
        if not same_secret(sent if isinstance(sent, str) else None, session.csrf):
            raise Problem(403, "csrf", "Forbidden", "the form's CSRF token is missing or wrong")
    return await handler(request)


def nav(principal: Principal) -> list[tuple[str, str]]:
    """The menu of a role: only pages it may open."""
    items: list[tuple[str, str]] = []
    if principal.role == "regional":
        items += [(f"/wilayah/{code}", "nav.my_region") for code in principal.regions[:3]]
    items += [
        ("/isu", "nav.board"),
        ("/isu/berulang", "nav.recurring"),
        ("/isu/celah", "nav.gaps"),
        ("/kalender", "nav.calendar"),
    ]
    if principal.role in ("national", "auditor", "admin"):
        items.append(("/rekomendasi", "nav.recommendations"))
    items.append(("/cari", "nav.search"))
    if principal.role in ("national", "auditor"):
        items.append(("/aktivitas", "nav.activity"))
        items.append(("/audit", "nav.audit"))
    if principal.role == "admin":
        items.append(("/admin/token", "nav.tokens"))
    if principal.role != "regional":
        items.append(("/admin/proyeksi", "nav.projections"))
        items.append(("/admin/federasi", "nav.federation"))
    return items


def region_label(code: str | None) -> str:
    """``Kota Kediri (Jawa Timur)`` for ``35.71``; the code itself if unknown."""
    if code is None:
        return ""
    regions = load_regions()
    region = regions.get(code)
    if region is None:
        return code
    if region.province_code is None:
        return region.name
    province = regions.get(region.province_code)
    return f"{region.name} ({province.name})" if province is not None else region.name


def render(
    request: web.Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> web.Response:
    """Render a template with the console's common context."""
    t = translator(request)
    session = session_of(request)
    other = "en" if t.lang == "id" else "id"
    full: dict[str, Any] = {
        "t": t,
        "lang": t.lang,
        "session": session,
        "principal": session.principal if session else None,
        "csrf": session.csrf if session else "",
        "nav": nav(session.principal) if session else [],
        "path": request.path,
        "lang_link": f"/bahasa/{other}?" + urlencode({"next": request.path_qs}),
        "other_lang": other,
        "region_label": region_label,
        "live": None,
    }
    full.update(context or {})
    return aiohttp_jinja2.render_template(template, request, full, status=status)


def live_marks(
    position: int, *, stream: str | None = None, version: int | None = None, prefix: str = ""
) -> dict[str, Any]:
    """What a live page tells konsol.js: the log position it shows (and, for one entity,
    its stream and version), so that a refresh older than the page is thrown away and
    only notices of `stream` (or of streams starting with `prefix`) refresh it."""
    return {"position": position, "stream": stream, "version": version, "prefix": prefix}


def error_page(request: web.Request, problem: Problem) -> web.Response:
    """An HTML error page with the problem's status."""
    t = translator(request)
    key = f"error.{problem.status}"
    title = t(key) if t(key) != key else t("error.other")
    return render(
        request,
        "error.html",
        {"status": problem.status, "title": title, "detail": problem.detail},
        status=problem.status,
    )
