"""Indonesian problem details: every kind of refusal, asked for in Indonesian, has an
Indonesian title and detail (English kept in ``detail_en``) and the same field path."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from coord.middlewares import unavailable
from coord.problem_language import FALLBACK_ID, in_indonesian
from coord.ratelimit import too_many
from tests.api.payloads import append, issue_raised, new_id
from tests.conftest import bearer

# Words of the English details that have no business in an Indonesian one.
ENGLISH = frozenset(
    "the is are must not no of an expected got required missing field unknown invalid does "
    "exist found only send too many body method allowed request outside retry be with value "
    "malformed maximum exceeded size given once between integer number "
    "version writer already taken roles needs this token's time zone offset "
    "arrive unexpected error shortly position view reached".split()
)
# Quoted values, code spans and field paths are carried over as sent.
_QUOTED = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|\$[^\s,]*|query\.\S+")
# Identifiers are values too: a random UUID's hex letters can spell "be" or "add".
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def english_words(text: str) -> set[str]:
    """The English words left in a detail, once quoted values are taken out."""
    return set(re.findall(r"[a-z']+", _UUID.sub(" ", _QUOTED.sub(" ", text.lower())))) & ENGLISH


ID = "id-ID,id;q=0.9,en;q=0.5"


def requests(stream: str) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path, request kwargs, status): a sample of each kind of refusal."""
    events = f"/v1/streams/{stream}/events"
    good = append(0, ("IssueRaised", issue_raised(None)))
    return [
        (
            "POST",
            events,
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("POST", events, {"json": {"events": []}}, 422),
        ("POST", events, {"json": {**good, "expected_version": "nol"}}, 422),
        ("POST", events, {"json": {**good, "extra": 1}}, 422),
        ("POST", events, {"json": append(0, ("IssueRaised", issue_raised(None, severity=9)))}, 422),
        ("POST", events, {"json": append(0, ("IssueRaised", issue_raised(None, title="")))}, 422),
        (
            "POST",
            events,
            {"json": append(0, ("IssueRaised", issue_raised(None, category="x")))},
            422,
        ),
        ("POST", events, {"json": append(5, ("IssueRaised", issue_raised(None)))}, 409),
        ("POST", events, {"data": b"x", "headers": {"Content-Type": "text/plain"}}, 415),
        (
            "POST",
            events,
            {"data": b" " * (1024 * 1024 + 10), "headers": {"Content-Type": "application/json"}},
            413,
        ),
        ("POST", "/v1/streams/issue-NOT-A-UUID/events", {"json": good}, 422),
        ("GET", "/v1/views/issues?limit=0", {}, 422),
        ("GET", "/v1/views/issues?limit=abc", {}, 422),
        ("GET", "/v1/views/issues?status=nope", {}, 422),
        ("GET", "/v1/views/issues?province=3", {}, 422),
        ("GET", "/v1/views/issues?from=2024-13-01", {}, 422),
        ("GET", "/v1/views/issues?from=2024-01-01T10:00:00", {}, 422),
        ("GET", "/v1/views/issues?cursor=bm90LWEtY3Vyc29y", {}, 422),
        ("GET", "/v1/views/issues?format=xlsx", {}, 422),
        ("GET", "/v1/views/issues?limit=1&limit=2", {}, 422),
        ("GET", "/v1/search?q=%20", {}, 422),
        ("GET", "/v1/issues/NOT-A-UUID?as_of=yesterday", {}, 422),
        ("GET", "/v1/views/recommendations/not-a-uuid", {}, 422),
        ("GET", f"/v1/views/recommendations/{new_id()}", {}, 404),
        ("GET", "/v1/views/regions/99", {}, 404),
        ("GET", f"/v1/streams/issue-{new_id()}", {}, 404),
        ("GET", "/v1/nowhere", {}, 404),
        ("DELETE", "/v1/views/issues", {}, 405),
        ("GET", "/v1/views/issues", {"headers": {"Authorization": "Bearer nope"}}, 401),
        ("GET", "/v1/views/issues", {"headers": {"Authorization": ""}}, 401),
    ]


async def test_every_kind_of_refusal_in_indonesian(client: Any, token_for: Any) -> None:
    """400, 401, 404, 405, 409, 413, 415 and 422 (body, query, path, cursor, dates) asked
    for with ``Accept-Language: id``: Indonesian title and detail, no English left, the
    English detail in ``detail_en``, and the same status and field as in English."""
    national = bearer(await token_for(client, "national", name="Setjen Wantannas"))
    stream = f"issue-{new_id()}"
    for method, path, kwargs, status in requests(stream):
        answers = []
        for language in ("en", ID):
            headers = {**national, "Accept-Language": language, **kwargs.get("headers", {})}
            sent = {**kwargs, "headers": headers}
            if isinstance(sent.get("data"), bytes):  # a fresh stream each time (large bodies)
                sent["data"] = io.BytesIO(sent["data"])
            resp = await client.request(method, path, **sent)
            assert resp.status == status, (path, await resp.text())
            assert resp.content_type == "application/problem+json", path
            answers.append(await resp.json())
        english, indonesian = answers
        assert indonesian.get("field") == english.get("field"), path
        assert indonesian["title"] != english["title"], path
        assert not english_words(indonesian["title"]), (path, indonesian["title"])
        assert not english_words(indonesian["detail"]), (path, indonesian["detail"])
        # Each of these has its own entry in the catalogue, not the general statement.
        assert indonesian["detail"] not in FALLBACK_ID.values(), (path, english["detail"])
        assert indonesian.get("detail_en", english["detail"]) == english["detail"], path
        assert "detail_en" not in english
    # Nothing was written by any of them.
    resp = await client.get(f"/v1/streams/{stream}", headers=national)
    assert resp.status == 404


async def test_regional_refusals_in_indonesian(client: Any, token_for: Any) -> None:
    """403s (a national view, another region, another region's write) in Indonesian."""
    kediri = {
        **bearer(await token_for(client, "regional", ["35.71"], "KPU Kota Kediri")),
        "Accept-Language": "id",
    }
    other = append(0, ("IssueRaised", issue_raised(None, "81.71")))
    for method, path, body in (
        ("GET", "/v1/views/recommendations", None),
        ("GET", "/v1/views/regions/81.71", None),
        ("POST", f"/v1/streams/issue-{new_id()}/events", other),
    ):
        resp = await client.request(method, path, json=body, headers=kediri)
        assert resp.status == 403, await resp.text()
        problem = await resp.json()
        assert problem["title"] == "Tidak diizinkan" and resp.headers["Content-Language"] == "id"
        assert not english_words(problem["detail"]), problem
        assert problem["detail"] not in FALLBACK_ID.values(), problem
        assert problem["detail_en"] and problem["detail"] != problem["detail_en"]


@pytest.mark.parametrize(
    "problem",
    [
        too_many(2.5, "this token sent too many requests; slow down"),
        too_many(1, "too many requests without a valid token from this address"),
        unavailable("slow"),
    ],
)
def test_limits_in_indonesian(problem: Any) -> None:
    """429 and 503 (hard to provoke through a test client) in Indonesian, headers kept."""
    translated = in_indonesian(problem)
    assert not english_words(translated.detail or ""), translated.detail
    assert translated.detail not in FALLBACK_ID.values()
    assert translated.extra["detail_en"] == problem.detail
    assert translated.headers["Retry-After"] == problem.headers["Retry-After"]
