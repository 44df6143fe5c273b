"""Offline verification of receipts (GET /v1/audit/receipt/{event_id}), no I/O.

A receipt proves that one event was logged: the event's leaf bytes hash to the leaf,
the leaf's inclusion proof reaches the root of a checkpoint signed by the log's key,
and (optionally) cosigners vouch for that checkpoint. A newer receipt of the same event
whose consistency proof starts at the older receipt's size proves the event was never
dropped: the newer signed tree extends the older one (docs/audit-format.md §7).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from events.audit.leaf import LeafError, event_leaf_hash
from events.audit.merkle import decode_hash, verify_consistency, verify_inclusion
from events.audit.notes import (
    Checkpoint,
    Cosignature,
    CosignatureVerifier,
    NoteError,
    Verifier,
    verify_checkpoint,
)

__all__ = ["ProvenReceipt", "ReceiptError", "verify_receipt", "verify_receipt_chain"]

#: The members of a receipt (coord/http/audit.py `Receipt`), no others.
RECEIPT_FIELDS = frozenset(
    {
        "event_id",
        "origin",
        "leaf_index",
        "tree_size",
        "leaf_hash",
        "audit_path",
        "event",
        "checkpoint",
        "cosignatures",
        "consistency",
    }
)


class ReceiptError(ValueError):
    """The receipt does not prove what it claims (a failed check, not a usage error)."""


@dataclass(frozen=True, slots=True)
class ProvenReceipt:
    """What a verified receipt proves."""

    event_id: uuid.UUID
    leaf_index: int
    leaf_hash: bytes
    tree_size: int
    checkpoint: Checkpoint
    cosigned: tuple[Cosignature, ...]


def _int(doc: dict[str, Any], name: str, minimum: int) -> int:
    v = doc.get(name)
    if type(v) is not int or v < minimum:
        raise ReceiptError(f"{name} must be an integer >= {minimum}, not {v!r}")
    return v


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise ReceiptError(f"{what} must be a list of base64 hashes")
    try:
        return [decode_hash(v) for v in values]
    except ValueError as e:
        raise ReceiptError(f"{what}: {e}") from None


def verify_receipt(
    doc: dict[str, Any],
    verifier: Verifier,
    origin: str,
    cosigners: Sequence[CosignatureVerifier] = (),
) -> ProvenReceipt:
    """Check a parsed receipt; raise ``ReceiptError`` naming the first check that fails.

    Every cosigner in ``cosigners`` must have a valid line among the receipt's
    cosignatures; lines of other cosigners are ignored (as C2SP says of unknown keys).
    """
    if set(doc) != RECEIPT_FIELDS:
        raise ReceiptError(f"a receipt has exactly the members {sorted(RECEIPT_FIELDS)}")
    if doc["origin"] != origin:
        raise ReceiptError(f"the receipt is from log {doc['origin']!r}, expected {origin!r}")
    note = doc["checkpoint"]
    if not isinstance(note, str):
        raise ReceiptError("checkpoint must be the signed note text")
    try:
        checkpoint = verify_checkpoint(note, [verifier], origin=origin)
    except (NoteError, ValueError) as e:
        raise ReceiptError(f"checkpoint: {e}") from None
    index, size = _int(doc, "leaf_index", 0), _int(doc, "tree_size", 1)
    if size != checkpoint.size:
        raise ReceiptError(
            f"the proof is for tree size {size}, the checkpoint for {checkpoint.size}"
        )
    try:
        event_id = uuid.UUID(doc["event_id"]) if isinstance(doc["event_id"], str) else None
    except ValueError:
        event_id = None
    if event_id is None or str(event_id) != doc["event_id"]:
        raise ReceiptError("event_id must be a UUID in lowercase canonical form")
    (leaf,) = _hashes([doc["leaf_hash"]], "leaf_hash")
    event = doc["event"]
    try:
        own = event_leaf_hash(event)  # the one canonical encoder (events/audit/leaf.py)
    except LeafError as e:
        raise ReceiptError(f"event: {e}") from None
    if own != leaf:
        raise ReceiptError("the event does not hash to the receipt's leaf hash")
    if event["id"] != doc["event_id"] or event["position"] != index + 1:
        raise ReceiptError("the event is not the one the receipt names (id or position)")
    if not verify_inclusion(
        leaf, index, size, _hashes(doc["audit_path"], "audit_path"), checkpoint.root_hash
    ):
        raise ReceiptError(f"the inclusion proof of leaf {index} does not reach the signed root")
    lines = doc["cosignatures"]
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ReceiptError("cosignatures must be a list of signature lines")
    body = checkpoint.format()
    cosigned = []
    for cosigner in cosigners:
        mine = [line for line in lines if line.startswith(f"\u2014 {cosigner.name} ")]
        found = None
        for line in mine:
            try:
                found = cosigner.verify(body, line)
                break
            except NoteError:
                continue
        if found is None:
            raise ReceiptError(f"no valid cosignature by {cosigner.name!r} on this checkpoint")
        cosigned.append(found)
    return ProvenReceipt(event_id, index, leaf, size, checkpoint, tuple(cosigned))


def verify_receipt_chain(
    older: ProvenReceipt,
    doc: dict[str, Any],
    verifier: Verifier,
    origin: str,
    cosigners: Sequence[CosignatureVerifier] = (),
) -> ProvenReceipt:
    """Check a newer receipt of the same event and its consistency proof from ``older``."""
    newer = verify_receipt(doc, verifier, origin, cosigners)
    if (newer.event_id, newer.leaf_index, newer.leaf_hash) != (
        older.event_id,
        older.leaf_index,
        older.leaf_hash,
    ):
        raise ReceiptError("the newer receipt is not for the same event at the same leaf")
    proof = doc["consistency"]
    if not isinstance(proof, dict) or set(proof) != {"first", "second", "proof"}:
        raise ReceiptError(
            "the newer receipt has no consistency proof "
            f"(fetch it with ?from_size={older.tree_size})"
        )
    if (proof["first"], proof["second"]) != (older.tree_size, newer.tree_size):
        raise ReceiptError(
            f"the consistency proof is for sizes {proof['first']} -> {proof['second']}, "
            f"the receipts are {older.tree_size} -> {newer.tree_size}"
        )
    ok = verify_consistency(
        older.tree_size,
        newer.tree_size,
        _hashes(proof["proof"], "consistency proof"),
        older.checkpoint.root_hash,
        newer.checkpoint.root_hash,
    )
    if not ok:
        raise ReceiptError(
            f"the tree of size {newer.tree_size} does not extend the one of size "
            f"{older.tree_size}: history was rewritten"
        )
    return newer
