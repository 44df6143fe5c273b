"""RFC 9162 (Certificate Transparency v2) Merkle tree over the global event log.

Leaf ``i`` (0-based) of the tree is the event at log position ``i + 1``.

Storage model: only hashes of *complete* (perfect) subtrees are ever stored. Node
``(level k, index i)`` is the hash of leaves ``[i * 2**k, (i + 1) * 2**k)``; level 0 holds
the leaf hashes. A complete node never changes once written, so the table is append-only
like the log itself. The hash of any subtree that a tree of size ``n`` needs, including the
incomplete right edge, is a right fold of at most ``log2(n) + 1`` complete nodes, which is
what keeps proof generation at O(log n) reads.

Proof generation is split in three steps so that async storage can fetch everything in one
round trip:

1. ``inclusion_proof_ranges`` / ``consistency_proof_ranges`` say which subtree hashes the
   RFC 9162 proof consists of (pure arithmetic on sizes);
2. ``nodes_for_ranges`` (or ``inclusion_proof_nodes`` / ``consistency_proof_nodes``) lists
   the stored nodes those subtrees decompose into; the caller fetches them;
3. ``assemble`` folds the fetched hashes into the proof.

``inclusion_proof`` / ``consistency_proof`` run the three steps over a synchronous
``get_node`` callable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "GetNode",
    "MerkleAppender",
    "Node",
    "NodeRef",
    "Range",
    "RootAccumulator",
    "assemble",
    "consistency_proof",
    "consistency_proof_nodes",
    "consistency_proof_ranges",
    "decode_hash",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_completed_by",
    "nodes_for_ranges",
    "range_nodes",
    "root",
    "subtree_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: RFC 9162 §2.1.1: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class NodeRef(NamedTuple):
    """Address of a stored complete subtree: leaves ``[idx * 2**level, (idx + 1) * 2**level)``."""

    level: int
    idx: int


class Node(NamedTuple):
    """A complete subtree hash, as written to the ``merkle_nodes(level, idx, hash)`` table."""

    level: int
    idx: int
    hash: bytes


#: Half-open leaf range ``(start, end)`` whose RFC 9162 subtree hash a proof contains.
Range = tuple[int, int]
#: Synchronous storage read: ``get_node(level, index)`` returns the stored hash.
GetNode = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def decode_hash(text: object) -> bytes:
    """A 32-byte hash from its canonical base64 (RFC 4648 §4: standard alphabet, padded).

    Canonical only: ``b64encode(result) == text``. Lenient decoders accept several spellings
    of one hash (non-zero padding bits, missing padding, line breaks); a verifier that did
    would accept input coord cannot have written. Raises ``ValueError``.
    """
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("a hash must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"invalid base64 {text[:60]!r}: {e}") from None
    if len(raw) != HASH_SIZE:
        raise ValueError(f"a hash is {HASH_SIZE} bytes, not {len(raw)}")
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError(f"non-canonical base64 {text!r}")
    return raw


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 9162 tree hash MTH of a list of leaf hashes (in memory, O(n))."""
    acc = RootAccumulator()
    for h in leaf_hashes:
        acc.append(h)
    return acc.root()


# --- storage decomposition -------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[NodeRef]:
    """Return the stored complete nodes whose right fold is the subtree hash of ``[start, end)``.

    The RFC 9162 tree over ``end - start`` leaves splits off perfect subtrees of the
    binary digits of its size, largest first, so the subtree hash is
    ``node(c0, node(c1, ... node(c_{j-1}, c_j)))`` over those chunks. Each chunk is stored
    only if it is aligned; every subtree of a log tree (any node RFC 9162 recurses into)
    satisfies that, and other ranges raise ``ValueError``.
    """
    if not 0 <= start < end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    refs: list[NodeRef] = []
    pos, remaining = start, end - start
    while remaining:
        level = remaining.bit_length() - 1
        width = 1 << level
        if pos % width:
            raise ValueError(f"leaf range [{start}, {end}) is not a subtree of the log tree")
        refs.append(NodeRef(level, pos >> level))
        pos += width
        remaining -= width
    return refs


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Right-fold chunk hashes (largest, leftmost first) into one subtree hash."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def subtree_hash(start: int, end: int, get_node: GetNode) -> bytes:
    """Return the RFC 9162 hash of leaves ``[start, end)`` from O(log n) stored nodes."""
    return _fold([get_node(ref.level, ref.idx) for ref in range_nodes(start, end)])


