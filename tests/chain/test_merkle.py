"""Tests for :mod:`chain.merkle`: agreement with npm ``@openzeppelin/merkle-tree``.

The OZ side runs through ``node tests/chain/js/oz_merkle.mjs``, a batch of operations
per invocation. Those tests are skipped only when ``node`` or the npm package is
missing; everything else runs against a deliberately naive reference implementation.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from chain import hashing
from chain.errors import LeafEncodingError, LiveProofError, MerkleTreeError, VerificationError
from chain.merkle import (
    StandardMerkleTree,
    process_proof,
    standard_leaf_hash,
    standard_node_hash,
    verify_proof,
)

RECEIPT_LEAF_TYPES = (
    "bytes32",
    "uint8",
    "bytes32",
    "bytes32",
    "bytes32",
    "bytes32",
    "bytes32",
    "uint32",
    "uint256",
    "bytes3",
    "uint64",
    "bytes32",
)
PAIR = ("bytes32", "bytes32")

ROOT_DIR = Path(__file__).resolve().parents[2]
OZ_SCRIPT = Path(__file__).resolve().parent / "js" / "oz_merkle.mjs"
OZ_PACKAGE = ROOT_DIR / "node_modules" / "@openzeppelin" / "merkle-tree" / "package.json"
NODE = shutil.which("node")

needs_oz = pytest.mark.skipif(
    NODE is None or not OZ_PACKAGE.is_file(),
    reason="needs `node` and node_modules/@openzeppelin/merkle-tree (run `npm ci`)",
)


# ------------------------------------------------------------------------- helpers


def run_oz(*batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run batches of operations through the OZ helper, one node process per batch in
    parallel; return the results of all batches concatenated, one result per op."""
    assert NODE is not None
    procs = [
        subprocess.Popen(
            [NODE, str(OZ_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT_DIR,
        )
        for _ in batches
    ]
    results: list[dict[str, Any]] = []
    for proc, ops in zip(procs, batches, strict=True):
        out, err = proc.communicate(json.dumps(ops), timeout=300)
        assert proc.returncode == 0, err
        batch_results = json.loads(out)
        assert len(batch_results) == len(ops)
        results.extend(batch_results)
    return results


def random_receipt(rng: random.Random) -> list[Any]:
    """A random value of the receipt leaf type (bytes and ints, edge values included)."""

    def uint(bits: int) -> int:
        return rng.choice([0, 1, (1 << bits) - 1, rng.getrandbits(bits)])

    return [
        rng.randbytes(32),
        uint(8),
        rng.randbytes(32),
        rng.randbytes(32),
        rng.randbytes(32),
        rng.randbytes(32),
        rng.randbytes(32),
        uint(32),
        uint(256),
        rng.randbytes(3),
        uint(64),
        rng.randbytes(32),
    ]


def receipts(count: int, seed: int = 7) -> list[list[Any]]:
    """``count`` random receipt values from a fixed seed."""
    rng = random.Random(seed)
    return [random_receipt(rng) for _ in range(count)]


def hexes(nodes: Sequence[bytes]) -> list[str]:
    """Nodes as OZ writes them: ``0x`` + lowercase hex."""
    return ["0x" + node.hex() for node in nodes]


def reference_tree(
    values: Sequence[Sequence[Any]], types: Sequence[str], *, sort_leaves: bool = True
) -> list[bytes]:
    """A naive re-implementation (eth_abi per leaf, one node at a time) to check against."""
    leaves = [keccak(keccak(abi_encode(list(types), list(v)))) for v in values]
    ordered = sorted(leaves) if sort_leaves else leaves
    size = len(ordered)
    tree = [b""] * (2 * size - 1)
    for k, leaf in enumerate(ordered):
        tree[2 * size - 2 - k] = leaf
    for i in range(size - 2, -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = keccak(min(a, b) + max(a, b))
    return tree


def node_proof(nodes: Sequence[bytes], index: int) -> list[bytes]:
    """Proof of any node (leaf or internal) in an array-layout tree."""
    proof = []
    while index > 0:
        proof.append(nodes[index + 1 if index % 2 else index - 1])
        index = (index - 1) // 2
    return proof


# ------------------------------------------------------- agreement with OZ (node)

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 255, 256, 257, 511, 1023, 1024, 1025]
RANDOM_SIZES = sorted(random.Random(20240611).sample(range(10, 400), 3))
CASE_KEYS = [(size, True) for size in SIZES + RANDOM_SIZES] + [
    (size, False) for size in (1, 2, 5, 17, 256)
]


@needs_oz
def test_receipt_trees_agree_with_oz_in_both_directions(subtests: pytest.Subtests) -> None:
    """One test (so OZ runs once even under xdist), one subtest per tree size.

    For every case: OZ builds the same tree from the same values (same root, same dump
    document, same proofs); OZ loads the Python dump and verifies the Python proofs; and
    Python loads the OZ dump and verifies the OZ proofs.
    """
    rng = random.Random(1234)
    cases = []
    build_ops: list[dict[str, Any]] = []
    load_ops: list[dict[str, Any]] = []
    for size, sort_leaves in CASE_KEYS:
        values = [random_receipt(rng) for _ in range(size)]
        tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES, sort_leaves=sort_leaves)
        dump = tree.dump()
        if size <= 40:
            sample = list(range(size))
        else:
            sample = sorted({0, size - 1, *rng.sample(range(size), 40)})
        proofs = [hexes(tree.get_proof(i)) for i in sample]
        build_ops.append(
            {
                "op": "build",
                "values": [entry["value"] for entry in dump["values"]],
                "encoding": list(RECEIPT_LEAF_TYPES),
                "sortLeaves": sort_leaves,
                "proofIndices": sample,
            }
        )
        load_ops.append(
            {
                "op": "load",
                "dump": dump,
                "proofs": [[i, proof] for i, proof in zip(sample, proofs, strict=True)],
                "proofIndices": sample,
            }
        )
        cases.append((size, sort_leaves, tree, dump, sample, proofs))
    results = run_oz(build_ops, load_ops)  # two node processes in parallel
    oz_built, oz_loaded = results[: len(cases)], results[len(cases) :]

    for (size, sort_leaves, tree, dump, sample, proofs), built, loaded in zip(
        cases, oz_built, oz_loaded, strict=True
    ):
        with subtests.test(msg=f"{size} leaves, sort_leaves={sort_leaves}"):
            # OZ builds the same tree from the same values
            assert "error" not in built, built
            assert built["root"] == tree.root_hex
            assert built["dump"] == dump  # the same JSON document, value for value
            assert built["proofs"] == proofs
            # OZ loads the Python dump and verifies the Python proofs
            assert "error" not in loaded, loaded
            assert loaded["root"] == tree.root_hex
            assert loaded["verified"] == [True] * len(sample)
            assert loaded["proofs"] == proofs
            # Python loads the OZ dump and verifies the OZ proofs
            from_oz = StandardMerkleTree.load(built["dump"])
            assert from_oz.root_hex == built["root"]
            assert from_oz.dump() == built["dump"]
            for i, oz_proof in zip(sample, built["proofs"], strict=True):
                value = built["dump"]["values"][i]["value"]
                assert verify_proof(built["root"], RECEIPT_LEAF_TYPES, value, oz_proof)
                assert from_oz.verify(i, oz_proof)
                assert from_oz.verify(value, oz_proof)
                assert hexes(from_oz.get_proof(i)) == oz_proof


OTHER_TYPES = (
    "address",
    "bool",
    "int8",
    "int256",
    "uint16",
    "uint",
    "bytes1",
    "bytes20",
)
DYNAMIC_TYPES = ("string", "bytes", "uint256[]", "(uint8,bytes32)", "bytes32[2]", "int")


def other_value(rng: random.Random) -> list[Any]:
    """A random value of OTHER_TYPES (all static: the packed fast path)."""
    return [
        "0x" + rng.randbytes(20).hex(),
        rng.random() < 0.5,
        rng.choice([-128, 127, 0, -1, rng.randrange(-128, 128)]),
        rng.choice([-(1 << 255), (1 << 255) - 1, rng.randrange(-(1 << 255), 1 << 255)]),
        rng.choice([0, 65535, rng.randrange(65536)]),
        rng.getrandbits(256),
        rng.randbytes(1),
        rng.randbytes(20),
    ]


def dynamic_value(rng: random.Random) -> list[Any]:
    """A random value of DYNAMIC_TYPES (encoded through eth_abi)."""
    return [
        rng.choice(["", "héllo ✓", "x" * rng.randrange(100)]),
        rng.randbytes(rng.choice([0, 1, 31, 32, 33, 70])),
        [rng.getrandbits(256) for _ in range(rng.randrange(4))],
        [rng.randrange(256), rng.randbytes(32)],
        [rng.randbytes(32), rng.randbytes(32)],
        rng.randrange(-(1 << 255), 1 << 255),
    ]


@needs_oz
@pytest.mark.parametrize(
    ("types", "make"),
    [(OTHER_TYPES, other_value), (DYNAMIC_TYPES, dynamic_value)],
    ids=["static-types", "dynamic-types"],
)
def test_oz_agrees_on_other_leaf_encodings(types: tuple[str, ...], make: Any) -> None:
    rng = random.Random(99)
    trees = [
        StandardMerkleTree.of([make(rng) for _ in range(size)], types) for size in (1, 2, 7, 33)
    ]
    ops: list[dict[str, Any]] = []
    for tree in trees:
        dump = tree.dump()
        every = list(range(len(tree)))
        ops.append(
            {
                "op": "build",
                "values": [e["value"] for e in dump["values"]],
                "encoding": list(types),
                "proofIndices": every,
            }
        )
        ops.append(
            {"op": "load", "dump": dump, "proofs": [[i, hexes(tree.get_proof(i))] for i in every]}
        )
    results = run_oz(ops)
    for k, tree in enumerate(trees):
        built, loaded = results[2 * k], results[2 * k + 1]
        assert "error" not in built, built
        assert "error" not in loaded, loaded
        assert built["dump"] == tree.dump()
        assert loaded["verified"] == [True] * len(tree)
        assert StandardMerkleTree.load(built["dump"]).root == tree.root
        assert built["proofs"] == [hexes(tree.get_proof(i)) for i in range(len(tree))]


@needs_oz
def test_oz_agrees_on_duplicate_values() -> None:
    distinct = receipts(4, seed=3)
    values = [distinct[i] for i in (0, 1, 0, 2, 1, 0, 3)]
    tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES)
    json_values = [e["value"] for e in tree.dump()["values"]]
    [built] = run_oz(
        [
            {
                "op": "build",
                "values": json_values,
                "encoding": list(RECEIPT_LEAF_TYPES),
                "proofValues": [json_values[0], json_values[1]],
            }
        ]
    )
    assert built["dump"] == tree.dump()  # same tree slots for the repeated values
    # a repeated value resolves to its last occurrence, as in OZ
    assert built["valueProofs"] == [hexes(tree.get_proof(distinct[0])), hexes(tree.get_proof(1))]
    assert tree.get_proof(distinct[0]) == tree.get_proof(5)
    assert tree.get_proof(distinct[1]) == tree.get_proof(4)


