"""Federation end to end: a hub and two regional nodes, each coord on its own PostgreSQL,
linked by logical replication (issue 7). The outage tests stop real servers mid-load."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from coord.cli import main as cli_main
from events.audit.leaf import parse_json
from events.audit.notes import (
    Checkpoint,
    CosignatureVerifier,
    Verifier,
    sign_checkpoint,
    signer_from_skey,
)
from events.audit.receipt import verify_receipt
from tests.api.payloads import hearing_scheduled, issue_raised, new_id, recommendation_drafted
from tests.api.payloads import statement as statement_data
from tests.conftest import run_coord
from tests.federation.cluster import (
    Cluster,
    ClusterNode,
    create_token,
    diagnose,
    eventually,
    is_status,
    running_cluster,
    status_of,
)


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    async with running_cluster() as c:
        yield c


@dataclass
class Ack:
    event_id: str
    stream_id: str
    version: int
    node: str
    at: float


async def write_region(
    node: ClusterNode,
    headers: dict[str, str],
    regions: list[str],
    stop: asyncio.Event,
    acks: list[Ack],
) -> None:
    """Hearings with two statements and an issue each, until `stop`; every 201 is an ack."""
    async with aiohttp.ClientSession(node.url, headers=headers) as http:
        i = 0
        while not stop.is_set():
            region = regions[i % len(regions)]
            i += 1
            hid = new_id()
            writes = [
                (f"hearing-{hid}", 0, "HearingScheduled", hearing_scheduled(region)),
                (f"hearing-{hid}", 1, "StatementRecorded", statement_data()),
                (f"hearing-{hid}", 2, "StatementRecorded", statement_data("Honor KPPS.")),
                (f"issue-{new_id()}", 0, "IssueRaised", issue_raised(hid, region)),
            ]
            for stream, expected, typ, data in writes:
                eid = new_id()
                body = {
                    "expected_version": expected,
                    "events": [{"type": typ, "data": data, "id": eid}],
                }
                async with http.post(f"/v1/streams/{stream}/events", json=body) as r:
                    assert r.status == 201, await r.text()
                acks.append(Ack(eid, stream, expected + 1, node.node_id, time.monotonic()))


async def test_regions_keep_writing_through_a_hub_outage_and_the_hub_converges(
    cluster: Cluster,
) -> None:
    """Concurrent writes in both regions; links cut mid-stream, the hub stopped and restarted:
    every acknowledged event reaches the hub exactly once, in stream order, and the hub's
    projections and Merkle tree verify."""
    c = cluster
    acks: list[Ack] = []
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(write_region(c.jatim, c.auth("jatim"), ["35.71", "35.78"], stop, acks))
        for _ in range(3)
    ] + [
        asyncio.create_task(
            write_region(c.jateng, c.auth("jateng"), ["33.74", "33.72"], stop, acks)
        )
        for _ in range(3)
    ]
    lags: list[float] = []

    async def sample_lag(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rows = await c.hub.fetch(
                "SELECT extract(epoch FROM received_at - last_recorded_at)::float8 AS lag"
                " FROM federation_received WHERE node_id IN ('jatim', 'jateng')"
            )
            lags.extend(r["lag"] for r in rows)
            await asyncio.sleep(0.2)

    try:
        await sample_lag(3.0)
        # A link broken mid-stream: drop every walsender on both regions.
        for region in (c.jatim, c.jateng):
            killed = await region.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_replication"
                " WHERE application_name LIKE 'coord\\_%') t"
            )
            assert killed >= 1, (
                await region.fetch("SELECT * FROM pg_stat_replication"),
                await region.fetch("SELECT * FROM pg_replication_slots"),
                await c.hub.fetch("SELECT * FROM pg_stat_subscription"),
                await c.hub.fetch("SELECT * FROM pg_stat_subscription_stats"),
                await c.hub.fetch("SELECT count(*) FROM events"),
                c.hub.log_tail(),
            )
        await sample_lag(2.0)

        async def hub_links_streaming() -> Any:
            async with (
                aiohttp.ClientSession(c.hub.url, headers=c.auth("national")) as http,
                http.get("/v1/federation") as r,
            ):
                assert r.status == 200
                report = await r.json()
            links = report["links"]
            up = all(x["connected"] and x["state"] == "streaming" for x in links)
            return report if up and len(links) == 4 else None

        report = await eventually(hub_links_streaming, 20, "the hub's links to stream again")
        assert report["node"] == {"node_id": "hub", "mode": "hub", "regions": []}
        incoming = {x["peer"]: x for x in report["links"] if x["direction"] == "in"}
        outgoing = {x["peer"]: x for x in report["links"] if x["direction"] == "out"}
        assert set(incoming) == set(outgoing) == {"jatim", "jateng"}
        for link in incoming.values():
            assert link["events_received"] > 0 and link["lag_bytes"] is not None
            assert link["last_event_received_at"] is not None and link["conflicts"] == 0
        async with aiohttp.ClientSession(c.hub.url) as http, http.get("/metrics") as r:
            metrics = await r.text()
        assert 'coord_federation_link_connected{direction="in",link="coord_jatim_to_hub"} 1.0' in (
            metrics
        ) or 'coord_federation_link_connected{link="coord_jatim_to_hub",direction="in"} 1.0' in (
            metrics
        )

        # The hub goes down (coord and PostgreSQL); the regions must not notice.
        await c.hub.stop_coord()
        await c.hub.stop_pg()
        down_at = time.monotonic()
        await asyncio.sleep(3.0)
        during = [a for a in acks if a.at > down_at]
        assert {a.node for a in during} == {"jatim", "jateng"}, "a region stalled"
        await c.hub.start_pg()
        up_at = time.monotonic()
        backlog = [uuid.UUID(a.event_id) for a in acks if a.at <= up_at]

        async def backlog_arrived() -> bool:
            n = await c.hub.fetchval(
                "SELECT count(*) FROM events WHERE event_id = ANY($1)", backlog
            )
            return bool(n == len(backlog))

        async def time_catch_up() -> float:
            await eventually(backlog_arrived, 60, "the outage backlog")
            return time.monotonic() - up_at

        catch_up = asyncio.create_task(time_catch_up())
        await c.hub.start_coord()
        await asyncio.sleep(2.0)
        caught_up = await catch_up
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    ids = [uuid.UUID(a.event_id) for a in acks]

    async def hub_has_all() -> bool:
        n = await c.hub.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1)", ids)
        return bool(n == len(ids))

    try:
        await eventually(hub_has_all, 60, "the hub to receive every acknowledged event")
    except AssertionError as e:
        raise AssertionError(await diagnose(c.hub, c.jatim, c.jateng)) from e
    converged = time.monotonic() - up_at
    # Exactly once (also a constraint), with the version it was acknowledged at.
    rows = await c.hub.fetch(
        "SELECT event_id::text, stream_id, version, node_id FROM events WHERE event_id = ANY($1)",
        ids,
    )
    assert len(rows) == len(acks)
    assert {(r["event_id"], r["stream_id"], r["version"], r["node_id"]) for r in rows} == {
        (a.event_id, a.stream_id, a.version, a.node) for a in acks
    }
    # Every event gets a hub position, and each stream's positions follow its versions.
    await eventually(
        lambda: _same(
            c.hub.fetchval("SELECT count(*) FROM events"),
            c.hub.fetchval("SELECT count(*) FROM log"),
        ),
        30,
        "the hub's sequencer",
    )
    out_of_order = await c.hub.fetchval(
        "SELECT count(*) FROM (SELECT e.version, lag(e.version) OVER"
        " (PARTITION BY e.stream_id ORDER BY l.position) AS prev"
        " FROM events e JOIN log l ON l.seq = e.seq) t WHERE prev IS NOT NULL"
        " AND version <> prev + 1"
    )
    assert out_of_order == 0
    # The hub holds exactly each region's own events, byte for byte.
    same = (
        "SELECT event_id, stream_id, version, type, data::text, metadata::text, recorded_at,"
        " region_code FROM events WHERE node_id = $1 ORDER BY stream_id, version"
    )
    for region in (c.jatim, c.jateng):
        assert await region.fetch(same, region.node_id) == await c.hub.fetch(same, region.node_id)
    # Projections: the hub's views equal a from-scratch replay of its (union) log.
    out = await run_coord(c.hub.env(), "projections", "verify", "all")
    assert "differing rows" in out and ": 0 differing rows" in out
    assert all(
        line.endswith(": 0 differing rows") for line in out.splitlines() if "verified" in line
    )
    await _hub_audit_verifies(c)

    before = [a for a in acks if a.at < down_at]
    print(
        f"\nfederation: {len(acks)} events acknowledged by 2 regions "
        f"({len(before)} before the hub outage, {len(during)} during 3 s of it); "
        f"region->hub lag under load p50 {statistics.median(lags) * 1000:.0f} ms, "
        f"max {max(lags) * 1000:.0f} ms ({len(lags)} samples); the hub took the "
        f"{len(backlog)} events acknowledged up to its restart {caught_up:.1f} s after its "
        f"PostgreSQL was back, and had all {len(acks)} {converged:.1f} s after"
    )


async def _same(a: Any, b: Any) -> bool:
    return bool(await a == await b)


async def _hub_audit_verifies(c: Cluster) -> None:
    """`coord verify` accepts the hub's export against the hub's signed checkpoint."""
    size = await c.hub.fetchval("SELECT count(*) FROM log")
    async with aiohttp.ClientSession(c.hub.url, headers=c.auth("auditor")) as http:

        async def head_reached() -> bool:
            async with http.get("/v1/audit/tree-head") as r:
                return r.status == 200 and (await r.json())["tree_size"] >= size

        await eventually(head_reached, 30, "the hub's tree head")
        async with http.get(f"/v1/audit/checkpoint?size={size}") as r:
            assert r.status == 200, await r.text()
            note = await r.text()
        async with http.get(f"/v1/audit/export?to={size}") as r:
            export = await r.read()
        async with http.get("/v1/audit/public-key") as r:
            key = await r.json()
    assert key["origin"] == "coord.local/hub"
    folder = c.hub.home
    (folder / "export.ndjson").write_bytes(export)
    (folder / "checkpoint").write_text(note)
    out = await run_coord(
        c.hub.env(),
        "verify",
        str(folder / "export.ndjson"),
        "--checkpoint",
        str(folder / "checkpoint"),
        "--vkey",
        key["vkey"],
    )
    assert "VERIFIED" in out


async def test_writes_homed_elsewhere_get_421_naming_the_home_node(cluster: Cluster) -> None:
    """A region refuses another region's and national streams; the hub refuses regional ones."""
    c = cluster
    cases = [
        (
            c.jatim,
            "jatim",
            f"hearing-{new_id()}",
            "HearingScheduled",
            hearing_scheduled("33.74"),
            "jateng",
        ),
        (
            c.jatim,
            "national",
            f"recommendation-{new_id()}",
            "RecommendationDrafted",
            recommendation_drafted([new_id()]),
            "hub",
        ),
        (
            c.hub,
            "jatim",
            f"hearing-{new_id()}",
            "HearingScheduled",
            hearing_scheduled("35.71"),
            "jatim",
        ),
    ]
    for node, token, stream, typ, data, home in cases:
        body = {"expected_version": 0, "events": [{"type": typ, "data": data}]}
        async with (
            aiohttp.ClientSession(node.url, headers=c.auth(token)) as http,
            http.post(f"/v1/streams/{stream}/events", json=body) as r,
        ):
            assert r.status == 421, await r.text()
            assert r.content_type == "application/problem+json"
            problem = await r.json()
        assert problem["home_node"] == home and problem["node_id"] == node.node_id
        assert await node.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream) == 0


