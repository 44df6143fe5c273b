"""Every console page per role in headless Chromium, every form posted from the browser,
a stale form, region scoping, the CSP, live refresh, and screenshots of every page at
phone (360 px) and desktop (1280 px) widths under `.artefacts/console/`.

Uses Debian's Chromium through Playwright (`executable_path`, no browser download);
skipped, saying why, only where Chromium is missing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.api.payloads import hearing_scheduled, issue_raised, new_id, recommendation_drafted
from tests.conftest import bearer
from tests.console.test_browser import ARGS, ARTEFACTS, CHROMIUM
from tests.console.test_console import write

pytestmark = pytest.mark.skipif(
    not __import__("pathlib").Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (CI installs it)",
)

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


class Session:
    """A signed-in Chromium page and the console errors it logged."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def open(self, path: str, status: int = 200) -> None:
        """Navigate to `path` and check the answer's status."""
        resp = await self.page.goto(self.base + path)
        assert resp is not None and resp.status == status, (path, resp and resp.status)

    async def shoot(self, name: str) -> None:
        """Screenshots at both widths; at phone width, nothing scrolls sideways."""
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        for label, size in (("360", PHONE), ("1280", DESKTOP)):
            await self.page.set_viewport_size(size)
            await self.page.screenshot(path=str(ARTEFACTS / f"{name}-{label}.png"), full_page=True)
            if label == "360":
                wide = await self.page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 360, (name, wide)
        await self.page.set_viewport_size(DESKTOP)

    async def act(self, label: str, fields: dict[str, str], *, saved: bool = True) -> None:
        """Open the action `label` on this page, fill `fields` (by id), post it."""
        details = self.page.locator("details").filter(has=self.page.get_by_text(label, exact=True))
        await details.locator("summary").click()
        for ident, value in fields.items():
            box = self.page.locator(f"#{ident}")
            if await box.evaluate("e => e.tagName") == "SELECT":
                await box.select_option(value)
            else:
                await box.fill(value)
        async with self.page.expect_navigation():
            await details.get_by_role("button", name=label).click()
        if saved:
            note = self.page.locator("p.notice")
            assert f"Tersimpan: {label}." in await note.inner_text()


@asynccontextmanager
async def chromium(console: Any) -> AsyncIterator[Callable[[str], Any]]:
    """`await signed(token)`: a fresh browser context signed in with `token`."""
    from playwright.async_api import async_playwright

    base = str(console.make_url("/")).rstrip("/")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        async def signed(token: str) -> Session:
            context = await browser.new_context(viewport=DESKTOP, locale="id-ID")
            session = Session(await context.new_page(), base)
            await session.open("/masuk")
            await session.page.get_by_label("Token akses").fill(token)
            async with session.page.expect_navigation():
                await session.page.get_by_role("button", name="Masuk").click()
            return session

        try:
            yield signed
        finally:
            await browser.close()


async def _seed(console: Any, token_for: Any) -> dict[str, str]:
    """A hearing, issues in Kediri and Surabaya, a recommendation citing Kediri's."""
    national = await token_for(console, "national", None, "Analis Setjen")
    kediri = await token_for(console, "regional", ["35.71"], "KPU Kota Kediri")
    surabaya = await token_for(console, "regional", ["35.78"], "KPU Kota Surabaya")
    ids = {"hearing": new_id(), "issue": new_id(), "other": new_id(), "rec": new_id()}
    await write(
        console, national, f"hearing-{ids['hearing']}", ("HearingScheduled", hearing_scheduled())
    )
    await write(
        console, kediri, f"issue-{ids['issue']}", ("IssueRaised", issue_raised(ids["hearing"]))
    )
    await write(
        console, surabaya, f"issue-{ids['other']}", ("IssueRaised", issue_raised(None, "35.78"))
    )
    last = await write(
        console,
        national,
        f"recommendation-{ids['rec']}",
        ("RecommendationDrafted", recommendation_drafted([ids["issue"]])),
    )
    ids["last"] = str(last)
    resp = await console.get(
        "/v1/views/issues/recurring",
        params={"min_regions": "1", "min_position": str(last)},
        headers=bearer(national),
    )
    found = (await resp.json())["clusters"]
    ids["cluster"] = next(c["cluster_id"] for c in found if ids["issue"] in c["issue_ids"])
    return ids


