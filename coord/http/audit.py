"""Verifiable history over HTTP: signed tree heads, proofs, the audit trail, the export.

Roles: `auditor` and `national` read everything here; a `regional` token may fetch
inclusion proofs for events of its own regions. Hashes are standard base64 everywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coord.apidoc import Body, StreamPath, documented
from coord.auth import Role, forbidden, principal_of, require_role
from coord.http.params import MAX_QUERY_INT, int_param
from coord.keys import AUDIT
from coord.problems import Problem, invalid, not_found
from events.audit_log import ExportLine, SignedHead, TrailEntry, TreeNotBuilt, b64
from events.ids import parse_canonical_uuid
from events.streams import validate_stream_id

routes = web.RouteTableDef()

READERS: tuple[Role, ...] = ("auditor", "national")
NDJSON = "application/x-ndjson"

_encoder = msgspec.json.Encoder()


class PublicKey(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/public-key`."""

    origin: str
    vkey: str
    public_key: str


class TreeHead(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/tree-head`."""

    tree_size: int
    root_hash: str
    timestamp: datetime
    checkpoint: str


class InclusionProof(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/proof/inclusion`."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]


class ConsistencyProof(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/proof/consistency`."""

    first: int
    second: int
    proof: list[str]


class StreamTrail(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/streams/{stream_id}`; `next_from_version` is null on the last page."""

    stream_id: str
    events: list[TrailEntry]
    next_from_version: int | None


# --- query parameters (for the document; the handlers parse them strictly below) -----------


class SizeQuery(msgspec.Struct, kw_only=True):
    """The checkpoint at tree size `size` instead of the latest one."""

    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)] | None = None


class InclusionQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/audit/proof/inclusion`; `tree_size` defaults to the latest checkpoint's."""

    event_id: uuid.UUID
    tree_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_INT)] | None = None


class ConsistencyQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/audit/proof/consistency` (`first` <= `second`)."""

    first: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)]
    second: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)]


class TrailQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/audit/streams/{stream_id}`."""

    from_version: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_INT)] = 1
    limit: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 1000


class ExportQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/audit/export`: positions `from..to` (`to`: latest checkpoint's size)."""

    from_: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_INT)] = msgspec.field(
        default=1, name="from"
    )
    to: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)] | None = None


# NDJSON has no JSON Schema of its own: the body is described as the array of its lines
# (how NDJSON-reading tools hand it over), each line one `ExportLine`.
_ExportLines = Annotated[
    list[ExportLine],
    msgspec.Meta(
        description="NDJSON: each item of this array is one line (one JSON object per "
        "leaf, in log order); no leaves, no lines."
    ),
]
_Position = Annotated[int, msgspec.Meta(ge=0, le=MAX_QUERY_INT)]


def _json(body: msgspec.Struct) -> web.Response:
    return web.Response(body=_encoder.encode(body), content_type="application/json")


def not_in_tree(detail: str) -> Problem:
    """409: the tree (or its last checkpoint) has not reached that size yet; retry shortly."""
    return Problem(
        409, "not-in-tree-yet", "Not in the tree yet", detail, headers={"Retry-After": "1"}
    )


async def _head(request: web.Request) -> SignedHead:
    """The checkpoint at `?size=N`, or the latest one."""
    size = request.query.get("size")
    wanted = None if size is None else int_param(request, "size", 0, minimum=0)
    audit = request.app[AUDIT]
    head = await audit.checkpoint(wanted)
    if head is None:
        if wanted is None:
            raise not_in_tree("no checkpoint has been published yet")
        latest = await audit.checkpoint()
        if latest is None or wanted > latest.tree_size:
            # Not reached yet: a retry may find it (the log signs only sizes it stops at).
            raise not_in_tree(f"no checkpoint has reached tree size {wanted} yet")
        raise not_found(f"no checkpoint was published at tree size {wanted}")
    return head


@routes.get("/v1/audit/public-key")
@documented(responses={200: PublicKey}, roles=READERS, tags=("audit",))
async def public_key(request: web.Request) -> web.Response:
    """The log's origin and Ed25519 verifier key (C2SP signed-note vkey)."""
    require_role(request, *READERS)
    signer = request.app[AUDIT].signer
    raw = signer.verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _json(PublicKey(origin=signer.name, vkey=signer.vkey, public_key=b64(raw)))


