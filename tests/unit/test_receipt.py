"""Receipts verified offline (events/audit/receipt.py, `coord verify --receipt`), with tampering."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coord.cli import main
from events.audit import merkle
from events.audit.leaf import event_leaf_hash
from events.audit.notes import (
    Checkpoint,
    CosignatureVerifier,
    cosign_checkpoint,
    generate_signer,
    sign_checkpoint,
)
from events.audit.receipt import ReceiptError, verify_receipt, verify_receipt_chain
from tests.unit.test_verify import make_event

LOG = generate_signer("coord.local/jatim")
HUB = generate_signer("coord.local/hub")
FORGER = generate_signer(LOG.name)  # same name, another key


def b64(h: bytes) -> str:
    """Standard base64."""
    return base64.b64encode(h).decode()


def tree(events: list[dict[str, Any]]) -> Any:
    """A get_node over the leaves of `events` (RFC 9162 subtree roots)."""
    leaves = [event_leaf_hash(e) for e in events]
    return lambda level, idx: merkle.root(leaves[idx << level : (idx + 1) << level])


def receipt(
    events: list[dict[str, Any]], pos: int, size: int, *, from_size: int | None = None
) -> dict[str, Any]:
    """The receipt coord serves for the event at `pos` against the checkpoint at `size`."""
    get = tree(events)
    cp = Checkpoint(LOG.name, size, merkle.tree_root(size, get))
    event = events[pos - 1]
    return {
        "event_id": event["id"],
        "origin": LOG.name,
        "leaf_index": pos - 1,
        "tree_size": size,
        "leaf_hash": b64(event_leaf_hash(event)),
        "audit_path": [b64(h) for h in merkle.inclusion_proof(pos - 1, size, get)],
        "event": event,
        "checkpoint": sign_checkpoint(cp, LOG),
        "cosignatures": [cosign_checkpoint(cp.format(), HUB, 1_765_000_000)],
        "consistency": None
        if from_size is None
        else {
            "first": from_size,
            "second": size,
            "proof": [b64(h) for h in merkle.consistency_proof(from_size, size, get)],
        },
    }


EVENTS = [make_event(p) for p in range(1, 31)]
HUB_KEY = CosignatureVerifier.of(HUB)


def test_honest_receipts_verify_and_chain() -> None:
    """A receipt proves inclusion; a newer one with a consistency proof proves it was kept."""
    old = verify_receipt(receipt(EVENTS, 7, 12), LOG.verifier, LOG.name, [HUB_KEY])
    assert (old.leaf_index, old.tree_size, old.cosigned[0].name) == (6, 12, HUB.name)
    new = verify_receipt_chain(
        old, receipt(EVENTS, 7, 30, from_size=12), LOG.verifier, LOG.name, [HUB_KEY]
    )
    assert new.tree_size == 30


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target = doc
    for name in parents:
        target = target[name]
    target[last] = value
    return doc


GOOD = receipt(EVENTS, 7, 12)
OTHER_PATH = [b64(bytes(32)), *GOOD["audit_path"][1:]]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("event.data", {"n": "PALSU"}, "does not hash"),
        ("event.position", 8, "does not hash"),
        ("leaf_hash", b64(event_leaf_hash(EVENTS[7])), "does not hash"),
        ("leaf_index", 7, "not the one"),
        ("audit_path", OTHER_PATH, "does not reach"),
        ("audit_path", GOOD["audit_path"][:-1], "does not reach"),
        ("tree_size", 13, "tree size"),
        ("event_id", EVENTS[7]["id"], "not the one"),
        ("origin", "coord.local/hub", "from log"),
        ("checkpoint", sign_checkpoint(Checkpoint(LOG.name, 12, bytes(32)), FORGER), "checkpoint"),
        (
            "checkpoint",
            sign_checkpoint(Checkpoint(LOG.name, 12, bytes(32)), LOG),
            "does not reach",
        ),
        ("cosignatures", [], "no valid cosignature"),
        (
            "cosignatures",
            [cosign_checkpoint(Checkpoint(LOG.name, 11, bytes(32)).format(), HUB, 1)],
            "no valid cosignature",
        ),
    ],
)
def test_tampered_receipt_fails(path: str, value: Any, reason: str) -> None:
    """Each changed part of a receipt makes it fail, saying which check failed."""
    with pytest.raises(ReceiptError, match=reason):
        verify_receipt(_set(GOOD, path, value), LOG.verifier, LOG.name, [HUB_KEY])


def test_rewritten_history_breaks_the_chain() -> None:
    """A newer receipt from a log that changed an older event cannot prove consistency."""
    old = verify_receipt(GOOD, LOG.verifier, LOG.name)
    rewritten = [*EVENTS[:3], make_event(4, n=-4), *EVENTS[4:]]
    newer = receipt(rewritten, 7, 30, from_size=12)
    # The newer receipt alone is fine (the log signed it) and the event is still there...
    verify_receipt(newer, LOG.verifier, LOG.name)
    # ...but it does not extend what the office was given: position 4 was rewritten.
    with pytest.raises(ReceiptError, match="history was rewritten"):
        verify_receipt_chain(old, newer, LOG.verifier, LOG.name)
    with pytest.raises(ReceiptError, match="no consistency proof"):
        verify_receipt_chain(old, receipt(EVENTS, 7, 30), LOG.verifier, LOG.name)
    with pytest.raises(ReceiptError, match="sizes 11 -> 30"):
        verify_receipt_chain(old, receipt(EVENTS, 7, 30, from_size=11), LOG.verifier, LOG.name)
    with pytest.raises(ReceiptError, match="same event"):
        verify_receipt_chain(old, receipt(EVENTS, 8, 30, from_size=12), LOG.verifier, LOG.name)


def test_coord_verify_receipt_exit_codes(tmp_path: Path, capsys: Any) -> None:
    """0 for an honest receipt (and chain), 1 for a tampered one, 2 for an unreadable one."""
    files = {
        "r1": GOOD,
        "r2": receipt(EVENTS, 7, 30, from_size=12),
        "bad": _set(GOOD, "event.data", {"n": "PALSU"}),
    }
    for name, doc in files.items():
        (tmp_path / name).write_bytes(msgspec.json.encode(doc))
    (tmp_path / "junk").write_text("{not json")
    base = ["verify", "--vkey", LOG.vkey, "--cosigner", HUB_KEY.vkey, "--receipt"]
    assert main([*base, str(tmp_path / "r1")]) == 0
    assert main([*base, str(tmp_path / "r1"), str(tmp_path / "r2")]) == 0
    assert main([*base, str(tmp_path / "r1"), "--consistency", str(tmp_path / "r2")]) == 0
    assert main([*base, str(tmp_path / "bad")]) == 1
    assert main([*base, str(tmp_path / "junk")]) == 2
    out = capsys.readouterr().out
    assert "cosigned by coord.local/hub" in out and "FAILED: the event does not hash" in out
