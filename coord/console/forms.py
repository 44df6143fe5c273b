"""The console's forms: sign in and out, language, raise an issue, schedule a hearing.

Writes go through :func:`coord.console.writes.submit` (the API's write path). Each form
carries ids generated when it was rendered (the new stream's and the event's), so posting
it twice records once. A refused write re-renders the form with the refusal at its field.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from coord.auth import TOKENS, forbidden, principal_of
from coord.console.actions import FormValueError, form_values, local_datetime, read_ids
from coord.console.frame import (
    page,
    render,
    safe_next,
    see_other,
    session_of,
    translator,
)
from coord.console.i18n import parse_lang
from coord.console.refusals import refusal
from coord.console.sessions import (
    LANG_COOKIE,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    clear_cookie,
    close_session,
    open_session,
    same_secret,
    set_cookie,
)
from coord.console.writes import submit
from coord.http.projections import snapshot
from coord.keys import POOL
from coord.middlewares import problem_for
from coord.problems import Problem, not_found
from events.domain.categories import CATEGORY_CODES
from events.domain.organizations import ORGANIZATION_CODES
from events.domain.regions import Region, load_regions
from events.domain.timezones import zone_name, zone_of
from projections import hearings as hearings_model

routes = web.RouteTableDef()

_TOKEN_MAX = 200


# --- signing in and out, language ---------------------------------------------------------


@routes.get("/masuk")
@page(signed_in=False)
async def signin_form(request: web.Request) -> web.StreamResponse:
    """The sign-in page: paste a token once."""
    next_ = safe_next(request.query.get("next"))
    if session_of(request) is not None:
        return see_other(next_)
    return _signin_page(request, next_, error=None, status=200)


def _signin_page(request: web.Request, next_: str, error: str | None, status: int) -> web.Response:
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    response = render(
        request,
        "signin.html",
        {"signin_csrf": secret, "next": next_, "error": error},
        status=status,
    )
    set_cookie(response, request, SIGNIN_COOKIE, secret, max_age=3600)
    return response


@routes.post("/masuk")
@page(signed_in=False)
async def signin(request: web.Request) -> web.StreamResponse:
    """Exchange a pasted token for a session cookie; the token itself is never stored."""
    form = await request.post()
    next_ = safe_next(_text(form, "next"))
    if not same_secret(_text(form, "csrf"), request.cookies.get(SIGNIN_COOKIE, "")) or not (
        request.cookies.get(SIGNIN_COOKIE)
    ):
        return _signin_page(request, next_, error="signin.expired", status=403)
    token = (_text(form, "token") or "").strip()
    principal = None
    if token and len(token) <= _TOKEN_MAX:
        principal = await request.app[TOKENS].principal(token)
    if principal is None:
        return _signin_page(request, next_, error="signin.bad_token", status=401)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await close_session(request.app[POOL], old)
    session_id = await open_session(request.app[POOL], principal)
    response = see_other(next_)
    set_cookie(response, request, SESSION_COOKIE, session_id)
    clear_cookie(response, request, SIGNIN_COOKIE)
    return response


@routes.post("/keluar")
@page()
async def signout(request: web.Request) -> web.StreamResponse:
    """End the session (the token stays valid; revoke it to end every session)."""
    await close_session(request.app[POOL], request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/masuk")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@routes.get("/bahasa/{lang}")
@page(signed_in=False)
async def choose_language(request: web.Request) -> web.StreamResponse:
    """The language link: remember the choice and go back to the page."""
    lang = parse_lang(request.match_info["lang"])
    if lang is None:
        raise not_found("the console speaks id and en")
    response = see_other(safe_next(request.query.get("next")))
    set_cookie(response, request, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    return response


# --- form helpers ---------------------------------------------------------------------------


def _text(form: MultiDictProxy[Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _form_uuid(form: MultiDictProxy[Any], name: str) -> uuid.UUID:
    """A hidden id of the form; 422 if tampered with."""
    try:
        return uuid.UUID(_text(form, name) or "")
    except ValueError:
        raise Problem(422, "validation", "Invalid request", f"{name} must be a UUID") from None


def _field_of(problem: Problem, fields: dict[str, str]) -> str | None:
    """The form field a refusal points at (`$.events[0].data.raised_by.name` -> a field)."""
    path = str(problem.extra.get("field") or "")
    for prefix in ("$.events[0].data.", "$.events[0].", "$.data.", "$."):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return fields.get(path)


def _writable_region(request: web.Request) -> Region:
    """The region of the form's path: 404 unknown, 403 outside the caller's regions."""
    code = request.match_info["code"]
    region = load_regions().get(code)
    if region is None:
        raise not_found(f"no region {code!r}")
    if not principal_of(request).covers(code):
        raise forbidden(f"region {code} is outside this token's regions")
    return region


async def _hearings_of(request: web.Request, code: str) -> list[hearings_model.HearingItem]:
    regions = load_regions()
    codes = [code, *(r.code for r in regions.children(code))]
    async with snapshot(request, hearings_model.NAME) as snap:
        found, _ = await hearings_model.calendar(snap.conn, scope=None, regions=codes, limit=10_000)
    return found[::-1][:200]


async def _write_or_form(
    request: web.Request,
    region: Region,
    template: str,
    values: dict[str, str],
    fields: dict[str, str],
    build: Any,
    extra: dict[str, Any],
) -> web.StreamResponse:
    """Submit what `build()` makes; on refusal, the form again with the error at its field."""
    errors: dict[str, str] = {}
    status = 422
    try:
        stream_id, events = build()
        result = await submit(request, stream_id, events, 0)
    except FormValueError as e:
        errors[e.field] = translator(request)(e.key)
    except Exception as e:
        problem = problem_for(e)
        if problem is None:
            raise
        status = problem.status
        field = _field_of(problem, fields) or "_form"
        errors[field] = refusal(translator(request), problem)
    else:
        query = urlencode({"min_position": result.last_position, "saved": template})
        return see_other(f"/wilayah/{region.code}?{query}")
    return render(
        request,
        f"{template}.html",
        {"region": region, "zone": zone_name(region.code), "v": values, "errors": errors, **extra},
        status=status,
    )


def _org(values: dict[str, str], prefix: str) -> dict[str, str]:
    return {"code": values.get(f"{prefix}_code", ""), "name": values.get(f"{prefix}_name", "")}


# --- raise an issue -------------------------------------------------------------------------

_ISSUE_FIELDS = {
    "title": "title",
    "description": "description",
    "category": "category",
    "severity": "severity",
    "raised_by.code": "raised_by_code",
    "raised_by.name": "raised_by_name",
    "raised_by": "raised_by_name",
    "raised_at": "raised_at",
    "hearing_id": "hearing_id",
    "region_code": "_form",
}


def _fresh_ids() -> dict[str, str]:
    return {"stream_uuid": str(uuid.uuid4()), "event_id": str(uuid.uuid4())}


@routes.get("/wilayah/{code}/isu/baru")
@page("regional")
async def issue_form(request: web.Request) -> web.StreamResponse:
    """The form to raise an issue in one of the office's regions."""
    region = _writable_region(request)
    values = {**_fresh_ids(), "severity": "3", "raised_by_code": "KPU"}
    return render(
        request,
        "issue_form.html",
        {
            "region": region,
            "zone": zone_name(region.code),
            "v": values,
            "errors": {},
            **await _issue_choices(request, region),
        },
    )


