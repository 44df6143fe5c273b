"""`GET /v1/openapi.json`: generated, valid OpenAPI 3.1, covering every route the app serves."""

from __future__ import annotations

import asyncio
from typing import Any, get_args

import msgspec
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from coord.app import create_app
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS
from coord.openapi import console_route
from events.domain.categories import CategoryCode
from events.domain.types import EVENT_TYPES
from tests.api.payloads import (
    append,
    hearing_scheduled,
    issue_raised,
    new_id,
    recommendation_drafted,
    statement,
)
from tests.api.test_views import fast_settings
from tests.conftest import bearer


@pytest.fixture
async def document(client: Any) -> dict[str, Any]:
    """The served document (fetched without a token: the path is public)."""
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc: dict[str, Any] = await resp.json()
    return doc


def response_validator(doc: dict[str, Any], path: str, method: str, status: int) -> Any:
    """A JSON Schema validator for one documented response body."""
    response = doc["paths"][path][method]["responses"][str(status)]
    media, content = next(iter(response["content"].items()))
    root = {**content["schema"], "components": doc["components"]}
    return Draft202012Validator(root), media


async def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    """The document validates as OpenAPI 3.1."""
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_route_is_in_the_document(client: Any, document: dict[str, Any]) -> None:
    """Every (method, path) the router serves has an operation, whoever added the route.

    The web console's pages (HTML for people, coord/console) are not API operations."""
    served = {
        (r.method, r.resource.canonical)
        for r in client.server.app.router.routes()
        if r.resource is not None and not console_route(r)
    }
    assert any(console_route(r) for r in client.server.app.router.routes())
    # aiohttp adds a HEAD twin to each GET route; the document lists the GET.
    expected = {(m, p) for m, p in served if m != "HEAD" or ("GET", p) not in served}
    assert len(expected) >= 15
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert expected - documented == set()
    for item in document["paths"].values():
        for op in item.values():
            assert "500" in op["responses"]
            assert op["operationId"]


async def test_routes_declare_their_types(document: dict[str, Any]) -> None:
    """Every route declares its types (`coord.apidoc.documented`): none is left generic."""
    flagged = sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("x-coord-undocumented")
    )
    assert flagged == document["x-coord-undocumented"]
    assert flagged == [], f"routes without declared types (add @documented): {', '.join(flagged)}"
    for path, item in document["paths"].items():
        for method, op in item.items():
            success = [s for s in op["responses"] if s.startswith("2")]
            assert success, (method, path)
            for status in success:
                for media, content in op["responses"][status].get("content", {}).items():
                    assert content["schema"], (method, path, status, media)


async def test_errors_and_security(document: dict[str, Any]) -> None:
    """Errors are problem+json with the Problem schema; public paths need no token, others do."""
    append_op = document["paths"]["/v1/streams/{stream_id}/events"]["post"]
    for status in ("400", "401", "403", "408", "409", "413", "415", "422", "429", "503"):
        content = append_op["responses"][status]["content"]
        assert content["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/ProblemDetails"
        }
    for status in ("429", "503"):
        assert "Retry-After" in append_op["responses"][status]["headers"]
    for path, item in document["paths"].items():
        for method, op in item.items():
            # The edge can answer these on any route (database down, deadline; rate limit).
            assert "503" in op["responses"], (method, path)
            if op.get("security") != []:
                assert "429" in op["responses"], (method, path)
    assert "security" not in append_op  # the document-wide bearer requirement applies
    assert document["security"] == [{"bearer": []}]
    for public in ("/healthz", "/readyz", "/metrics", "/v1/openapi.json"):
        assert document["paths"][public]["get"]["security"] == []
    params = {p["name"]: p for p in append_op["parameters"]}
    assert params["stream_id"]["in"] == "path" and params["stream_id"]["required"]


async def test_event_payload_schemas_are_components(document: dict[str, Any]) -> None:
    """Every domain event type's payload schema is a component, listed in x-coord-event-types."""
    schemas = document["components"]["schemas"]
    assert set(document["x-coord-event-types"]) == set(EVENT_TYPES)
    for name in EVENT_TYPES:
        assert schemas[name]["type"] == "object"
    raised = schemas["IssueRaised"]["properties"]["severity"]
    assert (raised["minimum"], raised["maximum"]) == (1, 5)
    Draft202012Validator(
        {**schemas["HearingScheduled"], "components": {"schemas": schemas}}
    ).validate(hearing_scheduled())


async def test_rules_are_catalogued(document: dict[str, Any]) -> None:
    """Every rule a problem may name is in x-coord-rules with its status."""
    from events.domain.rules import RULES

    rules = document["x-coord-rules"]
    assert set(rules) == set(RULES)
    assert rules["correction.not_recorder"]["status"] == 403
    assert rules["time.in_future"]["status"] == 422


