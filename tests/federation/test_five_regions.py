"""A hub and five regional nodes on exactly the PostgreSQL settings docs/deploy.md documents
(section 3, limits): PostgreSQL's defaults plus wal_level = logical and the limits for n = 5,
nothing else (issue 17, item 4). The regions' coord processes run in their own time zones."""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from coord.federation import LIMIT_SETTINGS
from events.domain.ids import home_scoped
from tests.api.payloads import hearing_scheduled, issue_raised, new_id, recommendation_drafted
from tests.federation.cluster import (
    Cluster,
    ClusterNode,
    Region,
    add_region,
    add_region_refused,
    create_token,
    diagnose,
    eventually,
    is_status,
    running_nodes,
    status_of,
)

# Jawa Timur and Jawa Tengah (WIB, UTC+7), Bali and Sulawesi Selatan (WITA, UTC+8), Papua
# (WIT, UTC+9). Aceh (11) has no regional node: the hub homes it.
FIVE = [
    Region("jatim", "35", "Asia/Jakarta"),
    Region("jateng", "33", "Asia/Jakarta"),
    Region("bali", "51", "Asia/Makassar"),
    Region("sulsel", "73", "Asia/Makassar"),
    Region("papua", "91", "Asia/Jayapura"),
]
CITY = {"jatim": "35.78", "jateng": "33.74", "bali": "51.71", "sulsel": "73.71", "papua": "91.71"}
UTC_OFFSET = {
    "jatim": "+07:00",
    "jateng": "+07:00",
    "bali": "+08:00",
    "sulsel": "+08:00",
    "papua": "+09:00",
}

# What docs/deploy.md has changed from PostgreSQL's defaults on every node: logical
# decoding, and (optional there) a subscription's retry pace, which at the minimum
# limits paces a new link's copy table by table (5 s by default: about 35 s more here).
LOGICAL = {"wal_level": "logical", "wal_retrieve_retry_interval": "500ms"}


def hub_limits(n: int) -> dict[str, str]:
    """docs/deploy.md's limits for a hub with `n` regions."""
    return {
        "max_logical_replication_workers": str(n + 1),
        "max_worker_processes": str(n + 2),
        "max_active_replication_origins": str(n + 1),
        "max_replication_slots": str(n + 2),
        "max_wal_senders": str(n + 2),
    }


# docs/deploy.md's limits for a region (one link each way): its minimum, not a default.
REGION_LIMITS = {
    "max_logical_replication_workers": "2",
    "max_worker_processes": "3",
    "max_active_replication_origins": "2",
    "max_replication_slots": "3",
    "max_wal_senders": "3",
}


async def _settings(node: ClusterNode) -> dict[str, str]:
    rows = await node.fetch(
        "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
        [*LIMIT_SETTINGS, "wal_level"],
    )
    return {r["name"]: r["setting"] for r in rows}


async def _ready(node: ClusterNode) -> bool:
    """Every table of every coord subscription on `node` has finished its initial copy."""
    waiting = await node.fetchval(
        "SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid"
        " WHERE s.subname LIKE 'coord\\_%' AND r.srsubstate <> 'r'"
    )
    subs = await node.fetchval("SELECT count(*) FROM pg_subscription")
    return bool(subs and waiting == 0)


async def _links(node: ClusterNode, headers: dict[str, str]) -> dict[tuple[str, str], Any]:
    """`GET /v1/federation`'s links by (name, direction)."""
    async with (
        aiohttp.ClientSession(node.url, headers=headers) as http,
        http.get("/v1/federation") as r,
    ):
        assert r.status == 200, await r.text()
        doc = msgspec.json.decode(await r.read())
    return {(x["name"], x["direction"]): x for x in doc["links"]}


def _expected_links(c: Cluster, node: ClusterNode) -> set[tuple[str, str]]:
    """(link, direction) of every link `node` should show: both ways with each peer."""
    peers = list(c.regions) if node is c.hub else ["hub"]
    return {
        (f"coord_{a}_to_{b}", d)
        for p in peers
        for a, b, d in ((p, node.node_id, "in"), (node.node_id, p, "out"))
    }


async def _all_streaming(c: Cluster) -> bool:
    for node in c.nodes:
        # The auditor's token there first: polling with an unknown one draws on the
        # strict bucket for requests without a valid token (429).
        if not await node.fetchval("SELECT 1 FROM access_tokens WHERE name = 'Inspektorat'"):
            return False
        links = await _links(node, c.auth("auditor"))
        if set(links) != _expected_links(c, node):
            return False
        if any(x["state"] != "streaming" or not x["connected"] for x in links.values()):
            return False
    return True


