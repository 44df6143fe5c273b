"""Date-only filters are local days of each item's region (WIB, WITA, WIT), not UTC days:
search and activity, as the issue board and the hearing calendar already were."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from coord.keys import POOL
from projections import activity as activity_model
from tests.api.payloads import hearing_scheduled, issue_raised, new_id, statement
from tests.api.test_corrections_api import Office

# Both near midnight, both on 29 February in UTC, on different local days.
JAYAPURA = "91.71"  # Kota Jayapura, Papua: WIT (UTC+9)
KEDIRI = "35.71"  # Kota Kediri, Jawa Timur: WIB (UTC+7)
PAPUA_AT = "2024-03-01T06:00:00+09:00"  # 29 Feb 21:00 UTC, 1 March in Jayapura
JAWA_AT = "2024-02-29T23:30:00+07:00"  # 29 Feb 16:30 UTC, 29 February in Kediri


@pytest.fixture
async def national(client: Any, token_for: Any) -> Office:
    """Setjen Wantannas (writes and searches every region)."""
    return Office(client, await token_for(client, "national", name="Setjen Wantannas"))


async def test_search_dates_are_local_days(national: Office) -> None:
    """A Papua issue and statement at 06:00 WIT on 1 March are on 1 March; a Jawa issue at
    23:30 WIB on 29 February stays on 29 February; an instant still means the instant."""
    ids: dict[str, str] = {}
    for name, region, at in (("papua", JAYAPURA, PAPUA_AT), ("jawa", KEDIRI, JAWA_AT)):
        hearing = new_id()
        scheduled = hearing_scheduled(region, scheduled_at=at)
        said = statement(f"Logistik pemilu {name} terlambat tiba di distrik.")
        assert (
            await national.post(
                f"hearing-{hearing}",
                0,
                ("HearingScheduled", scheduled),
                ("StatementRecorded", said),
            )
        ).status == 201
        ids[name] = new_id()
        raised = issue_raised(
            hearing, region, title=f"Logistik {name} terlambat", category="logistics", raised_at=at
        )
        assert (await national.post(f"issue-{ids[name]}", 0, ("IssueRaised", raised))).status == 201

    async def found(**bounds: str) -> set[tuple[str, str]]:
        body = await national.get("/v1/search", q="logistik", min_position=national.last, **bounds)
        return {(h["kind"], h["region_code"]) for h in body["items"]}

    march = await found(**{"from": "2024-03-01", "to": "2024-03-01"})
    assert march == {("issue", JAYAPURA), ("statement", JAYAPURA)}
    february = await found(**{"from": "2024-02-29", "to": "2024-02-29"})
    assert february == {("issue", KEDIRI), ("statement", KEDIRI)}
    assert await found(to="2024-02-29") == february  # an open start
    assert await found(**{"from": "2024-03-01"}) == march  # an open end
    # Both are 29 February in UTC: an exact UTC bound still means that instant.
    both = await found(**{"from": "2024-02-29T00:00:00Z", "to": "2024-03-01T00:00:00Z"})
    assert both == march | february
    assert await found(**{"from": "2024-02-29T20:00:00Z"}) == march


@pytest.mark.parametrize(
    "value",
    ["2024-02-30", "2024-13-01", "01-03-2024", "2024-03-01T09:00:00", "besok", "2024-3-1x"],
)
@pytest.mark.parametrize("path", ["/v1/search?q=logistik", "/v1/views/activity?limit=5"])
async def test_bad_dates_are_422_with_the_parameter(
    national: Office, path: str, value: str
) -> None:
    """Impossible dates, other date orders, times without an offset: 422 at `query.<name>`."""
    for name in ("from", "to"):
        resp = await national.client.get(path, params={name: value}, headers=national.headers)
        assert resp.status == 422, await resp.text()
        assert (await resp.json())["field"] == f"query.{name}"


async def test_activity_dates_are_local_days(client: Any, national: Office) -> None:
    """Writes recorded near midnight count on the local day of their region's zone; a
    national write (no region) on the WIB day. The rows are placed at chosen recorded times
    (the write path stamps the server's clock, which a test cannot set)."""
    rows = {
        "papua": (JAYAPURA, "2024-03-01T06:00:00+09:00"),  # 29 Feb 21:00 UTC
        "jawa": (KEDIRI, "2024-02-29T23:30:00+07:00"),  # 29 Feb 16:30 UTC
        "nasional": (None, "2024-03-01T00:10:00+07:00"),  # 29 Feb 17:10 UTC
        "papua-early": (JAYAPURA, "2024-02-29T00:30:00+09:00"),  # 28 Feb 15:30 UTC
    }
    async with client.server.app[POOL].acquire() as conn:
        for n, (name, (region, at)) in enumerate(rows.items()):
            await conn.execute(
                f"INSERT INTO {activity_model.SCHEMA}.entries (position, event_id, stream_id,"
                " type, region_code, token_id, actor_name, actor_role, recorded_at)"
                " VALUES ($1, $2, $3, 'IssueRaised', $4, 't', $5, 'national', $6)",
                10**12 + n,
                uuid.uuid4(),
                f"issue-{uuid.uuid4()}",
                region,
                f"uji {name}",
                datetime.fromisoformat(at),
            )

    async def actors(**bounds: str) -> set[str]:
        body = await national.get("/v1/views/activity", limit="1000", **bounds)
        return {
            i["actor"]["name"].removeprefix("uji ")
            for i in body["items"]
            if i["actor"]["name"].startswith("uji ")
        }

    assert await actors(**{"from": "2024-03-01", "to": "2024-03-01"}) == {"papua", "nasional"}
    assert await actors(**{"from": "2024-02-29", "to": "2024-02-29"}) == {"jawa", "papua-early"}
    assert await actors(to="2024-02-28") == set()
    assert await actors(**{"from": "2024-02-29T16:00:00Z", "to": "2024-02-29T18:00:00Z"}) == {
        "jawa",
        "nasional",
    }
    # The extremes of the calendar do not overflow the instant bounds.
    assert len(await actors(**{"from": "0001-01-01", "to": "9999-12-31"})) == 4
