"""The hub's cosigner: mirror each region's tree and cosign the region checkpoints it matches.

Each regional node's tree builder writes the rows of its own log (`node_log`: position ->
event id); they replicate to the hub with the region's events and its signed checkpoints
(coord/federation.py, publication `coord_region_audit`). From them the hub rebuilds the
region's tree *as the region built it*: leaf ``p`` is the hub's copy of the event the
region holds at ``p``, encoded by the one canonical encoder (events/audit/leaf.py) with the
region's position. The copy is the region's own: the hub's row of that event id recorded
by that region, or, for an event the hub set aside as a collision (another node's event
holds its id or its stream), the row kept in `federation_conflicts`; a national event
the region received from the hub is the hub's own row. A collision therefore never
makes the hub refuse a region's checkpoints. For each region checkpoint, in size order,
the hub

1. verifies the region's signature with the key `add-region` recorded for it;
2. extends its mirror to the checkpoint's size and compares the roots;
3. if they are equal, cosigns the checkpoint (C2SP tlog-cosignature/v1, the hub's log
   key) and stores the line in `audit_cosignatures` (replicated to the regions, served
   in receipts); otherwise it refuses: a row in `audit_cosign_refusals` and an error log
   `federation.cosign_refused`. A different root means the region signed a history the
   hub does not hold: it rewrote history, or the hub lacks or altered events.

A position whose row has not arrived yet is waited for (replication lag). A `node_log`
row whose event the hub does not hold is waited for `grace` seconds after the
checkpoint was signed (the initial copy of a new link may deliver the tables in either
order), then refused: the hub is missing that event.

One cosigner per hub database (session advisory lock, like the tree builder). The
mirrors live in memory and are rebuilt from position 1 after a restart (a linear pass).

The other way, regions witness the hub (`HubWitness`, one per regional database). A
region cannot rebuild the hub's tree: the hub's log is the union of every node's
events, and a region receives only the national ones. What it can check, and does, is
that the hub's checkpoints form one append-only sequence: it cosigns a hub checkpoint
only with an RFC 9162 consistency proof from the last hub checkpoint it cosigned. So the
hub's cosigner also *proves* its own log (`_prove`): into `audit_consistency` it writes
the proof from each hub checkpoint's predecessor, and, for a region whose last cosigned
checkpoint is not the predecessor of the hub's latest (it refused one in between, or it
started witnessing late), the proof from that one to the latest. The hub's checkpoints
and these proofs replicate to the regions (`coord_national_audit`); the regions'
cosignatures (`audit_witness_cosignatures`, no unique key: a row arriving twice never
stops a link) replicate back (`coord_region_audit`) and appear in the hub's receipts.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import structlog

from events.audit.audit_log import Connect, TreeNotBuilt, consistency_at, event_leaf
from events.audit.merkle import RootAccumulator, verify_consistency
from events.audit.notes import (
    Checkpoint,
    CheckpointError,
    NoteError,
    Signer,
    Verifier,
    cosign_checkpoint,
    verify_checkpoint,
)
from events.store.leadership import lead_forever

log = structlog.get_logger("coord.cosigner")

COSIGNER_LOCK_KEY = 0x636F6F7264_03  # "coord" 3
WITNESS_LOCK_KEY = 0x636F6F7264_04  # "coord" 4

_REGIONS = (
    "SELECT node_id, audit_vkey FROM federation_nodes "
    "WHERE mode = 'regional' AND audit_vkey IS NOT NULL ORDER BY node_id"
)
_PENDING = (
    "SELECT c.tree_size, c.note, c.created_at FROM audit_checkpoints c WHERE c.origin = $1 "
    "AND NOT EXISTS (SELECT 1 FROM audit_cosignatures s WHERE s.origin = c.origin "
    "AND s.tree_size = c.tree_size AND s.cosigner = $2) "
    "AND NOT EXISTS (SELECT 1 FROM audit_cosign_refusals r WHERE r.origin = c.origin "
    "AND r.tree_size = c.tree_size) ORDER BY c.tree_size LIMIT 50"
)
# The region's own copy of each event of its log, in this order: the hub's row of that id
# *recorded by that region* (an event id is unique at the hub, but after a collision the
# hub's row of that id may be another node's); else the row set aside in
# federation_conflicts (a stream or id collision at the hub keeps the region's version
# there, whole); else, for a national event the region received from the hub, the hub's
# own row. Never another region's event: that would read as rewritten history and refuse
# every later checkpoint of the region.
_COPY = (
    "SELECT {t}.event_id, {t}.stream_id, {t}.version, {t}.type, {t}.schema_version, {t}.data,"
    " {t}.metadata, {t}.recorded_at, {t}.region_code"
)
_MIRROR_ROWS = (
    "SELECT n.position, n.event_id AS wanted, x.event_id, x.stream_id, x.version, x.type, "
    "x.schema_version, x.data, x.metadata, x.recorded_at, x.region_code "
    "FROM node_log n LEFT JOIN LATERAL ("
    f" ({_COPY.format(t='e')} FROM events e"
    " WHERE e.event_id = n.event_id AND e.node_id = n.log_node)"
    " UNION ALL"
    f" ({_COPY.format(t='c')} FROM federation_conflicts c"
    " WHERE c.event_id = n.event_id AND c.node_id = n.log_node ORDER BY c.conflict_id LIMIT 1)"
    " UNION ALL"
    f" ({_COPY.format(t='h')} FROM events h WHERE h.event_id = n.event_id"
    " AND h.node_id = (SELECT node_id FROM coord_node) AND h.region_code IS NULL)"
    " LIMIT 1) x ON true "
    "WHERE n.log_node = $1 AND n.position > $2 AND n.position <= $3 "
    "ORDER BY n.position LIMIT $4"
)
_COSIGN = (
    "INSERT INTO audit_cosignatures (origin, tree_size, cosigner, line) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
)
_REFUSE = (
    "INSERT INTO audit_cosign_refusals (origin, tree_size, reason) "
    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
)

# The hub's own log: what it proves for the regions that witness it.
_LAST_PROVEN = "SELECT max(to_size) FROM audit_consistency WHERE origin = $1"
_LATEST_OWN = "SELECT max(tree_size) FROM audit_checkpoints WHERE origin = $1"
_OWN_AFTER = (
    "SELECT tree_size FROM audit_checkpoints WHERE origin = $1 AND tree_size > $2 "
    "ORDER BY tree_size LIMIT 500"
)
_WITNESSED = (
    "SELECT w.cosigner, (SELECT max(s.tree_size) FROM audit_witness_cosignatures s"
    " WHERE s.origin = $1 AND s.cosigner = w.cosigner) AS last "
    "FROM unnest($2::text[]) AS w(cosigner)"
)
_PROVEN_FROM = (
    "SELECT EXISTS (SELECT 1 FROM audit_consistency WHERE origin = $1 AND from_size = $2)"
)
_STORE_PROOF = (
    "INSERT INTO audit_consistency (origin, from_size, to_size, proof) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
)


class _Wait(Exception):
    """The mirror cannot reach the checkpoint yet: try again later."""


class Cosigner:
    """Mirrors the regions' trees at the hub and cosigns their matching checkpoints."""

    def __init__(
        self,
        connect: Connect,
        signer: Signer,
        *,
        interval: float = 0.5,
        grace: float = 30.0,
        page: int = 5000,
        retry_interval: float = 1.0,
        catch_up_after: float = 5.0,
    ) -> None:
        self._connect = connect
        self._signer = signer
        self._interval = interval
        self._grace = grace
        self._page = page
        self._retry_interval = retry_interval
        self._mirrors: dict[str, RootAccumulator] = {}
        self._proven: int | None = None  # the hub's latest checkpoint proven from its predecessor
        self._asked: set[tuple[int, int]] = set()  # proofs stored for a region's catch-up
        # cosigner -> (its last cosigned hub checkpoint, since when it has been that one)
        self._stuck: dict[str, tuple[int, float]] = {}
        self._catch_up_after = catch_up_after

    async def run(self) -> None:
        """Compete for the cosigner lock and cosign while holding it, until cancelled."""
        await lead_forever(
            self._connect,
            COSIGNER_LOCK_KEY,
            self._lead,
            name="cosigner",
            retry_interval=self._retry_interval,
        )

    async def _lead(self, conn: asyncpg.Connection) -> None:
        self._mirrors.clear()  # another process may have cosigned meanwhile: start afresh
        self._proven = None
        self._asked.clear()
        self._stuck.clear()
        while True:
            await self.step(conn)
            await asyncio.sleep(self._interval)

    async def step(self, conn: asyncpg.Connection) -> None:
        """Check every region's pending checkpoints once, and prove the hub's own."""
        witnesses: list[str] = []
        for row in await conn.fetch(_REGIONS):
            try:
                verifier = Verifier.from_vkey(row["audit_vkey"])
            except NoteError as e:
                log.error("cosigner.bad_region_key", node=row["node_id"], error=str(e))
                continue
            witnesses.append(verifier.name)
            await self._region(conn, row["node_id"], verifier)
        if witnesses:
            await self._prove(conn, witnesses)

    async def _prove(self, conn: asyncpg.Connection, witnesses: list[str]) -> None:
        """Store the consistency proofs the regions need to witness the hub's checkpoints."""
        origin = self._signer.name
        if self._proven is None:
            self._proven = await conn.fetchval(_LAST_PROVEN, origin)
        if self._proven is None:
            # Nothing proven yet (a new federation, or one made before this existed): the
            # chain starts at the latest checkpoint; a region that trusted an older one on
            # first use gets its own proof below.
            self._proven = await conn.fetchval(_LATEST_OWN, origin) or 0
        previous = self._proven
        for row in await conn.fetch(_OWN_AFTER, origin, self._proven):
            size = row["tree_size"]
            if previous and not await self._store_proof(conn, origin, previous, size):
                return
            previous = self._proven = size
        latest = previous
        if not latest:
            return
        # A region stuck below the latest needs a proof from its last cosigned checkpoint:
        # at once when no proof starts there (it trusted an older checkpoint on first use
        # than the one the chain starts at), else when it has not moved for
        # `catch_up_after` seconds (it refused the next one; or its link is down: then at
        # most one row per interval).
        now = time.monotonic()
        for row in await conn.fetch(_WITNESSED, origin, witnesses):
            who, last = row["cosigner"], row["last"]
            if last is None or last >= latest:
                self._stuck.pop(who, None)
                continue
            seen, since = self._stuck.get(who, (last, now))
            if seen != last:
                seen, since = last, now
            self._stuck[who] = (seen, since)
            chained = await conn.fetchval(_PROVEN_FROM, origin, last)
            if chained and now - since < self._catch_up_after:
                continue
            if (last, latest) not in self._asked and await self._store_proof(
                conn, origin, last, latest
            ):
                self._asked.add((last, latest))
                self._stuck[who] = (last, now)  # the next one, if needed, an interval later

    async def _store_proof(self, conn: asyncpg.Connection, origin: str, m: int, n: int) -> bool:
        try:
            proof = await consistency_at(conn, m, n)
        except TreeNotBuilt:
            return False
        await conn.execute(_STORE_PROOF, origin, m, n, proof)
        return True

    async def _region(self, conn: asyncpg.Connection, node: str, verifier: Verifier) -> None:
        origin = verifier.name
        for cp in await conn.fetch(_PENDING, origin, self._signer.name):
            size = cp["tree_size"]
            try:
                checkpoint = verify_checkpoint(cp["note"], [verifier], origin=origin)
            except (NoteError, CheckpointError) as e:
                await self._refuse(conn, origin, size, f"the checkpoint does not verify: {e}")
                continue
            if checkpoint.size != size:
                await self._refuse(conn, origin, size, f"the note says size {checkpoint.size}")
                continue
            try:
                root = await self._mirror_root(conn, node, origin, size, cp["created_at"])
            except _Wait:
                return  # later checkpoints need this one's leaves too
            except _Missing as e:
                await self._refuse(conn, origin, size, str(e))
                return
            if root != checkpoint.root_hash:
                await self._refuse(
                    conn,
                    origin,
                    size,
                    f"the region signed a tree of {size} leaves the hub's mirror of its log "
                    "does not reproduce (history rewritten, or events differ at the hub)",
                )
                continue
            line = cosign_checkpoint(checkpoint.format(), self._signer, int(time.time()))
            await conn.execute(_COSIGN, origin, size, self._signer.name, line)
            log.debug("cosigner.cosigned", origin=origin, tree_size=size)

    async def _mirror_root(
        self, conn: asyncpg.Connection, node: str, origin: str, size: int, signed_at: datetime
    ) -> bytes:
        mirror = self._mirrors.setdefault(origin, RootAccumulator())
        # A checkpoint below the mirror (arrived late): rebuild that prefix once.
        acc = mirror if size >= mirror.size else RootAccumulator()
        while acc.size < size:
            rows = await conn.fetch(_MIRROR_ROWS, node, acc.size, size, self._page)
            for row in rows:
                if row["position"] != acc.size + 1:
                    raise _Wait
                if row["event_id"] is None:
                    age = (datetime.now(UTC) - signed_at).total_seconds()
                    if age < self._grace:
                        raise _Wait
                    raise _Missing(
                        f"the hub does not hold event {row['wanted']}, position "
                        f"{row['position']} of {node}'s log"
                    )
                acc.append(event_leaf(row))
            if not rows:
                raise _Wait
        return acc.root()

    async def _refuse(self, conn: asyncpg.Connection, origin: str, size: int, why: str) -> None:
        await conn.execute(_REFUSE, origin, size, why)
        log.error("federation.cosign_refused", origin=origin, tree_size=size, reason=why)