@needs_oz
def test_internal_node_passed_as_64_byte_leaf_does_not_verify_in_python_or_oz() -> None:
    tree = StandardMerkleTree.of(receipts(37), RECEIPT_LEAF_TYPES)
    nodes = tree.tree
    ops: list[dict[str, Any]] = []
    for i in (0, 1, 2, 5, 17, 35):  # 36 internal nodes: 0..35
        a, b = nodes[2 * i + 1], nodes[2 * i + 2]
        proof = node_proof(nodes, i)
        # The raw node does fold up to the root (process_proof works on hashes) ...
        assert process_proof(nodes[i], proof) == tree.root
        # ... but no leaf value can stand for it: leaves are hashed twice.
        assert standard_leaf_hash(PAIR, (min(a, b), max(a, b))) != nodes[i]
        assert standard_node_hash(a, b) == nodes[i]
        for value in ((a, b), (b, a)):
            assert not verify_proof(tree.root, PAIR, value, proof)
            ops.append(
                {
                    "op": "verify",
                    "root": tree.root_hex,
                    "encoding": list(PAIR),
                    "value": hexes(value),
                    "proof": hexes(proof),
                }
            )
        ops.append({"op": "processProof", "leaf": "0x" + nodes[i].hex(), "proof": hexes(proof)})
    results = run_oz(ops)
    assert all("error" not in r for r in results), results
    verdicts = [r["result"] for r in results if isinstance(r["result"], bool)]
    assert verdicts == [False] * 12
    folded = [r["result"] for r in results if isinstance(r["result"], str)]
    assert folded == [tree.root_hex] * 6


