"""A recommendation's effective times come back at the offset the office gave, plus UTC:
the list views, the detail, overdue/attention/progress, their CSV, and after a rebuild."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from coord.keys import PROJECTIONS
from tests.api.test_corrections_api import Office
from tests.api.test_loop_back_api import APPROVED, draft, raise_issue, submitted

WIT = timezone(timedelta(hours=9))


@pytest.fixture
async def kediri(client: Any, token_for: Any) -> Office:
    """KPU Kota Kediri (WIB)."""
    return Office(client, await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"))


@pytest.fixture
async def national(client: Any, token_for: Any) -> Office:
    """Setjen Wantannas."""
    return Office(client, await token_for(client, "national", name="Setjen Wantannas"))


async def answered_recommendation(kediri: Office, national: Office) -> str:
    """Submitted at +08:00, answered at +09:00, progress at +07:00 and one undated."""
    rid = await draft(national, await raise_issue(kediri))
    reply = {
        "responder": "Pemprov Maluku",
        "text": "Diterima",
        "received_at": "2022-02-01T09:00:00+09:00",
        "outcome": "accepted",
    }
    progress = {"percent": 40, "note": "Tahap awal", "reported_at": "2022-03-01T08:30:00+07:00"}
    resp = await national.post(
        f"recommendation-{rid}",
        1,
        APPROVED,
        submitted("2022-01-15T10:00:00+08:00"),
        ("ResponseRecorded", reply),
        ("ProgressReported", progress),
    )
    assert resp.status == 201, await resp.text()
    return rid


def check_answered(item: dict[str, Any]) -> None:
    """The times of `answered_recommendation` as given and in UTC."""
    assert item["submitted_at"] == "2022-01-15T10:00:00+08:00"
    assert item["submitted_at_utc"] == "2022-01-15T02:00:00Z"
    # The default due date is 30 days after submission, at the submission's offset.
    assert item["response_due_at"] == "2022-02-14T10:00:00+08:00"
    assert item["response_due_at_utc"] == "2022-02-14T02:00:00Z"
    assert item["answered_at"] == "2022-02-01T09:00:00+09:00"
    assert item["answered_at_utc"] == "2022-02-01T00:00:00Z"
    assert item["progress_reported_at"] == "2022-03-01T08:30:00+07:00"
    assert item["progress_reported_at_utc"] == "2022-03-01T01:30:00Z"
    by_type = {t["type"]: t for t in item["timeline"]}
    assert by_type["ResponseRecorded"]["effective_at"] == "2022-02-01T09:00:00+09:00"
    assert by_type["ResponseRecorded"]["effective_at_utc"] == "2022-02-01T00:00:00Z"
    # A step without an effective time of its own: when it was recorded, in WIB (national).
    drafted = by_type["RecommendationDrafted"]
    assert drafted["effective_at"].endswith("+07:00") and drafted["effective_at_utc"][-1] == "Z"
    assert datetime.fromisoformat(drafted["effective_at"]) == datetime.fromisoformat(drafted["at"])


async def test_response_at_its_offset_in_views_and_detail(kediri: Office, national: Office) -> None:
    """A response recorded at +09:00 comes back as +09:00 plus its UTC, in the list, the
    detail, the progress view and the CSV export."""
    rid = await answered_recommendation(kediri, national)
    listing = await national.get("/v1/views/recommendations", min_position=national.last)
    (item,) = listing["items"]
    check_answered(item)
    check_answered(await national.get(f"/v1/views/recommendations/{rid}"))
    (row,) = (await national.get("/v1/views/recommendations/progress"))["addressees"]
    assert row["last_progress_reported_at"] == "2022-03-01T08:30:00+07:00"
    assert row["last_progress_reported_at_utc"] == "2022-03-01T01:30:00Z"
    resp = await national.client.get(
        "/v1/views/recommendations", params={"format": "csv"}, headers=national.headers
    )
    assert resp.status == 200
    (line,) = list(csv.DictReader(io.StringIO(await resp.text())))
    assert (line["answered_at"], line["answered_at_utc"]) == (
        "2022-02-01T09:00:00+09:00",
        "2022-02-01T00:00:00Z",
    )
    # A progress report without reported_at stands at its recording, in the national zone.
    resp = await national.post(
        f"recommendation-{rid}", 5, ("ProgressReported", {"percent": 60, "note": "Lanjut"})
    )
    assert resp.status == 201, await resp.text()
    item = await national.get(f"/v1/views/recommendations/{rid}", min_position=national.last)
    assert item["progress_percent"] == 60 and item["progress_reported_at"].endswith("+07:00")


async def test_overdue_and_attention_keep_offsets(kediri: Office, national: Office) -> None:
    """An overdue recommendation submitted in WIT lists its times in WIT, plus UTC."""
    rid = await draft(national, await raise_issue(kediri))
    at = (datetime.now(UTC) - timedelta(days=3)).astimezone(WIT).replace(microsecond=0)
    due = at + timedelta(days=1)
    resp = await national.post(
        f"recommendation-{rid}",
        1,
        APPROVED,
        submitted(at.isoformat(), response_due_at=due.isoformat()),
    )
    assert resp.status == 201, await resp.text()
    for path in ("/v1/views/recommendations/overdue", "/v1/views/recommendations/attention"):
        (item,) = (await national.get(path, min_position=national.last))["items"]
        assert item["id"] == rid and item["overdue"] is True
        assert item["submitted_at"] == at.isoformat()
        assert item["response_due_at"] == due.isoformat()
        assert datetime.fromisoformat(item["response_due_at_utc"]) == due
        assert item["response_due_at_utc"].endswith("Z")


async def test_rebuild_keeps_the_offsets(kediri: Office, national: Office, token_for: Any) -> None:
    """The projection's new columns are filled by a replay as by the live runner."""
    rid = await answered_recommendation(kediri, national)
    before = await national.get(f"/v1/views/recommendations/{rid}", min_position=national.last)
    admin = Office(national.client, await token_for(national.client, "admin", name="admin"))
    resp = await admin.client.post("/v1/projections/recommendations/rebuild", headers=admin.headers)
    assert resp.status == 202, await resp.text()
    await national.client.server.app[PROJECTIONS].rebuilds["recommendations"]
    after = await national.get(f"/v1/views/recommendations/{rid}", min_position=national.last)
    assert after == before
    check_answered(after)
