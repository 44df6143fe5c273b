"""`coord export` and `coord verify`: take the history home and check it offline.

`coord export` talks to a running coord over HTTP (an auditor needs a token, not
database access). `coord verify` needs neither the service nor the database: only the
export, a checkpoint and the log's verifier key, all plain files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import msgspec

from events.audit.audit_verify import KINDS, Report, verify_export
from events.audit.federation_verify import HubIndex, check_region
from events.audit.leaf import LeafError, event_leaf_hash, parse_json
from events.audit.merkle import decode_hash, verify_consistency, verify_inclusion
from events.audit.notes import (
    Checkpoint,
    CheckpointError,
    CosignatureVerifier,
    NoteError,
    Verifier,
    verify_checkpoint,
)
from events.audit.receipt import ReceiptError, verify_receipt, verify_receipt_chain

COMMANDS = frozenset({"export", "verify"})


def register(subparsers: Any) -> None:
    """Add the `export` and `verify` commands to the `coord` argument parser."""
    exp = subparsers.add_parser(
        "export",
        help="download the verifiable log as NDJSON (with its checkpoint)",
        description="Stream GET /v1/audit/export to a file, with a progress bar.",
    )
    exp.add_argument("--out", required=True, type=Path, help="NDJSON file to write")
    exp.add_argument(
        "--checkpoint-out", type=Path, help="also save the checkpoint the export ends at"
    )
    exp.add_argument("--from", dest="first", type=int, help="first position (default 1)")
    exp.add_argument(
        "--to", dest="last", type=int, help="last position (default: latest checkpoint)"
    )
    exp.add_argument("--url", help="coord base URL (COORD_URL, default http://127.0.0.1:8080)")
    exp.add_argument("--token", help="bearer token of an auditor (COORD_TOKEN)")

    ver = subparsers.add_parser(
        "verify",
        help="verify an export, a consistency proof or an inclusion proof, offline",
        description=(
            "coord verify EXPORT.ndjson --checkpoint CP --vkey VKEY\n"
            "coord verify --consistency OLD_CP NEW_CP --proof PROOF.json --vkey VKEY\n"
            "coord verify --inclusion PROOF.json --checkpoint CP --vkey VKEY [--event LINE.json]\n"
            "coord verify --receipt RECEIPT.json [NEWER.json] --vkey VKEY [--cosigner VKEY...]\n"
            "coord verify --receipt RECEIPT.json --consistency NEWER.json --vkey VKEY\n"
            "coord verify --federation HUB.ndjson REGION.ndjson... --checkpoint HUB_CP "
            "--checkpoint REGION_CP... --vkey HUB_VKEY --vkey REGION_VKEY..."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("export", nargs="?", type=Path, help="NDJSON export to verify")
    ver.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        help="signed checkpoint file (with --federation: one per export, in the same order)",
    )
    ver.add_argument(
        "--vkey",
        required=True,
        action="append",
        help="the log's verifier key, or a file holding it (with --federation: one per log)",
    )
    ver.add_argument(
        "--federation",
        nargs="+",
        type=Path,
        metavar="EXPORT",
        help="HUB_EXPORT REGION_EXPORT...: every region event is in the hub's log once",
    )
    ver.add_argument("--origin", help="expected log origin (default: the verifier key's name)")
    ver.add_argument(
        "--consistency",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="OLD NEW: two checkpoints (with --proof); with --receipt: a newer receipt",
    )
    ver.add_argument(
        "--receipt",
        nargs="+",
        type=Path,
        metavar="RECEIPT",
        help="a receipt (GET /v1/audit/receipt/{id}); a second, newer one proves it was kept",
    )
    ver.add_argument(
        "--cosigner",
        action="append",
        default=[],
        help="with --receipt: a cosigner key (tlog-cosignature) whose cosignature is required",
    )
    ver.add_argument("--proof", type=Path, help="consistency proof JSON (with --consistency)")
    ver.add_argument("--inclusion", type=Path, metavar="PROOF", help="inclusion proof JSON")
    ver.add_argument(
        "--event", type=Path, help="with --inclusion: an export line or event object to check"
    )
    ver.add_argument(
        "--window", type=int, default=256, help="how far to look for moved events (lines)"
    )
    ver.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `export` or `verify`; return the exit code (0 ok, 1 verification failed, 2 usage)."""
    try:
        if args.command == "export":
            return asyncio.run(_export(args))
        return _verify(args)
    except ReceiptError as e:
        print(f"coord {args.command}: FAILED: {e}")
        return 1
    except (OSError, ValueError, NoteError, CheckpointError, LeafError) as e:
        print(f"coord {args.command}: {e}", file=sys.stderr)
        return 2


