"""Receipt leaf v1: encoding, JSON, validation, and proofs that verify on the SaleLedger."""

from __future__ import annotations

import random

import pytest
from eth_abi.abi import encode
from eth_hash.auto import keccak

from chain.clients import SaleLedgerClient
from chain.errors import LeafEncodingError
from chain.merkle import StandardMerkleTree, standard_node_hash
from chain.receipts import (
    LEAF_TYPES,
    ReceiptKind,
    ReceiptLeaf,
    buyer_commitment,
    new_salt,
)


def make_leaf(rng: random.Random, *, kind: ReceiptKind = ReceiptKind.SALE) -> ReceiptLeaf:
    def b32() -> bytes:
        return rng.randbytes(32)

    return ReceiptLeaf(
        receipt_id=b32(),
        kind=kind,
        refers_to=b32() if kind == ReceiptKind.REFUND else bytes(32),
        room_id=b32(),
        session_id=b32(),
        product_id=b32(),
        endorsement_id=b32(),
        quantity=rng.randint(1, 50),
        unit_price=rng.randint(0, 10**9),
        currency=b"CNY",
        ordered_at=rng.randint(1_700_000_000, 1_800_000_000),
        buyer_commitment=buyer_commitment(b32(), b32()),
    )


def test_leaf_hash_is_double_keccak_of_abi_encoding() -> None:
    leaf = make_leaf(random.Random(1))
    expected = keccak(keccak(encode(list(LEAF_TYPES), list(leaf.values()))))
    assert leaf.leaf_hash() == expected


def test_json_round_trip_and_field_names() -> None:
    leaf = make_leaf(random.Random(2), kind=ReceiptKind.REFUND)
    data = leaf.to_json()
    assert list(data) == [
        "receiptId", "kind", "refersTo", "roomId", "sessionId", "productId", "endorsementId",
        "quantity", "unitPrice", "currency", "orderedAt", "buyerCommitment",
    ]  # fmt: skip
    assert data["currency"] == "0x434e59"
    assert ReceiptLeaf.from_json(data) == leaf


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": 2}, "kind"),
        ({"receiptId": "0x1234"}, "receiptId must be 32 bytes"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"unitPrice": "12.5"}, "unitPrice"),
        ({"refersTo": "0x" + "11" * 32}, "a sale refers to no other receipt"),
    ],
)
def test_bad_json_is_refused(change: dict[str, object], message: str) -> None:
    data = {**make_leaf(random.Random(3)).to_json(), **change}
    with pytest.raises(LeafEncodingError, match=message):
        ReceiptLeaf.from_json(data)


def test_unknown_or_missing_fields_are_refused() -> None:
    data = make_leaf(random.Random(4)).to_json()
    data["buyerName"] = "Alice"
    del data["orderedAt"]
    with pytest.raises(LeafEncodingError, match=r"missing \['orderedAt'\].*\['buyerName'\]"):
        ReceiptLeaf.from_json(data)


def test_refund_must_refer_to_a_sale() -> None:
    leaf = make_leaf(random.Random(5))
    with pytest.raises(LeafEncodingError, match="refund must refer"):
        ReceiptLeaf(**{**_as_kwargs(leaf), "kind": ReceiptKind.REFUND})


def _as_kwargs(leaf: ReceiptLeaf) -> dict[str, object]:
    return {name: getattr(leaf, name) for name in leaf.__slots__}


def test_commitment_hides_the_buyer_without_the_salt() -> None:
    ref = keccak(b"buyer-123")
    salt_a, salt_b = new_salt(), new_salt()
    assert salt_a != salt_b
    assert buyer_commitment(salt_a, ref) != buyer_commitment(salt_b, ref)
    assert buyer_commitment(salt_a, ref) == keccak(salt_a + ref)


def test_every_receipt_of_a_committed_batch_verifies_on_chain(ledger: SaleLedgerClient) -> None:
    rng = random.Random(6)
    leaves = [make_leaf(rng) for _ in range(37)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    ledger.commit_batch(tree.root, len(leaves))
    for index, leaf in enumerate(leaves):
        assert ledger.verify_receipt(tree.root, leaf.leaf_hash(), tree.get_proof(index))
    # A receipt that is not in the batch, or a proof for another leaf, does not verify.
    stranger = make_leaf(rng)
    assert not ledger.verify_receipt(tree.root, stranger.leaf_hash(), tree.get_proof(0))
    assert not ledger.verify_receipt(tree.root, leaves[1].leaf_hash(), tree.get_proof(0))


def test_uncommitted_root_never_verifies(ledger: SaleLedgerClient) -> None:
    rng = random.Random(7)
    leaves = [make_leaf(rng) for _ in range(4)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    assert not ledger.verify_receipt(tree.root, leaves[0].leaf_hash(), tree.get_proof(0))


def test_single_receipt_is_a_batch_of_one(ledger: SaleLedgerClient) -> None:
    leaf = make_leaf(random.Random(8))
    ledger.record_receipt(leaf.leaf_hash())
    assert ledger.batch(leaf.leaf_hash()).count == 1
    assert ledger.verify_receipt(leaf.leaf_hash(), leaf.leaf_hash(), [])


def test_internal_node_recomputed_as_a_leaf_does_not_verify(ledger: SaleLedgerClient) -> None:
    """A verifier recomputes the leaf from values, so an internal node cannot pose as one."""
    rng = random.Random(9)
    leaves = [make_leaf(rng) for _ in range(8)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    ledger.commit_batch(tree.root, len(leaves))
    nodes = tree.tree
    left, right = nodes[3], nodes[4]  # children of internal node 1
    assert standard_node_hash(left, right) == nodes[1]
    forged = keccak(keccak(encode(["bytes32", "bytes32"], sorted([left, right]))))
    proof_of_node_1 = [nodes[2]]
    assert not ledger.verify_receipt(tree.root, forged, proof_of_node_1)
