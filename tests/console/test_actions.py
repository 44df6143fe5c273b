"""Actions on a hearing, an issue and a recommendation through the console's forms."""

from __future__ import annotations

import re
from typing import Any

from tests.api.payloads import hearing_scheduled, issue_raised, new_id
from tests.conftest import bearer
from tests.console.conftest import SignedIn, form_value
from tests.console.test_console import write


def action_form(html: str, slug: str) -> dict[str, str]:
    """The hidden values of the action form posting to `.../<slug>`."""
    start = html.index(f'/{slug}" data-once>')
    part = html[start : html.index("</form>", start)]
    return {name: form_value(part, name) for name in ("csrf", "version", "event_id")}


async def stream_events(console: Any, token: str, stream: str) -> list[dict[str, Any]]:
    resp = await console.get(f"/v1/streams/{stream}", headers=bearer(token))
    assert resp.status == 200
    return list((await resp.json())["events"])


async def test_hearing_office_records_participants_statements_and_held(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """Three forms on the hearing page; a double post of one records it once."""
    hearing = new_id()
    await write(
        console,
        await token_for(console, "national"),
        f"hearing-{hearing}",
        ("HearingScheduled", hearing_scheduled()),
    )
    b = await signed_in("regional", ["35.71"])
    token = b.token  # type: ignore[attr-defined]
    html = await (await b.get(f"/dengar-pendapat/{hearing}")).text()
    assert "26 Oktober 2021, 09.00 WIB" in html
    hidden = action_form(html, "peserta")
    resp = await b.post(
        f"/dengar-pendapat/{hearing}/peserta",
        data={
            **hidden,
            "name": "Ismail Bafadal",
            "role": "Deputi",
            "organization_code": "WANTANNAS",
            "organization_name": "Setjen Wantannas",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    html = await (await b.get(resp.headers["Location"])).text()
    assert "Tersimpan: Catat peserta." in html and "Ismail Bafadal — Deputi" in html
    statement = {
        **action_form(html, "pernyataan"),
        "speaker": "Ketua KPU",
        "organization_code": "KPU",
        "organization_name": "KPU Kota Kediri",
        "text": "Honorarium KPPS perlu naik.",
        "quote": "",
    }
    for _ in range(2):
        resp = await b.post(
            f"/dengar-pendapat/{hearing}/pernyataan", data=statement, allow_redirects=False
        )
        assert resp.status == 303
    html = await (await b.get(f"/dengar-pendapat/{hearing}")).text()
    held = {
        **action_form(html, "terlaksana"),
        "held_at": "2021-10-26T09:15",
        "opened_by": "Kepala Kesbangpol",
        "summary": "Rapat membahas kesiapan pemilu.",
    }
    resp = await b.post(f"/dengar-pendapat/{hearing}/terlaksana", data=held, allow_redirects=False)
    assert resp.status == 303
    events = await stream_events(console, token, f"hearing-{hearing}")
    assert [e["type"] for e in events] == [
        "HearingScheduled",
        "ParticipantsRecorded",
        "StatementRecorded",
        "HearingHeld",
    ]
    assert events[3]["data"]["held_at"] == "2021-10-26T09:15:00+07:00"
    html = await (await b.get(f"/dengar-pendapat/{hearing}")).text()
    assert "Terlaksana" in html and "/terlaksana" not in html  # no second "held" form


async def test_stale_form_says_reload_and_overwrites_nothing(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """A revision posted from a page rendered before someone else's revision is a 409."""
    issue = new_id()
    await write(
        console,
        await token_for(console, "regional", ["35.71"]),
        f"issue-{issue}",
        ("IssueRaised", issue_raised(None)),
    )
    b = await signed_in("national")
    token = b.token  # type: ignore[attr-defined]
    html = await (await b.get(f"/rekomendasi/baru?issue={issue}")).text()
    assert issue in html
    resp = await b.post(
        "/rekomendasi/baru",
        data={
            "csrf": form_value(html, "csrf"),
            "stream_uuid": form_value(html, "stream_uuid"),
            "event_id": form_value(html, "event_id"),
            "title": "Standar honorarium KPPS",
            "body": "Minimal UMR.",
            "addressee": "Presiden",
            "issue_ids": f"/isu/{issue}\n",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    page_url = resp.headers["Location"]
    rec = page_url.split("/")[2].split("?")[0]
    html = await (await b.get(page_url)).text()
    assert "Honorarium badan adhoc minimal sesuai UMR" in html  # the cited issue
    stale = action_form(html, "revisi")
    assert stale["version"] == "1"
    other = await console.post(
        f"/v1/streams/recommendation-{rec}/events",
        headers=bearer(token),
        json={
            "expected_version": 1,
            "events": [
                {"type": "RecommendationRevised", "data": {"title": "Judul dari orang lain"}}
            ],
        },
    )
    assert other.status == 201
    resp = await b.post(
        f"/rekomendasi/{rec}/revisi",
        data={**stale, "title": "Judul saya", "body": "", "addressee": ""},
        allow_redirects=False,
    )
    assert resp.status == 409
    html = await resp.text()
    assert "telah diubah orang lain" in html and "Judul dari orang lain" in html
    assert re.search(r'name="version" value="2"', html)  # the page now shows version 2
    events = await stream_events(console, token, f"recommendation-{rec}")
    assert len(events) == 2 and events[1]["data"]["title"] == "Judul dari orang lain"


async def test_issue_actions_follow_roles_and_rules(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """The office withdraws its issue; national staff see no form and get 403 posting one."""
    issue = new_id()
    await write(
        console,
        await token_for(console, "regional", ["35.71"]),
        f"issue-{issue}",
        ("IssueRaised", issue_raised(None)),
    )
    n = await signed_in("national")
    html = await (await n.get(f"/isu/{issue}")).text()
    assert "/tarik" not in html
    resp = await n.post(
        f"/isu/{issue}/tarik",
        data={"csrf": form_value(html, "csrf"), "reason": "x"},
        allow_redirects=False,
    )
    assert resp.status == 403
    b = await signed_in("regional", ["35.71"])
    html = await (await b.get(f"/isu/{issue}")).text()
    blank = await b.post(
        f"/isu/{issue}/tarik",
        data={**action_form(html, "tarik"), "reason": "  "},
        allow_redirects=False,
    )
    assert blank.status == 422
    assert re.search(r'id="tarik-reason"[^>]*aria-invalid="true"', await blank.text())
    resp = await b.post(
        f"/isu/{issue}/tarik",
        data={**action_form(html, "tarik"), "reason": "Sudah diselesaikan KPU"},
        allow_redirects=False,
    )
    assert resp.status == 303
    html = await (await b.get(f"/isu/{issue}")).text()
    assert "Ditarik" in html and "Sudah diselesaikan KPU" in html and "/tarik" not in html
    assert (
        await b.post(
            f"/isu/{issue}/hapus", data={"csrf": form_value(html, "csrf")}, allow_redirects=False
        )
    ).status == 404
