"""The console's one door to the write path: every form's events go through `submit`.

The console adds no second way to change state: it hands proposed events to the same
`WritePath.write` as `POST /v1/streams/{id}/events` (decode, rules, roles, regions,
server metadata). Kept to one function so a change of the write path's signature is a
one-place fix here.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from coord.auth import principal_of
from coord.http.streams import origin_of
from coord.keys import WRITES
from coord.writes import Proposed
from events.store.records import AppendResult, ExpectedVersion


async def submit(
    request: web.Request,
    stream_id: str,
    events: list[tuple[str, uuid.UUID, dict[str, Any]]],
    expected: ExpectedVersion,
) -> AppendResult:
    """Append `(type, event id, data)` events to `stream_id` as the signed-in caller.

    The event ids come from the form (generated when the page was rendered), so a double
    click or a retried post is recognised by the store and recorded once.
    """
    proposed = [
        Proposed(type=type_, data=msgspec.json.encode(data), id=event_id)
        for type_, event_id, data in events
    ]
    return await request.app[WRITES].write(
        principal_of(request), stream_id, proposed, expected, origin_of(request)
    )
