"""Analysts decide about recurring problems with events on ``cluster-<uuid>`` streams.

``ClusterNamed``, ``ClustersMerged`` and ``IssueReassigned`` (a move, or a split into a
fresh cluster id) win over the algorithm, are national-only, and survive a rebuild and
``verify`` of the issue board.
"""

from __future__ import annotations

import json
from typing import Any

from coord import db
from coord.keys import PROJECTIONS
from projections.issue_board import IssueBoard
from projections.verify import verify
from tests.api.payloads import append, issue_raised
from tests.api.test_views import HONORARIUM_TITLES, World, new_id
from tests.api.test_views import vclient as vclient  # the fixtures of the crafted world
from tests.api.test_views import world as world
from tests.conftest import bearer


def _by_id(body: Any) -> dict[str, Any]:
    return {c["cluster_id"]: c for c in body["clusters"]}


async def _post(world: World, who: dict[str, str], sid: str, *events: Any) -> Any:
    resp = await world.client.post(
        f"/v1/streams/{sid}/events", json=append("any", *events), headers=who
    )
    return resp


async def test_analysts_name_split_merge_and_it_survives_rebuild_and_verify(
    world: World,
    token_for: Any,
    database_url: str,
) -> None:
    """Name, split, merge: the views follow; a new issue still joins; rebuild/verify agree."""
    body = await world.get("/v1/views/issues/recurring", min_regions=1, min_position=world.last)
    top = body["clusters"][0]
    honor = top["cluster_id"]
    regulasi = world.issues["regulasi"]
    other = next(c["cluster_id"] for c in body["clusters"] if regulasi in c["issue_ids"])
    assert other != honor
    await world.write(
        world.national, f"cluster-{honor}", "any", ("ClusterNamed", {"name": "Honor KPPS"})
    )
    split = new_id()
    moved = world.issues["honor-32.73"]
    await world.write(
        world.national, f"cluster-{split}", "any", ("IssueReassigned", {"issue_ids": [moved]})
    )
    await world.write(
        world.national, f"cluster-{honor}", "any", ("ClustersMerged", {"cluster_ids": [other]})
    )
    # The algorithm still adds new issues to a curated cluster, but leaves the moved one.
    fresh = new_id()
    await world.write(
        world.regional,
        f"issue-{fresh}",
        0,
        ("IssueRaised", issue_raised(None, "35.78", title="Honorarium KPPS sesuai UMR kota")),
    )
    clusters = _by_id(await world.get("/v1/views/issues/recurring", min_regions=1))
    assert clusters[honor]["label"] == "Honor KPPS"
    assert moved not in clusters[honor]["issue_ids"] and regulasi in clusters[honor]["issue_ids"]
    assert moved in clusters[split]["issue_ids"]
    assert other not in clusters
    # The new honorarium issue joins one of the two honorarium clusters (both curated).
    assert fresh in clusters[honor]["issue_ids"] + clusters[split]["issue_ids"]
    assert (
        len(clusters[honor]["issue_ids"]) + len(clusters[split]["issue_ids"])
        == len(HONORARIUM_TITLES) + 2
    )
    before = {c: sorted(v["issue_ids"]) for c, v in clusters.items()}
    labels = {c: v["label"] for c, v in clusters.items()}

    admin = bearer(await token_for(world.client, "admin", name="admin"))
    resp = await world.client.post("/v1/projections/issue_board/rebuild", headers=admin)
    assert resp.status == 202, await resp.text()
    await world.client.server.app[PROJECTIONS].rebuilds["issue_board"]
    after = await world.get("/v1/views/issues/recurring", min_regions=1)
    assert {c["cluster_id"]: sorted(c["issue_ids"]) for c in after["clusters"]} == before
    assert {c["cluster_id"]: c["label"] for c in after["clusters"]} == labels

    async def connect() -> Any:
        return await db.connect(database_url)

    _, diffs = await verify(connect, IssueBoard())
    assert diffs == []


async def test_cluster_decisions_are_national_and_checked(world: World) -> None:
    """Regional tokens may not curate; bad decisions get a problem with the field path."""
    cluster = new_id()
    resp = await _post(world, world.regional, f"cluster-{cluster}", ("ClusterNamed", {"name": "x"}))
    assert resp.status == 403
    cases = [
        (("ClustersMerged", {"cluster_ids": [cluster]}), 422, "$.events[0].data.cluster_ids[0]"),
        (("IssueReassigned", {"issue_ids": [new_id()]}), 422, "$.events[0].data.issue_ids[0]"),
        (
            ("IssueReassigned", {"issue_ids": [world.issues["regulasi"]] * 2}),
            422,
            "$.events[0].data.issue_ids[1]",
        ),
        (("IssueReassigned", {"issue_ids": [world.issues["personil"]]}), 409, None),
        (("ClusterNamed", {"name": "   "}), 422, "$.events[0].data.name"),
        (("ClusterNamed", {"name": "ok"}), 201, None),
        (("ClusterNamed", {"name": "ok"}), 409, None),
    ]
    for event, status, path in cases:
        resp = await _post(world, world.national, f"cluster-{cluster}", event)
        assert resp.status == status, (event, await resp.text())
        if status >= 400:
            assert resp.content_type == "application/problem+json"
        if path is not None:
            assert path in await resp.text(), await resp.text()
    resp = await _post(world, world.national, "cluster-NOT-A-UUID", ("ClusterNamed", {"name": "x"}))
    assert resp.status in (400, 422) and resp.content_type == "application/problem+json"


