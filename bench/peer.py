"""The peer: the Python `eventsourcing` library's PostgreSQL persistence, same server.

    python -m bench.peer single --dsn DSN --threads 16 --seconds 5
    python -m bench.peer batch  --dsn DSN --threads 16 --seconds 5 [--batch 100]

Uses `PostgresApplicationRecorder` (the recorder behind an eventsourcing Application:
a gapless notification log, kept gapless by `LOCK TABLE ... IN EXCLUSIVE MODE` per
insert) directly with `StoredEvent`s carrying the same JSON bytes coord stores, so the
figure is the library's persistence, not its domain model. With `--prefill` the table
starts with coord's events copied in. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

import msgspec
import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.conninfo import conninfo_to_dict

from bench.common import HEARING_SCHEDULED, STATEMENT_RECORDED, emit, ready, summary

SCHEMA = "es"


_PREFILL = (
    f"INSERT INTO {SCHEMA}.stored_events (originator_id, originator_version, topic, state) "
    "SELECT substring(stream_id FROM '[0-9a-f-]{36}$')::uuid, version, type, "
    "convert_to(data::text, 'UTF8') FROM public.events WHERE stream_id ~ '[0-9a-f-]{36}$'"
)


def _recorder(dsn: str, pool_size: int, prefill: bool) -> PostgresApplicationRecorder:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
    params = conninfo_to_dict(dsn)
    datastore = PostgresDatastore(
        dbname=str(params["dbname"]),
        host=str(params.get("host") or "localhost"),
        port=str(params.get("port") or 5432),
        user=str(params.get("user") or "postgres"),
        password=str(params.get("password") or ""),
        pool_size=pool_size,
        schema=SCHEMA,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
    recorder.create_table()
    if prefill:
        # As big as coord's table, so both insert into indexes of the same size.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(_PREFILL)
            conn.execute(f"VACUUM ANALYZE {SCHEMA}.stored_events")
    return recorder


def run(args: argparse.Namespace) -> dict[str, Any]:
    recorder = _recorder(args.dsn, args.threads, args.prefill)
    size = 1 if args.mode == "single" else args.batch
    first = msgspec.json.encode(HEARING_SCHEDULED)
    rest = msgspec.json.encode(STATEMENT_RECORDED)
    latencies: list[list[float]] = [[] for _ in range(args.threads)]
    ready()
    start = time.perf_counter()
    measure_from = start + args.warmup
    stop = measure_from + args.seconds

    def worker(mine: list[float]) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            originator = uuid.uuid4()
            events = [
                StoredEvent(
                    originator_id=originator,
                    originator_version=v,
                    topic="coord:HearingScheduled" if v == 1 else "coord:StatementRecorded",
                    state=first if v == 1 else rest,
                )
                for v in range(1, size + 1)
            ]
            recorder.insert_events(events)
            if t0 >= measure_from:
                mine.append(time.perf_counter() - t0)

    cpu0 = time.process_time()
    threads = [threading.Thread(target=worker, args=(lat,)) for lat in latencies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - measure_from
    recorder.datastore.close()
    flat = [x for lat in latencies for x in lat]
    return summary(
        len(flat) * size,
        elapsed,
        flat,
        threads=args.threads,
        batch=size,
        client_cpu_s=round(time.process_time() - cpu0, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer")
    parser.add_argument("mode", choices=["single", "batch"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--prefill", action="store_true", help="start with a copy of coord's events"
    )
    emit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
