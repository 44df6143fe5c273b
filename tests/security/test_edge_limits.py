"""Issue 12 item 8 (HTTP edge): rate limits per token and per address, a stricter limit for
rebuilds, and deadlines for slow headers and bodies. None of them answers a 5xx."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from coord.app import create_app
from coord.config import Config
from tests.conftest import bearer, cli_token
from tests.security.edge_server import coord_serve, raw_exchange

PROBLEM = "application/problem+json"


async def _limited_client(aiohttp_client: Any, config: Config, **limits: Any) -> Any:
    return await aiohttp_client(create_app(msgspec.structs.replace(config, **limits)))


async def test_bad_tokens_are_throttled_per_address(
    config: Config, aiohttp_client: Any, token_for: Any
) -> None:
    """Guessing tokens: after the burst, 429 + Retry-After with no lookup; good tokens pass."""
    client = await _limited_client(
        aiohttp_client, config, rate_limit_unauthenticated=0.5, rate_limit_unauthenticated_burst=5
    )
    good = bearer(await token_for(client, "national"))
    assert (await client.get("/v1/events?limit=1", headers=good)).status == 200
    statuses = []
    for i in range(40):
        resp = await client.get("/v1/events", headers=bearer(f"coord_guess{i:040d}"))
        statuses.append(resp.status)
        if resp.status == 429:
            assert resp.content_type == PROBLEM
            assert int(resp.headers["Retry-After"]) >= 1
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    resp = await client.get("/v1/events")  # no token at all counts the same
    assert resp.status == 429
    # A token this process already verified is not locked out by its neighbours.
    assert (await client.get("/v1/events?limit=1", headers=good)).status == 200
    assert (await client.get("/healthz")).status == 200  # public paths are not limited


async def test_each_token_has_its_own_bucket(
    config: Config, aiohttp_client: Any, token_for: Any
) -> None:
    """Past a token's burst: 429 with Retry-After; another token is unaffected."""
    client = await _limited_client(
        aiohttp_client, config, rate_limit_per_token=0.5, rate_limit_burst=3
    )
    hasty = bearer(await token_for(client, "national", name="hasty"))
    calm = bearer(await token_for(client, "national", name="calm"))
    statuses = [(await client.get("/v1/events?limit=1", headers=hasty)).status for _ in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    resp = await client.get("/v1/events?limit=1", headers=hasty)
    body = await resp.json()
    assert body["type"] == "urn:coord:problem:rate-limited"
    assert int(resp.headers["Retry-After"]) == body["retry_after"] >= 1
    assert (await client.get("/v1/events?limit=1", headers=calm)).status == 200


async def test_rebuilds_are_limited_per_token(
    config: Config, aiohttp_client: Any, token_for: Any
) -> None:
    """100 rebuild requests start at most the expensive burst; the rest are 409 or 429."""
    client = await _limited_client(
        aiohttp_client, config, rate_limit_expensive_per_minute=1, rate_limit_expensive_burst=2
    )
    admin = bearer(await token_for(client, "admin"))
    names = ["activity", "hearings", "issue_board", "recommendations", "search"]
    statuses = [
        (await client.post(f"/v1/projections/{names[i % 5]}/rebuild", headers=admin)).status
        for i in range(100)
    ]
    assert statuses.count(202) <= 2
    assert set(statuses) <= {202, 409, 429}
    assert statuses.count(429) >= 90


async def test_slow_headers_and_bodies_are_cut_off(database_url: str, tmp_path: Path) -> None:
    """A client trickling headers is disconnected, one trickling a body gets 408, in seconds."""
    env = {"COORD_DATABASE_URL": database_url, "COORD_HOME": str(tmp_path)}
    token = await cli_token({**os.environ, **env}, "national", "slow client")
    limits = {"COORD_HEADER_TIMEOUT_SECONDS": "1", "COORD_BODY_TIMEOUT_SECONDS": "1"}
    async with coord_serve(database_url, tmp_path, limits) as served:
        # Headers that never end: the connection is closed after about a second.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        try:
            for _ in range(20):
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                await asyncio.sleep(0.25)
        except ConnectionError:
            pass
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except ConnectionError:
            answer = b""  # reset by the server: cut off all the same
        assert time.monotonic() - started < 4
        assert b" 200 " not in answer
        writer.close()
        # A body that stops half way: 408 problem+json after about a second.
        started = time.monotonic()
        answer = await raw_exchange(
            served.port,
            b"POST /v1/streams/hearing-00000000-0000-4000-8000-000000000000/events HTTP/1.1\r\n"
            b"Host: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            b"Authorization: Bearer " + token.encode() + b'\r\n\r\n{"expected',
        )
        assert time.monotonic() - started < 5
        head, _, _ = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b"application/problem+json" in head
