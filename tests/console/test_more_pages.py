"""Coverage gaps, activity, the hearing calendar (reschedule, cancel), the province grid,
projection rebuild and federation status in the console."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from coord.console.pages import Month, heat, parse_month, province_grid
from coord.problems import Problem
from tests.api.payloads import hearing_scheduled, issue_raised, new_id, recommendation_drafted
from tests.console.conftest import SignedIn, form_value
from tests.console.test_actions import action_form, stream_events
from tests.console.test_console import write


def test_months_and_grid_steps() -> None:
    """Month arithmetic over year ends; bad months refused; heat steps; provinces counted."""
    assert str(Month(2021, 12).next) == "2022-01" and str(Month(2022, 1).previous) == "2021-12"
    assert Month(2024, 2).last == date(2024, 2, 29)
    assert parse_month(None, date(2026, 5, 3)) == Month(2026, 5)
    for bad in ("2021-13", "2021-1", "0000-01", "9999-12", "2021-10-01", "x"):
        try:
            parse_month(bad, date(2026, 5, 3))
        except Problem as e:
            assert e.status == 422
        else:
            raise AssertionError(bad)
    assert [heat(n) for n in (0, 1, 2, 3, 4, 7, 8, 100)] == [0, 1, 2, 2, 3, 3, 4, 4]
    grid = dict((p.code, n) for p, n in province_grid(["35.71", "35.78", "35", "91.03", "99.99"]))
    assert len(grid) == 38 and grid["35"] == 3 and grid["91"] == 1 and grid["11"] == 0


async def test_coverage_gaps_list_uncited_open_issues_in_scope(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """An uncited issue is a gap until a recommendation cites it; other regions see nothing."""
    issue = new_id()
    kediri = await token_for(console, "regional", ["35.71"])
    at = await write(console, kediri, f"issue-{issue}", ("IssueRaised", issue_raised(None)))
    n = await signed_in("national")
    html = await (await n.get("/isu/celah", params={"min_position": at})).text()
    assert f"/isu/{issue}" in html and "1 wilayah" in html
    surabaya = await signed_in("regional", ["35.78"])
    assert f"/isu/{issue}" not in await (await surabaya.get("/isu/celah")).text()
    last = await write(
        console,
        await token_for(console, "national"),
        f"recommendation-{new_id()}",
        ("RecommendationDrafted", recommendation_drafted([issue])),
    )
    html = await (await n.get("/isu/celah", params={"min_position": last})).text()
    assert f"/isu/{issue}" not in html and "Semua isu terbuka sudah dikutip." in html
    assert (await n.get("/isu/celah", params={"cursor": "bm90LWEtY3Vyc29y"})).status == 422


async def test_activity_shows_who_wrote_what_to_national_and_auditor_only(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """The write of a named office appears; regional and admin sessions get 403, no link."""
    issue = new_id()
    office = await token_for(console, "regional", ["35.71"], "KPU Kota Kediri <b>")
    last = await write(console, office, f"issue-{issue}", ("IssueRaised", issue_raised(None)))
    for role in ("national", "auditor"):
        b = await signed_in(role)
        html = await (await b.get("/aktivitas", params={"min_position": last})).text()
        assert "KPU Kota Kediri &lt;b&gt;" in html and f'href="/isu/{issue}"' in html
        assert 'href="/aktivitas"' in html
        filtered = await b.get("/aktivitas", params={"actor": "someone else"})
        assert f"/isu/{issue}" not in await filtered.text()
        assert (await b.get("/aktivitas", params={"from": "26-10-2021"})).status == 422
    for role, regions in (("regional", ["35.71"]), ("admin", None)):
        b = await signed_in(role, regions)
        assert (await b.get("/aktivitas")).status == 403
        assert 'href="/aktivitas"' not in await (await b.get("/isu")).text()


async def test_calendar_by_local_month_with_reschedule_and_cancel(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """A WIT hearing early on 1 November is November's even though UTC says 31 October;
    the office reschedules one hearing and cancels another through the hearing's forms."""
    national = await token_for(console, "national")
    kediri, papua = new_id(), new_id()
    await write(console, national, f"hearing-{kediri}", ("HearingScheduled", hearing_scheduled()))
    last = await write(
        console,
        national,
        f"hearing-{papua}",
        (
            "HearingScheduled",
            hearing_scheduled("91.03", scheduled_at="2021-11-01T01:00:00+09:00", title="Jayapura"),
        ),
    )
    n = await signed_in("national")
    october = await (
        await n.get("/kalender", params={"bulan": "2021-10", "min_position": last})
    ).text()
    assert "26 Oktober 2021, 09.00 WIB" in october and f"/dengar-pendapat/{kediri}" in october
    assert f"/dengar-pendapat/{papua}" not in october
    assert (
        'href="/kalender?bulan=2021-11"' in october and 'href="/kalender?bulan=2021-09"' in october
    )
    november = await (await n.get("/kalender", params={"bulan": "2021-11"})).text()
    assert "1 November 2021, 01.00 WIT" in november
    assert (await n.get("/kalender", params={"bulan": "2021-13"})).status == 422
    office = await signed_in("regional", ["35.71"])
    html = await (await office.get("/kalender", params={"bulan": "2021-11"})).text()
    assert "Jayapura" not in html  # another region's hearing is not shown
    html = await (await office.get(f"/dengar-pendapat/{kediri}")).text()
    resp = await office.post(
        f"/dengar-pendapat/{kediri}/jadwal-ulang",
        data={
            **action_form(html, "jadwal-ulang"),
            "scheduled_at": "2021-11-02T10:30",
            "venue": "Aula Kesbangpol",
            "reason": "Ruang dipakai",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    html = await (await office.get(resp.headers["Location"])).text()
    cancel = action_form(html, "batal")
    resp = await office.post(
        f"/dengar-pendapat/{kediri}/batal",
        data={**cancel, "reason": "Dibatalkan karena banjir"},
        allow_redirects=False,
    )
    assert resp.status == 303
    events = await stream_events(console, national, f"hearing-{kediri}")
    assert [e["type"] for e in events] == [
        "HearingScheduled",
        "HearingRescheduled",
        "HearingCancelled",
    ]
    assert events[1]["data"]["scheduled_at"] == "2021-11-02T10:30:00+07:00"
    last = events[-1]["position"]
    html = await (
        await n.get("/kalender", params={"bulan": "2021-11", "min_position": last})
    ).text()
    assert "2 November 2021, 10.30 WIB" in html and "Dibatalkan" in html
    # The same cancel form again, now stale: the hearing changed since it was rendered.
    resp = await office.post(
        f"/dengar-pendapat/{kediri}/batal",
        data={**cancel, "event_id": new_id(), "reason": "Lagi"},
        allow_redirects=False,
    )
    assert resp.status == 409


async def test_recurring_page_has_a_province_grid_coloured_by_count(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """One recurring problem in two Jawa Timur regencies: its Jawa Timur cell is step 2."""
    last = 0
    for region in ("35.71", "35.78"):
        last = await write(
            console,
            await token_for(console, "regional", [region]),
            f"issue-{new_id()}",
            ("IssueRaised", issue_raised(None, region)),
        )
    n = await signed_in("national")
    html = await (await n.get("/isu/berulang", params={"min_position": last})).text()
    cell = re.search(r'<li class="heat(\d)" title="Jawa Timur: (\d+)">', html)
    assert cell is not None and cell.groups() == ("2", "2"), html
    assert re.search(r'<li class="heat0" title="Aceh: 0">', html)
    assert 'style="' not in html  # colours come from classes: the CSP forbids inline style


async def test_projection_rebuild_for_admins_and_federation_status(
    console: Any, signed_in: SignedIn
) -> None:
    """Admin starts a rebuild from the page; national sees status but no button (403 on post)."""
    admin = await signed_in("admin")
    html = await (await admin.get("/admin/proyeksi")).text()
    assert 'action="/admin/proyeksi/issue_board/bangun-ulang"' in html
    resp = await admin.post(
        "/admin/proyeksi/issue_board/bangun-ulang",
        data={"csrf": form_value(html, "csrf")},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/proyeksi?dibangun=issue_board"
    html = await (await admin.get(resp.headers["Location"])).text()
    assert "Pembangunan ulang issue_board dimulai" in html
    missing = await admin.post(
        "/admin/proyeksi/nothing/bangun-ulang", data={"csrf": form_value(html, "csrf")}
    )
    assert missing.status == 404
    national = await signed_in("national")
    html = await (await national.get("/admin/proyeksi")).text()
    assert "bangun-ulang" not in html
    resp = await national.post(
        "/admin/proyeksi/issue_board/bangun-ulang", data={"csrf": form_value(html, "csrf")}
    )
    assert resp.status == 403
    html = await (await admin.get("/admin/federasi")).text()
    assert "Status federasi" in html and "mandiri" in html
    assert "Simpul ini tidak punya tautan replikasi." in html
    office = await signed_in("regional", ["35.71"])
    assert (await office.get("/admin/federasi")).status == 403


async def test_empty_filter_choices_are_dropped_by_a_redirect(signed_in: SignedIn) -> None:
    """A filter form without JavaScript sends `category=` for "all": the console answers
    with the same view under a link without the empty values (the views refuse them)."""
    n = await signed_in("national")
    resp = await n.get("/isu?category=&province=35&status=&sort=recent", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/isu?province=35&sort=recent"
    resp = await n.get("/kalender?province=&status=", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/kalender"
    assert (await n.get("/isu?province=35&sort=recent")).status == 200
