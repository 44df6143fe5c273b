"""Issue 12 item 6: hostile values a client controls are a 4xx naming the field, never a 500,
and nothing is written."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from tests.api.payloads import append, hearing_scheduled
from tests.conftest import bearer

PROBLEM = "application/problem+json"
HUGE = str(10**20)


@pytest.fixture
async def office(client: Any, token_for: Any) -> dict[str, str]:
    """A regional token of Kota Kediri."""
    return bearer(await token_for(client, "regional", ["35.71"], name="KPU Kota Kediri"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> dict[str, str]:
    """A national token (reads every view)."""
    return bearer(await token_for(client, "national"))


@pytest.fixture
async def admin(client: Any, token_for: Any) -> dict[str, str]:
    """An admin token."""
    return bearer(await token_for(client, "admin"))


@pytest.fixture
async def auditor(client: Any, token_for: Any) -> dict[str, str]:
    """An auditor token."""
    return bearer(await token_for(client, "auditor"))


async def _refused(resp: Any, statuses: tuple[int, ...] = (422,)) -> dict[str, Any]:
    body = await resp.text()
    assert resp.status in statuses, body
    assert resp.content_type == PROBLEM
    return dict(json.loads(body))


async def _log_length(client: Any, headers: dict[str, str]) -> int:
    resp = await client.get("/v1/events?limit=10000", headers=headers)
    return len((await resp.json())["events"])


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("data_over", "metadata", "field_part"),
    [
        ({"title": "Rapat\u0000koordinasi"}, {}, "data.title"),
        ({}, {"note": "a\u0000b"}, "metadata.note"),
        ({}, {"k\u0000ey": "v"}, "metadata"),
        ({"venue": _nested(40)}, {}, "data.venue"),
        ({"severity": 2**63}, {}, "data"),
        ({"extra": -(2**70)}, {}, "data"),
    ],
)
async def test_unstorable_values_in_an_append_are_422_with_field(
    client: Any,
    office: dict[str, str],
    data_over: dict[str, Any],
    metadata: dict[str, Any],
    field_part: str,
) -> None:
    """U+0000, integers beyond int64 and nesting past 32 levels: 422 at their path."""
    before = await _log_length(client, office)
    body = append(0, ("HearingScheduled", hearing_scheduled(**data_over)))
    body["events"][0]["metadata"] = metadata
    resp = await client.post(
        f"/v1/streams/hearing-{uuid.uuid4()}/events", json=body, headers=office
    )
    problem = await _refused(resp)
    assert field_part in problem["field"], problem
    assert await _log_length(client, office) == before


async def test_json_nested_a_thousand_levels_is_refused(
    client: Any, office: dict[str, str]
) -> None:
    """Depth >= 1000 (a RecursionError in the decoder before) is a 4xx, not a 500."""
    for depth in (1000, 5000, 100_000):
        raw = b'{"expected_version": 0, "events": [{"type": "HearingScheduled", "data": '
        raw += b'{"a":' * depth + b"1" + b"}" * depth + b"}]}"
        resp = await client.post(
            f"/v1/streams/hearing-{uuid.uuid4()}/events",
            data=raw,
            headers={**office, "Content-Type": "application/json"},
        )
        await _refused(resp, (400, 413, 422))


@pytest.mark.parametrize("value", [2**62 + 1, 2**63, 10**30, -(2**63) - 1])
async def test_expected_version_beyond_int64_is_422(
    client: Any, office: dict[str, str], value: int
) -> None:
    """`expected_version` past int64: 422 on it."""
    body = append(value, ("HearingScheduled", hearing_scheduled()))
    resp = await client.post(
        f"/v1/streams/hearing-{uuid.uuid4()}/events", json=body, headers=office
    )
    problem = await _refused(resp)
    assert problem["field"] == "$.expected_version"


async def test_cloudevents_expectedversion_beyond_int64_is_422(client: Any, token_for: Any) -> None:
    """Structured and batch CloudEvents with a huge `expectedversion`: 422 on it."""
    national = bearer(await token_for(client, "national"))
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/test",
        "type": "HearingScheduled",
        "subject": f"hearing-{uuid.uuid4()}",
        "data": hearing_scheduled(),
        "expectedversion": 10**20,
    }
    resp = await client.post(
        "/v1/cloudevents",
        data=json.dumps(event),
        headers={**national, "Content-Type": "application/cloudevents+json"},
    )
    assert (await _refused(resp))["field"] == "$.expectedversion"
    resp = await client.post(
        "/v1/cloudevents",
        data=json.dumps([event]),
        headers={**national, "Content-Type": "application/cloudevents-batch+json"},
    )
    assert (await _refused(resp))["field"] == "$[0].expectedversion"


async def test_nul_in_a_token_name_is_422(client: Any, admin: dict[str, str]) -> None:
    """A token name with U+0000: 422 on `$.name`, no token issued."""
    resp = await client.post(
        "/v1/tokens", json={"name": "a\u0000b", "role": "national"}, headers=admin
    )
    assert (await _refused(resp))["field"] == "$.name"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/search?q=a%00b", "query.q"),
        ("/v1/views/issues?category=a%00b", "query.category"),
        (f"/v1/events?after={HUGE}", "query.after"),
        (f"/v1/events?after={2**63 - 1}", "query.after"),
        ("/v1/events?after=%EF%BC%91", "query.after"),  # a full-width digit
        (f"/v1/streams/hearing-{uuid.uuid4()}?from_version={HUGE}", "query.from_version"),
        (f"/v1/streams/hearing-{uuid.uuid4()}?from_version={2**63 - 1}", "query.from_version"),
        (f"/v1/views/issues/recurring?min_regions={HUGE}", "query.min_regions"),
        (f"/v1/hearings/{uuid.uuid4()}?as_of_version={HUGE}", "query.as_of_version"),
    ],
)
async def test_query_values_out_of_range_are_422(
    client: Any, office: dict[str, str], path: str, field: str
) -> None:
    """Unbounded integers and U+0000 in query strings: 422 naming the parameter."""
    problem = await _refused(await client.get(path, headers=office))
    assert problem["field"] == field


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/audit/proof/consistency?first=1&second={HUGE}",
        f"/v1/audit/proof/consistency?first=0&second={2**63 - 1}",
        f"/v1/audit/checkpoint?size={HUGE}",
        f"/v1/audit/checkpoint?size={2**63 - 1}",
        f"/v1/audit/proof/inclusion?event_id={uuid.uuid4()}&tree_size={HUGE}",
        f"/v1/audit/streams/hearing-{uuid.uuid4()}?from_version={HUGE}",
        f"/v1/audit/export?from=1&to={HUGE}",
    ],
)
async def test_audit_parameters_out_of_range_are_4xx(
    client: Any, auditor: dict[str, str], path: str
) -> None:
    """Audit endpoints with sizes beyond int64 (or the tree): a 4xx, never a 500."""
    await _refused(await client.get(path, headers=auditor), (404, 409, 422))


async def test_audit_trail_of_the_access_stream_is_not_a_500(
    client: Any, auditor: dict[str, str]
) -> None:
    """`GET /v1/audit/streams/access-tokens` answered 500; now a trail or a 4xx."""
    resp = await client.get("/v1/audit/streams/access-tokens", headers=auditor)
    assert resp.status < 500, await resp.text()


def _cursor(values: Any) -> str:
    raw = values if isinstance(values, bytes) else json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("view", "values"),
    [
        ("/v1/views/issues", ["recent", 10**30, str(uuid.uuid4())]),
        ("/v1/views/issues", ["recent", "2021-01-01", "not-a-uuid"]),
        ("/v1/views/issues", ["severity", 1e308, "x", "y"]),
        ("/v1/views/issues", b"[" * 1500 + b"]" * 1500),
        ("/v1/views/issues/uncovered", ["uncovered", 10**30]),
        ("/v1/views/recommendations", ["x", 10**30, {"a": 1}]),
        ("/v1/views/hearings", [10**30, "x"]),
        ("/v1/views/activity", [10**30]),
    ],
)
async def test_crafted_cursors_are_422(
    client: Any, national: dict[str, str], view: str, values: Any
) -> None:
    """A cursor that decodes but does not fit the query: 422 on `query.cursor`."""
    resp = await client.get(f"{view}?cursor={_cursor(values)}", headers=national)
    problem = await _refused(resp)
    assert problem["field"] == "query.cursor"


@pytest.mark.parametrize(
    "query",
    ["to=9999-12-31", "from=9999-12-31", "from=0001-01-01", "to=9999-12-31T23:59:59-12:00"],
)
@pytest.mark.parametrize("view", ["/v1/views/issues", "/v1/views/hearings", "/v1/views/activity"])
async def test_extreme_dates_are_not_a_500(
    client: Any, national: dict[str, str], view: str, query: str
) -> None:
    """Date filters at the ends of the calendar: an answer or a 422, never a 500."""
    resp = await client.get(f"{view}?{query}", headers=national)
    assert resp.status in (200, 422), await resp.text()
