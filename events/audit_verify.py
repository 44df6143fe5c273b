"""Offline verification of an export against a signed checkpoint, in constant memory.

Needs neither the database nor the service: only the NDJSON export, the checkpoint and
the log's verifier key (checked by the caller, see coord/audit_cli.py).

How positions are located. Each export line carries the *stored* leaf hash ``L`` of its
position and the event now at that position ``E``. The verifier

1. folds the ``L`` column into the RFC 9162 root and compares it with the signed root:
   if equal, the ``L`` column is the authentic tree (SHA-256 collision resistance);
2. recomputes each event's leaf hash and compares it with its own ``L``. Where they
   differ it looks for the event's true place: a position ``j`` within ``window`` lines
   where the event, hashed *as if it sat at j*, gives ``L_j``;
3. classifies each position:

   * **altered**: the event matches no leaf nearby, and its own leaf is not matched by
     any other event (changed in place);
   * **inserted**: the event matches no leaf, but its own leaf belongs to an event
     further on (something was put in front of that event);
   * **missing**: a leaf no event matches, while its position is empty or holds an
     event that belongs elsewhere (the event was removed);
   * **reordered**: an event that belongs at another position ``j``, not explained by
     the insertions and removals before it (a swap, a move).

Memory: a deque of at most ``2 * window + 1`` lines plus the O(log n) root stack; the
finding lists are capped (counts stay exact). A relocation further than ``window``
lines shows as altered/missing instead of reordered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from events.leaf import LeafError, _Names, event_leaf_hash, parse_json
from events.merkle import RootAccumulator, decode_hash
from events.notes import Checkpoint

__all__ = ["KINDS", "Finding", "Report", "verify_export"]

Kind = Literal["altered", "missing", "inserted", "reordered", "malformed"]
KINDS: tuple[Kind, ...] = ("altered", "missing", "inserted", "reordered", "malformed")

#: The members of an export line (docs/audit-format.md §6.1), no others.
LINE_FIELDS = frozenset({"leaf_index", "leaf_hash", "event"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one log position."""

    kind: Kind
    position: int
    detail: str


@dataclass(slots=True)
class Report:
    """The outcome of verifying one export."""

    first_position: int = 0
    last_position: int = 0
    lines: int = 0
    checkpoint_size: int | None = None
    #: Root of the export's leaf-hash column at the checkpoint size (None: not reached).
    computed_root: bytes | None = None
    root_matches: bool = False
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    max_listed: int = 10_000

    def add(self, kind: Kind, position: int, detail: str) -> None:
        """Record a finding (listed up to `max_listed`, always counted)."""
        self.counts[kind] += 1
        if len(self.findings) < self.max_listed:
            self.findings.append(Finding(kind, position, detail))

    @property
    def ok(self) -> bool:
        """Signed root reproduced and every event hashes to its leaf."""
        return self.root_matches and not any(self.counts.values())

    def positions(self, kind: Kind) -> list[int]:
        """Listed positions of one kind, in order."""
        return [f.position for f in self.findings if f.kind == kind]


@dataclass(slots=True)
class _Slot:
    pos: int
    leaf: bytes | None  # stored leaf hash from the export; None: line absent
    event: dict[str, Any] | None
    self_ok: bool = False
    origin: int | None = None  # where this event belongs (its own pos if self_ok)
    claimed_by: int | None = None  # position of the event that hashes to this leaf
    searched: bool = False
    malformed: str | None = None  # why this position's line is not canonical input


def _hash_at(event: dict[str, Any], position: int) -> bytes | None:
    try:
        return event_leaf_hash(event, position=position)
    except LeafError:
        return None


