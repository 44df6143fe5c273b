"""``GET /v1/vocabulary``: every code a client shows, with Indonesian and English labels,
so that clients never hard-code them."""

from __future__ import annotations

import msgspec
from aiohttp import web

from coord.apidoc import documented
from coord.console.catalogue import MESSAGES
from coord.http.streams import json_response
from events.domain.accountability import OUTCOMES
from events.domain.categories import CATEGORIES
from events.domain.follow_up import FOLLOW_UPS
from events.domain.organizations import ORGANIZATION_CODES

routes = web.RouteTableDef()


class Term(msgspec.Struct, kw_only=True):
    """A code and how to say it."""

    code: str
    id: str
    en: str


class Vocabulary(msgspec.Struct, kw_only=True):
    """Codes of the API with their labels in Indonesian (``id``) and English (``en``)."""

    categories: list[Term]
    issue_statuses: list[Term]
    #: what became of an issue (``follow_up`` on ``GET /v1/issues/{id}``)
    issue_follow_ups: list[Term]
    hearing_statuses: list[Term]
    recommendation_statuses: list[Term]
    #: what came of a recommendation (``response_outcome``, an issue's ``final_outcome``)
    outcomes: list[Term]
    organizations: list[Term]


def _terms(prefix: str, codes: tuple[str, ...], labels: dict[str, tuple[str, str]]) -> list[Term]:
    return [
        Term(code=c, id=labels[f"{prefix}.{c}"][0], en=labels[f"{prefix}.{c}"][1]) for c in codes
    ]


def vocabulary() -> Vocabulary:
    """The whole vocabulary (status and organization labels shared with the console)."""
    return Vocabulary(
        categories=[Term(code=c, id=ind, en=en) for c, (en, ind) in CATEGORIES.items()],
        issue_statuses=_terms("status", ("open", "addressed", "withdrawn"), MESSAGES),
        issue_follow_ups=_terms("follow_up", FOLLOW_UPS, MESSAGES),
        hearing_statuses=_terms("status", ("scheduled", "held", "cancelled"), MESSAGES),
        recommendation_statuses=_terms(
            "status", ("draft", "approved", "submitted", "responded", "closed"), MESSAGES
        ),
        outcomes=_terms("outcome", OUTCOMES, MESSAGES),
        organizations=_terms("org", ORGANIZATION_CODES, MESSAGES),
    )


@routes.get("/v1/vocabulary")
@documented(responses={200: Vocabulary}, tags=("vocabulary",))
async def get_vocabulary(request: web.Request) -> web.Response:
    """Categories, statuses, follow-ups, outcomes and organization codes, labelled id/en."""
    return json_response(vocabulary())