def tree_root(size: int, get_node: GetNode) -> bytes:
    """Return the root hash of the tree of the first ``size`` leaves, from storage."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    return subtree_hash(0, size, get_node) if size else EMPTY_ROOT


# --- proof plans -------------------------------------------------------------------------


def inclusion_proof_ranges(index: int, size: int) -> list[Range]:
    """Return the subtrees of RFC 9162 §2.1.3.1 ``PATH(index, D[size])``, leaf side first.

    PATH(m, D[n]) recurses into the half holding leaf m and appends the hash of the other
    half, so walking from the root down and reversing yields the RFC order.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    top_down: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            top_down.append((mid, hi))
            hi = mid
        else:
            top_down.append((lo, mid))
            lo = mid
    top_down.reverse()
    return top_down


def consistency_proof_ranges(old_size: int, new_size: int) -> list[Range]:
    """Return the subtrees of RFC 9162 §2.1.4.1 ``PROOF(old_size, D[new_size])``.

    ``SUBPROOF(m, D[lo:hi], b)``: if m is the whole subtree, it contributes nothing when
    the verifier already knows that hash (b true: it is the old root) and the subtree
    itself otherwise; else it recurses into the half that holds the old tree's edge and
    appends the other half. ``old_size == 0`` or ``old_size == new_size`` gives an empty
    proof (the empty tree is a prefix of every tree; equal trees need no evidence).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    top_down: list[Range] = []
    lo, hi, known = 0, new_size, True
    while True:
        if old_size == hi:
            # Only reachable with old_size - lo == hi - lo: the subtree is wholly old.
            if not known:
                top_down.append((lo, hi))
            break
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            top_down.append((mid, hi))
            hi = mid
        else:
            top_down.append((lo, mid))
            lo = mid
            known = False
    top_down.reverse()
    return top_down


def nodes_for_ranges(ranges: Iterable[Range]) -> list[NodeRef]:
    """Return the distinct stored nodes needed to hash ``ranges``, in first-use order."""
    return list(dict.fromkeys(ref for r in ranges for ref in range_nodes(*r)))


def inclusion_proof_nodes(index: int, size: int) -> list[NodeRef]:
    """Return the stored nodes an inclusion proof for ``index`` in ``size`` leaves needs."""
    return nodes_for_ranges(inclusion_proof_ranges(index, size))


def consistency_proof_nodes(old_size: int, new_size: int) -> list[NodeRef]:
    """Return the stored nodes a consistency proof from ``old_size`` to ``new_size`` needs."""
    return nodes_for_ranges(consistency_proof_ranges(old_size, new_size))


def assemble(ranges: Iterable[Range], fetched: Mapping[NodeRef, bytes]) -> list[bytes]:
    """Build a proof from its ranges and the fetched node hashes (keyed by ``NodeRef``).

    Raises ``KeyError`` naming the first missing node, which means the caller's node
    table lags the tree size it was asked to prove.
    """
    proof: list[bytes] = []
    for start, end in ranges:
        chunk_hashes = []
        for ref in range_nodes(start, end):
            try:
                chunk_hashes.append(fetched[ref])
            except KeyError:
                raise KeyError(f"merkle node {ref} not fetched") from None
        proof.append(_fold(chunk_hashes))
    return proof


def _fetch_all(refs: Iterable[NodeRef], get_node: GetNode) -> dict[NodeRef, bytes]:
    return {ref: get_node(ref.level, ref.idx) for ref in refs}


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """Return the RFC 9162 inclusion proof (PATH) for leaf ``index`` in ``size`` leaves."""
    ranges = inclusion_proof_ranges(index, size)
    return assemble(ranges, _fetch_all(nodes_for_ranges(ranges), get_node))


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """Return the RFC 9162 consistency proof (PROOF) from ``old_size`` to ``new_size``."""
    ranges = consistency_proof_ranges(old_size, new_size)
    return assemble(ranges, _fetch_all(nodes_for_ranges(ranges), get_node))


# --- incremental maintenance ----------------------------------------------------------


def nodes_completed_by(index: int, leaf: bytes, get_node: GetNode) -> list[Node]:
    """Return the complete nodes created when leaf ``index`` with hash ``leaf`` is appended.

    Appending leaf ``index`` completes level 0 and then one node per trailing 1-bit of
    ``index`` (each a right child whose left sibling is already stored), so a leaf creates
    two nodes on average. The list is ordered by level; only left siblings are read.
    """
    if index < 0:
        raise ValueError(f"negative leaf index {index}")
    out = [Node(0, index, leaf)]
    h, level = leaf, 0
    while (index >> level) & 1:
        left = get_node(level, (index >> level) - 1)
        h = node_hash(left, h)
        level += 1
        out.append(Node(level, index >> level, h))
    return out


class RootAccumulator:
    """Compact range over a growing tree: the roots of its perfect subtrees, O(log n) memory.

    Streaming verifiers feed every leaf hash through ``append`` and compare ``root()``
    with a checkpoint; memory stays flat however long the log is.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        """Start empty, or resume a tree of ``size`` leaves from its ``frontier``.

        ``frontier`` holds the hashes of ``frontier_nodes(size)``, largest subtree first.
        """
        refs = self.frontier_nodes(size)
        if len(frontier) != len(refs):
            raise ValueError(
                f"a tree of size {size} has {len(refs)} frontier nodes, got {len(frontier)}"
            )
        self._size = size
        self._stack = list(frontier)

    @staticmethod
    def frontier_nodes(size: int) -> list[NodeRef]:
        """Return the perfect subtrees (largest first) that make up a tree of ``size`` leaves."""
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        return range_nodes(0, size) if size else []

    @property
    def size(self) -> int:
        """Number of leaves appended so far (including the resumed ``size``)."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self._push(leaf, None)

    def _push(self, leaf: bytes, out: list[Node] | None) -> None:
        index = self._size
        h, level = leaf, 0
        if out is not None:
            out.append(Node(0, index, h))
        # Each trailing 1-bit of the new leaf's index closes one perfect subtree: merge it
        # with the equally sized subtree on top of the stack.
        while (index >> level) & 1:
            h = node_hash(self._stack.pop(), h)
            level += 1
            if out is not None:
                out.append(Node(level, index >> level, h))
        self._stack.append(h)
        self._size = index + 1

    def frontier(self) -> list[bytes]:
        """Return the perfect-subtree hashes, largest (leftmost) first."""
        return list(self._stack)

    def root(self) -> bytes:
        """Return the RFC 9162 root hash of the leaves appended so far."""
        return _fold(self._stack) if self._stack else EMPTY_ROOT


class MerkleAppender:
    """Pure incremental builder for the node table, for appending a batch of leaves.

    Construct it from the frontier of the current tree (fetch
    ``RootAccumulator.frontier_nodes(size)`` in one query); each ``append`` then returns
    the nodes to insert with no further reads, so a whole batch of events and their
    nodes can be written in the transaction that extends the log.
    """

    __slots__ = ("_acc",)

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        """Resume a tree of ``size`` leaves from the hashes of its frontier nodes."""
        self._acc = RootAccumulator(size, frontier)

    @property
    def size(self) -> int:
        """Number of leaves in the tree so far."""
        return self._acc.size

    def append(self, leaf: bytes) -> list[Node]:
        """Append a leaf hash; return the complete nodes it created, level 0 first."""
        out: list[Node] = []
        self._acc._push(leaf, out)
        return out

    def root(self) -> bytes:
        """Return the root hash of the tree so far."""
        return self._acc.root()


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ------------------------------------


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """Return whether ``path`` proves leaf hash ``leaf`` is leaf ``index`` under ``root_hash``.

    Implements RFC 9162 §2.1.3.2. The proof does not authenticate ``size`` by itself:
    ``size`` and ``root_hash`` must come from the same signed checkpoint.
    """
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # A right-edge node with no right sibling: climb the levels where this
                # subtree is the left-over rightmost child.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> bool:
    """Return whether ``proof`` shows the tree ``old_root`` is a prefix of ``new_root``.

    Implements RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. Equal sizes need an empty
    proof and equal roots; an empty old tree (root ``EMPTY_ROOT``) is a prefix of any tree.
    """
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one; its root is the proof's start.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