@needs_oz
def test_oz_leaf_hash_matches() -> None:
    rng = random.Random(5)
    values = [random_receipt(rng) for _ in range(5)]
    ops = [
        {"op": "leafHash", "encoding": list(RECEIPT_LEAF_TYPES), "value": row}
        for row in (
            e["value"] for e in StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES).dump()["values"]
        )
    ]
    results = run_oz(ops)
    assert [r["result"] for r in results] == hexes(
        [standard_leaf_hash(RECEIPT_LEAF_TYPES, v) for v in values]
    )


# --------------------------------------------------------- reference and structure


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 100])
@pytest.mark.parametrize("sort_leaves", [True, False])
def test_tree_matches_naive_reference(size: int, sort_leaves: bool) -> None:
    values = receipts(size, seed=size)
    tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES, sort_leaves=sort_leaves)
    expected = reference_tree(values, RECEIPT_LEAF_TYPES, sort_leaves=sort_leaves)
    assert list(tree.tree) == expected
    assert tree.root == expected[0]
    assert len(tree.root) == 32
    assert tree.root_hex == "0x" + expected[0].hex()
    assert len(tree) == size
    for i, value in enumerate(values):
        leaf = standard_leaf_hash(RECEIPT_LEAF_TYPES, value)
        assert tree.leaf_hash(value) == leaf
        assert expected[tree.tree_index(i)] == leaf
        proof = tree.get_proof(i)
        assert len(proof) == len(node_proof(expected, tree.tree_index(i)))
        assert process_proof(leaf, proof) == tree.root
        assert verify_proof(tree.root, RECEIPT_LEAF_TYPES, value, proof)
        assert tree.verify(i, proof)
        assert tree.verify(value, proof)
        assert tree.get_proof(value) == proof


