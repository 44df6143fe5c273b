"""The auditor's page in headless Chromium: the browser verifies the checkpoint's Ed25519
signature, an event's inclusion and the log's consistency with WebCrypto, and a tampered
proof, a tampered checkpoint or a changed key is never reported as verified."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coord.app import create_app
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS
from events.audit.notes import generate_signer
from tests.api.payloads import issue_raised, new_id
from tests.api.test_views import fast_settings
from tests.conftest import bearer
from tests.console.test_browser import ARTEFACTS, CHROMIUM
from tests.console.test_browser_walk import chromium
from tests.console.test_console import write

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (CI installs it)",
)

SIGNER = generate_signer("coord.test/konsol")
VERIFIED = ("verified in this browser", "diverifikasi di peramban ini")


@pytest.fixture
async def signing(aiohttp_client: Any, config: Config) -> Any:
    """A coord app that signs with a test key and checkpoints on every batch."""
    cfg = msgspec.structs.replace(
        config, audit_origin=SIGNER.name, signing_key=SIGNER.skey, audit_checkpoint_interval=0.0
    )
    app = create_app(cfg)
    app[PROJECTION_SETTINGS] = fast_settings()
    return await aiohttp_client(app)


async def _issue(client: Any, token_for: Any) -> tuple[str, int]:
    """A new issue's event id and position, once a checkpoint covers it."""
    token = await token_for(client, "regional", ["35.71"])
    stream = f"issue-{new_id()}"
    position = await write(client, token, stream, ("IssueRaised", issue_raised(None)))
    events = await (await client.get(f"/v1/streams/{stream}", headers=bearer(token))).json()
    auditor = bearer(await token_for(client, "auditor"))
    for _ in range(500):
        head = await client.get("/v1/audit/tree-head", headers=auditor)
        if head.status == 200 and (await head.json())["tree_size"] >= position:
            break
        await asyncio.sleep(0.02)
    return str(events["events"][0]["id"]), position


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


async def _state(page: Any, ident: str) -> str:
    # A locator, not wait_for_function: the page's CSP forbids eval, also for Playwright.
    done = page.locator(f"#{ident}:not([data-state=pending]):not([data-state=idle])")
    await done.wait_for(timeout=15_000)
    return str(await done.get_attribute("data-state"))


async def test_the_browser_verifies_and_refuses_tampering(signing: Any, token_for: Any) -> None:
    """Verified when the math holds; failed for a flipped leaf hash, a forged checkpoint
    root, and a key that differs from the one pinned on the first visit."""
    event_id, _ = await _issue(signing, token_for)
    async with chromium(signing) as signed:
        s = await signed(await token_for(signing, "auditor", None, "Auditor BPK"))
        page = s.page
        await s.open(f"/audit?event_id={event_id}")
        assert await _state(page, "audit-key") == "pinned"
        assert SIGNER.vkey in await page.locator("#audit-key").inner_text()
        assert await _state(page, "audit-checkpoint") == "verified"
        assert await _state(page, "audit-consistency") == "pinned"  # the first visit
        assert await _state(page, "audit-inclusion") == "verified"
        text = await page.locator("#audit-inclusion").inner_text()
        assert text.startswith("diverifikasi di peramban ini")
        await s.shoot("auditor-audit")

        # The log grows; the next visit proves the pinned checkpoint is a prefix of the new.
        later_id, _ = await _issue(signing, token_for)
        await s.open(f"/audit?event_id={later_id}")
        assert await _state(page, "audit-consistency") == "verified"
        assert await _state(page, "audit-inclusion") == "verified"

        # A tampered inclusion proof: one bit of the leaf hash.
        async def tamper_proof(route: Any) -> None:
            answer = await route.fetch()
            body = await answer.json()
            body["leaf_hash"] = _flip(body["leaf_hash"])
            await route.fulfill(response=answer, body=json.dumps(body))

        await page.route("**/audit/data/inclusion*", tamper_proof)
        await s.open(f"/audit?event_id={event_id}")
        assert await _state(page, "audit-checkpoint") == "verified"
        assert await _state(page, "audit-inclusion") == "failed"
        said = await page.locator("#audit-inclusion").inner_text()
        assert not any(v in said for v in VERIFIED), said
        await page.unroute("**/audit/data/inclusion*")

        # A forged checkpoint: another root under the real signature.
        async def tamper_head(route: Any) -> None:
            answer = await route.fetch()
            body = await answer.json()
            lines = body["checkpoint"].split("\n")
            lines[2] = _flip(lines[2])
            body["checkpoint"] = "\n".join(lines)
            await route.fulfill(response=answer, body=json.dumps(body))

        await page.route("**/audit/data/tree-head*", tamper_head)
        await s.open(f"/audit?event_id={event_id}")
        assert await _state(page, "audit-checkpoint") == "failed"
        assert await _state(page, "audit-inclusion") == "unverifiable"
        await page.unroute("**/audit/data/tree-head*")

        # The server's key is not the pinned one: warned, and nothing verifies.
        other = generate_signer("coord.test/konsol").vkey
        await page.evaluate(f"localStorage.setItem('coord.audit.vkey', {json.dumps(other)})")
        await s.open(f"/audit?event_id={event_id}")
        assert await _state(page, "audit-key") == "failed"
        assert "PERINGATAN" in await page.locator("#audit-key").inner_text()
        assert await _state(page, "audit-checkpoint") == "failed"
        assert s.errors == [], s.errors
    assert (ARTEFACTS / "auditor-audit-360.png").exists()


async def test_audit_data_is_for_audit_roles_only(signing: Any, signed_in: Any) -> None:
    """A regional office neither sees the page nor reads its data (as the API answers)."""
    del signing
    office = await signed_in("regional", ["35.71"])
    assert (await office.get("/audit")).status == 403
    assert (await office.get("/audit/data/public-key")).status == 403
    auditor = await signed_in("auditor")
    bad = await auditor.get("/audit/data/inclusion", params={"event_id": "X"})
    assert bad.status == 422
