"""The streams HTTP contract: append, read, global log, errors, and that errors write nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from coord.config import Config
from tests.api.payloads import append, hearing_scheduled, new_id, statement
from tests.conftest import bearer

PROBLEM = "application/problem+json"


@pytest.fixture
async def national(client: Any, token_for: Any) -> dict[str, str]:
    """Headers of a national token."""
    return bearer(await token_for(client, "national"))


async def count(client: Any, headers: dict[str, str]) -> int:
    """Domain events in the global log (token events aside)."""
    resp = await client.get(
        "/v1/events?limit=10000&category=hearing,issue,recommendation", headers=headers
    )
    return len((await resp.json())["events"])


async def test_append_then_read_back(client: Any, national: dict[str, str]) -> None:
    """201 with versions and positions; GET returns the events with server facts."""
    sid = f"hearing-{new_id()}"
    body = append(0, ("HearingScheduled", hearing_scheduled()), ("StatementRecorded", statement()))
    resp = await client.post(f"/v1/streams/{sid}/events", json=body, headers=national)
    assert resp.status == 201, await resp.text()
    result = await resp.json()
    head = result["first_position"]
    assert result == {
        "stream_id": sid,
        "first_version": 1,
        "last_version": 2,
        "first_position": head,
        "last_position": head + 1,
    }
    resp = await client.get(f"/v1/streams/{sid}", headers=national)
    assert resp.status == 200
    page = await resp.json()
    assert page["stream_id"] == sid and page["version"] == 2
    assert page["next_from_version"] is None
    first = page["events"][0]
    assert set(first) >= {
        "id",
        "stream_id",
        "version",
        "position",
        "type",
        "data",
        "metadata",
        "recorded_at",
    }
    assert first["data"] == hearing_scheduled()
    assert first["metadata"]["role"] == "national"
    assert [e["position"] for e in page["events"]] == [head, head + 1]


async def test_stream_paging(client: Any, national: dict[str, str]) -> None:
    """limit and from_version page through a stream; next_from_version says where to go on."""
    sid = f"hearing-{new_id()}"
    events = [("HearingScheduled", hearing_scheduled())] + [
        ("StatementRecorded", statement(f"Pernyataan {i}")) for i in range(4)
    ]
    await client.post(f"/v1/streams/{sid}/events", json=append(0, *events), headers=national)
    resp = await client.get(f"/v1/streams/{sid}?limit=2&from_version=2", headers=national)
    page = await resp.json()
    assert [e["version"] for e in page["events"]] == [2, 3]
    assert page["next_from_version"] == 4


async def test_idempotent_retry_is_200_with_same_body(
    client: Any, national: dict[str, str]
) -> None:
    """Posting the same event ids again returns 200 and the original result, writing nothing."""
    sid = f"hearing-{new_id()}"
    body = append(0, ("HearingScheduled", hearing_scheduled()), id=new_id())
    first = await client.post(f"/v1/streams/{sid}/events", json=body, headers=national)
    again = await client.post(f"/v1/streams/{sid}/events", json=body, headers=national)
    assert (first.status, again.status) == (201, 200)
    assert await first.json() == await again.json()
    assert await count(client, national) == 1


async def test_same_id_other_content_is_409(client: Any, national: dict[str, str]) -> None:
    """An event id reused with other content is a 409 and writes nothing."""
    sid = f"hearing-{new_id()}"
    eid = new_id()
    await client.post(
        f"/v1/streams/{sid}/events",
        headers=national,
        json=append(0, ("HearingScheduled", hearing_scheduled()), id=eid),
    )
    resp = await client.post(
        f"/v1/streams/{sid}/events",
        headers=national,
        json=append(0, ("HearingScheduled", hearing_scheduled(venue="Balai Kota")), id=eid),
    )
    assert resp.status == 409
    assert resp.content_type == PROBLEM
    assert await count(client, national) == 1


async def test_version_conflict_problem(client: Any, national: dict[str, str]) -> None:
    """A stale expected_version is a 409 problem with expected and actual versions."""
    sid = f"hearing-{new_id()}"
    await client.post(
        f"/v1/streams/{sid}/events",
        headers=national,
        json=append(0, ("HearingScheduled", hearing_scheduled())),
    )
    resp = await client.post(
        f"/v1/streams/{sid}/events",
        headers=national,
        json=append(0, ("StatementRecorded", statement())),
    )
    assert resp.status == 409
    assert resp.content_type == PROBLEM
    problem = await resp.json()
    assert problem["expected_version"] == 0 and problem["actual_version"] == 1
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert await count(client, national) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"expected_version": 0, "events": [', 400, None),
        (b"[1, 2]", 422, "$"),
        (b'{"events": []}', 422, "$"),
        (
            b'{"expected_version": -1, "events": [{"type": "X", "data": {}}]}',
            422,
            "$.expected_version",
        ),
        (
            b'{"expected_version": "sometimes", "events": [{"type": "X", "data": {}}]}',
            422,
            "$.expected_version",
        ),
        (b'{"expected_version": 0, "events": []}', 422, "$.events"),
        (
            b'{"expected_version": 0, "events": [{"type": "HearingScheduled", "data": []}]}',
            422,
            "$.events[0].data",
        ),
        (
            b'{"expected_version": 0, "events": [{"type": "HearingScheduled", "data": {},'
            b' "id": "nope"}]}',
            422,
            "$.events[0].id",
        ),
        (
            b'{"expected_version": 0, "events": [{"type": "Nope", "data": {}}]}',
            422,
            "$.events[0].type",
        ),
        (
            b'{"expected_version": 0, "events": [{"type": "IssueRaised", "data": {}}]}',
            422,
            "$.events[0].type",
        ),
        (
            b'{"expected_version": 0, "events": [{"type": "HearingScheduled",'
            b' "data": {"region_code": "35.71"}}]}',
            422,
            "$.events[0].data",
        ),
    ],
)
async def test_bad_bodies(
    client: Any, national: dict[str, str], body: bytes, status: int, field: str | None
) -> None:
    """Malformed JSON is 400; wrong shapes are 422 naming the field; nothing is written."""
    sid = f"hearing-{new_id()}"
    resp = await client.post(
        f"/v1/streams/{sid}/events",
        data=body,
        headers={**national, "Content-Type": "application/json"},
    )
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    problem = await resp.json()
    assert problem["status"] == status
    if field is not None:
        assert problem["field"].startswith(field), problem
    assert await count(client, national) == 0


async def test_field_path_inside_data(client: Any, national: dict[str, str]) -> None:
    """A bad nested value names its full path, e.g. the organization code."""
    sid = f"hearing-{new_id()}"
    data = hearing_scheduled(convened_by={"code": "NOPE", "name": "x"})
    resp = await client.post(
        f"/v1/streams/{sid}/events", headers=national, json=append(0, ("HearingScheduled", data))
    )
    assert resp.status == 422
    assert (await resp.json())["field"] == "$.events[0].data.convened_by.code"


async def test_unsupported_media_type(client: Any, national: dict[str, str]) -> None:
    """A body that is not application/json is 415."""
    resp = await client.post(
        f"/v1/streams/hearing-{new_id()}/events",
        data=b"{}",
        headers={**national, "Content-Type": "text/plain"},
    )
    assert resp.status == 415
    assert resp.content_type == PROBLEM


async def test_body_over_limit_is_413(aiohttp_client: Any, config: Config, token_for: Any) -> None:
    """A body above the configured limit is 413, and nothing is written."""
    from coord.app import create_app

    small = Config(
        **{**{f: getattr(config, f) for f in config.__struct_fields__}, "max_body_bytes": 2048}
    )
    client = await aiohttp_client(create_app(small))
    headers = bearer(await token_for(client, "national"))
    data = hearing_scheduled(agenda="a" * 4000)
    resp = await client.post(
        f"/v1/streams/hearing-{new_id()}/events",
        headers=headers,
        json=append(0, ("HearingScheduled", data)),
    )
    assert resp.status == 413
    assert resp.content_type == PROBLEM
    assert await count(client, headers) == 0


@pytest.mark.parametrize(
    "sid", ["nodash", "-x", "hearing-" + "x" * 200, "hearing-a b", "hearing-é"]
)
async def test_bad_stream_ids_are_422(client: Any, national: dict[str, str], sid: str) -> None:
    """Stream ids are category-identifier over [A-Za-z0-9._:-], 1-200 characters."""
    resp = await client.post(
        f"/v1/streams/{sid}/events",
        headers=national,
        json=append(0, ("HearingScheduled", hearing_scheduled())),
    )
    assert resp.status == 422
    resp = await client.get(f"/v1/streams/{sid}", headers=national)
    assert resp.status == 422


async def test_unknown_stream_is_404(client: Any, national: dict[str, str]) -> None:
    """Reading a stream that does not exist is a 404 problem."""
    resp = await client.get(f"/v1/streams/hearing-{new_id()}", headers=national)
    assert resp.status == 404
    assert resp.content_type == PROBLEM


async def test_global_log_order_filters_and_paging(client: Any, national: dict[str, str]) -> None:
    """GET /v1/events pages the log in order and filters by type and category."""
    for _ in range(3):
        sid = f"hearing-{new_id()}"
        await client.post(
            f"/v1/streams/{sid}/events",
            headers=national,
            json=append(
                0, ("HearingScheduled", hearing_scheduled()), ("StatementRecorded", statement())
            ),
        )
    resp = await client.get("/v1/events?after=0&category=hearing", headers=national)
    everything = [e["position"] for e in (await resp.json())["events"]]
    assert len(everything) == 6 and everything == sorted(everything)
    start = everything[0] - 1
    resp = await client.get(f"/v1/events?after={start}&limit=4", headers=national)
    page = await resp.json()
    assert [e["position"] for e in page["events"]] == everything[:4]
    assert page["last_position"] == everything[3]
    resp = await client.get(f"/v1/events?after={page['last_position']}", headers=national)
    assert [e["position"] for e in (await resp.json())["events"]] == everything[4:]
    resp = await client.get("/v1/events?type=StatementRecorded", headers=national)
    assert [e["position"] for e in (await resp.json())["events"]] == everything[1::2]
    resp = await client.get("/v1/events?category=issue", headers=national)
    page = await resp.json()
    assert page == {"events": [], "last_position": 0}
    resp = await client.get("/v1/events?limit=0", headers=national)
    assert resp.status == 422


async def test_health_and_readiness(client: Any) -> None:
    """/healthz answers without a token; /readyz confirms database and migrations."""
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"


async def test_request_id_is_the_servers(client: Any, national: dict[str, str]) -> None:
    """The server's request id is in the response and the events; a client's is kept beside."""
    sid = f"hearing-{new_id()}"
    rid = uuid.uuid4().hex
    posted = await client.post(
        f"/v1/streams/{sid}/events",
        headers={**national, "X-Request-ID": rid},
        json=append(0, ("HearingScheduled", hearing_scheduled())),
    )
    server_id = posted.headers["X-Request-ID"]
    assert server_id != rid
    resp = await client.get(f"/v1/streams/{sid}", headers=national)
    meta = (await resp.json())["events"][0]["metadata"]
    assert meta["request_id"] == server_id
    assert meta["client_request_id"] == rid
