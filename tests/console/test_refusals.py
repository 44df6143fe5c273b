"""Refused forms explain themselves per domain rule, in Indonesian or English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coord.console.refusals import RULE_MESSAGES
from events.domain.rules import RULES
from tests.api.payloads import hearing_scheduled, new_id
from tests.console.conftest import SignedIn, form_value
from tests.console.test_actions import action_form, stream_events
from tests.console.test_console import write


def test_every_rule_has_an_indonesian_and_an_english_sentence() -> None:
    """A rule added to events/domain/rules.py without its sentences fails here."""
    assert set(RULE_MESSAGES) == set(RULES)
    for rule, (indonesian, english) in RULE_MESSAGES.items():
        assert indonesian.strip() and english.strip(), rule
        assert indonesian != english, rule


def _future_local() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).astimezone().strftime("%Y-%m-%dT%H:%M")


async def test_a_rule_refusal_reads_as_its_sentence_in_the_readers_language(
    console: Any, signed_in: SignedIn, token_for: Any
) -> None:
    """Marking a hearing held two days from now breaks `time.in_future`: the form says so."""
    hearing = new_id()
    await write(
        console,
        await token_for(console, "national"),
        f"hearing-{hearing}",
        ("HearingScheduled", hearing_scheduled()),
    )
    b = await signed_in("regional", ["35.71"])
    html = await (await b.get(f"/dengar-pendapat/{hearing}")).text()
    held = {
        **action_form(html, "terlaksana"),
        "held_at": _future_local(),
        "opened_by": "Kepala Kesbangpol",
        "summary": "Rapat.",
    }
    resp = await b.post(f"/dengar-pendapat/{hearing}/terlaksana", data=held, allow_redirects=False)
    assert resp.status == 422
    assert RULE_MESSAGES["time.in_future"][0] in await resp.text()
    await b.get("/bahasa/en", allow_redirects=False)
    resp = await b.post(f"/dengar-pendapat/{hearing}/terlaksana", data=held, allow_redirects=False)
    assert resp.status == 422
    text = await resp.text()
    assert RULE_MESSAGES["time.in_future"][1] in text
    assert RULE_MESSAGES["time.in_future"][0] not in text
    events = await stream_events(console, b.token, f"hearing-{hearing}")  # type: ignore[attr-defined]
    assert [e["type"] for e in events] == ["HearingScheduled"]


async def test_token_form_refusal_names_the_rule(signed_in: SignedIn) -> None:
    """A regional token without regions: the admin page says a region is needed."""
    admin = await signed_in("admin")
    html = await (await admin.get("/admin/token")).text()
    resp = await admin.post(
        "/admin/token",
        data={"csrf": form_value(html, "csrf"), "role": "regional", "name": "KPU X", "regions": ""},
        allow_redirects=False,
    )
    assert resp.status == 422
    assert RULE_MESSAGES["token.regions_required"][0] in await resp.text()