async def test_national_streams_and_revocations_reach_the_regions(cluster: Cluster) -> None:
    """A recommendation drafted at the hub on a Jawa Timur issue is readable at Jawa Timur;
    a token revoked at the hub stops working at the region."""
    c = cluster
    hid, iid = new_id(), new_id()
    async with aiohttp.ClientSession(c.jatim.url, headers=c.auth("jatim")) as http:
        for stream, typ, data in (
            (f"hearing-{hid}", "HearingScheduled", hearing_scheduled("35.71")),
            (f"issue-{iid}", "IssueRaised", issue_raised(hid, "35.71")),
        ):
            body = {"expected_version": 0, "events": [{"type": typ, "data": data}]}
            async with http.post(f"/v1/streams/{stream}/events", json=body) as r:
                assert r.status == 201, await r.text()
    await eventually(
        lambda: c.hub.fetchval(
            "SELECT 1 FROM events e JOIN log l ON l.seq = e.seq WHERE stream_id = $1",
            f"issue-{iid}",
        ),
        what="the issue at the hub",
    )
    rid = new_id()
    body = {
        "expected_version": 0,
        "events": [{"type": "RecommendationDrafted", "data": recommendation_drafted([iid])}],
    }
    async with (
        aiohttp.ClientSession(c.hub.url, headers=c.auth("national")) as http,
        http.post(f"/v1/streams/recommendation-{rid}/events", json=body) as r,
    ):
        assert r.status == 201, await r.text()

    async def at_jatim() -> Any:
        async with (
            aiohttp.ClientSession(c.jatim.url, headers=c.auth("national")) as http,
            http.get(f"/v1/streams/recommendation-{rid}") as r,
        ):
            body = (await r.json()) if r.status == 200 else None
            # Replicated but not yet in jatim's own log, the stream reads as empty.
            return body if body and body["events"] else None

    stream = await eventually(at_jatim, what="the recommendation at jatim")
    assert [e["type"] for e in stream["events"]] == ["RecommendationDrafted"]
    assert stream["events"][0]["position"] >= 1  # sequenced into jatim's own log
    assert (
        await c.jateng.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"issue-{iid}")
        == 0
    )  # regions receive national streams only, not each other's

    temp = await create_token(c.hub, "regional", "Sementara", "35")
    headers = {"Authorization": f"Bearer {temp}"}
    await eventually(
        lambda: is_status(status_of(c.jatim, headers, "/v1/regions/35"), 200),
        what="the new token at jatim",
    )
    token_id = await c.hub.fetchval(
        "SELECT token_id::text FROM access_tokens WHERE name = 'Sementara'"
    )
    await run_coord(c.hub.env(), "token", "revoke", token_id)
    await eventually(
        lambda: is_status(status_of(c.jatim, headers, "/v1/regions/35"), 401),
        what="the revocation at jatim",
    )


