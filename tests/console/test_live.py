"""`/langsung`: the session's feed as notices, for live refresh of the board and a page."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp

from coord.keys import CONFIG, TOKEN_SERVICE
from tests.api.payloads import issue_raised, new_id
from tests.console.conftest import Browser, SignedIn
from tests.console.test_console import write


async def notices(resp: aiohttp.ClientResponse, count: int) -> list[tuple[int, dict[str, Any]]]:
    """The next `count` messages with an id: (position, data)."""
    found: list[tuple[int, dict[str, Any]]] = []
    async with asyncio.timeout(10):
        while len(found) < count:
            block = (await resp.content.readuntil(b"\n\n")).decode()
            ident = re.search(r"^id: (\d+)$", block, re.M)
            data = re.search(r"^data: (.*)$", block, re.M)
            if ident and data:
                found.append((int(ident.group(1)), json.loads(data.group(1))))
    return found


async def _issue(console: Any, token_for: Any, region: str) -> tuple[str, int]:
    issue = new_id()
    payload = issue_raised(None)
    payload["region_code"] = region
    position = await write(
        console,
        await token_for(console, "regional", [region]),
        f"issue-{issue}",
        ("IssueRaised", payload),
    )
    return f"issue-{issue}", position


async def test_notices_carry_position_stream_and_type_only_and_follow_region_scope(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """A Kediri office hears of Kediri's issue, not Surabaya's; no event data is sent."""
    elsewhere, _ = await _issue(console, token_for, "35.78")
    here, here_at = await _issue(console, token_for, "35.71")
    b = await signed_in("regional", ["35.71"])
    resp = await b.get("/langsung", params={"after": "0"})
    assert resp.status == 200
    assert resp.content_type == "text/event-stream"
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
    [(position, notice)] = await notices(resp, 1)
    assert (position, notice) == (here_at, {"stream_id": here, "type": "IssueRaised"})
    later, later_at = await _issue(console, token_for, "35.71")
    _, _ = await _issue(console, token_for, "35.78")
    [(position, notice)] = await notices(resp, 1)
    assert (position, notice["stream_id"]) == (later_at, later)
    assert elsewhere not in str(notice)
    resp.close()


async def test_a_stranger_is_sent_to_sign_in_and_bad_positions_are_refused(
    console: Any, browser: Any, signed_in: SignedIn
) -> None:
    """No session: 303 to /masuk (no feed); a bad `after` or Last-Event-ID: 422, no feed."""
    stranger: Browser = browser()
    resp = await stranger.get("/langsung", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/masuk")
    b = await signed_in("national")
    assert (await b.get("/langsung", params={"after": "-1"})).status == 422
    bad = await b.get("/langsung", headers={"Last-Event-ID": "1e9"})
    assert bad.status == 422 and "text/html" in bad.headers["Content-Type"]


async def test_the_feed_bounds_of_the_token_apply_and_revocation_ends_it(
    console: Any, signed_in: SignedIn
) -> None:
    """Beyond `sse_connections_per_token` open feeds: 429; revoking the token ends them."""
    limit = console.app[CONFIG].sse_connections_per_token
    b = await signed_in("national", name="live bounds")
    opened = [await b.get("/langsung") for _ in range(limit)]
    assert all(r.status == 200 for r in opened)
    assert (await b.get("/langsung")).status == 429
    service = console.app[TOKEN_SERVICE]
    [item] = [i for i in await service.list() if i.name == "live bounds"]
    await service.revoke(item.token_id, reason="test")
    async with asyncio.timeout(10):
        for r in opened:
            await r.content.read()  # ends: the feed closes within a second of revocation
    resp = await b.get("/langsung", allow_redirects=False)
    assert resp.status == 303  # the session ended with its token
