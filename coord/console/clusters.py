"""One recurring problem (`/isu/berulang/{cluster_id}`): its members, and the analysts'
decisions about it as forms (national staff only).

Reads are `GET /v1/views/issues/recurring/{cluster_id}`'s query; the decisions are events
on the cluster's own stream `cluster-<uuid>` through the one write path: name it
(`ClusterNamed`), merge other clusters into it (`ClustersMerged`), move issues into it or
split them off into a new cluster (`IssueReassigned`, the latter on a fresh stream whose id
the page generates). Each form carries the stream version it was rendered at.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from coord.auth import forbidden, principal_of
from coord.console import actions as act
from coord.console.detail import Failed, _field, _forms
from coord.console.frame import page, render, see_other, translator
from coord.console.pages import parse_uuid
from coord.console.refusals import refusal
from coord.console.writes import submit
from coord.http.projections import snapshot
from coord.http.views import _scope
from coord.keys import WRITES
from coord.middlewares import problem_for
from coord.problems import not_found
from events.domain.timezones import zone_of
from projections import issue_board, recommendations

routes = web.RouteTableDef()

_ALL = (*act.CLUSTER_ACTIONS, act.CLUSTER_SPLIT)


async def _cluster_page(
    request: web.Request, cluster_id: str, failed: Failed | None = None, status: int = 200
) -> web.Response:
    async with snapshot(request, issue_board.NAME, recommendations.NAME) as snap:
        detail = await issue_board.cluster_detail(snap.conn, _scope(request), cluster_id)
        if detail is None:
            raise not_found(f"no recurring problem {cluster_id}")
        citing = await recommendations.citing(snap.conn, [m.id for m in detail.members])
    loaded = await request.app[WRITES].load(f"cluster-{cluster_id}")
    national = principal_of(request).role == "national"
    split: dict[str, Any] | None = None
    if national:
        split = {
            "v": {"event_id": act.fresh_event_id(), "new_cluster": str(uuid.uuid4())},
            "errors": {},
            "chosen": [],
        }
        if failed is not None and failed.slug == act.CLUSTER_SPLIT.slug:
            split = {
                "v": failed.values,
                "errors": failed.errors,
                "chosen": act.read_ids(failed.values.get("issue_ids", "")),
            }
    slug = request.query.get("saved")
    saved = next((a.label for a in _ALL if a.slug == slug), None)
    return render(
        request,
        "cluster.html",
        {
            "c": detail,
            "citing": citing,
            "version": loaded.version,
            "forms": _forms(request, act.CLUSTER_ACTIONS, "", None, failed),
            "split": split,
            "base": f"/isu/berulang/{cluster_id}",
            "saved": saved,
            "organizations": (),
            "categories": (),
        },
        status=status,
    )


@routes.get("/isu/berulang/{id}")
@page()
async def cluster_detail(request: web.Request) -> web.StreamResponse:
    """A recurring problem: its members (region, title, status), and for national staff the
    forms to name it, merge another into it, move issues in or split them off."""
    return await _cluster_page(request, parse_uuid(request.match_info["id"]))


@routes.post("/isu/berulang/{id}/{slug}")
@page("national")
async def cluster_action(request: web.Request) -> web.StreamResponse:
    """Name, merge, move into, or split off (national staff; the write path judges)."""
    cluster_id = parse_uuid(request.match_info["id"])
    action = next((a for a in _ALL if a.slug == request.match_info["slug"]), None)
    if action is None:
        raise not_found(f"no action {request.match_info['slug']!r}")
    principal = principal_of(request)
    if principal.role not in action.roles:
        raise forbidden(f"{action.event} needs one of the roles {', '.join(action.roles)}")
    form = await request.post()
    values = act.form_values(form)
    # Checkboxes send one value per chosen issue: read them as the ids field's lines.
    values["issue_ids"] = "\n".join(v for v in form.getall("issue_ids", []) if isinstance(v, str))
    t = translator(request)
    errors: dict[str, str] = {}
    status = 422
    target = cluster_id
    try:
        event_id = uuid.UUID(values.get("event_id", ""))
        expected = 0
        if action is act.CLUSTER_SPLIT:
            target = str(uuid.UUID(values.get("new_cluster", "")))
        else:
            expected = int(values.get("version", ""))
        data = act.payload(action, values, zone_of(None))
        result = await submit(
            request, f"cluster-{target}", [(action.event, event_id, data)], expected
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
            errors[_field(problem, action)] = refusal(t, problem)
    else:
        query = urlencode({"min_position": result.last_position, "saved": action.slug})
        return see_other(f"/isu/berulang/{target}?{query}")
    failed = Failed(slug=action.slug, values=values, errors=errors)
    return await _cluster_page(request, cluster_id, failed, status)
