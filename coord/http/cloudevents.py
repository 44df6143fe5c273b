"""CloudEvents 1.0 intake over HTTP: `POST /v1/cloudevents`, structured, batch and binary mode.

Mapping (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md):

* `type` is the event type (`HearingScheduled`), `subject` the stream id
  (`hearing-<uuid>`), `data` the event payload (JSON, as in the streams API).
* `id` is the event id. A UUID in lowercase canonical form is used as it is; any
  other id becomes `uuid5(caller namespace, source + "\\n" + id)`, where the caller
  namespace is `uuid5(CE_NAMESPACE, node id + "\\n" + role + "\\n" + regions)`: the
  scope of the caller's token, which no other scope can produce. CloudEvents makes
  `source` + `id` unique, so a retry of the same event by the same scope maps to the
  same event id and is idempotent (200, nothing written) exactly as in the streams
  API; another region sending the same `source` and `id` gets other event ids and
  cannot claim this region's ahead of it. The original id is kept in the metadata
  as `ce_id`. On a federated node the write path then scopes the resulting id to the
  node (`events.domain.ids.home_scoped`, coord/writes.py `WritePath.stored_id`), a canonical
  UUID `id` included: the same CloudEvent posted at two regions is two events, never one
  id twice at the hub.
* `source` (required) and `time` (optional) are stored in the event's metadata
  as `ce_source` and `ce_time` (beside the server's keys: the server recorded them
  from the envelope); the server's own keys (actor, role, ...) are stamped by the
  write path as for every other append.
* Extension `expectedversion`: an integer >= 0, `"any"` (default) or `"exists"`,
  with the streams API's meaning. In a batch it applies before *that* event, so
  in one stream's run of events a later event may carry `n + k`, or nothing.

Modes (by request header):

* `Content-Type: application/cloudevents+json`: one event in the body (structured).
* `Content-Type: application/cloudevents-batch+json`: a JSON array of events,
  all or nothing: one transaction over every stream of the batch
  (see coord/batch.py). 201 with a list of append results, one per stream in the
  order the streams first appear; 200 if the whole batch was already stored.
* `ce-specversion` header and a JSON body (`Content-Type: application/json`, or
  none, which some HTTP clients send as `application/octet-stream`): binary mode;
  the body is `data`, header values are percent-decoded.

Errors are those of the streams API. Field paths point into the request:
`$.subject`, `$.data.region_code` (binary mode: `$.data` is the body and
`$.type` the `ce-type` header), `$[2].data.title` in a batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import msgspec
from aiohttp import web

from coord.apidoc import Body, documented
from coord.auth import Principal, forbidden, principal_of
from coord.http.params import MAX_QUERY_INT
from coord.http.streams import (
    AppendResponse,
    EventType,
    append_response,
    json_response,
    origin_of,
)
from coord.keys import WRITES
from coord.problems import Problem, invalid
from coord.writes import Proposed, StreamAppend
from events.domain.errors import InvalidStreamId
from events.domain.ids import parse_canonical_uuid
from events.domain.streams import validate_stream_id
from events.domain.types import ACCESS_STREAM
from events.store.records import AppendResult, ExpectedVersion

routes = web.RouteTableDef()

CE_JSON = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"
#: Root of the namespaces of ids derived from non-UUID CloudEvents ids; it is
#: uuid5(NAMESPACE_URL, "urn:coord:cloudevents") and never changes (ids depend on it).
CE_NAMESPACE = uuid.UUID("e698fa7a-0be5-5eb4-96cd-2bc3c3c888a7")
MAX_BATCH = 1000

# CloudEvents ids and sources are free-form; control characters would make the derived
# id ambiguous (source and id are joined by a newline) and have no place in either.
_Printable = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"^[^\x00-\x1f\x7f]+$")
]
StreamId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Binary mode carries every attribute as a string, so "3" is as good as 3.
ExpectedVersionAttr = (
    Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)]
    | Annotated[str, msgspec.Meta(pattern=r"^(any|exists|[0-9]{1,18})$")]
)
EventData = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        description="The event payload: the schema named by `type` (components/schemas).",
        extra_json_schema={"type": "object"},
    ),
]


class CloudEventAttributes(msgspec.Struct, kw_only=True):
    """The context attributes coord reads; other extension attributes are ignored."""

    specversion: Literal["1.0"]
    id: _Printable
    source: _Printable
    type: EventType
    subject: StreamId
    time: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    expectedversion: ExpectedVersionAttr | None = None


class CloudEvent(CloudEventAttributes, kw_only=True):
    """A CloudEvent in the JSON format (structured or batch mode); `data` must be JSON."""

    data: EventData | msgspec.UnsetType = msgspec.UNSET
    data_base64: str | None = None


_structured = msgspec.json.Decoder(CloudEvent)
_batch = msgspec.json.Decoder(Annotated[list[CloudEvent], msgspec.Meta(max_length=MAX_BATCH)])


def id_namespace(principal: Principal, node_id: str) -> uuid.UUID:
    """The namespace of the event ids derived for this caller: its token's scope on this node.

    Role and regions come from the token, which the caller cannot forge; tokens of the
    same scope share it, so a retry after a token is replaced is still idempotent.
    """
    scope = "\n".join((node_id, principal.role, *sorted(principal.regions)))
    return uuid.uuid5(CE_NAMESPACE, scope)


def event_id(event: CloudEventAttributes, namespace: uuid.UUID) -> uuid.UUID:
    """The coord event id of a CloudEvent: its id if a canonical UUID, else derived in
    `namespace` (see `id_namespace`) from source and id."""
    given = parse_canonical_uuid(event.id)
    if given is not None:
        return given
    return uuid.uuid5(namespace, f"{event.source}\n{event.id}")


def _expected(raw: int | str | None) -> ExpectedVersion | None:
    """The `expectedversion` attribute as the write path takes it (shape checked on decode)."""
    if raw is None or isinstance(raw, int):
        return raw
    if raw == "any":
        return "any"
    if raw == "exists":
        return "exists"
    return int(raw)


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _proposed(event: CloudEventAttributes, data: bytes, at: str, namespace: uuid.UUID) -> Proposed:
    intake: dict[str, str] = {"ce_source": event.source, "ce_id": event.id}
    if event.time is not None:
        intake["ce_time"] = event.time.isoformat()
    if event.dataschema is not None:
        intake["ce_dataschema"] = event.dataschema
    if event.datacontenttype is not None and not _is_json(event.datacontenttype.lower()):
        raise invalid("coord takes JSON data only", f"{at}.datacontenttype")
    return Proposed(type=event.type, data=data, id=event_id(event, namespace), intake=intake)


def _data(event: CloudEvent, at: str) -> bytes:
    if event.data_base64 is not None:
        raise invalid("coord takes JSON data only, not data_base64", f"{at}.data_base64")
    if isinstance(event.data, msgspec.UnsetType):
        raise invalid("data is required: the event payload", f"{at}.data")
    return bytes(event.data)


def _stream_id(subject: str, at: str) -> str:
    try:
        stream_id = validate_stream_id(subject)
    except InvalidStreamId as e:
        raise invalid(str(e), f"{at}.subject") from None
    if stream_id == ACCESS_STREAM:
        raise forbidden("tokens are managed through /v1/tokens or `coord token`")
    return stream_id


def _group(
    events: Sequence[CloudEvent], namespace: uuid.UUID
) -> tuple[list[StreamAppend], list[list[int]]]:
    """Events by stream in order of first appearance, with each event's index in the batch."""
    order: dict[str, int] = {}
    proposed: list[list[Proposed]] = []
    where: list[list[int]] = []
    exact: list[int | None] = []
    loose: list[ExpectedVersion] = []
    seen: dict[uuid.UUID, int] = {}
    for k, ce in enumerate(events):
        at = f"$[{k}]"
        # The store would refuse it too, but only after every retry: say which events clash.
        if (first := seen.setdefault(event_id(ce, namespace), k)) != k:
            raise invalid(f"the same event as $[{first}] (source and id)", f"{at}.id")
        stream_id = _stream_id(ce.subject, at)
        i = order.setdefault(stream_id, len(order))
        if i == len(proposed):
            proposed.append([])
            where.append([])
            exact.append(None)
            loose.append("any")
        offset = len(proposed[i])
        expected = _expected(ce.expectedversion)
        if isinstance(expected, int):
            # `expectedversion` of the k-th event of a stream's run fixes the run's start.
            base = expected - offset
            if base < 0 or (exact[i] is not None and exact[i] != base):
                raise invalid(
                    f"expectedversion {expected} contradicts the batch's earlier events "
                    f"for {stream_id}",
                    f"{at}.expectedversion",
                )
            exact[i] = base
        elif expected == "exists" and offset == 0:
            loose[i] = "exists"
        proposed[i].append(_proposed(ce, _data(ce, at), at, namespace))
        where[i].append(k)
    appends = []
    for sid, i in order.items():
        start = exact[i]
        expected_start = loose[i] if start is None else start
        appends.append(StreamAppend(stream_id=sid, proposed=proposed[i], expected=expected_start))
    return appends, where


