"""The live feed: the global log as Server-Sent Events, resumable by position.

Each event's SSE ``id:`` is its global position. Positions are dense and become visible
strictly in order (events/store/sequencer.py), so a client that reconnects with
``Last-Event-ID: N`` gets exactly the events after N: nothing missed, nothing twice.
A regional token sees its regions' events only. An idle feed sends a comment line
(``: heartbeat``) every ``heartbeat`` seconds so that proxies keep it open and clients
notice a dead connection.

Bounds (config ``sse_*``): a token has at most ``sse_connections_per_token`` feeds open
in one process (``429`` beyond); at most ``sse_buffer_bytes`` unsent bytes are held for
a client, and one that leaves them unread for ``sse_stall_timeout`` seconds is dropped.
A feed ends within a second of its token's revocation (the token cache closes it on the
``coord_tokens`` notification) and re-checks its token every ``_RECHECK`` seconds in
case a notification was lost. The heartbeat goes out after ``heartbeat`` seconds without
a message. Once the stream has started, nothing can change its
status: a client that went away or was dropped ends it quietly, as a ``200``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
import structlog
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from coord.apidoc import Body, documented
from coord.auth import TOKENS, Principal, principal_of
from coord.availability import unavailable_reason
from coord.http.params import MAX_QUERY_INT, int_param, list_param
from coord.http.streams import event_out
from coord.keys import CONFIG, PROJECTIONS, STORE
from coord.problems import Problem, invalid
from events.domain.regions import load_regions
from events.domain.types import EVENT_TYPES, STREAM_CATEGORIES
from events.store.records import RecordedEvent
from events.store.store import EventStore, ReadFilter

log = structlog.get_logger("coord.feed")

routes = web.RouteTableDef()

# Events read at once: all of a batch is held while a slow client catches up, and an
# event may be up to a request body (1 MiB), so keep it small.
_BATCH = 100
# Seconds between a feed's own checks that its token still stands (the notification is
# the fast path; this catches one lost while the listening connection was down).
_RECHECK = 10.0
# A slice of output written at once: small, so that the unsent bytes stay near the bound.
_SLICE = 16 * 1024
# Chunked transfer framing around a slice: hex length and two CRLFs.
_FRAMING = 16
_DIGITS = re.compile(r"[0-9]{1,19}")


_encoder = msgspec.json.Encoder()


def sse_message(event: RecordedEvent) -> bytes:
    """One SSE message: ``id:`` the position, ``event:`` its type, ``data:`` the event as
    one JSON line."""
    body = _encoder.encode(event_out(event))  # the same shape as GET /v1/events
    # JSON from msgspec (and jsonb's text) never contains a raw newline; type names are
    # registered identifiers (letters only).
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.position, event.type.encode(), body)


_After = Annotated[
    int,
    msgspec.Meta(ge=0, le=MAX_QUERY_INT, description="Send the events after this global position."),
]


class FeedQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/events/stream`; the `Last-Event-ID` header wins over `after`."""

    after: (
        _After
        | Annotated[Literal["head"], msgspec.Meta(description="Only events appended from now on.")]
    ) = 0
    type: (
        Annotated[list[str], msgspec.Meta(description="Event type names (repeat or commas).")]
        | None
    ) = None
    category: list[Literal["hearing", "issue", "recommendation", "access", "system"]] | None = None


_SSE = Annotated[
    str,
    msgspec.Meta(
        description=(
            "Server-Sent Events. Each message's `id:` is the event's global position and "
            "its `data:` one JSON line in the shape of a `GET /v1/events` event "
            "(id, stream_id, version, position, type, schema_version, data, metadata, "
            "recorded_at). Idle feeds send `: heartbeat` comments; the first message "
            "sets `retry: 2000`. At most `sse_connections_per_token` (default 8) feeds "
            "per token are open at once (`429` with `Retry-After` beyond). A client that "
            "leaves more than `sse_buffer_bytes` (default 256 KiB) unread for "
            "`sse_stall_timeout` seconds (default 15) is disconnected, and the feed ends "
            "within a second of its token's revocation; resume with `Last-Event-ID`."
        )
    ),
]


