"""Issue 12 item 9: "not yours" and "not there" get one answer (404, same body) on reads by id,
at any `as_of`; rule messages name no region the caller may not read."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.payloads import append, hearing_scheduled, issue_raised
from tests.conftest import bearer


def _comparable(problem: dict[str, Any], real_id: str, fake_id: str) -> dict[str, Any]:
    """The problem with the probed id (and its instance path) made equal."""
    return {k: str(v).replace(real_id, "ID").replace(fake_id, "ID") for k, v in problem.items()}


async def test_other_regions_objects_read_as_missing(client: Any, token_for: Any) -> None:
    """Streams, hearings and issues of another region: 404 with a missing object's body."""
    kediri = bearer(await token_for(client, "regional", ["35.71"], name="KPU Kota Kediri"))
    aceh = bearer(await token_for(client, "regional", ["11.01"], name="KPU Aceh Selatan"))
    hid, iid = str(uuid.uuid4()), str(uuid.uuid4())
    resp = await client.post(
        f"/v1/streams/hearing-{hid}/events",
        json=append(0, ("HearingScheduled", hearing_scheduled())),
        headers=kediri,
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        f"/v1/streams/issue-{iid}/events",
        json=append(0, ("IssueRaised", issue_raised(hid))),
        headers=kediri,
    )
    assert resp.status == 201, await resp.text()
    created = await (await client.get(f"/v1/hearings/{hid}", headers=kediri)).json()
    assert created["id"] == hid

    for real_id, path in (
        (hid, "/v1/streams/hearing-{}"),
        (iid, "/v1/streams/issue-{}"),
        (hid, "/v1/hearings/{}"),
        (iid, "/v1/issues/{}"),
        (hid, "/v1/hearings/{}?as_of=2000-01-01T00:00:00Z"),
        (hid, "/v1/hearings/{}?as_of=2999-01-01T00:00:00Z"),
        (iid, "/v1/issues/{}?as_of=2000-01-01T00:00:00Z"),
        (iid, "/v1/issues/{}?as_of=2999-01-01T00:00:00Z"),
        (hid, "/v1/hearings/{}?as_of_version=1"),
    ):
        fake_id = str(uuid.uuid4())
        theirs = await client.get(path.format(real_id), headers=aceh)
        missing = await client.get(path.format(fake_id), headers=aceh)
        assert theirs.status == missing.status == 404, (path, await theirs.text())
        assert theirs.content_type == missing.content_type == "application/problem+json"
        assert _comparable(await theirs.json(), real_id, fake_id) == _comparable(
            await missing.json(), real_id, fake_id
        )
        # The owner still reads it.
        assert (await client.get(path.format(real_id), headers=kediri)).status in (200, 404)


async def test_citing_another_regions_hearing_names_no_region(client: Any, token_for: Any) -> None:
    """An issue citing a hearing elsewhere is refused exactly as one citing no hearing."""
    national = bearer(await token_for(client, "national"))
    kediri = bearer(await token_for(client, "regional", ["35.71"], name="KPU Kota Kediri"))
    elsewhere = str(uuid.uuid4())
    resp = await client.post(
        f"/v1/streams/hearing-{elsewhere}/events",
        json=append(0, ("HearingScheduled", hearing_scheduled("33.74"))),
        headers=national,
    )
    assert resp.status == 201, await resp.text()
    nowhere = str(uuid.uuid4())
    answers = []
    for hearing in (elsewhere, nowhere):
        resp = await client.post(
            f"/v1/streams/issue-{uuid.uuid4()}/events",
            json=append(0, ("IssueRaised", issue_raised(hearing))),
            headers=kediri,
        )
        problem = await resp.json()
        assert resp.status == 422
        assert "33.74" not in str(problem)
        answers.append(_comparable(problem, elsewhere, nowhere))
    for answer in answers:
        answer.pop("instance", None)
    assert answers[0] == answers[1]