async def _write_one(
    request: web.Request, principal: Principal, attrs: CloudEventAttributes, data: bytes
) -> web.Response:
    stream_id = _stream_id(attrs.subject, "$")
    expected = _expected(attrs.expectedversion)
    writes = request.app[WRITES]
    append = StreamAppend(
        stream_id=stream_id,
        proposed=[_proposed(attrs, data, "$", id_namespace(principal, writes.node_id))],
        expected="any" if expected is None else expected,
    )
    results = await writes.write_atomic(principal, [append], origin_of(request), event_field=_root)
    return append_response(results[0])


def _root(stream: int, event: int) -> str:
    return "$"


def _binary_attributes(request: web.Request) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            attrs[lower[3:]] = unquote(value)
    return attrs


# Binary mode: the attributes in `ce-*` headers (each required in that mode).
_CE_HEADERS: dict[str, Any] = {
    "ce-specversion": Literal["1.0"],
    "ce-id": _Printable,
    "ce-source": _Printable,
    "ce-type": EventType,
    "ce-subject": StreamId,
    "ce-time": Annotated[datetime, msgspec.Meta(tz=True)],
    "ce-expectedversion": ExpectedVersionAttr,
}


def _check_stray_headers(request: web.Request) -> None:
    """`ce-*` headers sent with a structured or batch body carry nothing (the body holds the
    attributes), but one that breaks its documented form is still refused: a client that sends
    it believes it means something."""
    for name, value in request.headers.items():
        kind = _CE_HEADERS.get(name.lower())
        if kind is None:
            continue
        try:
            msgspec.convert(unquote(value), kind, strict=False)
        except msgspec.ValidationError as e:
            raise invalid(f"header {name.lower()}: {e}", f"header.{name.lower()}") from None


