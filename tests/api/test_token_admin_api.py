"""Token administration: the revocation's reason is listed."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer


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
