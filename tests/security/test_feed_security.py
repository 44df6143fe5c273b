"""The live feed under attack: revoked tokens, too many feeds, clients that never read,
out-of-range positions and clients that vanish (issue 12, items 5, 6 and 8).

The app is served as `coord serve` serves it (an `AppRunner`, no handler cancellation
on disconnect), except where a test says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec
import pytest
import structlog
from aiohttp import web

from coord.app import create_app
from coord.auth import TOKENS
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS, TOKEN_SERVICE
from coord.problems import PROBLEM_JSON
from tests.api.payloads import append, hearing_scheduled, new_id, statement
from tests.api.test_metrics import sample, scrape
from tests.api.test_views import fast_settings
from tests.conftest import bearer, free_port

STREAM = "/v1/events/stream"


class Served:
    """A coord app served on a real port, and a client session for it."""

    def __init__(self, app: web.Application, runner: web.AppRunner, url: str) -> None:
        self.app = app
        self.runner = runner
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.session = aiohttp.ClientSession(url)
        self._responses: list[aiohttp.ClientResponse] = []

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        """GET, the response closed when the server stops."""
        resp = await self.session.get(path, **kw)
        self._responses.append(resp)
        return resp

    async def request(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        """Any request, its body read and the response released."""
        resp = await self.session.request(method, path, **kw)
        await resp.read()
        resp.release()
        return resp

    async def close(self) -> None:
        """Close every response and the session."""
        for resp in self._responses:
            resp.close()
        await self.session.close()

    async def token(self, role: str, regions: list[str] | None = None) -> tuple[str, str]:
        """A fresh token of `role`: (token, token id)."""
        issued = await self.app[TOKEN_SERVICE].issue(
            role=role, name=f"{role} {new_id()[:8]}", regions=regions or []
        )
        return issued.token, issued.token_id

    async def hearing(self, who: dict[str, str], *statements: str) -> int:
        """A new hearing stream with these statements; the last position."""
        events: list[Any] = [("HearingScheduled", hearing_scheduled())]
        events += [("StatementRecorded", statement(text)) for text in statements]
        resp = await self.session.post(
            f"/v1/streams/hearing-{new_id()}/events", json=append(0, *events), headers=who
        )
        async with resp:
            assert resp.status == 201, await resp.text()
            return int((await resp.json())["last_position"])

    def server_connections(self) -> list[Any]:
        """The server's open connections (aiohttp request handlers)."""
        server = self.runner.server
        assert server is not None
        return list(server.connections)


@pytest.fixture
def serve(config: Config) -> Callable[..., contextlib.AbstractAsyncContextManager[Served]]:
    """`async with serve(**config_overrides) as s:` a coord server on a free port."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Served]:
        app = create_app(msgspec.structs.replace(config, **overrides))
        app[PROJECTION_SETTINGS] = fast_settings()
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        served = Served(app, runner, f"http://127.0.0.1:{port}")
        try:
            yield served
        finally:
            await served.close()
            await runner.cleanup()

    return start


async def read_until_end(resp: aiohttp.ClientResponse, timeout: float) -> list[dict[str, Any]]:
    """Every event of an SSE response until the server ends it (fails after `timeout`)."""
    events = []
    async with asyncio.timeout(timeout):
        while line := await resp.content.readline():
            if line.startswith(b"data: "):
                events.append(msgspec.json.decode(line[6:]))
    return events


async def next_event(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next SSE event's data."""
    async with asyncio.timeout(5):
        while True:
            line = await resp.content.readline()
            assert line, "the feed ended"
            if line.startswith(b"data: "):
                data: dict[str, Any] = msgspec.json.decode(line[6:])
                return data


async def test_revocation_closes_open_feed_within_a_second(serve: Any) -> None:
    """A token revoked through the API loses its open feed at once, and nothing after."""
    async with serve(background=False) as s:
        admin, _ = await s.token("admin")
        writer, _ = await s.token("regional", ["35"])
        watched, watched_id = await s.token("national")
        resp = await s.get(STREAM, headers=bearer(watched))
        assert resp.status == 200
        before = await s.hearing(bearer(writer), "Sebelum dicabut.")
        while (await next_event(resp))["position"] < before:
            pass
        revoke = await s.request("DELETE", f"/v1/tokens/{watched_id}", headers=bearer(admin))
        assert revoke.status == 204
        revoked_at = time.monotonic()
        after = await s.hearing(bearer(writer), "Sesudah dicabut.")
        late = await read_until_end(resp, 5)
        closed_in = time.monotonic() - revoked_at
        assert closed_in < 1.0, f"the feed stayed open {closed_in:.2f} s after the revocation"
        assert not [e for e in late if e["position"] >= after - 1], late
        assert s.app[TOKENS].open_feeds(watched_id) == 0
        again = await s.get(STREAM, headers=bearer(watched))
        assert again.status == 401


