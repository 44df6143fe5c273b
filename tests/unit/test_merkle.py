"""RFC 9162 Merkle tree: known answers, proofs against a reference, incremental storage."""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from events.audit.merkle import (
    EMPTY_ROOT,
    MerkleAppender,
    NodeRef,
    RootAccumulator,
    assemble,
    consistency_proof,
    consistency_proof_nodes,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_nodes,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    nodes_completed_by,
    range_nodes,
    root,
    subtree_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "rfc6962-vectors.json").read_text(encoding="utf-8")
)
CT_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["inputs"]]

Store = dict[tuple[int, int], bytes]


# --- helpers -------------------------------------------------------------------------


def build_store(leaves: Sequence[bytes]) -> Store:
    """Fill a node table the way the DB layer will: one ``nodes_completed_by`` per append."""
    store: Store = {}

    def get(level: int, idx: int) -> bytes:
        return store[(level, idx)]

    for i, h in enumerate(leaves):
        for node in nodes_completed_by(i, h, get):
            assert (node.level, node.idx) not in store, "complete nodes are written once"
            store[(node.level, node.idx)] = node.hash
    return store


def getter(store: Store) -> Callable[[int, int], bytes]:
    return lambda level, idx: store[(level, idx)]


def make_leaves(n: int, seed: int = 0) -> list[bytes]:
    return [leaf_hash(f"event-{seed}-{i}".encode()) for i in range(n)]


class Reference:
    """RFC 9162 §2.1.1/§2.1.3.1/§2.1.4.1 transcribed literally over the full leaf list."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves

    @functools.cache  # noqa: B019 - one short-lived instance per test tree
    def mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.leaves[lo]
        k = 1
        while k * 2 < n:
            k *= 2
        return node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True) if 0 < m < n else []


def flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


@pytest.fixture(scope="module")
def big() -> tuple[list[bytes], Store, Reference]:
    leaves = make_leaves(5000, seed=1)
    return leaves, build_store(leaves), Reference(leaves)


# --- known answers -------------------------------------------------------------------


def test_empty_root() -> None:
    """The empty tree's root is SHA-256 of the empty string."""
    assert EMPTY_ROOT.hex() == VECTORS["empty_root"]
    assert root([]) == EMPTY_ROOT
    assert RootAccumulator().root() == EMPTY_ROOT
    assert tree_root(0, getter({})) == EMPTY_ROOT


def test_leaf_and_node_hash_domain_separation() -> None:
    """Leaves hash as SHA-256(0x00||data), interior nodes as SHA-256(0x01||l||r)."""
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(b"") == bytes.fromhex(VECTORS["roots"]["1"])
    a, b = CT_LEAVES[0], CT_LEAVES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != leaf_hash(a + b)


@pytest.mark.parametrize("size", range(1, 9))
def test_known_roots(size: int) -> None:
    """Roots of the CT test inputs for sizes 1..8 match RFC 6962 known answers."""
    want = bytes.fromhex(VECTORS["roots"][str(size)])
    store = build_store(CT_LEAVES[:size])
    assert root(CT_LEAVES[:size]) == want
    assert tree_root(size, getter(store)) == want
    assert subtree_hash(0, size, getter(store)) == want


def test_known_eight_leaf_root() -> None:
    """The 8-leaf CT tree root is 5dc9da79...4328."""
    assert root(CT_LEAVES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion"], ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}"
)
def test_known_inclusion_proofs(vector: dict[str, Any]) -> None:
    """Generated inclusion proofs equal the CT known answers and verify."""
    index, size = vector["leaf_index"], vector["tree_size"]
    store = build_store(CT_LEAVES[:size])
    proof = inclusion_proof(index, size, getter(store))
    assert [p.hex() for p in proof] == vector["path"]
    want_root = bytes.fromhex(VECTORS["roots"][str(size)])
    assert verify_inclusion(CT_LEAVES[index], index, size, proof, want_root)


