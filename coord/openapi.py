"""The OpenAPI 3.1 document, generated from the app's routes and msgspec types.

Nothing here is a hand-written schema: every body and response schema comes from
`msgspec.json.schema_components` over the Structs the handlers decode and encode.
The paths come from walking `app.router`, so every route is in the document:

* a handler declares its types with :func:`coord.apidoc.documented`
  (``@routes.get(...)`` above ``@documented(...)``), next to the handler: this
  module imports no handler module, or
* it is included with a generic description, flagged ``x-coord-undocumented``
  and listed in the document's root ``x-coord-undocumented`` (tests report them).

Example::

    @routes.get("/v1/views/issues")
    @documented(query=IssueBoardQuery, responses={200: IssuePage}, errors=(422,))
    async def issue_board(request: web.Request) -> web.Response: ...

`errors` lists the statuses particular to the route; 401/403/429 (non-public routes),
422 (routes with a query, path parameters or body), 408/413/415 (routes with a
body), 400, 500 and 503 are added to every route they apply to (429 and 503 with
`Retry-After`). Error bodies are
`application/problem+json` (the `ProblemDetails` schema). HEAD twins of GET routes
(aiohttp adds them) are not listed; HEAD is served wherever GET is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from coord.apidoc import AllOf, Body, Operation
from coord.auth import PUBLIC_PATHS
from coord.problems import PROBLEM_JSON
from events.domain.rules import RULES
from events.domain.types import EVENT_TYPES, SCHEMA_VERSIONS, STREAM_CATEGORIES

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Malformed request (JSON body, request line or header)",
    408: "The request body did not arrive in time",
    401: "Missing, unknown or revoked bearer token",
    403: "Outside the token's role or regions",
    404: "Not found",
    409: (
        "Conflict with the current state (version, duplicate id, domain rule, or on a "
        "federated region a stream id another node holds: `stream-id-taken`, `home_node`)"
    ),
    413: "Body too large",
    415: "Unsupported media type",
    421: "Written on the wrong node of a federation (`home_node` names the right one)",
    422: "Invalid request (`field` names the path)",
    429: "Rate limit reached, or too many open live feeds (see `Retry-After`)",
    500: "Internal error",
    503: "Unavailable: database down, full or slow, or a deadline passed (see `Retry-After`)",
}
# Statuses that carry `Retry-After` (seconds).
_RETRY_AFTER = frozenset({429, 503})


# --- wire shapes of handlers that build their responses as dicts -----------------------
# Tests validate real responses against these, so they cannot drift silently.


class ProblemDetails(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem; members after `instance` appear where they apply."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    #: the English detail, when ``Accept-Language: id`` put ``detail`` in Indonesian
    detail_en: str | None = None
    field: str | None = None
    rule: str | None = None
    stream_id: str | None = None
    expected_version: int | str | None = None
    actual_version: int | None = None
    event_id: str | None = None


# --- parameters --------------------------------------------------------------------------


# --- generation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One method + path template served by the app, and the handler behind it."""

    method: str
    path: str
    handler: Callable[..., Any]


def app_routes(app: web.Application) -> list[Route]:
    """Every (method, path) the app serves, except HEAD twins of GET routes."""
    found: list[Route] = []
    gets: set[tuple[str, Any]] = set()
    heads: list[Route] = []
    for r in app.router.routes():
        if r.resource is None or console_route(r):
            continue
        route = Route(method=r.method.upper(), path=r.resource.canonical, handler=r.handler)
        if route.method == "HEAD":
            heads.append(route)
            continue
        if route.method == "GET":
            gets.add((route.path, route.handler))
        found.append(route)
    found.extend(h for h in heads if (h.path, h.handler) not in gets)
    return found


def console_route(route: web.AbstractRoute) -> bool:
    """A web console page or static file (coord/console): HTML for people, not the API."""
    return isinstance(route.resource, web.StaticResource) or getattr(
        route.handler, "console_page", False
    )


