"""Corrections by the recording office through the console: an issue's title, description
or severity (IssueCorrected), a hearing's details (HearingDetailsCorrected) and a statement
(StatementCorrected), each with a reason; only the changed fields are sent."""

from __future__ import annotations

from typing import Any

from tests.api.payloads import append, hearing_scheduled, issue_raised, new_id, statement
from tests.conftest import bearer
from tests.console.conftest import SignedIn
from tests.console.test_actions import action_form, stream_events
from tests.console.test_console import write


async def test_office_corrects_its_issue_with_only_the_changed_fields(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """The form starts from the current values; a changed title and severity are sent (the
    untouched description is not); nothing changed is refused at the form; another
    region's office gets no form and a 403."""
    issue = new_id()
    office = await signed_in("regional", ["35.71"])
    token = office.token  # type: ignore[attr-defined]
    await write(console, token, f"issue-{issue}", ("IssueRaised", issue_raised(None)))
    page = f"/isu/{issue}"
    html = await (await office.get(page)).text()
    assert f'action="{page}/koreksi"' in html and "Koreksi isu" in html
    assert 'value="Honorarium badan adhoc minimal sesuai UMR"' in html
    form = {
        **action_form(html, "koreksi"),
        "title": "Honorarium badan ad hoc minimal sesuai UMK",
        "description": issue_raised(None)["description"],
        "severity": "5",
        "reason": "Salah ketik saat rapat",
    }
    unchanged = {**form, "title": issue_raised(None)["title"], "severity": "4"}
    resp = await office.post(f"{page}/koreksi", data=unchanged)
    assert resp.status == 422 and 'role="alert"' in await resp.text()
    resp = await office.post(f"{page}/koreksi", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    html = await (await office.get(resp.headers["Location"])).text()
    assert "<h1>Honorarium badan ad hoc minimal sesuai UMK</h1>" in html
    assert "dikoreksi" in html and "Salah ketik saat rapat" in html
    assert '<span class="sev sev5">5</span>' in html
    events = await stream_events(console, token, f"issue-{issue}")
    assert events[-1]["type"] == "IssueCorrected"
    assert events[-1]["data"] == {
        "title": "Honorarium badan ad hoc minimal sesuai UMK",
        "severity": 5,
        "reason": "Salah ketik saat rapat",
    }
    other = await signed_in("regional", ["35.78"])
    assert (await other.get(page)).status == 403
    html = await (await office.get(page)).text()
    resp = await other.post(f"{page}/koreksi", data={**action_form(html, "koreksi")})
    assert resp.status == 403


async def test_office_corrects_hearing_details_and_a_statement(
    console: Any, signed_in: SignedIn
) -> None:
    """Venue corrected on the hearing, then statement 2's speaker: each event carries only
    what changed and its reason; a stale details form says reload."""
    hearing = new_id()
    office = await signed_in("regional", ["35.71"])
    token = office.token  # type: ignore[attr-defined]
    await write(
        console,
        token,
        f"hearing-{hearing}",
        ("HearingScheduled", hearing_scheduled()),
        ("StatementRecorded", statement("Pertama.")),
        ("StatementRecorded", statement("Kedua.")),
    )
    page = f"/dengar-pendapat/{hearing}"
    html = await (await office.get(page)).text()
    details = action_form(html, "koreksi")
    resp = await office.post(
        f"{page}/koreksi",
        data={
            **details,
            "title": hearing_scheduled()["title"],
            "agenda": hearing_scheduled()["agenda"],
            "venue": "Aula Bakesbangpol Lt. 2",
            "reason": "Tempat berpindah",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    html = await (await office.get(resp.headers["Location"])).text()
    assert "Aula Bakesbangpol Lt. 2" in html and "dikoreksi" in html
    assert '<option value="1">2. Ismail Bafadal: Kedua.</option>' in html
    resp = await office.post(
        f"{page}/koreksi-pernyataan",
        data={
            **action_form(html, "koreksi-pernyataan"),
            "statement_index": "1",
            "speaker": "Dra. Ismail Bafadal",
            "text": "",
            "quote": "",
            "reason": "Nama pembicara",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    html = await (await office.get(page)).text()
    assert "<strong>Dra. Ismail Bafadal</strong>" in html
    events = await stream_events(console, token, f"hearing-{hearing}")
    assert [e["data"] for e in events[-2:]] == [
        {"venue": "Aula Bakesbangpol Lt. 2", "reason": "Tempat berpindah"},
        {"statement_index": 1, "speaker": "Dra. Ismail Bafadal", "reason": "Nama pembicara"},
    ]
    resp = await office.post(
        f"{page}/koreksi",
        data={**details, "event_id": new_id(), "venue": "Lain", "reason": "x"},
    )
    assert resp.status == 409 and "diubah orang lain" in await resp.text()


async def test_correction_forms_only_for_what_the_role_recorded(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """A hearing scheduled by national staff offers its office no details correction, and
    the statement form lists only the statements the office recorded (the write path's
    rule: only the recording role corrects)."""
    hearing = new_id()
    await write(
        console,
        await token_for(console, "national"),
        f"hearing-{hearing}",
        ("HearingScheduled", hearing_scheduled()),
        ("StatementRecorded", statement("Dari pusat.")),
    )
    office = await signed_in("regional", ["35.71"])
    page = f"/dengar-pendapat/{hearing}"
    html = await (await office.get(page)).text()
    assert f'action="{page}/koreksi"' not in html
    assert f'action="{page}/koreksi-pernyataan"' not in html
    resp = await console.post(
        f"/v1/streams/hearing-{hearing}/events",
        json=append(2, ("StatementRecorded", statement("Dari daerah."))),
        headers=bearer(office.token),  # type: ignore[attr-defined]
    )
    assert resp.status == 201, await resp.text()
    html = await (await office.get(page)).text()
    assert f'action="{page}/koreksi-pernyataan"' in html
    assert (
        "2. Ismail Bafadal: Dari daerah." in html and "1. Ismail Bafadal: Dari pusat." not in html
    )
    national = await signed_in("national")
    html = await (await national.get(page)).text()
    assert f'action="{page}/koreksi"' in html and "1. Ismail Bafadal: Dari pusat." in html
