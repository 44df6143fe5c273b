"""The web console over HTTP: sessions, CSRF, headers, escaping, roles, forms, CSV, language."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

import pytest

from coord.keys import POOL, TOKEN_SERVICE
from tests.api.payloads import append, hearing_scheduled, issue_raised, new_id
from tests.conftest import bearer
from tests.console.conftest import SignedIn, form_value, sign_in

HOSTILE_TITLE = '<script>alert("x")</script> Honorarium'
HOSTILE_BODY = '"><img src=x onerror=alert(1)> beban kerja'


async def write(console: Any, token: str, stream: str, *events: Any) -> int:
    """Append through the JSON API; the last position."""
    resp = await console.post(
        f"/v1/streams/{stream}/events", json=append(0, *events), headers=bearer(token)
    )
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["last_position"])


# --- skeleton, headers ------------------------------------------------------------------------


async def test_root_sends_a_stranger_to_sign_in_and_the_api_stays_json(console: Any) -> None:
    """`/` is the console (303 to the sign-in page); `/v1` still answers 401 problem JSON."""
    resp = await console.get("/", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/masuk?next=%2F"
    api = await console.get("/v1/events")
    assert api.status == 401
    assert api.content_type == "application/problem+json"


async def test_pages_carry_a_strict_csp_and_no_inline_code(console: Any) -> None:
    """CSP without unsafe-inline; the page has no inline script or style; static files served."""
    resp = await console.get("/masuk")
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await resp.text()
    assert "<script>" not in html and "<b>" not in html
    assert re.search(r"<script src=\"/static/konsol.js\"", html)
    for path in ("/static/konsol.css", "/static/konsol.js", "/static/favicon.svg"):
        assert (await console.get(path)).status == 200, path


# --- sessions ---------------------------------------------------------------------------------


async def test_sign_in_opens_a_server_side_session_with_strict_cookie(
    console: Any, browser: Any, token_for: Any
) -> None:
    """HttpOnly + SameSite=Strict cookie; only the id's hash is stored; no Secure on plain HTTP."""
    token = await token_for(console, "national")
    b = browser()
    resp = await sign_in(b, token, next_="/isu?category=budget_honorarium")
    assert resp.status == 303
    assert resp.headers["Location"] == "/isu?category=budget_honorarium"
    cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("coord_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert token not in cookie
    rows = await console.server.app[POOL].fetch("SELECT session_hash FROM console_sessions")
    assert len(rows) == 1 and rows[0][0] != session_id and len(rows[0][0]) == 64
    board = await b.get("/isu", allow_redirects=False)
    assert board.status == 200
    assert "Papan isu nasional" in await board.text()


async def test_cookie_is_secure_behind_tls(console: Any, browser: Any, token_for: Any) -> None:
    """Behind a TLS proxy (X-Forwarded-Proto: https) the session cookie is Secure."""
    token = await token_for(console, "national")
    b = browser()
    page = await b.get("/masuk")
    csrf = form_value(await page.text(), "csrf")
    resp = await b.post(
        "/masuk",
        data={"csrf": csrf, "token": token, "next": "/"},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("coord_session="))
    assert "secure" in cookie.lower()


async def test_bad_token_is_refused_without_a_session(
    console: Any, browser: Any, token_for: Any
) -> None:
    """An unknown token: 401 page in Indonesian, no session row."""
    b = browser()
    resp = await sign_in(b, "coord_not-a-real-token")
    assert resp.status == 401
    assert "Token tidak dikenal atau sudah dicabut" in await resp.text()
    assert await console.server.app[POOL].fetchval("SELECT count(*) FROM console_sessions") == 0


async def test_sign_in_without_its_csrf_cookie_is_refused(
    console: Any, browser: Any, token_for: Any
) -> None:
    """A sign-in posted from elsewhere (no double-submit cookie) opens no session."""
    token = await token_for(console, "national")
    b = browser()
    resp = await b.post(
        "/masuk", data={"csrf": "x" * 64, "token": token, "next": "/"}, allow_redirects=False
    )
    assert resp.status == 403
    assert await console.server.app[POOL].fetchval("SELECT count(*) FROM console_sessions") == 0


async def test_revoking_the_token_ends_the_session_at_once(
    console: Any, signed_in: SignedIn
) -> None:
    """The next page after a revocation sends the browser to sign in and clears its cookie."""
    b = await signed_in("national")
    assert (await b.get("/isu", allow_redirects=False)).status == 200
    service = console.server.app[TOKEN_SERVICE]
    [info] = [i for i in await service.list() if i.name == "test national"]
    await service.revoke(uuid.UUID(info.token_id), reason="test")
    resp = await b.get("/isu", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/masuk")
    assert any(
        v.startswith("coord_session=;") or 'coord_session=""' in v
        for v in resp.headers.getall("Set-Cookie")
    )


async def test_sign_out_needs_csrf_and_ends_the_session(signed_in: SignedIn) -> None:
    """Sign-out without the form's CSRF value is 403 and changes nothing; with it, ends it."""
    b = await signed_in("national")
    page = await b.get("/isu")
    csrf = form_value(await page.text(), "csrf")
    refused = await b.post("/keluar", data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    assert (await b.get("/isu", allow_redirects=False)).status == 200
    done = await b.post("/keluar", data={"csrf": csrf}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/masuk"
    b.cookie_jar.clear()  # the browser may have kept nothing; the server must not either
    assert (await b.get("/isu", allow_redirects=False)).status == 303


# --- roles and regions ------------------------------------------------------------------------


async def test_regional_office_sees_only_what_its_role_may(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """No link to recommendations; 403 for them and other regions; 404 for unknown ones."""
    national = await token_for(console, "national")
    other = new_id()
    await write(
        console,
        await token_for(console, "regional", ["11"]),
        f"issue-{other}",
        ("IssueRaised", issue_raised(None, region="11.01")),
    )
    b = await signed_in("regional", ["35.71"])
    home = await b.get("/", allow_redirects=False)
    assert home.headers["Location"] == "/wilayah/35.71"
    page = await b.get("/wilayah/35.71")
    assert page.status == 200
    html = await page.text()
    assert 'href="/rekomendasi"' not in html and "Kota Kediri" in html
    assert (await b.get("/rekomendasi")).status == 403
    assert (await b.get("/rekomendasi.csv")).status == 403
    assert (await b.get("/wilayah/11.01")).status == 403
    assert (await b.get("/wilayah/11")).status == 403
    assert (await b.get("/wilayah/99.99")).status == 404
    assert (await b.get(f"/isu/{other}")).status == 403
    assert (await b.get(f"/isu/{new_id()}")).status == 404
    assert (await b.get("/wilayah/11.01/isu/baru")).status == 403
    forbidden = await b.get("/rekomendasi")
    assert "tidak berwenang" in await forbidden.text()
    assert forbidden.headers["Content-Security-Policy"]
    # National staff: linked and allowed; but may not raise issues (the API's rule).
    n = await signed_in("national")
    nav = await (await n.get("/isu")).text()
    assert 'href="/rekomendasi"' in nav
    assert (await n.get("/rekomendasi")).status == 200
    assert (await n.get("/wilayah/11.01")).status == 200
    assert (await n.get("/wilayah/35.71/isu/baru")).status == 403
    assert national


async def test_regional_board_is_scoped_to_its_regions(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """The board of a regional office lists its issues only (same scope as the API)."""
    last = await write(
        console,
        await token_for(console, "regional", ["11"]),
        f"issue-{new_id()}",
        ("IssueRaised", issue_raised(None, region="11.01", title="Isu Aceh")),
    )
    last = max(
        last,
        await write(
            console,
            await token_for(console, "regional", ["35.71"]),
            f"issue-{new_id()}",
            ("IssueRaised", issue_raised(None, title="Isu Kediri")),
        ),
    )
    b = await signed_in("regional", ["35.71"])
    html = await (await b.get("/isu", params={"min_position": last})).text()
    assert "Isu Kediri" in html and "Isu Aceh" not in html
    n = await signed_in("national")
    html = await (await n.get("/isu", params={"min_position": last})).text()
    assert "Isu Kediri" in html and "Isu Aceh" in html


# --- escaping ---------------------------------------------------------------------------------


async def test_hostile_text_is_escaped_everywhere(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """Script and attribute injection in titles and descriptions render as text."""
    regional = await token_for(console, "regional", ["35.71"])
    issue = new_id()
    last = await write(
        console,
        regional,
        f"issue-{issue}",
        (
            "IssueRaised",
            issue_raised(
                None,
                title=HOSTILE_TITLE,
                description=HOSTILE_BODY,
                raised_by={"code": "KPU", "name": "<b>KPU</b>"},
            ),
        ),
    )
    b = await signed_in("national")
    pages = [
        await (await b.get("/isu", params={"min_position": last})).text(),
        await (await b.get(f"/isu/{issue}")).text(),
        await (await b.get("/wilayah/35.71", params={"min_position": last})).text(),
        await (await b.get("/cari", params={"q": "beban", "min_position": last})).text(),
    ]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>KPU" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[1]
    assert "<mark>" in pages[3], pages[3][pages[3].find("hits") :]  # the search highlight survives


async def test_csv_cells_never_run_as_formulas(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """The board's CSV: BOM, header row in Indonesian, formula-looking cells neutralised."""
    regional = await token_for(console, "regional", ["35.71"])
    last = await write(
        console,
        regional,
        f"issue-{new_id()}",
        (
            "IssueRaised",
            issue_raised(None, title='=HYPERLINK("http://x","klik")', category="logistics"),
        ),
    )
    last = max(
        last,
        await write(
            console,
            regional,
            f"issue-{new_id()}",
            ("IssueRaised", issue_raised(None, title="Honorarium KPPS")),
        ),
    )
    b = await signed_in("national")
    resp = await b.get("/isu.csv", params={"category": "logistics", "min_position": last})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "kode_wilayah", "wilayah", "kategori", "judul"]
    assert len(rows) == 2  # the category filter applies to the download
    assert rows[1][4] == '\'=HYPERLINK("http://x","klik")'
    assert rows[1][2] == "Kota Kediri (Jawa Timur)" and rows[1][3] == "Logistik"


# --- forms through the write path -------------------------------------------------------------


async def test_raise_issue_form_writes_once_through_the_write_path(
    console: Any, signed_in: SignedIn
) -> None:
    """The form posts IssueRaised with server metadata; a second post of it records nothing."""
    b = await signed_in("regional", ["35.71"], name="KPU Kota Kediri")
    form = await (await b.get("/wilayah/35.71/isu/baru")).text()
    data = {
        "csrf": form_value(form, "csrf"),
        "stream_uuid": form_value(form, "stream_uuid"),
        "event_id": form_value(form, "event_id"),
        "title": "Kekurangan kotak suara cadangan",
        "description": "Kotak suara cadangan di TPS terpencil belum tersedia.",
        "category": "logistics",
        "severity": "4",
        "raised_by_code": "KPU",
        "raised_by_name": "KPU Kota Kediri",
        "hearing_id": "",
        "raised_at": "2021-10-26T09:30",
    }
    resp = await b.post("/wilayah/35.71/isu/baru", data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith("/wilayah/35.71?min_position=")
    page = await (await b.get(location)).text()
    assert "Kekurangan kotak suara cadangan" in page and "Isu tercatat." in page
    again = await b.post("/wilayah/35.71/isu/baru", data=data, allow_redirects=False)
    assert again.status == 303
    stream = await console.get(f"/v1/streams/issue-{data['stream_uuid']}", headers=bearer(b.token))  # type: ignore[attr-defined]
    events = (await stream.json())["events"]
    assert len(events) == 1 and events[0]["id"] == data["event_id"]
    assert events[0]["metadata"]["actor"]["name"] == "KPU Kota Kediri"
    assert events[0]["data"]["raised_at"] == "2021-10-26T09:30:00+07:00"  # the region's WIB


async def test_refused_form_shows_the_field_and_writes_nothing(
    console: Any, signed_in: SignedIn
) -> None:
    """A blank title: 422, the form again with the field marked and the text kept."""
    b = await signed_in("regional", ["35.71"])
    form = await (await b.get("/wilayah/35.71/isu/baru")).text()
    stream_uuid = form_value(form, "stream_uuid")
    resp = await b.post(
        "/wilayah/35.71/isu/baru",
        data={
            "csrf": form_value(form, "csrf"),
            "stream_uuid": stream_uuid,
            "event_id": form_value(form, "event_id"),
            "title": "   ",
            "description": "Uraian <tetap> ada",
            "category": "logistics",
            "severity": "2",
            "raised_by_code": "KPU",
            "raised_by_name": "KPU Kota Kediri",
        },
        allow_redirects=False,
    )
    assert resp.status == 422
    html = await resp.text()
    assert re.search(r'id="title"[^>]*aria-invalid="true"', html)
    assert "Uraian &lt;tetap&gt; ada" in html
    stream = await console.get(f"/v1/streams/issue-{stream_uuid}", headers=bearer(b.token))  # type: ignore[attr-defined]
    assert stream.status == 404


async def test_form_with_a_wrong_csrf_value_writes_nothing(
    console: Any, signed_in: SignedIn
) -> None:
    """CSRF is checked before the write path is reached."""
    b = await signed_in("regional", ["35.71"])
    form = await (await b.get("/wilayah/35.71/isu/baru")).text()
    stream_uuid = form_value(form, "stream_uuid")
    resp = await b.post(
        "/wilayah/35.71/isu/baru",
        data={
            "csrf": "forged",
            "stream_uuid": stream_uuid,
            "event_id": form_value(form, "event_id"),
            "title": "Judul",
            "description": "Uraian",
            "category": "logistics",
            "severity": "2",
            "raised_by_code": "KPU",
            "raised_by_name": "KPU Kota Kediri",
        },
        allow_redirects=False,
    )
    assert resp.status == 403
    stream = await console.get(f"/v1/streams/issue-{stream_uuid}", headers=bearer(b.token))  # type: ignore[attr-defined]
    assert stream.status == 404


async def test_schedule_hearing_form_in_local_time(console: Any, signed_in: SignedIn) -> None:
    """National staff schedule a hearing in Denpasar: the wall clock is read as WITA."""
    b = await signed_in("national")
    form = await (await b.get("/wilayah/51.71/dengar-pendapat/baru")).text()
    assert "WITA" in form
    data = {
        "csrf": form_value(form, "csrf"),
        "stream_uuid": form_value(form, "stream_uuid"),
        "event_id": form_value(form, "event_id"),
        "title": "Dengar pendapat Pilkada",
        "agenda": "Kesiapan logistik",
        "venue": "Aula Kesbangpol",
        "scheduled_at": "2024-02-01T10:00",
        "convened_by_code": "WANTANNAS",
        "convened_by_name": "Setjen Wantannas",
        "host_code": "KESBANGPOL",
        "host_name": "Kesbangpol Kota Denpasar",
    }
    resp = await b.post("/wilayah/51.71/dengar-pendapat/baru", data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await (await b.get(resp.headers["Location"])).text()
    assert "1 Februari 2024, 10.00 WITA" in page and "Dengar pendapat Pilkada" in page


# --- pages ------------------------------------------------------------------------------------


async def test_board_filters_and_recommendation_pages(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """Board filters in the query string; the recommendation page lists its cited issues."""
    regional = await token_for(console, "regional", ["35.71"])
    national = await token_for(console, "national")
    hearing = new_id()
    await write(console, national, f"hearing-{hearing}", ("HearingScheduled", hearing_scheduled()))
    issue = new_id()
    await write(console, regional, f"issue-{issue}", ("IssueRaised", issue_raised(hearing)))
    await write(
        console,
        regional,
        f"issue-{new_id()}",
        (
            "IssueRaised",
            issue_raised(
                None,
                category="security",
                title="Keamanan TPS",
                description="Penjagaan TPS di daerah rawan konflik belum cukup.",
            ),
        ),
    )
    rec = new_id()
    last = await write(
        console,
        national,
        f"recommendation-{rec}",
        (
            "RecommendationDrafted",
            {
                "title": "Standar honorarium KPPS",
                "body": "Minimal UMR.",
                "addressee": "Presiden",
                "issue_ids": [issue],
            },
        ),
    )
    b = await signed_in("national")
    html = await (await b.get("/isu", params={"category": "security", "min_position": last})).text()
    assert "Keamanan TPS" in html and "Honorarium badan adhoc" not in html
    assert 'value="security" selected' in html
    html = await (await b.get("/rekomendasi", params={"min_position": last})).text()
    assert "Standar honorarium KPPS" in html and "Draf" in html
    html = await (await b.get(f"/rekomendasi/{rec}", params={"min_position": last})).text()
    assert "Honorarium badan adhoc minimal sesuai UMR" in html and "Draf disusun" in html
    rows = await (await b.get("/rekomendasi.csv")).read()
    assert "Standar honorarium KPPS" in rows.decode("utf-8-sig")
    html = await (await b.get(f"/isu/{issue}")).text()
    assert "Standar honorarium KPPS" in html  # what became of the issue
    html = await (await b.get("/isu/berulang", params={"min_regions": 1})).text()
    assert "Honorarium badan adhoc minimal sesuai UMR" in html
    assert (await b.get("/isu", params={"status": "bogus"})).status == 422
    assert (await b.get("/isu", params={"cursor": "!!"})).status == 422
    assert (await b.get("/rekomendasi/not-a-uuid")).status == 404


async def test_english_on_request_and_no_open_redirect(
    console: Any, signed_in: SignedIn, browser: Any
) -> None:
    """Accept-Language en gives English; the language link sets a cookie and stays local."""
    b = await signed_in("national")
    html = await (await b.get("/isu", headers={"Accept-Language": "en-GB,en;q=0.9"})).text()
    assert "National issue board" in html and '<html lang="en">' in html
    resp = await b.get("/bahasa/en", params={"next": "/isu?status=open"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/isu?status=open"
    assert "National issue board" in await (await b.get("/isu")).text()
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        resp = await b.get("/bahasa/id", params={"next": evil}, allow_redirects=False)
        assert resp.headers["Location"] == "/"
    assert (await b.get("/bahasa/fr")).status == 404
    stranger = browser()
    page = await stranger.get("/masuk", headers={"Accept-Language": "en"})
    assert "Paste your access token once" in await page.text()


@pytest.mark.parametrize("path", ["/isu", "/isu/berulang", "/cari?q=x", "/wilayah/35"])
async def test_every_page_needs_a_session(console: Any, path: str) -> None:
    """Without a session each page redirects to sign in, keeping where it was going."""
    resp = await console.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/masuk?next=")


HOSTILE_QUERIES = [
    "/isu?severity_min=abc",
    "/isu?severity_min=9",
    "/isu?from=2024-13-45",
    "/isu?hearing=not-a-uuid",
    "/isu?sort=%3Cscript%3E",
    "/isu?category=%3Cscript%3Ealert(1)%3C/script%3E",
    "/isu?region=%22%3E%3Cscript%3E",
    "/isu.csv?severity_max=0",
    "/isu/berulang?similarity=abc",
    "/isu/berulang?min_regions=-1",
    "/rekomendasi?status=%3Cb%3E",
    "/rekomendasi?cursor=%00%00",
    "/cari?q=" + "x" * 600,
    "/cari?q=%27%22%3C%3E%26&kind=issue",
    "/wilayah/%3Cscript%3E",
    "/dengar-pendapat/%22%3E",
    "/isu/00000000-0000-0000-0000-000000000000",
]


@pytest.mark.parametrize("path", HOSTILE_QUERIES)
async def test_hostile_query_strings_get_an_html_error_not_a_5xx(
    signed_in: SignedIn, path: str
) -> None:
    """Bad filters are 4xx pages with the CSP; anything reflected is escaped."""
    b = await signed_in("national")
    resp = await b.get(path, allow_redirects=False)
    assert resp.status < 500, (path, resp.status)
    assert resp.headers["Content-Security-Policy"]
    html = await resp.text()
    assert "<script>" not in html and "<b>" not in html
