"""Event ids are private to their scope.

A `409 duplicate-event-id` used to name the stream holding the id, even another region's;
and CloudEvents ids that are not UUIDs became `uuid5(namespace, source + "\\n" + id)`,
which anyone can compute: one region could claim another's future event ids and have
its real events refused for ever.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.payloads import hearing_scheduled, issue_raised, new_id
from tests.security.conftest import KEDIRI, SEMARANG, Tokens, post_events

CE_JSON = "application/cloudevents+json"


async def test_duplicate_id_409_reveals_nothing_across_regions(
    sclient: Any, tokens: Tokens
) -> None:
    """Kediri reusing Semarang's event id learns only that the id is taken; national sees where."""
    taken = str(uuid.uuid4())
    semarang_issue = new_id()
    resp = await post_events(
        sclient,
        tokens.semarang,
        f"issue-{semarang_issue}",
        0,
        {"id": taken, "type": "IssueRaised", "data": issue_raised(None, SEMARANG)},
    )
    assert resp.status == 201

    attempt = {"id": taken, "type": "IssueRaised", "data": issue_raised(None, KEDIRI)}
    resp = await post_events(sclient, tokens.kediri, f"issue-{new_id()}", 0, attempt)
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == "urn:coord:problem:duplicate-event-id"
    assert problem["event_id"] == taken
    text = await resp.text()
    for secret in (semarang_issue, SEMARANG, "Semarang", "another stream", "version"):
        assert secret not in text, (secret, text)
    assert "stream_id" not in problem

    # A caller who may read the holding stream is told where the id is.
    resp = await post_events(
        sclient,
        tokens.national,
        f"hearing-{new_id()}",
        0,
        {"id": taken, "type": "HearingScheduled", "data": hearing_scheduled(SEMARANG)},
    )
    assert resp.status == 409
    assert (await resp.json())["stream_id"] == f"issue-{semarang_issue}"


def _ce(subject: str, data: dict[str, Any], ce_id: str = "sipol-0001") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": ce_id,
        "source": "https://sipol.kpu.go.id",
        "type": "IssueRaised",
        "subject": subject,
        "data": data,
    }


async def test_region_cannot_preclaim_another_regions_derived_ids(
    sclient: Any, tokens: Tokens
) -> None:
    """Kediri posting Semarang's next (source, id) first does not block Semarang's event."""
    headers = {"Content-Type": CE_JSON}
    kediri_issue, semarang_issue = new_id(), new_id()
    resp = await sclient.post(
        "/v1/cloudevents",
        json=_ce(f"issue-{kediri_issue}", issue_raised(None, KEDIRI)),
        headers={**tokens.kediri, **headers},
    )
    assert resp.status == 201, await resp.text()

    mine = _ce(f"issue-{semarang_issue}", issue_raised(None, SEMARANG))
    resp = await sclient.post("/v1/cloudevents", json=mine, headers={**tokens.semarang, **headers})
    assert resp.status == 201, await resp.text()
    # Semarang's retry is still idempotent: same scope, same derived id.
    again = await sclient.post("/v1/cloudevents", json=mine, headers={**tokens.semarang, **headers})
    assert again.status == 200
    assert await again.json() == await resp.json()

    ids = set()
    for who, issue in ((tokens.kediri, kediri_issue), (tokens.semarang, semarang_issue)):
        page = await (await sclient.get(f"/v1/streams/issue-{issue}", headers=who)).json()
        [event] = page["events"]
        assert event["metadata"]["ce_id"] == "sipol-0001"
        ids.add(event["id"])
    assert len(ids) == 2


async def test_canonical_uuid_ce_ids_are_kept(sclient: Any, tokens: Tokens) -> None:
    """A CloudEvents id that is a canonical UUID is the event id itself (not derived)."""
    ce_id = str(uuid.uuid4())
    issue = new_id()
    resp = await sclient.post(
        "/v1/cloudevents",
        json=_ce(f"issue-{issue}", issue_raised(None, KEDIRI), ce_id),
        headers={**tokens.kediri, "Content-Type": CE_JSON},
    )
    assert resp.status == 201
    page = await (await sclient.get(f"/v1/streams/issue-{issue}", headers=tokens.kediri)).json()
    assert page["events"][0]["id"] == ce_id
