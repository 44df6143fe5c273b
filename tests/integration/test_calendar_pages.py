"""The hearing calendar in time order, page by page, whatever filters pick the hearings."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from events.store.records import NewEvent
from events.store.store import EventStore
from projections import hearings as hearings_model
from projections.hearings import Hearings
from tests.integration.test_projections import caught_up, running

TIMES = ("2024-02-14T09:00:00+07:00", "2024-02-14T10:00:00+08:00", "2024-01-03T08:00:00+07:00")


def _hearing(region: str, at: str) -> NewEvent:
    data = {
        "region_code": region,
        "title": "Dengar pendapat",
        "agenda": "Persiapan pemilu",
        "venue": "Aula",
        "scheduled_at": at,
        "convened_by": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
        "host_organization": {"code": "KESBANGPOL", "name": "Kesbangpol"},
    }
    return NewEvent(id=uuid.uuid4(), type="HearingScheduled", data=msgspec.json.encode(data))


async def _walk(conn: asyncpg.Connection, limit: int, **filters: Any) -> list[Any]:
    out: list[Any] = []
    cursor = None
    while True:
        items, cursor = await hearings_model.calendar(
            conn, scope=None, cursor=cursor, limit=limit, **filters
        )
        assert len(items) <= limit
        out += items
        if cursor is None:
            return out


async def test_calendar_pages_follow_time_then_id(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Hearings at the same instant (09:00 WIB = 10:00 WITA) are ordered by id, and the
    cursor pages of one province, one region or several give the whole list in that order."""
    for n in range(24):
        region = ("35.71", "35.78", "11.71", "51.71")[n % 4]
        await store.append(
            f"hearing-{uuid.uuid4()}", [_hearing(region, TIMES[n % 3])], 0, region_code=region
        )
    async with running(store, database_url, pool, [Hearings()]):
        await caught_up(pool, store, ["hearings"])
    async with pool.acquire() as conn:
        for filters in (
            {},
            {"provinces": ["35"]},
            {"provinces": ["35", "51"]},
            {"regions": ["35.78"]},
            {"regions": ["35.78", "11.71"]},
        ):
            whole, _ = await hearings_model.calendar(conn, scope=None, limit=1000, **filters)
            key = [(h.scheduled_at_utc, uuid.UUID(h.id)) for h in whole]
            assert key == sorted(key) and len(whole) >= 6, filters
            for limit in (1, 5):
                paged = await _walk(conn, limit, **filters)
                assert [h.id for h in paged] == [h.id for h in whole], (filters, limit)