async def test_a_revocation_made_while_a_region_database_was_down_holds_there(
    cluster: Cluster,
) -> None:
    """A token cached at Jawa Timur, revoked at the hub while jatim's PostgreSQL is down (coord
    keeps running): once that PostgreSQL is back, the token is refused at jatim. The cache
    lifetime is an hour here, so only the rebuild on reconnect can make this pass."""
    c = cluster
    token = await create_token(c.hub, "regional", "Sementara Jatim", "35")
    headers = {"Authorization": f"Bearer {token}"}
    await eventually(
        lambda: is_status(status_of(c.jatim, headers, "/v1/regions/35"), 200),
        what="the new token at jatim",
    )
    token_id = await c.hub.fetchval(
        "SELECT token_id::text FROM access_tokens WHERE name = 'Sementara Jatim'"
    )
    await c.jatim.stop_pg()
    try:
        await run_coord(c.hub.env(), "token", "revoke", token_id)
    finally:
        await c.jatim.start_pg()
    await eventually(
        lambda: c.jatim.fetchval(
            "SELECT revoked_at IS NOT NULL FROM access_tokens WHERE token_id = $1::uuid", token_id
        ),
        what="the revocation to replicate to jatim",
    )
    await eventually(
        lambda: is_status(status_of(c.jatim, headers, "/v1/regions/35"), 401),
        20,
        "the revoked token refused at jatim",
    )


