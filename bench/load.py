"""The HTTP load generator: a separate process, aiohttp client, keep-alive connections.

    python -m bench.load append --url URL --clients 64 --seconds 5 [--batch 100] [--token T]
    python -m bench.load feed   --url URL --events 100000 [--limit 1000]
    python -m bench.load sse    --url URL --events 100000
    python -m bench.load get    --url URL --path /v1/views/summary --clients 8 --seconds 5

Prints one JSON object (events/s, p50/p99 per request, status counts, client CPU seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import msgspec

from bench.common import batch_body, emit, ready, summary, use_uvloop


def _headers(token: str | None, content_type: str | None = None) -> dict[str, str]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    return headers


async def append(args: argparse.Namespace) -> dict[str, Any]:
    """`clients` workers, each appending to a new stream per request, for `seconds`."""
    body = batch_body(args.batch, args.region)
    headers = _headers(args.token, "application/json")
    connector = aiohttp.TCPConnector(limit=args.clients, force_close=False)
    statuses: Counter[int] = Counter()
    sample_error: list[str] = []
    latencies: list[float] = []
    ok = 0
    async with aiohttp.ClientSession(args.url, connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + args.warmup
        stop = measure_from + args.seconds

        async def worker() -> None:
            nonlocal ok
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                url = f"/v1/streams/hearing-{uuid.uuid4()}/events"
                async with session.post(url, data=body, headers=headers) as resp:
                    payload = await resp.read()
                    status = resp.status
                t1 = time.perf_counter()
                if t0 < measure_from:
                    continue
                statuses[status] += 1
                if status == 201:
                    ok += 1
                    latencies.append(t1 - t0)
                elif not sample_error:
                    sample_error.append(payload[:500].decode(errors="replace"))

        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.clients)))
        cpu = time.process_time() - cpu0
        elapsed = time.perf_counter() - measure_from
    return summary(
        ok * args.batch,
        elapsed,
        latencies,
        clients=args.clients,
        batch=args.batch,
        statuses={str(k): v for k, v in sorted(statuses.items())},
        error_sample=sample_error[0] if sample_error else None,
        client_cpu_s=round(cpu, 2),
    )


async def feed(args: argparse.Namespace) -> dict[str, Any]:
    """Page through `GET /v1/events` from the start, decoding every page, up to `events`."""
    decoder = msgspec.json.Decoder()
    headers = _headers(args.token)
    latencies: list[float] = []
    count = 0
    after = 0
    async with aiohttp.ClientSession(args.url) as session:
        cpu0 = time.process_time()
        start = time.perf_counter()
        while count < args.events:
            limit = min(args.limit, args.events - count)
            t0 = time.perf_counter()
            async with session.get(
                "/v1/events", params={"after": after, "limit": limit}, headers=headers
            ) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    return {"skipped": f"GET /v1/events -> {resp.status}: {raw[:300]!r}"}
            page = decoder.decode(raw)
            latencies.append(time.perf_counter() - t0)
            events = page["events"]
            if not events:
                break
            count += len(events)
            after = page["last_position"]
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    return summary(count, elapsed, latencies, page_size=args.limit, client_cpu_s=round(cpu, 2))


async def sse(args: argparse.Namespace) -> dict[str, Any]:
    """Read `GET /v1/events/stream` from the start until `events` events have arrived."""
    headers = _headers(args.token)
    headers["Accept"] = "text/event-stream"
    count = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=args.idle_timeout)
    async with aiohttp.ClientSession(args.url, timeout=timeout) as session:
        cpu0 = time.process_time()
        start = time.perf_counter()
        first: float | None = None
        try:
            async with session.get(
                "/v1/events/stream", params={"after": 0}, headers=headers
            ) as resp:
                if resp.status != 200:
                    text = (await resp.read())[:300]
                    return {"skipped": f"GET /v1/events/stream -> {resp.status}: {text!r}"}
                async for line in resp.content:
                    if line.startswith(b"data:"):
                        if first is None:
                            first = time.perf_counter() - start
                        count += 1
                        if count >= args.events:
                            break
        except TimeoutError:
            pass  # the stream went quiet: the log has fewer events than asked for
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    result = summary(count, elapsed, [], client_cpu_s=round(cpu, 2))
    result["first_event_ms"] = round(first * 1000, 2) if first is not None else None
    return result


async def get(args: argparse.Namespace) -> dict[str, Any]:
    """`clients` workers repeating `GET path` for `seconds` (view query latency)."""
    headers = _headers(args.token)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=args.clients)
    async with aiohttp.ClientSession(args.url, connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + args.warmup
        stop = measure_from + args.seconds

        async def worker() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                async with session.get(args.path, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
                if t0 >= measure_from:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(time.perf_counter() - t0)

        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.clients)))
        cpu = time.process_time() - cpu0
        elapsed = time.perf_counter() - measure_from
    result = summary(
        0,
        elapsed,
        latencies,
        clients=args.clients,
        path=args.path,
        statuses={str(k): v for k, v in sorted(statuses.items())},
        client_cpu_s=round(cpu, 2),
    )
    result["requests_per_s"] = round(len(latencies) / elapsed, 1)
    result["events_per_s"] = None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("mode", choices=["append", "feed", "sse", "get"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--region", default="35.71", help="region code of the hearings written")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--idle-timeout", type=float, default=5.0)
    args = parser.parse_args()
    use_uvloop()
    ready()
    run = {"append": append, "feed": feed, "sse": sse, "get": get}[args.mode]
    emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
