"""Konsol: the web console served by coord itself at `/` (the JSON API stays under `/v1`).

Server-rendered HTML (Jinja2 through aiohttp-jinja2, autoescaped), a stylesheet and a
little plain JavaScript shipped in this package: no CDN, no build step, every page works
without JavaScript. Reads use the projections' query functions, writes the API's write
path; sign-in turns a pasted token into a server-side session bound to that token.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from coord.console import admin, assets, audit, clusters, detail, exports, forms, live, pages
from coord.console.frame import harden


def highlight(snippet: str) -> Markup:
    """A search snippet, escaped, with the search's own ``<b>`` marks as ``<mark>``.

    The snippet is user text with ``<b>``/``</b>`` put in by ts_headline: everything is
    escaped first, then only those exact escaped tags become marks (no attributes, no
    other markup can survive).
    """
    escaped = str(escape(snippet))
    return Markup(escaped.replace("&lt;b&gt;", "<mark>").replace("&lt;/b&gt;", "</mark>"))


def setup_console(app: web.Application) -> None:
    """Mount the console's pages, forms, downloads and static files on `app`."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("coord.console", "templates"),
        # Every value is escaped unless a template says otherwise (none does with user text).
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        default_helpers=False,
        filters={"highlight": highlight},
    )
    app.add_routes(forms.routes)
    app.add_routes(exports.routes)
    app.add_routes(pages.routes)
    app.add_routes(detail.routes)
    app.add_routes(clusters.routes)
    app.add_routes(admin.routes)
    app.add_routes(live.routes)
    app.add_routes(audit.routes)
    app.add_routes(assets.routes)
    app.on_response_prepare.append(_harden_console_responses)


async def _harden_console_responses(request: web.Request, response: web.StreamResponse) -> None:
    # Every answer outside the JSON API wears the console's headers, including the errors
    # that middlewares answer before a console handler runs (a bad query, a rate limit).
    if not request.path.startswith("/v1"):
        harden(response)
