"""One federated node on one database: its recorded identity, and the 421 for writes homed
elsewhere (the replication itself is tested in tests/federation)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from coord import federation
from coord.app import create_app
from coord.auth import new_token, token_hash
from coord.config import Config
from coord.keys import WRITES
from coord.problems import Problem
from coord.runtime import started_app
from events.domain.ids import home_scoped
from events.domain.topology import Node
from tests.api.payloads import (
    append,
    hearing_scheduled,
    new_id,
    recommendation_drafted,
    statement,
)
from tests.conftest import bearer


async def test_the_database_remembers_its_identity_and_homes_its_events(
    config: Config, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A node started as the hub stamps its events `hub`; a later process without flags
    (a CLI command) acts as the hub too; renaming a node with homed events is refused."""
    config = msgspec.structs.replace(config, home=tmp_path)
    hub = msgspec.structs.replace(config, node_id="hub", mode="hub")
    async with started_app(hub) as app:
        assert app[WRITES].node.mode == "hub"
    async with started_app(config) as app:  # no flags: the stored identity
        node = app[WRITES].node
        assert (node.node_id, node.mode) == ("hub", "hub")
    await pool.execute(
        "INSERT INTO events (event_id, stream_id, version, type, data, metadata)"
        " VALUES ($1, 'recommendation-x', 1, 'T', '{}', '{}')",
        uuid.uuid4(),
    )
    assert await pool.fetchval("SELECT node_id FROM events") == "hub"
    async with pool.acquire() as conn:
        with pytest.raises(federation.FederationError, match="holds events homed there"):
            await federation.ensure_identity(conn, node_id="jatim", mode=None, regions=None)
        with pytest.raises(federation.FederationError, match="needs the regions"):
            await federation.ensure_identity(conn, node_id=None, mode="regional", regions=[])
        with pytest.raises(federation.FederationError, match="node id"):
            await federation.ensure_identity(conn, node_id="Hub-1", mode=None, regions=None)
    assert await pool.fetchval("SELECT node_id FROM coord_node") == "hub"


async def test_a_regional_node_refuses_unknown_region_codes(config: Config, tmp_path: Path) -> None:
    bad = msgspec.structs.replace(
        config, home=tmp_path, node_id="x", mode="regional", regions=("99",)
    )
    with pytest.raises(federation.FederationError, match="unknown region codes: 99"):
        async with started_app(bad):
            pass


@pytest.fixture
async def regional(config: Config, pool: asyncpg.Pool, aiohttp_client: Any, tmp_path: Path) -> Any:
    """A Jawa Timur node whose directory (as replicated from the hub) knows two more nodes."""
    await pool.executemany(
        "INSERT INTO federation_nodes (node_id, mode, regions) VALUES ($1, $2, $3)",
        [("hub", "hub", []), ("jatim", "regional", ["35"]), ("jateng", "regional", ["33"])],
    )
    node = msgspec.structs.replace(
        config, home=tmp_path, node_id="jatim", mode="regional", regions=("35",)
    )
    return await aiohttp_client(create_app(node))


async def _token(pool: asyncpg.Pool, role: str, regions: list[str]) -> dict[str, str]:
    # Tokens are national: a region gets them by replication, i.e. as rows.
    token = new_token()
    await pool.execute(
        "INSERT INTO access_tokens (token_id, token_hash, name, role, regions, created_by)"
        " VALUES ($1, $2, $3, $4, $5, 'hub')",
        uuid.uuid4(),
        token_hash(token),
        f"test {role}",
        role,
        regions,
    )
    return bearer(token)


