"""Problems in Indonesian: every rule has its Indonesian statement; Accept-Language wins."""

from __future__ import annotations

import pytest

from coord.problem_language import RULES_ID, in_indonesian, wants_indonesian
from coord.problems import Problem
from events.domain.rules import RULES


def test_every_rule_has_an_indonesian_statement() -> None:
    """The catalogue and its translation name exactly the same rules."""
    assert set(RULES_ID) == set(RULES)


@pytest.mark.parametrize(
    ("header", "indonesian"),
    [
        ("id", True),
        ("id-ID,id;q=0.9,en;q=0.8", True),
        ("in", True),
        ("en-US,en;q=0.9,id;q=0.8", False),
        ("en;q=0.5, id;q=0.7", True),
        ("fr, de", False),
        ("", False),
        ("id;q=abc", False),
    ],
)
def test_negotiation(header: str, indonesian: bool) -> None:
    """Indonesian only when asked for ahead of English; English otherwise."""
    assert wants_indonesian(header) is indonesian


def test_rule_problem_keeps_the_english_detail() -> None:
    """The rule's Indonesian statement becomes the detail; the occurrence stays in detail_en."""
    problem = Problem(
        409, "rule-violation", "State conflict", "issue 1 was withdrawn", rule="issue.withdrawn"
    )
    body = in_indonesian(problem).body()
    assert body["title"] == "Konflik keadaan"
    assert body["detail"] == RULES_ID["issue.withdrawn"]
    assert body["detail_en"] == "issue 1 was withdrawn" and body["rule"] == "issue.withdrawn"


def test_every_detail_template_uses_only_its_patterns_groups() -> None:
    """A template naming a group its pattern lacks would raise (a 5xx) on a match."""
    import string

    from coord.problem_language import DETAILS_ID

    for pattern, text in DETAILS_ID:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        assert used <= set(pattern.groupindex), (pattern.pattern, text)


@pytest.mark.parametrize(
    "detail",
    [
        "province: Expected `str` matching regex '^[0-9]{2}$'",
        "{0} {x} } {",
        "name: {unknown}",
        "no recommendation {id}",
    ],
)
def test_details_with_braces_translate_without_error(detail: str) -> None:
    """Values are carried over as sent, braces included; nothing is left in English."""
    translated = in_indonesian(Problem(422, "validation", "Invalid request", detail, field="$.x"))
    assert translated.detail and translated.detail != detail
    assert translated.extra == {"field": "$.x", "detail_en": detail}
