"""The receipt proof bundle (``liveproof-receipt-proof/1``) and its verification.

A bundle is what a shopper keeps: the chain, the ledger, the batch root and transaction, the
receipt leaf's values and the Merkle proof. :func:`verify_bundle` checks it against any
JSON-RPC node of that chain and nothing else: it recomputes the leaf from the values, folds
the proof, asks the ledger (``eth_call``) whether the root is committed and the proof holds,
and finds the commit's event in the stated block and transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from web3 import Web3

from chain.clients import SaleLedgerClient
from chain.errors import LeafEncodingError, LiveProofError, VerificationError
from chain.hashing import keccak256
from chain.merkle import process_proof
from chain.receipts import LEAF_TYPES, ReceiptLeaf

BUNDLE_FORMAT: Final = "liveproof-receipt-proof/1"
_FIELDS: Final = (
    "format", "chainId", "ledger", "batchId", "root", "txHash", "blockNumber", "leafTypes",
    "leaf", "proof",
)  # fmt: skip
_BATCH_COMMITTED: Final = keccak256(b"BatchCommitted(bytes32,uint32)")
_RECEIPT_RECORDED: Final = keccak256(b"ReceiptRecorded(bytes32)")


class BundleFormatError(LiveProofError, ValueError):
    """The document is not a usable proof bundle."""


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise BundleFormatError(f"{what} must be a 0x-prefixed 32-byte hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise BundleFormatError(f"{what} is not hex") from None


@dataclass(frozen=True)
class ProofBundle:
    """A parsed, well-formed bundle (not yet verified)."""

    chain_id: int
    ledger: str
    root: bytes
    tx_hash: bytes
    block_number: int
    leaf: ReceiptLeaf
    proof: tuple[bytes, ...]

    @classmethod
    def parse(cls, data: Any) -> ProofBundle:
        """Check the bundle's shape; raises :class:`BundleFormatError` with what is wrong."""
        if not isinstance(data, dict):
            raise BundleFormatError("a proof bundle is a JSON object")
        missing = [f for f in _FIELDS if f not in data]
        if missing:
            raise BundleFormatError(f"missing fields: {', '.join(missing)}")
        if data["format"] != BUNDLE_FORMAT:
            raise BundleFormatError(f"format must be {BUNDLE_FORMAT!r}, got {data['format']!r}")
        if list(data["leafTypes"]) != list(LEAF_TYPES):
            raise BundleFormatError("leafTypes is not receipt leaf v1")
        if data["batchId"] != data["root"]:
            raise BundleFormatError("batchId and root differ (a batch is named by its root)")
        chain_id, block = data["chainId"], data["blockNumber"]
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
            raise BundleFormatError("chainId must be a positive integer")
        if not isinstance(block, int) or isinstance(block, bool) or block < 0:
            raise BundleFormatError("blockNumber must be a non-negative integer")
        if not isinstance(data["ledger"], str) or not Web3.is_address(data["ledger"]):
            raise BundleFormatError("ledger must be an address")
        if not isinstance(data["proof"], list):
            raise BundleFormatError("proof must be a list of 32-byte hex strings")
        try:
            leaf = ReceiptLeaf.from_json(data["leaf"])
        except (LeafEncodingError, TypeError, AttributeError) as exc:
            raise BundleFormatError(f"leaf: {exc}") from None
        return cls(
            chain_id=chain_id,
            ledger=Web3.to_checksum_address(data["ledger"]),
            root=_hex32(data["root"], "root"),
            tx_hash=_hex32(data["txHash"], "txHash"),
            block_number=block,
            leaf=leaf,
            proof=tuple(_hex32(p, f"proof[{i}]") for i, p in enumerate(data["proof"])),
        )


@dataclass(frozen=True)
class Check:
    """One verified fact, for ``OK: <item>`` lines."""

    item: str


def verify_bundle(w3: Web3, bundle: ProofBundle) -> Iterator[Check]:
    """Yield each check as it passes; raise :class:`VerificationError` at the first failure."""
    chain_id = int(w3.eth.chain_id)
    if chain_id != bundle.chain_id:
        raise VerificationError("chain id", bundle.chain_id, chain_id)
    yield Check(f"chain id {chain_id}")
    leaf = bundle.leaf.leaf_hash()
    folded = process_proof(leaf, list(bundle.proof))
    if folded != bundle.root:
        raise VerificationError("proof", f"root 0x{bundle.root.hex()}", f"0x{folded.hex()}")
    yield Check(f"leaf 0x{leaf.hex()} folds to root 0x{bundle.root.hex()}")
    if not w3.eth.get_code(Web3.to_checksum_address(bundle.ledger)):
        raise VerificationError("ledger", f"contract code at {bundle.ledger}", "no code")
    ledger = SaleLedgerClient.at(w3, bundle.ledger)
    batch = ledger.batch(bundle.root)
    if not batch.committed:
        raise VerificationError("root on the ledger", "committed", "not committed")
    if not ledger.verify_receipt(bundle.root, leaf, list(bundle.proof)):
        raise VerificationError("SaleLedger.verifyReceipt", True, False)
    yield Check(f"SaleLedger {bundle.ledger} holds the root and verifies the proof (eth_call)")
    if batch.block_number != bundle.block_number:
        raise VerificationError("commit block", bundle.block_number, batch.block_number)
    found = _commit_tx(w3, bundle)
    if found != bundle.tx_hash:
        shown = "no commit event" if found is None else f"0x{found.hex()}"
        raise VerificationError("commit transaction", f"0x{bundle.tx_hash.hex()}", shown)
    yield Check(f"committed in block {bundle.block_number} by tx 0x{bundle.tx_hash.hex()}")
    yield Check(f"receipt 0x{bundle.leaf.receipt_id.hex()}")


def _commit_tx(w3: Web3, bundle: ProofBundle) -> bytes | None:
    logs = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(bundle.ledger),
            "fromBlock": bundle.block_number,
            "toBlock": bundle.block_number,
            "topics": [
                ["0x" + _BATCH_COMMITTED.hex(), "0x" + _RECEIPT_RECORDED.hex()],
                "0x" + bundle.root.hex(),
            ],
        }
    )
    return bytes(logs[0]["transactionHash"]) if logs else None
