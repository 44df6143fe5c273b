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
