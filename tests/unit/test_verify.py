"""The offline export verifier on synthetic exports, no I/O."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from events import merkle
from events.audit_verify import verify_export
from events.leaf import event_leaf_hash, event_object
from events.notes import Checkpoint

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def make_event(position: int, stream: str = "issue-a", **data: Any) -> dict[str, Any]:
    """An event object as the export writes it, decoded."""
    obj = event_object(
        id=uuid.UUID(int=position),
        stream_id=stream,
        version=position,
        position=position,
        type="Noted",
        schema_version=1,
        data=msgspec.json.encode(data or {"n": position}),
        metadata=b"{}",
        recorded_at=T0 + timedelta(seconds=position),
        region_code="35.71",
    )
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(obj))
    return decoded


def export(n: int) -> tuple[list[dict[str, Any]], Checkpoint]:
    """The lines of an honest export of `n` events and the checkpoint at `n`."""
    lines = []
    for pos in range(1, n + 1):
        event = make_event(pos)
        leaf = event_leaf_hash(event)
        lines.append(
            {"leaf_index": pos - 1, "leaf_hash": base64.b64encode(leaf).decode(), "event": event}
        )
    root = merkle.root([base64.b64decode(line["leaf_hash"]) for line in lines])
    return lines, Checkpoint("coord.test/v", n, root)


def encode(lines: list[dict[str, Any]]) -> list[bytes]:
    """NDJSON lines."""
    return [msgspec.json.encode(line) for line in lines]


def move(lines: list[dict[str, Any]], src: int, dst: int) -> dict[str, Any]:
    """The event of position `src` as the export shows it at position `dst`."""
    event = dict(lines[src - 1]["event"])
    event["position"] = dst
    return event


def report_of(
    lines: list[dict[str, Any]], cp: Checkpoint, window: int = 16
) -> dict[str, list[int]]:
    """Findings by kind (only kinds that occur)."""
    rep = verify_export(encode(lines), cp, window=window)
    assert rep.root_matches, rep.notes
    out = {
        k: rep.positions(k) for k in ("altered", "missing", "inserted", "reordered", "malformed")
    }
    return {k: v for k, v in out.items() if v}


def test_honest_export_verifies() -> None:
    """An untouched export reproduces the signed root and has no findings."""
    lines, cp = export(100)
    rep = verify_export(encode(lines), cp, window=8)
    assert rep.ok and rep.lines == 100 and rep.computed_root == cp.root_hash


def test_altered_payload() -> None:
    """A changed payload is reported as altered at its position."""
    lines, cp = export(50)
    lines[16]["event"]["data"] = {"n": 999}
    assert report_of(lines, cp) == {"altered": [17]}


def test_deleted_row_leaves_a_hole() -> None:
    """An event gone from its position (null event or no line at all) is missing."""
    lines, cp = export(50)
    lines[9]["event"] = None
    assert report_of(lines, cp) == {"missing": [10]}
    lines, cp = export(50)
    del lines[29]
    rep = verify_export(encode(lines), cp, window=16)
    assert rep.positions("missing") == [30] and not rep.root_matches


def test_deleted_row_with_renumbering() -> None:
    """Deleting an event and closing the gap reports only that position as missing."""
    lines, cp = export(40)
    for pos in range(12, 40):
        lines[pos - 1]["event"] = move(lines, pos + 1, pos)
    lines[39]["event"] = None
    assert report_of(lines, cp) == {"missing": [12]}


@pytest.mark.parametrize(("p", "q"), [(5, 6), (5, 20), (1, 50)])
def test_swapped_pair(p: int, q: int) -> None:
    """Two events that changed places are both reported as reordered."""
    lines, cp = export(50)
    a, b = move(lines, q, p), move(lines, p, q)
    lines[p - 1]["event"], lines[q - 1]["event"] = a, b
    assert report_of(lines, cp, window=64) == {"reordered": [p, q]}


def test_inserted_row_shifts_the_rest() -> None:
    """A row slipped in (later events renumbered) is reported as inserted, nothing else."""
    lines, cp = export(40)
    shifted = [move(lines, pos, pos + 1) for pos in range(15, 41)]
    forged = make_event(15, n="forged")
    for pos in range(16, 41):
        lines[pos - 1]["event"] = shifted[pos - 16]
    lines[14]["event"] = forged
    rep = verify_export(encode(lines), cp, window=16)
    assert rep.root_matches
    assert rep.positions("inserted") == [15]
    assert sum(rep.counts.values()) == 1
    assert any("pushed past" in n for n in rep.notes)


def test_altered_leaf_column_breaks_the_root() -> None:
    """If the stored leaf hashes were rewritten too, the signed root does not match."""
    lines, cp = export(20)
    lines[3]["event"]["data"] = {"n": 0}
    lines[3]["leaf_hash"] = base64.b64encode(event_leaf_hash(lines[3]["event"])).decode()
    rep = verify_export(encode(lines), cp)
    assert not rep.root_matches and not rep.ok


def test_malformed_and_short_exports() -> None:
    """Garbage lines are malformed; an export shorter than the checkpoint misses the rest."""
    lines, cp = export(10)
    raw = encode(lines[:8])
    raw.insert(3, b"{not json")
    rep = verify_export(raw, cp)
    assert rep.positions("malformed") == [4]
    assert rep.positions("missing") == [9, 10]
    assert not rep.ok


def test_memory_stays_flat() -> None:
    """The verifier keeps at most 2 * window + 1 lines, however long the export."""
    lines, cp = export(300)
    lines[150]["event"]["data"] = {"n": -1}
    rep = verify_export(encode(lines), cp, window=4)
    assert rep.positions("altered") == [151] and rep.root_matches
