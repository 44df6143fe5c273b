"""Property: generated valid events of every type, through the HTTP write path, never stop a view.

Hypothesis generates worlds (hearings, issues citing them, recommendations citing those,
tokens) with random but schema-valid payloads, in random lawful-or-not orders. Every
request must be answered 201 or a 4xx problem (never a 5xx), every event type must be
accepted somewhere, and afterwards no projection has failed and every view answers 200.

The examples are drawn up front (derandomized, so a run is reproducible) and then written
through one app: one database and one set of projections for the whole property keeps it
to seconds.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.domain.categories import CATEGORIES
from events.domain.organizations import ORGANIZATION_CODES
from events.domain.types import EVENT_TYPES, STREAM_CATEGORIES
from tests.conftest import bearer

PROVINCES = ["35", "33"]
REGIONS = ["35.01", "35.71", "35.78", "33.01", "33.74"]
WORLDS = 25

Post = tuple[str, str, str, dict[str, Any]]  # (writer, stream id, event type, data)

_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def _text(max_size: int) -> st.SearchStrategy[str]:
    # The schemas' "not blank" is re.search(r"\S"); the sizes stay small to keep it quick.
    return st.text(_chars, min_size=1, max_size=min(max_size, 60)).filter(
        lambda s: re.search(r"\S", s) is not None
    )


_short = _text(200)
_medium = _text(2000)
_long = _text(20000)
_time = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2025, 12, 31)).flatmap(
    lambda d: st.sampled_from(
        [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=9))]
    ).map(lambda tz: d.replace(tzinfo=tz).isoformat())
)
_org = st.fixed_dictionaries({"code": st.sampled_from(ORGANIZATION_CODES), "name": _short})
_url = st.from_regex(r"\Ahttps?://[a-z0-9.]{1,30}/[a-z0-9/]{0,30}\Z")


def _optional(strategy: st.SearchStrategy[Any]) -> dict[str, st.SearchStrategy[Any]]:
    return {"value": strategy}


def _hearing_follow_up(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    match kind:
        case "HearingRescheduled":
            return st.fixed_dictionaries(
                {"scheduled_at": _time}, optional={"venue": _short, "reason": _medium}
            )
        case "HearingCancelled":
            return st.fixed_dictionaries({"reason": _medium})
        case "ParticipantsRecorded":
            participant = st.fixed_dictionaries(
                {"name": _short, "role": _short, "organization": _org}
            )
            return st.fixed_dictionaries(
                {"participants": st.lists(participant, min_size=1, max_size=3)}
            )
        case "StatementRecorded":
            return st.fixed_dictionaries(
                {"speaker": _short, "organization": _org, "text": _long},
                optional={"quote": _medium},
            )
        case "HearingDetailsCorrected":
            return st.fixed_dictionaries(
                {"title": _short, "reason": _medium}, optional={"agenda": _medium, "venue": _short}
            )
        case "ParticipantRemoved":
            return st.fixed_dictionaries(
                {"participant_index": st.integers(0, 2), "reason": _medium}
            )
        case "StatementCorrected":
            return st.fixed_dictionaries(
                {"statement_index": st.just(0), "text": _long, "reason": _medium}
            )
        case "StatementRetracted":
            return st.fixed_dictionaries({"statement_index": st.just(0), "reason": _medium})
        case "HearingStatusCorrected":
            return st.fixed_dictionaries(
                {"status": st.sampled_from(["scheduled", "cancelled"]), "reason": _medium}
            )
        case _:
            return st.fixed_dictionaries({"held_at": _time, "opened_by": _short, "summary": _long})


HEARING_FOLLOW_UPS = [
    "ParticipantsRecorded",
    "StatementRecorded",
    "HearingDetailsCorrected",
    "StatementCorrected",
    "HearingRescheduled",
    "HearingHeld",
    "ParticipantRemoved",
    "StatementRetracted",
    "HearingStatusCorrected",
    "HearingCancelled",
]
ISSUE_FOLLOW_UPS = [
    "IssueEvidenceAdded",
    "IssueCategoryCorrected",
    "IssueCorrected",
    "IssueWithdrawn",
]
RECOMMENDATION_FOLLOW_UPS = [
    "IssuesCited",
    "RecommendationRevised",
    "IssueUncited",
    "RecommendationApproved",
    "RecommendationSubmitted",
    "ResponseRecorded",
    "ProgressReported",
    "RecommendationClosed",
]


def _follow_ups(kinds: list[str]) -> st.SearchStrategy[list[str]]:
    """The whole lawful order, a random subsequence of it, or that shuffled (some refused)."""
    ordered = st.lists(st.booleans(), min_size=len(kinds), max_size=len(kinds)).map(
        lambda keep: [k for k, y in zip(kinds, keep, strict=True) if y]
    )
    return st.one_of(st.just(kinds), ordered, ordered.flatmap(st.permutations))


@st.composite
def world(draw: st.DrawFn) -> list[Post]:
    """Hearings, issues at them, a recommendation citing the issues, and their follow-ups."""
    posts: list[Post] = []
    hearings: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 2))):
        hid, region = str(uuid.uuid4()), draw(st.sampled_from(REGIONS))
        data = draw(
            st.fixed_dictionaries(
                {
                    "region_code": st.just(region),
                    "title": _short,
                    "agenda": _medium,
                    "venue": _short,
                    "scheduled_at": _time,
                    "convened_by": _org,
                    "host_organization": _org,
                }
            )
        )
        posts.append(("regional", f"hearing-{hid}", "HearingScheduled", data))
        for kind in draw(_follow_ups(HEARING_FOLLOW_UPS)):
            posts.append(("regional", f"hearing-{hid}", kind, draw(_hearing_follow_up(kind))))
        hearings.append((hid, region))
    issues: list[str] = []
    for n in range(draw(st.integers(2, 3))):
        iid = str(uuid.uuid4())
        # The second issue stands alone (no hearing that may be cancelled): it can always be cited.
        hearing = None if n == 1 else draw(st.none() | st.sampled_from(hearings))
        region = hearing[1] if hearing else draw(st.sampled_from(REGIONS))
        data = draw(
            st.fixed_dictionaries(
                {
                    "region_code": st.just(region),
                    "raised_by": _org,
                    "category": st.sampled_from(sorted(CATEGORIES)),
                    "title": _short,
                    "description": _text(5000),
                    "severity": st.integers(1, 5),
                },
                # An issue at a hearing is raised when it is recorded (a random time would
                # mostly fall before the hearing, which the rules refuse).
                optional={} if hearing else {"raised_at": _time},
            )
        )
        if hearing is not None:
            data["hearing_id"] = draw(st.sampled_from([hearing[0], hearing[0].upper()]))
        posts.append(("regional", f"issue-{iid}", "IssueRaised", data))
        # The first two issues are never withdrawn: the recommendation can always cite them.
        follow_ups = ISSUE_FOLLOW_UPS if n > 1 else ISSUE_FOLLOW_UPS[:-1]
        for kind in draw(_follow_ups(follow_ups)):
            follow = {
                "IssueEvidenceAdded": st.fixed_dictionaries(
                    {"description": _medium}, optional={"url": _url, "source": _short}
                ),
                "IssueCategoryCorrected": st.fixed_dictionaries(
                    {"category": st.sampled_from(sorted(CATEGORIES)), "reason": _medium}
                ),
                "IssueCorrected": st.fixed_dictionaries(
                    {"title": _short, "reason": _medium},
                    optional={"severity": st.integers(1, 5), "description": _medium},
                ),
                "IssueWithdrawn": st.fixed_dictionaries({"reason": _medium}),
            }[kind]
            posts.append(("regional", f"issue-{iid}", kind, draw(follow)))
        issues.append(iid)
    rid = str(uuid.uuid4())
    cited, others = issues[:1], issues[1:] or issues[:1]
    data = draw(st.fixed_dictionaries({"title": _short, "body": _long, "addressee": _short}))
    posts.append(
        ("national", f"recommendation-{rid}", "RecommendationDrafted", {**data, "issue_ids": cited})
    )
    for kind in draw(_follow_ups(RECOMMENDATION_FOLLOW_UPS)):
        follow = {
            "IssuesCited": st.just({"issue_ids": others[:1]}),
            "IssueUncited": st.fixed_dictionaries(
                {"issue_id": st.sampled_from(others)}, optional={"reason": _medium}
            ),
            "RecommendationRevised": st.fixed_dictionaries(
                {}, optional={"title": _short, "body": _long, "addressee": _short}
            ),
            "RecommendationApproved": st.fixed_dictionaries({"approved_by": _short}),
            "RecommendationSubmitted": st.fixed_dictionaries(
                {"submitted_to": _short, "submitted_at": _time}
            ),
            "ResponseRecorded": st.fixed_dictionaries(
                {"responder": _short, "text": _long, "received_at": _time}
            ),
            "ProgressReported": st.fixed_dictionaries(
                {"percent": st.integers(0, 100), "note": _medium},
                optional={"evidence_url": _url},
            ),
            "RecommendationClosed": st.fixed_dictionaries({"outcome": _medium}),
        }[kind]
        posts.append(("national", f"recommendation-{rid}", kind, draw(follow)))
    # Analysts' curation of recurring problems: name a cluster, move issues into it (some
    # of which may be withdrawn: refused), merge another cluster (or itself: refused).
    cluster, other = str(uuid.uuid4()), str(uuid.uuid4())
    curation = [
        ("ClusterNamed", st.fixed_dictionaries({"name": _short})),
        (
            "IssueReassigned",
            st.lists(st.sampled_from(issues), min_size=1, max_size=len(issues)).map(
                lambda ids: {"issue_ids": ids}
            ),
        ),
        (
            "ClustersMerged",
            st.lists(st.sampled_from([other, cluster]), min_size=1, max_size=2).map(
                lambda ids: {"cluster_ids": ids}
            ),
        ),
    ]
    for kind, strategy in draw(st.permutations(curation)):
        posts.append(("national", f"cluster-{cluster}", kind, draw(strategy)))
    return posts


_token_request = st.fixed_dictionaries(
    {"name": _short, "role": st.sampled_from(["regional", "national", "auditor", "admin"])}
).map(lambda t: {**t, "regions": ["35.71"] if t["role"] == "regional" else []})


def _draw_examples() -> tuple[list[list[Post]], list[dict[str, Any]]]:
    worlds: list[list[Post]] = []
    token_requests: list[dict[str, Any]] = []

    @settings(
        max_examples=WORLDS,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(world(), _token_request)
    def collect(w: list[Post], token: dict[str, Any]) -> None:
        worlds.append(w)
        token_requests.append(token)

    collect()
    return worlds, token_requests


async def test_generated_events_pass_every_projection(sclient: Any, token_for: Any) -> None:
    """Every generated event is 201 or a 4xx problem; each type lands; no projection fails."""
    regional = bearer(await token_for(sclient, "regional", PROVINCES, "Generated office"))
    national = bearer(await token_for(sclient, "national"))
    admin = bearer(await token_for(sclient, "admin"))
    writers = {"regional": regional, "national": national}
    worlds, token_requests = _draw_examples()
    accepted: set[str] = set()
    last = 0
    for posts in worlds:
        for writer, stream_id, kind, data in posts:
            resp = await sclient.post(
                f"/v1/streams/{stream_id}/events",
                json={"expected_version": "any", "events": [{"type": kind, "data": data}]},
                headers=writers[writer],
            )
            assert resp.status in (201, 409, 422), (kind, data, resp.status, await resp.text())
            if resp.status == 201:
                accepted.add(kind)
                last = max(last, (await resp.json())["last_position"])
            else:
                assert resp.content_type == "application/problem+json"
    for request in token_requests:
        resp = await sclient.post("/v1/tokens", json=request, headers=admin)
        assert resp.status == 201, await resp.text()
        token_id = (await resp.json())["token_id"]
        assert (await sclient.delete(f"/v1/tokens/{token_id}", headers=admin)).status == 204
        accepted |= {"TokenIssued", "TokenRevoked"}
    # System events (ProjectionSkipped) are written by the operator's CLI, never over HTTP.
    domain_types = {t for t in EVENT_TYPES if STREAM_CATEGORIES[t] not in ("access", "system")}
    assert accepted >= domain_types | {"TokenIssued", "TokenRevoked"}, sorted(
        set(EVENT_TYPES) - accepted
    )

    views = [
        "/v1/views/issues",
        "/v1/views/issues/summary",
        "/v1/views/issues/recurring",
        "/v1/views/issues/uncovered",
        "/v1/views/recommendations",
        "/v1/views/hearings",
        "/v1/views/regions/35",
        "/v1/views/activity",
        "/v1/search?q=a",
    ]
    for path in views:
        sep = "&" if "?" in path else "?"
        resp = await sclient.get(f"{path}{sep}min_position={last}", headers=national)
        assert resp.status == 200, (path, await resp.text())
    listing = await sclient.get("/v1/views/recommendations?limit=500", headers=national)
    for item in (await listing.json())["items"]:
        one = await sclient.get(f"/v1/views/recommendations/{item['id']}", headers=national)
        assert one.status == 200, await one.text()
    status = await (await sclient.get("/v1/projections", headers=national)).json()
    assert status["items"] and all(p["state"] != "failed" for p in status["items"]), status
