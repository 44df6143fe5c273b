"""Groups of similar titles: pg_trgm's similarity, joined in memory with a prefix filter.

The recurring-issues view groups the distinct issue titles of a category whose trigram
similarity (PostgreSQL's ``pg_trgm``: shared trigrams over all trigrams of the two)
reaches a threshold, transitively. Asking PostgreSQL for every similar pair does not
scale when titles share words ("Masalah honorarium di Kota A" / "... di Kabupaten B"):
the trigram index then offers every title as a candidate for every other, and the pairs
run into millions. Here PostgreSQL still computes each title's trigram set
(``show_trgm``: its exact rules for words, case and padding) and the join runs in
memory:

* **Prefix filter.** Trigrams are ordered rarest first. Two sets with similarity >= t
  share at least one trigram among the first ``|A| - ceil(t * |A|) + 1`` of either, so
  only titles sharing such a trigram are compared.
* **Size filter.** Similarity >= t needs ``t * |A| <= |B| <= |A| / t``.
* **No comparison inside a group.** A pair whose titles are already connected is
  skipped, so a dense category costs about one comparison per title.

Similarity is computed as pg_trgm does (a float4 quotient compared with the threshold),
so the groups are the ones the ``%`` operator defines.
"""

from __future__ import annotations

import math
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping


def _float4(x: float) -> float:
    # pg_trgm divides in float4; round the same way before comparing.
    result: float = struct.unpack("f", struct.pack("f", x))[0]
    return result


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """pg_trgm's ``similarity()`` of two trigram sets."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return _float4(shared / (len(a) + len(b) - shared))


def similar_groups(grams: Mapping[str, frozenset[str]], threshold: float) -> list[list[str]]:
    """The titles of ``grams`` (title -> trigram set) in connected groups of similar ones.

    Every title appears in exactly one group (alone if nothing is similar to it);
    groups and their titles come in sorted order.
    """
    titles = sorted(grams)
    parent = {t: t for t in titles}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # The filters use a hair less than the threshold: pg_trgm rounds the quotient to
    # float4, which can lift a pair just below the threshold onto it.
    bound = threshold * (1 - 1e-6)
    frequency = Counter(g for t in titles for g in grams[t])
    index: dict[str, list[str]] = defaultdict(list)
    # Small sets first: a title's partners then are mostly already indexed.
    size = {t: len(grams[t]) for t in titles}
    for title in sorted(titles, key=lambda t: (size[t], t)):
        mine, n = grams[title], size[title]
        if not n:
            continue  # no trigrams: similar to nothing
        ordered = sorted(mine, key=lambda g: (frequency[g], g))
        prefix = ordered[: n - math.ceil(bound * n) + 1]
        smallest, largest = bound * n, n / bound
        root = find(title)
        seen: set[str] = set()
        for gram in prefix:
            for other in index[gram]:
                # Already in this group (the common case in a dense category), or
                # already compared: nothing to learn.
                if parent[other] == root or other in seen:
                    continue
                seen.add(other)
                if not smallest <= size[other] <= largest:
                    continue
                other_root = find(other)
                if other_root != root and similarity(mine, grams[other]) >= threshold:
                    parent[max(root, other_root)] = min(root, other_root)
                    root = find(title)
            index[gram].append(title)
    groups: dict[str, list[str]] = defaultdict(list)
    for title in titles:
        groups[find(title)].append(title)
    return sorted(groups.values())


def trigram_sets(rows: Iterable[tuple[str, list[str] | None]]) -> dict[str, frozenset[str]]:
    """``{title: trigrams}`` from ``(title, show_trgm(title))`` rows."""
    return {title: frozenset(grams or ()) for title, grams in rows}
