"""Search query expansion with the field vocabulary (synonyms and abbreviations)."""

from __future__ import annotations

import pytest

from projections.issue_text import Vocabulary
from projections.search_terms import expand


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.current()


def test_a_variant_stands_for_its_whole_group(vocabulary: Vocabulary) -> None:
    """ "pemilih muda" reaches "milenial"; other words stay as typed, ANDed."""
    text = expand("pemilih muda Kediri", vocabulary)
    assert text is not None
    group, rest = text.split(" & ")
    assert "milenial" in group and "pemilih <-> muda" in group and "gen <-> z" in group
    assert rest == "(kediri)"


def test_multiword_variant_and_abbreviation(vocabulary: Vocabulary) -> None:
    """ "upah minimum" and "UMR" are one group; "ktp-el" becomes a phrase of its parts."""
    text = expand("upah minimum", vocabulary)
    assert text is not None and "umr" in text and "upah <-> minimum" in text
    ktp = expand("KTP-el", vocabulary)
    assert ktp is not None and "ktp <-> el" in ktp


@pytest.mark.parametrize(
    "query",
    ['"pemilih muda"', "pemilih muda -kediri", "milenial or pemuda", "logistik terlambat"],
)
def test_operators_and_plain_queries_are_left_alone(vocabulary: Vocabulary, query: str) -> None:
    """Web-search operators keep their meaning; a query with no variant is not rewritten."""
    assert expand(query, vocabulary) is None


@pytest.mark.parametrize("query", ["umr & !x", "umr)|(", "umr:*", "umr <-> '", "umr\\"])
def test_hostile_queries_yield_only_words(vocabulary: Vocabulary, query: str) -> None:
    """No tsquery operator from the user reaches to_tsquery: only the words survive."""
    text = expand(query, vocabulary)
    assert text is not None
    stripped = text.replace("<->", " ").replace("|", " ").replace("&", " ")
    assert set(stripped) <= set("abcdefghijklmnopqrstuvwxyz0123456789 ()")
