"""SaleLedger on a real anvil: batch roots and single receipts by the recorder, recorder
rotation by the admin, and Merkle proofs verified on chain."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_hash.auto import keccak
from web3 import Web3

from chain.actions import label_hash
from chain.clients import SaleLedgerClient
from chain.contract_errors import (
    AccessControlUnauthorizedAccount,
    BatchAlreadyCommitted,
    EmptyBatch,
    InvalidRecorder,
    NotRecorder,
    ReceiptAlreadyRecorded,
)
from chain.merkle import StandardMerkleTree

ROOT = label_hash("batch root")
LEAF = label_hash("receipt leaf")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
RECEIPT_ENCODING = ("bytes32", "address", "uint256", "bytes3", "bool")


def _addr(value: Any) -> str:
    return Web3.to_checksum_address(value)


def _receipts(count: int, buyer: str) -> list[tuple[Any, ...]]:
    """``count`` sale/refund receipts: (orderId, buyer, amount, currency, isRefund)."""
    return [
        (label_hash(f"order-{i}"), buyer, 1_000 + 37 * i, b"CNY", i % 5 == 4) for i in range(count)
    ]


def _sorted_pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


# --------------------------------------------------------------------------- commits


def test_recorder_commits_a_batch(ledger: SaleLedgerClient, w3: Web3) -> None:
    assert not ledger.batch(ROOT).committed
    sent = ledger.commit_batch(ROOT, 25)
    state = ledger.batch(ROOT)
    block = w3.eth.get_block(sent.block_number)
    assert (state.count, state.committed_at, state.block_number) == (
        25,
        block["timestamp"],
        sent.block_number,
    )
    logs = ledger.contract.events.BatchCommitted().get_logs(
        from_block=sent.block_number, to_block=sent.block_number
    )
    assert [(e["args"]["root"], e["args"]["count"]) for e in logs] == [(ROOT, 25)]


def test_batch_count_uses_the_full_uint32(ledger: SaleLedgerClient) -> None:
    ledger.commit_batch(ROOT, 2**32 - 1)
    assert ledger.batch(ROOT).count == 2**32 - 1


def test_duplicate_batch_root_is_refused(ledger: SaleLedgerClient) -> None:
    first = ledger.commit_batch(ROOT, 3)
    with pytest.raises(BatchAlreadyCommitted) as caught:
        ledger.commit_batch(ROOT, 4)
    assert caught.value.error_args == {"root": ROOT}
    state = ledger.batch(ROOT)
    assert (state.count, state.block_number) == (3, first.block_number)


def test_recorder_records_a_single_receipt(ledger: SaleLedgerClient) -> None:
    sent = ledger.record_receipt(LEAF)
    state = ledger.batch(LEAF)
    assert (state.count, state.block_number) == (1, sent.block_number)
    # A single receipt is a batch of one whose root is its leaf: an empty proof verifies.
    assert ledger.verify_receipt(LEAF, LEAF, [])
    assert not ledger.verify_receipt(LEAF, ROOT, [])


def test_duplicate_receipt_is_refused(ledger: SaleLedgerClient) -> None:
    ledger.record_receipt(LEAF)
    with pytest.raises(ReceiptAlreadyRecorded) as caught:
        ledger.record_receipt(LEAF)
    assert caught.value.error_args == {"leaf": LEAF}


def test_roots_and_leaves_share_one_namespace(ledger: SaleLedgerClient) -> None:
    ledger.commit_batch(ROOT, 2)
    with pytest.raises(ReceiptAlreadyRecorded):
        ledger.record_receipt(ROOT)
    ledger.record_receipt(LEAF)
    with pytest.raises(BatchAlreadyCommitted):
        ledger.commit_batch(LEAF, 1)
    assert ledger.batch(ROOT).count == 2
    assert ledger.batch(LEAF).count == 1


@pytest.mark.parametrize(("root", "count"), [(bytes(32), 1), (ROOT, 0), (bytes(32), 0)])
def test_empty_batch_is_refused(root: bytes, count: int, ledger: SaleLedgerClient) -> None:
    with pytest.raises(EmptyBatch):
        ledger.commit_batch(root, count)
    assert not ledger.batch(root).committed


def test_zero_leaf_is_refused(ledger: SaleLedgerClient) -> None:
    with pytest.raises(EmptyBatch):
        ledger.record_receipt(bytes(32))


# --------------------------------------------------------------------------- the recorder


@pytest.mark.parametrize("role", ["stranger", "admin", "brand"])
def test_non_recorder_cannot_commit(role: str, as_role: Any, accounts: Any) -> None:
    ledger = as_role(role).ledger
    with pytest.raises(NotRecorder) as caught:
        ledger.commit_batch(ROOT, 1)
    assert _addr(caught.value.error_args["account"]) == getattr(accounts, role).address
    with pytest.raises(NotRecorder):
        ledger.record_receipt(LEAF)
    assert not ledger.batch(ROOT).committed
    assert not ledger.batch(LEAF).committed


def test_recorder_is_the_deployments_recorder(ledger: SaleLedgerClient, accounts: Any) -> None:
    assert ledger.recorder() == accounts.relayer.address


def test_recorder_rotation(ledger: SaleLedgerClient, accounts: Any, as_role: Any) -> None:
    admin = as_role("admin").ledger
    sent = admin.set_recorder(accounts.anchor2.address)
    assert ledger.recorder() == accounts.anchor2.address
    logs = ledger.contract.events.RecorderChanged().get_logs(
        from_block=sent.block_number, to_block=sent.block_number
    )
    assert [(e["args"]["previousRecorder"], e["args"]["newRecorder"]) for e in logs] == [
        (accounts.relayer.address, accounts.anchor2.address)
    ]
    # The old recorder is refused...
    with pytest.raises(NotRecorder) as caught:
        ledger.commit_batch(ROOT, 1)
    assert _addr(caught.value.error_args["account"]) == accounts.relayer.address
    with pytest.raises(NotRecorder):
        ledger.record_receipt(LEAF)
    # ...and the new one accepted.
    new = as_role("anchor2").ledger
    new.commit_batch(ROOT, 1)
    new.record_receipt(LEAF)
    assert ledger.batch(ROOT).committed
    assert ledger.batch(LEAF).committed


def test_zero_recorder_is_refused(as_role: Any, ledger: SaleLedgerClient, accounts: Any) -> None:
    with pytest.raises(InvalidRecorder):
        as_role("admin").ledger.set_recorder(ZERO_ADDRESS)
    assert ledger.recorder() == accounts.relayer.address


@pytest.mark.parametrize("role", ["stranger", "relayer"])
def test_non_admin_cannot_rotate_the_recorder(
    role: str, as_role: Any, ledger: SaleLedgerClient, accounts: Any
) -> None:
    with pytest.raises(AccessControlUnauthorizedAccount) as caught:
        as_role(role).ledger.set_recorder(getattr(accounts, role).address)
    assert _addr(caught.value.error_args["account"]) == getattr(accounts, role).address
    assert caught.value.error_args["neededRole"] == bytes(32)
    assert ledger.recorder() == accounts.relayer.address


@pytest.mark.parametrize("fn", ["grantRole", "revokeRole"])
def test_stranger_cannot_grant_or_revoke_ledger_roles(
    fn: str, relayers: dict[str, Any], ledger: SaleLedgerClient, accounts: Any
) -> None:
    target = accounts.stranger.address if fn == "grantRole" else accounts.admin.address
    call = ledger.contract.get_function_by_name(fn)(bytes(32), target)
    with pytest.raises(AccessControlUnauthorizedAccount):
        relayers["stranger"].transact(call)
    assert ledger.contract.functions.hasRole(bytes(32), accounts.admin.address).call()
    assert not ledger.contract.functions.hasRole(bytes(32), accounts.stranger.address).call()


# --------------------------------------------------------------------------- proofs


def test_every_receipt_of_a_committed_tree_verifies(
    ledger: SaleLedgerClient, accounts: Any
) -> None:
    receipts = _receipts(13, accounts.brand.address)  # not a power of two
    tree = StandardMerkleTree.of(receipts, RECEIPT_ENCODING)
    assert not ledger.verify_receipt(tree.root, tree.leaf_hash(receipts[0]), tree.get_proof(0))
    ledger.commit_batch(tree.root, len(tree))
    assert ledger.batch(tree.root).count == 13
    for index, receipt in enumerate(receipts):
        leaf, proof = tree.leaf_hash(receipt), tree.get_proof(index)
        assert tree.verify(index, proof)
        assert ledger.verify_receipt(tree.root, leaf, proof), index


def test_forged_receipts_do_not_verify(ledger: SaleLedgerClient, accounts: Any) -> None:
    receipts = _receipts(8, accounts.brand.address)
    tree = StandardMerkleTree.of(receipts, RECEIPT_ENCODING)
    ledger.commit_batch(tree.root, len(tree))
    proof = tree.get_proof(3)
    real = tree.leaf_hash(receipts[3])
    assert ledger.verify_receipt(tree.root, real, proof)
    inflated = (receipts[3][0], receipts[3][1], receipts[3][2] + 1, *receipts[3][3:])
    assert not ledger.verify_receipt(tree.root, tree.leaf_hash(inflated), proof)
    assert not ledger.verify_receipt(tree.root, real, tree.get_proof(4))
    assert not ledger.verify_receipt(tree.root, real, proof[:-1])
    # A single-hashed leaf is not a leaf of a StandardMerkleTree.
    once = keccak(encode(list(RECEIPT_ENCODING), list(receipts[3])))
    assert keccak(once) == real
    assert not ledger.verify_receipt(tree.root, once, proof)
    # verifyReceipt checks that a node lies on a path to the root, so an internal node with
    # its sibling passes too: callers must hash the receipt into its leaf themselves (the
    # double hash keeps a receipt's leaf from ever equalling an internal node).
    assert ledger.verify_receipt(tree.root, tree.tree[1], [tree.tree[2]])


def test_proof_against_an_uncommitted_root_does_not_verify(
    ledger: SaleLedgerClient, accounts: Any
) -> None:
    receipts = _receipts(4, accounts.brand.address)
    tree = StandardMerkleTree.of(receipts, RECEIPT_ENCODING)
    ledger.commit_batch(label_hash("some other root"), 4)
    assert tree.verify(0, tree.get_proof(0))
    assert not ledger.verify_receipt(tree.root, tree.leaf_hash(receipts[0]), tree.get_proof(0))


def test_hand_built_two_leaf_proof_verifies(ledger: SaleLedgerClient) -> None:
    a, b = keccak(b"receipt a"), keccak(b"receipt b")
    root = _sorted_pair(a, b)
    assert root == _sorted_pair(b, a)
    ledger.commit_batch(root, 2)
    assert ledger.verify_receipt(root, a, [b])
    assert ledger.verify_receipt(root, b, [a])
    assert not ledger.verify_receipt(root, a, [a])
    assert not ledger.verify_receipt(root, keccak(b"receipt c"), [b])


def test_python_tree_agrees_with_hand_built_pairs(accounts: Any) -> None:
    receipts = _receipts(2, accounts.brand.address)
    tree = StandardMerkleTree.of(receipts, RECEIPT_ENCODING)
    leaves = [tree.leaf_hash(r) for r in receipts]
    assert tree.root == _sorted_pair(*leaves)
    assert tree.get_proof(0) == [leaves[1]]