class _Verifier:
    def __init__(self, checkpoint: Checkpoint | None, window: int, report: Report) -> None:
        self.checkpoint = checkpoint
        self.w = window
        self.r = report
        self.slots: deque[_Slot] = deque()
        self.acc = RootAccumulator()
        self.root_broken = False  # the leaf column has a hole: the root cannot match
        self.inserted = 0
        self.missing = 0
        self.recent_missing: deque[int] = deque()  # missing positions within reach
        self.last_pos = 0
        self.ending = False
        self.unplaced = 0  # malformed lines without a usable leaf_index since the last good one

    # -- input -----------------------------------------------------------

    def feed(self, line_no: int, raw: bytes) -> None:
        r = self.r
        names = _Names()
        try:
            obj = parse_json(raw, names=names)
            index = obj["leaf_index"] if isinstance(obj, dict) else None
            if type(index) is not int or index < 0:
                raise LeafError(f"leaf_index must be an integer >= 0, not {index!r}")
        except LeafError as e:
            # Nothing in the line says where it belongs: it stands for the next position.
            self.unplaced += 1
            r.add("malformed", self.last_pos + self.unplaced, f"line {line_no}: {e}")
            return
        pos = index + 1
        if r.lines == 0:
            r.first_position = pos
            if pos != 1:
                r.notes.append(f"export starts at position {pos}: the root cannot be checked")
                self.root_broken = True
        elif pos <= self.last_pos:
            r.add("malformed", pos, f"line {line_no}: position {pos} repeated or out of order")
            return
        else:
            for gap in range(self.last_pos + 1, pos):
                hole = _Slot(gap, None, None)
                if gap - self.last_pos <= self.unplaced:
                    hole.malformed = "reported above"  # the unplaced line stood for it
                self._push(hole)
        self.unplaced = 0
        r.lines += 1
        self._push(self._slot(line_no, pos, obj, names))

    def _slot(self, line_no: int, pos: int, obj: dict[str, Any], names: _Names) -> _Slot:
        """The slot of a located line; malformed parts are noted, not trusted."""
        where = f"line {line_no}"
        # The outermost object is built last: its own repeated names are the line's.
        if names.last_repeated or set(obj) != LINE_FIELDS:
            why = "repeated member name" if names.last_repeated else "members other than"
            return _Slot(pos, None, None, malformed=f"{where}: {why} {sorted(LINE_FIELDS)}")
        try:
            leaf = decode_hash(obj["leaf_hash"])
        except ValueError as e:
            return _Slot(pos, None, None, malformed=f"{where}: leaf_hash: {e}")
        event = obj["event"]
        if names.repeated is not None:
            return _Slot(pos, leaf, None, malformed=f"{where}: repeated member {names.repeated!r}")
        if event is None:
            return _Slot(pos, leaf, None)  # the row is gone: `missing` unless found elsewhere
        try:
            own = event_leaf_hash(event)
        except LeafError as e:
            return _Slot(pos, leaf, None, malformed=f"{where}: event: {e}")
        slot = _Slot(pos, leaf, event)
        if own == leaf and event["position"] == pos:
            slot.self_ok, slot.origin, slot.claimed_by, slot.searched = True, pos, pos, True
        return slot

    def _push(self, slot: _Slot) -> None:
        if slot.leaf is None:
            self.root_broken = True
        elif not self.root_broken:
            self.acc.append(slot.leaf)
            self._maybe_root()
        self.slots.append(slot)
        self.last_pos = slot.pos
        self._advance()

    def _maybe_root(self) -> None:
        cp = self.checkpoint
        if cp is not None and self.acc.size == cp.size:
            self.r.computed_root = self.acc.root()
            self.r.root_matches = self.r.computed_root == cp.root_hash

    # -- the window --------------------------------------------------------

    def _advance(self) -> None:
        if self.ending:
            for slot in self.slots:
                if not slot.searched:
                    self._search(slot)
        elif self.slots:
            # Positions in the deque are contiguous: the line `w` behind the newest one
            # now has all its candidate leaves in view.
            i = self.last_pos - self.w - self.slots[0].pos
            if i >= 0 and not self.slots[i].searched:
                self._search(self.slots[i])
        while self.slots and (self.ending or self.slots[0].pos <= self.last_pos - 2 * self.w):
            self._finalize(self.slots.popleft())

    def _search(self, slot: _Slot) -> None:
        """Find the position this event belongs to, among unclaimed leaves nearby."""
        slot.searched = True
        if slot.event is None:
            return
        for other in self.slots:
            if other.pos < slot.pos - self.w:
                continue
            if other.pos > slot.pos + self.w:
                break
            if other is slot or other.self_ok or other.claimed_by is not None or other.malformed:
                continue
            if other.leaf is not None and _hash_at(slot.event, other.pos) == other.leaf:
                slot.origin = other.pos
                other.claimed_by = slot.pos
                return

    def _would_be_missing(self, slot: _Slot) -> bool:
        return (
            slot.leaf is not None
            and slot.malformed is None
            and slot.claimed_by is None
            and (slot.event is None or slot.origin is not None)
        )

    def _missing_before(self, origin: int, here: _Slot) -> int:
        """Missing leaves below `origin`: those finalized (`here` included), plus any ahead."""
        if origin <= here.pos:
            return self.missing - sum(1 for p in self.recent_missing if p >= origin)
        # `here` has left the deque; the slots still in it are the positions after it.
        ahead = sum(1 for s in self.slots if s.pos < origin and self._would_be_missing(s))
        return self.missing + ahead

    def _finalize(self, slot: _Slot) -> None:
        r, pos = self.r, slot.pos
        while self.recent_missing and self.recent_missing[0] < pos - 2 * self.w:
            self.recent_missing.popleft()
        if slot.malformed is not None:
            if slot.malformed != "reported above":
                r.add("malformed", pos, slot.malformed)
            return
        if slot.leaf is None and slot.event is None:
            r.add("missing", pos, "no line for this position in the export")
            self._count_missing(pos)
            return
        if slot.leaf is None:
            r.add("malformed", pos, "line without a leaf hash")
            return
        if slot.event is not None and slot.origin is None:
            if slot.claimed_by is not None:
                r.add("inserted", pos, f"event {slot.event.get('id')} matches no leaf")
                self.inserted += 1
            else:
                r.add("altered", pos, f"event {slot.event.get('id')} does not hash to its leaf")
        elif self._would_be_missing(slot):
            # Near the end, leaves of events pushed past the export by insertions are not gone.
            pushed = self.ending and pos > self.last_pos - (self.inserted - self.missing)
            if pushed:
                r.notes.append(f"the event of position {pos} was pushed past the export's end")
            else:
                r.add("missing", pos, "no event in the export hashes to this leaf")
                self._count_missing(pos)
        if slot.event is not None and slot.origin is not None and slot.origin != pos:
            shift = self.inserted - self._missing_before(slot.origin, slot)
            if pos - slot.origin != shift:
                r.add("reordered", pos, f"event {slot.event.get('id')} belongs at {slot.origin}")

    def _count_missing(self, pos: int) -> None:
        self.missing += 1
        self.recent_missing.append(pos)

    def finish(self) -> None:
        self.ending = True
        self._advance()
        cp, r = self.checkpoint, self.r
        r.last_position = self.last_pos
        if cp is None:
            return
        r.checkpoint_size = cp.size
        if self.root_broken:
            r.root_matches = False
        elif self.acc.size < cp.size:
            r.notes.append(
                f"the export ends at position {self.acc.size}, before the checkpoint's "
                f"tree size {cp.size}"
            )
            # Malformed lines at the end were reported where they stood.
            for pos in range(max(self.acc.size, self.last_pos + self.unplaced) + 1, cp.size + 1):
                r.add("missing", pos, "beyond the end of the export")
        elif self.acc.size > cp.size:
            r.notes.append(
                f"positions {cp.size + 1}..{self.acc.size} are newer than the checkpoint "
                "and not covered by its signature"
            )
        if cp.size == 0 and not self.root_broken:
            r.computed_root = RootAccumulator().root()
            r.root_matches = r.computed_root == cp.root_hash
        if not r.root_matches and r.computed_root is not None:
            r.notes.append(
                "the export's leaf hashes do not reproduce the signed root: the stored tree "
                "itself differs from what was signed"
            )


def verify_export(
    lines: Iterable[bytes],
    checkpoint: Checkpoint | None,
    *,
    window: int = 256,
    max_listed: int = 10_000,
) -> Report:
    """Verify NDJSON export lines against an (already signature-checked) checkpoint."""
    if window < 1:
        raise ValueError("window must be at least 1")
    report = Report(max_listed=max_listed)
    v = _Verifier(checkpoint, window, report)
    for n, line in enumerate(lines, 1):
        if line.strip():
            v.feed(n, line)
    v.finish()
    return report
