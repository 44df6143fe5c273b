"""The verifiable log: a Merkle tree over the global log, signed checkpoints, proofs, export.

Two parts:

* `TreeBuilder`, a background task in every coord process. One of them per database
  (the holder of a session advisory lock, like the sequencer) follows the log in
  position order and appends each event's leaf hash and the complete subtree nodes it
  closes to `merkle_nodes`, one transaction per batch. It reads the log with
  `position > size` only, which cannot skip: positions become visible strictly in order
  (events/store/sequencer.py). It hashes only rows it read in the transaction that writes
  their nodes, never a cache: a cache can outlive events the database lost, and the
  tree would then sign history that does not exist (issue 13). It signs a checkpoint
  whenever the tree grew and `checkpoint_interval` has passed since the last one;
  every checkpoint is kept. On every leadership change it first checks the stored
  tree against the log (events/store/integrity.py) and signs nothing after a loss.
  It is a follower, not part of the sequencer: sequencing stays one short statement,
  and a crashed or slow builder never delays appends; it resumes from the stored tree.
* `AuditLog`, the read side used by the HTTP handlers: tree heads, checkpoints,
  inclusion and consistency proofs (one query for all nodes: O(log n) primary-key
  reads), the audit trail of a stream, and the export.

Failure modes: the leader's connection dies -> PostgreSQL drops the lock, another
process takes over within `retry_interval` and resumes from `max(idx) + 1`. Two
builders can never both write a node: (level, idx) is the primary key, so a stray
second writer would fail its whole batch. A gap in the log (only possible if someone
deleted rows behind the database's back) stops the builder with an error log rather
than hashing a rewritten history.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from events.audit.leaf import event_object, stored_leaf_bytes
from events.audit.merkle import (
    EMPTY_ROOT,
    MerkleAppender,
    Node,
    NodeRef,
    RootAccumulator,
    assemble,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    leaf_hash,
    nodes_for_ranges,
)
from events.audit.notes import Checkpoint, Signer, sign_checkpoint
from events.store import logged
from events.store.leadership import lead_forever
from events.store.log_head import LogHead

log = structlog.get_logger("coord.audit")

Connect = Callable[[], Awaitable[asyncpg.Connection]]

# Advisory-lock key naming "the coord tree builder" (0x...00 migrations, 0x...01 sequencer).
TREE_BUILDER_LOCK_KEY = 0x636F6F7264_02  # "coord" 2

_TREE_SIZE = "SELECT coalesce(max(idx) + 1, 0) FROM merkle_nodes WHERE level = 0"

_FETCH_NODES = (
    "SELECT n.level, n.idx, n.hash "
    "FROM unnest($1::smallint[], $2::bigint[]) AS u(level, idx) "
    "JOIN merkle_nodes n ON n.level = u.level AND n.idx = u.idx"
)

_NODE_COLUMNS = ("level", "idx", "hash")

_EVENTS_AFTER = logged.select(logged.columns(event_id_text=False), "l.position > $1", limit="$2")

_EVENT_AT = logged.select(logged.columns(event_id_text=False), "l.position = $1", ordered=False)

# The rows of this node's own log (home positions, see events/store/sql/0006): one statement
# per batch, in the transaction that stores the batch's leaves.
_INSERT_NODE_LOG = "INSERT INTO node_log (log_node, position, event_id) " + logged.select(
    "coalesce((SELECT node_id FROM coord_node), 'local'), l.position, e.event_id",
    "l.position > $1 AND l.position <= $2",
    ordered=False,
)

_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (origin, tree_size, root_hash, note) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT ON CONSTRAINT audit_checkpoints_origin_size_key "
    "DO NOTHING"
)

_CHECKPOINT_COLUMNS = "tree_size, root_hash, note, created_at"
_LATEST_CHECKPOINT = (
    f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE origin = $1 "
    "ORDER BY tree_size DESC LIMIT 1"
)
_CHECKPOINT_AT = (
    f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE origin = $1 AND tree_size = $2"
)

_EVENT_ROW = logged.select(logged.columns(event_id_text=False), "e.event_id = $1", ordered=False)

# The peers' cosignatures (audit_cosignatures) and, at the hub, the regions' witness
# cosignatures: one line per cosigner (a witness row may arrive twice), by cosigner name.
_COSIGNATURES = (
    "SELECT line FROM (SELECT DISTINCT ON (cosigner) cosigner, line FROM ("
    " SELECT cosigner, line, 0 AS pref FROM audit_cosignatures"
    " WHERE origin = $1 AND tree_size = $2"
    " UNION ALL SELECT cosigner, line, 1 FROM audit_witness_cosignatures"
    " WHERE origin = $1 AND tree_size = $2) x ORDER BY cosigner, pref, line) y "
    "ORDER BY cosigner"
)

_EVENT_PLACE = logged.select("l.position, e.region_code", "e.event_id = $1", ordered=False)

# Driven by the tree, not by the log: every leaf gets a line, and a leaf whose event
# row has gone (deleted behind the database's back) shows as `"event": null`.
_EXPORT_PAGE = (
    "SELECT n.idx, n.hash, l.position, e.event_id, e.stream_id, e.version, e.type, "
    "e.schema_version, e.data, e.metadata, e.recorded_at, e.region_code "
    "FROM merkle_nodes n "
    "LEFT JOIN log l ON l.position = n.idx + 1 "
    "LEFT JOIN events e ON e.seq = l.seq "
    "WHERE n.level = 0 AND n.idx >= $1 AND n.idx < $2 ORDER BY n.idx LIMIT $3"
)

_STREAM_TRAIL = (
    "SELECT e.event_id, e.version, l.position, e.type, e.recorded_at, "
    "e.metadata -> 'actor' AS actor, n.hash "
    "FROM events e LEFT JOIN log l ON l.seq = e.seq "
    "LEFT JOIN merkle_nodes n ON n.level = 0 AND n.idx = l.position - 1 "
    "WHERE e.stream_id = $1 AND e.version >= $2 ORDER BY e.version LIMIT $3"
)


def b64(data: bytes) -> str:
    """Standard padded base64, as everywhere in the audit API."""
    return base64.b64encode(data).decode("ascii")


class TreeNotBuilt(LookupError):
    """The tree has not (yet) grown to the size a request names."""


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A stored checkpoint."""

    tree_size: int
    root_hash: bytes
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventPlace:
    """Where an event sits in the log, and whose region it belongs to."""

    position: int
    region_code: str | None

    @property
    def leaf_index(self) -> int:
        """0-based leaf index (position - 1)."""
        return self.position - 1


