"""CloudEvents 1.0 intake: structured, binary and batch mode, posted with the official SDK."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, to_binary_event, to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import conversion as v1_conversion
from cloudevents.v1.http import CloudEvent as V1CloudEvent

from coord.http.cloudevents import CE_BATCH, CE_NAMESPACE
from tests.api.payloads import hearing_scheduled, issue_raised, new_id, statement
from tests.conftest import bearer

PROBLEM = "application/problem+json"
SOURCE = "/kpu/35.71/sipol"


@pytest.fixture
async def national(client: Any, token_for: Any) -> dict[str, str]:
    """Headers of a national token."""
    return bearer(await token_for(client, "national"))


@pytest.fixture
async def office(client: Any, token_for: Any) -> dict[str, str]:
    """Headers of a regional token for the province of East Java (35): hearings and issues."""
    return bearer(await token_for(client, "regional", ["35"]))


def event(type_: str, subject: str, data: dict[str, Any], **attrs: Any) -> CloudEvent:
    """A CloudEvent built with the SDK (it fills in id, specversion and time)."""
    return CloudEvent(
        attributes={"type": type_, "source": SOURCE, "subject": subject, **attrs}, data=data
    )


def batch(*events: CloudEvent) -> HTTPMessage:
    """A batch-mode message: SDK 2.x has no batch helper, so join its JSON format of each event."""
    fmt = JSONFormat()
    body = b"[" + b",".join(fmt.write(e) for e in events) + b"]"
    return HTTPMessage(headers={"content-type": CE_BATCH}, body=body)


async def post(
    client: Any, message: HTTPMessage | tuple[dict[str, str], bytes], headers: dict[str, str]
) -> Any:
    """POST an SDK message to the intake."""
    if isinstance(message, tuple):
        msg_headers, body = message
    else:
        msg_headers, body = message.headers, message.body
    return await client.post("/v1/cloudevents", data=body, headers={**headers, **msg_headers})


async def read(client: Any, stream_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """A stream's events ([] if it does not exist)."""
    resp = await client.get(f"/v1/streams/{stream_id}", headers=headers)
    if resp.status == 404:
        return []
    assert resp.status == 200, await resp.text()
    events: list[dict[str, Any]] = (await resp.json())["events"]
    return events


async def test_structured_mode_appends_with_ce_metadata(
    client: Any, national: dict[str, str]
) -> None:
    """An SDK structured-mode event is appended with its id and data; source, time in metadata."""
    sid = f"hearing-{new_id()}"
    ce = event("HearingScheduled", sid, hearing_scheduled(), expectedversion=0)
    resp = await post(client, to_structured_event(ce), national)
    assert resp.status == 201, await resp.text()
    result = await resp.json()
    assert result["stream_id"] == sid and (result["first_version"], result["last_version"]) == (
        1,
        1,
    )
    [stored] = await read(client, sid, national)
    assert stored["id"] == ce.get_id()
    assert stored["type"] == "HearingScheduled"
    assert stored["data"] == hearing_scheduled()
    meta = stored["metadata"]
    assert meta["ce_source"] == SOURCE and meta["ce_id"] == ce.get_id()
    assert meta["ce_time"].startswith(ce.get_time().isoformat()[:19])
    assert meta["role"] == "national" and meta["actor"]["name"] == "test national"