class _Missing(Exception):
    """The hub lacks an event the region's log holds."""


# -- regions witness the hub ----------------------------------------------

_HUB = (
    "SELECT node_id, audit_vkey FROM federation_nodes "
    "WHERE mode = 'hub' AND audit_vkey IS NOT NULL ORDER BY node_id LIMIT 1"
)
_LAST_WITNESSED = (
    "SELECT c.tree_size, c.note FROM audit_witness_cosignatures s JOIN audit_checkpoints c"
    " ON c.origin = s.origin AND c.tree_size = s.tree_size "
    "WHERE s.origin = $1 AND s.cosigner = $2 ORDER BY s.tree_size DESC LIMIT 1"
)
_HUB_LATEST = (
    "SELECT c.tree_size, c.note FROM audit_checkpoints c WHERE c.origin = $1 "
    "AND NOT EXISTS (SELECT 1 FROM audit_cosign_refusals r WHERE r.origin = c.origin"
    " AND r.tree_size = c.tree_size) ORDER BY c.tree_size DESC LIMIT 1"
)
_HUB_PENDING = (
    "SELECT c.tree_size, c.note, p.proof FROM audit_checkpoints c "
    "LEFT JOIN audit_consistency p ON p.origin = c.origin AND p.from_size = $2"
    " AND p.to_size = c.tree_size "
    "WHERE c.origin = $1 AND c.tree_size > $2 AND NOT EXISTS (SELECT 1 FROM"
    " audit_cosign_refusals r WHERE r.origin = c.origin AND r.tree_size = c.tree_size) "
    # Those with a proof from ours first: a catch-up proof to the hub's latest must not
    # sit beyond the page behind checkpoints that will never get one.
    "ORDER BY p.proof IS NULL, c.tree_size LIMIT 200"
)