def _filter(request: web.Request, scope: list[str] | None) -> ReadFilter | None:
    """The caller's regions and the `type` / `category` it asked for (422 if unknown)."""
    types = list_param(request, "type")
    if types is not None and (bad := [t for t in types if t not in EVENT_TYPES]):
        raise invalid(f"unknown event type {bad[0]!r}", "query.type")
    categories = list_param(request, "category")
    if categories is not None and (bad := [c for c in categories if c not in _CATEGORIES]):
        raise invalid(
            f"category must be among {', '.join(sorted(_CATEGORIES))}, not {bad[0]!r}",
            "query.category",
        )
    if types is None and categories is None and scope is None:
        return None
    return ReadFilter(types=types, categories=categories, regions=scope)


_CATEGORIES = frozenset(STREAM_CATEGORIES.values())


def _start(request: web.Request) -> int | None:
    """The position to start after (None: the head), checked before the stream starts."""
    header = request.headers.get("Last-Event-ID", "").strip(" \t")
    if not header:
        if request.query.get("after") == "head":
            return None
        return int_param(request, "after", 0)
    if not _DIGITS.fullmatch(header) or int(header) > MAX_QUERY_INT:
        raise invalid(
            f"must be a position: a whole number from 0 to {MAX_QUERY_INT}",
            "header.Last-Event-ID",
        )
    return int(header)


class _Dropped(Exception):
    """The client left its bytes unread too long (or went away): the feed ends."""


class _Sender:
    """Writes a feed's bytes, holding at most `bound` unsent bytes for the client."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        writer: AbstractStreamWriter,
        *,
        bound: int,
        stall: float,
    ) -> None:
        self._response = response
        self._writer = writer
        self._stall = stall
        self._slice = min(_SLICE, bound // 4)
        self._bound = bound
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the client went away")
        self._transport = transport
        # Above this the transport pauses its protocol and `drain()` waits for the client,
        # so waiting for room below never spins.
        high = bound - self._slice - _FRAMING
        transport.set_write_buffer_limits(high=high, low=high // 2)

    async def send(self, data: bytes) -> None:
        """Write `data`; raise `_Dropped` if the client does not make room in time."""
        view = memoryview(data)
        for start in range(0, len(view), self._slice):
            piece = view[start : start + self._slice]
            try:
                async with asyncio.timeout(self._stall):
                    while self._unsent() + len(piece) + _FRAMING > self._bound:
                        await self._writer.drain()
                        if self._unsent() + len(piece) + _FRAMING > self._bound:
                            await asyncio.sleep(0.01)  # resumed but not below: rare
                    await self._response.write(piece)
            except TimeoutError:
                raise _Dropped("the client stopped reading") from None

    def gone(self) -> bool:
        """Has the connection closed (the client went away or was dropped)?"""
        return self._transport.is_closing()

    def _unsent(self) -> int:
        if self._transport.is_closing():
            raise ConnectionResetError("the client went away")
        return self._transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the connection and whatever it still holds for the client."""
        self._transport.abort()


