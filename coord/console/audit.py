"""The auditor's page: the log's signed checkpoint, an event's inclusion and the log's
consistency, checked by the reader's own browser.

The page ships no verdict: it fetches the verifier key, the checkpoint and the proofs
(the very answers of `/v1/audit/*`, here through the session, since a page cannot send a
bearer header) and `static/audit.js` checks them with WebCrypto (Ed25519 signature,
SHA-256 for the RFC 9162 proofs, docs/audit-format.md). The key is pinned in the browser
on first visit and a changed key is reported, not trusted.
"""

from __future__ import annotations

from aiohttp import web

from coord.console.frame import page, render
from coord.http import audit as audit_api

routes = web.RouteTableDef()

_READERS = audit_api.READERS


@routes.get("/audit")
@page(*_READERS)
async def audit_page(request: web.Request) -> web.StreamResponse:
    """The page; every check runs in the browser (static/audit.js)."""
    return render(request, "audit.html", {"event_id": request.query.get("event_id", "")[:36]})


# The API's own handlers, reached with the session's principal (the role checks,
# region scoping and errors are theirs). Answers are JSON for audit.js.


@routes.get("/audit/data/public-key")
@page(*_READERS)
async def audit_public_key(request: web.Request) -> web.StreamResponse:
    """As `GET /v1/audit/public-key`."""
    return await audit_api.public_key(request)


@routes.get("/audit/data/tree-head")
@page(*_READERS)
async def audit_tree_head(request: web.Request) -> web.StreamResponse:
    """As `GET /v1/audit/tree-head` (latest, or `?size=N`)."""
    return await audit_api.tree_head(request)


@routes.get("/audit/data/inclusion")
@page(*_READERS)
async def audit_inclusion(request: web.Request) -> web.StreamResponse:
    """As `GET /v1/audit/proof/inclusion`."""
    return await audit_api.inclusion_proof(request)


@routes.get("/audit/data/consistency")
@page(*_READERS)
async def audit_consistency(request: web.Request) -> web.StreamResponse:
    """As `GET /v1/audit/proof/consistency`."""
    return await audit_api.consistency_proof(request)
