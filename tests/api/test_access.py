"""Access control by role and region, tokens as events, and server-stamped metadata."""

from __future__ import annotations

import os
from typing import Any

import pytest

from coord.app import create_app
from coord.auth import TokenCache
from coord.config import Config
from coord.keys import POOL, TOKEN_SERVICE
from tests.api.payloads import append, hearing_scheduled, issue_raised, new_id, statement
from tests.conftest import bearer, cli_token, run_coord


async def post(client: Any, sid: str, body: dict[str, Any], token: str) -> Any:
    """POST an append as `token`."""
    return await client.post(f"/v1/streams/{sid}/events", json=body, headers=bearer(token))


async def domain_event_count(client: Any, token: str) -> int:
    """Domain events in the log, as seen by an unrestricted token."""
    resp = await client.get(
        "/v1/events?limit=10000&category=hearing,issue,recommendation", headers=bearer(token)
    )
    return len((await resp.json())["events"])


@pytest.fixture
async def tokens(client: Any, token_for: Any) -> dict[str, str]:
    """One token per role; regional tokens for Kota Kediri (35.71) and for Aceh (11)."""
    return {
        "kediri": await token_for(client, "regional", ["35.71"], "KPU Kota Kediri"),
        "jatim": await token_for(client, "regional", ["35"], "Kesbangpol Jawa Timur"),
        "aceh": await token_for(client, "regional", ["11"], "KPU Aceh"),
        "national": await token_for(client, "national"),
        "auditor": await token_for(client, "auditor"),
        "admin": await token_for(client, "admin"),
    }


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "coord_abc"],
)
async def test_missing_or_bad_token_is_401(client: Any, header: str | None) -> None:
    """No token, or an unknown one, is a 401 with a Bearer challenge; nothing is written."""
    headers = {"Authorization": header} if header else {}
    resp = await client.post(
        f"/v1/streams/hearing-{new_id()}/events",
        json=append(0, ("HearingScheduled", hearing_scheduled())),
        headers=headers,
    )
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.content_type == "application/problem+json"
    assert (await client.get("/v1/events", headers=headers)).status == 401


@pytest.mark.parametrize(
    ("who", "region", "status"),
    [
        ("kediri", "35.71", 201),
        ("jatim", "35.71", 201),  # a province token covers its regencies
        ("kediri", "35.06", 403),  # Kabupaten Kediri is another region
        ("aceh", "35.71", 403),
        ("national", "11.01", 201),  # national schedules hearings anywhere
        ("auditor", "35.71", 403),
        ("admin", "35.71", 403),
    ],
)
async def test_who_may_schedule_hearings_where(
    client: Any, tokens: dict[str, str], who: str, region: str, status: int
) -> None:
    """Regional tokens write only in their regions; auditors and admins write nothing."""
    resp = await post(
        client,
        f"hearing-{new_id()}",
        append(0, ("HearingScheduled", hearing_scheduled(region))),
        tokens[who],
    )
    assert resp.status == status, await resp.text()
    assert await domain_event_count(client, tokens["national"]) == (1 if status == 201 else 0)


async def test_roles_and_stream_categories(client: Any, tokens: dict[str, str]) -> None:
    """Regional offices raise issues; national staff write recommendations but not issues."""
    resp = await post(
        client,
        f"issue-{new_id()}",
        append(0, ("IssueRaised", issue_raised(None))),
        tokens["kediri"],
    )
    assert resp.status == 201
    issue_id = resp.url.path.split("/")[3].removeprefix("issue-")
    resp = await post(
        client,
        f"issue-{new_id()}",
        append(0, ("IssueRaised", issue_raised(None))),
        tokens["national"],
    )
    assert resp.status == 403
    draft = {
        "title": "Standar honorarium KPPS",
        "body": "Isi",
        "addressee": "Presiden",
        "issue_ids": [issue_id],
    }
    resp = await post(
        client,
        f"recommendation-{new_id()}",
        append(0, ("RecommendationDrafted", draft)),
        tokens["kediri"],
    )
    assert resp.status == 403
    resp = await post(
        client,
        f"recommendation-{new_id()}",
        append(0, ("RecommendationDrafted", draft)),
        tokens["national"],
    )
    assert resp.status == 201, await resp.text()


