"""Serving the app over TCP: coord's own answer to requests aiohttp could not parse.

aiohttp answers a request it cannot parse (a control character in a header, a header
longer than 8 KiB) itself, before any middleware runs: a `400 text/plain` whose body
quotes the offending header line, after logging that line with a traceback. When the
header is `Authorization`, that writes the bearer token into the log and echoes it to
whoever is on the wire. coord replaces that handler: the answer is an RFC 9457 problem
that names the kind of error only, and the log line carries the error's class, never
its message (which quotes the bytes).

The header read deadline is aiohttp's keep-alive timer: it runs from the moment a
connection opens (or its previous response was sent) until a whole request head has
arrived, so a client that trickles its headers is cut off after `header_timeout`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from coord.config import Config
from coord.problems import Problem

log = structlog.get_logger("coord.server")


def parser_problem(status: int, exc: BaseException | None) -> Problem:
    """The problem for a request the HTTP layer refused; it never quotes the request."""
    if status == 500:
        return Problem(
            500, "internal", "Internal server error", "an unexpected error occurred; it is logged"
        )
    if status == 504:
        return Problem(504, "timeout", "Gateway timeout", "the request took too long")
    if isinstance(exc, LineTooLong):
        detail = "the request line or a header is longer than 8190 bytes"
    else:
        detail = "the request line or a header is malformed (control characters are refused)"
    return Problem(400, "malformed", "Malformed request", detail)


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as problems without echo."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer an error raised outside the app's middlewares (parser errors, mostly)."""
        if isinstance(exc, HttpProcessingError) or status < 500:
            # The exception's text quotes the raw header (maybe a token): log its class only.
            log.warning(
                "http.malformed_request",
                status=status,
                error=type(exc).__name__ if exc else None,
                remote=request.remote,
            )
        else:
            log.error("http.unhandled_error", status=status, error=type(exc).__name__)
        if request.writer.output_size > 0:
            # Part of a response is on the wire already: the connection is lost anyway.
            raise ConnectionError("response already started; cannot send an error")
        response = parser_problem(status, exc).response()
        response.force_close()
        return response


class ProblemServer(web.Server):
    """A `web.Server` whose connections use :class:`ProblemRequestHandler`."""

    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class CoordRunner(web.AppRunner):
    """An `AppRunner` serving through :class:`ProblemServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same handler, factory and keyword arguments; only the connection class differs.
        return ProblemServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )


def runner_for(app: web.Application, config: Config, **kwargs: Any) -> CoordRunner:
    """The runner with coord's connection settings (header deadline, no access log)."""
    return CoordRunner(
        app,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=config.header_timeout,
        # After an early answer (413, 408), read and drop what is left of a body for at
        # most this long, then close: a slow body cannot hold the connection.
        lingering_time=min(config.body_timeout, 2.0),
        **kwargs,
    )


async def serve(app: web.Application, config: Config, *, reuse_port: bool = False) -> None:
    """Serve `app` until SIGINT/SIGTERM, then finish in-flight requests and clean up."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = runner_for(app, config, shutdown_timeout=10)
    try:
        # Inside the try: a start-up that fails half way still runs the cleanup contexts.
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port or None)
        await site.start()
        print(f"======== Running on http://{config.host}:{config.port} ========", file=sys.stderr)
        await stop.wait()
    finally:
        await runner.cleanup()