async def test_lost_notice_is_caught_by_the_recheck(serve: Any, monkeypatch: Any) -> None:
    """A revocation whose NOTIFY never came still ends the feed at the next re-check."""
    monkeypatch.setattr("coord.http.feed._RECHECK", 0.5)
    async with serve(background=False) as s:
        watched, watched_id = await s.token("national")
        resp = await s.get(STREAM, headers=bearer(watched))
        assert await resp.content.readline() == b"retry: 2000\n"
        # Revoked behind coord's back: no event, no notification.
        await s.app[TOKENS]._pool.execute(
            "UPDATE access_tokens SET revoked_at = now() WHERE token_id = $1::text::uuid",
            watched_id,
        )
        started = time.monotonic()
        await read_until_end(resp, 5)
        assert time.monotonic() - started < 2.0
        # ... and the process no longer takes the token from its cache.
        assert (await s.request("GET", "/v1/events", headers=bearer(watched))).status == 401


async def test_notice_for_a_live_token_keeps_its_feed(serve: Any, database_url: str) -> None:
    """`coord_tokens` also carries replicated grants: a notice alone closes nothing."""
    async with serve(background=False) as s:
        watched, watched_id = await s.token("national")
        writer, _ = await s.token("regional", ["35"])
        resp = await s.get(STREAM, headers=bearer(watched))
        pool = s.app[TOKENS]._pool  # the app's own pool: a NOTIFY as replication sends it
        await pool.execute("SELECT pg_notify('coord_tokens', $1)", watched_id)
        await asyncio.sleep(0.5)
        position = await s.hearing(bearer(writer), "Masih tersambung.")
        while (await next_event(resp))["position"] < position:
            pass
        assert s.app[TOKENS].open_feeds(watched_id) == 1
        resp.close()


async def test_feeds_per_token_are_limited(serve: Any) -> None:
    """The ninth feed of one token is a 429 problem with Retry-After; others are unaffected."""
    async with serve(background=False) as s:
        token, token_id = await s.token("national")
        other, _ = await s.token("national")
        feeds = []
        for _ in range(8):
            resp = await s.get(STREAM, headers=bearer(token))
            assert resp.status == 200
            feeds.append(resp)
        refused = await s.get(STREAM, headers=bearer(token))
        assert refused.status == 429
        assert refused.content_type == PROBLEM_JSON
        assert int(refused.headers["Retry-After"]) >= 1
        body = await refused.json()
        assert body["type"] == "urn:coord:problem:too-many-feeds" and body["limit"] == 8
        assert (await s.get(STREAM, headers=bearer(other))).status == 200
        # A feed that ends gives its place back (noticed within about a second).
        feeds.pop().close()
        async with asyncio.timeout(5):
            while s.app[TOKENS].open_feeds(token_id) > 7:
                await asyncio.sleep(0.05)
        assert (await s.get(STREAM, headers=bearer(token))).status == 200


async def test_feed_limit_is_configurable(serve: Any) -> None:
    """`sse_connections_per_token` sets the limit."""
    async with serve(background=False, sse_connections_per_token=2) as s:
        token, _ = await s.token("auditor")
        statuses = [(await s.get(STREAM, headers=bearer(token))).status for _ in range(3)]
        assert statuses == [200, 200, 429]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("after", "1e20"),
        ("after", "100000000000000000000"),
        ("after", "9223372036854775808"),
        ("after", str(2**62 + 1)),
        ("after", "-1"),
        ("after", "1.5"),
        ("after", "0x10"),
        ("after", "\u0663"),  # an Arabic-Indic three: int() would take it
        ("after", "1_000"),
        ("Last-Event-ID", "1e20"),
        ("Last-Event-ID", "18446744073709551616"),
        ("Last-Event-ID", "-5"),
        ("Last-Event-ID", "+5"),
        ("Last-Event-ID", str(2**62 + 1)),
    ],
)
async def test_out_of_range_positions_are_refused_before_the_stream(
    serve: Any, param: str, value: str
) -> None:
    """Positions beyond 2^62 (or not decimal) are a 422 problem, not a 500 in the stream."""
    async with serve(background=False) as s:
        token, _ = await s.token("national")
        if param == "after":
            resp = await s.get(STREAM, params={"after": value}, headers=bearer(token))
            field = "query.after"
        else:
            resp = await s.get(STREAM, headers={**bearer(token), param: value})
            field = "header.Last-Event-ID"
        assert resp.status == 422, resp.headers.get("Content-Type")
        assert resp.content_type == PROBLEM_JSON
        assert (await resp.json())["field"] == field


async def test_largest_position_is_accepted(serve: Any) -> None:
    """The largest position a query may name is a valid (if distant) place to start."""
    async with serve(background=False) as s:
        token, _ = await s.token("national")
        resp = await s.get(STREAM, params={"after": str(2**62)}, headers=bearer(token))
        assert resp.status == 200
        assert await resp.content.readline() == b"retry: 2000\n"
        resp.close()