def test_leaf_slots_follow_oz_layout() -> None:
    values = receipts(6)
    unsorted = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES, sort_leaves=False)
    assert [unsorted.tree_index(i) for i in range(6)] == [10, 9, 8, 7, 6, 5]
    ordered = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES)
    leaf_slots = ordered.tree[5:]
    assert list(leaf_slots) == sorted(leaf_slots, reverse=True)  # descending in the array


@pytest.mark.parametrize("seed", range(40))
def test_every_proof_verifies_on_random_small_trees(seed: int) -> None:
    rng = random.Random(seed)
    types = ("bytes32", "uint8", "bool")
    pool = [(rng.randbytes(32), rng.randrange(256), rng.random() < 0.5) for _ in range(8)]
    # draw from a small pool so that some trees hold repeated values
    rows = [rng.choice(pool) for _ in range(rng.randrange(1, 41))]
    sort_leaves = rng.random() < 0.5
    tree = StandardMerkleTree.of(rows, types, sort_leaves=sort_leaves)
    assert list(tree.tree) == reference_tree(rows, types, sort_leaves=sort_leaves)
    for i, row in enumerate(rows):
        assert verify_proof(tree.root, types, row, tree.get_proof(i))
        assert tree.verify(row, tree.get_proof(row))


def test_single_leaf_tree_root_is_the_leaf() -> None:
    [value] = receipts(1)
    tree = StandardMerkleTree.of([value], RECEIPT_LEAF_TYPES)
    assert tree.root == standard_leaf_hash(RECEIPT_LEAF_TYPES, value)
    assert tree.get_proof(0) == []
    assert verify_proof(tree.root, RECEIPT_LEAF_TYPES, value, [])


def test_hex_and_string_inputs_give_the_same_tree() -> None:
    values = receipts(9)
    as_text = [["0x" + v.hex() if isinstance(v, bytes) else str(v) for v in row] for row in values]
    as_hex_ints = [
        [
            ("0x" + v.hex()).upper().replace("0X", "0x") if isinstance(v, bytes) else hex(v)
            for v in row
        ]
        for row in values
    ]
    tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES)
    assert StandardMerkleTree.of(as_text, RECEIPT_LEAF_TYPES).dump() == tree.dump()
    assert StandardMerkleTree.of(as_hex_ints, RECEIPT_LEAF_TYPES).dump() == tree.dump()
    assert tree.at(3) == tuple(values[3])  # canonical: bytes and int
    assert StandardMerkleTree.of(as_text, RECEIPT_LEAF_TYPES).at(3) == tuple(values[3])
    assert [v for _, v in tree.entries()] == [tuple(v) for v in values]


