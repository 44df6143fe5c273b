"""Fill coord's log to a target size through coord's own store (`EventStore.insert`).

Seeding is set-up, not a measurement: it skips HTTP but writes through the same
`coord_append` path and lets the running server's sequencer number the events. The mix
is what a season of work looks like: per hearing, HearingScheduled, nine
StatementRecorded and HearingHeld in one append, plus one IssueRaised on its own stream,
over real regency/city codes and every issue category; every 25th unit also drafts a
recommendation citing the last five issues (the recommendations and uncovered views then
have something to show).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator

import msgspec

from bench.common import HEARING_SCHEDULED, STATEMENT_RECORDED
from coord import db
from events.domain.categories import CATEGORY_CODES
from events.domain.regions import load_regions
from events.store.log_head import LogHead
from events.store.records import NewEvent
from events.store.store import EventStore

EVENTS_PER_UNIT = 12
RECOMMENDATION_EVERY = 25
_ORGS = [
    {"code": "KPU", "name": "KPU"},
    {"code": "BAWASLU", "name": "Bawaslu"},
    {"code": "KESBANGPOL", "name": "Kesbangpol"},
    {"code": "POLRI", "name": "Polres"},
]


def _units(start: int) -> Iterator[tuple[str, list[NewEvent], str | None]]:
    """(stream_id, events, region_code) appends, two per unit, forever."""
    regions = [r for r in load_regions().all() if r.level != "province"]
    meta = msgspec.json.encode(
        {"request_id": "bench-seed", "actor": {"name": "bench-seed", "role": "national"}}
    )
    enc = msgspec.json.encode
    recent: list[str] = []
    for i in itertools.count(start):
        region = regions[i % len(regions)]
        org = _ORGS[i % len(_ORGS)]
        hearing_id = uuid.uuid4()
        scheduled = dict(HEARING_SCHEDULED, region_code=region.code, title=f"Dengar pendapat {i}")
        statement = dict(STATEMENT_RECORDED, organization=org)
        held = {
            "held_at": "2021-10-26T09:15:00+07:00",
            "opened_by": "Ketua Setjen Wantannas",
            "summary": f"Rapat di {region.name} membahas kesiapan pemilu.",
        }
        hearing = [
            NewEvent(id=uuid.uuid4(), type="HearingScheduled", data=enc(scheduled), metadata=meta)
        ]
        hearing += [
            NewEvent(id=uuid.uuid4(), type="StatementRecorded", data=enc(statement), metadata=meta)
            for _ in range(9)
        ]
        hearing.append(NewEvent(id=uuid.uuid4(), type="HearingHeld", data=enc(held), metadata=meta))
        yield f"hearing-{hearing_id}", hearing, region.code
        issue = {
            "region_code": region.code,
            "hearing_id": str(hearing_id),
            "raised_by": org,
            "category": CATEGORY_CODES[i % len(CATEGORY_CODES)],
            "title": f"Masalah {CATEGORY_CODES[i % len(CATEGORY_CODES)]} di {region.name}",
            "description": "Honorarium badan ad hoc terlambat; gudang logistik kurang aman.",
            "severity": 1 + i % 5,
        }
        issue_id = uuid.uuid4()
        recent = [*recent[-4:], str(issue_id)]
        yield (
            f"issue-{issue_id}",
            [NewEvent(id=uuid.uuid4(), type="IssueRaised", data=enc(issue), metadata=meta)],
            region.code,
        )
        if i % RECOMMENDATION_EVERY == RECOMMENDATION_EVERY - 1:
            draft = {
                "title": f"Rekomendasi {i}: percepat pencairan honorarium badan ad hoc",
                "body": "Pemerintah daerah diminta mempercepat pencairan honorarium dan "
                "mengamankan gudang logistik pemilu.",
                "addressee": "Presiden",
                "issue_ids": recent,
            }
            drafted = NewEvent(
                id=uuid.uuid4(), type="RecommendationDrafted", data=enc(draft), metadata=meta
            )
            yield f"recommendation-{uuid.uuid4()}", [drafted], None


async def head_and_pending(dsn: str) -> tuple[int, int]:
    conn = await db.connect(dsn)
    try:
        head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM log")
        pending = await conn.fetchval("SELECT count(*) FROM pending")
        return int(head), int(pending)
    finally:
        await conn.close()


async def seed(dsn: str, target: int, *, connections: int = 4, timeout: float = 600) -> dict:
    """Append until the log holds at least `target` events; wait until all are sequenced."""
    head, _ = await head_and_pending(dsn)
    need = target - head
    start = time.perf_counter()
    if need > 0:
        pool = await db.create_pool(dsn, min_size=connections, max_size=connections)
        store = EventStore(pool, LogHead(lambda: db.connect(dsn)))
        units = _units(head)
        units_needed = -(-need // EVENTS_PER_UNIT)
        appends = 2 * units_needed + units_needed // RECOMMENDATION_EVERY
        todo = itertools.islice(units, appends)

        async def worker() -> None:
            async with pool.acquire() as conn:
                for stream_id, events, region in todo:
                    await store.insert(conn, stream_id, events, 0, region)

        try:
            await asyncio.gather(*(worker() for _ in range(connections)))
        finally:
            await pool.close()
    deadline = time.perf_counter() + timeout
    while True:
        head, pending = await head_and_pending(dsn)
        if pending == 0:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"seeding: {pending} appends still unsequenced after {timeout}s")
        await asyncio.sleep(0.2)
    return {"head": head, "seconds": round(time.perf_counter() - start, 2)}