async def test_a_region_outage_leaves_the_hub_serving_and_catches_up(cluster: Cluster) -> None:
    """Jawa Tengah goes down: the hub keeps serving and minting; back up, both sides converge."""
    c = cluster
    await c.jateng.stop_coord()
    await c.jateng.stop_pg()
    assert await status_of(c.hub, c.auth("national"), "/v1/views/issues?limit=5") == 200
    late = await create_token(c.hub, "regional", "Bawaslu Jawa Tengah", "33")
    await c.jateng.start_pg()
    await c.jateng.start_coord()
    headers = {"Authorization": f"Bearer {late}"}
    await eventually(
        lambda: is_status(status_of(c.jateng, headers, "/v1/regions/33"), 200),
        what="the token minted during the outage at jateng",
    )
    hid = new_id()
    body = {
        "expected_version": 0,
        "events": [{"type": "HearingScheduled", "data": hearing_scheduled("33.74")}],
    }
    async with (
        aiohttp.ClientSession(c.jateng.url, headers=headers) as http,
        http.post(f"/v1/streams/hearing-{hid}/events", json=body) as r,
    ):
        assert r.status == 201, await r.text()
    await eventually(
        lambda: c.hub.fetchval("SELECT 1 FROM events WHERE stream_id = $1", f"hearing-{hid}"),
        what="jateng's new hearing at the hub",
    )


