"""Offline cross-node check: every region event is in the hub's log once, unchanged (no I/O).

Each node has its own log and tree, so one event has a different position on each node.
Its *content* is the same everywhere: the leaf object (docs/audit-format.md §2) minus
``position``. The check compares leaf hashes computed with the position fixed at 1
(``content_hash``) through the one canonical encoder (events/audit/leaf.py).

Every line of a region export is checked against the hub export: a region's log holds
the events homed on it (all replicated to the hub) and the national events it received
from the hub, so every one of them must be in the hub's log. Each export must also
verify on its own against its signed checkpoint (events/audit/audit_verify.py); the caller
does that first, so the contents compared here are the signed ones.

Memory: one entry (16-byte id, position, 32-byte hash) per hub event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from events.audit.leaf import LeafError, event_leaf_hash, parse_json

__all__ = ["CrossFinding", "CrossReport", "HubIndex", "check_region", "content_hash"]

CrossKind = Literal["missing_at_hub", "different_at_hub", "duplicate_at_hub"]


def content_hash(event: dict[str, Any]) -> bytes:
    """The leaf hash of an event with its node-local position set to 1: its content."""
    return event_leaf_hash(event, position=1)


@dataclass(frozen=True, slots=True)
class CrossFinding:
    """One region event the hub does not hold exactly once, unchanged."""

    kind: CrossKind
    region_position: int
    event_id: str
    detail: str


@dataclass(slots=True)
class CrossReport:
    """The outcome of checking one region export against the hub export."""

    origin: str
    events: int = 0
    findings: list[CrossFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every region event is in the hub's log once, with identical content."""
        return not self.findings


class HubIndex:
    """Event id -> (hub positions, content hash) of a hub export."""

    def __init__(self) -> None:
        """An empty index; feed it the hub export's lines."""
        self._by_id: dict[str, tuple[list[int], bytes]] = {}

    def add_lines(self, lines: Iterable[bytes]) -> Iterable[bytes]:
        """Index lines as they pass through (wraps the stream the export verifier reads)."""
        for raw in lines:
            self._add(raw)
            yield raw

    def _add(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            line = parse_json(raw)
            event = line["event"] if isinstance(line, dict) else None
            if not isinstance(event, dict):
                return  # malformed or gone: the hub's own verification reports it
            digest = content_hash(event)
        except (LeafError, KeyError):
            return
        seen = self._by_id.get(event["id"])
        if seen is None:
            self._by_id[event["id"]] = ([event["position"]], digest)
        else:
            seen[0].append(event["position"])

    def get(self, event_id: str) -> tuple[list[int], bytes] | None:
        """Hub positions and content hash of an event, None if the hub export lacks it."""
        return self._by_id.get(event_id)


def check_region(origin: str, lines: Iterable[bytes], hub: HubIndex) -> CrossReport:
    """Check every event line of a region export against the hub's index."""
    report = CrossReport(origin)
    for raw in lines:
        if not raw.strip():
            continue
        try:
            line = parse_json(raw)
            event = line["event"] if isinstance(line, dict) else None
            if not isinstance(event, dict):
                continue  # reported by the region's own verification
            digest = content_hash(event)
        except (LeafError, KeyError):
            continue
        report.events += 1
        pos, eid = event["position"], event["id"]
        found = hub.get(eid)
        if found is None:
            report.findings.append(
                CrossFinding("missing_at_hub", pos, eid, "the hub's log does not hold it")
            )
        elif len(found[0]) > 1:
            where = ", ".join(str(p) for p in found[0])
            report.findings.append(
                CrossFinding("duplicate_at_hub", pos, eid, f"the hub holds it at {where}")
            )
        elif found[1] != digest:
            report.findings.append(
                CrossFinding(
                    "different_at_hub",
                    pos,
                    eid,
                    f"the hub's copy at position {found[0][0]} has other content",
                )
            )
    return report