@pytest.mark.parametrize(
    "vector", VECTORS["consistency"], ids=lambda v: f"{v['first']}-to-{v['second']}"
)
def test_known_consistency_proofs(vector: dict[str, Any]) -> None:
    """Generated consistency proofs equal the CT known answers and verify."""
    m, n = vector["first"], vector["second"]
    store = build_store(CT_LEAVES[:n])
    proof = consistency_proof(m, n, getter(store))
    assert [p.hex() for p in proof] == vector["proof"]
    old, new = (bytes.fromhex(VECTORS["roots"][str(s)]) for s in (m, n))
    assert verify_consistency(m, n, proof, old, new)


# --- storage maintenance -------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 64, 100, 1023, 1024, 1025])
def test_node_table_holds_exactly_the_complete_subtrees(size: int) -> None:
    """Appending n leaves stores 2n - popcount(n) nodes, each the hash of its leaf range."""
    leaves = make_leaves(size)
    store = build_store(leaves)
    ref = Reference(leaves)
    assert len(store) == 2 * size - size.bit_count()
    for (level, idx), h in store.items():
        assert h == ref.mth(idx << level, (idx + 1) << level)


def test_nodes_completed_by_reads_only_left_siblings() -> None:
    """Appending leaf i reads one stored node per trailing 1-bit of i (amortised 1)."""
    leaves = make_leaves(256)
    store: Store = {}
    reads = 0

    def get(level: int, idx: int) -> bytes:
        nonlocal reads
        reads += 1
        return store[(level, idx)]

    for i, h in enumerate(leaves):
        before = reads
        nodes = nodes_completed_by(i, h, get)
        trailing_ones = (~i & (i + 1)).bit_length() - 1
        assert reads - before == trailing_ones
        assert [n.level for n in nodes] == list(range(trailing_ones + 1))
        store.update({(n.level, n.idx): n.hash for n in nodes})
    assert reads < len(leaves)


@pytest.mark.parametrize("start", [0, 1, 5, 8, 13, 64])
def test_appender_resumed_from_frontier_matches_nodes_completed_by(start: int) -> None:
    """MerkleAppender resumed from the stored frontier emits the same nodes and roots."""
    leaves = make_leaves(start + 70)
    store = build_store(leaves)
    frontier_refs = RootAccumulator.frontier_nodes(start)
    appender = MerkleAppender(start, [store[ref] for ref in frontier_refs])
    ref = Reference(leaves)
    emitted: Store = {}
    for i in range(start, len(leaves)):
        for node in appender.append(leaves[i]):
            emitted[(node.level, node.idx)] = node.hash
        assert appender.size == i + 1
        assert appender.root() == ref.mth(0, i + 1)
    fresh = {k: v for k, v in store.items() if k not in build_store(leaves[:start])}
    assert emitted == fresh


def test_appender_rejects_a_frontier_of_the_wrong_shape() -> None:
    """A frontier must have one hash per set bit of the size."""
    with pytest.raises(ValueError, match="frontier nodes"):
        MerkleAppender(5, [EMPTY_ROOT])


def test_root_accumulator_streams_with_flat_memory() -> None:
    """The accumulator's root equals the full-tree root at every size; its stack stays tiny."""
    leaves = make_leaves(3000)
    ref = Reference(leaves)
    acc = RootAccumulator()
    for i, h in enumerate(leaves):
        acc.append(h)
        assert len(acc.frontier()) == (i + 1).bit_count()
        if i % 97 == 0 or i == len(leaves) - 1:
            assert acc.root() == ref.mth(0, i + 1)
    assert acc.size == 3000
    assert root(leaves) == acc.root()


def test_range_nodes_decomposes_the_right_edge() -> None:
    """A subtree hash is read from one stored node per set bit of its width."""
    assert range_nodes(0, 13) == [NodeRef(3, 0), NodeRef(2, 2), NodeRef(0, 12)]
    assert range_nodes(8, 13) == [NodeRef(2, 2), NodeRef(0, 12)]
    assert range_nodes(12, 16) == [NodeRef(2, 3)]
    with pytest.raises(ValueError, match="not a subtree"):
        range_nodes(2, 7)
    with pytest.raises(ValueError, match="invalid leaf range"):
        range_nodes(3, 3)


