"""The history checker: what the load was told against what the database holds.

Pure: it takes the load's history and the log as read back, and counts anomalies.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.faults.harness import History


@dataclass(frozen=True)
class Row:
    """One logged event as read back: position, event id, stream, version."""

    position: int
    event_id: str
    stream_id: str
    version: int


@dataclass
class Verdict:
    """The four counts the issue asks for, plus the structural checks."""

    attempted: int
    acknowledged: int
    indeterminate: int
    refused: int
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    misplaced: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No anomaly of any kind."""
        return not (self.lost or self.duplicated or self.unexpected or self.misplaced) and not (
            self.problems
        )

    def figures(self) -> dict[str, int]:
        """The figures docs/reliability.md records."""
        return {
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "indeterminate": self.indeterminate,
            "refused": self.refused,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "misplaced": self.misplaced,
        }


def check(history: History, rows: list[Row], *, foreign: frozenset[str] = frozenset()) -> Verdict:
    """Judge `history` against the log `rows`; `foreign` are event ids written outside the load."""
    v = Verdict(
        attempted=len(history.ops),
        acknowledged=history.count("ok"),
        indeterminate=history.count("indeterminate"),
        refused=history.count("failed"),
    )
    seen = Counter(r.event_id for r in rows)
    v.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    by_id = {r.event_id: r for r in rows}
    invoked: set[str] = set()
    for op in history.ops:
        invoked.update(op.event_ids)
        present = [i for i in op.event_ids if i in by_id]
        if present and len(present) != len(op.event_ids):
            v.problems.append(f"append to {op.stream} landed partly: {present}")
        if op.outcome == "ok":
            v.lost += len(op.event_ids) - len(present)
            for k, event_id in enumerate(op.event_ids):
                row = by_id.get(event_id)
                if row is None:
                    continue
                assert op.first_position is not None and op.first_version is not None
                if (row.position, row.version, row.stream_id) != (
                    op.first_position + k,
                    op.first_version + k,
                    op.stream,
                ):
                    v.misplaced += 1
        elif op.outcome == "failed" and present:
            # A refused append must have written nothing.
            v.unexpected += len(present)
    v.unexpected += sum(1 for r in rows if r.event_id not in invoked and r.event_id not in foreign)
    positions = [r.position for r in rows]
    if positions != list(range(1, len(rows) + 1)):
        v.problems.append("positions are not dense and increasing from 1")
    versions: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        versions[r.stream_id].append(r.version)
    for stream, vs in versions.items():
        if vs != list(range(1, len(vs) + 1)):
            v.problems.append(f"{stream} has versions {vs[:10]}, not 1..n in log order")
    return v
