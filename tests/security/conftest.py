"""Fixtures of the security tests: an app with quick projections and one token per role.

Two regional offices stand for "another region": Kota Kediri (35.71, East Java) and
Kota Semarang (33.74, Central Java).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from coord.app import create_app
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS
from tests.api.test_views import fast_settings
from tests.conftest import bearer

KEDIRI = "35.71"
SEMARANG = "33.74"


@dataclass(frozen=True)
class Tokens:
    """Authorization headers of one token per role (and two regional offices)."""

    kediri: dict[str, str]
    semarang: dict[str, str]
    national: dict[str, str]
    auditor: dict[str, str]
    admin: dict[str, str]


@pytest.fixture
async def sclient(config: Config, aiohttp_client: Any) -> Any:
    """A coord app whose projections catch up quickly (views are read in these tests)."""
    app = create_app(config)
    app[PROJECTION_SETTINGS] = fast_settings()
    return await aiohttp_client(app)


@pytest.fixture
async def tokens(sclient: Any, token_for: Any) -> Tokens:
    """Real tokens issued through the app."""
    return Tokens(
        kediri=bearer(await token_for(sclient, "regional", [KEDIRI], "KPU Kota Kediri")),
        semarang=bearer(await token_for(sclient, "regional", [SEMARANG], "KPU Kota Semarang")),
        national=bearer(await token_for(sclient, "national")),
        auditor=bearer(await token_for(sclient, "auditor")),
        admin=bearer(await token_for(sclient, "admin")),
    )


async def post_events(
    client: Any, headers: dict[str, str], stream_id: str, expected: Any, *events: dict[str, Any]
) -> Any:
    """POST `events` (each `{"type", "data", ...}`) to a stream; the response."""
    return await client.post(
        f"/v1/streams/{stream_id}/events",
        json={"expected_version": expected, "events": list(events)},
        headers=headers,
    )


async def stored_events(client: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every domain event in the global log (tokens aside), as the national role reads it."""
    resp = await client.get(
        "/v1/events?limit=10000&category=hearing,issue,recommendation", headers=headers
    )
    assert resp.status == 200
    events: list[dict[str, Any]] = (await resp.json())["events"]
    return events