async def test_regional_cannot_touch_another_regions_stream(
    client: Any, tokens: dict[str, str]
) -> None:
    """A stream's region is fixed by its first event; other regions cannot read or write it."""
    sid = f"hearing-{new_id()}"
    assert (
        await post(
            client, sid, append(0, ("HearingScheduled", hearing_scheduled())), tokens["kediri"]
        )
    ).status == 201
    resp = await post(client, sid, append(1, ("StatementRecorded", statement())), tokens["aceh"])
    assert resp.status == 403
    # Reads of another region's object answer as for a missing one (tests/security).
    assert (await client.get(f"/v1/streams/{sid}", headers=bearer(tokens["aceh"]))).status == 404
    hid = sid.removeprefix("hearing-")
    resp = await client.get(f"/v1/hearings/{hid}", headers=bearer(tokens["aceh"]))
    assert resp.status == 404
    resp = await client.get(f"/v1/hearings/{hid}", headers=bearer(tokens["jatim"]))
    assert resp.status == 200
    # The regional feed holds only the token's regions.
    resp = await client.get("/v1/events", headers=bearer(tokens["aceh"]))
    assert (await resp.json())["events"] == []
    resp = await client.get("/v1/events?category=hearing", headers=bearer(tokens["kediri"]))
    assert [e["stream_id"] for e in (await resp.json())["events"]] == [sid]
    assert await domain_event_count(client, tokens["national"]) == 1


async def test_cannot_cite_hearing_of_another_region(client: Any, tokens: dict[str, str]) -> None:
    """An issue's hearing must be in the issue's region: a 422 naming the rule and field."""
    hid = new_id()
    await post(
        client,
        f"hearing-{hid}",
        append(0, ("HearingScheduled", hearing_scheduled("11.01"))),
        tokens["national"],
    )
    resp = await post(
        client, f"issue-{new_id()}", append(0, ("IssueRaised", issue_raised(hid))), tokens["kediri"]
    )
    assert resp.status == 422
    problem = await resp.json()
    # The same answer as for a hearing that does not exist; the other region is not named.
    assert problem["rule"] == "issue.hearing_unknown"
    assert problem["field"] == "$.events[0].data.hearing_id"
    assert "11.01" not in problem["detail"]


async def test_server_metadata_cannot_be_forged(client: Any, tokens: dict[str, str]) -> None:
    """Client metadata lives under `client`; actor, role, request id, time, node: the server's."""
    sid = f"hearing-{new_id()}"
    forged = {
        "actor": {"token_id": "x", "name": "Presiden"},
        "role": "admin",
        "request_id": "forged",
        "recorded_at": "1999-01-01T00:00:00Z",
        "node_id": "evil",
        "note": "kept",
    }
    body = {
        "expected_version": 0,
        "events": [{"type": "HearingScheduled", "data": hearing_scheduled(), "metadata": forged}],
    }
    resp = await client.post(
        f"/v1/streams/{sid}/events",
        json=body,
        headers={**bearer(tokens["kediri"]), "X-Request-ID": "req-1"},
    )
    assert resp.status == 201
    event = (
        await (await client.get(f"/v1/streams/{sid}", headers=bearer(tokens["kediri"]))).json()
    )["events"][0]
    meta = event["metadata"]
    assert meta["actor"]["name"] == "KPU Kota Kediri"
    assert meta["actor"]["token_id"] != "x"
    assert meta["role"] == "regional"
    assert meta["request_id"] != "req-1" and meta["client_request_id"] == "req-1"
    assert not meta["recorded_at"].startswith("1999")
    assert meta["node_id"] == "local"
    assert meta["client"] == forged  # the client's own keys, all of them, apart
    assert not event["recorded_at"].startswith("1999")


