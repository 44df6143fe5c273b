"""The console in a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright is used with the system's Chromium (`executable_path`), never with a browser
download. Skipped, saying why, only where Chromium is not installed (`.ci/run` installs it).
Screenshots (phone and desktop widths) go to `.artefacts/console/`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("COORD_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS = Path(os.environ.get("COORD_ARTEFACTS", ".artefacts")) / "console"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (CI installs it)",
)


async def test_regional_office_journey_in_chromium(console: Any, token_for: Any) -> None:
    """Sign in, see the board, raise an issue through the form, see it; no CSP errors."""
    from playwright.async_api import async_playwright

    token = await token_for(console, "regional", ["35.71"], "KPU Kota Kediri")
    base = str(console.make_url("/")).rstrip("/")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 360, "height": 740}, locale="id-ID"
            )
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # A stranger is sent to sign in; the first Tab reaches the skip link.
            await page.goto(f"{base}/")
            assert "/masuk" in page.url
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip"
            await page.screenshot(path=str(ARTEFACTS / "masuk-360.png"), full_page=True)
            await page.get_by_label("Token akses").fill(token)
            await page.get_by_role("button", name="Masuk").click()
            await page.wait_for_url(f"{base}/wilayah/35.71")
            assert await page.locator("h1").inner_text() == "Kota Kediri"

            # The board, at phone width without sideways scrolling.
            await page.get_by_role("link", name="Papan isu").click()
            await page.wait_for_url(f"{base}/isu")
            assert await page.locator("h1").inner_text() == "Papan isu nasional"
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360

            # Raise an issue through the form.
            await page.goto(f"{base}/wilayah/35.71")
            await page.get_by_role("link", name="Ajukan isu").click()
            await page.get_by_label("Judul").fill("Surat suara rusak di gudang logistik")
            await page.get_by_label("Uraian").fill("Sebagian surat suara rusak karena atap bocor.")
            await page.get_by_label("Kategori").select_option("logistics")
            await page.get_by_label("4", exact=True).check()
            await page.get_by_label("Nama lembaga").fill("KPU Kota Kediri")
            await page.screenshot(path=str(ARTEFACTS / "ajukan-isu-360.png"), full_page=True)
            await page.get_by_role("button", name="Catat isu").click()
            await page.wait_for_url(f"{base}/wilayah/35.71?*")
            assert await page.get_by_role("status").inner_text() == "Isu tercatat."
            link = page.get_by_role("link", name="Surat suara rusak di gudang logistik")
            assert await link.count() == 1

            # ... and on the board, on a desktop screen.
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.goto(f"{base}/isu")
            row = page.get_by_role("row").filter(has_text="Surat suara rusak di gudang logistik")
            assert await row.count() == 1
            assert "Logistik" in await row.inner_text()
            await page.screenshot(path=str(ARTEFACTS / "papan-isu-1280.png"), full_page=True)

            # Until here nothing failed to load and the CSP refused nothing.
            assert [e for e in errors if "403" not in e] == [], errors
            # Another region's page is refused in the browser too (the one error expected).
            resp = await page.goto(f"{base}/wilayah/11.01")
            assert resp is not None and resp.status == 403
            await page.goto(f"{base}/isu")
            await page.get_by_role("button", name="Keluar").click()
            await page.wait_for_url(f"{base}/masuk")
        finally:
            await browser.close()
    assert [e for e in errors if "403" not in e] == [], errors


async def test_national_journey_filters_language_and_print(console: Any, token_for: Any) -> None:
    """Filter the board by form (the link keeps the filter), switch to English, print view."""
    from playwright.async_api import async_playwright

    from tests.api.payloads import issue_raised, new_id
    from tests.console.test_console import write

    office = await token_for(console, "regional", ["51.71"])
    await write(
        console,
        office,
        f"issue-{new_id()}",
        (
            "IssueRaised",
            issue_raised(
                None,
                region="51.71",
                category="security",
                title="Keamanan gudang logistik Denpasar",
                raised_at="2024-02-01T02:00:00Z",
            ),
        ),
    )
    await write(
        console,
        office,
        f"issue-{new_id()}",
        ("IssueRaised", issue_raised(None, region="51.71", title="Honorarium PPS Denpasar")),
    )
    token = await token_for(console, "national")
    base = str(console.make_url("/")).rstrip("/")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="id-ID"
            )
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{base}/isu?category=security")
            await page.get_by_label("Token akses").fill(token)
            await page.get_by_role("button", name="Masuk").click()
            # Signing in returns to the page asked for, filter and all.
            await page.wait_for_url(f"{base}/isu?category=security")
            rows = page.get_by_role("row")
            assert await rows.filter(has_text="Keamanan gudang logistik Denpasar").count() == 1
            assert await rows.filter(has_text="Honorarium PPS Denpasar").count() == 0
            # Time in the region's zone: 02.00 UTC is 10.00 WITA in Denpasar.
            assert await page.get_by_text("1 Februari 2024, 10.00 WITA").count() == 1
            # The filter form by keyboard: choose a category, submit, the link reproduces it.
            await page.get_by_label("Kategori").select_option("budget_honorarium")
            await page.get_by_role("button", name="Terapkan").press("Enter")
            await page.wait_for_url("**/isu?*category=budget_honorarium*")
            assert await rows.filter(has_text="Honorarium PPS Denpasar").count() == 1
            await page.get_by_role("link", name="English").click()
            await page.wait_for_url("**/isu?*category=budget_honorarium*")
            assert await page.locator("h1").inner_text() == "National issue board"
            await page.goto(f"{base}/wilayah/51.71")
            await page.emulate_media(media="print")
            assert not await page.locator("header.top").is_visible()
            await page.screenshot(path=str(ARTEFACTS / "dossier-print-1280.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == [], errors