def operation_for(route: Route) -> Operation | None:
    """The declared operation of a route: the handler's `@documented`, if any."""
    declared = getattr(route.handler, "__openapi__", None)
    return declared if isinstance(declared, Operation) else None


class _Types:
    """Collects every type the document refers to, then resolves them to schemas in one go."""

    def __init__(self) -> None:
        self.types: list[Any] = []
        self.index: dict[int, int] = {}
        self.schemas: list[dict[str, Any]] = []

    def add(self, t: Any) -> int:
        key = id(t)
        if key not in self.index:
            self.index[key] = len(self.types)
            self.types.append(t)
        return self.index[key]

    def resolve(self) -> dict[str, Any]:
        schemas, components = msgspec.json.schema_components(self.types, ref_template=REF)
        self.schemas = list(schemas)
        return dict(components)

    def schema(self, t: Any) -> dict[str, Any]:
        return self.schemas[self.index[id(t)]]


def _media(value: Any) -> list[Body]:
    if isinstance(value, Body):
        return [value]
    if isinstance(value, tuple) and all(isinstance(v, Body) for v in value):
        return list(value)
    return [Body(value)]


def _collect(types: _Types, value: Any) -> None:
    if value is None:
        return
    for body in _media(value):
        if isinstance(body.type, AllOf):
            for t in body.type.types:
                types.add(t)
        elif body.type is not None:
            types.add(body.type)


def _schema_of(types: _Types, t: Any) -> dict[str, Any]:
    if isinstance(t, AllOf):
        return {"allOf": [types.schema(x) for x in t.types]}
    if t is None:
        return {}
    return types.schema(t)


def _content(types: _Types, value: Any) -> dict[str, Any]:
    return {b.media_type: {"schema": _schema_of(types, b.type)} for b in _media(value)}


def _struct_params(
    components: dict[str, Any], struct: type[msgspec.Struct], where: str
) -> list[dict[str, Any]]:
    """Parameters from a Struct's fields (its component's properties)."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    component = components[struct.__name__]
    params = []
    for f in info.fields:
        param: dict[str, Any] = {
            "name": f.encode_name,
            "in": where,
            "required": where == "path" or f.required,
            "schema": component["properties"][f.encode_name],
        }
        if param["schema"].get("deprecated"):
            param["deprecated"] = True  # a parameter kept for compatibility, ignored
        params.append(param)
    return params


def _operation_id(route: Route, seen: set[str]) -> str:
    name = getattr(route.handler, "__name__", "handler")
    candidate = name
    if candidate in seen:
        module = getattr(route.handler, "__module__", "").rsplit(".", 1)[-1]
        candidate = f"{module}_{name}_{route.method.lower()}"
    seen.add(candidate)
    return candidate


def _docstring(handler: Callable[..., Any]) -> tuple[str | None, str | None]:
    doc = (getattr(handler, "__doc__", None) or "").strip()
    if not doc:
        return None, None
    first, _, rest = doc.partition("\n")
    return first.strip(), rest.strip() or None


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _REASONS.get(status, f"HTTP {status}"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(name="ProblemDetails")}}},
    }
    if status in _RETRY_AFTER:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def build(app: web.Application, *, title: str = "coord", version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`; unknown routes get a generic, flagged entry."""
    routes = app_routes(app)
    types = _Types()
    types.add(ProblemDetails)
    for cls in EVENT_TYPES.values():
        types.add(cls)
    ops: list[tuple[Route, Operation | None]] = [(r, operation_for(r)) for r in routes]
    for _, op in ops:
        if op is None:
            continue
        _collect(types, op.body)
        for value in op.responses.values():
            _collect(types, value)
        for struct in (op.query, op.path):
            if struct is not None:
                types.add(struct)
        for t in (*op.headers.values(), *op.response_headers.values()):
            types.add(t)
    components = types.resolve()

    paths: dict[str, dict[str, Any]] = {}
    undocumented: list[str] = []
    seen_ids: set[str] = set()
    for route, op in sorted(ops, key=lambda item: (item[0].path, item[0].method)):
        methods = (
            ["get", "put", "post", "delete", "patch"]
            if route.method == "*"
            else [route.method.lower()]
        )
        for method in methods:
            entry = _operation(route, op, types, components, seen_ids)
            paths.setdefault(route.path, {})[method] = entry
        if op is None:
            undocumented.append(f"{route.method} {route.path}")

    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Event-sourced coordination backend for election-readiness work. "
                "Errors are RFC 9457 `application/problem+json`. The `data` of each event "
                "type is described by the component schema of the same name "
                "(see `x-coord-event-types`)."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A coord token: `Authorization: Bearer coord_...`.",
                }
            },
        },
        "x-coord-event-types": {
            name: {
                "schema": {"$ref": REF.format(name=cls.__name__)},
                "stream_category": STREAM_CATEGORIES[name],
                "schema_version": SCHEMA_VERSIONS[name],
            }
            for name, cls in EVENT_TYPES.items()
        },
        # Every domain rule a problem body may name (`rule`), with its status.
        "x-coord-rules": {
            rule: {"status": status, "description": text}
            for rule, (status, text) in sorted(RULES.items())
        },
        "x-coord-undocumented": sorted(undocumented),
    }
    # msgspec leaves defaults as Python values (a tuple default is `()`): make it plain JSON.
    plain: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(doc))
    return plain