def test_keccak_fallback_backend_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sha3", None)  # makes `import sha3` fail
    name, ctor = hashing._select()
    assert name == "pycryptodome"
    data = [b"", b"abc", bytes(64), bytes(range(200))]
    assert list(hashing._hash_all(ctor, data)) == [keccak(d) for d in data]
    monkeypatch.setattr(hashing, "_ctor", ctor)
    values = receipts(20)
    tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES)
    assert list(tree.tree) == reference_tree(values, RECEIPT_LEAF_TYPES)


# --------------------------------------------------------- dump / load round trip


def test_dump_format_is_oz_standard_v1() -> None:
    values = [
        [b"\x01" * 32, 5, b"\x02" * 32, *[b"\x03" * 32] * 4, 7, 2**256 - 1, b"abc", 9, bytes(32)]
    ]
    dump = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES).dump()
    assert list(dump) == ["format", "leafEncoding", "tree", "values"]
    assert dump["format"] == "standard-v1"
    assert dump["leafEncoding"] == list(RECEIPT_LEAF_TYPES)
    assert dump["values"] == [
        {
            "value": [
                "0x" + "01" * 32,
                "5",
                "0x" + "02" * 32,
                *["0x" + "03" * 32] * 4,
                "7",
                str(2**256 - 1),
                "0x616263",
                "9",
                "0x" + "00" * 32,
            ],
            "treeIndex": 0,
        }
    ]
    assert dump["tree"] == [StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES).root_hex]


@pytest.mark.parametrize("sort_leaves", [True, False])
def test_dump_load_round_trip(sort_leaves: bool) -> None:
    tree = StandardMerkleTree.of(receipts(77), RECEIPT_LEAF_TYPES, sort_leaves=sort_leaves)
    text = json.dumps(tree.dump())
    loaded = StandardMerkleTree.load(json.loads(text))
    assert loaded.root == tree.root
    assert loaded.dump() == tree.dump()
    assert list(loaded.tree) == list(tree.tree)
    assert [loaded.at(i) for i in range(77)] == [tree.at(i) for i in range(77)]
    assert all(loaded.get_proof(i) == tree.get_proof(i) for i in range(77))
    loaded.validate()
    tree.validate()


def test_round_trip_of_other_encodings() -> None:
    rng = random.Random(11)
    for types, make in ((OTHER_TYPES, other_value), (DYNAMIC_TYPES, dynamic_value)):
        tree = StandardMerkleTree.of([make(rng) for _ in range(12)], types)
        loaded = StandardMerkleTree.load(json.loads(json.dumps(tree.dump())))
        assert loaded.dump() == tree.dump()
        assert loaded.root == tree.root


def test_load_accepts_uppercase_hex_nodes() -> None:
    dump = StandardMerkleTree.of(receipts(5), RECEIPT_LEAF_TYPES).dump()
    dump["tree"] = ["0x" + node[2:].upper() for node in dump["tree"]]
    assert StandardMerkleTree.load(dump).root_hex == dump["tree"][0].lower()


# ------------------------------------------------------------ tampering


def test_tampered_proof_does_not_verify() -> None:
    values = receipts(50)
    tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES)
    proof = tree.get_proof(17)
    assert verify_proof(tree.root, RECEIPT_LEAF_TYPES, values[17], proof)
    for k in range(len(proof)):
        flipped = list(proof)
        flipped[k] = bytes([proof[k][0] ^ 1]) + proof[k][1:]
        assert not verify_proof(tree.root, RECEIPT_LEAF_TYPES, values[17], flipped)
        assert not tree.verify(17, flipped)
    assert not verify_proof(tree.root, RECEIPT_LEAF_TYPES, values[17], proof[:-1])
    assert not verify_proof(tree.root, RECEIPT_LEAF_TYPES, values[17], [*proof, proof[0]])
    assert not verify_proof(tree.root, RECEIPT_LEAF_TYPES, values[17], proof[::-1])
    assert not verify_proof(tree.root, RECEIPT_LEAF_TYPES, values[17], tree.get_proof(18))
    wrong_root = bytes([tree.root[0] ^ 0x80]) + tree.root[1:]
    assert not verify_proof(wrong_root, RECEIPT_LEAF_TYPES, values[17], proof)


