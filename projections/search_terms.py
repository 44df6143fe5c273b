"""Search queries that find what people mean: the recurring view's field vocabulary
(``data/synonyms-id.txt``) applied to what is typed into search.

"pemilih muda" finds issues about "milenial", "upah minimum" finds "UMR": each run of
words that is a known variant stands for every variant of its group (as phrases), the
other words stay as typed. The result is ``to_tsquery`` text, which PostgreSQL then
stems with the ``indonesian`` configuration, so words are matched as the documents are.
Pure; only ``[0-9a-z]`` words reach the query text, so no operator can be smuggled in.
"""

from __future__ import annotations

import re
from typing import Final

from projections.issue_text import Vocabulary, words

# Web-search syntax the user typed on purpose ("phrases", -exclusions, or): expanding
# would OR back in what was excluded, so such queries are left to websearch_to_tsquery.
_OPERATORS: Final = re.compile(r'"|(^|\s)-\S|\sor\s', re.IGNORECASE)
_PART: Final = re.compile(r"[0-9a-z]+")


def _phrase(variant: tuple[str, ...]) -> str | None:
    # "ktp-el" and "uu 7/2017" are several lexemes for PostgreSQL: a phrase of the parts.
    parts = [p for word in variant for p in _PART.findall(word)]
    return " <-> ".join(parts) if parts else None


def groups(vocabulary: Vocabulary) -> dict[str, list[tuple[str, ...]]]:
    """canonical term -> every spelling of it (the term itself first)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for variant, canonical in vocabulary.synonyms.items():
        out.setdefault(canonical, [(canonical,)])
        if variant != (canonical,):
            out[canonical].append(variant)
    return out


def expand(query: str, vocabulary: Vocabulary) -> str | None:
    """``to_tsquery`` text for ``query`` with its known variants widened to their groups,
    or None when nothing widens (or the query uses web-search operators)."""
    if _OPERATORS.search(query):
        return None
    tokens = words(query)
    spellings = groups(vocabulary)
    parts: list[str] = []
    widened = False
    i = 0
    while i < len(tokens):
        for n in range(min(vocabulary.longest, len(tokens) - i), 0, -1):
            canonical = vocabulary.synonyms.get(tuple(tokens[i : i + n]))
            if canonical is not None:
                alternatives = [p for v in spellings[canonical] if (p := _phrase(v))]
                parts.append("(" + " | ".join(dict.fromkeys(alternatives)) + ")")
                widened = True
                i += n
                break
        else:
            phrase = _phrase((tokens[i],))
            if phrase is not None:
                parts.append(f"({phrase})")
            i += 1
    return " & ".join(parts) if widened and parts else None
