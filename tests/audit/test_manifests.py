"""The auditor's manifest parser: its column-wise fast path hashes exactly as ReceiptLeaf and
StandardMerkleTree do, and refuses anything that is not receipt leaf v1."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.audit.manifests import ManifestError, parse_leaves
from chain.merkle import StandardMerkleTree
from chain.receipts import LEAF_TYPES, ReceiptKind, ReceiptLeaf


def leaf(**override: Any) -> ReceiptLeaf:
    values: dict[str, Any] = {
        "receipt_id": os.urandom(32),
        "kind": ReceiptKind.SALE,
        "refers_to": bytes(32),
        "room_id": os.urandom(32),
        "session_id": os.urandom(32),
        "product_id": os.urandom(32),
        "endorsement_id": os.urandom(32),
        "quantity": 3,
        "unit_price": 12_800,
        "currency": b"CNY",
        "ordered_at": 1_790_000_000,
        "buyer_commitment": os.urandom(32),
    }
    values.update(override)
    return ReceiptLeaf(**values)


def manifest(leaves: list[ReceiptLeaf]) -> dict[str, Any]:
    return {"leaf_types": list(LEAF_TYPES), "leaves": [x.to_json() for x in leaves]}


@settings(max_examples=40, deadline=None)
@given(
    quantities=st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=40),
    price=st.integers(0, 2**256 - 1),
    at=st.integers(0, 2**64 - 1),
)
def test_hashes_and_root_match_the_reference_implementations(
    quantities: list[int], price: int, at: int
) -> None:
    leaves = [leaf(quantity=q, unit_price=price, ordered_at=at) for q in quantities]
    parsed = parse_leaves(manifest(leaves))
    assert parsed.hashes == [x.leaf_hash() for x in leaves]
    tree = StandardMerkleTree.of([x.values() for x in leaves], LEAF_TYPES)
    assert parsed.root() == tree.root
    assert list(parsed.rows()) == [x.values() for x in leaves]


def test_numbers_may_be_json_numbers_or_decimal_strings() -> None:
    row = leaf().to_json()
    as_numbers = {**row, "unitPrice": int(row["unitPrice"]), "kind": "0", "quantity": "3"}
    assert parse_leaves({"leaves": [as_numbers]}).hashes == parse_leaves({"leaves": [row]}).hashes


def _bad(change: dict[str, Any]) -> dict[str, Any]:
    return {"leaves": [leaf().to_json(), {**leaf().to_json(), **change}]}


@pytest.mark.parametrize(
    "broken",
    [
        {"leaves": []},
        {"leaves": "nope"},
        {"leaves": [[1, 2]]},
        {"leaf_types": ["bytes32"], "leaves": [leaf().to_json()]},
        _bad({"receiptId": "ab" * 33}),  # no 0x
        _bad({"receiptId": "0x" + "ab" * 31}),  # short
        _bad({"receiptId": "0x" + "zz" * 32}),  # not hex
        _bad({"receiptId": "0x " + "ab" * 31 + "a"}),  # whitespace fromhex would skip
        _bad({"receiptId": 12}),
        _bad({"currency": "0x434e5900"}),
        _bad({"quantity": 2**32}),
        _bad({"quantity": -1}),
        _bad({"quantity": 1.5}),
        _bad({"quantity": True}),
        _bad({"quantity": "+3"}),
        _bad({"quantity": " 3"}),
        _bad({"kind": 2}),
        _bad({"unitPrice": str(2**256)}),
        _bad({"extra": 1}),
    ],
)
def test_anything_but_leaf_v1_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ManifestError):
        parse_leaves(broken)


def test_a_missing_field_is_refused() -> None:
    row = leaf().to_json()
    del row["buyerCommitment"]
    with pytest.raises(ManifestError, match="exactly the fields"):
        parse_leaves({"leaves": [row]})
