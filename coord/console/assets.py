"""The console's stylesheet, scripts and icon, read once and answered from memory.

They are a few kilobytes shipped in this package. aiohttp's static route opens the file
per request in a thread, and a browser that drops the connection while that runs leaves
the file object unclosed (a ResourceWarning on every hurried page change); from memory
there is nothing to leak, and the ETag lets the browser revalidate cheaply.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from aiohttp import web

routes = web.RouteTableDef()

_DIR = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    assets = {}
    for path in sorted(_DIR.iterdir()):
        if path.is_file():
            body = path.read_bytes()
            kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[path.name] = (body, kind or "application/octet-stream", etag)
    return assets


_ASSETS = _load()


@routes.get("/static/{name}")
async def asset(request: web.Request) -> web.StreamResponse:
    """A file of `coord/console/static` (404 for anything else)."""
    found = _ASSETS.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, kind, etag = found
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if kind.startswith("text/") or kind.endswith("+xml") else None
    return web.Response(body=body, content_type=kind, charset=charset, headers=headers)


# Left out of the OpenAPI document (coord/openapi.py): a file, not an API operation.
setattr(asset, "console_page", True)  # noqa: B010
