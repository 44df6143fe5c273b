"""Recurring problems: issues grouped by what they say, maintained one event at a time.

Pure and in memory (no I/O); ``projections/issue_board.py`` feeds it and stores its
answers. The method, with its defaults:

* **Weights.** An issue is its term counts (``projections/issue_text.py``), weighted
  ``(1 + ln tf) * idf ** IDF_POWER`` with ``idf = 1 + ln((n + 1) / (df + 1))`` over the
  open issues: rare words weigh more, words in every issue (pemilu, KPU, kabupaten)
  almost nothing. Vectors have unit length. The weights are set in steps (``reweigh``:
  when the open issues grew or shrank by ``WEIGHTS_STEP`` and ``WEIGHTS_SLACK``), so
  vectors and pair similarities are computed once per step, not once per add; the
  projection stores them so a reload weighs exactly as before.
* **Average linkage, not chaining.** Two groups merge only while the *average* cosine
  over all their pairs reaches ``THRESHOLD`` (plus ``CATEGORY_BONUS`` when their
  dominant categories agree: category is a hint, not a wall). One similar member is
  not enough, so "Masa kampanye terlalu lama" does not chain into "Kampanye hitam".
* **Incremental.** Candidates come from an inverted index of the new issue's
  ``PROBE_TERMS`` rarest terms (the latest ``PROBE_POSTINGS`` issues of each). An issue
  whose average similarity to its nearest group reaches ``CLEAR`` joins it. Otherwise
  its neighbourhood (the nearby groups, at most ``NEIGHBOURHOOD`` issues) alone is
  re-grouped by average linkage with the current weights and then refined (an issue
  below the threshold with its own group moves to the group it is closest to on
  average, or stands alone). Early decisions near a new issue are thus revisited;
  groups elsewhere stay as they are. Groups of ``NEIGHBOURHOOD`` issues or more are
  settled: a new issue joins one when its average similarity to a fixed sample of it
  (``SAMPLE`` members) reaches the threshold, and they are not re-grouped.
* **Stable ids.** A re-grouped group keeps the id of the old group most of its
  members came from. A new group's id is derived from its *founding member*: the
  member that arrived first (``cluster_id(issue)``, a uuid5 of that issue's id; if a
  live group already has it, the next member's, and so on). An issue that starts a
  problem therefore gives it the same id in every replay, even after a vocabulary edit
  and rebuild regroup other issues, so an analyst's name or merge follows the issues it
  was made about instead of landing on whatever group happens to be created n-th. It
  depends only on the events, so rebuild and verify agree.
* **Analysts win.** A group an analyst touched (merged, named, moved an issue into or
  out of) is *curated*: the algorithm may still add new issues to it but never takes
  its members away or merges it; an issue an analyst placed is *pinned* to its group.

Everything depends only on the order of calls, never on timing, so replaying the same
events gives the same groups.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

#: average cosine two groups need to merge
THRESHOLD = 0.11
#: added to the similarity of two groups whose dominant categories agree
CATEGORY_BONUS = 0.03
#: idf is raised to this power: generic words weigh even less
IDF_POWER = 1.5
#: neighbours must reach this share of the threshold with the new issue
NEIGHBOUR_SHARE = 0.5
#: at most this many issues are re-grouped around a new one
NEIGHBOURHOOD = 30
#: candidate neighbours come from an issue's rarest terms, at most this many
PROBE_TERMS = 8
#: from each probed term, only its most recent issues are candidates (bounds the work
#: when a term is in every issue)
PROBE_POSTINGS = 16
#: a settled group is compared through at most this many of its members (a fixed sample:
#: the smallest ids), and only the SETTLED_CANDIDATES settled groups nearest the issue
SAMPLE = 24
SETTLED_CANDIDATES = 4
#: how many times the neighbourhood is refined after agglomeration
REFINE_PASSES = 1
#: an issue this similar on average to its nearest group simply joins it
CLEAR = 0.3
#: the refinement moves an issue only to a group closer than its own by this much
REFINE_MARGIN = 0.0
#: the weights (idf) are set again when the open issues grew by this factor plus
#: WEIGHTS_SLACK (or shrank by as much)
WEIGHTS_STEP = 1.05
WEIGHTS_SLACK = 5
#: remembered similarities are dropped when this many issues have some
PAIR_MEMORY = 20_000
#: pairs less similar than this count as unrelated (keeps the linkage sparse)
PAIR_FLOOR = 0.02

_NAMESPACE = uuid.UUID("0b7f1c52-6a0e-4f53-9d1e-3f4b8f6f2a41")

Vector = dict[str, float]


def cluster_id(founder: str, attempt: int = 0) -> str:
    """The id of a group founded by issue ``founder`` (deterministic, so replays agree).

    ``attempt`` > 0 gives further ids for the rare founder whose first id is taken.
    """
    name = f"cluster:{founder}" if not attempt else f"cluster:{founder}:{attempt}"
    return str(uuid.uuid5(_NAMESPACE, name))


def cosine(a: Vector, b: Vector) -> float:
    """Dot product of two sparse vectors."""
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(t, 0.0) for t, x in a.items())


def _add(into: Vector, v: Vector) -> None:
    for t, x in v.items():
        into[t] = into.get(t, 0.0) + x


@dataclass
class Member:
    """What grouping keeps of an open issue."""

    terms: Counter[str]
    category: str


@dataclass
class Grouping:
    """The groups of the open issues, updated by ``add``, ``remove`` and the analysts' moves.

    Every method returns the issues whose group changed (issue id -> group id), for the
    caller to store.
    """

    members: dict[str, Member] = field(default_factory=dict)
    group_of: dict[str, str] = field(default_factory=dict)
    #: group -> its members, sorted by id (so a sample of a group is a pure function of it)
    groups: dict[str, list[str]] = field(default_factory=dict)
    df: Counter[str] = field(default_factory=Counter)
    #: term -> the open issues with it, in the order they arrived (dicts keep order)
    postings: dict[str, dict[str, None]] = field(default_factory=dict)
    #: how many groups were created (a statistic: ids come from founding members)
    created: int = 0
    #: issue -> when it arrived among the open issues (relative order only: a reload in
    #: raise order gives the same order; a corrected issue keeps its place)
    arrival: dict[str, int] = field(default_factory=dict)
    arrivals: int = 0
    curated: set[str] = field(default_factory=set)
    pinned: set[str] = field(default_factory=set)
    #: the weights in force: idf of the open issues as they were when there were
    #: ``weights_n`` of them (stored by the projection, so a reload weighs the same)
    weights_n: int = 0
    weights_df: dict[str, int] = field(default_factory=dict)
    #: how often the weights were set in this memory (tells the projection to store them)
    weights_version: int = 0
    # idf and vectors under the weights in force (dropped when they change)
    _idf: dict[str, float] = field(default_factory=dict, repr=False)
    _vectors: dict[str, Vector] = field(default_factory=dict, repr=False)
    _pairs: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    # --- weights --------------------------------------------------------------------

    def idf(self, term: str) -> float:
        """Inverse document frequency under the weights in force, raised to IDF_POWER.

        A term no issue had when the weights were set counts as the rarest.
        """
        w = self._idf.get(term)
        if w is None:
            n = self.weights_n
            base = 1.0 + math.log((n + 1) / (self.weights_df.get(term, 0) + 1))
            w = self._idf[term] = float(base**IDF_POWER)
        return w

    def reweigh(self) -> bool:
        """Set the weights again once the open issues grew or shrank enough; True if so.

        Weights that change with every issue would make every stored vector stale on
        every add; set in steps of WEIGHTS_STEP, vectors are computed once per step.
        """
        n = len(self.members)
        low = (self.weights_n - WEIGHTS_SLACK) / WEIGHTS_STEP
        if low <= n <= self.weights_n * WEIGHTS_STEP + WEIGHTS_SLACK:
            return False
        self.weights_n = n
        self.weights_df = dict(self.df)
        self.weights_version += 1
        self._weights_changed()
        return True

    def vector(self, issue_id: str) -> Vector:
        """The unit tf-idf vector of an issue, with the current weights."""
        v = self._vectors.get(issue_id)
        if v is not None:
            return v
        terms = self.members[issue_id].terms
        # Sorted: the same sums in the same order whether terms came live or from storage.
        weights = {t: (1.0 + math.log(terms[t])) * self.idf(t) for t in sorted(terms) if terms[t]}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        v = self._vectors[issue_id] = {t: w / norm for t, w in weights.items()}
        return v

    def pair(self, a: str, b: str) -> float:
        """Cosine of two issues under the weights in force (remembered until they change)."""
        if a > b:
            a, b = b, a  # one order of the sum, so a remembered value equals a fresh one
        row = self._pairs.get(a)
        if row is not None and (s := row.get(b)) is not None:
            return s
        s = cosine(self.vector(a), self.vector(b))
        self._pairs.setdefault(a, {})[b] = s
        self._pairs.setdefault(b, {})[a] = s
        return s

    def _forget(self, issue_id: str) -> None:
        self._vectors.pop(issue_id, None)
        for other in self._pairs.pop(issue_id, {}):
            self._pairs[other].pop(issue_id, None)

    def _weights_changed(self) -> None:
        self._idf.clear()
        self._vectors.clear()
        self._pairs.clear()

    def _dominant(self, ids: Iterable[str]) -> str:
        counts = Counter(self.members[i].category for i in ids)
        # Ties go to the category name first in order, so the answer is deterministic.
        return min(counts, key=lambda c: (-counts[c], c))

    def similarity(self, issue_id: str, group: str) -> float:
        """Average cosine of an issue to a group's members (its sample if the group is big)."""
        ids = [i for i in self.groups.get(group, ())[: SAMPLE + 1] if i != issue_id][:SAMPLE]
        if not ids:
            return 0.0
        mine = self.vector(issue_id)
        centroid: Vector = {}
        for i in ids:
            _add(centroid, self.vector(i))
        return cosine(mine, centroid) / len(ids)

    # --- changes --------------------------------------------------------------------

    def add(self, issue_id: str, terms: Counter[str], category: str) -> dict[str, str]:
        """Group a new open issue; regroups its neighbourhood."""
        if issue_id in self.members:
            return {}
        self._index(issue_id, terms, category)
        if not self.reweigh() and len(self._pairs) > PAIR_MEMORY:
            self._pairs.clear()  # only a cache: values computed again are the same
        return self._regroup_around(issue_id)

    def load(self, issue_id: str, terms: Counter[str], category: str, group: str | None) -> None:
        """Restore an issue as stored (no regrouping): rebuilding memory from the tables."""
        self._index(issue_id, terms, category)
        if group is not None:
            self._attach(issue_id, group)

    def remove(self, issue_id: str) -> dict[str, str]:
        """Forget an issue (withdrawn); its group keeps its id while it has members."""
        member = self.members.pop(issue_id, None)
        if member is None:
            return {}
        for t in member.terms:
            self.df[t] -= 1
            if not self.df[t]:
                del self.df[t]
            posting = self.postings.get(t)
            if posting is not None:
                posting.pop(issue_id, None)
                if not posting:
                    del self.postings[t]
        self._detach(issue_id)
        self.pinned.discard(issue_id)
        self.arrival.pop(issue_id, None)
        self._forget(issue_id)
        self.reweigh()
        return {}

    def retext(self, issue_id: str, terms: Counter[str]) -> dict[str, str]:
        """An issue's title or description was corrected: group it again by its new terms.

        An issue an analyst placed stays where it was placed (only its terms change).
        """
        member = self.members.get(issue_id)
        if member is None:
            return {}
        arrived = self.arrival[issue_id]
        if issue_id in self.pinned:
            group = self.group_of.get(issue_id)
            self.remove(issue_id)
            self.arrival[issue_id] = arrived  # keeps its place as a founding member
            self.load(issue_id, terms, member.category, group)
            self.pinned.add(issue_id)
            return {}
        old = self.group_of.get(issue_id)
        self.remove(issue_id)
        self.arrival[issue_id] = arrived
        changes = self.add(issue_id, terms, member.category)
        if old is not None and changes.get(issue_id, old) != old:
            return changes
        return changes

    def recategorize(self, issue_id: str, category: str) -> None:
        """An issue's category was corrected (a hint for future grouping only)."""
        if issue_id in self.members:
            self.members[issue_id].category = category

    def place(self, issue_id: str, group: str | None) -> dict[str, str]:
        """An analyst moved an issue into ``group`` (None: into a new group of its own)."""
        if issue_id not in self.members:
            return {}
        old = self.group_of.get(issue_id)
        if old is not None:
            self.curated.add(old)
        self._detach(issue_id)
        if group is None:
            group = self._new_id([issue_id])
        self._attach(issue_id, group)
        self.curated.add(group)
        self.pinned.add(issue_id)
        return {issue_id: group}

    def merge(self, into: str, other: str) -> dict[str, str]:
        """An analyst merged group ``other`` into ``into``."""
        if into == other or other not in self.groups:
            return {}
        moved = list(self.groups.get(other, []))
        for issue_id in moved:
            self._detach(issue_id)
            self._attach(issue_id, into)
        self.curated.add(into)
        self.curated.discard(other)
        return {i: into for i in moved}

    def curate(self, group: str) -> None:
        """An analyst named or otherwise settled ``group``: the algorithm keeps its members."""
        self.curated.add(group)

    # --- internals ------------------------------------------------------------------

    def _index(self, issue_id: str, terms: Counter[str], category: str) -> None:
        self._forget(issue_id)
        self.members[issue_id] = Member(terms=terms, category=category)
        if issue_id not in self.arrival:
            self.arrival[issue_id] = self.arrivals
            self.arrivals += 1
        for t in terms:
            self.df[t] += 1
            self.postings.setdefault(t, {})[issue_id] = None

    def _new_id(self, members: list[str]) -> str:
        """A new group's id: its founding (earliest) member's, unless a live group has it."""
        self.created += 1
        founders = sorted(members, key=lambda i: (self.arrival.get(i, self.arrivals), i))
        for founder in founders:
            candidate = cluster_id(founder)
            if candidate not in self.groups:
                return candidate
        attempt = 1
        while (candidate := cluster_id(founders[0], attempt)) in self.groups:
            attempt += 1
        return candidate

    def _attach(self, issue_id: str, group: str) -> None:
        self.group_of[issue_id] = group
        bisect.insort(self.groups.setdefault(group, []), issue_id)

    def _detach(self, issue_id: str) -> None:
        group = self.group_of.pop(issue_id, None)
        if group is None:
            return
        members = self.groups[group]
        members.remove(issue_id)
        if not members:
            del self.groups[group]

    def _candidates(self, issue_id: str, vector: Vector) -> list[str]:
        # Neighbours share one of the issue's rarest terms: the terms that weigh most.
        # A term in thousands of issues offers only its latest few.
        probe = sorted(vector, key=lambda t: (-vector[t], t))[:PROBE_TERMS]
        found: set[str] = set()
        for t in probe:
            posting = self.postings.get(t, {})
            if len(posting) <= PROBE_POSTINGS:
                found.update(posting)
            else:
                found.update(itertools.islice(reversed(posting), PROBE_POSTINGS))
        found.discard(issue_id)
        return sorted(found)

    def _regroup_around(self, issue_id: str) -> dict[str, str]:
        mine = self.vector(issue_id)
        near: dict[str, float] = {}  # group -> best similarity of a member to the issue
        for other in self._candidates(issue_id, mine):
            s = self.pair(issue_id, other)
            if s >= THRESHOLD * NEIGHBOUR_SHARE:
                g = self.group_of[other]
                near[g] = max(near.get(g, 0.0), s)
        # A clear case joins its group without regrouping anything.
        order = sorted(near, key=lambda g: (-near[g], g))
        if order:
            first = order[0]
            s = self.similarity(issue_id, first)
            if self._dominant(self.groups[first][:SAMPLE]) == self.members[issue_id].category:
                s += CATEGORY_BONUS
            if s >= CLEAR:
                self._attach(issue_id, first)
                return {issue_id: first}
        # The neighbourhood: closest groups first while it stays small; curated and big
        # groups are settled and only compete for the new issue as a whole.
        hood: list[str] = [issue_id]
        settled: list[str] = []
        for g in sorted(near, key=lambda g: (-near[g], g)):
            size = len(self.groups[g])
            if g in self.curated or size >= NEIGHBOURHOOD:
                if len(settled) < SETTLED_CANDIDATES:
                    settled.append(g)
            elif len(hood) + size <= NEIGHBOURHOOD:
                hood.extend(i for i in self.groups[g] if i not in self.pinned)
        old_group = {i: self.group_of[i] for i in hood[1:]}
        for i in hood[1:]:
            self._detach(i)
        groups = self._average_linkage(hood)
        for _ in range(REFINE_PASSES):
            groups = self._refine(groups)
        # The issue may still belong to a settled group rather than its new neighbours.
        best: tuple[float, str] | None = None
        category = self.members[issue_id].category
        for g in settled:
            s = self.similarity(issue_id, g)
            if self._dominant(self.groups[g][:SAMPLE]) == category:
                s += CATEGORY_BONUS
            if s >= THRESHOLD and (best is None or s > best[0]):
                best = (s, g)
        changes: dict[str, str] = {}
        for group in groups:
            if best is not None and group == [issue_id]:
                self._attach(issue_id, best[1])
                changes[issue_id] = best[1]
                continue
            target = self._heir(group, old_group)
            for i in group:
                self._attach(i, target)
                if old_group.get(i) != target:
                    changes[i] = target
        return changes

    def _refine(self, groups: list[list[str]]) -> list[list[str]]:
        """Move each issue to the group it is closest to on average, once.

        Agglomeration decides early merges with little evidence; an issue that ended in
        a group it resembles less than another (or less than THRESHOLD, alone then) moves.
        """
        if len(groups) < 2:
            return groups
        sums: list[Vector] = []
        for group in groups:
            total: Vector = {}
            for i in group:
                _add(total, self.vector(i))
            sums.append(total)
        where = {i: k for k, group in enumerate(groups) for i in group}
        dom = [self._dominant(group) for group in groups]
        for i in sorted(where):
            v = self.vector(i)
            k = where[i]
            size = len(groups[k])
            category = self.members[i].category
            # average to the others of its own group (its own vector removed)
            own = (cosine(v, sums[k]) - 1.0) / (size - 1) if size > 1 else 0.0
            if own + (CATEGORY_BONUS if dom[k] == category else 0.0) >= THRESHOLD:
                continue  # it belongs where it is
            best, best_k = THRESHOLD, -1
            for j, total in enumerate(sums):
                if j != k and len(groups[j]) > 1:
                    s = cosine(v, total) / len(groups[j])
                    s += CATEGORY_BONUS if dom[j] == category else 0.0
                    if s >= best + REFINE_MARGIN:
                        best, best_k = s, j
            if best_k < 0:
                if size == 1:
                    continue
                best_k = len(groups)  # alone
                groups.append([])
                sums.append({})
                dom.append(category)
            groups[k].remove(i)
            groups[best_k].append(i)
            for t, x in v.items():
                sums[k][t] -= x
            _add(sums[best_k], v)
            where[i] = best_k
        return [g for g in groups if g]

    def _heir(self, group: list[str], old_group: dict[str, str]) -> str:
        # The old group most members came from, if no earlier new group took its id.
        votes = Counter(old_group[i] for i in group if i in old_group)
        for g in sorted(votes, key=lambda g: (-votes[g], g)):
            if g not in self.groups:
                return g
        return self._new_id(group)

    def _average_linkage(self, ids: list[str]) -> list[list[str]]:
        """Agglomerate ``ids`` while the best pair of groups reaches the threshold.

        Average similarities of merged groups follow Lance and Williams (the size-weighted
        mean of the two rows), so each merge costs one row, not a recomputation; the best
        pair comes from a heap whose stale entries (a row changed since) are skipped.
        """
        n = len(ids)
        groups: list[list[str]] = [[i] for i in ids]
        cats = [Counter([self.members[i].category]) for i in ids]
        dom = [self.members[i].category for i in ids]
        floor = PAIR_FLOOR
        raw: list[dict[int, float]] = [{} for _ in range(n)]
        for a in range(n):
            for b in range(a + 1, n):
                s = self.pair(ids[a], ids[b])
                if s >= floor:
                    raw[a][b] = raw[b][a] = s
        version = [0] * n
        heap: list[tuple[float, int, int, int, int]] = []

        def push(x: int, y: int, s: float) -> None:
            if x > y:
                x, y = y, x
            link = s + (CATEGORY_BONUS if dom[x] == dom[y] else 0.0)
            if link >= THRESHOLD:
                heapq.heappush(heap, (-link, x, y, version[x], version[y]))

        for x in range(n):
            for y, s in raw[x].items():
                if y > x:
                    push(x, y, s)
        alive = set(range(n))
        while heap:
            _, x, y, vx, vy = heapq.heappop(heap)
            if x not in alive or y not in alive or version[x] != vx or version[y] != vy:
                continue
            nx, ny = len(groups[x]), len(groups[y])
            merged: dict[int, float] = {}
            for z in (set(raw[x]) | set(raw[y])) - {x, y}:
                # A pair missing from a row is below the floor: counts as the floor at most,
                # so using 0 keeps the merged average a lower bound (never merges too much).
                s = (nx * raw[x].get(z, 0.0) + ny * raw[y].get(z, 0.0)) / (nx + ny)
                if s >= floor:
                    merged[z] = s
            for z in raw[y]:
                raw[z].pop(y, None)
            for z in raw[x]:
                raw[z].pop(x, None)
            raw[y] = {}
            raw[x] = merged
            for z, s in merged.items():
                raw[z][x] = s
            groups[x].extend(groups[y])
            cats[x].update(cats[y])
            dom[x] = min(cats[x], key=lambda c: (-cats[x][c], c))
            alive.discard(y)
            version[x] += 1
            for z, s in merged.items():
                push(x, z, s)
        return [groups[i] for i in sorted(alive)]

    # --- reading --------------------------------------------------------------------

    def central(self, group: str) -> str | None:
        """The member closest to the group's centroid (its label when no one named it)."""
        ids = self.groups.get(group)
        if not ids:
            return None
        sample = ids[:SAMPLE]
        centroid: Vector = {}
        for i in sample:
            _add(centroid, self.vector(i))
        return max(sample, key=lambda i: (cosine(self.vector(i), centroid), i))