# -- export ----------------------------------------------------------------------


def _progress(done: int, total: int, out: TextIO) -> None:
    width = 40
    frac = done / total if total else 1.0
    bar = "#" * int(frac * width)
    out.write(f"\r[{bar:<{width}}] {done}/{total} events")
    out.flush()


async def _export(args: argparse.Namespace) -> int:
    import aiohttp

    base = (args.url or os.environ.get("COORD_URL") or "http://127.0.0.1:8080").rstrip("/")
    token = args.token or os.environ.get("COORD_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {}
    if args.first is not None:
        params["from"] = str(args.first)
    if args.last is not None:
        params["to"] = str(args.last)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        async with http.get(f"{base}/v1/audit/export", params=params) as resp:
            if resp.status != 200:
                print(f"coord export: {resp.status} {await resp.text()}", file=sys.stderr)
                return 1
            first = int(resp.headers.get("X-Coord-Export-From", "1"))
            last = int(resp.headers.get("X-Coord-Export-To", "0"))
            total, done = max(0, last - first + 1), 0
            tty = sys.stderr.isatty()
            with args.out.open("wb") as f:
                async for chunk in resp.content.iter_chunked(1 << 16):
                    f.write(chunk)
                    done += chunk.count(b"\n")
                    if tty:
                        _progress(done, total, sys.stderr)
            if tty:
                sys.stderr.write("\n")
        print(f"wrote {done} events (positions {first}..{last}) to {args.out}", file=sys.stderr)
        if args.checkpoint_out is not None:
            async with http.get(f"{base}/v1/audit/checkpoint", params={"size": str(last)}) as cp:
                if cp.status != 200:
                    print(f"coord export: no checkpoint at size {last}", file=sys.stderr)
                    return 1
                args.checkpoint_out.write_bytes(await cp.read())
            print(f"wrote the checkpoint at size {last} to {args.checkpoint_out}", file=sys.stderr)
    return 0


# -- verify ----------------------------------------------------------------------


def _read_vkey(value: str) -> Verifier:
    path = Path(value)
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else value.strip()
    return Verifier.from_vkey(text)


def _checkpoint(path: Path, verifier: Verifier, origin: str) -> Checkpoint:
    return verify_checkpoint(path.read_bytes(), [verifier], origin=origin)


def _b64list(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError(f"{what} must be a list of base64 hashes")
    try:
        return [decode_hash(v) for v in values]
    except ValueError as e:
        raise ValueError(f"{what} has a malformed hash: {e}") from e


def _json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file, read as strictly as an export line (no repeated names)."""
    doc = parse_json(path.read_bytes())
    if not isinstance(doc, dict):
        raise ValueError(f"{what} must be a JSON object")
    return doc


def _lines(path: Path) -> Iterator[bytes]:
    # Line by line: the export may be larger than memory.
    with path.open("rb") as f:
        yield from f


def _verify(args: argparse.Namespace) -> int:
    if args.federation:
        return _verify_federation(args)
    if len(args.vkey) != 1:
        raise ValueError("give one --vkey (several only with --federation)")
    if args.checkpoint is not None and len(args.checkpoint) != 1:
        raise ValueError("give one --checkpoint (several only with --federation)")
    args.checkpoint = None if args.checkpoint is None else args.checkpoint[0]
    verifier = _read_vkey(args.vkey[0])
    origin = args.origin or verifier.name
    if args.receipt:
        return _verify_receipts(args, verifier, origin)
    if args.consistency:
        return _verify_consistency(args, verifier, origin)
    if args.inclusion:
        return _verify_inclusion(args, verifier, origin)
    if args.export is None or args.checkpoint is None:
        raise ValueError("give EXPORT and --checkpoint (or --consistency / --inclusion)")
    checkpoint = _checkpoint(args.checkpoint, verifier, origin)
    report = verify_export(_lines(args.export), checkpoint, window=args.window)
    _print_report(report, checkpoint, args.json)
    return 0 if report.ok else 1


def _ranges(positions: list[int]) -> str:
    """`[3, 4, 5, 9]` -> `3-5, 9`."""
    out: list[str] = []
    i = 0
    while i < len(positions):
        j = i
        while j + 1 < len(positions) and positions[j + 1] == positions[j] + 1:
            j += 1
        out.append(str(positions[i]) if i == j else f"{positions[i]}-{positions[j]}")
        i = j + 1
    return ", ".join(out)


def _print_report(report: Report, checkpoint: Checkpoint, as_json: bool) -> None:
    if as_json:
        doc: dict[str, Any] = {
            "ok": report.ok,
            "origin": checkpoint.origin,
            "checkpoint_size": checkpoint.size,
            "first_position": report.first_position,
            "last_position": report.last_position,
            "lines": report.lines,
            "root_matches": report.root_matches,
            "counts": report.counts,
            **{kind: report.positions(kind) for kind in KINDS},
            "findings": [
                {"kind": f.kind, "position": f.position, "detail": f.detail}
                for f in report.findings
            ],
            "notes": report.notes,
        }
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
        return
    print(f"checkpoint: {checkpoint.origin}, tree size {checkpoint.size}, signature OK")
    print(
        f"export:     {report.lines} lines, "
        f"positions {report.first_position}..{report.last_position}"
    )
    print(f"root:       {'matches the checkpoint' if report.root_matches else 'DOES NOT MATCH'}")
    for kind in KINDS:
        if report.counts[kind]:
            listed = _ranges(report.positions(kind))
            print(f"{kind:<10}  {report.counts[kind]} position(s): {listed}")
    for f in report.findings[:50]:
        print(f"  {f.kind} {f.position}: {f.detail}")
    for note in report.notes:
        print(f"note: {note}")
    print("VERIFIED" if report.ok else "FAILED")


def _verify_consistency(args: argparse.Namespace, verifier: Verifier, origin: str) -> int:
    if len(args.consistency) != 2:
        raise ValueError("--consistency needs two checkpoints OLD NEW (or use --receipt)")
    old_path, new_path = args.consistency
    old = _checkpoint(old_path, verifier, origin)
    new = _checkpoint(new_path, verifier, origin)
    if args.proof is None:
        raise ValueError("--consistency needs --proof PROOF.json")
    doc = _json_object(args.proof, "the consistency proof")
    if (doc.get("first"), doc.get("second")) != (old.size, new.size):
        raise ValueError(
            f"the proof is for sizes {doc.get('first')} -> {doc.get('second')}, "
            f"the checkpoints are {old.size} -> {new.size}"
        )
    proof = _b64list(doc.get("proof"), "proof")
    ok = verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    print(
        f"consistency {old.size} -> {new.size} of {origin}: "
        + ("VERIFIED (the new log extends the old one)" if ok else "FAILED")
    )
    return 0 if ok else 1


def _verify_inclusion(args: argparse.Namespace, verifier: Verifier, origin: str) -> int:
    if args.checkpoint is None:
        raise ValueError("--inclusion needs --checkpoint")
    checkpoint = _checkpoint(args.checkpoint, verifier, origin)
    doc = _json_object(args.inclusion, "the inclusion proof")
    index, size = doc.get("leaf_index"), doc.get("tree_size")
    if type(index) is not int or type(size) is not int:
        raise ValueError("the proof needs integer leaf_index and tree_size")
    if size != checkpoint.size:
        raise ValueError(f"the proof is for tree size {size}, the checkpoint for {checkpoint.size}")
    (leaf,) = _b64list([doc.get("leaf_hash")], "leaf_hash")
    if args.event is not None:
        # An export line or a bare event object; hashed by the same encoder as the tree's.
        obj = _json_object(args.event, "the event")
        event = obj["event"] if "leaf_index" in obj else obj
        if event is None:
            raise ValueError("the export line has no event (its row is gone)")
        if event_leaf_hash(event) != leaf:
            print(f"the event does not hash to the proof's leaf hash: FAILED (leaf {index})")
            return 1
        if event["position"] != index + 1:
            print(f"the event says position {event['position']}, the proof {index + 1}: FAILED")
            return 1
    path = _b64list(doc.get("audit_path"), "audit_path")
    ok = verify_inclusion(leaf, index, size, path, checkpoint.root_hash)
    what = "event" if args.event is not None else "leaf"
    print(
        f"inclusion of {what} at position {index + 1} (leaf {index}) in {origin} "
        f"tree size {size}: " + ("VERIFIED" if ok else "FAILED")
    )
    return 0 if ok else 1


def _verify_receipts(args: argparse.Namespace, verifier: Verifier, origin: str) -> int:
    paths = list(args.receipt) + list(args.consistency or [])
    if len(paths) > 2:
        raise ValueError("--receipt takes a receipt and at most one newer receipt")
    cosigners = [CosignatureVerifier.from_vkey(_key_text(k)) for k in args.cosigner]
    docs = [_json_object(p, "the receipt") for p in paths]
    proven = verify_receipt(docs[0], verifier, origin, cosigners)
    print(
        f"receipt: event {proven.event_id} is leaf {proven.leaf_index} (position "
        f"{proven.leaf_index + 1}) of {origin} tree size {proven.tree_size}: VERIFIED"
    )
    for c in proven.cosigned:
        print(f"cosigned by {c.name} at {c.timestamp} (unix time): VERIFIED")
    if len(docs) == 2:
        newer = verify_receipt_chain(proven, docs[1], verifier, origin, cosigners)
        print(
            f"consistency {proven.tree_size} -> {newer.tree_size}: VERIFIED (the event was "
            "never dropped: the newer tree extends the one the receipt was signed in)"
        )
    return 0


def _key_text(value: str) -> str:
    path = Path(value)
    return path.read_text(encoding="utf-8").strip() if path.is_file() else value.strip()


def _verify_federation(args: argparse.Namespace) -> int:
    """Each export against its own checkpoint, then every region event against the hub's."""
    exports: list[Path] = args.federation
    if len(exports) < 2:
        raise ValueError("--federation needs the hub's export and at least one region's")
    checkpoints: list[Path] = args.checkpoint or []
    if len(checkpoints) != len(exports):
        raise ValueError("give one --checkpoint per export, in the same order")
    keys = {v.name: v for v in (_read_vkey(k) for k in args.vkey)}
    ok = True
    hub = HubIndex()
    for i, (export, cp_path) in enumerate(zip(exports, checkpoints, strict=True)):
        note = cp_path.read_bytes()
        origin = _note_origin(note)
        if origin not in keys:
            raise ValueError(f"{cp_path}: no --vkey for log {origin!r}")
        checkpoint = _checkpoint(cp_path, keys[origin], origin)
        lines = hub.add_lines(_lines(export)) if i == 0 else _lines(export)
        report = verify_export(lines, checkpoint, window=args.window)
        role = "hub" if i == 0 else "region"
        print(
            f"{role} {origin}: {report.lines} lines, tree size {checkpoint.size}: "
            + ("VERIFIED" if report.ok else "FAILED (run coord verify on it alone for details)")
        )
        ok = ok and report.ok
        if i == 0:
            continue
        cross = check_region(origin, _lines(export), hub)
        for f in cross.findings[:50]:
            print(
                f"  {f.kind} {origin} position {f.region_position} event {f.event_id}: {f.detail}"
            )
        if len(cross.findings) > 50:
            print(f"  ... {len(cross.findings) - 50} more")
        print(
            f"region {origin}: {cross.events} events, "
            + (
                "each in the hub's log once, unchanged"
                if cross.ok
                else f"{len(cross.findings)} not in the hub's log once, unchanged: FAILED"
            )
        )
        ok = ok and cross.ok
    print("VERIFIED" if ok else "FAILED")
    return 0 if ok else 1


def _note_origin(note: bytes) -> str:
    """The first line of a checkpoint note: its origin (checked against its key after)."""
    return note.split(b"\n", 1)[0].decode("utf-8", "replace")