async def test_revocation_does_not_wait_for_the_notification(
    config: Config, aiohttp_client: Any, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revoking process drops the token itself: with the NOTIFY path silenced, the very
    next request with the revoked token is still a 401."""
    monkeypatch.setattr(TokenCache, "on_notify", lambda self, *args: None)
    client = await aiohttp_client(create_app(config))
    admin = bearer(await token_for(client, "admin"))
    victim = await client.server.app[TOKEN_SERVICE].issue(role="national", name="x", regions=[])
    assert (await client.get("/v1/events", headers=bearer(victim.token))).status == 200
    # An unknown member in the optional body is refused, and nothing is revoked.
    resp = await client.delete(
        f"/v1/tokens/{victim.token_id}", json={"reason": "x", "extra": 1}, headers=admin
    )
    assert resp.status == 422, await resp.text()
    assert (await client.get("/v1/events", headers=bearer(victim.token))).status == 200
    resp = await client.delete(
        f"/v1/tokens/{victim.token_id}", json={"reason": "bocor"}, headers=admin
    )
    assert resp.status == 204, await resp.text()
    assert (await client.get("/v1/events", headers=bearer(victim.token))).status == 401


async def test_a_lookup_racing_a_revocation_is_not_cached(client: Any, token_for: Any) -> None:
    """A token looked up while a revocation lands is answered but not cached, so the cache
    cannot keep a token the revocation already dropped."""
    token = await token_for(client, "national")
    pool = client.server.app[POOL]

    class RevokedMidway:
        """The real pool, with a revocation landing while the lookup is in flight."""

        async def fetchrow(self, *args: Any) -> Any:
            row = await pool.fetchrow(*args)
            cache.forget([row["token_id"]])
            return row

    cache = TokenCache(RevokedMidway())  # type: ignore[arg-type]
    assert (await cache.principal(token)) is not None
    assert cache.cached(token) is None
    # Without a revocation in between, the lookup is cached as before.
    steady = TokenCache(pool)
    await steady.principal(token)
    assert steady.cached(token) is not None


async def test_tokens_over_http_and_immediate_revocation(
    client: Any, tokens: dict[str, str]
) -> None:
    """Admins issue, list and revoke tokens; a revoked token fails on its very next request."""
    admin = bearer(tokens["admin"])
    resp = await client.post(
        "/v1/tokens",
        json={"role": "regional", "regions": ["35.71"], "name": "Bawaslu Kota Kediri"},
        headers=admin,
    )
    assert resp.status == 201
    issued = await resp.json()
    assert len(issued["token"]) >= 43  # 256 bits, url-safe base64
    new = bearer(issued["token"])
    assert (await client.get("/v1/events", headers=new)).status == 200
    listed = await (await client.get("/v1/tokens", headers=admin)).json()
    assert issued["token_id"] in [t["token_id"] for t in listed["items"]]
    assert all("token" not in t and "token_hash" not in t for t in listed["items"])
    resp = await client.delete(f"/v1/tokens/{issued['token_id']}", headers=admin)
    assert resp.status == 204
    assert (await client.get("/v1/events", headers=new)).status == 401
    # Only admins manage tokens.
    resp = await client.post(
        "/v1/tokens", json={"role": "admin", "name": "x"}, headers=bearer(tokens["national"])
    )
    assert resp.status == 403
    resp = await client.post("/v1/tokens", json={"role": "regional", "name": "x"}, headers=admin)
    assert resp.status == 422
    assert (await resp.json())["rule"] == "token.regions_required"


async def test_token_changes_are_events_auditors_can_read(
    client: Any, tokens: dict[str, str]
) -> None:
    """Issuing and revoking are events in access-tokens, stamped with who did it."""
    admin = bearer(tokens["admin"])
    issued = await (
        await client.post("/v1/tokens", json={"role": "auditor", "name": "BPK"}, headers=admin)
    ).json()
    await client.delete(f"/v1/tokens/{issued['token_id']}", headers=admin)
    resp = await client.get(
        "/v1/streams/access-tokens?limit=1000", headers=bearer(tokens["auditor"])
    )
    events = (await resp.json())["events"]
    mine = [e for e in events if e["data"]["token_id"] == issued["token_id"]]
    assert [e["type"] for e in mine] == ["TokenIssued", "TokenRevoked"]
    assert mine[1]["data"]["revoked_by"] == "test admin"
    assert all("token" not in e["data"] for e in events)
    resp = await client.post(
        "/v1/streams/access-tokens/events",
        headers=admin,
        json=append("any", ("TokenRevoked", {"token_id": issued["token_id"], "revoked_by": "x"})),
    )
    assert resp.status == 403


async def test_cli_token_create_prints_token_last(database_url: str) -> None:
    """`coord token create` prints the token alone on its last line; the list never shows it."""
    env = {**os.environ, "COORD_DATABASE_URL": database_url}

    token = await cli_token(env, "regional", "KPU Kota Kediri", "35.71")
    assert token.startswith("coord_") and " " not in token
    listed = await run_coord(env, "token", "list")
    assert "KPU Kota Kediri" in listed and token not in listed