async def _issue_choices(request: web.Request, region: Region) -> dict[str, Any]:
    return {
        "categories": CATEGORY_CODES,
        "organizations": ORGANIZATION_CODES,
        "hearings": await _hearings_of(request, region.code),
    }


@routes.post("/wilayah/{code}/isu/baru")
@page("regional")
async def raise_issue(request: web.Request) -> web.StreamResponse:
    """Record `IssueRaised` through the write path."""
    region = _writable_region(request)
    form = await request.post()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}

    def build() -> tuple[str, list[tuple[str, uuid.UUID, dict[str, Any]]]]:
        stream = _form_uuid(form, "stream_uuid")
        event_id = _form_uuid(form, "event_id")
        severity: object = values.get("severity", "")
        if isinstance(severity, str) and severity.isdigit():
            severity = int(severity)
        data: dict[str, Any] = {
            "region_code": region.code,
            "raised_by": _org(values, "raised_by"),
            "category": values.get("category", ""),
            "title": values.get("title", ""),
            "description": values.get("description", ""),
            "severity": severity,
        }
        if hearing := values.get("hearing_id"):
            data["hearing_id"] = hearing
        if raised_at := values.get("raised_at"):
            data["raised_at"] = local_datetime(raised_at, zone_of(region.code), "raised_at")
        return f"issue-{stream}", [("IssueRaised", event_id, data)]

    return await _write_or_form(
        request,
        region,
        "issue_form",
        values,
        _ISSUE_FIELDS,
        build,
        await _issue_choices(request, region),
    )


# --- schedule a hearing ---------------------------------------------------------------------

