"""Cost of the verifiable log: maintaining the Merkle tree per appended event, and proofs.

`python -m bench.audit_costs [--events N]` loads N events into a fresh database (a
PostgreSQL at COORD_BENCH_DATABASE_URL / COORD_TEST_DATABASE_URL, else an embedded one in
a temporary folder), then times, on one connection:

* leaf hashing alone (canonical encoding + SHA-256), per event;
* the tree builder catching up over the whole log (read, hash, insert nodes), per event;
* inclusion and consistency proofs at the full size (one query each), per proof;
* the export's offline verification, per event;
* the node table's size per event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from bench.common import HEARING_SCHEDULED
from coord import db
from events.audit.audit_log import _EVENTS_AFTER, AuditLog, TreeBuilder, event_leaf
from events.audit.audit_verify import verify_export
from events.audit.merkle import MerkleAppender, inclusion_proof_nodes
from events.audit.notes import Checkpoint, generate_signer
from events.store.log_head import LogHead


def _db_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path="/" + name))


async def _load(conn: asyncpg.Connection, n: int) -> None:
    data = msgspec.json.encode(HEARING_SCHEDULED)
    meta = b'{"actor": {"name": "bench", "role": "regional"}, "request_id": "r"}'
    per_call = 500
    for start in range(0, n, per_call):
        k = min(per_call, n - start)
        await conn.fetchrow(
            "SELECT * FROM coord_append($1, -1, $2, $3, $4, $5, $6, '35.71')",
            f"hearing-{start // per_call}",
            [uuid.uuid4() for _ in range(k)],
            ["HearingScheduled"] * k,
            [1] * k,
            [data] * k,
            [meta] * k,
        )
    while await conn.fetch("SELECT * FROM coord_sequence(50000)"):
        pass


def _stats(samples: list[float]) -> str:
    s = sorted(samples)
    return (
        f"mean {statistics.mean(s) * 1e3:.3f} ms, p50 {s[len(s) // 2] * 1e3:.3f} ms, "
        f"p99 {s[int(len(s) * 0.99)] * 1e3:.3f} ms"
    )


async def run(server: str, n: int) -> None:
    """Load `n` events into a fresh database on `server` and print the figures."""
    name = f"coord_audit_bench_{os.getpid()}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _db_url(server, name)
    try:
        conn = await db.connect(dsn)
        await db.migrate(conn)
        t = time.perf_counter()
        await _load(conn, n)
        print(f"loaded {n} events in {time.perf_counter() - t:.1f} s")

        rows = await conn.fetch(_EVENTS_AFTER, 0, 5000)
        t = time.perf_counter()
        leaves = [event_leaf(r) for r in rows]
        hash_cost = (time.perf_counter() - t) / len(rows)
        t = time.perf_counter()
        appender = MerkleAppender()
        for h in leaves:
            appender.append(h)
        node_cost = (time.perf_counter() - t) / len(rows)
        print(f"leaf encoding + hash (CPU only):   {hash_cost * 1e6:.1f} us/event")
        print(f"interior nodes in memory (CPU):    {node_cost * 1e6:.2f} us/event")

        signer = generate_signer("coord.bench/audit")

        async def connect() -> asyncpg.Connection:
            return await db.connect(dsn)

        builder = TreeBuilder(connect, LogHead(connect), signer, batch_size=2000)
        appender = MerkleAppender()
        t = time.perf_counter()
        while await builder.step(conn, appender):
            pass
        build = time.perf_counter() - t
        print(
            f"tree builder catch-up (read, hash, insert; batches of 2000): "
            f"{build:.2f} s = {build / n * 1e6:.1f} us/event, {n / build:,.0f} events/s"
        )
        nodes = await conn.fetchval("SELECT count(*) FROM merkle_nodes")
        size = await conn.fetchval("SELECT pg_total_relation_size('merkle_nodes')")
        print(f"merkle_nodes: {nodes} rows ({nodes / n:.2f}/event), {size / n:.0f} bytes/event")
        t = time.perf_counter()
        await builder.publish(conn, appender.size, appender.root())
        print(f"sign + store one checkpoint:       {(time.perf_counter() - t) * 1e3:.2f} ms")

        # Small-batch maintenance, as under live traffic: one event per step.
        extra = 200
        await _load(conn, extra)
        t = time.perf_counter()
        builder._batch_size = 1
        for _ in range(extra):
            await builder.step(conn, appender)
        live = (time.perf_counter() - t) / extra
        print(f"tree builder, one event per batch:  {live * 1e3:.3f} ms/event (round trips)")
        total = appender.size

        pool = await db.create_pool(dsn, min_size=1, max_size=2)
        audit = AuditLog(pool, signer)
        rng = random.Random(1)
        samples, reads = [], []
        for _ in range(1000):
            i = rng.randrange(total)
            reads.append(len(inclusion_proof_nodes(i, total)) + 1)
            t = time.perf_counter()
            await audit.inclusion(i, total)
            samples.append(time.perf_counter() - t)
        print(
            f"inclusion proof at size {total}: {_stats(samples)}; "
            f"{statistics.mean(reads):.1f} nodes read in one query"
        )
        samples = []
        for _ in range(1000):
            m = rng.randint(1, total)
            t = time.perf_counter()
            await audit.consistency(m, total)
            samples.append(time.perf_counter() - t)
        print(f"consistency proof to size {total}: {_stats(samples)}")
        plan = await conn.fetch(
            "EXPLAIN SELECT n.level, n.idx, n.hash FROM unnest($1::smallint[], $2::bigint[]) "
            "AS u(level, idx) JOIN merkle_nodes n ON n.level = u.level AND n.idx = u.idx",
            [0, 1],
            [5, 7],
        )
        print("proof query plan: " + " / ".join(r[0].strip() for r in plan[:3]))

        lines: list[bytes] = []
        t = time.perf_counter()
        async for page in audit.export(1, total, page_size=2000):
            lines.extend(msgspec.json.encode(x) for x in page)
        export = time.perf_counter() - t
        print(f"export (server side, keyset pages): {export / total * 1e6:.1f} us/event")
        t = time.perf_counter()
        report = verify_export(lines, Checkpoint(signer.name, total, appender.root()))
        verify = time.perf_counter() - t
        assert report.ok, report.notes
        print(f"offline verify:                    {verify / total * 1e6:.1f} us/event")
        await pool.close()
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main(argv: Any = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    server = os.environ.get("COORD_BENCH_DATABASE_URL") or os.environ.get("COORD_TEST_DATABASE_URL")
    if server:
        asyncio.run(run(server, args.events))
        return
    from coord.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="coord-audit-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", delete_on_stop=True)
        url = pg.start()
        try:
            asyncio.run(run(url, args.events))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