@pytest.mark.parametrize("field", range(len(RECEIPT_LEAF_TYPES)))
def test_tampered_value_does_not_verify(field: int) -> None:
    values = receipts(20)
    tree = StandardMerkleTree.of(values, RECEIPT_LEAF_TYPES)
    proof = tree.get_proof(4)
    changed = list(values[4])
    original = changed[field]
    changed[field] = (
        bytes([original[0] ^ 1]) + original[1:] if isinstance(original, bytes) else original ^ 1
    )
    assert not verify_proof(tree.root, RECEIPT_LEAF_TYPES, changed, proof)
    assert not tree.verify(changed, proof)
    with pytest.raises(MerkleTreeError, match="not a leaf"):
        tree.get_proof(changed)


def test_load_rejects_tampered_dumps() -> None:
    tree = StandardMerkleTree.of(receipts(10), RECEIPT_LEAF_TYPES)

    def tampered(edit: Any) -> dict[str, Any]:
        dump: dict[str, Any] = json.loads(json.dumps(tree.dump()))
        edit(dump)
        return dump

    def flip(node: str) -> str:
        return node[:-1] + ("0" if node[-1] != "0" else "1")

    def set_node(i: int) -> Any:
        return lambda d: d["tree"].__setitem__(i, flip(d["tree"][i]))

    with pytest.raises(VerificationError, match=r"internal node tree\[3\]"):
        StandardMerkleTree.load(tampered(set_node(3)))
    with pytest.raises(VerificationError, match="tree"):
        StandardMerkleTree.load(tampered(set_node(0)))
    with pytest.raises(VerificationError, match="leaf hash"):
        StandardMerkleTree.load(tampered(set_node(12)))
    with pytest.raises(VerificationError, match="leaf hash"):
        StandardMerkleTree.load(tampered(lambda d: d["values"][2]["value"].__setitem__(1, "77")))

    def swap_indices(d: dict[str, Any]) -> None:
        a, b = d["values"][0], d["values"][1]
        a["treeIndex"], b["treeIndex"] = b["treeIndex"], a["treeIndex"]

    with pytest.raises(VerificationError, match="leaf hash"):
        StandardMerkleTree.load(tampered(swap_indices))
    with pytest.raises(VerificationError, match="tree indices"):
        StandardMerkleTree.load(
            tampered(lambda d: d["values"][0].__setitem__("treeIndex", d["values"][1]["treeIndex"]))
        )
    with pytest.raises(VerificationError, match="tree indices"):
        StandardMerkleTree.load(tampered(lambda d: d["values"][0].__setitem__("treeIndex", 0)))
    with pytest.raises(VerificationError, match="tree size"):
        StandardMerkleTree.load(tampered(lambda d: d["values"].pop()))
    with pytest.raises(VerificationError, match="tree size"):
        StandardMerkleTree.load(tampered(lambda d: d["tree"].append(d["tree"][-1])))


# ---------------------------------------------------------------------- bad input


def test_errors_are_value_errors_of_the_liveproof_hierarchy() -> None:
    for cls in (MerkleTreeError, LeafEncodingError, VerificationError):
        assert issubclass(cls, ValueError)
        assert issubclass(cls, LiveProofError)
    assert issubclass(LeafEncodingError, MerkleTreeError)


def test_empty_tree_is_rejected() -> None:
    with pytest.raises(MerkleTreeError, match="no leaves"):
        StandardMerkleTree.of([], RECEIPT_LEAF_TYPES)
    dump = StandardMerkleTree.of(receipts(1), RECEIPT_LEAF_TYPES).dump()
    dump.update(tree=[], values=[])
    with pytest.raises(MerkleTreeError, match="empty"):
        StandardMerkleTree.load(dump)


