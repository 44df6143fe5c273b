"""Verifiable history over HTTP: signed tree heads, proofs, receipts, the trail, the export.

Roles: `auditor` and `national` read everything here. A `regional` token may fetch the
public key and checkpoints (to check what it is given), and inclusion proofs and receipts
of its own regions' events; another region's event answers 404 exactly as a missing one.
Hashes are standard base64 everywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coord.apidoc import Body, StreamPath, documented
from coord.auth import Role, principal_of
from coord.http.params import MAX_QUERY_INT, int_param
from coord.keys import AUDIT, NODE
from coord.problems import Problem, invalid, not_found
from events.audit.audit_log import ExportLine, SignedHead, TrailEntry, TreeNotBuilt, b64
from events.audit.notes import CosignatureVerifier
from events.domain.ids import CanonicalUUID, home_scoped, parse_canonical_uuid
from events.domain.streams import validate_stream_id

routes = web.RouteTableDef()

READERS: tuple[Role, ...] = ("auditor", "national")
#: Who may fetch the log's key and checkpoints: everyone holding a proof must check it.
KEY_READERS: tuple[Role, ...] = (*READERS, "regional")
NDJSON = "application/x-ndjson"

_encoder = msgspec.json.Encoder()


class PublicKey(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/public-key`."""

    origin: str
    vkey: str
    public_key: str
    #: The same key as a C2SP tlog-cosignature/v1 cosigner key (a hub cosigns with it).
    cosigner_vkey: str


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


class Receipt(msgspec.Struct, kw_only=True):
    """`GET /v1/audit/receipt/{event_id}`: everything needed to prove, offline, that it was logged.

    `event` is the event's leaf bytes (docs/audit-format.md §2), `leaf_hash` their RFC 9162
    leaf hash, `audit_path` the inclusion proof of leaf `leaf_index` in the tree of
    `tree_size` leaves whose signed checkpoint is `checkpoint` (the note text, signed by
    `origin`). `cosignatures` are C2SP tlog-cosignature/v1 lines on that checkpoint (the
    hub's, when it has cosigned this size; append them to the note to verify). With
    `?from_size=M`, `consistency` proves that the tree of M leaves (an older receipt's)
    is a prefix of this one: nothing was dropped since.
    """

    event_id: uuid.UUID
    origin: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]
    event: Annotated[
        msgspec.Raw,
        msgspec.Meta(
            description=(
                "The event object (docs/audit-format.md §2.1): data, id, metadata, position, "
                "recorded_at, region_code, schema_version, stream_id, type, version. Its "
                "canonical JSON is the leaf's bytes."
            ),
            extra_json_schema={"type": "object"},
        ),
    ]
    checkpoint: str
    cosignatures: list[str]
    consistency: ConsistencyProof | None


class EventIdPath(msgspec.Struct):
    """Path of the receipt route: an event id (lowercase canonical UUID)."""

    event_id: CanonicalUUID


class ReceiptQuery(msgspec.Struct, kw_only=True):
    """Query of `GET /v1/audit/receipt/{event_id}`.

    `tree_size`: the checkpoint to prove against (a size the log signed; default the
    latest). `from_size`: also prove consistency from that older size (<= `tree_size`).
    """

    tree_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_INT)] | None = None
    from_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_INT)] | None = None


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
@documented(responses={200: PublicKey}, roles=KEY_READERS, tags=("audit",))
async def public_key(request: web.Request) -> web.Response:
    """The log's origin and Ed25519 verifier key (C2SP signed-note vkey)."""
    signer = request.app[AUDIT].signer
    raw = signer.verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _json(
        PublicKey(
            origin=signer.name,
            vkey=signer.vkey,
            public_key=b64(raw),
            cosigner_vkey=CosignatureVerifier.of(signer).vkey,
        )
    )