async def _post(
    node: ClusterNode, headers: dict[str, str], stream: str, event: Any
) -> tuple[int, Any]:
    """Start `stream` with `event`: the status and the decoded answer."""
    body = {"expected_version": 0, "events": [event]}
    async with (
        aiohttp.ClientSession(node.url, headers=headers) as http,
        http.post(f"/v1/streams/{stream}/events", json=body) as r,
    ):
        return r.status, msgspec.json.decode(await r.read())


async def _write(c: Cluster, region: ClusterNode) -> tuple[list[uuid.UUID], str]:
    """A hearing (at the region's local time) and an issue, with the region's token minted
    at the hub; the ids the region stores them under, and the issue's id."""
    code, hid, iid = CITY[region.node_id], new_id(), new_id()
    at = f"2024-02-14T09:00:00{UTC_OFFSET[region.node_id]}"
    sent = [str(uuid.uuid4()), str(uuid.uuid4())]
    headers = c.auth(region.node_id)
    for stream, typ, data, eid in (
        (f"hearing-{hid}", "HearingScheduled", hearing_scheduled(code, scheduled_at=at), sent[0]),
        (f"issue-{iid}", "IssueRaised", issue_raised(hid, code), sent[1]),
    ):
        status, doc = await _post(region, headers, stream, {"type": typ, "data": data, "id": eid})
        assert status == 201, doc
    return [home_scoped(region.node_id, uuid.UUID(e)) for e in sent], iid


