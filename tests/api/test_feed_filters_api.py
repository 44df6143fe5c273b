"""The live feed names its events, filters by type and category, and can start at the head."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.payloads import hearing_scheduled, issue_raised, new_id
from tests.api.test_feed import post
from tests.conftest import bearer


async def read_named(resp: Any, count: int) -> list[tuple[int, str]]:
    """`count` SSE messages as (id, event name)."""
    out: list[tuple[int, str]] = []
    current: dict[str, str] = {}
    while len(out) < count:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith(("id: ", "event: ", "data: ")):
            key, _, value = line.partition(": ")
            current[key] = value
        elif line == "" and "data" in current:
            out.append((int(current["id"]), current["event"]))
            current = {}
    return out


async def test_named_events_type_filter_and_head(client: Any, token_for: Any) -> None:
    """`event:` names the type; type/category filter; after=head skips the past."""
    writer = bearer(await token_for(client, "regional", ["35.71"], "kediri"))
    hid = new_id()
    await post(client, writer, f"hearing-{hid}", ("HearingScheduled", hearing_scheduled()))
    issue_at = await post(client, writer, f"issue-{new_id()}", ("IssueRaised", issue_raised(None)))
    resp = await client.get("/v1/events/stream?type=IssueRaised", headers=writer)
    assert await read_named(resp, 1) == [(issue_at, "IssueRaised")]
    resp.close()
    resp = await client.get("/v1/events/stream?category=hearing", headers=writer)
    ((_, name),) = await read_named(resp, 1)
    resp.close()
    assert name == "HearingScheduled"
    resp = await client.get("/v1/events/stream?after=head", headers=writer)
    assert resp.status == 200
    later = await post(client, writer, f"issue-{new_id()}", ("IssueRaised", issue_raised(None)))
    assert await read_named(resp, 1) == [(later, "IssueRaised")]
    resp.close()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=NoSuchEvent", "query.type"),
        ("category=people", "query.category"),
        ("after=tail", "query.after"),
    ],
)
async def test_bad_feed_filters_are_422(
    client: Any, token_for: Any, query: str, field: str
) -> None:
    """Unknown types and categories are refused before the stream starts."""
    national = bearer(await token_for(client, "national"))
    resp = await client.get(f"/v1/events/stream?{query}", headers=national)
    assert resp.status == 422
    assert (await resp.json())["field"] == field