async def _post(node: ClusterNode, headers: dict[str, str], stream: str, body: Any) -> None:
    async with (
        aiohttp.ClientSession(node.url, headers=headers) as http,
        http.post(f"/v1/streams/{stream}/events", json=body) as r,
    ):
        assert r.status == 201, await r.text()


async def _hub_links(c: Cluster) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(c.hub.url, headers=c.auth("national")) as http,
        http.get("/v1/federation") as r,
    ):
        assert r.status == 200, await r.text()
        return {x["name"]: x for x in (await r.json())["links"]}


async def test_colliding_ids_from_two_regions_never_stop_a_link(cluster: Cluster) -> None:
    """Jawa Tengah reuses an event id and a stream id Jawa Timur already used (both 201 at
    the regions): the hub keeps the first, sets the second aside whole with a pointer to the
    first, and both links keep flowing; the conflicts are reported, not silent."""
    c = cluster
    taken_id, hid = str(uuid.uuid4()), new_id()
    first = {
        "expected_version": 0,
        "events": [
            {"type": "HearingScheduled", "data": hearing_scheduled("35.71"), "id": taken_id}
        ],
    }
    await _post(c.jatim, c.auth("jatim"), f"hearing-{hid}", first)
    await eventually(
        lambda: c.hub.fetchval("SELECT 1 FROM events WHERE stream_id = $1", f"hearing-{hid}"),
        what="jatim's hearing at the hub",
    )
    # The same event id in another stream, and jatim's stream id for a Jawa Tengah hearing.
    same_id = {
        "expected_version": 0,
        "events": [
            {"type": "HearingScheduled", "data": hearing_scheduled("33.74"), "id": taken_id}
        ],
    }
    await _post(c.jateng, c.auth("jateng"), f"hearing-{new_id()}", same_id)
    same_stream = {
        "expected_version": 0,
        "events": [{"type": "HearingScheduled", "data": hearing_scheduled("33.74")}],
    }
    await _post(c.jateng, c.auth("jateng"), f"hearing-{hid}", same_stream)
    follow = {
        "expected_version": 1,
        "events": [{"type": "StatementRecorded", "data": statement_data()}],
    }
    await _post(c.jateng, c.auth("jateng"), f"hearing-{hid}", follow)
    # A later, unrelated write of jateng still reaches the hub: the link was not stopped.
    later = new_id()
    await _post(
        c.jateng,
        c.auth("jateng"),
        f"hearing-{later}",
        {
            "expected_version": 0,
            "events": [{"type": "HearingScheduled", "data": hearing_scheduled("33.72")}],
        },
    )
    try:
        await eventually(
            lambda: c.hub.fetchval("SELECT 1 FROM events WHERE stream_id = $1", f"hearing-{later}"),
            what="jateng's later hearing at the hub",
        )
    except AssertionError as e:
        raise AssertionError(await diagnose(c.hub, c.jateng)) from e
    # The hub's stream is jatim's, untouched; jateng's three colliding events are set aside.
    held = await c.hub.fetch(
        "SELECT node_id, version FROM events WHERE stream_id = $1 ORDER BY version",
        f"hearing-{hid}",
    )
    assert [(r["node_id"], r["version"]) for r in held] == [("jatim", 1)]
    out = await run_coord(c.hub.env(), "federation", "conflicts")
    found = [x for x in msgspec.json.decode(out) if x["received"]["node_id"] == "jateng"]
    assert sorted((x["kind"], x["received"]["version"]) for x in found) == [
        ("event_id", 1),
        ("stream", 1),
        ("stream", 2),
    ]
    for x in found:
        assert x["held"]["node_id"] == "jatim"  # both versions, side by side
        assert x["received"]["data"] and x["held"]["data"]
    by_kind = {x["kind"]: x for x in found if x["received"]["version"] == 1}
    assert by_kind["event_id"]["received"]["event_id"] == taken_id
    assert by_kind["stream"]["received"]["stream_id"] == f"hearing-{hid}"
    # Reported: the link streams, with its open conflicts counted; the gauge says so too.
    links = await _hub_links(c)
    link = links["coord_jateng_to_hub"]
    assert link["state"] == "streaming" and link["conflicts"] == 3, link
    assert links["coord_jatim_to_hub"]["conflicts"] == 0
    assert "coord_jateng_to_hub: streaming" in await run_coord(c.hub.env(), "federation", "status")
    async with aiohttp.ClientSession(c.hub.url) as http, http.get("/metrics") as r:
        metrics = await r.text()
    assert any(
        line.startswith("coord_federation_errors{")
        and "coord_jateng_to_hub" in line
        and line.endswith(" 3.0")
        for line in metrics.splitlines()
    ), metrics
    # An operator records the resolution; the set-aside events stay (nothing is lost).
    conflict_id = str(found[0]["conflict_id"])
    await run_coord(
        c.hub.env(), "federation", "conflicts", "--resolve", conflict_id, "--note", "checked"
    )
    assert (await _hub_links(c))["coord_jateng_to_hub"]["conflicts"] == 2
    assert await c.hub.fetchval("SELECT count(*) FROM federation_conflicts") >= 3