def _operation(
    route: Route,
    op: Operation | None,
    types: _Types,
    components: dict[str, Any],
    seen_ids: set[str],
) -> dict[str, Any]:
    summary, description = _docstring(route.handler)
    public = route.path in PUBLIC_PATHS
    entry: dict[str, Any] = {"operationId": _operation_id(route, seen_ids)}
    params: list[dict[str, Any]] = []
    declared_path: set[str] = set()
    # Any route: a request the HTTP layer cannot parse (400); the database down or a
    # request deadline passed (503). Routes with a token: rate limits (429).
    errors: set[int] = {400, 500, 503}
    if not public:
        errors |= {401, 403, 429}
    else:
        entry["security"] = []
    if op is None:
        entry["x-coord-undocumented"] = True
        entry["summary"] = summary or f"{route.method} {route.path}"
        entry["description"] = (description or "") + (
            "\n\nThis route declares no types yet (coord.apidoc.documented)."
        ).strip()
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": {}}}}
        }
    else:
        entry["summary"] = op.summary or summary or f"{route.method} {route.path}"
        if description:
            entry["description"] = description
        if op.tags:
            entry["tags"] = list(op.tags)
        if op.roles:
            entry["x-coord-roles"] = list(op.roles)
        if op.path is not None:
            path_params = _struct_params(components, op.path, "path")
            declared_path = {p["name"] for p in path_params}
            params.extend(path_params)
        if op.query is not None:
            params.extend(_struct_params(components, op.query, "query"))
            errors.add(422)
        for name, t in op.headers.items():
            params.append(
                {"name": name, "in": "header", "required": False, "schema": types.schema(t)}
            )
        if op.body is not None:
            entry["requestBody"] = {
                "required": op.body_required,
                "content": _content(types, op.body),
            }
            errors |= {400, 408, 413, 415, 422}
        errors |= set(op.errors)
        responses = {}
        for status, value in sorted(op.responses.items()):
            response: dict[str, Any] = {"description": _REASONS.get(status, f"HTTP {status}")}
            if value is not None:
                response["content"] = _content(types, value)
            if op.response_headers and 200 <= status < 300:
                response["headers"] = {
                    name: {"schema": types.schema(t)} for name, t in op.response_headers.items()
                }
            responses[str(status)] = response
    for name in _PATH_PARAM.findall(route.path):
        if name not in declared_path:
            params.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )
        errors.add(422)
    if params:
        entry["parameters"] = params
    for status in sorted(errors):
        responses.setdefault(str(status), _problem(status))
    entry["responses"] = responses
    return entry