async def _disconnect_quietly(app: web.Application, url: str) -> None:
    national = bearer(str((await app[TOKEN_SERVICE].issue(role="national", name="n")).token))
    writer = bearer(
        str((await app[TOKEN_SERVICE].issue(role="regional", name="w", regions=["35"])).token)
    )
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession(url) as session:
            for _ in range(3):
                resp = await session.get(STREAM, headers=national)
                assert await resp.content.readline() == b"retry: 2000\n"
                resp.close()  # the client goes away mid-stream
            for _ in range(3):
                body = append(0, ("HearingScheduled", hearing_scheduled()))
                async with session.post(
                    f"/v1/streams/hearing-{new_id()}/events", json=body, headers=writer
                ) as posted:
                    assert posted.status == 201
            async with asyncio.timeout(5):  # heartbeats are 0.3 s: each feed writes and ends
                while (
                    sum(1 for e in logs if e.get("event") == "request" and e.get("path") == STREAM)
                    < 3
                ):
                    await asyncio.sleep(0.05)
            samples = await scrape(_Client(session))
    errors = [e for e in logs if e.get("log_level") in ("error", "critical")]
    assert not errors, errors
    assert (
        sample(samples, "coord_http_requests_total", method="GET", route=STREAM, status="500")
        is None
    )
    assert not any(
        status.startswith("5")
        for (name, labels), _ in samples.items()
        if name == "coord_http_requests_total" and ("route", STREAM) in labels
        for key, status in labels
        if key == "status"
    )


class _Client:
    """What `scrape` needs of a client: `get`."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def get(self, path: str) -> aiohttp.ClientResponse:
        return await self.session.get(path)


async def test_client_that_disconnects_is_not_an_error(serve: Any) -> None:
    """A vanished SSE client is neither logged as an error nor counted as a 5xx."""
    async with serve() as s:
        await _disconnect_quietly(s.app, s.url)


async def test_client_that_disconnects_is_not_an_error_with_cancellation(
    config: Config, aiohttp_client: Any
) -> None:
    """The same where the server cancels the handler on disconnect (aiohttp's test server)."""
    app = create_app(config)
    app[PROJECTION_SETTINGS] = fast_settings()
    client = await aiohttp_client(app)
    await _disconnect_quietly(app, str(client.make_url("")).rstrip("/"))


async def test_client_that_stops_reading_is_dropped(serve: Any) -> None:
    """A client that never reads is disconnected; the server never holds more than the bound."""
    bound = 64 * 1024
    async with serve(background=False, sse_buffer_bytes=bound, sse_stall_timeout=1.0) as s:
        token, token_id = await s.token("national")
        writer, _ = await s.token("regional", ["35"])
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", s.port))
        request = (
            f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        mine = sock.getsockname()
        async with asyncio.timeout(5):
            while not (
                found := [
                    h
                    for h in s.server_connections()
                    if h.transport is not None and h.transport.get_extra_info("peername") == mine
                ]
            ):
                await asyncio.sleep(0.02)
        (handler,) = found
        transport = handler.transport
        most = 0
        written = 0

        async def watch() -> None:
            nonlocal most
            while not transport.is_closing():
                most = max(most, transport.get_write_buffer_size())
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        text = "Pernyataan panjang yang tidak pernah dibaca oleh klien ini. " * 330  # ~20 KB
        started = time.monotonic()
        try:
            # About 10 MB of events: far more than the kernel's socket buffers take.
            while not transport.is_closing() and written < 12:
                await s.hearing(bearer(writer), *([text] * 40))
                written += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while not transport.is_closing():
                        await asyncio.sleep(0.05)
            dropped_after = time.monotonic() - started
            assert transport.is_closing(), f"still connected; {most} unsent bytes held"
        finally:
            watcher.cancel()
            sock.close()
        assert most <= bound, f"held {most} unsent bytes for one client (bound {bound})"
        assert dropped_after < 10
        async with asyncio.timeout(5):
            while handler in s.server_connections() or s.app[TOKENS].open_feeds(token_id):
                await asyncio.sleep(0.05)
        # The server still serves everyone else.
        other = await s.get(STREAM, headers=bearer(token))
        assert other.status == 200
        other.close()


async def test_openapi_documents_the_feed_limits(serve: Any) -> None:
    """The stream route's document lists the 429 and the bound of its positions."""
    async with serve(background=False) as s:
        doc = await (await s.get("/v1/openapi.json")).json()
        op = doc["paths"][STREAM]["get"]
        assert {"422", "429"} <= set(op["responses"])
        params = {p["name"]: p["schema"] for p in op["parameters"]}
        # `after` is a position or "head": the integer branch carries the bound.
        after = next(s for s in params["after"].get("anyOf", [params["after"]]) if "maximum" in s)
        assert after["maximum"] == params["Last-Event-ID"]["maximum"] == 2**62
