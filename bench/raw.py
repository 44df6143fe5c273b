"""The raw PostgreSQL limit: asyncpg straight into a table shaped like coord's `events`.

    python -m bench.raw single --dsn DSN --connections 16 --seconds 5
    python -m bench.raw batch  --dsn DSN --connections 16 --seconds 5 [--batch 100]
    python -m bench.raw read   --dsn DSN --events 100000 [--limit 1000]

`raw.events` is `CREATE TABLE ... (LIKE public.events INCLUDING ALL)`: the same columns,
identity, generated column, constraints and indexes as coord's table, without coord's
`pending` row, sequencer, HTTP or validation. Single events are one autocommit INSERT
each (one round trip, one transaction); batches are one `executemany` (atomic, pipelined).
With `--prefill` the table starts as a copy of coord's `events`, so both write into
indexes of the same size; event ids come from coord's generator (`events.domain.ids`, time-ordered
UUIDv7), so both insert the same keys into the unique index. `read` copies coord's log in
position order into `raw.feed` and pages through it
(`WHERE seq > $1 ORDER BY seq LIMIT 1000`), decoding `data` and `metadata` with msgspec.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import asyncpg
import msgspec

from bench.common import (
    HEARING_SCHEDULED,
    STATEMENT_RECORDED,
    emit,
    ready,
    summary,
    use_uvloop,
)
from events.domain.ids import new_event_ids

_INSERT = (
    "INSERT INTO raw.events (event_id, stream_id, version, type, data, metadata, region_code) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_COLUMNS = "event_id, stream_id, version, type, schema_version, data, metadata, region_code"


async def _fresh_table(dsn: str, name: str, *, prefill: bool = False) -> None:
    """`raw.<name>` shaped like coord's `events`; with `prefill`, holding the same rows."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        await conn.execute(f"DROP TABLE IF EXISTS raw.{name}")
        await conn.execute(f"CREATE TABLE raw.{name} (LIKE public.events INCLUDING ALL)")
        if prefill:
            # As big as coord's table, so both insert into indexes of the same size.
            await conn.execute(
                f"INSERT INTO raw.{name} ({_COLUMNS}) SELECT {_COLUMNS} FROM public.events"
            )
            await conn.execute(f"VACUUM ANALYZE raw.{name}")
    finally:
        await conn.close()


async def _timed_workers(
    dsn: str, connections: int, seconds: float, warmup: float, one: Any, per_call: int
) -> dict[str, Any]:
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    latencies: list[float] = []
    calls = 0
    ready()
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def worker(conn: asyncpg.Connection) -> None:
        nonlocal calls
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            await one(conn)
            if t0 >= measure_from:
                latencies.append(time.perf_counter() - t0)
                calls += 1

    cpu0 = time.process_time()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    elapsed = time.perf_counter() - measure_from
    return summary(
        calls * per_call,
        elapsed,
        latencies,
        connections=connections,
        batch=per_call,
        client_cpu_s=round(time.process_time() - cpu0, 2),
    )


async def single(args: argparse.Namespace) -> dict[str, Any]:
    await _fresh_table(args.dsn, "events", prefill=args.prefill)
    data = msgspec.json.encode(HEARING_SCHEDULED).decode()

    async def one(conn: asyncpg.Connection) -> None:
        meta = msgspec.json.encode({"request_id": uuid.uuid4().hex}).decode()
        await conn.execute(
            _INSERT,
            new_event_ids(1)[0],
            f"hearing-{uuid.uuid4()}",
            1,
            "HearingScheduled",
            data,
            meta,
            "35.71",
        )

    return await _timed_workers(args.dsn, args.connections, args.seconds, args.warmup, one, 1)


async def batch(args: argparse.Namespace) -> dict[str, Any]:
    await _fresh_table(args.dsn, "events", prefill=args.prefill)
    first = msgspec.json.encode(HEARING_SCHEDULED).decode()
    rest = msgspec.json.encode(STATEMENT_RECORDED).decode()

    async def one(conn: asyncpg.Connection) -> None:
        stream = f"hearing-{uuid.uuid4()}"
        meta = msgspec.json.encode({"request_id": uuid.uuid4().hex}).decode()
        ids = new_event_ids(args.batch)
        rows = [
            (
                ids[v - 1],
                stream,
                v,
                "HearingScheduled" if v == 1 else "StatementRecorded",
                first if v == 1 else rest,
                meta,
                "35.71",
            )
            for v in range(1, args.batch + 1)
        ]
        await conn.executemany(_INSERT, rows)

    return await _timed_workers(
        args.dsn, args.connections, args.seconds, args.warmup, one, args.batch
    )


async def read(args: argparse.Namespace) -> dict[str, Any]:
    """Page through a flat copy of coord's log (and, for reference, coord's own join)."""
    await _fresh_table(args.dsn, "feed")
    conn = await asyncpg.connect(args.dsn)
    try:
        await conn.execute(
            f"INSERT INTO raw.feed ({_COLUMNS}) SELECT {_COLUMNS.replace(', ', ', e.')} "
            "FROM log l JOIN events e ON e.seq = l.seq ORDER BY l.position LIMIT $1",
            args.events,
        )
        await conn.execute("VACUUM ANALYZE raw.feed")
        ready()
        flat = await _page(
            conn,
            "SELECT event_id, stream_id, version, seq, type, schema_version, data, metadata, "
            "recorded_at FROM raw.feed WHERE seq > $1 ORDER BY seq LIMIT $2",
            args,
        )
        joined = await _page(
            conn,
            "SELECT e.event_id, e.stream_id, e.version, l.position, e.type, e.schema_version, "
            "e.data, e.metadata, e.recorded_at FROM log l JOIN events e ON e.seq = l.seq "
            "WHERE l.position > $1 ORDER BY l.position LIMIT $2",
            args,
        )
    finally:
        await conn.close()
    flat["coord_tables_join"] = joined
    return flat


async def _page(conn: asyncpg.Connection, sql: str, args: argparse.Namespace) -> dict[str, Any]:
    decode = msgspec.json.decode
    stmt = await conn.prepare(sql)
    latencies: list[float] = []
    count = 0
    after = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    while count < args.events:
        t0 = time.perf_counter()
        rows = await stmt.fetch(after, min(args.limit, args.events - count))
        if not rows:
            break
        decoded = [(r[0], r[1], r[2], r[3], r[4], decode(r[6]), decode(r[7]), r[8]) for r in rows]
        latencies.append(time.perf_counter() - t0)
        count += len(decoded)
        after = rows[-1][3]
    elapsed = time.perf_counter() - start
    return summary(
        count,
        elapsed,
        latencies,
        page_size=args.limit,
        client_cpu_s=round(time.process_time() - cpu0, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw")
    parser.add_argument("mode", choices=["single", "batch", "read"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument(
        "--prefill", action="store_true", help="start with a copy of coord's events"
    )
    args = parser.parse_args()
    use_uvloop()
    run = {"single": single, "batch": batch, "read": read}[args.mode]
    emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