async def test_writes_homed_elsewhere_are_421_and_write_nothing(
    regional: Any, pool: asyncpg.Pool
) -> None:
    both = await _token(pool, "regional", ["35", "33"])
    admin = await _token(pool, "admin", [])
    national = await _token(pool, "national", [])
    here = await regional.post(
        f"/v1/streams/hearing-{new_id()}/events",
        json=append(0, ("HearingScheduled", hearing_scheduled("35.71"))),
        headers=both,
    )
    assert here.status == 201, await here.text()
    cases = [
        (
            f"/v1/streams/hearing-{new_id()}/events",
            append(0, ("HearingScheduled", hearing_scheduled("33.74"))),
            both,
            "jateng",
        ),
        (
            f"/v1/streams/recommendation-{new_id()}/events",
            append(0, ("RecommendationDrafted", recommendation_drafted([new_id()]))),
            national,
            "hub",
        ),
        ("/v1/tokens", {"role": "regional", "name": "x", "regions": ["35"]}, admin, "hub"),
    ]
    before = await pool.fetchval("SELECT count(*) FROM events")
    for path, body, headers, home in cases:
        resp = await regional.post(path, json=body, headers=headers)
        assert resp.status == 421, await resp.text()
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["home_node"] == home and problem["node_id"] == "jatim"
        assert problem["type"] == "urn:coord:problem:misdirected-write"
    assert await pool.fetchval("SELECT count(*) FROM events") == before
    assert await pool.fetchval("SELECT count(*) FROM access_tokens") == 3


async def test_federation_status_of_a_node_without_links(regional: Any, pool: asyncpg.Pool) -> None:
    resp = await regional.get("/v1/federation", headers=await _token(pool, "auditor", []))
    assert resp.status == 200
    body = await resp.json()
    assert body["node"] == {"node_id": "jatim", "mode": "regional", "regions": ["35"]}
    assert body["links"] == []
    assert [n["node_id"] for n in body["directory"]] == ["hub", "jateng", "jatim"]
    denied = await regional.get("/v1/federation", headers=await _token(pool, "regional", ["35"]))
    assert denied.status == 403


async def test_a_federated_node_cannot_flip_its_mode(config: Config, tmp_path: Path) -> None:
    """A regional database restarted with --mode hub is refused (and the reverse)."""
    config = msgspec.structs.replace(config, home=tmp_path)
    regional = msgspec.structs.replace(config, node_id="jatim", mode="regional", regions=("35",))
    async with started_app(regional):
        pass
    flipped = msgspec.structs.replace(config, node_id="jatim", mode="hub", regions=())
    with pytest.raises(federation.FederationError, match="cannot start as --mode hub"):
        async with started_app(flipped):
            pass
    async with started_app(regional) as app:  # unchanged, it still starts
        assert app[WRITES].node.mode == "regional"


