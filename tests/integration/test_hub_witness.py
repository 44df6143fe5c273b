"""Regions witness the hub's log (coord/cosigner.py): the hub proves its checkpoint
sequence (`Cosigner._prove`), a region cosigns what its proofs show append-only
(`HubWitness`) and refuses forks and forged notes. One database plays each side here;
tests/federation runs the real thing over replication."""

from __future__ import annotations

import itertools

import asyncpg

from coord import db
from coord.cosigner import Cosigner, HubWitness
from events.audit import merkle
from events.audit.audit_log import AuditLog
from events.audit.notes import (
    Checkpoint,
    CosignatureVerifier,
    Signer,
    generate_signer,
    sign_checkpoint,
    verify_checkpoint,
)
from events.store.store import EventStore
from tests.ids import sid
from tests.integration.test_audit import SIGNER, append_many, running_builder, wait_for_tree

HUB = generate_signer("coord.test/hub")
REGION = generate_signer("coord.test/jatim")


def _tree(tag: bytes, n: int) -> list[bytes]:
    return [merkle.leaf_hash(tag + b"%d" % i) for i in range(n)]


def _node(leaves: list[bytes]) -> merkle.GetNode:
    return lambda level, idx: merkle.root(leaves[idx << level : (idx + 1) << level])


async def _checkpoint(pool: asyncpg.Pool, leaves: list[bytes], signer: Signer = HUB) -> int:
    size = len(leaves)
    root = merkle.root(leaves)
    note = sign_checkpoint(Checkpoint(HUB.name, size, root), signer)
    await pool.execute(
        "INSERT INTO audit_checkpoints (origin, tree_size, root_hash, note)"
        " VALUES ($1, $2, $3, $4)",
        HUB.name,
        size,
        root,
        note,
    )
    return size


async def _proof(pool: asyncpg.Pool, leaves: list[bytes], m: int, n: int) -> None:
    await pool.execute(
        "INSERT INTO audit_consistency (origin, from_size, to_size, proof) VALUES ($1, $2, $3, $4)",
        HUB.name,
        m,
        n,
        merkle.consistency_proof(m, n, _node(leaves)),
    )


async def _witnessed(pool: asyncpg.Pool) -> list[int]:
    rows = await pool.fetch(
        "SELECT tree_size, line FROM audit_witness_cosignatures WHERE origin = $1"
        " AND cosigner = $2 ORDER BY tree_size",
        HUB.name,
        REGION.name,
    )
    verifier = CosignatureVerifier.of(REGION)
    for r in rows:
        note = await pool.fetchval(
            "SELECT note FROM audit_checkpoints WHERE origin = $1 AND tree_size = $2",
            HUB.name,
            r["tree_size"],
        )
        checkpoint = verify_checkpoint(note, [HUB.verifier], origin=HUB.name)
        assert verifier.verify(checkpoint.format(), r["line"]).name == REGION.name
    return [r["tree_size"] for r in rows]


