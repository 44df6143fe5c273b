"""Metadata layout: the client's metadata under `client`, the server's keys beside it.

Client metadata used to sit next to the server's keys, so it could carry keys that look
like the server's (`ce_source`, `region_code`, `position`), and `request_id` was the
client's `X-Request-ID`. Client metadata is also bounded (16 KiB encoded).
"""

from __future__ import annotations

from typing import Any

from coord.writes import MAX_CLIENT_METADATA
from tests.api.payloads import hearing_scheduled, new_id, statement
from tests.security.conftest import Tokens, post_events, stored_events

SERVER_KEYS = {"actor", "role", "request_id", "client_request_id", "recorded_at", "node_id"}


async def test_client_metadata_lives_under_client(sclient: Any, tokens: Tokens) -> None:
    """Look-alike keys stay inside `client`; request_id is the server's, the client's apart."""
    sid = f"hearing-{new_id()}"
    sent = {
        "ce_source": "https://forged.example",
        "region_code": "33.74",
        "position": 1,
        "request_id": "forged",
        "actor": {"name": "Presiden"},
        "client": {"nested": True},
    }
    resp = await sclient.post(
        f"/v1/streams/{sid}/events",
        json={
            "expected_version": 0,
            "events": [{"type": "HearingScheduled", "data": hearing_scheduled(), "metadata": sent}],
        },
        headers={**tokens.national, "X-Request-ID": "kpu-batch-7"},
    )
    assert resp.status == 201, await resp.text()
    server_request_id = resp.headers["X-Request-ID"]
    page = await (await sclient.get(f"/v1/streams/{sid}", headers=tokens.national)).json()
    meta = page["events"][0]["metadata"]
    assert set(meta) == SERVER_KEYS | {"client"}
    assert meta["client"] == sent
    assert meta["request_id"] == server_request_id != "kpu-batch-7"
    assert meta["client_request_id"] == "kpu-batch-7"
    assert meta["role"] == "national" and meta["actor"]["name"] != "Presiden"


async def test_no_client_metadata_no_client_key(sclient: Any, tokens: Tokens) -> None:
    """Without client metadata or X-Request-ID, the metadata holds the server's keys only."""
    sid = f"hearing-{new_id()}"
    resp = await post_events(
        sclient, tokens.national, sid, 0, {"type": "HearingScheduled", "data": hearing_scheduled()}
    )
    assert resp.status == 201
    page = await (await sclient.get(f"/v1/streams/{sid}", headers=tokens.national)).json()
    assert set(page["events"][0]["metadata"]) == SERVER_KEYS - {"client_request_id"}


async def test_cloudevents_attributes_are_the_servers_record(sclient: Any, tokens: Tokens) -> None:
    """CloudEvents source/id/time are recorded by the intake beside the server's keys."""
    sid = f"hearing-{new_id()}"
    resp = await sclient.post(
        "/v1/cloudevents",
        json={
            "specversion": "1.0",
            "id": "rapat-1",
            "source": "https://kesbangpol.kedirikota.go.id",
            "type": "HearingScheduled",
            "subject": sid,
            "time": "2021-10-20T08:00:00+07:00",
            "data": hearing_scheduled(),
        },
        headers={**tokens.national, "Content-Type": "application/cloudevents+json"},
    )
    assert resp.status == 201, await resp.text()
    page = await (await sclient.get(f"/v1/streams/{sid}", headers=tokens.national)).json()
    meta = page["events"][0]["metadata"]
    assert meta["ce_source"] == "https://kesbangpol.kedirikota.go.id"
    assert meta["ce_id"] == "rapat-1"
    assert meta["ce_time"].startswith("2021-10-20T08:00:00")
    assert "client" not in meta


async def test_client_metadata_is_limited_to_16_kib(sclient: Any, tokens: Tokens) -> None:
    """Over 16 KiB encoded is 422 at `$.events[i].metadata` and writes nothing; 16 KiB passes."""
    sid = f"hearing-{new_id()}"
    before = await stored_events(sclient, tokens.national)
    overhead = len(b'{"note":""}')
    fits = {"note": "x" * (MAX_CLIENT_METADATA - overhead)}
    too_big = {"note": "x" * (MAX_CLIENT_METADATA - overhead + 1)}
    events = [
        {"type": "HearingScheduled", "data": hearing_scheduled(), "metadata": fits},
        {"type": "StatementRecorded", "data": statement(), "metadata": too_big},
    ]
    resp = await post_events(sclient, tokens.national, sid, 0, *events)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["field"] == "$.events[1].metadata"
    assert await stored_events(sclient, tokens.national) == before

    resp = await post_events(sclient, tokens.national, sid, 0, events[0])
    assert resp.status == 201, await resp.text()