async def _verify_federation(c: Cluster, folder: Path) -> tuple[bool, str]:
    """`coord verify --federation` on each node's export up to its latest checkpoint, the
    hub's last (it must hold every region event exported): passed, and its output."""
    args, cps, keys = ["verify", "--federation"], [], []
    for node in [*c.regions.values(), c.hub]:
        async with aiohttp.ClientSession(node.url, headers=c.auth("auditor")) as http:
            async with http.get("/v1/audit/checkpoint") as r:
                assert r.status == 200, await r.text()
                note = await r.read()
            size = int(note.split(b"\n")[1])
            async with http.get(f"/v1/audit/export?to={size}") as r:
                assert r.status == 200, await r.text()
                export = await r.read()
            async with http.get("/v1/audit/public-key") as r:
                keys.append((await r.json())["vkey"])
        (folder / f"{node.node_id}.ndjson").write_bytes(export)
        (folder / f"{node.node_id}.cp").write_bytes(note)
    for node in [c.hub, *c.regions.values()]:  # the hub's export first
        args.append(str(folder / f"{node.node_id}.ndjson"))
        cps += ["--checkpoint", str(folder / f"{node.node_id}.cp")]
    args += cps + [a for k in keys for a in ("--vkey", k)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coord", *args, env=c.hub.env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode == 0, (out + err).decode()


async def test_five_regions_on_the_documented_settings(tmp_path: Path) -> None:
    """On PostgreSQL's defaults (4 logical replication workers) the hub carries three
    regions and `add-region` refuses a fourth, naming the setting; raised to exactly the
    documented limits for five, every link of five regions streams both ways with no error
    gauge; each region's writes (regional tokens minted at the hub) reach the hub exactly
    once, unchanged; national tokens and streams reach every region; `coord verify
    --federation` passes on all six logs; Aceh, which no node serves, is written at the hub
    and stays there."""
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        await _five_regions(tmp_path, started, timings)
    finally:
        print(
            "\nfive regions: "
            + ", ".join(f"{k} at {v:.1f} s" for k, v in timings.items())
            + f"; {time.monotonic() - started:.1f} s in all (with teardown)"
        )


async def _five_regions(tmp_path: Path, started: float, timings: dict[str, float]) -> None:
    region_settings = {**LOGICAL, **REGION_LIMITS}
    async with running_nodes(FIVE, hub_settings=LOGICAL, region_settings=region_settings) as c:
        timings["nodes up"] = time.monotonic() - started
        assert (await _settings(c.hub))["max_logical_replication_workers"] == "4"
        for region in c.regions.values():
            assert await _settings(region) == {**REGION_LIMITS, "wal_level": "logical"}
        first, later = list(c.regions.values())[:3], list(c.regions.values())[3:]
        for region in first:
            await add_region(c.hub, region)
        timings["3 add-region"] = time.monotonic() - started
        # The fourth needs 4 apply workers + 1 for its initial copy: refused, nothing made.
        err = await add_region_refused(c.hub, later[0])
        assert "the hub's PostgreSQL cannot carry another link" in err, err
        assert "max_logical_replication_workers = 4, needs at least 5" in err, err
        assert not await c.hub.fetchval(
            "SELECT count(*) FROM pg_subscription WHERE subname = $1",
            f"coord_{later[0].node_id}_to_hub",
        )
        assert not await c.hub.fetchval(
            "SELECT count(*) FROM federation_nodes WHERE node_id = $1", later[0].node_id
        )
        timings["refused"] = time.monotonic() - started
        # Tokens are national: minted at the hub (through its API: one CLI start, not
        # eight), they reach the regions over the links.
        c.tokens["admin"] = await create_token(c.hub, "admin", "Admin Setjen")
        wanted = [
            *((r.node_id, "regional", f"KPU {r.node_id}", [r.codes]) for r in FIVE),
            ("national", "national", "Setjen Wantannas", []),
            ("auditor", "auditor", "Inspektorat", []),
            ("aceh", "regional", "KPU Aceh", ["11"]),
        ]
        async with aiohttp.ClientSession(c.hub.url, headers=c.auth("admin")) as http:
            for key, role, name, codes in wanted:
                body = {"role": role, "name": name, "regions": codes}
                async with http.post("/v1/tokens", json=body) as r:
                    assert r.status == 201, await r.text()
                    c.tokens[key] = (await r.json())["token"]
        timings["tokens"] = time.monotonic() - started
        # The three links the defaults carry finish their initial copies on 4 workers.
        try:
            for node in (c.hub, *first):
                await eventually(lambda n=node: _ready(n), 60, f"{node.node_id}'s copies")
        except AssertionError as e:
            raise AssertionError(await diagnose(c.hub, *first)) from e
        timings["three links on defaults"] = time.monotonic() - started

        # Raised to exactly the documented limits for n = 5 (a restart, as documented).
        for name, value in hub_limits(5).items():
            await c.hub.fetch(f"ALTER SYSTEM SET {name} = '{value}'")
        await c.hub.stop_pg()
        await c.hub.start_pg()
        assert await _settings(c.hub) == {**hub_limits(5), "wal_level": "logical"}
        timings["hub restarted"] = time.monotonic() - started
        for region in later:
            await add_region(c.hub, region)
        timings["2 add-region"] = time.monotonic() - started
        try:
            await eventually(lambda: _all_streaming(c), 90, "every link streaming")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{await diagnose(*c.nodes)}") from e
        timings["ten links streaming"] = time.monotonic() - started
        for node in c.nodes:
            # Every copy's table-sync workers found a slot and a WAL sender on the
            # publisher at the first try (with one of each fewer, they fail and retry).
            failed = await node.fetchval(
                "SELECT coalesce(sum(sync_error_count), 0) FROM pg_stat_subscription_stats"
            )
            assert failed == 0, await diagnose(node)
            links = await _links(node, c.auth("auditor"))
            assert all(x["conflicts"] == 0 for (_, d), x in links.items() if d == "in"), links
            async with aiohttp.ClientSession(node.url) as http, http.get("/metrics") as r:
                metrics = (await r.text()).splitlines()

            def gauge(name: str, lines: list[str] = metrics) -> dict[str, str]:
                return {
                    line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1]
                    for line in lines
                    if line.startswith(name + "{")
                }

            series = {f'{{direction="{d}",link="{name}"}}' for name, d in _expected_links(c, node)}
            connected = gauge("coord_federation_link_connected")
            assert connected == {f"coord_federation_link_connected{s}": "1.0" for s in series}
            errors = gauge("coord_federation_errors")  # incoming links only: conflicts
            want = {f"coord_federation_errors{s}" for s in series if 'direction="in"' in s}
            assert set(errors) == want and set(errors.values()) == {"0.0"}, errors

        # Each region writes with its own token (minted at the hub), all at once.
        for region in c.regions.values():  # the token has reached its region
            await eventually(
                lambda r=region: is_status(
                    status_of(r, c.auth(r.node_id), f"/v1/regions/{r.regions}"), 200
                ),
                what=f"{region.node_id}'s token there",
            )
        written = dict(
            zip(
                c.regions,
                await asyncio.gather(*(_write(c, r) for r in c.regions.values())),
                strict=True,
            )
        )
        # Aceh: written at the hub; a region sends the writer there (421, home_node hub).
        aceh = f"hearing-{new_id()}"
        hearing = {"type": "HearingScheduled", "data": hearing_scheduled("11.71")}
        status, problem = await _post(c.regions["bali"], c.auth("aceh"), aceh, hearing)
        assert (status, problem["home_node"]) == (421, "hub"), problem
        status, doc = await _post(c.hub, c.auth("aceh"), aceh, hearing)
        assert status == 201, doc

        # Every region event at the hub exactly once (in its log once), byte for byte.
        async def at_hub(region: ClusterNode) -> bool:
            ids = written[region.node_id][0]
            n = await c.hub.fetchval(
                "SELECT count(*) FROM events e JOIN log l ON l.seq = e.seq"
                " WHERE e.event_id = ANY($1)",
                ids,
            )
            return bool(n == len(ids))

        for region in c.regions.values():
            try:
                await eventually(lambda r=region: at_hub(r), 30, f"{region.node_id}'s events")
            except AssertionError as e:
                raise AssertionError(await diagnose(c.hub, region)) from e
        same = (
            "SELECT event_id, stream_id, version, type, data::text, metadata::text,"
            " recorded_at, region_code FROM events WHERE node_id = $1 ORDER BY event_id"
        )
        for region in c.regions.values():
            held = await region.fetch(same, region.node_id)
            assert sorted(r["event_id"] for r in held) == sorted(written[region.node_id][0])
            assert await c.hub.fetch(same, region.node_id) == held
            assert await c.hub.fetchval(
                "SELECT count(*) FROM log l JOIN events e ON e.seq = l.seq WHERE e.node_id = $1",
                region.node_id,
            ) == len(held)
        timings["writes at the hub"] = time.monotonic() - started

        # A national stream on the five issues reaches every region (and the national
        # token works there); the Aceh hearing, written before it, does not.
        rid = new_id()
        issues = [iid for _, iid in written.values()]
        draft = {"type": "RecommendationDrafted", "data": recommendation_drafted(issues)}
        status, doc = await _post(c.hub, c.auth("national"), f"recommendation-{rid}", draft)
        assert status == 201, doc

        async def national_at(region: ClusterNode) -> bool:
            async with (
                aiohttp.ClientSession(region.url, headers=c.auth("national")) as http,
                http.get(f"/v1/streams/recommendation-{rid}") as r,
            ):
                body = (await r.json()) if r.status == 200 else None
            return bool(body and [e["type"] for e in body["events"]] == ["RecommendationDrafted"])

        for region in c.regions.values():
            await eventually(lambda r=region: national_at(r), 30, f"the stream at {region.node_id}")
            assert not await region.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1", aceh
            )
        assert (
            await c.hub.fetchval("SELECT node_id FROM events WHERE stream_id = $1", aceh) == "hub"
        )

        # Offline: each log verifies against its checkpoint, each region's events are in
        # the hub's log once, unchanged.
        # (The hub's latest checkpoint may trail what it holds by a moment: retried.)
        runs: list[str] = []

        async def verified() -> bool:
            ok, out = await _verify_federation(c, tmp_path)
            runs.append(out)
            return ok

        try:
            await eventually(verified, 30, "coord verify --federation")
        except AssertionError as e:
            raise AssertionError(runs[-1]) from e
        out = runs[-1]
        for node in c.nodes:
            role = "hub" if node is c.hub else "region"
            assert any(
                line.startswith(f"{role} coord.local/{node.node_id}:") and line.endswith("VERIFIED")
                for line in out.splitlines()
            ), out
        for region in c.regions.values():
            # Every line of the region's export (its 2 events and the national ones it
            # received) was checked against the hub's log.
            origin = f"coord.local/{region.node_id}"
            lines = re.search(rf"^region {origin}: (\d+) lines, .*: VERIFIED$", out, re.M)
            cross = re.search(
                rf"^region {origin}: (\d+) events, each in the hub's log once, unchanged$",
                out,
                re.M,
            )
            assert lines and cross and lines[1] == cross[1] and int(lines[1]) > 2, out
        timings["verified"] = time.monotonic() - started
