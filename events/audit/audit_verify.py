"""Offline verification of an export against a signed checkpoint, in constant memory.

Needs neither the database nor the service: only the NDJSON export, the checkpoint and
the log's verifier key (checked by the caller, see coord/cli/audit.py).

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

The file's own line order is not trusted either. Lines wait (at most ``window`` of them)
until every position before theirs has come, so swapped or moved *lines* are checked at
the position their ``leaf_index`` names and reported as **reordered** (the fewest lines
whose moving restores the order: outside a longest increasing run); a second line for a
position already read is a **duplicate** (the first one is the one verified; the detail
says whether the copy is exact). A position whose line has not come within ``window``
lines is missing; if the line comes later it is reported again, as reordered.

Memory: at most ``window`` waiting lines, a deque of at most ``2 * window + 1`` placed
lines, the text of the lines of the last ``4 * window`` positions (to tell exact
duplicates) and the O(log n) root stack; the finding lists are capped (counts stay
exact). A relocation further than ``window`` lines shows as altered/missing instead of
reordered.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from events.audit.leaf import LeafError, _Names, event_leaf_hash, parse_json
from events.audit.merkle import RootAccumulator, decode_hash
from events.audit.notes import Checkpoint

__all__ = ["KINDS", "Finding", "Report", "moved_lines", "verify_export"]

Kind = Literal["altered", "missing", "inserted", "reordered", "duplicate", "malformed"]
KINDS: tuple[Kind, ...] = (
    "altered",
    "missing",
    "inserted",
    "reordered",
    "duplicate",
    "malformed",
)

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


@dataclass(frozen=True, slots=True)
class _Line:
    """A located line waiting for the lines before it (the file may be out of order)."""

    line_no: int
    obj: dict[str, Any]
    names: _Names
    raw: bytes  # the line's text: tells an exact duplicate from a different one


def moved_lines(arrivals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (position, line number) pairs that are out of place in a run of file lines.

    The fewest lines whose moving restores position order are those outside a longest
    increasing subsequence; both lines of a swapped neighbouring pair are named (either
    one alone would do, and a person looking at the file sees two lines swapped).
    """
    if all(a[0] < b[0] for a, b in pairwise(arrivals)):
        return []
    tails: list[int] = []  # positions ending the best run of each length
    tail_at: list[int] = []  # index in `arrivals` of each tail
    back = [-1] * len(arrivals)
    for i, (pos, _) in enumerate(arrivals):
        k = bisect.bisect_left(tails, pos)
        back[i] = tail_at[k - 1] if k else -1
        if k == len(tails):
            tails.append(pos)
            tail_at.append(i)
        else:
            tails[k], tail_at[k] = pos, i
    keep: set[int] = set()
    i = tail_at[-1]
    while i >= 0:
        keep.add(i)
        i = back[i]
    moved = {i for i in range(len(arrivals)) if i not in keep}
    for i in range(len(arrivals) - 1):
        if arrivals[i][0] == arrivals[i + 1][0] + 1:  # neighbours swapped
            moved.update((i, i + 1))
    return sorted(arrivals[i] for i in moved)


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
        # Reordering the file: lines wait in `pending` until the positions before them came.
        self.pending: dict[int, _Line] = {}
        self.next_pos = 1  # the next position to hand to the tree walk
        self.seen_max = 0
        self.flushing = False
        self.arrivals: list[tuple[int, int]] = []  # (position, line) since the file was in order
        self.reorder_noted = False
        self.recent: dict[int, tuple[int, bytes]] = {}  # recent positions: (line, its text)
        self.covered: set[int] = set()  # positions an unplaced malformed line stands for
        self.late: set[int] = set()  # positions given up on while waiting for their line

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
            stands_for = max(self.seen_max, self.next_pos - 1) + self.unplaced
            self.covered.add(stands_for)
            r.add("malformed", stands_for, f"line {line_no}: {e}")
            return
        pos = index + 1
        self.unplaced = 0
        self.seen_max = max(self.seen_max, pos)
        if pos in self.pending or pos < self.next_pos:
            self._again(line_no, pos, raw)
            return
        self.pending[pos] = _Line(line_no, obj, names, raw)
        self.arrivals.append((pos, line_no))
        if len(self.arrivals) > 8 * self.w:  # bounded memory, even if the file never settles
            self._episode_done()
        self._drain()

    def _again(self, line_no: int, pos: int, raw: bytes) -> None:
        """A line for a position already read (a duplicate) or already given up on (late)."""
        first = self.pending.get(pos)
        seen = (first.line_no, first.raw) if first is not None else self.recent.get(pos)
        if pos in self.late or (self.r.lines and pos < self.r.first_position):
            self.r.add(
                "reordered",
                pos,
                f"line {line_no} comes more than {self.w} lines after its place: counted "
                "missing there (a larger --window finds it)",
            )
        elif seen is None:
            self.r.add("duplicate", pos, f"line {line_no} repeats position {pos}")
        elif seen[1].strip() == raw.strip():
            self.r.add("duplicate", pos, f"line {line_no} repeats line {seen[0]} exactly")
        else:
            self.r.add(
                "duplicate",
                pos,
                f"line {line_no} is a second, different line for position {pos} "
                f"(line {seen[0]} is the one verified)",
            )

    def _drain(self) -> None:
        """Hand lines to the tree walk in position order, as far as they are contiguous."""
        while True:
            while self.next_pos in self.pending:
                self._deliver(self.next_pos, self.pending.pop(self.next_pos))
            if not self.pending:
                self._episode_done()
                return
            if len(self.pending) <= self.w and not self.flushing:
                return
            if self.r.lines == 0:
                # No line for position 1 nearby: the export starts later (`--from`).
                self.next_pos = min(self.pending)
                continue
            # Given up waiting: the position has no line (or one too far away to see).
            pos = self.next_pos
            hole = _Slot(pos, None, None)
            if pos in self.covered:
                hole.malformed = "reported above"  # an unplaced malformed line stood for it
            else:
                self.late.add(pos)
            self.next_pos += 1
            self._forget(pos)
            self._push(hole)

    def _deliver(self, pos: int, line: _Line) -> None:
        r = self.r
        if r.lines == 0:
            r.first_position = pos
            if pos != 1:
                r.notes.append(f"export starts at position {pos}: the root cannot be checked")
                self.root_broken = True
        r.lines += 1
        self.next_pos = pos + 1
        self.recent[pos] = (line.line_no, line.raw)
        self._forget(pos)
        self._push(self._slot(line.line_no, pos, line.obj, line.names))

    def _forget(self, pos: int) -> None:
        """Drop what is kept about positions more than 4 * window behind `pos`."""
        horizon = pos - 4 * self.w
        # Every position passes here once, in order: one entry leaves per position.
        self.recent.pop(horizon, None)
        if self.covered and min(self.covered) < horizon:
            self.covered = {p for p in self.covered if p >= horizon}
        if len(self.late) > self.w:
            self.late = {p for p in self.late if p >= horizon}

    def _episode_done(self) -> None:
        """Lines that arrived out of order, now all placed: name the ones that moved."""
        arrivals, self.arrivals = self.arrivals, []
        if len(arrivals) < 2:
            return  # the in-order case: nothing moved
        for pos, line_no in moved_lines(arrivals):
            self.r.add("reordered", pos, f"line {line_no} is out of order in the export file")
            if not self.reorder_noted:
                self.reorder_noted = True
                self.r.notes.append(
                    "some lines are out of order in the file; each was checked at its position"
                )

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
        self.flushing = True
        self._drain()
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
            end = max(self.acc.size, self.last_pos, *self.covered)
            for pos in range(end + 1, cp.size + 1):
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