def bad_receipt(field: int, value: Any) -> list[list[Any]]:
    """Three good receipts with ``value`` put into field ``field`` of the last one."""
    rows = receipts(3)
    rows[2][field] = value
    return rows


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (1, 256, r"values\[2\]\[1\] \(uint8\): 256 is out of range \[0, 255\]"),
        (1, -1, r"-1 is out of range"),
        (8, 2**256, r"\(uint256\): .* is out of range"),
        (7, "4294967296", r"\(uint32\): 4294967296 is out of range"),
        (1, True, r"\(uint8\): expected an int"),
        (1, 1.0, r"\(uint8\): expected an int"),
        (1, "1_0", r"expected an int"),
        (1, " 1", r"expected an int"),
        (1, None, r"expected an int"),
        (8, "9" * 120, r"out of range"),
        (0, b"\x00" * 31, r"values\[2\]\[0\] \(bytes32\): expected 32 bytes, got 31"),
        (0, b"\x00" * 33, r"expected 32 bytes, got 33"),
        (9, b"abcd", r"\(bytes3\): expected 3 bytes, got 4"),
        (9, b"ab", r"\(bytes3\): expected 3 bytes, got 2"),
        (9, "0x61626364", r"\(bytes3\): expected 3 bytes, got 4"),
        (0, "0x" + "zz" * 32, r"not a 0x-prefixed hex string"),
        (0, "00" * 32, r"not a 0x-prefixed hex string"),
        (9, "0x12345", r"even number of digits"),
        (0, 5, r"\(bytes32\): expected bytes or hex str, got int"),
    ],
)
def test_bad_field_values_raise(field: int, value: Any, message: str) -> None:
    with pytest.raises(LeafEncodingError, match=message):
        StandardMerkleTree.of(bad_receipt(field, value), RECEIPT_LEAF_TYPES)
    with pytest.raises(LeafEncodingError):
        standard_leaf_hash(RECEIPT_LEAF_TYPES, bad_receipt(field, value)[2])


def test_wrong_arity_raises() -> None:
    rows = receipts(4)
    rows[3] = rows[3][:-1]
    with pytest.raises(LeafEncodingError, match=r"values\[3\]: expected 12 fields .* got 11"):
        StandardMerkleTree.of(rows, RECEIPT_LEAF_TYPES)
    with pytest.raises(LeafEncodingError, match="expected 12 fields"):
        standard_leaf_hash(RECEIPT_LEAF_TYPES, rows[3])
    tree = StandardMerkleTree.of(receipts(4), RECEIPT_LEAF_TYPES)
    with pytest.raises(LeafEncodingError, match="expected 12 fields"):
        verify_proof(tree.root, RECEIPT_LEAF_TYPES, [*receipts(1)[0], 1], [])
    not_rows: list[Any] = ["ab" * 6, b"x" * 12, {"a": 1}, 5]
    for not_a_row in not_rows:
        with pytest.raises(LeafEncodingError, match=r"values\[0\]: expected a list or tuple"):
            StandardMerkleTree.of([not_a_row], RECEIPT_LEAF_TYPES)


@pytest.mark.parametrize(
    ("types", "value", "message"),
    [
        (("address",), ["0x1234"], "not a 20-byte hex address"),
        (("address",), [b"\x01" * 19], "expected 20 bytes, got 19"),
        (("address",), ["0x52908400098527886E0F7030069857D2E4169Ee7"], "bad EIP-55 checksum"),
        (("bool",), [1], "expected a bool"),
        (("int8",), [128], r"128 is out of range \[-128, 127\]"),
        (("int8",), ["-129"], "out of range"),
        (("string",), [b"x"], "expected str"),
        (("uint8[2]",), [[1, 2, 3]], "expected 2 items, got 3"),
        (("uint8[]",), ["0x0102"], "expected a list or tuple"),
        (("(uint8,bool)",), [[1]], "expected 2 fields, got 1"),
        (("(uint8,bool)",), [[1, 2]], r"value\[0\]\[1\] \(bool\)"),
    ],
)
def test_bad_values_of_other_types_raise(
    types: tuple[str, ...], value: list[Any], message: str
) -> None:
    with pytest.raises(LeafEncodingError, match=message):
        standard_leaf_hash(types, value)


