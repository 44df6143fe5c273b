"""Issue 13, item 5: memory of the log must not outlive data the database lost.

A point-in-time restore (or a failover to an asynchronous standby, or a crash with
unsafe settings) takes the last events away while coord runs. The test does what
such a restore does to the tables (with triggers off, as only a superuser can), then
cuts coord's connections so that every part reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec

from coord import db
from events.audit.audit_log import AuditLog, TreeBuilder
from events.audit.notes import generate_signer
from events.store.log_reader import LogReader
from events.store.records import NewEvent
from events.store.store import EventStore

SIGNER = generate_signer("coord.test/integrity")


def ev(i: int) -> NewEvent:
    """A new event with a fresh id."""
    return NewEvent(
        id=uuid.uuid4(),
        type="Noted",
        data=msgspec.json.encode({"i": i}),
        metadata=b'{"actor": {"name": "tester"}}',
    )


@contextlib.asynccontextmanager
async def running_builder(store: EventStore, dsn: str) -> AsyncIterator[TreeBuilder]:
    """A TreeBuilder following `store`'s log as a background task."""

    async def connect() -> asyncpg.Connection:
        return await db.connect(dsn)

    builder = TreeBuilder(connect, store.head, SIGNER, checkpoint_interval=0.0, retry_interval=0.05)
    task = asyncio.create_task(builder.run())
    try:
        yield builder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: object, what: str, timeout: float = 10.0) -> None:
    """Poll `check()` (sync or async) until true."""
    async with asyncio.timeout(timeout):
        while True:
            got = check()  # type: ignore[operator]
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            await asyncio.sleep(0.02)


async def lose_tail(pg: asyncpg.Connection, keep: int) -> None:
    """Remove every event, leaf and checkpoint after position `keep`, as a restore would."""
    async with pg.transaction():
        await pg.execute("SET LOCAL session_replication_role = replica")
        seqs = await pg.fetch("SELECT seq FROM log WHERE position > $1", keep)
        await pg.execute("DELETE FROM log WHERE position > $1", keep)
        await pg.execute("DELETE FROM events WHERE seq = ANY($1::bigint[])", [r[0] for r in seqs])
        await pg.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx >= $1", keep)
        await pg.execute("DELETE FROM merkle_nodes WHERE level > 0")
        await pg.execute("DELETE FROM audit_checkpoints WHERE tree_size > $1", keep)
    # Every coord connection drops, as it would when the server restarts.
    await pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


async def test_lost_tail_stops_signing_and_drops_caches(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """After losing positions 16..20 coord reports them, forgets them, and signs no more."""
    stream = f"issue-{uuid.uuid4()}"
    audit = AuditLog(pool, SIGNER)
    reader = LogReader(lambda: db.connect(database_url), integrity=store.head.integrity)
    async with running_builder(store, database_url):
        for i in range(20):
            await store.append(stream, [ev(i)], "any")
        await until(lambda: store.head.position == 20, "head at 20")
        assert len(await reader.read(0, 20)) == 20
        await until(_signed_at(audit, 20), "signed at 20")
        assert store.head.integrity.lost is None

        pg = await asyncpg.connect(database_url)
        try:
            await lose_tail(pg, keep=15)
            await until(lambda: store.head.integrity.lost is not None, "loss reported")
            details = store.head.integrity.details
            assert details["lost_positions"] == "16..20", details
            assert details["database_head"] == 15
            # The reader's cache of 1..20 is gone: it reads the database again.
            assert reader._rows == []
            # New events take positions 16.. again; nothing is signed over them.
            for i in range(5):
                await store.append(stream, [ev(100 + i)], "any")
            await asyncio.sleep(1.0)
            latest = await audit.checkpoint()
            assert latest is not None and latest.tree_size <= 15
            assert await audit.tree_size() == 15
        finally:
            await pg.close()
    await reader.close()


def _signed_at(audit: AuditLog, size: int) -> object:
    async def check() -> bool:
        head = await audit.checkpoint()
        return head is not None and head.tree_size >= size

    return check


async def test_tree_builder_refuses_a_rewritten_last_leaf(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """A fresh process (empty memory) still finds the event at the signed size changed."""
    stream = f"issue-{uuid.uuid4()}"
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        for i in range(8):
            await store.append(stream, [ev(i)], "any")
        await until(_signed_at(audit, 8), "signed at 8")
    pg = await asyncpg.connect(database_url)
    try:
        async with pg.transaction():
            await pg.execute("SET LOCAL session_replication_role = replica")
            await pg.execute(
                "UPDATE events SET data = '{\"i\": -1}' "
                "WHERE seq = (SELECT seq FROM log WHERE position = 8)"
            )
    finally:
        await pg.close()
    # A new builder (a restarted process) takes the lead and checks before signing.
    store.head.integrity.lost = None
    async with running_builder(store, database_url) as builder:
        await until(lambda: store.head.integrity.lost is not None, "loss reported")
        assert store.head.integrity.details["position"] == 8
        assert builder._signed is None