class ExportLine(msgspec.Struct):
    """One NDJSON line of the export: a leaf and the event it must hash.

    ``event`` is the event's leaf bytes verbatim (docs/audit-format.md §2): the very bytes
    the tree builder hashes, so an honest line re-encodes to itself.
    """

    leaf_index: int
    leaf_hash: str
    event: msgspec.Raw | None


class TrailEntry(msgspec.Struct, kw_only=True):
    """One event of a stream's audit trail."""

    id: uuid.UUID
    version: int
    position: int | None
    leaf_index: int | None
    type: str
    recorded_at: datetime
    actor: msgspec.Raw | None
    leaf_hash: str | None


async def _fetch_nodes(conn: asyncpg.Connection, refs: Sequence[NodeRef]) -> dict[NodeRef, bytes]:
    if not refs:
        return {}
    rows = await conn.fetch(_FETCH_NODES, [r.level for r in refs], [r.idx for r in refs])
    return {NodeRef(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


async def tree_size(conn: asyncpg.Connection) -> int:
    """Number of leaves in the stored tree."""
    size: int = await conn.fetchval(_TREE_SIZE)
    return size


async def root_at(conn: asyncpg.Connection, size: int) -> bytes:
    """Root hash of the first `size` leaves, from at most log2(size) + 1 stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    refs = RootAccumulator.frontier_nodes(size)
    fetched = await _fetch_nodes(conn, refs)
    try:
        return RootAccumulator(size, [fetched[r] for r in refs]).root()
    except KeyError:
        raise TreeNotBuilt(f"the tree has fewer than {size} leaves") from None


async def consistency_at(conn: asyncpg.Connection, first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency proof from tree size `first` to `second` of the stored tree."""
    ranges = consistency_proof_ranges(first, second)
    # The last leaf of `second` proves the tree is that big even when the proof is empty.
    refs = [NodeRef(0, second - 1), *nodes_for_ranges(ranges)] if second else []
    fetched = await _fetch_nodes(conn, refs)
    try:
        if second:
            fetched[NodeRef(0, second - 1)]
        return assemble(ranges, fetched)
    except KeyError:
        raise TreeNotBuilt(f"the tree has fewer than {second} leaves") from None


def event_leaf(row: asyncpg.Record) -> bytes:
    """Leaf hash of an event row (position, event_id, stream_id, ... region_code)."""
    return leaf_hash(_leaf_bytes(row))


def _leaf_bytes(row: asyncpg.Record) -> bytes:
    return stored_leaf_bytes(_event_object(row))


def _event_object(row: asyncpg.Record) -> dict[str, Any]:
    return event_object(
        id=row["event_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=row["metadata"],
        recorded_at=row["recorded_at"],
        region_code=row["region_code"],
    )


class AuditLog:
    """Read side of the verifiable log (tree heads, proofs, trail, export)."""

    def __init__(self, pool: asyncpg.Pool, signer: Signer) -> None:
        self._pool = pool
        self.signer = signer

    @property
    def origin(self) -> str:
        """The log's origin line (= signing key name)."""
        return self.signer.name

    async def tree_size(self) -> int:
        """Number of leaves the builder has stored so far."""
        async with self._pool.acquire() as conn:
            return await tree_size(conn)

    async def checkpoint(self, size: int | None = None) -> SignedHead | None:
        """The latest stored checkpoint of this origin, or the one at `size`."""
        async with self._pool.acquire() as conn:
            if size is None:
                row = await conn.fetchrow(_LATEST_CHECKPOINT, self.origin)
            else:
                row = await conn.fetchrow(_CHECKPOINT_AT, self.origin, size)
        if row is None:
            return None
        return SignedHead(row["tree_size"], bytes(row["root_hash"]), row["note"], row["created_at"])

    async def place(self, event_id: uuid.UUID) -> EventPlace | None:
        """Position and region of an event, None if unknown or not yet sequenced."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_EVENT_PLACE, event_id)
        return None if row is None else EventPlace(row["position"], row["region_code"])

    async def leaf_of(self, event_id: uuid.UUID) -> tuple[EventPlace, bytes] | None:
        """Place and leaf bytes (docs/audit-format.md §2) of a sequenced event, or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_EVENT_ROW, event_id)
        if row is None:
            return None
        return EventPlace(row["position"], row["region_code"]), _leaf_bytes(row)

    async def cosignatures(self, size: int) -> list[str]:
        """Cosignature lines stored for this log's checkpoint at `size`, by cosigner name."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_COSIGNATURES, self.origin, size)
        return [r["line"] for r in rows]

    async def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Leaf hash and RFC 9162 audit path of leaf `index` in the tree of `size` leaves."""
        ranges = inclusion_proof_ranges(index, size)
        refs = [NodeRef(0, index), *nodes_for_ranges(ranges)]
        async with self._pool.acquire() as conn:
            fetched = await _fetch_nodes(conn, refs)
        try:
            return fetched[NodeRef(0, index)], assemble(ranges, fetched)
        except KeyError:
            raise TreeNotBuilt(f"the tree has fewer than {size} leaves") from None

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 consistency proof from tree size `first` to `second`."""
        async with self._pool.acquire() as conn:
            return await consistency_at(conn, first, second)

    async def trail(self, stream_id: str, from_version: int, limit: int) -> list[TrailEntry]:
        """A stream's events with actor, time, position and leaf hash, in version order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_STREAM_TRAIL, stream_id, from_version, limit)
        return [
            TrailEntry(
                id=r["event_id"],
                version=r["version"],
                position=r["position"],
                leaf_index=None if r["position"] is None else r["position"] - 1,
                type=r["type"],
                recorded_at=r["recorded_at"],
                actor=r["actor"],
                leaf_hash=None if r["hash"] is None else b64(bytes(r["hash"])),
            )
            for r in rows
        ]

    async def export(
        self, first: int, last: int, *, page_size: int = 1000
    ) -> AsyncIterator[list[ExportLine]]:
        """Pages of export lines for positions `first..last` (keyset pages: flat memory)."""
        idx, end = first - 1, last
        while idx < end:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_EXPORT_PAGE, idx, end, page_size)
            if not rows:
                return
            yield [
                ExportLine(
                    leaf_index=r["idx"],
                    leaf_hash=b64(bytes(r["hash"])),
                    event=None if r["event_id"] is None else msgspec.Raw(_leaf_bytes(r)),
                )
                for r in rows
            ]
            idx = rows[-1]["idx"] + 1


class TreeBuilder:
    """Follows the log and maintains `merkle_nodes` and `audit_checkpoints` (leader only)."""

    def __init__(
        self,
        connect: Connect,
        head: LogHead,
        signer: Signer,
        *,
        checkpoint_interval: float = 1.0,
        batch_size: int = 2000,
        poll_interval: float = 1.0,
        retry_interval: float = 1.0,
        batch_delay: float = 0.05,
    ) -> None:
        self._connect = connect
        self._head = head
        self._signer = signer
        self._checkpoint_interval = checkpoint_interval
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_interval = retry_interval
        self._batch_delay = batch_delay
        self.is_leader = False
        #: Leaves stored so far (as this process knows it; only meaningful while leader).
        self.size = 0
        # The last checkpoint this process signed, (size, root): the database must keep it.
        self._signed: tuple[int, bytes] | None = None

    async def run(self) -> None:
        """Compete for leadership and build while leader, until cancelled."""
        await lead_forever(
            self._connect,
            TREE_BUILDER_LOCK_KEY,
            self._lead,
            name="tree_builder",
            retry_interval=self._retry_interval,
            on_change=self._set_leader,
        )

    def _set_leader(self, leading: bool) -> None:
        self.is_leader = leading

    async def _lead(self, conn: asyncpg.Connection) -> None:
        integrity = self._head.integrity
        await self._head.verify(conn, "tree builder leadership")
        if integrity.lost is None:
            await self.verify_tree(conn)
        if integrity.lost is not None:
            # Hold the lock and sign nothing: no other process may sign over the loss.
            await asyncio.Event().wait()
        size = await tree_size(conn)
        refs = RootAccumulator.frontier_nodes(size)
        fetched = await _fetch_nodes(conn, refs)
        appender = MerkleAppender(size, [fetched[r] for r in refs])
        self.size = size
        latest = await conn.fetchrow(_LATEST_CHECKPOINT, self._signer.name)
        signed_size = -1 if latest is None else latest["tree_size"]
        signed_at = float("-inf")
        while True:
            before = appender.size
            grew = await self.step(conn, appender)
            now = time.monotonic()
            due = now - signed_at >= self._checkpoint_interval
            if appender.size != signed_size and due:
                await self.publish(conn, appender.size, appender.root())
                signed_size, signed_at = appender.size, now
            if grew:
                continue
            if self.size > before and self._batch_delay:
                # Let events accumulate: under load, fewer and fuller batches.
                await asyncio.sleep(self._batch_delay)
                continue
            wait = self._poll_interval
            if appender.size != signed_size:
                wait = min(wait, max(0.0, signed_at + self._checkpoint_interval - now))
            await self._head.wait_beyond(appender.size, wait)

    async def step(self, conn: asyncpg.Connection, appender: MerkleAppender) -> bool:
        """Hash the next batch of log events into the tree; True if it was a full batch."""
        # Read and write in one transaction: the leaves hash exactly the rows the database
        # holds while it stores their nodes.
        async with conn.transaction():
            rows: Sequence[asyncpg.Record] = await conn.fetch(
                _EVENTS_AFTER, appender.size, self._batch_size
            )
            if not rows:
                return False
            nodes: list[Node] = []
            first = appender.size
            # A failed insert raises out of `_lead`, which then restarts from the stored
            # tree, so the in-memory appender never runs ahead of the table for long.
            for row in rows:
                if row["position"] != appender.size + 1:
                    log.error(
                        "tree_builder.log_gap", expected=appender.size + 1, found=row["position"]
                    )
                    break
                nodes.extend(appender.append(event_leaf(row)))
            if nodes:
                # COPY rather than INSERT ... unnest(arrays): half the CPU on both sides
                # (asyncpg checks every array element's type; COPY encodes the tuples).
                await conn.copy_records_to_table(
                    "merkle_nodes", records=nodes, columns=_NODE_COLUMNS
                )
                await conn.execute(_INSERT_NODE_LOG, first, appender.size)
        if not nodes:
            await asyncio.sleep(self._retry_interval)
            return False
        self.size = appender.size
        return len(rows) >= self._batch_size

    async def publish(self, conn: asyncpg.Connection, size: int, root: bytes) -> None:
        """Sign and store the checkpoint of the tree at `size` (never after a loss)."""
        if self._head.integrity.lost is not None:
            return
        note = sign_checkpoint(Checkpoint(self._signer.name, size, root), self._signer)
        await conn.execute(_INSERT_CHECKPOINT, self._signer.name, size, root, note)
        self._signed = (size, root)
        log.debug("tree_builder.checkpoint", tree_size=size)

    async def verify_tree(self, conn: asyncpg.Connection) -> None:
        """Report a loss unless the database still holds what was signed over it.

        Checks the last checkpoint this process signed (still stored, same root) and
        the latest stored one: its root from the stored nodes, and its last leaf
        against the event now at that position.
        """
        integrity = self._head.integrity
        origin = self._signer.name
        if self._signed is not None:
            size, root = self._signed
            row = await conn.fetchrow(_CHECKPOINT_AT, origin, size)
            if row is None or bytes(row["root_hash"]) != root:
                integrity.report(
                    "a checkpoint this process signed is gone from the database",
                    where="tree builder leadership",
                    signed_size=size,
                    stored=None if row is None else b64(bytes(row["root_hash"])),
                )
                return
        latest = await conn.fetchrow(_LATEST_CHECKPOINT, origin)
        if latest is None:
            return
        size = latest["tree_size"]
        try:
            stored_root = await root_at(conn, size)
        except TreeNotBuilt:
            stored_root = b""
        if stored_root != bytes(latest["root_hash"]):
            integrity.report(
                "the stored tree no longer matches the latest signed checkpoint",
                where="tree builder leadership",
                signed_size=size,
            )
            return
        if size == 0:
            return
        event = await conn.fetchrow(_EVENT_AT, size)
        leaf = await _fetch_nodes(conn, [NodeRef(0, size - 1)])
        if event is None or event_leaf(event) != leaf.get(NodeRef(0, size - 1)):
            integrity.report(
                "the event at the last signed position is not the one that was signed",
                where="tree builder leadership",
                signed_size=size,
                position=size,
                event_present=event is not None,
            )
