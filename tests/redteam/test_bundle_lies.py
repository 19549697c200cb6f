"""The platform lies in a proof bundle, and ``liveproof verify-receipt`` catches it.

Every test starts from an honest bundle (receipt 3 of a committed 8-receipt batch, which
verifies), stages one lie the platform could hand a shopper, and asserts the command's verdict:
exit 1 with one ``FAIL: <check>: ...`` line naming the check that caught it, or exit 2 with
``error: unusable bundle: <what>`` for a bundle that breaks a shape rule, and never a traceback.
The checks of ``verify-receipt`` are named in words (``commit transaction``), so the FAIL
lines are matched on the whole check name, not on the first word as ``assert_caught`` does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_typing import HexStr
from typer.testing import CliRunner, Result
from web3 import Web3
from web3.types import Wei

from chain.clients import SaleLedgerClient
from chain.clients.base import relayer_for
from chain.deploy import Deployment, deploy
from chain.hashing import keccak256
from chain.merkle import StandardMerkleTree
from chain.proof_bundle import BUNDLE_FORMAT
from chain.receipts import LEAF_TYPES, ReceiptLeaf
from scripts.cli import app
from tests.chain.test_receipts import make_leaf
from tests.conftest import Accounts
from tests.redteam.conftest import assert_clean, fail_lines

runner = CliRunner()
Bundle = dict[str, Any]


@dataclass
class Batch:
    """A batch the recorder committed on the real ledger: its leaves, tree and commit."""

    leaves: list[ReceiptLeaf]
    tree: StandardMerkleTree
    tx_hash: str
    block_number: int

    def bundle(self, index: int, ledger: str, chain_id: int) -> Bundle:
        """The honest bundle of leaf ``index``."""
        return {
            "format": BUNDLE_FORMAT,
            "chainId": chain_id,
            "ledger": ledger,
            "batchId": self.tree.root_hex,
            "root": self.tree.root_hex,
            "txHash": self.tx_hash,
            "blockNumber": self.block_number,
            "leafTypes": list(LEAF_TYPES),
            "leaf": self.leaves[index].to_json(),
            "proof": ["0x" + p.hex() for p in self.tree.get_proof(index)],
        }


def commit(ledger: SaleLedgerClient, seed: int, size: int, *, count: int | None = None) -> Batch:
    """Commit a batch of ``size`` random receipts (claiming ``count`` of them)."""
    rng = random.Random(seed)
    leaves = [make_leaf(rng) for _ in range(size)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    sent = ledger.commit_batch(tree.root, size if count is None else count)
    return Batch(leaves, tree, sent.tx_hash, sent.block_number)


@pytest.fixture
def batch(ledger: SaleLedgerClient) -> Batch:
    """An honest committed batch of 8 receipts."""
    return commit(ledger, 42, 8)


@pytest.fixture
def honest(batch: Batch, deployment: Deployment, w3: Web3) -> Bundle:
    """The honest bundle of receipt 3."""
    return batch.bundle(3, deployment.address("SaleLedger"), int(w3.eth.chain_id))


@pytest.fixture
def verify(w3: Web3, tmp_path: Path) -> Callable[..., Result]:
    """Run ``liveproof verify-receipt`` on a bundle (a dict, or raw text) against the devnet."""
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]

    def run(bundle: Bundle | bytes, *extra: str) -> Result:
        path = tmp_path / "bundle.json"
        path.write_bytes(bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode())
        return runner.invoke(app, ["verify-receipt", str(path), "--rpc", rpc, *extra])

    return run


def assert_refused(result: Result, check: str) -> str:
    """Exit 1, one FAIL line, and it names ``check``; returns the line."""
    assert result.exit_code == 1, result.output
    lines = fail_lines(result)
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"FAIL: {check}: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def assert_unusable(result: Result, what: str) -> None:
    """Exit 2 with ``error: unusable bundle: <what>...``, no FAIL or OK line, no traceback."""
    assert result.exit_code == 2, result.output
    assert f"error: unusable bundle: {what}" in result.output, result.output
    assert "FAIL:" not in result.output
    assert "OK:" not in result.output
    assert "Traceback" not in result.output


def test_the_honest_bundle_verifies(honest: Bundle, verify: Callable[..., Result]) -> None:
    result = verify(honest, "--receipt", honest["leaf"]["receiptId"])
    assert_clean(result)
    assert "runs the audited SaleLedger code" in result.output
    assert "a proof of 3 nodes fits the 8 receipts committed" in result.output


# ----------------------------------------------------------------------------- the ledger


def test_a_ledger_with_no_code(
    honest: Bundle, verify: Callable[..., Result], accounts: Accounts
) -> None:
    """The bundle names an account with no code (an EOA): nothing can vouch for the root."""
    line = assert_refused(verify({**honest, "ledger": accounts.stranger.address}), "ledger code")
    assert line.endswith("vs no code")


# A "yes-man" ledger with SaleLedger's ABI, in raw EVM code (no PUSH0, so Berlin runs it). On
# its first call it stores the block number and emits BatchCommitted(calldata[4:36]), as
# commitBatch would; every call answers the words (1, block, block): verifyReceipt -> true,
# batch(root) -> count 1, committed in that block. Only its code gives it away.
_YES_MAN_RUNTIME = bytes.fromhex(
    "600054" "80" "6036" "57" "50" "43" "80" "600055" "600435"
    "7f" + keccak256(b"BatchCommitted(bytes32,uint32)").hex() +
    "6000" "6000" "a2" "5b" "6001600052" "80602052" "604052" "60606000f3"
)  # fmt: skip


def _commit_call(root: str, count: int) -> HexStr:
    """Calldata of ``commitBatch(root, count)``."""
    selector = keccak256(b"commitBatch(bytes32,uint32)")[:4].hex()
    return HexStr("0x" + selector + root[2:] + count.to_bytes(32, "big").hex())


def _deploy_code(w3: Web3, accounts: Accounts, runtime: bytes) -> str:
    creation = bytes([0x60, len(runtime), 0x60, 12, 0x60, 0, 0x39, 0x60, len(runtime)])
    creation += bytes([0x60, 0, 0xF3]) + runtime
    receipt = relayer_for(w3, accounts.stranger).send_and_wait({"data": creation, "gas": 200_000})
    return str(receipt["contractAddress"])


def test_a_look_alike_ledger_that_emits_its_own_commit(
    honest: Bundle, verify: Callable[..., Result], w3: Web3, accounts: Accounts
) -> None:
    """The platform's own contract answers like a SaleLedger for a root it never committed
    (a single made-up receipt), emits the commit event itself and reports the right block:
    every other check passes; the code is not the audited SaleLedger."""
    fake = _deploy_code(w3, accounts, _YES_MAN_RUNTIME)
    leaf = make_leaf(random.Random(99))
    root = "0x" + leaf.leaf_hash().hex()
    sent = relayer_for(w3, accounts.stranger).send_and_wait(
        {"to": fake, "data": _commit_call(root, 1), "gas": 100_000}
    )
    forged = {
        **honest, "ledger": fake, "root": root, "batchId": root, "leaf": leaf.to_json(),
        "proof": [], "txHash": "0x" + bytes(sent["transactionHash"]).hex(),
        "blockNumber": int(sent["blockNumber"]),
    }  # fmt: skip
    line = assert_refused(verify(forged), "ledger code")
    assert "vs other code (keccak 0x" in line


def test_a_shadow_sale_ledger_fails_against_the_pinned_ledger(
    honest: Bundle,
    batch: Batch,
    verify: Callable[..., Result],
    w3: Web3,
    accounts: Accounts,
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    """The platform deploys a genuine SaleLedger of its own and commits a root only there,
    out of the auditors' sight. The code is the audited code, so only the shopper's pinned
    ledger (the published deployment's) tells them apart."""
    # Its own directory: a deployment file left in the checkout must not be taken as this one.
    shadow_deployment, _ = deploy(w3, accounts.stranger, directory=tmp_path, write=False)
    shadow = shadow_deployment.ledger(w3, relayer_for(w3, accounts.stranger))
    hidden = commit(shadow, 7, 4)
    bundle = hidden.bundle(0, shadow.address, honest["chainId"])
    official = deployment.address("SaleLedger")
    assert verify(bundle).exit_code == 0  # unpinned, a shadow ledger is a ledger
    assert_refused(verify(bundle, "--ledger", official), "ledger address")


# ----------------------------------------------------------------------------- the commit


def test_a_forged_transaction_hash(honest: Bundle, verify: Callable[..., Result]) -> None:
    line = assert_refused(verify({**honest, "txHash": "0x" + "ab" * 32}), "commit transaction")
    assert line.endswith("vs no such transaction")


def test_another_batchs_commit_transaction(
    honest: Bundle, ledger: SaleLedgerClient, verify: Callable[..., Result]
) -> None:
    """A real commit transaction of the same ledger, but of another root and block."""
    other = commit(ledger, 5, 2)
    line = assert_refused(verify({**honest, "txHash": other.tx_hash}), "commit transaction")
    assert line.endswith(f"vs in block {other.block_number}")


@contextmanager
def one_block(w3: Web3) -> Iterator[None]:
    """Transactions sent inside land in one block, mined on leaving."""
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


def test_a_transaction_of_the_commit_block_that_is_not_the_commit(
    honest: Bundle,
    verify: Callable[..., Result],
    w3: Web3,
    accounts: Accounts,
    deployment: Deployment,
) -> None:
    """The stated transaction is real and in the stated block, but it is not the commit: the
    platform names a transfer mined beside the commit."""
    leaves = [make_leaf(random.Random(11)) for _ in range(2)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    recorder = relayer_for(w3, accounts.relayer)
    stranger = relayer_for(w3, accounts.stranger)
    ledger = deployment.address("SaleLedger")
    with one_block(w3):
        commit_tx = recorder.send(
            {"to": ledger, "data": _commit_call(tree.root_hex, 2), "gas": 200_000}
        )
        other_tx = stranger.send({"to": accounts.stranger.address, "value": Wei(1), "gas": 21_000})
    committed, other = recorder.wait(commit_tx), stranger.wait(other_tx)
    assert committed["blockNumber"] == other["blockNumber"]
    bundle = {
        **honest, "root": tree.root_hex, "batchId": tree.root_hex, "leaf": leaves[0].to_json(),
        "proof": ["0x" + p.hex() for p in tree.get_proof(0)],
        "blockNumber": int(committed["blockNumber"]),
        "txHash": "0x" + bytes(committed["transactionHash"]).hex(),
    }  # fmt: skip
    assert_clean(verify(bundle))
    line = assert_refused(
        verify({**bundle, "txHash": "0x" + bytes(other_tx).hex()}), "commit transaction"
    )
    assert line.endswith("vs another transaction (no such event)")


def test_the_right_transaction_with_another_block_number(
    honest: Bundle, verify: Callable[..., Result]
) -> None:
    line = assert_refused(
        verify({**honest, "blockNumber": honest["blockNumber"] - 1}), "commit block"
    )
    assert line == f"FAIL: commit block: {honest['blockNumber'] - 1} vs {honest['blockNumber']}"


def test_a_block_number_past_the_chain(honest: Bundle, verify: Callable[..., Result]) -> None:
    """A block that does not exist yet is a FAIL, not an RPC error."""
    assert_refused(verify({**honest, "blockNumber": 10**12}), "commit block")


def test_a_count_smaller_than_the_tree(
    honest: Bundle, ledger: SaleLedgerClient, verify: Callable[..., Result]
) -> None:
    """The recorder commits an 8-receipt tree as "1 receipt" (a sales counter kept low): the
    shopper's proof of 3 nodes cannot come from a batch of one."""
    understated = commit(ledger, 21, 8, count=1)
    bundle = understated.bundle(5, honest["ledger"], honest["chainId"])
    line = assert_refused(verify(bundle), "batch count")
    assert line == ("FAIL: batch count: a proof of 0 nodes for the 1 receipts committed vs 3 nodes")


# ----------------------------------------------------------------------------- the leaf


def test_another_receipts_leaf_with_this_proof(
    honest: Bundle, batch: Batch, verify: Callable[..., Result]
) -> None:
    """The leaf is swapped for another real receipt of the same batch."""
    line = assert_refused(verify({**honest, "leaf": batch.leaves[4].to_json()}), "proof")
    assert line.startswith(f"FAIL: proof: root {honest['root']} vs 0x")


def test_another_receipts_whole_bundle(
    honest: Bundle, batch: Batch, verify: Callable[..., Result]
) -> None:
    """The platform hands the shopper a complete, valid bundle of someone else's receipt:
    it verifies on its own, and fails against the shopper's receipt code."""
    other = batch.bundle(6, honest["ledger"], honest["chainId"])
    assert_clean(verify(other))
    line = assert_refused(verify(other, "--receipt", honest["leaf"]["receiptId"]), "receipt")
    assert line == f"FAIL: receipt: {honest['leaf']['receiptId']} vs {other['leaf']['receiptId']}"


def test_a_proof_from_another_batch(
    honest: Bundle, ledger: SaleLedgerClient, verify: Callable[..., Result]
) -> None:
    """The receipt's leaf with a real proof, root and commit of another batch."""
    other = commit(ledger, 8, 8).bundle(3, honest["ledger"], honest["chainId"])
    assert_refused(verify({**other, "leaf": honest["leaf"]}), "proof")


def _leaf(change: dict[str, Any]) -> Callable[[Bundle], Bundle]:
    return lambda b: {**b, "leaf": {**b["leaf"], **change}}


def _drop(name: str) -> Callable[[Bundle], Bundle]:
    return lambda b: {**b, "leaf": {k: v for k, v in b["leaf"].items() if k != name}}


@pytest.mark.parametrize(
    ("lie", "what"),
    [
        (lambda b: {**b, "leafTypes": list(reversed(LEAF_TYPES))}, "leafTypes is not"),
        (lambda b: {**b, "leafTypes": ",".join(LEAF_TYPES)}, "leafTypes is not"),
        (lambda b: {**b, "leafTypes": [*LEAF_TYPES, "bytes32"]}, "leafTypes is not"),
        (lambda b: {**b, "leafTypes": None}, "leafTypes is not"),
        (_leaf({"note": "free gift"}), "leaf: fields missing [], unexpected ['note']"),
        (_drop("buyerCommitment"), "leaf: fields missing ['buyerCommitment']"),
        (lambda b: {**b, "leaf": [b["leaf"]]}, "leaf: must be an object"),
        (_leaf({"quantity": "1e3"}), "leaf: quantity uint32 is an unsigned integer"),
        (_leaf({"quantity": " 2"}), "leaf: quantity uint32 is an unsigned integer"),
        (_leaf({"unitPrice": -1}), "leaf: unitPrice uint256 is an unsigned integer"),
        (_leaf({"unitPrice": 1.5}), "leaf: unitPrice uint256 is an unsigned integer"),
        (_leaf({"quantity": str(2**32)}), f"leaf: quantity {2**32} does not fit uint32"),
        (_leaf({"orderedAt": 2**64}), f"leaf: orderedAt {2**64} does not fit uint64"),
        (_leaf({"kind": 2}), "leaf: receipt leaf field kind: 0 or 1"),
        (_leaf({"kind": True}), "leaf: kind uint8 is an unsigned integer"),
        (_leaf({"quantity": 0}), "leaf: quantity must be 1..2^32-1"),
        (_leaf({"currency": "0x434e5900"}), "leaf: currency bytes3 is 0x + 6 hex digits"),
        (_leaf({"receiptId": "0x" + "12 " * 32}), "leaf: receiptId bytes32 is 0x + 64 hex"),
        (lambda b: {**b, "ledger": b["ledger"][2:]}, "ledger must be an address"),
        (lambda b: {**b, "proof": ["0x" + "zz" * 32]}, "proof[0] must be a 0x-prefixed"),
        (lambda b: {**b, "batchId": "0x" + "00" * 32}, "batchId and root differ"),
    ],
)
def test_a_bundle_of_the_wrong_shape_is_unusable(
    honest: Bundle, verify: Callable[..., Result], lie: Callable[[Bundle], Bundle], what: str
) -> None:
    assert_unusable(verify(lie(honest)), what)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'{"format": "\xff"}', "not UTF-8 text"),
        (b"{", "not JSON"),
        (b"{}", "missing fields"),
    ],
)
def test_a_file_that_is_no_bundle_is_unusable(
    verify: Callable[..., Result], text: bytes, what: str
) -> None:
    assert_unusable(verify(text), what)


def test_a_batch_id_in_another_case_is_the_same_batch(
    honest: Bundle, verify: Callable[..., Result]
) -> None:
    """As in the browser verifier, a batchId is compared with the root case-insensitively."""
    assert_clean(verify({**honest, "batchId": honest["root"].upper().replace("0X", "0x")}))
