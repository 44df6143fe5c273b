"""Shared pieces: event payloads, latency statistics, JSON output of client processes."""

from __future__ import annotations

import math
import sys
from typing import Any

import msgspec

HEARING_SCHEDULED: dict[str, Any] = {
    "region_code": "35.71",
    "title": "Dengar pendapat persiapan Pemilu dan Pemilihan 2024",
    "agenda": "Persiapan pelaksanaan pemilu dan pemilihan 2024",
    "venue": "Ruang Joyoboyo",
    "scheduled_at": "2021-10-26T09:00:00+07:00",
    "convened_by": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
    "host_organization": {"code": "KESBANGPOL", "name": "Kesbangpol Kota Kediri"},
}

STATEMENT_RECORDED: dict[str, Any] = {
    "speaker": "Ketua KPU Kota Kediri",
    "organization": {"code": "KPU", "name": "KPU Kota Kediri"},
    "text": "Honorarium badan ad hoc belum cair dan logistik pemilu tiba terlambat di "
    "beberapa kecamatan; kami mohon dukungan pemerintah daerah.",
}


def single_body(region: str = "35.71") -> bytes:
    """One HearingScheduled on a new stream."""
    return batch_body(1, region)


def batch_body(size: int = 100, region: str = "35.71") -> bytes:
    """HearingScheduled (in `region`) then `size - 1` StatementRecorded, on a new stream."""
    events = [{"type": "HearingScheduled", "data": {**HEARING_SCHEDULED, "region_code": region}}]
    events += [{"type": "StatementRecorded", "data": STATEMENT_RECORDED}] * (size - 1)
    return msgspec.json.encode({"expected_version": 0, "events": events})


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None if empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(events: int, seconds: float, latencies_s: list[float], **extra: Any) -> dict[str, Any]:
    """events/s and per-request p50/p99 (ms) of one measured window."""
    lat = sorted(latencies_s)
    p50 = percentile(lat, 50)
    p99 = percentile(lat, 99)
    return {
        "events": events,
        "requests": len(lat),
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1) if seconds > 0 else None,
        "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
        **extra,
    }


def ready() -> None:
    """Tell the harness that set-up is over: CPU accounting of the scenario starts now."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()


def emit(result: dict[str, Any]) -> None:
    """Print a client process's result as one JSON line (the last line of its stdout)."""
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    sys.stdout.flush()


def use_uvloop() -> None:
    """Clients run on uvloop when it is installed, as the server does."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return
    import asyncio

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
