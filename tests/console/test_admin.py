"""Administrator pages: issue a token (shown once), revoke it (its sessions end), status."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import SignedIn, form_value, sign_in


async def test_admin_issues_and_revokes_tokens_in_the_console(
    console: Any, signed_in: SignedIn, browser: Any
) -> None:
    """The new token works for sign-in; revoking it ends that browser's session."""
    admin = await signed_in("admin")
    page = await admin.get("/admin/token")
    assert page.status == 200
    csrf = form_value(await page.text(), "csrf")
    bad = await admin.post("/admin/token", data={"csrf": csrf, "name": "KPU X", "role": "root"})
    assert bad.status == 422
    bad = await admin.post(
        "/admin/token",
        data={"csrf": csrf, "name": "KPU Kota Kediri", "role": "regional", "regions": "99.99"},
    )
    assert bad.status == 422  # the access rules refuse an unknown region
    resp = await admin.post(
        "/admin/token",
        data={
            "csrf": csrf,
            "name": "<i>KPU Kota Kediri</i>",
            "role": "regional",
            "regions": "35.71",
        },
    )
    assert resp.status == 201
    html = await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token" readonly value="(coord_[^"]+)"', html)
    assert token is not None and "&lt;i&gt;KPU Kota Kediri&lt;/i&gt;" in html
    office = browser()
    assert (await sign_in(office, token.group(1))).status == 303
    assert (await office.get("/wilayah/35.71", allow_redirects=False)).status == 200
    listing = await (await admin.get("/admin/token")).text()
    assert token.group(1) not in listing  # shown once
    token_id = re.search(r'action="/admin/token/([0-9a-f-]+)/cabut"', listing)
    assert token_id is not None
    # The newest token is first: it is the one just issued.
    resp = await admin.post(
        f"/admin/token/{token_id.group(1)}/cabut",
        data={"csrf": csrf, "reason": "pindah tugas"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert (await office.get("/wilayah/35.71", allow_redirects=False)).status == 303
    assert "Dicabut" in await (await admin.get("/admin/token")).text()


async def test_admin_pages_are_for_their_roles(signed_in: SignedIn) -> None:
    """National staff: no token page (403, not linked); projection status yes."""
    n = await signed_in("national")
    html = await (await n.get("/isu")).text()
    assert 'href="/admin/token"' not in html and 'href="/admin/proyeksi"' in html
    assert (await n.get("/admin/token")).status == 403
    status = await n.get("/admin/proyeksi")
    assert status.status == 200 and "issue_board" in await status.text()
    r = await signed_in("regional", ["35.71"])
    assert (await r.get("/admin/proyeksi")).status == 403


async def test_console_issues_a_token_with_expiry_and_lists_its_use(signed_in: SignedIn) -> None:
    """ "Valid for N days" sets the expiry; the list shows it and the last use; a bad or too
    long period is refused on the form (422) and nothing is issued."""
    admin = await signed_in("admin")
    page = await admin.get("/admin/token")
    csrf = form_value(await page.text(), "csrf")
    base = {"csrf": csrf, "name": "Deputi Bidang Politik", "role": "national"}
    for bad in ("-1", "0", "1.5", "tiga", "9" * 40, "732"):
        resp = await admin.post("/admin/token", data={**base, "expires_days": bad})
        assert resp.status == 422, bad
    assert "Deputi Bidang Politik" not in re.sub(
        r'<input id="tk-name"[^>]*>', "", await (await admin.get("/admin/token")).text()
    )
    resp = await admin.post("/admin/token", data={**base, "expires_days": "30"})
    assert resp.status == 201
    html = await resp.text()
    assert "Berlaku sampai" in html and "Terakhir dipakai" in html
    again = await admin.post("/admin/token", data={**base, "expires_days": "30"})
    assert again.status == 409  # the name is taken by a live token
