"""Token administration: revocation reasons, expiry, last use and unique names."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from coord.auth import TOKENS, UsageRecorder
from coord.console.sessions import find_session, open_session
from coord.keys import POOL
from tests.conftest import bearer, run_coord


async def test_revocation_reason_is_listed(client: Any, token_for: Any) -> None:
    """DELETE /v1/tokens/{id} with a reason; GET /v1/tokens shows it beside who and when."""
    admin = bearer(await token_for(client, "admin"))
    resp = await client.post(
        "/v1/tokens", json={"role": "national", "name": "Laptop Deputi"}, headers=admin
    )
    token_id = (await resp.json())["token_id"]
    for bad in ({"reason": "x" * 2001}, {"reason": "  "}, {"why": "x"}):
        resp = await client.delete(f"/v1/tokens/{token_id}", json=bad, headers=admin)
        assert resp.status == 422, await resp.text()
        assert (await resp.json())["field"].startswith("$")
    resp = await client.delete(
        f"/v1/tokens/{token_id}", json={"reason": "Laptop hilang"}, headers=admin
    )
    assert resp.status == 204
    items = (await (await client.get("/v1/tokens", headers=admin)).json())["items"]
    revoked = next(t for t in items if t["token_id"] == token_id)
    assert revoked["revoke_reason"] == "Laptop hilang" and revoked["revoked_at"]
    assert all(t["revoke_reason"] is None for t in items if t["token_id"] != token_id)


# -- expiry, last use, unique names (issue 15) ------------------------------------------


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def _listed(client: Any, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    resp = await client.get("/v1/tokens", headers=admin)
    assert resp.status == 200, await resp.text()
    return {t["name"]: t for t in (await resp.json())["items"]}


async def test_expired_token_is_refused_like_a_revoked_one(client: Any, token_for: Any) -> None:
    """A token issued for two seconds works (and is cached), then is 401 everywhere, its
    console session ends with it, and its name is free again."""
    admin = bearer(await token_for(client, "admin"))
    resp = await client.post(
        "/v1/tokens",
        json={
            "role": "admin",
            "name": "Operator sementara",
            "expires_at": _at(timedelta(seconds=2)),
        },
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    issued = await resp.json()
    assert issued["expires_at"]
    short = bearer(issued["token"])
    assert (await client.get("/v1/tokens", headers=short)).status == 200  # now cached
    pool = client.server.app[POOL]
    principal = await client.server.app[TOKENS].principal(issued["token"])
    assert principal is not None
    session = await open_session(pool, principal)
    assert await find_session(pool, session) is not None
    assert (await _listed(client, admin))["Operator sementara"]["expires_at"]

    deadline = asyncio.get_running_loop().time() + 10
    while (resp := await client.get("/v1/tokens", headers=short)).status == 200:
        assert asyncio.get_running_loop().time() < deadline, "the token never expired"
        await asyncio.sleep(0.2)
    assert resp.status == 401
    assert (await resp.json())["detail"] == "the token is unknown or revoked"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # Not only the cache: the database lookup and the console session refuse it too.
    client.server.app[TOKENS].clear()
    assert (await client.get("/v1/events", headers=short)).status == 401
    assert await find_session(pool, session) is None
    assert not await client.server.app[TOKENS].is_active(issued["token_id"])
    # A lapsed token's name may be given to a new one.
    resp = await client.post(
        "/v1/tokens", json={"role": "admin", "name": "Operator sementara"}, headers=admin
    )
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize(
    ("expires_at", "rule"),
    [
        (_at(timedelta(seconds=-1)), "token.expiry_past"),
        ("2000-01-01T00:00:00+07:00", "token.expiry_past"),
        (_at(timedelta(days=732)), "token.expiry_too_far"),
        ("9999-12-31T23:59:59+09:00", "token.expiry_too_far"),
        ("2027-01-01T00:00:00", None),  # no offset: ambiguous across WIB/WITA/WIT
        ("besok", None),
        (1798761600, None),
        (True, None),
        ({"days": 30}, None),
        ("2027-02-30T00:00:00+07:00", None),
    ],
)
async def test_hostile_expiry_is_422_and_writes_nothing(
    client: Any, token_for: Any, expires_at: Any, rule: str | None
) -> None:
    """Past, too far, naive, mistyped or impossible expiries: 422 at `$.expires_at`."""
    admin = bearer(await token_for(client, "admin"))
    before = await _listed(client, admin)
    resp = await client.post(
        "/v1/tokens",
        json={"role": "national", "name": "Laptop Deputi", "expires_at": expires_at},
        headers=admin,
    )
    assert resp.status == 422, await resp.text()
    problem = await resp.json()
    assert problem["field"] == "$.expires_at"
    if rule is not None:
        assert problem["rule"] == rule
    assert await _listed(client, admin) == before


async def test_names_are_unique_among_live_tokens(client: Any, token_for: Any) -> None:
    """A live token's name (case and spacing aside) is 409 at `$.name`; revoked, it is free."""
    admin = bearer(await token_for(client, "admin"))
    body = {"role": "regional", "name": "KPU Kota Kediri", "regions": ["35.71"]}
    first = await client.post("/v1/tokens", json=body, headers=admin)
    assert first.status == 201
    for name in ("KPU Kota Kediri", "kpu  kota KEDIRI", " KPU Kota Kediri\t"):
        resp = await client.post("/v1/tokens", json={**body, "name": name}, headers=admin)
        assert resp.status == 409, await resp.text()
        problem = await resp.json()
        assert problem["field"] == "$.name" and problem["rule"] == "token.name_taken"
    assert len([n for n in await _listed(client, admin) if "kediri" in n.casefold()]) == 1
    # Indonesian first: the refusal speaks the client's language when asked.
    resp = await client.post("/v1/tokens", json=body, headers={**admin, "Accept-Language": "id"})
    assert resp.status == 409 and "nama" in (await resp.json())["detail"].casefold()
    # Other field paths are the body's too, not the event envelope's.
    resp = await client.post(
        "/v1/tokens", json={"role": "regional", "name": "Tanpa wilayah"}, headers=admin
    )
    assert resp.status == 422 and (await resp.json())["field"] == "$.regions"
    token_id = (await first.json())["token_id"]
    assert (await client.delete(f"/v1/tokens/{token_id}", headers=admin)).status == 204
    assert (await client.post("/v1/tokens", json=body, headers=admin)).status == 201