@routes.get("/v1/events/stream")
@documented(
    query=FeedQuery,
    headers={"Last-Event-ID": _After},
    responses={200: Body(_SSE, "text/event-stream")},
    errors=(429,),
    tags=("streams",),
)
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of the global log after ``after`` (or ``Last-Event-ID``)."""
    return await serve_feed(request, sse_message)


async def serve_feed(
    request: web.Request, encode: Callable[[RecordedEvent], bytes]
) -> web.StreamResponse:
    """The feed of the request's principal, each event sent as `encode(event)`.

    Shared by `/v1/events/stream` and the console's session-authenticated notices
    (coord/console/live.py): one set of bounds (feeds per token, unsent bytes, stalls,
    revocation) for both.
    """
    principal = principal_of(request)
    start = _start(request)
    filters = _filter(request, principal.region_scope(load_regions()))
    after = start if start is not None else await request.app[STORE].head_position()
    config = request.app[CONFIG]
    tokens = request.app[TOKENS]
    feed = tokens.open_feed(principal.token_id, limit=config.sse_connections_per_token)
    if feed is None:
        raise Problem(
            429,
            "too-many-feeds",
            "Too many open feeds",
            f"this token already has {config.sse_connections_per_token} live feeds open; "
            "close one or retry later",
            headers={"Retry-After": "5"},
            limit=config.sse_connections_per_token,
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    sender: _Sender | None = None
    try:
        # Registered first, then checked: a revocation from here on reaches this feed.
        if not await tokens.is_active(principal.token_id):
            raise Problem(
                401,
                "unauthorized",
                "Unauthorized",
                "the token is unknown or revoked",
                headers={"WWW-Authenticate": 'Bearer realm="coord"'},
            )
        writer = await response.prepare(request)
        if writer is None:  # only for a response already finished
            raise ConnectionResetError("the stream could not start")
        sender = _Sender(
            request,
            response,
            writer,
            bound=max(config.sse_buffer_bytes, 4 * 1024),
            stall=config.sse_stall_timeout,
        )
        async with asyncio.timeout(None) as deadline:
            loop = asyncio.get_running_loop()
            # Revocation ends the feed wherever it waits: as a deadline that has passed.
            feed.on_revoked(lambda: deadline.reschedule(loop.time()))
            ended = await _pump(request, principal, after, sender, filters, encode)
    except Exception as e:
        if not response.prepared:
            raise  # nothing sent yet: the problems middleware answers
        ended = _ending(e, feed.revoked, sender is None or sender.gone())
        # The status line is out: all that is left is to end the stream and say why.
        if ended == "failed":
            log.exception("feed.failed", token_id=principal.token_id)
        elif ended == "database":
            log.warning("feed.database_unavailable", reason=unavailable_reason(e), error=str(e))
        if ended in ("failed", "database", "slow_client") and sender is not None:
            sender.abort()
    finally:
        tokens.close_feed(feed)
    log.info("feed.ended", token_id=principal.token_id, reason=ended)
    return response


def _ending(exc: Exception, revoked: bool, client_gone: bool) -> str:
    """Why a started feed ended, from the exception that ended it."""
    match exc:
        case TimeoutError() if revoked:
            return "revoked"
        case _Dropped():
            return "slow_client"
        case ConnectionError() if client_gone:
            return "client_gone"
    if unavailable_reason(exc) is not None:
        return "database"  # clients reconnect and resume once it serves again
    return "failed"


async def _pump(
    request: web.Request,
    principal: Principal,
    after: int,
    sender: _Sender,
    filters: ReadFilter | None,
    encode: Callable[[RecordedEvent], bytes],
) -> str:
    """Send the events after `after` the caller may see (and asked for), then follow the
    head until the client goes away; the reason it ended."""
    heartbeat = request.app[PROJECTIONS].settings.heartbeat
    store: EventStore = request.app[STORE]
    tokens = request.app[TOKENS]
    await sender.send(b"retry: 2000\n\n")
    scanned = after  # everything up to here was sent or filtered out
    head = await store.head_position()
    checked = quiet_since = time.monotonic()
    while not sender.gone():
        # Bounded by a known head: with a filter, fewer rows than a batch means the
        # whole window (scanned, up_to] was seen, matched or not.
        up_to = max(head, store.head.position)
        batch = await store.read_all(scanned, _BATCH, filters, up_to=up_to)
        if batch:
            await _send_events(sender, batch, encode)
            scanned = batch[-1].position
            quiet_since = time.monotonic()
        if len(batch) < _BATCH:
            scanned = max(scanned, up_to)
            now = time.monotonic()
            wait = min(quiet_since + heartbeat, checked + _RECHECK) - now
            if not await _wait_beyond(store, scanned, wait, sender):
                if time.monotonic() >= quiet_since + heartbeat:
                    await sender.send(b": heartbeat\n\n")
                    quiet_since = time.monotonic()
            head = store.head.position
        if time.monotonic() >= checked + _RECHECK:
            checked = time.monotonic()
            await tokens.check_feeds(principal.token_id)
    return "client_gone"


async def _send_events(
    sender: _Sender, batch: list[RecordedEvent], encode: Callable[[RecordedEvent], bytes]
) -> None:
    """Encode and send a batch a few messages at a time (not all of it as one copy)."""
    pending: list[bytes] = []
    size = 0
    for event in batch:
        message = encode(event)
        pending.append(message)
        size += len(message)
        if size >= _SLICE:
            await sender.send(b"".join(pending))
            pending, size = [], 0
    if pending:
        await sender.send(b"".join(pending))


async def _wait_beyond(store: EventStore, position: int, timeout: float, sender: _Sender) -> bool:
    """Wait for the head to pass `position` (True) or `timeout` (False), in short slices:
    a client that left is noticed within a second, not at the next heartbeat."""
    until = time.monotonic() + timeout
    while (left := until - time.monotonic()) > 0 and not sender.gone():
        if await store.head.wait_beyond(position, min(left, 1.0)):
            return True
    return False