async def test_an_operator_stops_and_resumes_a_link_as_the_application_role(
    cluster: Cluster,
) -> None:
    """Status tells a stopped link from a streaming one, and `resume` (as the non-superuser
    application role) brings it back; what was written meanwhile arrives."""
    c = cluster
    conn = await asyncpg.connect(c.hub.dsn)
    try:
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        await conn.execute("ALTER SUBSCRIPTION coord_jatim_to_hub DISABLE")
    finally:
        await conn.close()
    await eventually(lambda: _state_is(c, "coord_jatim_to_hub", "stopped"), what="the link stopped")
    hid = new_id()
    await _post(
        c.jatim,
        c.auth("jatim"),
        f"hearing-{hid}",
        {
            "expected_version": 0,
            "events": [{"type": "HearingScheduled", "data": hearing_scheduled("35.71")}],
        },
    )
    await run_coord(c.hub.env(), "federation", "resume", "--link", "coord_jatim_to_hub")
    await eventually(
        lambda: c.hub.fetchval("SELECT 1 FROM events WHERE stream_id = $1", f"hearing-{hid}"),
        what="the hearing written while the link was stopped",
    )
    await eventually(
        lambda: _state_is(c, "coord_jatim_to_hub", "streaming"), what="the link streaming"
    )


async def _state_is(c: Cluster, link: str, state: str) -> bool:
    return bool((await _hub_links(c))[link]["state"] == state)


