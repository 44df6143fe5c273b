"""One recurring problem's page: members with their regions, and the national-only forms to
name it, move issues into it, split them off to a new cluster and merge another into it."""

from __future__ import annotations

import re
from typing import Any

from tests.api.payloads import issue_raised, new_id, recommendation_drafted
from tests.conftest import bearer
from tests.console.conftest import SignedIn, form_value
from tests.console.test_actions import action_form, stream_events
from tests.console.test_console import write

_ROAD = {
    "category": "logistics",
    "title": "Jembatan putus menghambat distribusi logistik surat suara",
    "description": "Jembatan penghubung kecamatan putus sehingga kotak suara terlambat tiba.",
}


async def _clusters(console: Any, token: str, last: int) -> list[dict[str, Any]]:
    resp = await console.get(
        "/v1/views/issues/recurring",
        params={"min_regions": "1", "min_position": str(last)},
        headers=bearer(token),
    )
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["clusters"])


async def test_cluster_page_names_moves_splits_and_merges_through_forms(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """National staff name a cluster, move an issue in, split it off again and merge the new
    cluster back: each form changes the view; a stale form says reload; a regional office
    sees the members of its region but no forms, and its posts are refused (403)."""
    national = await token_for(console, "national")
    honor = {region: new_id() for region in ("35.71", "35.78")}
    road = new_id()
    last = 0
    for region, issue in honor.items():
        token = await token_for(console, "regional", [region])
        last = await write(
            console, token, f"issue-{issue}", ("IssueRaised", issue_raised(None, region))
        )
    last = await write(
        console,
        await token_for(console, "regional", ["35.73"]),
        f"issue-{road}",
        ("IssueRaised", issue_raised(None, "35.73", **_ROAD)),
    )
    found = await _clusters(console, national, last)
    cluster = next(c["cluster_id"] for c in found if honor["35.71"] in c["issue_ids"])
    assert honor["35.78"] in next(c for c in found if c["cluster_id"] == cluster)["issue_ids"]
    assert all(road not in c["issue_ids"] for c in found if c["cluster_id"] == cluster)

    n = await signed_in("national")
    listing = await (await n.get("/isu/berulang", params={"min_position": last})).text()
    assert f'href="/isu/berulang/{cluster}"' in listing
    page = f"/isu/berulang/{cluster}"
    issue_page = await (await n.get(f"/isu/{honor['35.78']}")).text()
    assert f'href="{page}"' in issue_page  # an issue links its recurring problem
    html = await (await n.get(page)).text()
    assert "Kota Kediri" in html and "Kota Surabaya" in html
    assert f'href="/isu/{honor["35.71"]}"' in html and "Terbuka" in html
    stale = action_form(html, "nama")

    resp = await n.post(
        f"{page}/nama", data={**stale, "name": "Honor KPPS <di bawah> UMR"}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    html = await (await n.get(resp.headers["Location"])).text()
    assert "<h1>Honor KPPS &lt;di bawah&gt; UMR</h1>" in html
    assert "Tersimpan: Beri nama." in html

    # Another analyst's form, rendered before the name was given: refused, "reload".
    resp = await n.post(f"{page}/nama", data={**stale, "event_id": new_id(), "name": "Lain"})
    assert resp.status == 409
    assert "diubah orang lain" in await resp.text()

    resp = await n.post(
        f"{page}/pindah",
        data={**action_form(html, "pindah"), "issue_ids": f"/isu/{road}"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    html = await (await n.get(resp.headers["Location"])).text()
    assert f'href="/isu/{road}"' in html and "Kota Malang" in html

    split = {
        "csrf": form_value(html, "csrf"),
        "event_id": form_value(html, "event_id"),
        "new_cluster": form_value(html, "new_cluster"),
    }
    split["event_id"] = re.findall(r'name="event_id" value="([^"]*)"', html)[-1]
    new_cluster = split["new_cluster"]
    for _ in range(2):  # a double post splits once, into the same new cluster
        resp = await n.post(
            f"{page}/pisah", data={**split, "issue_ids": road}, allow_redirects=False
        )
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"].startswith(f"/isu/berulang/{new_cluster}?")
    html = await (await n.get(resp.headers["Location"])).text()
    assert f'href="/isu/{road}"' in html and f'href="/isu/{honor["35.71"]}"' not in html
    events = await stream_events(console, national, f"cluster-{new_cluster}")
    assert [e["type"] for e in events] == ["IssueReassigned"]
    assert f'href="/isu/{road}"' not in await (await n.get(page)).text()

    html = await (await n.get(page)).text()
    resp = await n.post(
        f"{page}/gabung",
        data={**action_form(html, "gabung"), "cluster_ids": f"/isu/berulang/{cluster}"},
    )
    assert resp.status == 422 and 'aria-invalid="true"' in await resp.text()
    resp = await n.post(
        f"{page}/gabung",
        data={**action_form(html, "gabung"), "cluster_ids": new_cluster},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    html = await (await n.get(resp.headers["Location"])).text()
    assert f'href="/isu/{road}"' in html

    rec = new_id()
    at = await write(
        console,
        national,
        f"recommendation-{rec}",
        ("RecommendationDrafted", recommendation_drafted([honor["35.71"]], title="Honor <KPPS>")),
    )
    html = await (await n.get(page, params={"min_position": at})).text()
    assert f'<a href="/rekomendasi/{rec}">Honor &lt;KPPS&gt;</a>' in html

    office = await signed_in("regional", ["35.71"])
    html = await (await office.get(page)).text()
    assert f"/rekomendasi/{rec}" not in html
    assert f'href="/isu/{honor["35.71"]}"' in html and "Kota Surabaya" not in html
    assert f"{page}/nama" not in html and "pisah" not in html
    resp = await office.post(f"{page}/nama", data={"csrf": form_value(html, "csrf"), "name": "x"})
    assert resp.status == 403
    assert (await n.get(f"/isu/berulang/{new_id()}")).status == 404
