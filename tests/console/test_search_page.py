"""The search page's filters: those of `GET /v1/search` (region/province, category,
status, dates) and its cursor for the next page."""

from __future__ import annotations

from typing import Any

import pytest

from coord.console import pages
from tests.api.payloads import issue_raised, new_id
from tests.console.conftest import SignedIn
from tests.console.test_console import write


async def test_search_filters_and_next_page(
    console: Any, signed_in: SignedIn, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three honorarium issues in two provinces: province, regency, category, status and
    date filters narrow the hits; a page of two links to the next; a bad date is a 422."""
    monkeypatch.setattr(pages, "SEARCH_PAGE", 2)
    kediri, surabaya, aceh = new_id(), new_id(), new_id()
    await write(
        console,
        await token_for(console, "regional", ["35.71"]),
        f"issue-{kediri}",
        ("IssueRaised", issue_raised(None, raised_at="2021-10-26T02:00:00Z")),
    )
    await write(
        console,
        await token_for(console, "regional", ["35.78"]),
        f"issue-{surabaya}",
        ("IssueRaised", issue_raised(None, "35.78", category="logistics")),
    )
    aceh_token = await token_for(console, "regional", ["11.71"])
    last = await write(
        console,
        aceh_token,
        f"issue-{aceh}",
        ("IssueRaised", issue_raised(None, "11.71")),
        ("IssueWithdrawn", {"reason": "Ganda"}),
    )
    n = await signed_in("national")

    async def found(**params: str) -> set[str]:
        resp = await n.get("/cari", params={"q": "honorarium", "min_position": str(last), **params})
        assert resp.status == 200, await resp.text()
        html = await resp.text()
        return {i for i in (kediri, surabaya, aceh) if f'href="/isu/{i}"' in html}

    assert await found(province="35") == {kediri, surabaya}
    assert await found(province="35", region="35.78") == {surabaya}
    assert await found(category="logistics") == {surabaya}
    assert await found(status="withdrawn") == {aceh}
    assert await found(province="35", to="2021-10-26") == {kediri}
    html = await (await n.get("/cari", params={"q": "honorarium", "province": "35"})).text()
    assert '<option value="35.71">Kota Kediri</option>' in html  # regencies of the province

    first = await (await n.get("/cari", params={"q": "honorarium", "kind": "issue"})).text()
    assert 'rel="next"' in first
    link = first[: first.index('" rel="next"')].rsplit('href="', 1)[1].replace("&amp;", "&")
    assert "cursor=" in link and "kind=issue" in link
    second = await (await n.get(link)).text()
    seen_first = {i for i in (kediri, surabaya, aceh) if f'href="/isu/{i}"' in first}
    seen_second = {i for i in (kediri, surabaya, aceh) if f'href="/isu/{i}"' in second}
    assert len(seen_first) == 2 and len(seen_second) == 1 and not seen_first & seen_second
    assert 'rel="next"' not in second and "Halaman pertama" in second

    resp = await n.get(
        "/cari",
        params={"q": "honorarium", "province": "11", "region": "35.71"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/cari?q=honorarium&province=11"
    assert (await n.get("/cari", params={"q": "x", "from": "26-10-2021"})).status == 422
    assert (await n.get("/cari", params={"q": "x", "cursor": "nonsense"})).status == 422
    office = await signed_in("regional", ["35.71"])
    html = await (await office.get("/cari", params={"q": "honorarium", "province": "35"})).text()
    assert f'href="/isu/{kediri}"' in html and f'href="/isu/{surabaya}"' not in html