async def test_every_page_per_role_with_screenshots_scoping_and_csp(
    console: Any, token_for: Any
) -> None:
    """Each role walks its menu and the entity pages; a regional office is refused other
    regions and national pages; no page logs a console error (the CSP refuses nothing)."""
    ids = await _seed(console, token_for)
    common = [
        ("papan-isu", "/isu?min_position=" + ids["last"]),
        ("isu-berulang", "/isu/berulang?min_regions=1"),
        ("celah", "/isu/celah"),
        ("kalender", "/kalender?bulan=2021-10"),
        ("cari", "/cari?q=honorarium"),
        ("cari-saring", "/cari?q=honorarium&province=35&category=budget_honorarium"),
        ("isu-berulang-satu", f"/isu/berulang/{ids['cluster']}"),
        ("isu", f"/isu/{ids['issue']}"),
        ("dengar-pendapat", f"/dengar-pendapat/{ids['hearing']}"),
        ("wilayah", "/wilayah/35.71"),
    ]
    national_only = [
        ("rekomendasi", "/rekomendasi"),
        ("rekomendasi-satu", f"/rekomendasi/{ids['rec']}"),
        ("rekomendasi-baru", "/rekomendasi/baru"),
        ("aktivitas", "/aktivitas"),
        ("proyeksi", "/admin/proyeksi"),
        ("federasi", "/admin/federasi"),
        ("wilayah-provinsi", "/wilayah/35"),
    ]
    walks: dict[str, tuple[list[str] | None, list[tuple[str, str]], list[tuple[str, int]]]] = {
        "regional": (
            ["35.71"],
            [
                *common,
                ("ajukan-isu", "/wilayah/35.71/isu/baru"),
                ("jadwal-dengar-pendapat", "/wilayah/35.71/dengar-pendapat/baru"),
            ],
            [
                ("/wilayah/35.78", 403),
                (f"/isu/{ids['other']}", 403),
                ("/rekomendasi", 403),
                (f"/rekomendasi/{ids['rec']}", 403),
                ("/aktivitas", 403),
                ("/admin/token", 403),
                ("/admin/proyeksi", 403),
                ("/admin/federasi", 403),
                ("/wilayah/35.78/isu/baru", 403),
            ],
        ),
        "national": (None, [*common, *national_only], [("/admin/token", 403)]),
        "auditor": (
            None,
            [*common, *[p for p in national_only if p[0] != "rekomendasi-baru"]],
            [("/admin/token", 403), ("/rekomendasi/baru", 403)],
        ),
        "admin": (
            None,
            [
                *common,
                ("token", "/admin/token"),
                ("proyeksi", "/admin/proyeksi"),
                ("federasi", "/admin/federasi"),
            ],
            [("/aktivitas", 403)],
        ),
    }
    async with chromium(console) as signed:
        for role, (regions, pages, refused) in walks.items():
            s = await signed(await token_for(console, role, regions, f"Uji {role}"))
            for name, path in pages:
                await s.open(path)
                await s.shoot(f"{role}-{name}")
            # The menu links only pages this role may open.
            links = await s.page.locator("header nav a").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
            for path, status in refused:
                assert path not in links, (role, path)
                await s.open(path, status)
            assert [e for e in s.errors if "40" not in e] == [], (role, s.errors)
            # Every refusal logged is one of the refused pages' own status lines.
            assert len(s.errors) <= len(refused), (role, s.errors)