@routes.post("/v1/cloudevents")
@documented(
    body=(
        Body(CloudEvent, CE_JSON),
        Body(Annotated[list[CloudEvent], msgspec.Meta(max_length=MAX_BATCH)], CE_BATCH),
        Body(dict[str, Any], "application/json"),
    ),
    headers=_CE_HEADERS,
    responses={
        201: AppendResponse | list[AppendResponse],
        200: AppendResponse | list[AppendResponse],
    },
    errors=(409, 421, 503),
    roles=("regional", "national"),
    summary="Append CloudEvents 1.0: structured, batch (all or nothing) or binary mode.",
    tags=("streams",),
)
async def post_cloudevents(request: web.Request) -> web.Response:
    """Append CloudEvents (structured, batch or binary mode) through the streams' write path."""
    principal = principal_of(request)
    media_type = request.content_type.lower() if "Content-Type" in request.headers else ""
    body = await request.read()
    if media_type in (CE_JSON, CE_BATCH):
        _check_stray_headers(request)
    if media_type == CE_JSON:
        event = _structured.decode(body)
        return await _write_one(request, principal, event, _data(event, "$"))
    if media_type == CE_BATCH:
        return await _write_batch(request, principal, _batch.decode(body))
    if "ce-specversion" in request.headers:
        # The SDK sends no Content-Type when `datacontenttype` is unset (JSON by the spec);
        # some HTTP clients (aiohttp) then add application/octet-stream on their own.
        if media_type not in ("", "application/octet-stream") and not _is_json(media_type):
            raise Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"binary-mode data must be application/json, not {media_type}",
            )
        attrs = msgspec.convert(_binary_attributes(request), CloudEventAttributes, strict=False)
        return await _write_one(request, principal, attrs, body)
    raise Problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        f"send {CE_JSON}, {CE_BATCH}, or ce-* headers with an application/json body; "
        f"not {media_type or 'nothing'}",
    )


async def _write_batch(
    request: web.Request, principal: Principal, events: list[CloudEvent]
) -> web.Response:
    if not events:
        # The spec allows an empty batch; it writes nothing.
        return json_response([], status=200)  # type: ignore[arg-type]
    writes = request.app[WRITES]
    appends, where = _group(events, id_namespace(principal, writes.node_id))
    results: list[AppendResult] = await writes.write_atomic(
        principal, appends, origin_of(request), event_field=lambda i, j: f"$[{where[i][j]}]"
    )
    body = [
        AppendResponse(
            stream_id=r.stream_id,
            first_version=r.first_version,
            last_version=r.last_version,
            first_position=r.first_position,
            last_position=r.last_position,
        )
        for r in results
    ]
    created = any(r.created for r in results)
    return web.Response(
        body=msgspec.json.encode(body),
        status=201 if created else 200,
        content_type="application/json",
    )
