"""Issue 12 item 1: a stored `issue-urn:uuid:...` event froze the issue board for good.

The write path refuses that spelling today, but a database written by an older coord
holds such events and the log is immutable. `coord check` finds them, and
`coord projections skip` (an audited event only the command line can write) lets the
board pass: no code change, and everyone can see who skipped what, and why.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import msgspec
import pytest

from coord.app import create_app
from coord.cli.check import Checker, scan, suggest
from coord.cli.projections import skip
from coord.config import Config
from coord.keys import POOL, PROJECTION_SETTINGS, PROJECTIONS, REGIONS, STORE
from projections.checkpoints import status
from projections.runner import RunnerSettings
from projections.service import ProjectionSettings
from tests.api.payloads import append, issue_raised, new_id
from tests.conftest import bearer


@pytest.fixture
async def app_client(config: Config, aiohttp_client: Any) -> Any:
    """A coord app whose runners retry quickly."""
    app = create_app(config)
    app[PROJECTION_SETTINGS] = ProjectionSettings(
        read_wait=2.0,
        runner=RunnerSettings(window=500, poll_interval=0.1, lock_retry=0.1, retry_max=0.5),
    )
    return await aiohttp_client(app)


async def store_alias(pool: asyncpg.Pool, entity: str) -> str:
    """What an older coord accepted with 201: IssueRaised on `issue-urn:uuid:<uuid>`."""
    event_id = str(uuid.uuid4())
    await pool.execute(
        "SELECT * FROM coord_append($1, 0, ARRAY[$2::uuid], ARRAY['IssueRaised'], ARRAY[1], "
        "ARRAY[$3::text::jsonb], ARRAY['{}'::jsonb], '35.71')",
        f"issue-urn:uuid:{entity}",
        event_id,
        msgspec.json.encode(issue_raised(None, title="Alias")).decode(),
    )
    return event_id


async def projections(client: Any, token: str) -> dict[str, Any]:
    """`GET /v1/projections`, by projection name."""
    resp = await client.get("/v1/projections", headers=bearer(token))
    assert resp.status == 200
    return {row["name"]: row for row in (await resp.json())["items"]}


async def test_a_stored_alias_is_found_by_check_and_skipped_with_an_audit_trail(
    app_client: Any, token_for: Any
) -> None:
    """The alias stops the board; check lists it; skip unfreezes every issue view."""
    client = app_client
    app = client.server.app
    regional = await token_for(client, "regional", ["35.71"])
    national = await token_for(client, "national")
    admin = await token_for(client, "admin")

    alias_id = await store_alias(app[POOL], new_id())
    resp = await client.post(
        f"/v1/streams/issue-{new_id()}/events",
        headers=bearer(regional),
        json=append(0, ("IssueRaised", issue_raised(None, title="Sah"))),
    )
    assert resp.status == 201
    last = (await resp.json())["last_position"]
    poison = await app[POOL].fetchval(
        "SELECT l.position FROM log l JOIN events e ON e.seq = l.seq WHERE e.event_id = $1",
        uuid.UUID(alias_id),
    )

    for _ in range(100):
        board = (await projections(client, national))["issue_board"]
        if board["state"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert (board["state"], board["failed_position"]) == ("failed", poison)
    frozen = await client.get(f"/v1/views/issues?min_position={last}", headers=bearer(national))
    assert frozen.status == 503

    # coord check names the event, its rule, and the skip to run.
    checker = Checker(app[REGIONS], {n: p.handles for n, p in app[PROJECTIONS].projections.items()})
    scanned, findings = await scan(app[STORE], checker, page=7)
    assert scanned == await app[STORE].head_position()
    (finding,) = [f for f in findings if f.position == poison]
    assert finding.rule == "stream.not_canonical" and "issue_board" in finding.projections
    names = sorted(app[PROJECTIONS].projections)
    stopped = [s for s in suggest(findings, await status(app[POOL], names)) if s.stopped]
    # Every view keyed by the issue's UUID stopped: the board and the recommendations.
    assert sorted(s.projection for s in stopped) == ["issue_board", "recommendations"]
    for suggestion in stopped:
        assert suggestion.command.startswith(
            f"coord projections skip {suggestion.projection} --position {poison} --reason '"
        )
        await skip(app, suggestion.projection, poison, "alias issue-urn:uuid (issue 12)")

    for _ in range(100):
        board = (await projections(client, national))["issue_board"]
        if board["state"] == "running" and board["position"] >= last:
            break
        await asyncio.sleep(0.05)
    assert board["state"] == "running" and board["last_error"] is None
    (recorded,) = board["skips"]
    assert recorded["position"] == poison and recorded["event_id"] == alias_id
    assert recorded["reason"] == "alias issue-urn:uuid (issue 12)"
    assert recorded["skipped_by"] and recorded["recorded_at"] and recorded["node_id"] == "local"
    # Auditors see it too.
    auditor = await token_for(client, "auditor")
    assert (await projections(client, auditor))["issue_board"]["skips"] == [recorded]

    resp = await client.get(f"/v1/views/issues?min_position={last}", headers=bearer(national))
    assert resp.status == 200
    assert [i["title"] for i in (await resp.json())["items"]] == ["Sah"]

    # After the skip, check still lists the stored event but suggests nothing for the board.
    _, findings = await scan(app[STORE], Checker(app[REGIONS], {"issue_board": None}))
    assert [f.position for f in findings] == [poison]
    assert suggest(findings, await status(app[POOL], names)) == []
    assert (await projections(client, national))["recommendations"]["state"] == "running"

    # The skip stream takes nothing from the HTTP API, whatever the role.
    for token, stream in ((admin, "system-projections-local"), (regional, f"issue-{new_id()}")):
        resp = await client.post(
            f"/v1/streams/{stream}/events",
            headers=bearer(token),
            json=append("any", ("ProjectionSkipped", {
                "projection": "issue_board", "position": last, "event_id": new_id(),
                "event_type": "IssueRaised", "stream_id": "x-y", "reason": "r",
                "skipped_by": "attacker",
            })),
        )  # fmt: skip
        assert resp.status in (403, 422), await resp.text()
        assert resp.content_type == "application/problem+json"
    assert await app[POOL].fetchval("SELECT count(*) FROM events WHERE category = 'system'") == 2