@routes.get("/v1/audit/checkpoint")
@documented(
    query=SizeQuery,
    responses={200: Body(str, "text/plain; charset=utf-8")},
    errors=(404, 409),
    roles=KEY_READERS,
    tags=("audit",),
)
async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint (or the one at `?size=N`), as the signed note text."""
    head = await _head(request)
    return web.Response(text=head.note, content_type="text/plain", charset="utf-8")


@routes.get("/v1/audit/tree-head")
@documented(
    query=SizeQuery,
    responses={200: TreeHead},
    errors=(404, 409),
    roles=KEY_READERS,
    tags=("audit",),
)
async def tree_head(request: web.Request) -> web.Response:
    """The latest tree head (or the one at `?size=N`) with its signed checkpoint."""
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
    raw_id = request.query.get("event_id", "")
    event_id = parse_canonical_uuid(raw_id)
    if event_id is None:
        raise invalid("event_id must be a UUID in lowercase canonical form", "query.event_id")
    audit = request.app[AUDIT]
    place = await audit.place(event_id)
    if place is None and (scoped := _home_scoped(request, event_id)) is not None:
        place = await audit.place(scoped)  # the id its client sent, as this node stored it
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


@routes.get("/v1/audit/receipt/{event_id:[^/]+}")
@documented(
    path=EventIdPath,
    query=ReceiptQuery,
    responses={200: Receipt},
    errors=(404, 409, 422),
    roles=KEY_READERS,
    tags=("audit",),
)
async def receipt(request: web.Request) -> web.Response:
    """The receipt of an event: signed checkpoint, inclusion proof, cosignatures, the event.

    Regional tokens: own regions only (another region's event is 404, as a missing one).
    """
    principal = principal_of(request)
    event_id = parse_canonical_uuid(request.match_info["event_id"])
    if event_id is None:
        raise invalid("event_id must be a UUID in lowercase canonical form", "path.event_id")
    wanted = None
    if "tree_size" in request.query:
        wanted = int_param(request, "tree_size", 1, minimum=1)
    from_size = None
    if "from_size" in request.query:
        from_size = int_param(request, "from_size", 1, minimum=1)
    audit = request.app[AUDIT]
    found = await audit.leaf_of(event_id)
    if found is None and (scoped := _home_scoped(request, event_id)) is not None:
        # The id its client sent, as this node stored it: the receipt names the stored id.
        found = await audit.leaf_of(scoped)
        event_id = scoped if found is not None else event_id
    if found is None or not principal.covers(found[0].region_code):
        raise not_found(f"event {event_id} is not in the log")
    place, leaf_bytes = found
    head = await (audit.checkpoint() if wanted is None else _head_at(request, wanted))
    if head is None:
        raise not_in_tree("no checkpoint has been published yet")
    if place.leaf_index >= head.tree_size:
        raise not_in_tree(
            f"event {event_id} is leaf {place.leaf_index}, not yet in a signed checkpoint "
            f"(latest tree size {head.tree_size})"
        )
    if from_size is not None and from_size > head.tree_size:
        raise invalid("from_size must not exceed the receipt's tree size", "query.from_size")
    try:
        leaf, path = await audit.inclusion(place.leaf_index, head.tree_size)
        proof = None if from_size is None else await audit.consistency(from_size, head.tree_size)
    except TreeNotBuilt as e:
        raise not_in_tree(str(e)) from None
    return _json(
        Receipt(
            event_id=event_id,
            origin=audit.origin,
            leaf_index=place.leaf_index,
            tree_size=head.tree_size,
            leaf_hash=b64(leaf),
            audit_path=[b64(h) for h in path],
            event=msgspec.Raw(leaf_bytes),
            checkpoint=head.note,
            cosignatures=await audit.cosignatures(head.tree_size),
            consistency=None
            if proof is None
            else ConsistencyProof(
                first=from_size or 0, second=head.tree_size, proof=[b64(h) for h in proof]
            ),
        )
    )


async def _head_at(request: web.Request, size: int) -> SignedHead:
    audit = request.app[AUDIT]
    head = await audit.checkpoint(size)
    if head is not None:
        return head
    latest = await audit.checkpoint()
    if latest is None or size > latest.tree_size:
        raise not_in_tree(f"no checkpoint has reached tree size {size} yet")
    raise not_found(f"no checkpoint was published at tree size {size}")


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


def _home_scoped(request: web.Request, event_id: uuid.UUID) -> uuid.UUID | None:
    """On a federated node, the stored id of an event whose client sent `event_id`
    (events.domain.ids.home_scoped): a client asks for proofs with the id it chose."""
    node = request.app[NODE]
    return None if node.mode == "standalone" else home_scoped(node.node_id, event_id)