async def _add_region_refused(c: Cluster, region: ClusterNode) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coord",
        "federation",
        "add-region",
        "--hub-dsn",
        c.hub.dsn,
        "--region-dsn",
        region.dsn,
        "--name",
        region.node_id,
        env=c.hub.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()
    return err.decode()


async def test_the_hub_cosigns_what_it_mirrors_and_refuses_a_rewritten_history(
    cluster: Cluster, tmp_path: Any
) -> None:
    """A region's checkpoint is cosigned by the hub once its mirror of the region's tree
    matches; the receipt a regional office gets at the region carries that cosignature and
    verifies offline; the home position reaches the hub; `coord verify --federation`
    passes on both exports; a checkpoint over a rewritten history is refused."""
    c = cluster
    ids = []
    async with aiohttp.ClientSession(c.jatim.url, headers=c.auth("jatim")) as http:
        for _ in range(3):
            ids.append(new_id())
            body = {
                "expected_version": 0,
                "events": [
                    {"type": "HearingScheduled", "id": ids[-1], "data": hearing_scheduled("35.71")}
                ],
            }
            async with http.post(f"/v1/streams/hearing-{new_id()}/events", json=body) as r:
                assert r.status == 201, await r.text()

    async def get(node: ClusterNode, token: str, path: str) -> Any:
        async with aiohttp.ClientSession(node.url, headers=c.auth(token)) as http:
            async with http.get(path) as r:
                return (r.status, await r.read())

    status, raw = await get(c.jatim, "jatim", "/v1/audit/public-key")
    assert status == 200
    jatim_key = msgspec.json.decode(raw)
    hub_key = msgspec.json.decode((await get(c.hub, "auditor", "/v1/audit/public-key"))[1])
    origin = jatim_key["origin"]

    async def cosigned_receipt() -> Any:
        status, raw = await get(c.jatim, "jatim", f"/v1/audit/receipt/{ids[-1]}")
        doc = msgspec.json.decode(raw) if status == 200 else None
        return doc if doc and doc["cosignatures"] else None

    try:
        receipt = await eventually(cosigned_receipt, timeout=30, what="a cosigned receipt")
    except AssertionError:
        raise AssertionError(await diagnose(c.hub, c.jatim)) from None
    proven = verify_receipt(
        parse_json(msgspec.json.encode(receipt)),
        Verifier.from_vkey(jatim_key["vkey"]),
        origin,
        [CosignatureVerifier.from_vkey(hub_key["cosigner_vkey"])],
    )
    assert proven.cosigned[0].name == hub_key["origin"]
    # The home position (the region's) reached the hub with the event.
    home = await c.hub.fetchval(
        "SELECT position FROM node_log WHERE log_node = 'jatim' AND event_id = $1",
        uuid.UUID(ids[-1]),
    )
    assert home == proven.leaf_index + 1

    # Offline, both logs: every jatim event is in the hub's log once, unchanged (the hub's
    # latest checkpoint may trail the events it holds by a moment: retried).
    async def federation_verified() -> bool:
        args, cps = ["verify", "--federation"], []
        for node in (c.hub, c.jatim):
            query = f"?to={receipt['tree_size']}" if node is c.jatim else ""
            status, export = await get(node, "auditor", f"/v1/audit/export{query}")
            last = export.count(b"\n")
            status, note = await get(node, "auditor", f"/v1/audit/checkpoint?size={last}")
            assert status == 200, note
            (tmp_path / f"{node.node_id}.ndjson").write_bytes(export)
            (tmp_path / f"{node.node_id}.cp").write_bytes(note)
            args.append(str(tmp_path / f"{node.node_id}.ndjson"))
            cps += ["--checkpoint", str(tmp_path / f"{node.node_id}.cp")]
        args += [*cps, "--vkey", hub_key["vkey"], "--vkey", jatim_key["vkey"]]
        return await asyncio.to_thread(cli_main, args) == 0

    await eventually(federation_verified, timeout=15, what="coord verify --federation")

    # The region signs a tree the hub's mirror does not reproduce: refused, not cosigned.
    skey = (c.jatim.home / "audit-signing.key").read_text().strip()
    size = await c.jatim.fetchval(
        "SELECT s FROM generate_series(1, $1::bigint) s WHERE NOT EXISTS (SELECT 1 FROM"
        " audit_checkpoints WHERE origin = $2 AND tree_size = s) ORDER BY s DESC LIMIT 1",
        receipt["tree_size"],
        origin,
    )
    assert size is not None
    forged = Checkpoint(origin, size, hashlib.sha256(b"rewritten").digest())
    await c.jatim.fetch(
        "INSERT INTO audit_checkpoints (origin, tree_size, root_hash, note)"
        " VALUES ($1, $2, $3, $4)",
        origin,
        size,
        forged.root_hash,
        sign_checkpoint(forged, signer_from_skey(skey)),
    )
    reason = await eventually(
        lambda: c.hub.fetchval(
            "SELECT reason FROM audit_cosign_refusals WHERE origin = $1 AND tree_size = $2",
            origin,
            size,
        ),
        timeout=30,
        what="the hub's refusal",
    )
    assert "does not reproduce" in reason
    async with aiohttp.ClientSession(c.hub.url) as http, http.get("/metrics") as r:
        assert f'coord_federation_cosign_refusals{{origin="{origin}"}} 1.0' in await r.text()
    # An upgrade: links made before audit_cosignatures was published. Re-running
    # add-region publishes it and the region's link picks it up (with what it missed).
    await c.hub.fetch("ALTER PUBLICATION coord_national_tables DROP TABLE audit_cosignatures")
    await c.jatim.fetch("ALTER SUBSCRIPTION coord_hub_to_jatim REFRESH PUBLICATION")
    await c.jatim.fetch("TRUNCATE audit_cosignatures")
    await run_coord(
        c.hub.env(),
        "federation",
        "add-region",
        "--hub-dsn",
        c.hub.dsn,
        "--region-dsn",
        c.jatim.dsn,
        "--name",
        "jatim",
    )
    published = await c.hub.fetchval(
        "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'coord_national_tables'"
        " AND tablename = 'audit_cosignatures'"
    )
    assert published == 1
    await eventually(
        lambda: c.jatim.fetchval(
            "SELECT count(*) FROM audit_cosignatures WHERE origin = $1 AND tree_size = $2",
            origin,
            receipt["tree_size"],
        ),
        timeout=30,
        what="the cosignatures copied to the region after the upgrade",
    )
    assert not await c.hub.fetchval(
        "SELECT count(*) FROM audit_cosignatures WHERE origin = $1 AND tree_size = $2",
        origin,
        size,
    )