async def test_last_used_at_is_coalesced(client: Any, token_for: Any) -> None:
    """Fifty requests note one use; it is written by a flush, not by the requests."""
    app = client.server.app
    admin = bearer(await token_for(client, "admin"))
    national = await token_for(client, "national", name="Setjen Wantannas")
    usage = app[TOKENS].usage
    await usage.flush()
    assert (await _listed(client, admin))["Setjen Wantannas"]["last_used_at"] is None
    pool = app[POOL]
    for _ in range(50):
        assert (await client.get("/v1/events?limit=1", headers=bearer(national))).status == 200
    # At most the admin's and the national's uses wait (one each), however many requests.
    assert usage.pending() <= 2
    await usage.flush()
    assert usage.pending() == 0
    used = (await _listed(client, admin))["Setjen Wantannas"]["last_used_at"]
    assert used is not None
    assert abs(datetime.fromisoformat(used) - datetime.now(UTC)) < timedelta(minutes=1)
    # Within the minute, more requests note nothing more: no write at all.
    for _ in range(20):
        await client.get("/v1/events?limit=1", headers=bearer(national))
    assert usage.pending() == 0
    rows = await pool.fetchval("SELECT count(*) FROM token_usage")
    assert rows == 2  # the admin and the national token, one row each


async def test_usage_recorder_gates_per_token_per_minute(pool: Any) -> None:
    """A fake clock: a use 59 s after the last noted one is dropped, at 60 s it is noted;
    a batch lost to a database error is kept for the next flush."""
    now = [1000.0]
    recorder = UsageRecorder(pool, clock=lambda: now[0])
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    recorder.touch(a)
    recorder.touch(a)
    recorder.touch(b)
    assert recorder.pending() == 2
    assert await recorder.flush() == 2
    now[0] += 59
    recorder.touch(a)
    assert recorder.pending() == 0
    now[0] += 1
    recorder.touch(a)
    assert recorder.pending() == 1

    class Broken:
        async def execute(self, *args: Any) -> None:
            raise OSError("database gone")

    broken = UsageRecorder(Broken(), clock=lambda: now[0])  # type: ignore[arg-type]
    broken.touch(a)
    with pytest.raises(OSError):
        await broken.flush()
    assert broken.pending() == 1


async def test_cli_issues_with_expiry_and_lists_use(database_url: str) -> None:
    """`coord token create --expires-in-days 30`; `coord token list` shows expiry and last use."""
    env = {**os.environ, "COORD_DATABASE_URL": database_url}
    out = await run_coord(
        env, "token", "create", "--role", "national", "--name", "Deputi", "--expires-in-days", "30"
    )
    assert "expires" in out.splitlines()[0]
    listed = (await run_coord(env, "token", "list")).splitlines()
    assert listed[0].split() == [
        "ID", "NAME", "ROLE", "REGIONS", "CREATED", "EXPIRES", "LAST", "USED", "STATUS",
    ]  # fmt: skip
    expiry = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert expiry in listed[1] and listed[1].endswith("active")
    (row,) = [
        msgspec.json.decode(line)
        for line in (await run_coord(env, "token", "list", "--json")).splitlines()
    ]
    assert row["expires_at"] and row["last_used_at"] is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--expires-at", "2027-01-01T00:00:00"], "offset"),
        (["--expires-at", "2020-01-01T00:00:00+07:00"], "not later than now"),
        (["--expires-in-days", "-3"], "more than 0"),
        (["--expires-in-days", "1000"], "days ahead"),
    ],
)
async def test_cli_refuses_bad_expiry(database_url: str, args: list[str], says: str) -> None:
    """Naive, past, negative or too distant expiries: a non-zero exit, a plain reason, and
    no token issued."""
    env = {**os.environ, "COORD_DATABASE_URL": database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coord",
        "token",
        "create",
        "--role",
        "national",
        "--name",
        "Deputi",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0 and says in err.decode(), err.decode()
    assert b"coord_" not in out
    assert (await run_coord(env, "token", "list", "--json")).strip() == ""
