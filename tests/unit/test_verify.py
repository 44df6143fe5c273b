"""The offline export verifier on synthetic exports, no I/O."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coord.cli import main
from events.audit import merkle
from events.audit.audit_verify import verify_export
from events.audit.leaf import event_leaf_hash, event_object, leaf_bytes, parse_json
from events.audit.notes import Checkpoint, generate_signer, sign_checkpoint

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def make_event(
    position: int, stream: str = "issue-a", raw_data: bytes | None = None, **data: Any
) -> dict[str, Any]:
    """An event object as the export writes it, parsed as the verifier parses it."""
    obj = event_object(
        id=uuid.UUID(int=position),
        stream_id=stream,
        version=position,
        position=position,
        type="Noted",
        schema_version=1,
        data=raw_data or msgspec.json.encode(data or {"n": position}),
        metadata=b"{}",
        recorded_at=T0 + timedelta(seconds=position),
        region_code="35.71",
    )
    parsed: dict[str, Any] = parse_json(leaf_bytes(obj))
    return parsed


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


def test_awkward_numbers_verify() -> None:
    """Honest events holding 1E-7, 4.0, -0.0 or huge integers verify (each is one exact value)."""
    lines, cp = export(30)
    awkward = [
        b'{"x": 0.0000001}',
        b'{"y": 4.0}',
        b'{"z": -0.0, "e": 1E-7, "t": 1.50}',
        b'{"big": 18446744073709551617, "exact": 0.30000000000000000001}',
    ]
    for k, raw in enumerate(awkward):
        pos = 3 + 7 * k
        lines[pos - 1]["event"] = make_event(pos, raw_data=raw)
        lines[pos - 1]["leaf_hash"] = base64.b64encode(
            event_leaf_hash(lines[pos - 1]["event"])
        ).decode()
    root = merkle.root([base64.b64decode(line["leaf_hash"]) for line in lines])
    rep = verify_export(encode(lines), Checkpoint(cp.origin, cp.size, root))
    assert rep.ok, rep.findings


def tampered(lines: list[dict[str, Any]], pos: int, old: bytes, new: bytes) -> list[bytes]:
    """The NDJSON lines with one textual change in the line of position `pos`."""
    raw = encode(lines)
    assert old in raw[pos - 1]
    raw[pos - 1] = raw[pos - 1].replace(old, new, 1)
    return raw


@pytest.mark.parametrize(
    ("old", "new", "root_ok"),
    [
        # A repeated name: a person reads PALSU, a last-wins parser the original value.
        (b'"data":{"n":17}', b'"data":{"n":"PALSU","n":17}', True),
        (b'"metadata":{}', b'"metadata":{"a":1,"a":1}', True),
        (b'"position":17', b'"position":17.0', True),
        (b'"position":17', b'"position":1.7e1', True),
        (b'"version":17', b'"version":17.0', True),
        (b'"schema_version":1', b'"schema_version":true', True),
        (b'"type":"Noted"', b'"type":"Noted","type":"Noted"', True),
        (b'"data":{"n":17}', rb'"data":{"n":17,"s":"\ud800"}', True),  # a lone surrogate
        (b'"data":{"n":17}', b'"data":{"n":NaN}', False),  # not JSON: the line is lost
        (b'"leaf_index":16,', b'"leaf_index":16,"leaf_index":16,', False),
        (b'"leaf_index":16,', b'"leaf_index":16,"note":"x",', False),
    ],
)
def test_non_canonical_input_is_malformed_at_its_position(
    old: bytes, new: bytes, root_ok: bool
) -> None:
    """What the canonical form cannot have produced is malformed, at that position only."""
    lines, cp = export(40)
    rep = verify_export(tampered(lines, 17, old, new), cp, window=8)
    assert rep.positions("malformed") == [17], rep.findings
    assert sum(rep.counts.values()) == 1, rep.findings
    assert rep.root_matches is root_ok and not rep.ok


def test_non_integer_leaf_index_is_malformed_where_the_line_stands() -> None:
    """A line whose leaf_index is 250.0 cannot be placed: malformed at the next position."""
    lines, cp = export(300)
    rep = verify_export(tampered(lines, 250, b'"leaf_index":249,', b'"leaf_index":249.0,'), cp)
    assert rep.positions("malformed") == [250] and sum(rep.counts.values()) == 1
    assert not rep.root_matches


@pytest.mark.parametrize("spelling", ["non-zero padding bits", "no padding", "url-safe"])
def test_non_canonical_base64_leaf_hash_is_malformed(spelling: str) -> None:
    """A leaf hash must be the one canonical base64 spelling of 32 bytes."""
    lines, cp = export(20)
    good = lines[4]["leaf_hash"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(good[42]) ^ 1]  # same 32 bytes, a padding bit set
    bad = {
        "non-zero padding bits": good[:42] + last + "=",
        "no padding": good.rstrip("="),
        "url-safe": good.replace("+", "-").replace("/", "_") if "+" in good else good + "\n",
    }[spelling]
    assert bad != good
    lines[4]["leaf_hash"] = bad
    rep = verify_export(encode(lines), cp)
    assert rep.positions("malformed") == [5] and not rep.ok


def write_files(tmp_path: Path, raw: list[bytes], note: str, vkey: str) -> list[str]:
    """Export, checkpoint and vkey files; the `coord verify` arguments naming them."""
    (tmp_path / "export.ndjson").write_bytes(b"".join(line + b"\n" for line in raw))
    (tmp_path / "cp").write_text(note)
    files = [str(tmp_path / "export.ndjson"), "--checkpoint", str(tmp_path / "cp")]
    return ["verify", *files, "--vkey", vkey, "--json"]


def test_coord_verify_exit_codes(tmp_path: Path, capsys: Any) -> None:
    """0 verified; 1 for a repeated member (malformed at its place); 2 for a forged checkpoint."""
    signer = generate_signer("coord.test/v")
    lines, cp = export(30)
    note = sign_checkpoint(cp, signer)
    assert main(write_files(tmp_path, encode(lines), note, signer.vkey)) == 0
    capsys.readouterr()
    dup = tampered(lines, 9, b'"data":{"n":9}', b'"data":{"n":"PALSU","n":9}')
    assert main(write_files(tmp_path, dup, note, signer.vkey)) == 1
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["malformed"] == [9] and report["root_matches"] is True
    forger = generate_signer("coord.test/v")  # same name, another key
    forged = sign_checkpoint(cp, forger)
    assert main(write_files(tmp_path, encode(lines), forged, signer.vkey)) == 2
    assert "signature" in capsys.readouterr().err


def test_documented_base64_proofs_verify() -> None:
    """The base64 proof vectors of docs/audit-format.md §1.4 verify, read as the CLI reads them."""
    doc = (Path(__file__).parents[2] / "docs" / "audit-format.md").read_text(encoding="utf-8")
    proofs = [parse_json(line) for line in doc.splitlines() if line.startswith('{"leaf_index":5')]
    proofs += [parse_json(line) for line in doc.splitlines() if line.startswith('{"first":')]
    assert len(proofs) == 3
    inputs = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43"]
    inputs += [bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
    leaves = [merkle.leaf_hash(d) for d in inputs]
    roots = {n: merkle.root(leaves[:n]) for n in (3, 6, 7, 8)}
    for root_b64, size in [("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", 8)]:
        assert merkle.decode_hash(root_b64) == roots[size] and root_b64 in doc
    for n in (3, 6, 7):
        assert base64.b64encode(roots[n]).decode() in doc
    inclusion, *consistency = proofs
    assert merkle.decode_hash(inclusion["leaf_hash"]) == leaves[5]
    path = [merkle.decode_hash(h) for h in inclusion["audit_path"]]
    assert merkle.verify_inclusion(leaves[5], 5, 8, path, roots[8])
    for c in consistency:
        proof = [merkle.decode_hash(h) for h in c["proof"]]
        first, second = c["first"], c["second"]
        assert merkle.verify_consistency(first, second, proof, roots[first], roots[second])


@pytest.mark.parametrize("raw", [b'{"x": 0.0000001}', b'{"y": 4.0}', b'{"z": 1E-7, "w": -0.0}'])
def test_inclusion_of_an_event_with_awkward_numbers(raw: bytes, tmp_path: Path) -> None:
    """`coord verify --inclusion --event` hashes the export line as the tree builder did."""
    signer = generate_signer("coord.test/v")
    lines, _ = export(6)
    lines[3]["event"] = make_event(4, raw_data=raw)
    leaves = [event_leaf_hash(line["event"]) for line in lines]
    nodes: dict[merkle.NodeRef, bytes] = {}
    appender = merkle.MerkleAppender()
    for leaf in leaves:
        nodes.update({merkle.NodeRef(n.level, n.idx): n.hash for n in appender.append(leaf)})
    b64 = [
        base64.b64encode(h).decode()
        for h in merkle.inclusion_proof(3, 6, lambda lv, i: nodes[merkle.NodeRef(lv, i)])
    ]
    proof = {"leaf_index": 3, "tree_size": 6, "leaf_hash": base64.b64encode(leaves[3]).decode()}
    (tmp_path / "proof.json").write_bytes(msgspec.json.encode({**proof, "audit_path": b64}))
    (tmp_path / "cp").write_text(
        sign_checkpoint(Checkpoint(signer.name, 6, merkle.root(leaves)), signer)
    )
    line = {"leaf_index": 3, "leaf_hash": proof["leaf_hash"], "event": lines[3]["event"]}
    (tmp_path / "line.json").write_bytes(msgspec.json.encode(line))
    args = ["verify", "--inclusion", str(tmp_path / "proof.json"), "--vkey", signer.vkey]
    args += ["--checkpoint", str(tmp_path / "cp"), "--event", str(tmp_path / "line.json")]
    assert main(args) == 0
    name = sorted(parse_json(raw))[0].encode()  # repeat the first member: last one wins
    dup = msgspec.json.encode(line).replace(b'"data":{', b'"data":{"%s":"PALSU",' % name, 1)
    (tmp_path / "line.json").write_bytes(dup)
    assert main(args) == 2  # a repeated member name is not an event coord wrote


def test_swapped_lines_are_reordered_not_missing() -> None:
    """Two whole lines swapped in the file (issue 17): both reordered, the root still matches."""
    lines, cp = export(300)
    raw = encode(lines)
    raw[9], raw[259] = raw[259], raw[9]
    rep = verify_export(raw, cp)
    assert rep.root_matches and rep.lines == 300
    assert {k: v for k, v in rep.counts.items() if v} == {"reordered": 2}
    assert rep.positions("reordered") == [10, 260]
    assert not rep.ok


@pytest.mark.parametrize("p", [1, 17, 299])
def test_neighbouring_swapped_lines_are_both_reordered(p: int) -> None:
    """Swapping two adjacent lines names both, also at the start and the end of the file."""
    lines, cp = export(300)
    raw = encode(lines)
    raw[p - 1], raw[p] = raw[p], raw[p - 1]
    rep = verify_export(raw, cp, window=8)
    assert rep.root_matches
    assert {k: v for k, v in rep.counts.items() if v} == {"reordered": 2}
    assert rep.positions("reordered") == [p, p + 1]


def test_moved_block_names_the_fewest_lines() -> None:
    """Three lines moved forward: those three are reordered, not the ones they jumped."""
    lines, cp = export(60)
    raw = encode(lines)
    block = raw[20:23]
    del raw[20:23]
    raw[40:40] = block
    rep = verify_export(raw, cp, window=32)
    assert rep.root_matches and rep.positions("reordered") == [21, 22, 23]
    assert sum(rep.counts.values()) == 3


def test_duplicated_line_is_a_duplicate() -> None:
    """A line repeated (next to itself or far away) is one duplicate; nothing else is wrong."""
    for where in (31, 200):
        lines, cp = export(300)
        raw = encode(lines)
        raw.insert(where, raw[30])
        rep = verify_export(raw, cp)
        assert rep.root_matches and rep.lines == 300
        assert {k: v for k, v in rep.counts.items() if v} == {"duplicate": 1}
        assert rep.positions("duplicate") == [31]
        assert "exactly" in rep.findings[0].detail


def test_second_different_line_for_a_position_is_a_duplicate() -> None:
    """A forged second line for a position is a duplicate; the first one is verified."""
    lines, cp = export(50)
    forged = dict(lines[9], event={**lines[9]["event"], "data": {"n": "PALSU"}})
    raw = encode(lines)
    raw.insert(20, msgspec.json.encode(forged))
    rep = verify_export(raw, cp, window=8)
    assert rep.positions("duplicate") == [10] and "different" in rep.findings[0].detail
    assert rep.root_matches and sum(rep.counts.values()) == 1
    # The forged line first: it is the one verified (altered), the honest one the duplicate.
    raw = encode(lines)
    raw[9:9] = [msgspec.json.encode(forged)]
    rep = verify_export(raw, cp, window=8)
    assert rep.positions("altered") == [10] and rep.positions("duplicate") == [10]


def test_line_beyond_the_window_is_missing_then_late() -> None:
    """A line moved further than --window: missing at its place, reported again where it is."""
    lines, cp = export(100)
    raw = encode(lines)
    moved = raw.pop(9)
    raw.insert(60, moved)
    rep = verify_export(raw, cp, window=8)
    assert rep.positions("missing") == [10] and rep.positions("reordered") == [10]
    assert "--window" in next(f.detail for f in rep.findings if f.kind == "reordered")
    rep = verify_export(raw, cp, window=64)  # within reach: only the move is reported
    assert rep.root_matches and rep.positions("reordered") == [10]
    assert sum(rep.counts.values()) == 1


def test_partial_export_starting_later_is_not_reordered() -> None:
    """An honest `--from 40` export verifies its events (the root cannot be checked)."""
    lines, cp = export(60)
    rep = verify_export(encode(lines[39:]), cp, window=4)
    assert rep.first_position == 40 and rep.lines == 21
    assert not any(rep.counts.values()), rep.findings


def test_coord_verify_reports_swapped_lines(tmp_path: Path, capsys: Any) -> None:
    """`coord verify` prints the swap as reordered and exits 1; not as 250 missing positions."""
    signer = generate_signer("coord.test/v")
    lines, cp = export(300)
    raw = encode(lines)
    raw[9], raw[259] = raw[259], raw[9]
    args = write_files(tmp_path, raw, sign_checkpoint(cp, signer), signer.vkey)
    assert main(args) == 1
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["reordered"] == [10, 260] and report["missing"] == []
    assert report["root_matches"] is True and report["counts"]["duplicate"] == 0