_WITNESS_COSIGN = (
    "INSERT INTO audit_witness_cosignatures (origin, tree_size, cosigner, line) "
    "VALUES ($1, $2, $3, $4)"
)


class HubWitness:
    """A regional node's witness of the hub's log: cosigns hub checkpoints that extend,
    by a verified RFC 9162 consistency proof, the last one it cosigned.

    What its cosignature states (docs/audit-format.md §7.3): the hub signed this
    checkpoint with the key `add-region` recorded for it, and its tree is an append-only
    extension of every hub checkpoint this region cosigned before (the first one is
    trusted on first use). It does not state that the region holds the hub's leaves:
    most are other regions' events, which it never receives.

    A hub checkpoint whose signature does not verify, or whose proof from the last
    cosigned one does not verify (a rewritten or forked hub history), is refused: a row
    in `audit_cosign_refusals`, the error log `federation.cosign_refused`, and the gauge
    `coord_federation_cosign_refusals{origin=<hub>}`. A checkpoint with no proof yet is
    waited for; one that a later checkpoint's proof leapfrogs stays uncosigned.
    """

    def __init__(
        self,
        connect: Connect,
        signer: Signer,
        *,
        interval: float = 0.5,
        retry_interval: float = 1.0,
    ) -> None:
        self._connect = connect
        self._signer = signer
        self._interval = interval
        self._retry_interval = retry_interval

    async def run(self) -> None:
        """Compete for the witness lock and witness while holding it, until cancelled."""
        await lead_forever(
            self._connect,
            WITNESS_LOCK_KEY,
            self._lead,
            name="hub-witness",
            retry_interval=self._retry_interval,
        )

    async def _lead(self, conn: asyncpg.Connection) -> None:
        while True:
            await self.step(conn)
            await asyncio.sleep(self._interval)

    async def step(self, conn: asyncpg.Connection) -> None:
        """Witness the hub's pending checkpoints once."""
        row = await conn.fetchrow(_HUB)
        if row is None:
            return  # not federated yet, or the hub's key has not arrived
        try:
            verifier = Verifier.from_vkey(row["audit_vkey"])
        except NoteError as e:
            log.error("witness.bad_hub_key", node=row["node_id"], error=str(e))
            return
        origin = verifier.name
        last = await conn.fetchrow(_LAST_WITNESSED, origin, self._signer.name)
        if last is None:
            first = await conn.fetchrow(_HUB_LATEST, origin)
            if first is None:
                return
            checkpoint = self._verified(first, verifier)
            if checkpoint is None:
                await self._refuse(
                    conn, origin, first["tree_size"], "the checkpoint does not verify"
                )
                return
            await self._cosign(conn, checkpoint)  # trusted on first use
            return
        try:
            previous = verify_checkpoint(last["note"], [verifier], origin=origin)
        except (NoteError, CheckpointError) as e:
            # The hub's key changed under a checkpoint this region cosigned: an operator's
            # matter (re-keying a log starts a new origin), never cosigned through.
            log.error("witness.cosigned_checkpoint_unverifiable", origin=origin, error=str(e))
            return
        while True:
            progressed = False
            for cp in await conn.fetch(_HUB_PENDING, origin, previous.size):
                size = cp["tree_size"]
                checkpoint = self._verified(cp, verifier)
                if checkpoint is None:
                    await self._refuse(conn, origin, size, "the checkpoint does not verify")
                    continue
                if cp["proof"] is None:
                    continue  # the hub has not proven it from ours yet: wait, or leapfrog
                proof = [bytes(h) for h in cp["proof"]]
                if not verify_consistency(
                    previous.size, size, proof, previous.root_hash, checkpoint.root_hash
                ):
                    await self._refuse(
                        conn,
                        origin,
                        size,
                        f"not consistent with the hub checkpoint of size {previous.size} "
                        "this region cosigned (the hub rewrote or forked its history)",
                    )
                    continue
                await self._cosign(conn, checkpoint)
                previous, progressed = checkpoint, True
                break  # the next ones need proofs from this one
            if not progressed:
                return

    @staticmethod
    def _verified(cp: asyncpg.Record, verifier: Verifier) -> Checkpoint | None:
        try:
            checkpoint = verify_checkpoint(cp["note"], [verifier], origin=verifier.name)
        except (NoteError, CheckpointError):
            return None
        return checkpoint if checkpoint.size == cp["tree_size"] else None

    async def _cosign(self, conn: asyncpg.Connection, checkpoint: Checkpoint) -> None:
        line = cosign_checkpoint(checkpoint.format(), self._signer, int(time.time()))
        await conn.execute(
            _WITNESS_COSIGN, checkpoint.origin, checkpoint.size, self._signer.name, line
        )
        log.debug("witness.cosigned", origin=checkpoint.origin, tree_size=checkpoint.size)

    async def _refuse(self, conn: asyncpg.Connection, origin: str, size: int, why: str) -> None:
        await conn.execute(_REFUSE, origin, size, why)
        log.error("federation.cosign_refused", origin=origin, tree_size=size, reason=why)
