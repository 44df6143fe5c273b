"""The hearings' counts kept on apply (what a region dossier counts) equal grouping the
hearings, through cancellations, holding and status corrections, live and replayed in
batches of any size."""

from __future__ import annotations

import uuid

import asyncpg

from events.store.store import EventStore
from projections.hearings import Hearings
from projections.verify import verify
from tests.integration.test_projections import caught_up, connector, event, hearing, running

REGIONS = ("35.71", "35.78", "11.71", "35.09")
FROM_HEARINGS = (
    "SELECT region_code, province_code, status, count(*)::int AS n "
    "FROM proj_hearings.hearings GROUP BY 1, 2, 3 ORDER BY 1, 3"
)
KEPT = (
    "SELECT region_code, province_code, status, n FROM proj_hearings.hearing_counts ORDER BY 1, 3"
)
HELD = {"held_at": "2021-10-26T09:15:00+07:00", "opened_by": "Ketua", "summary": "Rapat."}


async def _seed(store: EventStore) -> None:
    """Hearings in four regions; each of every fourth kind is cancelled, held, held and
    corrected back to scheduled, or cancelled and corrected to held."""
    for n in range(24):
        region = REGIONS[n % len(REGIONS)]
        events = [hearing(region)]
        match n % 5:
            case 1:
                events.append(event("HearingCancelled", reason="banjir"))
            case 2:
                events.append(event("HearingHeld", **HELD))
            case 3:
                events.append(event("HearingHeld", **HELD))
                events.append(event("HearingStatusCorrected", status="scheduled", reason="salah"))
            case 4:
                events.append(event("HearingCancelled", reason="banjir"))
                events.append(
                    event("HearingStatusCorrected", status="held", reason="salah", **HELD)
                )
        await store.append(f"hearing-{uuid.uuid4()}", events, 0, region_code=region)
    # A region whose one hearing moves on: its "scheduled" count falls back to 0.
    await store.append(
        f"hearing-{uuid.uuid4()}", [hearing("91.71"), event("HearingHeld", **HELD)], 0,
        region_code="91.71",
    )  # fmt: skip


async def test_kept_counts_equal_grouping_the_hearings_live_and_replayed(
    store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    """Every batch boundary (window 1, 7, 1000) gives the counts of grouping the rows, and
    a count that falls back to 0 leaves no row behind (as a replay never makes one)."""
    await _seed(store)
    async with running(store, database_url, pool, [Hearings()]):
        await caught_up(pool, store, ["hearings"])
        kept = [tuple(r) for r in await pool.fetch(KEPT)]
        assert kept == [tuple(r) for r in await pool.fetch(FROM_HEARINGS)]
        assert {r[2] for r in kept} == {"scheduled", "held", "cancelled"}
        for window in (1, 7, 1000):
            _, diffs = await verify(connector(database_url), Hearings(), window=window)
            assert diffs == [], window