async def test_binary_mode_appends(client: Any, national: dict[str, str]) -> None:
    """A binary-mode event (ce-* headers, body = data) is appended; expectedversion is honoured."""
    sid = f"hearing-{new_id()}"
    first = to_binary_event(event("HearingScheduled", sid, hearing_scheduled()))
    resp = await post(client, first, national)
    assert resp.status == 201, await resp.text()
    second = to_binary_event(event("StatementRecorded", sid, statement(), expectedversion=1))
    assert second.headers["ce-expectedversion"] == "1"
    resp = await post(client, second, {**national, "Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["last_version"] == 2
    assert [e["type"] for e in await read(client, sid, national)] == [
        "HearingScheduled",
        "StatementRecorded",
    ]


async def test_v1_sdk_conversion_api(client: Any, national: dict[str, str]) -> None:
    """The SDK's v1 API (`cloudevents.v1.conversion.to_structured/to_binary`) posts too."""
    sid = f"hearing-{new_id()}"
    ce = V1CloudEvent(
        {"type": "HearingScheduled", "source": SOURCE, "subject": sid}, hearing_scheduled()
    )
    assert (await post(client, v1_conversion.to_structured(ce), national)).status == 201
    ce2 = V1CloudEvent(
        {
            "type": "StatementRecorded",
            "source": SOURCE,
            "subject": sid,
            "expectedversion": "exists",
        },
        statement(),
    )
    resp = await post(client, v1_conversion.to_binary(ce2), national)
    assert resp.status == 201, await resp.text()
    assert len(await read(client, sid, national)) == 2


async def test_retry_is_idempotent_and_non_uuid_ids_are_derived(
    client: Any, national: dict[str, str]
) -> None:
    """A non-UUID id becomes uuid5(caller's namespace, source + "\\n" + id); a retry is 200."""
    sid = f"hearing-{new_id()}"
    ce = event("HearingScheduled", sid, hearing_scheduled(), id="kpu-kediri-0001")
    message = to_structured_event(ce)
    first = await post(client, message, national)
    again = await post(client, message, national)
    assert (first.status, again.status) == (201, 200)
    assert await first.json() == await again.json()
    [stored] = await read(client, sid, national)
    namespace = uuid.uuid5(CE_NAMESPACE, "local\nnational")  # node id, role, no regions
    assert stored["id"] == str(uuid.uuid5(namespace, f"{SOURCE}\nkpu-kediri-0001"))
    assert stored["metadata"]["ce_id"] == "kpu-kediri-0001"


async def test_version_conflict_is_409(client: Any, national: dict[str, str]) -> None:
    """A stale expectedversion is the streams API's 409 problem, and nothing is written."""
    sid = f"hearing-{new_id()}"
    await post(
        client, to_structured_event(event("HearingScheduled", sid, hearing_scheduled())), national
    )
    resp = await post(
        client,
        to_binary_event(event("StatementRecorded", sid, statement(), expectedversion=0)),
        national,
    )
    assert resp.status == 409
    problem = await resp.json()
    assert (problem["expected_version"], problem["actual_version"]) == (0, 1)
    assert len(await read(client, sid, national)) == 1


async def test_batch_spans_streams_and_retries(
    client: Any, office: dict[str, str], national: dict[str, str]
) -> None:
    """A batch may create a hearing and an issue citing it: 201 per stream; a retry is 200."""
    hearing = new_id()
    h_sid, i_sid = f"hearing-{hearing}", f"issue-{new_id()}"
    message = batch(
        event("HearingScheduled", h_sid, hearing_scheduled(), expectedversion=0),
        event("IssueRaised", i_sid, issue_raised(hearing), expectedversion=0),
        event("StatementRecorded", h_sid, statement(), expectedversion=1),
    )
    resp = await post(client, message, office)
    assert resp.status == 201, await resp.text()
    results = await resp.json()
    assert [(r["stream_id"], r["first_version"], r["last_version"]) for r in results] == [
        (h_sid, 1, 2),
        (i_sid, 1, 1),
    ]
    again = await post(client, message, office)
    assert again.status == 200
    assert await again.json() == results
    assert len(await read(client, h_sid, national)) == 2
    assert len(await read(client, i_sid, national)) == 1


@pytest.mark.parametrize(
    ("second", "status", "field"),
    [
        # bad data in the second stream's event
        (lambda h: ("IssueRaised", issue_raised(h, severity=9)), 422, "$[1].data.severity"),
        # a domain rule: the cited hearing is in another region
        (lambda h: ("IssueRaised", issue_raised(h, region="35.78")), 422, "$[1].data.hearing_id"),
        # wrong stream category for the type
        (lambda h: ("HearingScheduled", hearing_scheduled()), 422, "$[1].type"),
    ],
)
async def test_batch_is_all_or_nothing(
    client: Any,
    office: dict[str, str],
    national: dict[str, str],
    second: Any,
    status: int,
    field: str,
) -> None:
    """One refused event refuses the whole batch, naming its index; no stream is written."""
    hearing = new_id()
    h_sid, i_sid = f"hearing-{hearing}", f"issue-{new_id()}"
    type_, data = second(hearing)
    resp = await post(
        client,
        batch(event("HearingScheduled", h_sid, hearing_scheduled()), event(type_, i_sid, data)),
        office,
    )
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    assert (await resp.json())["field"].startswith(field)
    assert await read(client, h_sid, national) == []
    assert await read(client, i_sid, national) == []


async def test_batch_outside_region_is_403_and_writes_nothing(
    client: Any, token_for: Any, national: dict[str, str]
) -> None:
    """A regional token's batch touching another region is refused whole (403)."""
    regional = bearer(await token_for(client, "regional", ["35.71"]))
    mine, theirs = f"hearing-{new_id()}", f"hearing-{new_id()}"
    resp = await post(
        client,
        batch(
            event("HearingScheduled", mine, hearing_scheduled()),
            event("HearingScheduled", theirs, hearing_scheduled(region="31.71")),
        ),
        regional,
    )
    assert resp.status == 403
    assert await read(client, mine, national) == []


async def test_racing_batches_one_wins_whole(client: Any, national: dict[str, str]) -> None:
    """Two batches race for one new stream: one is stored whole, the other is 409, stores none."""
    shared = f"hearing-{new_id()}"
    own = [f"hearing-{new_id()}", f"hearing-{new_id()}"]
    messages = [
        batch(
            event("HearingScheduled", own[k], hearing_scheduled()),
            event("HearingScheduled", shared, hearing_scheduled(), expectedversion=0),
        )
        for k in range(2)
    ]
    responses = await asyncio.gather(*(post(client, m, national) for m in messages))
    assert sorted(r.status for r in responses) == [201, 409]
    winner = 0 if responses[0].status == 201 else 1
    assert len(await read(client, own[winner], national)) == 1
    assert await read(client, own[1 - winner], national) == []
    assert len(await read(client, shared, national)) == 1


async def test_batch_expectedversion_must_be_consistent(
    client: Any, national: dict[str, str]
) -> None:
    """Within one stream's run, a later event's expectedversion must follow the earlier one's."""
    sid = f"hearing-{new_id()}"
    resp = await post(
        client,
        batch(
            event("HearingScheduled", sid, hearing_scheduled(), expectedversion=0),
            event("StatementRecorded", sid, statement(), expectedversion=0),
        ),
        national,
    )
    assert resp.status == 422
    assert (await resp.json())["field"] == "$[1].expectedversion"


async def test_batch_with_one_event_twice_is_422(client: Any, national: dict[str, str]) -> None:
    """Two events of a batch with the same source and id are refused, naming the second."""
    sid = f"hearing-{new_id()}"
    ce = event("HearingScheduled", sid, hearing_scheduled(), id="dup")
    again = event("StatementRecorded", sid, statement(), id="dup")
    resp = await post(client, batch(ce, again), national)
    assert resp.status == 422
    assert (await resp.json())["field"] == "$[1].id"
    assert await read(client, sid, national) == []


async def test_empty_batch_writes_nothing(client: Any, national: dict[str, str]) -> None:
    """An empty batch (allowed by the spec) is 200 with an empty list."""
    resp = await post(client, ({"content-type": CE_BATCH}, b"[]"), national)
    assert (resp.status, await resp.json()) == (200, [])


def structured(**over: Any) -> tuple[dict[str, str], bytes]:
    """A hand-made structured-mode message (for shapes the SDK will not produce)."""
    import json

    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": new_id(),
        "source": SOURCE,
        "type": "HearingScheduled",
        "subject": f"hearing-{new_id()}",
        "data": hearing_scheduled(),
    }
    body.update(over)
    body = {k: v for k, v in body.items() if v is not None}
    return {"content-type": "application/cloudevents+json"}, json.dumps(body).encode()


@pytest.mark.parametrize(
    ("message", "status", "field"),
    [
        (structured(specversion="0.3"), 422, "$.specversion"),
        (structured(source=None), 422, "$"),
        (structured(subject="no dash"), 422, "$.subject"),
        (structured(expectedversion="sometimes"), 422, "$.expectedversion"),
        (structured(data=None, data_base64="e30="), 422, "$.data_base64"),
        (structured(data=None), 422, "$.data"),
        (structured(datacontenttype="text/plain"), 422, "$.datacontenttype"),
        (structured(data={"region_code": "35.71"}), 422, "$.data"),
        (structured(type="Nope"), 422, "$.type"),
        (({"content-type": "application/cloudevents+json"}, b"{"), 400, None),
        (({"content-type": "text/plain"}, b"{}"), 415, None),
        (({"ce-specversion": "1.0", "content-type": "text/plain"}, b"{}"), 415, None),
    ],
)
async def test_bad_messages(
    client: Any, national: dict[str, str], message: Any, status: int, field: str | None
) -> None:
    """Bad envelopes and data are the streams API's 400/415/422 problems, naming the field."""
    resp = await post(client, message, national)
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    if field is not None:
        assert (await resp.json())["field"].startswith(field)


async def test_binary_bad_header_names_attribute(client: Any, national: dict[str, str]) -> None:
    """In binary mode a bad attribute is a 422 naming it."""
    message = to_binary_event(event("HearingScheduled", f"hearing-{new_id()}", hearing_scheduled()))
    headers = {**message.headers, "ce-specversion": "0.3"}
    resp = await post(client, (headers, message.body), national)
    assert resp.status == 422
    assert (await resp.json())["field"] == "$.specversion"


async def test_token_required(client: Any) -> None:
    """Without a token the intake is 401."""
    message = to_structured_event(
        event("HearingScheduled", f"hearing-{new_id()}", hearing_scheduled())
    )
    resp = await post(client, message, {})
    assert resp.status == 401