async def test_a_corrected_text_regroups_the_issue(world: World) -> None:
    """IssueCorrected of title and description updates the issue's terms and its cluster."""
    body = await world.get("/v1/views/issues/recurring", min_regions=1, min_position=world.last)
    honor = body["clusters"][0]
    regulasi = world.issues["regulasi"]
    assert regulasi not in honor["issue_ids"]
    fix = {
        "title": "Honorarium KPPS minimal sesuai UMR",
        "description": "Honorarium KPPS belum sesuai UMR.",
        "reason": "Salah ketik: isu yang dimaksud honorarium KPPS",
    }
    await world.write(world.kediri, f"issue-{regulasi}", 1, ("IssueCorrected", fix))
    clusters = _by_id(await world.get("/v1/views/issues/recurring", min_regions=1))
    assert regulasi in clusters[honor["cluster_id"]]["issue_ids"]
    back = {
        "title": "Integrasi regulasi pemilu dan pemilihan",
        "description": "Diperlukan integrasi regulasi pemilu dan pemilihan agar tidak ambigu.",
        "reason": "Dikembalikan",
    }
    await world.write(world.kediri, f"issue-{regulasi}", 2, ("IssueCorrected", back))
    clusters = _by_id(await world.get("/v1/views/issues/recurring", min_regions=1))
    assert regulasi not in clusters[honor["cluster_id"]]["issue_ids"]


async def test_the_list_names_the_first_members_and_counts_them_all(
    world: World, monkeypatch: Any
) -> None:
    """A problem the whole country raises has thousands of members: the list names the first
    ``MEMBERS_LISTED`` (in the order raised) and counts them all; its page lists every one."""
    from projections import issue_board

    monkeypatch.setattr(issue_board, "MEMBERS_LISTED", 2)
    # A new member re-summarises its cluster (the national list reads the stored summary).
    fresh = new_id()
    await world.write(
        world.regional,
        f"issue-{fresh}",
        0,
        ("IssueRaised", issue_raised(None, "35.78", title="Honorarium KPPS sesuai UMR kota")),
    )
    stored = await world.get("/v1/views/issues/recurring", min_regions=1)
    filtered = await world.get(
        "/v1/views/issues/recurring", min_regions=1, category="budget_honorarium"
    )
    holding = [c for c in stored["clusters"] if fresh in await _members(world, c)]
    assert len(holding) == 1
    honor = holding[0]
    for body in (stored, filtered):
        listed = _by_id(body)[honor["cluster_id"]]
        assert listed["issue_count"] >= len(HONORARIUM_TITLES) + 1 > 2
        assert len(listed["issue_ids"]) == 2
    page = await world.get(f"/v1/views/issues/recurring/{honor['cluster_id']}")
    assert len(page["members"]) == len(page["issue_ids"]) == honor["issue_count"]
    # the first ones in the order raised
    assert honor["issue_ids"] == [m["id"] for m in page["members"]][:2]
    assert fresh in page["issue_ids"]
    assert page["recommendation_count"] == len(page["recommendation_ids"])
    for body in (stored, filtered):
        listed = _by_id(body)[honor["cluster_id"]]
        assert listed["recommendation_count"] == page["recommendation_count"]
        assert len(listed["recommendation_ids"]) == min(2, page["recommendation_count"])


async def _members(world: World, cluster: dict[str, Any]) -> list[str]:
    page = await world.get(f"/v1/views/issues/recurring/{cluster['cluster_id']}")
    return [m["id"] for m in page["members"]]


async def test_national_list_written_by_postgresql_equals_the_export(world: World) -> None:
    """The national list (JSON that PostgreSQL builds from the stored summaries) holds the
    same clusters, in the same order, as its JSON Lines export (msgspec's encoding of
    :class:`Cluster`), for each `min_regions`, and `limit` cuts it."""
    lists = {}
    for min_regions in (1, 2):
        listed = await world.get("/v1/views/issues/recurring", min_regions=min_regions)
        resp = await world.client.get(
            "/v1/views/issues/recurring",
            params={"min_regions": min_regions, "format": "jsonl", "min_position": world.last},
            headers=world.national,
        )
        assert resp.status == 200, await resp.text()
        exported = [json.loads(line) for line in (await resp.text()).splitlines()]
        assert listed["clusters"] == exported
        lists[min_regions] = listed["clusters"]
    assert len(lists[1]) > len(lists[2]) > 0
    one = await world.get("/v1/views/issues/recurring", min_regions=1, limit=1)
    assert one["clusters"] == lists[1][:1]
