"""The live feed: SSE of the global log, resumable by Last-Event-ID, filtered by access."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from coord.app import create_app
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS
from tests.api.payloads import append, hearing_scheduled, issue_raised, new_id
from tests.api.test_views import fast_settings
from tests.conftest import bearer


@pytest.fixture
async def fclient(config: Config, aiohttp_client: Any) -> Any:
    """A coord app with short heartbeats."""
    app = create_app(config)
    app[PROJECTION_SETTINGS] = fast_settings()
    return await aiohttp_client(app)


async def read_messages(resp: Any, count: int, *, heartbeats: int = 0) -> tuple[list[Any], int]:
    """`count` SSE messages as (id, data) pairs, and how many heartbeats came meanwhile."""
    messages: list[Any] = []
    seen_heartbeats = 0
    current: dict[str, str] = {}
    while len(messages) < count or seen_heartbeats < heartbeats:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
        if line == ": heartbeat":
            seen_heartbeats += 1
        elif line.startswith(("id: ", "data: ")):
            key, _, value = line.partition(": ")
            current[key] = value
        elif line == "" and "data" in current:
            messages.append((int(current["id"]), msgspec.json.decode(current["data"])))
            current = {}
    return messages, seen_heartbeats


async def post(client: Any, who: dict[str, str], sid: str, *events: Any) -> int:
    """Append and return the last position."""
    resp = await client.post(f"/v1/streams/{sid}/events", json=append(0, *events), headers=who)
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["last_position"])


async def test_sse_resume_filtered_and_heartbeats(fclient: Any, token_for: Any) -> None:
    """Reconnecting with Last-Event-ID misses nothing and repeats nothing; regions filter."""
    writer = bearer(await token_for(fclient, "regional", ["35", "11"], "writer"))
    national = bearer(await token_for(fclient, "national"))
    kediri = bearer(await token_for(fclient, "regional", ["35.71"], "kediri"))
    positions = []
    for region in ("35.71", "11.71", "35.71"):
        positions.append(
            await post(
                fclient,
                writer,
                f"hearing-{new_id()}",
                ("HearingScheduled", hearing_scheduled(region)),
            )
        )
    resp = await fclient.get("/v1/events/stream?after=0", headers=national)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    first, _ = await read_messages(resp, 2)
    resp.close()
    last_id = first[-1][0]
    # While disconnected, more events arrive.
    positions.append(
        await post(
            fclient, writer, f"issue-{new_id()}", ("IssueRaised", issue_raised(None, "11.71"))
        )
    )
    resp = await fclient.get(
        "/v1/events/stream", headers={**national, "Last-Event-ID": str(last_id)}
    )
    rest, beats = await read_messages(resp, 1, heartbeats=1)
    resp.close()
    seen = [p for p, _ in first + rest]
    head = positions[-1]
    # Every event after the token-issuing ones, exactly once, in order.
    assert seen[: len(first)] == list(range(1, len(first) + 1))
    assert [p for p, _ in rest] == list(range(last_id + 1, last_id + 1 + len(rest)))
    assert all(data["position"] == p for p, data in first + rest)
    assert beats >= 1
    # A late subscriber from the same place gets the same tail.
    resp = await fclient.get("/v1/events/stream", params={"after": head - 1}, headers=national)
    (only,), _ = await read_messages(resp, 1)
    resp.close()
    assert only[0] == head and only[1]["type"] == "IssueRaised"
    # Kota Kediri sees only its own region's events.
    resp = await fclient.get("/v1/events/stream?after=0", headers=kediri)
    mine, _ = await read_messages(resp, 2)
    resp.close()
    assert [p for p, _ in mine] == [positions[0], positions[2]]
    assert {d["stream_id"].split("-")[0] for _, d in mine} == {"hearing"}