async def test_forms_from_the_browser_including_a_stale_one(console: Any, token_for: Any) -> None:
    """Regional and national journeys post every form from Chromium; a form rendered
    before someone else's change answers "changed by someone else" and records nothing."""
    ids = await _seed(console, token_for)
    national_token = await token_for(console, "national", None, "Analis Setjen")
    async with chromium(console) as signed:
        office = await signed(await token_for(console, "regional", ["35.71"], "KPU Kota Kediri"))
        # Schedule a hearing, record participants, a statement, hold it.
        await office.open("/wilayah/35.71/dengar-pendapat/baru")
        p = office.page
        await p.locator("#title").fill("Rapat kesiapan logistik")
        await p.locator("#agenda").fill("Distribusi logistik pemilu")
        await p.locator("#venue").fill("Aula Kesbangpol")
        await p.locator("#scheduled_at").fill("2021-10-20T09:00")
        await p.locator("#convened_by_name").fill("Setjen Wantannas")
        await p.locator("#host_name").fill("Kesbangpol Kota Kediri")
        async with p.expect_navigation():
            await p.get_by_role("button", name="Jadwalkan").click()
        assert "Dengar pendapat terjadwal." in await p.locator("[role=status]").first.inner_text()
        await p.get_by_role("link", name="Rapat kesiapan logistik").first.click()
        await p.wait_for_url("**/dengar-pendapat/*")
        await office.act(
            "Catat peserta",
            {
                "peserta-name": "Ismail",
                "peserta-role": "Deputi",
                "peserta-organization-name": "Setjen Wantannas",
            },
        )
        await office.act(
            "Catat pernyataan",
            {
                "pernyataan-speaker": "Ketua KPU",
                "pernyataan-organization-name": "KPU Kota Kediri",
                "pernyataan-text": "Logistik terlambat.",
            },
        )
        await office.act(
            "Koreksi pernyataan",
            {
                "koreksi-pernyataan-speaker": "Ketua KPU Kota Kediri",
                "koreksi-pernyataan-reason": "Jabatan lengkap",
            },
        )
        await office.act(
            "Koreksi rincian dengar pendapat",
            {"koreksi-venue": "Aula Kesbangpol Lt. 2", "koreksi-reason": "Pindah ruang"},
        )
        assert "Ketua KPU Kota Kediri" in await p.content()
        assert "Aula Kesbangpol Lt. 2" in await p.content()
        await office.act(
            "Jadwalkan ulang",
            {
                "jadwal-ulang-scheduled_at": "2021-10-21T10:00",
                "jadwal-ulang-reason": "Aula dipakai",
            },
        )
        assert "21 Oktober 2021, 10.00 WIB" in await p.content()
        await office.act(
            "Tandai terlaksana",
            {
                "terlaksana-held_at": "2021-10-21T10:05",
                "terlaksana-opened_by": "Kepala Kesbangpol",
                "terlaksana-summary": "Rapat selesai.",
            },
        )
        await office.shoot("regional-dengar-pendapat-terlaksana")
        # The seeded hearing is cancelled from the calendar's link.
        await office.open("/kalender?bulan=2021-10")
        await p.locator(f'a[href="/dengar-pendapat/{ids["hearing"]}#aksi"]').click()
        await p.wait_for_url("**#aksi")
        await office.act("Batalkan dengar pendapat", {"batal-reason": "Banjir"})
        assert "Dibatalkan" in await p.content()
        # Issue: evidence, category, withdraw.
        await office.open(f"/isu/{ids['issue']}")
        await office.act("Tambah bukti", {"bukti-description": "Foto gudang"})
        await office.act(
            "Koreksi kategori", {"kategori-category": "logistics", "kategori-reason": "Salah pilih"}
        )
        await office.act(
            "Koreksi isu",
            {"koreksi-severity": "5", "koreksi-reason": "Dampaknya lebih luas"},
        )
        assert '<span class="sev sev5">5</span>' in await p.content()
        await office.act("Tarik isu", {"tarik-reason": "Sudah selesai"})
        assert "Ditarik" in await p.content()

        analyst = await signed(national_token)
        q = analyst.page
        # Draft from the form, then every action on the recommendation.
        issue = new_id()
        at = await write(
            console,
            await token_for(console, "regional", ["35.71"]),
            f"issue-{issue}",
            ("IssueRaised", issue_raised(None)),
        )
        await analyst.open(f"/rekomendasi/baru?issue={issue}&min_position={at}")
        await q.locator("#title").fill("Standar gudang logistik")
        await q.locator("#body").fill("Gudang logistik wajib kedap air.")
        async with q.expect_navigation():
            await q.get_by_role("button", name=re.compile("Simpan|Susun")).click()
        rec_url = q.url
        await analyst.act("Revisi teks", {"revisi-title": "Standar gudang logistik pemilu"})
        await analyst.act("Kutip isu", {"kutip-issue_ids": ids["other"]})
        await analyst.act("Cabut kutipan isu", {"cabut-kutipan-issue_ids": ids["other"]})

        # A stale form: the page was rendered, then someone else revised.
        await (
            q.locator("details")
            .filter(has=q.get_by_text("Revisi teks", exact=True))
            .locator("summary")
            .click()
        )
        await q.locator("#revisi-title").fill("Judul saya")
        rec = rec_url.split("/rekomendasi/")[1].split("?")[0]
        current = await console.get(
            f"/v1/streams/recommendation-{rec}", headers=bearer(national_token)
        )
        version = (await current.json())["version"]
        other = await console.post(
            f"/v1/streams/recommendation-{rec}/events",
            headers=bearer(national_token),
            json={
                "expected_version": version,
                "events": [
                    {"type": "RecommendationRevised", "data": {"title": "Judul orang lain"}}
                ],
            },
        )
        assert other.status == 201
        # Typing meanwhile: live refresh leaves the form alone and says there is news.
        await q.locator(".live-note").wait_for(state="visible", timeout=15_000)
        assert await q.locator("#revisi-title").input_value() == "Judul saya"
        async with q.expect_navigation():
            await q.locator("details[open]").get_by_role("button", name="Revisi teks").click()
        assert "telah diubah orang lain" in await q.content()
        await analyst.shoot("national-rekomendasi-konflik")
        after = await console.get(
            f"/v1/streams/recommendation-{rec}", headers=bearer(national_token)
        )
        assert (await after.json())["version"] == version + 1  # nothing of mine was written

        await analyst.open(f"/rekomendasi/{rec}")
        await analyst.act("Setujui", {"setujui-approved_by": "Sekjen Wantannas"})
        await analyst.act(
            "Catat pengajuan",
            {"ajukan-submitted_to": "Presiden", "ajukan-submitted_at": "2021-11-01T10:00"},
        )
        await analyst.act(
            "Catat tanggapan",
            {
                "tanggapan-responder": "Mensesneg",
                "tanggapan-text": "Diterima.",
                "tanggapan-received_at": "2021-11-05T10:00",
            },
        )
        await analyst.act(
            "Catat kemajuan",
            {"kemajuan-percent": "60", "kemajuan-note": "Perpres sedang disusun"},
        )
        assert "Perpres sedang disusun" in await q.content()
        await analyst.act("Tutup", {"tutup-outcome": "Ditindaklanjuti"})
        assert "Ditutup" in await q.content()
        # A recurring problem named from its page.
        await analyst.open(f"/isu/berulang/{ids['cluster']}")
        await analyst.act("Beri nama", {"nama-name": "Honor badan adhoc di bawah UMR"})
        assert "Honor badan adhoc di bawah UMR" in await q.locator("h1").inner_text()
        await analyst.shoot("national-isu-berulang-dinamai")

        admin = await signed(await token_for(console, "admin", None, "Admin"))
        r = admin.page
        await admin.open("/admin/token")
        await r.locator("details.card").first.evaluate("d => { d.open = true; }")
        await r.locator("#tk-name").fill("KPU Kota Blitar")
        await r.locator("#tk-role").select_option("regional")
        await r.locator("#tk-regions").fill("35.72")
        async with r.expect_navigation():
            await r.locator("#tk-name").press("Enter")
        assert "coord_" in await r.content()
        await admin.shoot("admin-token-terbit")
        revoke = r.locator("form[action$='/cabut']").first
        async with r.expect_navigation():
            await revoke.get_by_role("button").click()
        await admin.open("/admin/proyeksi")
        async with r.expect_navigation():
            await r.get_by_role("button", name="Bangun ulang search").click()
        assert "Pembangunan ulang search dimulai" in await r.content()
        for s in (office, analyst, admin):
            assert [e for e in s.errors if "409" not in e] == [], s.errors


async def test_board_refreshes_live_when_an_issue_arrives(console: Any, token_for: Any) -> None:
    """An issue written elsewhere appears on an open board without a reload; the URL stays."""
    async with chromium(console) as signed:
        s = await signed(await token_for(console, "national"))
        await s.open("/isu?category=security")
        await s.page.wait_for_selector("body[data-live-listening='1']")
        await write(
            console,
            await token_for(console, "regional", ["35.71"]),
            f"issue-{new_id()}",
            ("IssueRaised", issue_raised(None, category="security", title="Kotak suara hilang")),
        )
        await s.page.get_by_role("link", name="Kotak suara hilang").wait_for(timeout=15_000)
        assert s.page.url.endswith("/isu?category=security")
        assert await s.page.evaluate("document.body.dataset.liveRefreshed") == "1"
        # A notice of another kind of stream does not refresh the board.
        await write(
            console,
            await token_for(console, "national"),
            f"hearing-{new_id()}",
            ("HearingScheduled", hearing_scheduled()),
        )
        await s.page.wait_for_timeout(2500)
        assert await s.page.evaluate("document.body.dataset.liveRefreshed") == "1"
        assert s.errors == [], s.errors