def test_good_values_of_other_types_are_canonicalised() -> None:
    checksummed = "0x52908400098527886E0F7030069857D2E4169EE7"
    tree = StandardMerkleTree.of(
        [[checksummed.lower(), "true", "-5", ["1", "0x02"]], [bytes(20), False, -1, []]],
        ["address", "bool", "int8", "uint8[]"],
    )
    assert tree.at(0) == (checksummed, True, -5, (1, 2))
    assert tree.at(1) == ("0x" + "00" * 20, False, -1, ())


@pytest.mark.parametrize(
    "types",
    [
        ["uint7"],
        ["uint264"],
        ["int0"],
        ["bytes0"],
        ["bytes33"],
        ["foo"],
        ["fixed128x18"],
        ["function"],
        ["uint256 "],
        [""],
        ["()"],
        ["uint8[0]"],
        [],
        "bytes32",
        [b"bytes32"],
    ],
)
def test_bad_leaf_encodings_raise(types: Any) -> None:
    with pytest.raises(LeafEncodingError):
        StandardMerkleTree.of([[1]], types)


def test_bad_proof_requests_raise() -> None:
    tree = StandardMerkleTree.of(receipts(5), RECEIPT_LEAF_TYPES)
    for index in (5, -1, 100):
        with pytest.raises(MerkleTreeError, match="out of range"):
            tree.get_proof(index)
        with pytest.raises(MerkleTreeError, match="out of range"):
            tree.at(index)
    with pytest.raises(MerkleTreeError, match="bool"):
        tree.get_proof(True)
    with pytest.raises(MerkleTreeError, match="not a leaf"):
        tree.get_proof(receipts(1, seed=999)[0])


def test_malformed_nodes_raise() -> None:
    leaf = bytes(32)
    with pytest.raises(MerkleTreeError, match="leaf: expected 32 bytes, got 31"):
        process_proof(bytes(31), [])
    with pytest.raises(MerkleTreeError, match=r"proof\[1\]: expected 32 bytes, got 33"):
        process_proof(leaf, [leaf, bytes(33)])
    with pytest.raises(MerkleTreeError, match=r"proof\[0\]"):
        process_proof(leaf, ["0x" + "ab" * 31])
    with pytest.raises(MerkleTreeError, match=r"proof\[0\]"):
        process_proof(leaf, ["ab" * 32])
    with pytest.raises(MerkleTreeError, match="root"):
        verify_proof("0x1234", RECEIPT_LEAF_TYPES, receipts(1)[0], [])
    assert process_proof("0x" + "00" * 32, ["0x" + "11" * 32]) == standard_node_hash(
        leaf, b"\x11" * 32
    )


def test_load_rejects_malformed_dumps() -> None:
    good = StandardMerkleTree.of(receipts(3), RECEIPT_LEAF_TYPES).dump()

    def variant(**changes: Any) -> dict[str, Any]:
        dump: dict[str, Any] = json.loads(json.dumps(good))
        dump.update(changes)
        return dump

    with pytest.raises(MerkleTreeError, match="unknown tree dump format"):
        StandardMerkleTree.load(variant(format="simple-v1"))
    without_encoding = variant()
    del without_encoding["leafEncoding"]
    with pytest.raises(MerkleTreeError, match="leafEncoding"):
        StandardMerkleTree.load(without_encoding)
    with pytest.raises(MerkleTreeError, match="lists"):
        StandardMerkleTree.load(variant(tree="0x00"))
    with pytest.raises(MerkleTreeError, match=r"tree\[1\]"):
        StandardMerkleTree.load(variant(tree=[good["tree"][0], "0x12", *good["tree"][2:]]))
    with pytest.raises(MerkleTreeError, match=r"values\[1\] must be an object"):
        StandardMerkleTree.load(variant(values=[good["values"][0], ["x"], good["values"][2]]))
    bad_index = variant()
    bad_index["values"][0]["treeIndex"] = "2"
    with pytest.raises(MerkleTreeError, match=r"values\[0\]\.treeIndex must be an integer"):
        StandardMerkleTree.load(bad_index)
    bad_value = variant()
    bad_value["values"][1]["value"][1] = "300"
    with pytest.raises(LeafEncodingError, match=r"values\[1\]\[1\] \(uint8\)"):
        StandardMerkleTree.load(bad_value)
    with pytest.raises(MerkleTreeError, match="JSON object"):
        StandardMerkleTree.load([good])  # type: ignore[arg-type]