async def test_a_regional_node_overlapping_another_is_refused(
    config: Config, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Serving a regency of a province another node serves would give it two homes."""
    await pool.executemany(
        "INSERT INTO federation_nodes (node_id, mode, regions) VALUES ($1, $2, $3)",
        [("hub", "hub", []), ("jatim", "regional", ["35"])],
    )
    kediri = msgspec.structs.replace(
        config, home=tmp_path, node_id="kediri", mode="regional", regions=("35.71",)
    )
    with pytest.raises(federation.FederationError, match="overlaps region 35 served by node"):
        async with started_app(kediri):
            pass
    assert await pool.fetchval("SELECT count(*) FROM coord_node") == 0


async def test_unserved_regions_are_homed_at_the_hub_and_a_421_names_a_node_that_accepts(
    pool: asyncpg.Pool,
) -> None:
    """With the directory {hub, jatim: 35}: region 32 belongs to no regional node, so the hub
    takes its writes and jatim's 421 names the hub; the hub's 421 for 35 names jatim; no 421
    names the node that is refusing."""
    await pool.executemany(
        "INSERT INTO federation_nodes (node_id, mode, regions) VALUES ($1, $2, $3)",
        [("hub", "hub", []), ("jatim", "regional", ["35"])],
    )
    hub = Node(node_id="hub", mode="hub")
    jatim = Node(node_id="jatim", mode="regional", regions=("35",))
    await federation.check_home(pool, hub, "hearing", "32.01")
    await federation.check_home(pool, hub, "recommendation", None)
    await federation.check_home(pool, jatim, "issue", "35.71")
    cases = [(jatim, "hearing", "32.01", "hub"), (hub, "hearing", "35.71", "jatim")]
    cases += [(jatim, "recommendation", None, "hub"), (hub, "hearing", None, None)]
    for node, category, region, home in cases:
        with pytest.raises(Problem) as refused:
            await federation.check_home(pool, node, category, region)
        assert refused.value.status == 421
        assert refused.value.extra["home_node"] == home != node.node_id


async def test_a_region_refuses_a_stream_another_node_holds_and_scopes_client_event_ids(
    regional: Any, pool: asyncpg.Pool
) -> None:
    """Issue 17: ids global by construction. A stream id the hub says another node holds
    (`federation_streams`, replicated as rows) is refused before writing: 409
    `stream-id-taken` naming the home node, whatever the expected version or the intake,
    a batch whole. A client's event id is stored scoped to this node, its own kept in the
    metadata; a retry stays idempotent; the other node's stored id sent as a client id is
    scoped again, never taken as is."""
    jatim = await _token(pool, "regional", ["35"])
    taken, free = f"hearing-{new_id()}", f"hearing-{new_id()}"
    await pool.execute(
        "INSERT INTO federation_streams (stream_id, home_node) VALUES ($1, 'jateng')", taken
    )
    follow = {"expected_version": 1, "events": [{"type": "StatementRecorded", "data": statement()}]}

    def ce(subject: str, ce_id: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": ce_id,
            "source": "/kpu",
            "type": "HearingScheduled",
            "subject": subject,
            "data": hearing_scheduled("35.71"),
        }

    create = ("HearingScheduled", hearing_scheduled("35.71"))
    attempts: list[tuple[str, Any, str]] = [
        (f"/v1/streams/{taken}/events", append(0, create), "application/json"),
        (f"/v1/streams/{taken}/events", append("any", create), "application/json"),
        (f"/v1/streams/{taken}/events", follow, "application/json"),
        ("/v1/cloudevents", ce(taken, str(uuid.uuid4())), "application/cloudevents+json"),
        ("/v1/cloudevents", [ce(free, "a"), ce(taken, "b")], "application/cloudevents-batch+json"),
    ]
    for path, body, ctype in attempts:
        resp = await regional.post(
            path, data=msgspec.json.encode(body), headers={**jatim, "Content-Type": ctype}
        )
        assert resp.status == 409, (path, await resp.text())
        problem = await resp.json()
        assert problem["type"] == "urn:coord:problem:stream-id-taken", problem
        assert problem["home_node"] == "jateng" and problem["stream_id"] == taken
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
    # A stream this node holds itself is its own, even if the hub lists it (its home).
    await pool.execute(
        "INSERT INTO federation_streams (stream_id, home_node) VALUES ($1, 'jatim')", free
    )
    given = uuid.uuid4()
    body = append(0, ("HearingScheduled", hearing_scheduled("35.71")), id=str(given))
    first = await regional.post(f"/v1/streams/{free}/events", json=body, headers=jatim)
    assert first.status == 201, await first.text()
    again = await regional.post(f"/v1/streams/{free}/events", json=body, headers=jatim)
    assert again.status == 200, await again.text()
    row = await pool.fetchrow("SELECT event_id, metadata FROM events WHERE stream_id = $1", free)
    assert row["event_id"] == home_scoped("jatim", given)
    assert msgspec.json.decode(row["metadata"])["client_event_id"] == str(given)
    other = home_scoped("jateng", uuid.uuid4())  # an id jateng stored, sent as a client id
    hostile = append(0, ("HearingScheduled", hearing_scheduled("35.71")), id=str(other))
    path = f"/v1/streams/hearing-{new_id()}/events"
    resp = await regional.post(path, json=hostile, headers=jatim)
    assert resp.status == 201, await resp.text()
    stored = await pool.fetchval("SELECT event_id FROM events ORDER BY seq DESC LIMIT 1")
    assert stored == home_scoped("jatim", other) != other