_HEARING_FIELDS = {
    "title": "title",
    "agenda": "agenda",
    "venue": "venue",
    "scheduled_at": "scheduled_at",
    "convened_by.code": "convened_by_code",
    "convened_by.name": "convened_by_name",
    "convened_by": "convened_by_name",
    "host_organization.code": "host_code",
    "host_organization.name": "host_name",
    "host_organization": "host_name",
    "region_code": "_form",
}


@routes.get("/wilayah/{code}/dengar-pendapat/baru")
@page("regional", "national")
async def hearing_form(request: web.Request) -> web.StreamResponse:
    """The form to schedule a hearing in a region."""
    region = _writable_region(request)
    values = {
        **_fresh_ids(),
        "convened_by_code": "WANTANNAS",
        "convened_by_name": "Setjen Wantannas",
        "host_code": "KESBANGPOL",
    }
    return render(
        request,
        "hearing_form.html",
        {
            "region": region,
            "zone": zone_name(region.code),
            "v": values,
            "errors": {},
            "organizations": ORGANIZATION_CODES,
        },
    )


@routes.post("/wilayah/{code}/dengar-pendapat/baru")
@page("regional", "national")
async def schedule_hearing(request: web.Request) -> web.StreamResponse:
    """Record `HearingScheduled` through the write path."""
    region = _writable_region(request)
    form = await request.post()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}

    def build() -> tuple[str, list[tuple[str, uuid.UUID, dict[str, Any]]]]:
        stream = _form_uuid(form, "stream_uuid")
        event_id = _form_uuid(form, "event_id")
        raw = values.get("scheduled_at", "")
        if not raw:
            raise FormValueError("form.required", "scheduled_at")
        when = local_datetime(raw, zone_of(region.code), "scheduled_at")
        data = {
            "region_code": region.code,
            "title": values.get("title", ""),
            "agenda": values.get("agenda", ""),
            "venue": values.get("venue", ""),
            "scheduled_at": when,
            "convened_by": _org(values, "convened_by"),
            "host_organization": _org(values, "host"),
        }
        return f"hearing-{stream}", [("HearingScheduled", event_id, data)]

    return await _write_or_form(
        request,
        region,
        "hearing_form",
        values,
        _HEARING_FIELDS,
        build,
        {"organizations": ORGANIZATION_CODES},
    )


# --- draft a recommendation -----------------------------------------------------------------

_RECOMMENDATION_FIELDS = {
    "title": "title",
    "body": "body",
    "addressee": "addressee",
    "issue_ids": "issue_ids",
}


def _recommendation_form(
    request: web.Request, values: dict[str, str], errors: dict[str, str], status: int
) -> web.Response:
    return render(
        request, "recommendation_form.html", {"v": values, "errors": errors}, status=status
    )


@routes.get("/rekomendasi/baru")
@page("national")
async def recommendation_form(request: web.Request) -> web.StreamResponse:
    """The form to draft a recommendation; `?issue=<id>` (repeated) pre-fills cited issues."""
    cited = "\n".join(request.query.getall("issue", [])[:200])
    values = {**_fresh_ids(), "addressee": "Presiden", "issue_ids": cited}
    return _recommendation_form(request, values, {}, 200)


@routes.post("/rekomendasi/baru")
@page("national")
async def draft_recommendation(request: web.Request) -> web.StreamResponse:
    """Record `RecommendationDrafted` through the write path."""
    values = form_values(await request.post())
    errors: dict[str, str] = {}
    try:
        stream = _form_uuid_value(values, "stream_uuid")
        event_id = _form_uuid_value(values, "event_id")
        data = {
            "title": values.get("title", ""),
            "body": values.get("body", ""),
            "addressee": values.get("addressee", ""),
            "issue_ids": read_ids(values.get("issue_ids", "")),
        }
        result = await submit(
            request, f"recommendation-{stream}", [("RecommendationDrafted", event_id, data)], 0
        )
    except Exception as e:
        problem = problem_for(e)
        if problem is None:
            raise
        field = _field_of(problem, _RECOMMENDATION_FIELDS) or "_form"
        errors[field] = refusal(translator(request), problem)
        return _recommendation_form(request, values, errors, problem.status)
    query = urlencode({"min_position": result.last_position, "saved": "draf"})
    return see_other(f"/rekomendasi/{stream}?{query}")


def _form_uuid_value(values: dict[str, str], name: str) -> uuid.UUID:
    try:
        return uuid.UUID(values.get(name, ""))
    except ValueError:
        raise Problem(422, "validation", "Invalid request", f"{name} must be a UUID") from None