@routes.get("/v1/audit/checkpoint")
@documented(
    query=SizeQuery,
    responses={200: Body(str, "text/plain; charset=utf-8")},
    errors=(404, 409),
    roles=READERS,
    tags=("audit",),
)
async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint (or the one at `?size=N`), as the signed note text."""
    require_role(request, *READERS)
    head = await _head(request)
    return web.Response(text=head.note, content_type="text/plain", charset="utf-8")


@routes.get("/v1/audit/tree-head")
@documented(
    query=SizeQuery, responses={200: TreeHead}, errors=(404, 409), roles=READERS, tags=("audit",)
)
async def tree_head(request: web.Request) -> web.Response:
    """The latest tree head (or the one at `?size=N`) with its signed checkpoint."""
    require_role(request, *READERS)
    head = await _head(request)
    return _json(
        TreeHead(
            tree_size=head.tree_size,
            root_hash=b64(head.root_hash),
            timestamp=head.created_at,
            checkpoint=head.note,
        )
    )


@routes.get("/v1/audit/proof/inclusion")
@documented(
    query=InclusionQuery,
    responses={200: InclusionProof},
    errors=(404, 409),
    roles=(*READERS, "regional"),
    tags=("audit",),
)
async def inclusion_proof(request: web.Request) -> web.Response:
    """RFC 9162 inclusion proof of an event in the tree of `tree_size` leaves.

    `tree_size` defaults to the latest checkpoint's. Regional tokens: own regions only.
    """
    principal = principal_of(request)
    if principal.role not in (*READERS, "regional"):
        raise forbidden(f"inclusion proofs need one of the roles {', '.join(READERS)}, regional")
    raw_id = request.query.get("event_id", "")
    event_id = parse_canonical_uuid(raw_id)
    if event_id is None:
        raise invalid("event_id must be a UUID in lowercase canonical form", "query.event_id")
    audit = request.app[AUDIT]
    place = await audit.place(event_id)
    # A regional caller learns nothing about other regions' events, not even that they exist.
    if place is None or not principal.covers(place.region_code):
        raise not_found(f"event {event_id} is not in the log")
    if "tree_size" in request.query:
        size = int_param(request, "tree_size", 1, minimum=1)
    else:
        head = await audit.checkpoint()
        size = 0 if head is None else head.tree_size
    if place.leaf_index >= size:
        raise not_in_tree(
            f"event {event_id} is leaf {place.leaf_index}, not in the tree of size {size}"
        )
    try:
        leaf, path = await audit.inclusion(place.leaf_index, size)
    except TreeNotBuilt as e:
        raise not_in_tree(str(e)) from None
    return _json(
        InclusionProof(
            leaf_index=place.leaf_index,
            tree_size=size,
            leaf_hash=b64(leaf),
            audit_path=[b64(h) for h in path],
        )
    )


@routes.get("/v1/audit/proof/consistency")
@documented(
    query=ConsistencyQuery,
    responses={200: ConsistencyProof},
    errors=(409,),
    roles=READERS,
    tags=("audit",),
)
async def consistency_proof(request: web.Request) -> web.Response:
    """RFC 9162 consistency proof that the tree of `first` leaves is a prefix of `second`."""
    require_role(request, *READERS)
    for name in ("first", "second"):
        if name not in request.query:
            raise invalid(f"{name} is required", f"query.{name}")
    first = int_param(request, "first", 0, minimum=0)
    second = int_param(request, "second", 0, minimum=0)
    if first > second:
        raise invalid("first must not exceed second", "query.first")
    try:
        proof = await request.app[AUDIT].consistency(first, second)
    except TreeNotBuilt as e:
        raise not_in_tree(str(e)) from None
    return _json(ConsistencyProof(first=first, second=second, proof=[b64(h) for h in proof]))


@routes.get("/v1/audit/streams/{stream_id:[^/]+}")
@documented(
    path=StreamPath,
    query=TrailQuery,
    responses={200: StreamTrail},
    errors=(404,),
    roles=READERS,
    tags=("audit",),
)
async def stream_trail(request: web.Request) -> web.Response:
    """Every event of a stream with actor, time, position, leaf index and leaf hash."""
    require_role(request, *READERS)
    stream_id = validate_stream_id(request.match_info["stream_id"])
    from_version = int_param(request, "from_version", 1, minimum=1)
    limit = int_param(request, "limit", 1000, minimum=1, maximum=10000)
    entries = await request.app[AUDIT].trail(stream_id, from_version, limit + 1)
    if not entries and from_version == 1:
        raise not_found(f"stream {stream_id!r} does not exist")
    more = len(entries) > limit
    entries = entries[:limit]
    return _json(
        StreamTrail(
            stream_id=stream_id,
            events=entries,
            next_from_version=entries[-1].version + 1 if more else None,
        )
    )


@routes.get("/v1/audit/export")
@documented(
    query=ExportQuery,
    responses={200: Body(_ExportLines, NDJSON)},
    response_headers={
        "X-Coord-Tree-Size": _Position,
        "X-Coord-Export-From": _Position,
        "X-Coord-Export-To": _Position,
    },
    errors=(409,),
    roles=READERS,
    tags=("audit",),
)
async def export(request: web.Request) -> web.StreamResponse:
    """NDJSON, one leaf per line: `{"leaf_index", "leaf_hash", "event"}`, positions `from..to`.

    `to` defaults to the latest checkpoint's tree size (named in `X-Coord-Tree-Size`), so
    the export and that checkpoint verify together. Memory stays flat: keyset pages are
    written out as they are read.
    """
    require_role(request, *READERS)
    audit = request.app[AUDIT]
    head = await audit.checkpoint()
    signed = 0 if head is None else head.tree_size
    first = int_param(request, "from", 1, minimum=1)
    last = int_param(request, "to", signed, minimum=0)
    built = await audit.tree_size()
    if last > built:
        raise not_in_tree(f"the tree has {built} leaves; to={last} is beyond it")
    response = web.StreamResponse(
        headers={
            "Content-Type": NDJSON,
            "X-Coord-Tree-Size": str(signed),
            "X-Coord-Export-From": str(first),
            "X-Coord-Export-To": str(last),
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for page in audit.export(first, last):
        await response.write(b"".join(_encoder.encode(line) + b"\n" for line in page))
    await response.write_eof()
    return response
