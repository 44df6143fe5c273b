"""Pages of one hearing, issue or recommendation, with the actions the reader may take.

The entity is folded from its stream (the read of `GET /v1/<kind>s/{id}`), lists come
from the projections. An action posts to `/<page>/{id}/<action>`; a refusal re-renders
the page with the message at the action's form, a stale form says "reload".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from coord.auth import forbidden, principal_of
from coord.console import actions as act
from coord.console.frame import live_marks, page, render, see_other, translator
from coord.console.pages import parse_uuid
from coord.console.refusals import refusal
from coord.console.writes import submit
from coord.http import aggregates
from coord.http.projections import snapshot
from coord.http.views import _scope
from coord.keys import WRITES
from coord.middlewares import problem_for
from coord.problems import not_found
from coord.writes import Loaded, _recorder
from events.domain.categories import CATEGORY_CODES
from events.domain.organizations import ORGANIZATION_CODES
from events.domain.recommendation import RecommendationState
from events.domain.states import HearingState, IssueState
from events.domain.timezones import zone_name, zone_of
from projections import issue_board, recommendations
from projections.issue_board import IssueFilters

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Failed:
    """An action form that was refused: shown again with its values and errors."""

    slug: str
    values: dict[str, str]
    errors: dict[str, str]


async def _load(request: web.Request, category: str, entity_id: str, state_type: Any) -> Loaded:
    """The entity's stream folded; 404 if there is none, 403 outside the caller's regions."""
    loaded = await request.app[WRITES].load(f"{category}-{entity_id}")
    if not isinstance(loaded.state, state_type):
        raise not_found(f"no {category} {entity_id}")
    if not principal_of(request).covers(loaded.region_code):
        raise forbidden(f"this {category} is outside the token's regions")
    return loaded


def _forms(
    request: web.Request,
    actions: tuple[act.Action, ...],
    status: str,
    region: str | None,
    failed: Failed | None,
    loaded: Loaded | None = None,
) -> list[dict[str, Any]]:
    """The action forms this reader is offered, each with its values and errors."""
    principal = principal_of(request)
    zone = zone_of(region)
    state = loaded.state if loaded is not None else None
    recorders = [_recorder(e) for e in loaded.events] if loaded is not None else []

    def may_correct(version: int) -> bool:
        # A correction is the recording role's (the write path's rule): offer no other.
        found = recorders[version - 1] if 1 <= version <= len(recorders) else None
        return found is None or found == principal.role

    out = []
    for action in actions:
        if not action.offered(principal.role, status):
            continue
        if principal.role == "regional" and not principal.covers(region):
            continue
        choices = None
        if action.choices is not None:
            choices = [(v, label) for v, label, at in action.choices(state) if may_correct(at)]
            if not choices:
                continue  # nothing this role may correct (no statement of its own)
        elif action.current is not None and not may_correct(1):
            continue
        values: dict[str, str] = {"event_id": act.fresh_event_id()}
        for f in action.fields:
            if f.kind == "datetime":
                values[f.name] = act.now_local(zone)
        if action.current is not None and state is not None:
            # A correction starts from the current values.
            for name, value in action.current(state, {}).items():
                values[name] = "" if value is None else str(value)
        errors: dict[str, str] = {}
        if failed is not None and failed.slug == action.slug:
            values = {**failed.values, "event_id": act.fresh_event_id()}
            # A refused form keeps its event id: resending it must not record twice.
            values["event_id"] = failed.values.get("event_id", values["event_id"])
            errors = failed.errors
        out.append({"action": action, "v": values, "errors": errors, "choices": choices or []})
    return out


def _context_common() -> dict[str, Any]:
    return {"organizations": ORGANIZATION_CODES, "categories": CATEGORY_CODES}


# --- hearing ---------------------------------------------------------------------------------


async def _hearing_page(
    request: web.Request, hearing_id: str, failed: Failed | None = None, status: int = 200
) -> web.Response:
    loaded = await _load(request, "hearing", hearing_id, HearingState)
    state = loaded.state
    assert isinstance(state, HearingState)
    async with snapshot(request, issue_board.NAME) as snap:
        issues, _ = await issue_board.list_issues(
            snap.conn, IssueFilters(scope=_scope(request), hearing_id=hearing_id), limit=200
        )
    return render(
        request,
        "hearing.html",
        {
            "id": hearing_id,
            "h": state,
            "zone": zone_name(state.region_code),
            "version": loaded.version,
            "issues": issues,
            "forms": _forms(
                request, act.HEARING_ACTIONS, state.status, state.region_code, failed, loaded
            ),
            "base": f"/dengar-pendapat/{hearing_id}",
            "saved": _saved(request, act.HEARING_ACTIONS),
            **_context_common(),
        },
        status=status,
    )


@routes.get("/dengar-pendapat/{id}")
@page()
async def hearing_detail(request: web.Request) -> web.StreamResponse:
    """A hearing: agenda, participants, statements, issues raised; forms for its office."""
    return await _hearing_page(request, parse_uuid(request.match_info["id"]))


# --- issue -----------------------------------------------------------------------------------


async def _issue_page(
    request: web.Request, issue_id: str, failed: Failed | None = None, status: int = 200
) -> web.Response:
    loaded = await _load(request, "issue", issue_id, IssueState)
    state = loaded.state
    assert isinstance(state, IssueState)
    recorded = loaded.events[0].recorded_at if loaded.events else None
    # The follow-up of `GET /v1/issues/{id}`: the citing recommendations as their streams
    # stand (responses, progress, outcome), the issue's follow-up and final outcome.
    follow, _ = await aggregates._follow_up(request, issue_id, state)
    async with snapshot(request, issue_board.NAME) as snap:
        on_board = await issue_board.issues_by_ids(snap.conn, [issue_id])
    # The recurring problem it belongs to (none while the board has not caught up).
    cluster = on_board[0].cluster_id if on_board else None
    return render(
        request,
        "issue.html",
        {
            "id": issue_id,
            "issue": state,
            "raised_at": state.raised_at or recorded,
            "follow": follow,
            "cluster": cluster,
            "version": loaded.version,
            "forms": _forms(
                request, act.ISSUE_ACTIONS, state.status, state.region_code, failed, loaded
            ),
            "base": f"/isu/{issue_id}",
            "saved": _saved(request, act.ISSUE_ACTIONS),
            **_context_common(),
        },
        status=status,
    )


@routes.get("/isu/{id}")
@page()
async def issue_detail(request: web.Request) -> web.StreamResponse:
    """One issue as folded from its stream (the read of `GET /v1/issues/{id}`)."""
    return await _issue_page(request, parse_uuid(request.match_info["id"]))


# --- recommendation ---------------------------------------------------------------------------


async def _recommendation_page(
    request: web.Request, rec_id: str, failed: Failed | None = None, status: int = 200
) -> web.Response:
    loaded = await _load(request, "recommendation", rec_id, RecommendationState)
    state = loaded.state
    assert isinstance(state, RecommendationState)
    async with snapshot(request, recommendations.NAME, issue_board.NAME) as snap:
        item = await recommendations.get_recommendation(snap.conn, rec_id)
        cited = await issue_board.issues_by_ids(snap.conn, [str(i) for i in state.issue_ids])
        position = max(snap.position, *(e.position for e in loaded.events))
    # An open recommendation follows its own stream live; a closed one no longer changes.
    live = (
        live_marks(position, stream=loaded.stream_id, version=loaded.version)
        if state.status != "closed"
        else None
    )
    return render(
        request,
        "recommendation.html",
        {
            "id": rec_id,
            "rec": state,
            "item": item,
            "cited": cited,
            "version": loaded.version,
            "forms": _forms(request, act.RECOMMENDATION_ACTIONS, state.status, None, failed),
            "base": f"/rekomendasi/{rec_id}",
            "saved": _saved(request, act.RECOMMENDATION_ACTIONS),
            "live": live,
            **_context_common(),
        },
        status=status,
    )


@routes.get("/rekomendasi/{id}")
@page("national", "auditor", "admin")
async def recommendation_detail(request: web.Request) -> web.StreamResponse:
    """One recommendation: text, status, timeline, cited issues; forms for national staff."""
    return await _recommendation_page(request, parse_uuid(request.match_info["id"]))


# --- actions ---------------------------------------------------------------------------------

_PAGES = {
    "dengar-pendapat": ("hearing", act.HEARING_ACTIONS, HearingState, _hearing_page),
    "isu": ("issue", act.ISSUE_ACTIONS, IssueState, _issue_page),
    "rekomendasi": ("recommendation", act.RECOMMENDATION_ACTIONS, RecommendationState,
                    _recommendation_page),
}  # fmt: skip


def _saved(request: web.Request, actions: tuple[act.Action, ...]) -> str | None:
    slug = request.query.get("saved")
    if slug == "draf":
        return "recs.new"
    found = act.find(actions, slug) if slug else None
    return found.label if found is not None else None


async def _post_action(request: web.Request, kind: str) -> web.StreamResponse:
    category, actions, state_type, render_page = _PAGES[kind]
    entity_id = parse_uuid(request.match_info["id"])
    action = act.find(actions, request.match_info["slug"])
    if action is None:
        raise not_found(f"no action {request.match_info['slug']!r}")
    principal = principal_of(request)
    if principal.role not in action.roles:
        raise forbidden(f"{action.event} needs one of the roles {', '.join(action.roles)}")
    loaded = await _load(request, category, entity_id, state_type)
    values = act.form_values(await request.post())
    t = translator(request)
    errors: dict[str, str] = {}
    status = 422
    try:
        event_id = uuid.UUID(values.get("event_id", ""))
        data = act.payload(action, values, zone_of(loaded.region_code))
        data = act.unchanged_left_out(action, loaded.state, data)
        expected: int | str = "exists"
        if action.versioned:
            expected = int(values.get("version", ""))
        result = await submit(
            request,
            f"{category}-{entity_id}",
            [(action.event, event_id, data)],
            expected,  # type: ignore[arg-type]
        )
    except act.FormValueError as e:
        errors[e.field] = t(e.key)
    except ValueError:
        errors["_form"] = t("form.reload")
    except Exception as e:
        problem = problem_for(e)
        if problem is None:
            raise
        status = problem.status
        if problem.slug == "version-conflict":
            errors["_form"] = t("form.stale")
        else:
            field = _field(problem, action)
            errors[field] = refusal(t, problem)
    else:
        query = urlencode({"min_position": result.last_position, "saved": action.slug})
        return see_other(f"/{kind}/{entity_id}?{query}#aksi")
    failed = Failed(slug=action.slug, values=values, errors=errors)
    response: web.Response = await render_page(request, entity_id, failed, status)
    return response


def _field(problem: Any, action: act.Action) -> str:
    """The action form's field a refusal points at, else the whole form."""
    path = str(problem.extra.get("field") or "")
    for prefix in ("$.events[0].data.", "$.events[0].", "$.data.", "$."):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    head = path.split(".", 1)[0].split("[", 1)[0]
    for f in action.fields:
        if f.name == head:
            if f.kind == "org":
                return f"{f.name}_code" if path.endswith(".code") else f"{f.name}_name"
            return f.name
    return "_form"


@routes.post("/dengar-pendapat/{id}/{slug}")
@page("regional", "national")
async def hearing_action(request: web.Request) -> web.StreamResponse:
    """Record participants, a statement, or that the hearing was held."""
    return await _post_action(request, "dengar-pendapat")


@routes.post("/isu/{id}/{slug}")
@page("regional")
async def issue_action(request: web.Request) -> web.StreamResponse:
    """Add evidence, correct the category, or withdraw the issue."""
    return await _post_action(request, "isu")


@routes.post("/rekomendasi/{id}/{slug}")
@page("national")
async def recommendation_action(request: web.Request) -> web.StreamResponse:
    """Revise, cite/uncite, approve, submit, record a response, close."""
    return await _post_action(request, "rekomendasi")
