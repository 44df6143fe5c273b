"""Streams and the global log over HTTP: append, read a stream, read the log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from coord.apidoc import StreamPath, documented
from coord.auth import forbidden, principal_of
from coord.http.params import MAX_QUERY_INT, int_param, list_param
from coord.keys import STORE, WRITES
from coord.middlewares import CLIENT_REQUEST_ID, REQUEST_ID
from coord.problems import Problem, not_found
from coord.writes import Origin, Proposed
from events.domain.ids import CanonicalUUID
from events.domain.streams import validate_stream_id
from events.domain.types import ACCESS_STREAM
from events.store.records import AppendResult, RecordedEvent
from events.store.store import EventStore, ReadFilter

routes = web.RouteTableDef()

EventType = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")]


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One event in an append request."""

    type: EventType
    data: dict[str, Any]
    # One spelling per id: an upper-case or dash-less twin would be another event.
    id: CanonicalUUID | None = None
    metadata: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="The client's own metadata, stored as `metadata.client` "
            "(at most 16 KiB encoded)."
        ),
    ] = msgspec.field(default_factory=dict)


class AppendRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/streams/{stream_id}/events` body."""

    expected_version: (
        Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)] | Literal["any", "exists"]
    )
    events: Annotated[list[EventIn], msgspec.Meta(min_length=1, max_length=1000)]


class AppendResponse(msgspec.Struct, kw_only=True):
    """Where the appended events landed."""

    stream_id: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int


class EventOut(msgspec.Struct, kw_only=True):
    """An event on the wire."""

    id: uuid.UUID
    stream_id: str
    version: int
    position: int
    type: str
    schema_version: int
    data: msgspec.Raw
    metadata: msgspec.Raw
    recorded_at: datetime


class StreamPage(msgspec.Struct, kw_only=True):
    """`GET /v1/streams/{stream_id}`."""

    stream_id: str
    version: int
    events: list[EventOut]
    next_from_version: int | None


class LogPage(msgspec.Struct, kw_only=True):
    """`GET /v1/events`."""

    events: list[EventOut]
    last_position: int


_append_decoder = msgspec.json.Decoder(AppendRequest)
_encoder = msgspec.json.Encoder()


def event_out(e: RecordedEvent) -> EventOut:
    """The wire form of a stored event."""
    return EventOut(
        id=e.id,
        stream_id=e.stream_id,
        version=e.version,
        position=e.position,
        type=e.type,
        schema_version=e.schema_version,
        data=e.data,
        metadata=e.metadata,
        recorded_at=e.recorded_at,
    )


def json_response(body: msgspec.Struct | dict[str, Any], status: int = 200) -> web.Response:
    """A JSON response encoded by msgspec."""
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json")


def require_json(request: web.Request) -> None:
    """415 unless the body is declared as JSON."""
    if request.content_type not in ("application/json",):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send the body as application/json, not {request.content_type or 'nothing'}",
        )


def origin_of(request: web.Request) -> Origin:
    """The request ids the write path stamps into metadata (the server's, the client's)."""
    return Origin(request_id=request[REQUEST_ID], client_request_id=request.get(CLIENT_REQUEST_ID))


def append_response(result: AppendResult) -> web.Response:
    """201 for a new append, 200 for an idempotent retry."""
    body = AppendResponse(
        stream_id=result.stream_id,
        first_version=result.first_version,
        last_version=result.last_version,
        first_position=result.first_position,
        last_position=result.last_position,
    )
    return json_response(body, status=201 if result.created else 200)


@routes.post("/v1/streams/{stream_id:[^/]+}/events")
@documented(
    body=AppendRequest,
    path=StreamPath,
    responses={201: AppendResponse, 200: AppendResponse},
    errors=(409, 421, 503),
    roles=("regional", "national"),
    tags=("streams",),
)
async def append_events(request: web.Request) -> web.Response:
    """Append events to a stream: typed, authorised, rule-checked, atomic, idempotent by id."""
    principal = principal_of(request)
    stream_id = validate_stream_id(request.match_info["stream_id"])
    if stream_id == ACCESS_STREAM:
        raise forbidden("tokens are managed through /v1/tokens or `coord token`")
    require_json(request)
    body = _append_decoder.decode(await request.read())
    proposed = [
        Proposed(
            type=e.type,
            data=msgspec.json.encode(e.data),
            id=None if e.id is None else uuid.UUID(e.id),
            metadata=e.metadata,
        )
        for e in body.events
    ]
    result = await request.app[WRITES].write(
        principal, stream_id, proposed, body.expected_version, origin_of(request)
    )
    return append_response(result)


async def stream_region(store: EventStore, stream_id: str) -> str | None:
    """The region of a stream (fixed by its first event); None for national streams."""
    first = await store.read_stream(stream_id, 1, 1, include_unsequenced=True)
    return first[0].region_code if first else None


async def authorize_stream_read(request: web.Request, stream_id: str) -> None:
    """404 unless the caller may read this stream (regional: only its regions' streams).

    Another region's stream is answered exactly as one that does not exist.
    """
    principal = principal_of(request)
    if principal.role != "regional":
        return
    region = await stream_region(request.app[STORE], stream_id)
    if not principal.covers(region):
        raise not_found(f"stream {stream_id!r} does not exist")


class StreamQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/streams/{stream_id}`."""

    from_version: Annotated[int, msgspec.Meta(ge=1)] = 1
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


@routes.get("/v1/streams/{stream_id:[^/]+}")
@documented(
    path=StreamPath,
    query=StreamQuery,
    responses={200: StreamPage},
    errors=(404,),
    tags=("streams",),
)
async def read_stream(request: web.Request) -> web.Response:
    """One stream's events in version order."""
    stream_id = validate_stream_id(request.match_info["stream_id"])
    from_version = int_param(request, "from_version", 1, minimum=1)
    limit = int_param(request, "limit", 100, minimum=1, maximum=1000)
    await authorize_stream_read(request, stream_id)
    store = request.app[STORE]
    events = await store.read_stream(stream_id, from_version, limit + 1)
    version = await store.stream_version(stream_id)
    if version == 0:
        raise not_found(f"stream {stream_id!r} does not exist")
    more = len(events) > limit
    events = events[:limit]
    return json_response(
        StreamPage(
            stream_id=stream_id,
            version=version,
            events=[event_out(e) for e in events],
            next_from_version=events[-1].version + 1 if more else None,
        )
    )


class LogQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/events`; `type` and `category` take comma-separated lists."""

    after: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 1000
    type: str | None = None
    category: str | None = None


@routes.get("/v1/events")
@documented(query=LogQuery, responses={200: LogPage}, tags=("streams",))
async def read_log(request: web.Request) -> web.Response:
    """The global log in order after `after`, filtered by type, category and caller's regions."""
    principal = principal_of(request)
    after = int_param(request, "after", 0, minimum=0)
    limit = int_param(request, "limit", 1000, minimum=1, maximum=10000)
    filters = ReadFilter(
        types=list_param(request, "type"),
        categories=list_param(request, "category"),
        regions=principal.region_scope(),
    )
    events = await request.app[STORE].read_all(after, limit, filters)
    return json_response(
        LogPage(
            events=[event_out(e) for e in events],
            last_position=events[-1].position if events else after,
        )
    )