async def test_real_responses_match_the_documented_schemas(
    client: Any, token_for: Any, document: dict[str, Any]
) -> None:
    """Bodies the app really sends validate against the schemas the document gives them."""
    headers = bearer(await token_for(client, "national"))
    hearing = new_id()
    sid = f"hearing-{hearing}"
    body = append(0, ("HearingScheduled", hearing_scheduled()))
    checks = [
        ("post", "/v1/streams/{stream_id}/events", f"/v1/streams/{sid}/events", body, 201),
        ("post", "/v1/streams/{stream_id}/events", f"/v1/streams/{sid}/events", body, 409),
        ("get", "/v1/streams/{stream_id}", f"/v1/streams/{sid}", None, 200),
        ("get", "/v1/events", "/v1/events", None, 200),
        ("get", "/v1/hearings/{id}", f"/v1/hearings/{hearing}", None, 200),
        ("get", "/v1/regions", "/v1/regions?province=35", None, 200),
        ("get", "/v1/regions/{code}", "/v1/regions/35.71", None, 200),
        ("get", "/v1/regions/{code}", "/v1/regions/35", None, 200),
        ("get", "/v1/regions/{code}", "/v1/regions/99.99", None, 404),
        ("get", "/healthz", "/healthz", None, 200),
        ("get", "/readyz", "/readyz", None, 200),
    ]
    for method, template, url, payload, status in checks:
        resp = await client.request(method, url, json=payload, headers=headers)
        assert resp.status == status, (url, await resp.text())
        validator, media = response_validator(document, template, method, status)
        assert resp.content_type == media.split(";")[0]
        validator.validate(await resp.json())
    admin = bearer(await token_for(client, "admin"))
    create = {"role": "regional", "name": "KPU Kota Kediri", "regions": ["35.71"]}
    for method, path, payload, status in (
        ("post", "/v1/tokens", create, 201),
        ("get", "/v1/tokens", None, 200),
    ):
        resp = await client.request(method, path, json=payload, headers=admin)
        assert resp.status == status, await resp.text()
        validator, _ = response_validator(document, path, method, status)
        validator.validate(await resp.json())


async def _validate(
    resp: Any, document: dict[str, Any], template: str, method: str, status: int
) -> Any:
    """Check a real response against its documented status, media type, headers and schema."""
    assert resp.status == status, (template, await resp.text())
    validator, media = response_validator(document, template, method, status)
    assert resp.content_type == media.split(";")[0], template
    documented = document["paths"][template][method]["responses"][str(status)]
    for name, header in documented.get("headers", {}).items():
        assert name in resp.headers, (template, name)
        Draft202012Validator(header["schema"]).validate(int(resp.headers[name]))
    if media == "application/json" or media.endswith("+json"):
        body = await resp.json()
        validator.validate(body)
        return body
    text = await resp.text()
    if media == "application/x-ndjson":
        # The document describes NDJSON as the array of its lines (each one object).
        validator.validate([msgspec.json.decode(line) for line in text.splitlines()])
    else:
        validator.validate(text)
    return text


@pytest.fixture
async def pclient(config: Config, aiohttp_client: Any) -> Any:
    """A coord app with quick projections and a checkpoint on every tree batch."""
    cfg = msgspec.structs.replace(config, audit_checkpoint_interval=0.0)
    app = create_app(cfg)
    app[PROJECTION_SETTINGS] = fast_settings()
    return await aiohttp_client(app)