def test_assemble_names_a_missing_node() -> None:
    """Assembling a proof with an unfetched node fails loudly rather than guessing."""
    ranges = inclusion_proof_ranges(3, 13)
    with pytest.raises(KeyError, match="not fetched"):
        assemble(ranges, {})


def test_batched_fetch_equals_direct_reads(big: tuple[list[bytes], Store, Reference]) -> None:
    """Fetching the listed nodes once and assembling gives the same proofs as get_node."""
    _, store, _ = big
    for index, size in [(0, 1), (17, 4999), (4998, 4999), (1234, 3333)]:
        ranges = inclusion_proof_ranges(index, size)
        fetched = {ref: store[ref] for ref in inclusion_proof_nodes(index, size)}
        assert assemble(ranges, fetched) == inclusion_proof(index, size, getter(store))
    for m, n in [(1, 5000), (1000, 4097), (4096, 5000), (3333, 3334)]:
        ranges = consistency_proof_ranges(m, n)
        fetched = {ref: store[ref] for ref in consistency_proof_nodes(m, n)}
        assert assemble(ranges, fetched) == consistency_proof(m, n, getter(store))


# --- exhaustive small trees -----------------------------------------------------------


SMALL = make_leaves(64, seed=2)
SMALL_STORE = build_store(SMALL)
SMALL_REF = Reference(SMALL)


@pytest.mark.parametrize("size", range(1, 65))
def test_inclusion_proofs_all_indexes_up_to_64(size: int) -> None:
    """For every index of every size 1..64 the proof equals RFC PATH, verifies, O(log n) reads."""
    root_hash = SMALL_REF.mth(0, size)
    assert tree_root(size, getter(SMALL_STORE)) == root_hash
    for index in range(size):
        proof = inclusion_proof(index, size, getter(SMALL_STORE))
        assert proof == SMALL_REF.path(index, 0, size)
        assert len(inclusion_proof_nodes(index, size)) <= 2 * size.bit_length()
        assert verify_inclusion(SMALL[index], index, size, proof, root_hash)


@pytest.mark.parametrize("size", range(1, 65))
def test_consistency_proofs_all_pairs_up_to_64(size: int) -> None:
    """For every m <= n <= 64 the proof equals RFC PROOF, verifies, O(log n) reads."""
    n = size
    new_root = SMALL_REF.mth(0, n)
    for m in range(0, n + 1):
        proof = consistency_proof(m, n, getter(SMALL_STORE))
        assert proof == SMALL_REF.proof(m, n)
        assert len(consistency_proof_nodes(m, n)) <= 2 * n.bit_length()
        assert verify_consistency(m, n, proof, SMALL_REF.mth(0, m), new_root)


@pytest.mark.parametrize("size", range(1, 33))
def test_inclusion_rejects_wrong_leaf_element_index_or_size(size: int) -> None:
    """An inclusion proof fails if the leaf, any element, the index or the size is wrong."""
    root_hash = SMALL_REF.mth(0, size)
    for index in range(size):
        leaf = SMALL[index]
        proof = SMALL_REF.path(index, 0, size)
        assert not verify_inclusion(flip(leaf), index, size, proof, root_hash)
        assert not verify_inclusion(leaf, index, size, proof, flip(root_hash))
        for j in range(len(proof)):
            bad = [*proof[:j], flip(proof[j]), *proof[j + 1 :]]
            assert not verify_inclusion(leaf, index, size, bad, root_hash)
        for other in (index - 1, index + 1):
            if 0 <= other < size:
                assert not verify_inclusion(leaf, other, size, proof, root_hash)
        for other_size in (size - 1, size + 1, 2 * size):
            if index < other_size:
                other_root = SMALL_REF.mth(0, other_size)
                assert not verify_inclusion(leaf, index, other_size, proof, other_root)
        assert not verify_inclusion(leaf, index, size, [*proof, root_hash], root_hash)
        if proof:
            assert not verify_inclusion(leaf, index, size, proof[:-1], root_hash)
        assert not verify_inclusion(leaf, size, size, proof, root_hash)
        assert not verify_inclusion(leaf, -1, size, proof, root_hash)


