"""The auditor's manifest parser: its column-wise fast path hashes exactly as ReceiptLeaf and
StandardMerkleTree do, and refuses anything that is not receipt leaf v1."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.audit.manifests import DirectoryManifests, ManifestError, parse_leaves
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


def _read(tmp_path: Path, text: bytes, **options: Any) -> dict[str, Any] | None:
    """``text`` read back as a manifest through a directory source."""
    root = "0x" + "ab" * 32
    (tmp_path / f"{root}.json").write_bytes(text)
    return DirectoryManifests(tmp_path, **options).get(root)


def test_a_key_named_twice_is_refused_wherever_it_is(tmp_path: Path) -> None:
    """orjson keeps a repeated key's last value, another reader its first: never both."""
    text = json.dumps({"note": "at 12:00", **manifest([leaf(quantity=3), leaf()])}).encode()
    read = _read(tmp_path, text)
    assert read is not None
    assert read["note"] == "at 12:00"  # ':' inside strings are fine
    for twice in (
        text.replace(b'"quantity": 3', b'"quantity": 9, "quantity": 3', 1),
        text.replace(b'"quantity": 3', b'"quantity" :9, "quantity": 3', 1),
        text.replace(b'"quantity": 3', b'"quantit\\u0079": 9, "quantity": 3', 1),
        b'{"leaves": [], ' + text[1:],
        text.replace(b'"at 12:00"', b'"at 12\\u003a00", "note": "x"'),  # escape hides the extra
    ):
        with pytest.raises(ManifestError, match="names a key twice"):
            _read(tmp_path, twice)


def test_a_manifest_of_junk_beside_its_leaves_is_refused(tmp_path: Path) -> None:
    text = json.dumps({"junk": [[1]] * 600_000, **manifest([leaf()])}).encode()
    with pytest.raises(ManifestError, match="values beside its leaves"):
        _read(tmp_path, text)


def test_a_manifest_file_that_is_no_regular_file_or_too_large_is_refused(tmp_path: Path) -> None:
    root = "0x" + "cd" * 32
    path = tmp_path / f"{root}.json"
    os.mkfifo(path)  # reading it would wait for a writer for ever
    with pytest.raises(ManifestError, match="not a regular file"):
        DirectoryManifests(tmp_path).get(root)
    path.unlink()
    path.symlink_to("/dev/zero")
    with pytest.raises(ManifestError, match="not a regular file"):
        DirectoryManifests(tmp_path).get(root)
    path.unlink()
    path.mkdir()
    with pytest.raises(ManifestError, match=r"not a regular file|Is a directory"):
        DirectoryManifests(tmp_path).get(root)
    with pytest.raises(ManifestError, match="over the cap of 10"):
        _read(tmp_path, json.dumps(manifest([leaf()])).encode(), max_bytes=10)