async def test_views_audit_and_projections_match_the_documented_schemas(
    pclient: Any, token_for: Any, document: dict[str, Any]
) -> None:
    """Views, audit and projection responses validate against their documented schemas."""
    client = pclient
    regional = bearer(await token_for(client, "regional", ["35.71"]))
    national = bearer(await token_for(client, "national"))
    auditor = bearer(await token_for(client, "auditor"))
    admin = bearer(await token_for(client, "admin"))
    hearing, issue, rec = new_id(), new_id(), new_id()
    writes = [
        (
            regional,
            f"hearing-{hearing}",
            append(
                0, ("HearingScheduled", hearing_scheduled()), ("StatementRecorded", statement())
            ),
        ),
        (regional, f"issue-{issue}", append(0, ("IssueRaised", issue_raised(hearing)))),
        (
            national,
            f"recommendation-{rec}",
            append(0, ("RecommendationDrafted", recommendation_drafted([issue]))),
        ),
    ]
    last = 0
    for who, sid, payload in writes:
        resp = await client.post(f"/v1/streams/{sid}/events", json=payload, headers=who)
        assert resp.status == 201, await resp.text()
        last = (await resp.json())["last_position"]

    views = [
        (
            "/v1/views/issues",
            "/v1/views/issues",
            {"sort": "severity", "category": "budget_honorarium"},
        ),
        ("/v1/views/issues/summary", "/v1/views/issues/summary", {}),
        ("/v1/views/issues/recurring", "/v1/views/issues/recurring", {}),
        ("/v1/views/issues/uncovered", "/v1/views/issues/uncovered", {}),
        ("/v1/views/recommendations", "/v1/views/recommendations", {}),
        ("/v1/views/recommendations/{id}", f"/v1/views/recommendations/{rec}", {}),
        ("/v1/views/regions/{code}", "/v1/views/regions/35", {}),
        ("/v1/views/hearings", "/v1/views/hearings", {"from": "2021-01-01"}),
        ("/v1/search", "/v1/search", {"q": "honorarium"}),
        ("/v1/views/activity", "/v1/views/activity", {}),
    ]
    for template, url, params in views:
        resp = await client.get(url, params={**params, "min_position": last}, headers=national)
        body = await _validate(resp, document, template, "get", 200)
        # The schemas saw real items, not just [] (the one issue is cited: nothing uncovered).
        if "items" in body and template != "/v1/views/issues/uncovered":
            assert body["items"], template
    missing = await client.get(f"/v1/views/recommendations/{new_id()}", headers=national)
    await _validate(missing, document, "/v1/views/recommendations/{id}", "get", 404)
    bad = await client.get("/v1/views/issues", params={"limit": "0"}, headers=national)
    await _validate(bad, document, "/v1/views/issues", "get", 422)

    resp = await client.get("/v1/projections", headers=national)
    projections = await _validate(resp, document, "/v1/projections", "get", 200)
    assert projections["items"]

    for _ in range(500):
        resp = await client.get("/v1/audit/tree-head", headers=auditor)
        if resp.status == 200 and (await resp.json())["tree_size"] >= last:
            break
        await asyncio.sleep(0.01)
    head = await _validate(resp, document, "/v1/audit/tree-head", "get", 200)
    size = head["tree_size"]
    stream = await (await client.get(f"/v1/streams/issue-{issue}", headers=auditor)).json()
    event_id = stream["events"][0]["id"]
    audit = [
        ("/v1/audit/public-key", "/v1/audit/public-key", {}, 200),
        ("/v1/audit/checkpoint", "/v1/audit/checkpoint", {"size": size}, 200),
        ("/v1/audit/checkpoint", "/v1/audit/checkpoint", {"size": size + 1000}, 409),
        ("/v1/audit/proof/inclusion", "/v1/audit/proof/inclusion", {"event_id": event_id}, 200),
        (
            "/v1/audit/proof/consistency",
            "/v1/audit/proof/consistency",
            {"first": 1, "second": size},
            200,
        ),
        ("/v1/audit/streams/{stream_id}", f"/v1/audit/streams/hearing-{hearing}", {}, 200),
        ("/v1/audit/export", "/v1/audit/export", {"from": 1, "to": size}, 200),
        # No leaves, no lines: an empty body is an empty export, also by the document.
        ("/v1/audit/export", "/v1/audit/export", {"to": 0}, 200),
        ("/v1/audit/export", "/v1/audit/export", {"from": 2, "to": 0}, 200),
    ]
    for template, url, params, status in audit:
        resp = await client.get(url, params=params, headers=auditor)
        await _validate(resp, document, template, "get", status)

    async with client.get("/v1/events/stream", headers=auditor) as resp:
        assert resp.status == 200
        media = document["paths"]["/v1/events/stream"]["get"]["responses"]["200"]["content"]
        assert resp.content_type in media

    resp = await client.post("/v1/projections/search/rebuild", headers=admin)
    await _validate(resp, document, "/v1/projections/{name}/rebuild", "post", 202)


async def test_view_parameters_say_what_the_server_refuses(document: dict[str, Any]) -> None:
    """The view parameters the server validates carry the same constraint in the document:
    categories an enum, codes an ASCII pattern, hearing a UUID, min_position bounded."""

    def schema(path: str, name: str) -> dict[str, Any]:
        params = document["paths"][path]["get"]["parameters"]
        found: dict[str, Any] = next(p for p in params if p["name"] == name)["schema"]
        return found.get("anyOf", [found])[0]

    assert set(schema("/v1/views/issues", "category")["items"]["enum"]) == set(
        get_args(CategoryCode)
    )
    assert schema("/v1/views/hearings", "province")["items"]["pattern"] == "^[0-9]{2}$"
    assert schema("/v1/views/activity", "region")["items"]["pattern"].startswith("^[0-9]{2}")
    # Only the lowercase canonical spelling of a UUID (issue 12): a pattern, not `format`.
    assert schema("/v1/views/issues/summary", "hearing")["pattern"] == (
        "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )
    for name in ("min_position", "X-Min-Position"):
        bounded = schema("/v1/views/issues", name)
        assert (bounded["minimum"], bounded["maximum"]) == (0, 2**62)
    export = document["paths"]["/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert export["application/x-ndjson"]["schema"]["type"] == "array"
    # `similarity` is kept for compatibility only: deprecated and said to be ignored.
    for path in ("/v1/views/issues/recurring", "/v1/views/issues/uncovered"):
        params = document["paths"][path]["get"]["parameters"]
        similarity = next(p for p in params if p["name"] == "similarity")
        assert similarity["deprecated"] is True
        assert "ignored" in similarity["schema"]["description"]
        assert (similarity["schema"]["minimum"], similarity["schema"]["maximum"]) == (0.05, 1.0)
