"""`GET /v1/openapi.json`: the OpenAPI 3.1 document of this app (public)."""

from __future__ import annotations

import weakref
from typing import Any

import msgspec
from aiohttp import web

from coord import openapi
from coord.apidoc import documented

routes = web.RouteTableDef()

# The router is frozen once the app starts, so the document is built once per app.
_documents: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()


@routes.get("/v1/openapi.json")
@documented(responses={200: dict[str, Any]}, summary="This document.", tags=("health",))
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document, generated from the routes and their msgspec types."""
    app = request.app
    body = _documents.get(app)
    if body is None:
        body = _documents[app] = msgspec.json.encode(openapi.build(app))
    return web.Response(body=body, content_type="application/json")