async def test_a_region_cosigns_the_hubs_append_only_sequence_and_refuses_a_fork(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Trust on first use of the latest, then only checkpoints proven consistent with the
    last cosigned one; a forked history and a note under another key are refused (and
    kept refused); a later genuine checkpoint proven from the last cosigned one (the
    hub's catch-up proof) is cosigned, leapfrogging one proven only from the fork."""
    await pool.execute(
        "INSERT INTO federation_nodes (node_id, mode, regions, audit_vkey)"
        " VALUES ('hub', 'hub', '{}', $1)",
        HUB.vkey,
    )
    witness = HubWitness(lambda: db.connect(database_url), REGION)
    real, fork = _tree(b"real", 40), _tree(b"real", 10) + _tree(b"fork", 30)
    await _checkpoint(pool, real[:5])
    await _checkpoint(pool, real[:8])
    async with pool.acquire() as conn:
        await witness.step(conn)
        assert await _witnessed(pool) == [8]  # the latest, on first use
        await _checkpoint(pool, real[:13])
        await witness.step(conn)
        assert await _witnessed(pool) == [8]  # no proof yet: waits
        await _proof(pool, real, 8, 13)
        await witness.step(conn)
        assert await _witnessed(pool) == [8, 13]

        # A fork after leaf 10, with a proof that is valid for the forked tree.
        await _checkpoint(pool, fork[:20])
        await _proof(pool, fork, 13, 20)
        await _checkpoint(pool, real[:21], generate_signer(HUB.name))  # another key
        await _proof(pool, real, 13, 21)
        await witness.step(conn)
        refused = dict(
            await pool.fetch(
                "SELECT tree_size, reason FROM audit_cosign_refusals WHERE origin = $1", HUB.name
            )
        )
        assert "not consistent" in refused[20] and "does not verify" in refused[21]
        assert await _witnessed(pool) == [8, 13]

        # The hub goes on from the fork's size; a proof from 20 does not help this region.
        await _checkpoint(pool, real[:25])
        await _proof(pool, real, 20, 25)
        await witness.step(conn)
        assert await _witnessed(pool) == [8, 13]
        await _proof(pool, real, 13, 25)  # the hub's catch-up proof
        await witness.step(conn)
        assert await _witnessed(pool) == [8, 13, 25]
        assert len(refused) == 2


async def test_the_hub_proves_each_checkpoint_and_a_stuck_regions_catch_up(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """The hub's cosigner stores a consistency proof from each of its checkpoints'
    predecessors, and one from a region's last cosigned checkpoint to its latest when no
    proof starts there; each verifies against the stored roots."""
    await pool.execute(
        "INSERT INTO federation_nodes (node_id, mode, regions, audit_vkey)"
        " VALUES ('jatim', 'regional', '{35}', $1)",
        REGION.vkey,
    )
    audit = AuditLog(pool, SIGNER)
    cosigner = Cosigner(lambda: db.connect(database_url), SIGNER, catch_up_after=3600)

    async def proofs() -> list[asyncpg.Record]:
        return await pool.fetch(
            "SELECT from_size, to_size, proof FROM audit_consistency ORDER BY from_size, to_size"
        )

    async def root(size: int) -> bytes:
        return bytes(
            await pool.fetchval(
                "SELECT root_hash FROM audit_checkpoints WHERE origin = $1 AND tree_size = $2",
                SIGNER.name,
                size,
            )
        )

    async with running_builder(store, database_url), pool.acquire() as conn:
        # Two checkpoints before the chain starts, whatever the builder batches together
        # (on a busy machine it may sign nine appends as one): the older one is a region's.
        await append_many(store, 4)
        await wait_for_tree(audit, 4)
        await append_many(store, 5, sid("issue", "c"))
        await wait_for_tree(audit, 9)
        await cosigner.step(conn)
        assert await proofs() == []  # the chain starts at the latest checkpoint
        start = await pool.fetchval(
            "SELECT max(tree_size) FROM audit_checkpoints WHERE origin = $1", SIGNER.name
        )
        await append_many(store, 20, sid("issue", "b"))
        await wait_for_tree(audit, 29)
        await cosigner.step(conn)
        sizes = [
            r[0]
            for r in await pool.fetch(
                "SELECT tree_size FROM audit_checkpoints WHERE origin = $1 AND tree_size >= $2"
                " ORDER BY tree_size",
                SIGNER.name,
                start,
            )
        ]
        chain = [(r["from_size"], r["to_size"]) for r in await proofs()]
        assert chain == list(itertools.pairwise(sizes)) and chain
        # A region that trusted an older checkpoint (no proof starts there) gets one at once.
        first = await pool.fetchval(
            "SELECT min(tree_size) FROM audit_checkpoints WHERE origin = $1 AND tree_size > 0",
            SIGNER.name,
        )
        assert first < start
        await pool.execute(
            "INSERT INTO audit_witness_cosignatures (origin, tree_size, cosigner, line)"
            " VALUES ($1, $2, $3, 'x')",
            SIGNER.name,
            first,
            REGION.name,
        )
        await cosigner.step(conn)
        rows = await proofs()
        assert (first, sizes[-1]) in [(r["from_size"], r["to_size"]) for r in rows]
        for r in rows:
            m, n = r["from_size"], r["to_size"]
            proof = [bytes(h) for h in r["proof"]]
            assert merkle.verify_consistency(m, n, proof, await root(m), await root(n)), (m, n)
