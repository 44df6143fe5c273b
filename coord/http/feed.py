"""The live feed: the global log as Server-Sent Events, resumable by position.

Each event's SSE ``id:`` is its global position. Positions are dense and become visible
strictly in order (events/sequencer.py), so a client that reconnects with
``Last-Event-ID: N`` gets exactly the events after N: nothing missed, nothing twice.
A regional token sees its regions' events only. An idle feed sends a comment line
(``: heartbeat``) every ``heartbeat`` seconds so that proxies keep it open and clients
notice a dead connection.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from coord.apidoc import Body, documented
from coord.auth import principal_of
from coord.http.streams import event_out
from coord.keys import PROJECTIONS, STORE
from coord.problems import invalid
from events.records import RecordedEvent
from events.regions import load_regions
from events.store import ReadFilter

routes = web.RouteTableDef()

_BATCH = 500


_encoder = msgspec.json.Encoder()


def sse_message(event: RecordedEvent) -> bytes:
    """One SSE message: ``id:`` the position, ``data:`` the event as one JSON line."""
    body = _encoder.encode(event_out(event))  # the same shape as GET /v1/events
    # JSON from msgspec (and jsonb's text) never contains a raw newline.
    return b"id: %d\ndata: %s\n\n" % (event.position, body)


_After = Annotated[
    int, msgspec.Meta(ge=0, description="Send the events after this global position.")
]


class FeedQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/events/stream`; the `Last-Event-ID` header wins over `after`."""

    after: _After = 0


_SSE = Annotated[
    str,
    msgspec.Meta(
        description=(
            "Server-Sent Events. Each message's `id:` is the event's global position and "
            "its `data:` one JSON line in the shape of a `GET /v1/events` event "
            "(id, stream_id, version, position, type, schema_version, data, metadata, "
            "recorded_at). Idle feeds send `: heartbeat` comments; the first message "
            "sets `retry: 2000`."
        )
    ),
]


def _start(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    try:
        after = int(raw)
    except ValueError:
        raise invalid("after (or Last-Event-ID) must be a position", "query.after") from None
    if after < 0:
        raise invalid("after must be >= 0", "query.after")
    return after


@routes.get("/v1/events/stream")
@documented(
    query=FeedQuery,
    headers={"Last-Event-ID": _After},
    responses={200: Body(_SSE, "text/event-stream")},
    tags=("streams",),
)
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of the global log after ``after`` (or ``Last-Event-ID``)."""
    principal = principal_of(request)
    after = _start(request)
    scope = principal.region_scope(load_regions())
    filters = ReadFilter(regions=scope) if scope is not None else None
    heartbeat = request.app[PROJECTIONS].settings.heartbeat
    store = request.app[STORE]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    scanned = after  # everything up to here was sent or filtered out
    head = await store.head_position()
    while True:
        # Bounded by a known head: with a filter, fewer rows than a batch means the
        # whole window (scanned, up_to] was seen, matched or not.
        up_to = max(head, store.head.position)
        batch = await store.read_all(scanned, _BATCH, filters, up_to=up_to)
        if batch:
            await response.write(b"".join(sse_message(e) for e in batch))
            scanned = batch[-1].position
        if len(batch) < _BATCH:
            scanned = max(scanned, up_to)
            if not await store.head.wait_beyond(scanned, heartbeat):
                await response.write(b": heartbeat\n\n")
            head = store.head.position
