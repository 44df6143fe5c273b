"""Recurring problems without the service: quality on the labelled set and apply cost.

    python -m bench.recurring_apply [--orders 10] [--size 10000]

Prints, for ``shared/data/recurring-dev.jsonl`` grouped by ``projections/grouping.py``
with its defaults, the B-cubed precision/recall/F1 in file order and over shuffled
arrival orders; then the cost of one ``Grouping.add`` (what an ``IssueRaised`` costs the
projection beyond its SQL) at ``--size`` open issues, for two synthetic loads: *varied*
(dev issues with words dropped and mixed, a realistic spread of terms) and *dense* (the
benchmark's seed: every issue says nearly the same thing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from projections.grouping import Grouping
from projections.issue_text import Vocabulary

ROOT = Path(__file__).resolve().parent.parent
SHARED = [ROOT.parent / "shared", ROOT.parents[1] / "shared"]


def _shared(relative: str) -> Path:
    for base in SHARED:
        if (base / relative).is_file():
            return base / relative
    sys.exit(f"shared/{relative} not found beside the repository")


def _scorer() -> Any:
    spec = importlib.util.spec_from_file_location("score", _shared("tools/score_clusters.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quality(issues: list[dict[str, Any]], orders: int) -> None:
    """B-cubed scores in file order and over shuffled orders."""
    vocabulary = Vocabulary.current()
    terms = {i["id"]: vocabulary.issue_terms(i["title"], i["description"]) for i in issues}
    labels = {i["id"]: i["problem"] for i in issues}
    scorer = _scorer()
    results = []
    for seed in range(orders + 1):
        order = list(issues)
        if seed:
            random.Random(seed).shuffle(order)
        g = Grouping()
        for i in order:
            g.add(i["id"], Counter(terms[i["id"]]), i["category"])
        r = scorer.score(labels, list(g.groups.values()))
        results.append(r)
        tag = "file order" if not seed else f"shuffle {seed}"
        print(
            f"  {tag:12} P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f}"
            f" clusters {r['clusters']}"
        )
    f1 = [r["f1"] for r in results]
    p = [r["precision"] for r in results]
    print(
        f"  F1 min {min(f1):.3f} mean {statistics.mean(f1):.3f} max {max(f1):.3f};"
        f" precision min {min(p):.3f} mean {statistics.mean(p):.3f}"
    )


def _varied(issues: list[dict[str, Any]], n: int, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    pool = [w for i in issues for w in i["description"].split()]
    for k in range(n):
        base = issues[k % len(issues)]
        words = [w for w in base["description"].split() if rng.random() > 0.3]
        words += rng.sample(pool, 8)
        title = [w for w in base["title"].split() if rng.random() > 0.2]
        out.append((" ".join(title), " ".join(words)))
    return out


def _dense(n: int) -> list[tuple[str, str]]:
    cats = ["personnel", "regulation", "budget_honorarium", "logistics", "security", "campaign"]
    return [
        (
            f"Masalah {cats[k % len(cats)]} di Kota {k}",
            "Honorarium badan ad hoc terlambat; gudang logistik kurang aman.",
        )
        for k in range(n)
    ]


def cost(texts: list[tuple[str, str]], label: str, measured: int = 1000) -> None:
    """Milliseconds per ``add`` once ``len(texts) - measured`` issues are open."""
    vocabulary = Vocabulary.current()
    terms = [vocabulary.issue_terms(t, d) for t, d in texts]
    g = Grouping()
    start = time.perf_counter()
    for k, c in enumerate(terms[:-measured]):
        g.add(f"{k:08d}", Counter(c), "other")
    fill = time.perf_counter() - start
    costs = []
    for k, c in enumerate(terms[-measured:], start=len(terms) - measured):
        t0 = time.perf_counter()
        g.add(f"{k:08d}", Counter(c), "other")
        costs.append((time.perf_counter() - t0) * 1000)
    mean = statistics.mean(costs)
    costs.sort()
    print(
        f"  {label}: {len(texts) - measured} open issues (filled in {fill:.1f} s);"
        f" add mean {mean:.2f} ms, p50 {costs[len(costs) // 2]:.2f} ms,"
        f" p99 {costs[int(len(costs) * 0.99)]:.2f} ms, max {costs[-1]:.2f} ms;"
        f" groups {len(g.groups)}"
    )


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    data = _shared("data/recurring-dev.jsonl")
    issues = [json.loads(x) for x in data.read_text(encoding="utf-8").splitlines() if x]
    print("recurring-dev.jsonl, B-cubed:")
    quality(issues, args.orders)
    if args.skip_cost:
        return
    print("apply cost (Grouping.add):")
    cost(_varied(issues, args.size + 1000, random.Random(1)), "varied")
    cost(_dense(args.size + 1000), "dense")


if __name__ == "__main__":
    main()
