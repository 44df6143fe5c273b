"""One spelling per id: every other spelling of a UUID is a 422 on every route, writing nothing.

Python's `UUID()` (and msgspec) also parse upper case, no dashes, `urn:uuid:` and braces.
Accepted, each spelling was another stream (authorised on its own) of the same entity as
the views saw it: Kediri could take over Semarang's issue, and `issue-urn:uuid:...`
froze every issue view.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.payloads import hearing_scheduled, issue_raised, new_id
from tests.security.conftest import KEDIRI, SEMARANG, Tokens, post_events, stored_events

ALIASES: dict[str, Callable[[str], str]] = {
    "upper case": str.upper,
    "no dashes": lambda u: u.replace("-", ""),
    "urn": lambda u: f"urn:uuid:{u}",
    "braces": lambda u: "{" + u + "}",
}
SPELLINGS = pytest.mark.parametrize("spell", ALIASES.values(), ids=list(ALIASES))


async def _semarang_issue(client: Any, tokens: Tokens) -> tuple[str, str]:
    """Semarang's hearing and an issue raised at it (both canonical); their ids."""
    hearing, issue = new_id(), new_id()
    resp = await post_events(
        client,
        tokens.semarang,
        f"hearing-{hearing}",
        0,
        {"type": "HearingScheduled", "data": hearing_scheduled(SEMARANG)},
    )
    assert resp.status == 201, await resp.text()
    resp = await post_events(
        client,
        tokens.semarang,
        f"issue-{issue}",
        0,
        {"type": "IssueRaised", "data": issue_raised(hearing, SEMARANG)},
    )
    assert resp.status == 201, await resp.text()
    return hearing, issue


async def _assert_422(resp: Any, field: str | None = None) -> None:
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["field"]
    if field is not None:
        assert problem["field"] == field


@SPELLINGS
async def test_alias_writes_are_refused(
    sclient: Any, tokens: Tokens, spell: Callable[[str], str]
) -> None:
    """Streams API, CloudEvents (structured, binary, batch) and event ids: 422, nothing written."""
    _, issue = await _semarang_issue(sclient, tokens)
    before = await stored_events(sclient, tokens.national)
    alias = spell(issue)
    takeover = {"type": "IssueRaised", "data": issue_raised(None, KEDIRI, title="Diambil alih")}

    resp = await post_events(sclient, tokens.kediri, f"issue-{alias}", 0, takeover)
    await _assert_422(resp)

    ce = {
        "specversion": "1.0",
        "id": "kpu-kediri-1",
        "source": "/kpu/35.71",
        "type": "IssueRaised",
        "subject": f"issue-{alias}",
        "data": takeover["data"],
    }
    resp = await sclient.post(
        "/v1/cloudevents",
        json=ce,
        headers={**tokens.kediri, "Content-Type": "application/cloudevents+json"},
    )
    await _assert_422(resp, "$.subject")
    resp = await sclient.post(
        "/v1/cloudevents",
        json=[ce],
        headers={**tokens.kediri, "Content-Type": "application/cloudevents-batch+json"},
    )
    await _assert_422(resp, "$[0].subject")
    resp = await sclient.post(
        "/v1/cloudevents",
        json=takeover["data"],
        headers={
            **tokens.kediri,
            "ce-specversion": "1.0",
            "ce-id": "kpu-kediri-2",
            "ce-source": "/kpu/35.71",
            "ce-type": "IssueRaised",
            "ce-subject": f"issue-{alias}",
        },
    )
    await _assert_422(resp, "$.subject")

    # An event id in another spelling would be another event (and another idempotency key).
    event_id = spell(str(uuid.uuid4()))
    resp = await post_events(
        sclient,
        tokens.kediri,
        f"issue-{new_id()}",
        0,
        {**takeover, "id": event_id},
    )
    await _assert_422(resp, "$.events[0].id")

    assert await stored_events(sclient, tokens.national) == before


@SPELLINGS
async def test_alias_reads_are_refused(
    sclient: Any, tokens: Tokens, spell: Callable[[str], str]
) -> None:
    """Aggregates, streams, views, audit and token routes take only the canonical id."""
    hearing, issue = await _semarang_issue(sclient, tokens)
    routes = [
        (tokens.semarang, f"/v1/issues/{spell(issue)}", "path.id"),
        (tokens.semarang, f"/v1/hearings/{spell(hearing)}", "path.id"),
        (tokens.national, f"/v1/recommendations/{spell(issue)}", "path.id"),
        (tokens.semarang, f"/v1/streams/issue-{spell(issue)}", None),
        (tokens.national, f"/v1/views/recommendations/{spell(issue)}", None),
        (tokens.national, f"/v1/views/issues?hearing={spell(hearing)}", "query.hearing"),
        (tokens.auditor, f"/v1/audit/streams/issue-{spell(issue)}", None),
        (tokens.auditor, f"/v1/audit/proof/inclusion?event_id={spell(issue)}", "query.event_id"),
        (tokens.semarang, f"/v1/audit/receipt/{spell(issue)}", "path.event_id"),
    ]
    for headers, path, field in routes:
        # yarl would normalise some spellings in the path; send them as they are.
        resp = await sclient.get(path, headers=headers)
        assert resp.status == 422, (path, resp.status, await resp.text())
        await _assert_422(resp, field)
    resp = await sclient.delete(f"/v1/tokens/{spell(str(uuid.uuid4()))}", headers=tokens.admin)
    await _assert_422(resp, "path.token_id")
    # The canonical spelling still works.
    assert (await sclient.get(f"/v1/issues/{issue}", headers=tokens.semarang)).status == 200


async def test_ids_in_data_are_stored_canonical(sclient: Any, tokens: Tokens) -> None:
    """A hearing id sent in upper case is stored (and shown by the views) in canonical form."""
    hearing, _ = await _semarang_issue(sclient, tokens)
    issue = new_id()
    resp = await post_events(
        sclient,
        tokens.semarang,
        f"issue-{issue}",
        0,
        {"type": "IssueRaised", "data": issue_raised(hearing.upper(), SEMARANG)},
    )
    assert resp.status == 201, await resp.text()
    last = (await resp.json())["last_position"]
    page = await (await sclient.get(f"/v1/streams/issue-{issue}", headers=tokens.semarang)).json()
    assert page["events"][0]["data"]["hearing_id"] == hearing
    board = await sclient.get(
        f"/v1/views/issues?hearing={hearing}&min_position={last}", headers=tokens.national
    )
    assert board.status == 200, await board.text()
    assert issue in {item["id"] for item in (await board.json())["items"]}
