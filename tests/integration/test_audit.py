"""The Merkle tree builder, checkpoints and proofs against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from coord import db
from events.audit import merkle
from events.audit.audit_log import AuditLog, TreeBuilder, event_leaf, root_at
from events.audit.notes import Signer, generate_signer, verify_checkpoint
from events.store.records import NewEvent
from events.store.store import EventStore
from tests.ids import sid

SIGNER = generate_signer("coord.test/audit")


def ev(**data: Any) -> NewEvent:
    """A new event with a fresh id."""
    return NewEvent(
        id=uuid.uuid4(),
        type="Noted",
        data=msgspec.json.encode(data or {"n": 1}),
        metadata=b'{"actor": {"name": "tester"}}',
    )


@contextlib.asynccontextmanager
async def running_builder(
    store: EventStore, dsn: str, signer: Signer = SIGNER, **kw: Any
) -> AsyncIterator[TreeBuilder]:
    """A TreeBuilder following `store`'s log as a background task."""

    async def connect() -> asyncpg.Connection:
        return await db.connect(dsn)

    kw.setdefault("checkpoint_interval", 0.0)
    kw.setdefault("retry_interval", 0.05)
    builder = TreeBuilder(connect, store.head, signer, **kw)
    task = asyncio.create_task(builder.run())
    try:
        yield builder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for_tree(audit: AuditLog, size: int, *, signed: bool = True) -> None:
    """Wait until the stored tree (and, if `signed`, a checkpoint) reaches `size`."""
    for _ in range(500):
        head = await audit.checkpoint()
        if await audit.tree_size() >= size and (
            not signed or (head is not None and head.tree_size >= size)
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tree did not reach {size}")


async def log_leaves(pool: asyncpg.Pool) -> list[bytes]:
    """Leaf hashes recomputed from the log, in position order."""
    rows = await pool.fetch(
        "SELECT l.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, "
        "e.data, e.metadata, e.recorded_at, e.region_code "
        "FROM log l JOIN events e ON e.seq = l.seq ORDER BY l.position"
    )
    return [event_leaf(r) for r in rows]


async def append_many(store: EventStore, n: int, stream: str = sid("issue", "a")) -> None:
    """Append `n` events in appends of varying size."""
    rng = random.Random(n)
    done = 0
    while done < n:
        k = min(n - done, rng.randint(1, 7))
        await store.append(stream, [ev(i=done + j) for j in range(k)], "any")
        done += k


async def test_tree_follows_the_log(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """The stored tree's root equals the RFC 9162 root of the log's recomputed leaves."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await append_many(store, 37)
        await wait_for_tree(audit, 37)
        leaves = await log_leaves(pool)
        async with pool.acquire() as conn:
            assert await root_at(conn, 37) == merkle.root(leaves)
        nodes = await pool.fetchval("SELECT count(*) FROM merkle_nodes")
        assert nodes == 2 * 37 - bin(37).count("1")
        head = await audit.checkpoint()
        assert head is not None and head.tree_size == 37
        cp = verify_checkpoint(head.note, [SIGNER.verifier], origin=SIGNER.name)
        assert (cp.size, cp.root_hash) == (37, merkle.root(leaves))


async def test_tree_builder_records_its_own_log_as_home_positions(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """node_log holds exactly the built leaves (position -> event id), for this node."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url, batch_size=5):
        await append_many(store, 23)
        await wait_for_tree(audit, 23)
    rows = await pool.fetch("SELECT log_node, position, event_id FROM node_log ORDER BY position")
    log = await pool.fetch(
        "SELECT l.position, e.event_id FROM log l JOIN events e ON e.seq = l.seq"
        " ORDER BY l.position"
    )
    node = await pool.fetchval("SELECT coalesce((SELECT node_id FROM coord_node), 'local')")
    assert [(r["position"], r["event_id"]) for r in rows] == [tuple(r) for r in log]
    assert {r["log_node"] for r in rows} == {node}
    with pytest.raises(asyncpg.PostgresError):  # insert-only, like the tree
        await pool.execute("UPDATE node_log SET position = position + 100")


async def test_empty_log_gets_a_checkpoint(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """A fresh log publishes the empty tree head (size 0, root SHA-256 of nothing)."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await wait_for_tree(audit, 0)
    head = await audit.checkpoint()
    assert head is not None and (head.tree_size, head.root_hash) == (0, merkle.EMPTY_ROOT)


async def test_proofs_for_every_size_up_to_64(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Inclusion and consistency proofs from storage verify for every size 1..64."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await append_many(store, 64)
        await wait_for_tree(audit, 64, signed=False)
    leaves = await log_leaves(pool)
    roots = [merkle.root(leaves[:n]) for n in range(65)]
    for n in range(1, 65):
        for i in range(n):
            leaf, path = await audit.inclusion(i, n)
            assert leaf == leaves[i]
            assert merkle.verify_inclusion(leaf, i, n, path, roots[n]), (i, n)
        for m in range(n + 1):
            proof = await audit.consistency(m, n)
            assert merkle.verify_consistency(m, n, proof, roots[m], roots[n]), (m, n)


async def test_proofs_at_random_larger_sizes(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Proofs verify at random sizes and indices of a larger tree, reading O(log n) nodes."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url, batch_size=97):
        for k in range(6):
            await store.append(sid("issue", f"{k}"), [ev(i=i) for i in range(200)], 0)
        await wait_for_tree(audit, 1200, signed=False)
    leaves = await log_leaves(pool)
    acc = merkle.RootAccumulator()
    roots = [acc.root()]
    for h in leaves:
        acc.append(h)
        roots.append(acc.root())
    rng = random.Random(5)
    for _ in range(60):
        n = rng.randint(65, 1200)
        i = rng.randrange(n)
        leaf, path = await audit.inclusion(i, n)
        assert len(path) <= (n - 1).bit_length()
        assert merkle.verify_inclusion(leaf, i, n, path, roots[n])
        m = rng.randint(1, n)
        proof = await audit.consistency(m, n)
        assert merkle.verify_consistency(m, n, proof, roots[m], roots[n])


async def test_builder_resumes_from_the_stored_tree(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """A restarted builder continues where the table ends; old checkpoints stay consistent."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await append_many(store, 21)
        await wait_for_tree(audit, 21)
    old = await audit.checkpoint()
    await append_many(store, 13, sid("issue", "b"))
    async with running_builder(store, database_url):
        await wait_for_tree(audit, 34)
    new = await audit.checkpoint()
    assert old is not None and new is not None and new.tree_size == 34
    assert new.root_hash == merkle.root(await log_leaves(pool))
    proof = await audit.consistency(old.tree_size, new.tree_size)
    assert merkle.verify_consistency(21, 34, proof, old.root_hash, new.root_hash)
    sizes = [r[0] for r in await pool.fetch("SELECT tree_size FROM audit_checkpoints")]
    assert 21 in sizes and 34 in sizes  # every checkpoint is kept


async def test_only_one_builder_leads(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Two builders on one database: one leads, the tree is built once."""
    audit = AuditLog(pool, SIGNER)
    async with (
        running_builder(store, database_url) as a,
        running_builder(store, database_url) as b,
    ):
        await append_many(store, 30)
        await wait_for_tree(audit, 30)
        assert [a.is_leader, b.is_leader].count(True) == 1
    assert await pool.fetchval("SELECT count(*) FROM merkle_nodes WHERE level = 0") == 30


async def test_checkpoints_are_published_while_events_arrive(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """With a checkpoint interval, heads appear every interval while appends go on."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url, checkpoint_interval=0.2):
        for i in range(8):
            await store.append(sid("issue", "c"), [ev(i=i)], "any")
            await asyncio.sleep(0.1)
        await wait_for_tree(audit, 8)
    count = await pool.fetchval("SELECT count(*) FROM audit_checkpoints")
    assert 3 <= count <= 8


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE merkle_nodes SET hash = sha256(hash)",
        "DELETE FROM merkle_nodes",
        "TRUNCATE merkle_nodes",
        "UPDATE audit_checkpoints SET note = ''",
        "DELETE FROM audit_checkpoints",
    ],
)
async def test_audit_tables_are_insert_only(
    store: EventStore, pool: asyncpg.Pool, database_url: str, statement: str
) -> None:
    """The tree and the checkpoints refuse UPDATE, DELETE and TRUNCATE."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await store.append(sid("issue", "i"), [ev()], 0)
        await wait_for_tree(audit, 1)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
        await pool.execute(statement)
