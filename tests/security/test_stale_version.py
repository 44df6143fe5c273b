"""No append without the rules: every event is decided on the state it is appended on.

The write path used to skip `decide` when the client's expected version differed from
the version it loaded, and append with the client's version: on an issue at version 1,
an `IssueRaised` sent with `expected_version: 2` beside an `IssueEvidenceAdded` with
`expected_version: 1` landed as the issue's third event, and the issue never folded again.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from events.domain import dispatch as domain
from events.domain.context import DecideContext
from events.domain.regions import load_regions
from events.domain.types import decode_stored
from tests.api.payloads import hearing_scheduled, issue_raised, new_id, statement
from tests.security.conftest import KEDIRI, Tokens, post_events

EVIDENCE = {"type": "IssueEvidenceAdded", "data": {"description": "Foto kegiatan rapat pleno."}}
RAISED_AGAIN = {"type": "IssueRaised", "data": issue_raised(None, KEDIRI, title="Judul kedua")}


async def _read_stream(client: Any, headers: dict[str, str], stream_id: str) -> list[Any]:
    resp = await client.get(f"/v1/streams/{stream_id}?limit=1000", headers=headers)
    if resp.status == 404:
        return []
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["events"])


def _check_rules(stream_id: str, events: list[dict[str, Any]]) -> None:
    """Replay the stored stream through decide and evolve: every event obeys the rules."""
    ctx = DecideContext(regions=load_regions())  # the storm's events reference no other stream
    state = None
    for e in events:
        event = decode_stored(e["type"], e["schema_version"], _json(e["data"]))
        domain.decide(state, event, ctx)  # type: ignore[arg-type]
        state = domain.evolve(state, event)  # type: ignore[arg-type]
    assert state is not None or not events, stream_id


def _json(value: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(value)


async def test_stale_version_race_cannot_skip_the_rules(sclient: Any, tokens: Tokens) -> None:
    """Issue at v1; IssueEvidenceAdded@1 and IssueRaised@2 at once: the second is always 409."""
    issues = [new_id() for _ in range(25)]
    for iid in issues:
        resp = await post_events(
            sclient,
            tokens.kediri,
            f"issue-{iid}",
            0,
            {"type": "IssueRaised", "data": issue_raised(None)},
        )
        assert resp.status == 201

    async def pair(iid: str) -> tuple[int, int]:
        evidence, raised = await asyncio.gather(
            post_events(sclient, tokens.kediri, f"issue-{iid}", 1, EVIDENCE),
            post_events(sclient, tokens.kediri, f"issue-{iid}", 2, RAISED_AGAIN),
        )
        return evidence.status, raised.status

    outcomes = await asyncio.gather(*(pair(iid) for iid in issues))
    assert all(raised == 409 for _, raised in outcomes), outcomes
    assert all(evidence == 201 for evidence, _ in outcomes), outcomes
    for iid in issues:
        events = await _read_stream(sclient, tokens.kediri, f"issue-{iid}")
        assert [e["type"] for e in events] == ["IssueRaised", "IssueEvidenceAdded"]
        assert (await sclient.get(f"/v1/issues/{iid}", headers=tokens.kediri)).status == 200


def _hearing_event(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(
        [
            "HearingScheduled",
            "HearingRescheduled",
            "HearingCancelled",
            "ParticipantsRecorded",
            "StatementRecorded",
            "HearingHeld",
        ]
    )
    data: dict[str, Any] = {
        "HearingScheduled": hearing_scheduled(),
        "HearingRescheduled": {"scheduled_at": "2021-11-02T09:00:00+07:00"},
        "HearingCancelled": {"reason": "Banjir di lokasi."},
        "ParticipantsRecorded": {
            "participants": [
                {
                    "name": "Ismail Bafadal",
                    "role": "Ketua",
                    "organization": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
                }
            ]
        },
        "StatementRecorded": statement(),
        "HearingHeld": {
            "held_at": "2021-10-26T09:00:00+07:00",
            "opened_by": "Ismail Bafadal",
            "summary": "Rapat membahas persiapan pemilu.",
        },
    }[kind]
    return {"type": kind, "data": data}


def _issue_event(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(
        ["IssueRaised", "IssueCategoryCorrected", "IssueEvidenceAdded", "IssueWithdrawn"]
    )
    data: dict[str, Any] = {
        "IssueRaised": issue_raised(None),
        "IssueCategoryCorrected": {
            "category": rng.choice(["campaign", "logistics", "budget_honorarium"]),
            "reason": "Salah kategori.",
        },
        "IssueEvidenceAdded": EVIDENCE["data"],
        "IssueWithdrawn": {"reason": "Sudah diselesaikan."},
    }[kind]
    return {"type": kind, "data": data}


async def test_storm_of_stale_appends_leaves_every_stream_lawful(
    sclient: Any, tokens: Tokens
) -> None:
    """Hundreds of conflicting appends (mixed types and versions): every stream obeys the rules."""
    rng = random.Random(20211026)
    hearings = [new_id() for _ in range(10)]
    issues = [new_id() for _ in range(10)]
    # Half the streams exist before the storm (at version 1), half are created during it.
    for hid in hearings[:5]:
        resp = await post_events(
            sclient,
            tokens.national,
            f"hearing-{hid}",
            0,
            {"type": "HearingScheduled", "data": hearing_scheduled()},
        )
        assert resp.status == 201
    for iid in issues[:5]:
        resp = await post_events(
            sclient,
            tokens.kediri,
            f"issue-{iid}",
            0,
            {"type": "IssueRaised", "data": issue_raised(None)},
        )
        assert resp.status == 201
    gate = asyncio.Semaphore(24)

    async def one(k: int) -> int:
        if k % 2:
            who, sid, event = (
                tokens.national,
                f"hearing-{rng.choice(hearings)}",
                _hearing_event(rng),
            )
        else:
            who, sid, event = tokens.kediri, f"issue-{rng.choice(issues)}", _issue_event(rng)
        expected = rng.choice([0, 1, 1, 2, 2, 3, "any", "any", "exists"])
        async with gate:
            resp = await post_events(sclient, who, sid, expected, event)
            return int(resp.status)

    statuses = await asyncio.gather(*(one(k) for k in range(300)))
    assert set(statuses) <= {201, 409, 422}, sorted(set(statuses))
    assert statuses.count(201) >= 20 and statuses.count(409) >= 50

    last = 0
    for category, ids in (("hearing", hearings), ("issue", issues)):
        for eid in ids:
            events = await _read_stream(sclient, tokens.national, f"{category}-{eid}")
            _check_rules(f"{category}-{eid}", events)
            if events:
                last = max(last, max(e["position"] for e in events))
                resp = await sclient.get(f"/v1/{category}s/{eid}", headers=tokens.national)
                assert resp.status == 200, await resp.text()
    for path in ("/v1/views/issues", "/v1/views/hearings", "/v1/views/issues/summary"):
        resp = await sclient.get(f"{path}?min_position={last}", headers=tokens.national)
        assert resp.status == 200, (path, await resp.text())
    projections = await (await sclient.get("/v1/projections", headers=tokens.national)).json()
    assert all(p["state"] != "failed" for p in projections["items"]), projections