@pytest.mark.parametrize("size", range(1, 33))
def test_consistency_rejects_wrong_roots_elements_or_sizes(size: int) -> None:
    """A consistency proof fails if either root, any element, or either size is wrong."""
    n = size
    new_root = SMALL_REF.mth(0, n)
    for m in range(1, n + 1):
        old_root = SMALL_REF.mth(0, m)
        proof = SMALL_REF.proof(m, n)
        assert not verify_consistency(m, n, proof, flip(old_root), new_root)
        assert not verify_consistency(m, n, proof, old_root, flip(new_root))
        for j in range(len(proof)):
            bad = [*proof[:j], flip(proof[j]), *proof[j + 1 :]]
            assert not verify_consistency(m, n, bad, old_root, new_root)
        # other_m >= 1: the empty proof of m == n also (rightly) proves size 0 consistent.
        for other_m in (m - 1, m + 1):
            if 1 <= other_m <= n:
                assert not verify_consistency(
                    other_m, n, proof, SMALL_REF.mth(0, other_m), new_root
                )
        for other_n in (n - 1, n + 1):
            if m <= other_n and other_n != n:
                assert not verify_consistency(
                    m, other_n, proof, old_root, SMALL_REF.mth(0, other_n)
                )
        assert not verify_consistency(m, n, [*proof, new_root], old_root, new_root)
        if proof:
            assert not verify_consistency(m, n, proof[:-1], old_root, new_root)
        assert not verify_consistency(n + 1, n, proof, new_root, old_root)


def test_consistency_edge_cases() -> None:
    """Equal sizes need equal roots and no proof; the empty tree precedes every tree."""
    r5 = SMALL_REF.mth(0, 5)
    assert verify_consistency(5, 5, [], r5, r5)
    assert not verify_consistency(5, 5, [], r5, SMALL_REF.mth(0, 6))
    assert not verify_consistency(5, 5, [r5], r5, r5)
    assert verify_consistency(0, 5, [], EMPTY_ROOT, r5)
    assert not verify_consistency(0, 5, [], r5, r5)
    assert not verify_consistency(3, 5, [], SMALL_REF.mth(0, 3), r5)
    assert consistency_proof(0, 5, getter(SMALL_STORE)) == []
    assert consistency_proof(5, 5, getter(SMALL_STORE)) == []


def test_proof_requests_out_of_range_raise() -> None:
    """Asking for a proof about a leaf or size the tree does not have is a ValueError."""
    with pytest.raises(ValueError, match="not in a tree of size"):
        inclusion_proof_ranges(5, 5)
    with pytest.raises(ValueError, match="not in a tree of size"):
        inclusion_proof_ranges(0, 0)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof_ranges(6, 5)
    assert not verify_inclusion(EMPTY_ROOT, 0, 0, [], EMPTY_ROOT)


# --- larger random trees --------------------------------------------------------------


@pytest.mark.parametrize("size", [65, 1000, 1024, 2049, 4095, 5000])
def test_random_proofs_in_large_trees(size: int, big: tuple[list[bytes], Store, Reference]) -> None:
    """Random proofs in trees up to 5000 leaves equal the reference and verify."""
    leaves, store, ref = big
    # The store holds 5000 leaves; smaller trees are its prefixes, proving that complete
    # nodes written for a larger tree serve every earlier size unchanged.
    rng = random.Random(size)
    root_hash = ref.mth(0, size)
    assert tree_root(size, getter(store)) == root_hash
    for index in [0, size - 1, *rng.sample(range(size), 40)]:
        proof = inclusion_proof(index, size, getter(store))
        assert proof == ref.path(index, 0, size)
        assert verify_inclusion(leaves[index], index, size, proof, root_hash)
        assert not verify_inclusion(leaves[index], index, size, proof, flip(root_hash))
    for m in [1, size - 1, *rng.sample(range(1, size + 1), 40)]:
        proof = consistency_proof(m, size, getter(store))
        assert proof == ref.proof(m, size)
        assert verify_consistency(m, size, proof, ref.mth(0, m), root_hash)
        if proof:
            bad = [flip(proof[0]), *proof[1:]]
            assert not verify_consistency(m, size, bad, ref.mth(0, m), root_hash)