async def test_add_region_explains_worker_limits_and_streams_the_hub_homes(
    cluster: Cluster,
) -> None:
    """On a hub whose PostgreSQL allows 2 logical replication workers, a region's link (one
    of 2 incoming, plus a sync worker) is refused with the setting named; a region whose
    streams the hub already homes (written while no regional node served it) is refused."""
    c = cluster
    await c.hub.fetch("ALTER SYSTEM SET max_logical_replication_workers = 2")
    await c.hub.stop_pg()
    await c.hub.start_pg()
    try:
        err = await _add_region_refused(c, c.jatim)
        assert "max_logical_replication_workers = 2, needs at least 3" in err, err
    finally:
        await c.hub.fetch("ALTER SYSTEM RESET max_logical_replication_workers")
        await c.hub.stop_pg()
        await c.hub.start_pg()
    # A Jawa Timur stream homed at the hub, as one written there before jatim served 35.
    await c.hub.fetch(
        "INSERT INTO events (event_id, stream_id, version, type, data, metadata, region_code)"
        " VALUES ($1, $2, 1, 'HearingScheduled', '{}', '{}', '35.78')",
        uuid.uuid4(),
        f"hearing-{new_id()}",
    )
    err = await _add_region_refused(c, c.jatim)
    assert "the hub already homes streams of 35.78" in err, err
