"""Live refresh: `/langsung`, the feed of the signed-in session as small notices.

A browser's EventSource cannot send a bearer header, so the console's pages listen here
with their session cookie. It is the API's feed (coord/http/feed.py: the same region
scope, feeds-per-token bound, unsent-bytes bound, stall and revocation handling), but
each message carries only what a page needs to decide whether to refresh, never an
event's data: ``id: <position>`` and ``data: {"stream_id": ..., "type": ...}``. The page
then fetches itself again (konsol.js) at that position and keeps the answer only if it
is not older than what it shows.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from coord.console.frame import page
from coord.http.feed import serve_feed
from events.store.records import RecordedEvent

routes = web.RouteTableDef()


class Notice(msgspec.Struct, frozen=True):
    """What a page learns of a new event: where it was written and what it is."""

    stream_id: str
    type: str


_encoder = msgspec.json.Encoder()


def notice_message(event: RecordedEvent) -> bytes:
    """One SSE message: the event's position as `id:`, its stream and type as data."""
    body = _encoder.encode(Notice(stream_id=event.stream_id, type=event.type))
    return b"id: %d\ndata: %s\n\n" % (event.position, body)


@routes.get("/langsung")
@page()
async def live_notices(request: web.Request) -> web.StreamResponse:
    """Notices of the events after `after` (or `Last-Event-ID`) the session may see."""
    return await serve_feed(request, notice_message)
