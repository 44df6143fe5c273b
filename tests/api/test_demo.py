"""The demo data set: the seed article's hearing, generated national coverage, loaded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from coord.app import create_app
from coord.config import Config
from coord.demo import demo_id, read_tokens
from coord.keys import TOKEN_SERVICE, WRITES
from tests.conftest import bearer


async def test_demo_loads_once_with_article_and_national_spread(
    aiohttp_client: Any, config: Config, tmp_path: Path
) -> None:
    """Demo mode loads the Kediri hearing, its issues, a draft, 60+ regencies in 20+ provinces."""
    demo = msgspec.structs.replace(config, demo=True, home=tmp_path)
    client = await aiohttp_client(create_app(demo))
    tokens = read_tokens(tmp_path)
    assert tokens is not None
    assert (tmp_path / "demo-tokens.json").stat().st_mode & 0o077 == 0
    national = bearer(tokens.national)
    hearing = await (
        await client.get(f"/v1/hearings/{demo_id('hearing/kediri')}", headers=national)
    ).json()
    assert hearing["venue"] == "Ruang Joyoboyo" and hearing["status"] == "held"
    assert hearing["opened_by"] == "Kepala Kesbangpol Kota Kediri"
    assert {p["organization"]["code"] for p in hearing["participants"]} >= {"KPU", "BAWASLU"}
    assert any("UMR" in (s.get("quote") or "") for s in hearing["statements"])
    resp = await client.get("/v1/events?category=issue&limit=10000", headers=national)
    events = (await resp.json())["events"]
    issues = [e for e in events if e["type"] == "IssueRaised"]
    kediri = [e for e in issues if e["data"]["region_code"] == "35.71"]
    assert len(kediri) == 7
    assert {e["data"]["category"] for e in kediri} >= {
        "personnel",
        "budget_honorarium",
        "regulation",
        "technology_social_media",
    }
    regions = {e["data"]["region_code"] for e in issues}
    assert len(regions) >= 60
    assert len({r.split(".")[0] for r in regions}) >= 20
    # The demo shows a correction, and hearings at 09:00 local time in every zone.
    corrected = [e for e in events if e["type"] == "IssueCorrected"]
    assert len(corrected) == 1 and corrected[0]["data"]["reason"]
    resp = await client.get("/v1/events?limit=10000", headers=national)
    last = (await resp.json())["last_position"]
    resp = await client.get(f"/v1/views/hearings?limit=1000&min_position={last}", headers=national)
    calendar = (await resp.json())["items"]
    offsets = {h["scheduled_at"][-6:] for h in calendar if h["scheduled_at"][11:16] == "09:00"}
    assert offsets == {"+07:00", "+08:00", "+09:00"}
    rec = await (
        await client.get(f"/v1/recommendations/{demo_id('rec/honorarium')}", headers=national)
    ).json()
    assert rec["status"] == "draft" and rec["addressee"] == "Presiden"
    # Accountability: progress reports, an overdue recommendation and an answered one.
    resp = await client.get(
        f"/v1/views/recommendations/overdue?min_position={last}", headers=national
    )
    overdue = (await resp.json())["items"]
    assert [r["id"] for r in overdue] == [str(demo_id("rec/keselamatan"))]
    assert overdue[0]["progress_percent"] == 30
    answered = await (
        await client.get(f"/v1/recommendations/{demo_id('rec/regulasi')}", headers=national)
    ).json()
    assert answered["status"] == "responded" and answered["response_outcome"] == "partly_accepted"
    assert answered["progress"][0]["percent"] == 50
    # Events carry the offices that wrote them.
    assert {e["metadata"]["role"] for e in kediri} == {"regional"}
    # A second start finds the data and loads nothing more.
    from coord.demo import load_demo

    app = client.server.app
    assert await load_demo(app[WRITES], app[TOKEN_SERVICE], tmp_path) is False
    # Every demo token works with its role.
    assert (await client.get("/v1/events", headers=bearer(tokens.auditor))).status == 200
    resp = await client.get("/v1/events?category=issue", headers=bearer(tokens.regional))
    visible = (await resp.json())["events"]
    assert {e["data"]["region_code"] for e in visible if e["type"] == "IssueRaised"} == {"35.71"}
