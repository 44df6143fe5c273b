"""Due dates, progress and outcomes of recommendations in the console: the list and detail
columns, the "record progress" form, and what the cited issue's office sees of it."""

from __future__ import annotations

from typing import Any

from tests.api.payloads import issue_raised, new_id, recommendation_drafted
from tests.conftest import bearer
from tests.console.conftest import SignedIn
from tests.console.test_actions import action_form, stream_events
from tests.console.test_console import write


async def test_progress_form_due_dates_and_outcome_on_issue_and_region_pages(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """A submitted recommendation shows its due date; national staff record 40 % through the
    form (a bad percent is refused at the field); after an answer "partly accepted", the
    issue's and the region's pages show the response, the progress and the outcome."""
    issue, rec = new_id(), new_id()
    await write(
        console,
        await token_for(console, "regional", ["35.71"]),
        f"issue-{issue}",
        ("IssueRaised", issue_raised(None)),
    )
    national = await token_for(console, "national")
    last = await write(
        console,
        national,
        f"recommendation-{rec}",
        ("RecommendationDrafted", recommendation_drafted([issue])),
        ("RecommendationApproved", {"approved_by": "Sesjen"}),
        (
            "RecommendationSubmitted",
            {
                "submitted_to": "Presiden",
                "submitted_at": "2021-11-01T03:00:00Z",
                "response_due_at": "2021-12-01T03:00:00Z",
            },
        ),
    )
    n = await signed_in("national")
    html = await (await n.get("/rekomendasi", params={"min_position": last})).text()
    assert "Batas tanggapan" in html and "1 Desember 2021" in html and "lewat batas" in html

    page = f"/rekomendasi/{rec}"
    html = await (await n.get(page)).text()
    assert "1 Desember 2021, 10.00 WIB" in html and f"{page}/kemajuan" in html
    form = action_form(html, "kemajuan")
    resp = await n.post(f"{page}/kemajuan", data={**form, "percent": "150", "note": "x"})
    assert resp.status == 422 and "Isi angka bulat 0 sampai 100." in await resp.text()
    report = {
        **form,
        "percent": "40",
        "note": "Perpres honorarium sedang disusun.",
        "evidence_url": "https://jdih.example.go.id/perpres",
    }
    for _ in range(2):  # a double post records once
        resp = await n.post(f"{page}/kemajuan", data=report, allow_redirects=False)
        assert resp.status == 303, await resp.text()
    html = await (await n.get(resp.headers["Location"])).text()
    assert 'value="40"' in html and "Perpres honorarium sedang disusun." in html
    assert 'href="https://jdih.example.go.id/perpres"' in html
    events = await stream_events(console, national, f"recommendation-{rec}")
    assert [e["type"] for e in events][-1] == "ProgressReported"
    assert events[-1]["data"]["percent"] == 40 and len(events) == 4
    html = await (await n.get("/rekomendasi")).text()
    assert "40%" in html

    resp = await console.post(
        f"/v1/streams/recommendation-{rec}/events",
        json={
            "expected_version": 4,
            "events": [
                {
                    "type": "ResponseRecorded",
                    "id": new_id(),
                    "data": {
                        "responder": "Kemensetneg",
                        "text": "Sebagian usulan diterima.",
                        "received_at": "2021-11-20T03:00:00Z",
                        "outcome": "partly_accepted",
                    },
                }
            ],
        },
        headers=bearer(national),
    )
    assert resp.status == 201, await resp.text()
    at = (await resp.json())["last_position"]
    office = await signed_in("regional", ["35.71"])
    for path in (f"/isu/{issue}", "/wilayah/35.71"):
        html = await (await office.get(path, params={"min_position": at})).text()
        assert "Sebagian usulan diterima." in html and "Kemensetneg" in html, path
        assert "Diterima sebagian" in html and "40%" in html, path
        assert f'href="/rekomendasi/{rec}"' not in html  # the office has no recommendation page
    html = await (await office.get(f"/isu/{issue}")).text()
    assert "Sudah ditanggapi" in html  # follow-up: answered
