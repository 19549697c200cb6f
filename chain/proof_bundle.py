"""The receipt proof bundle (``liveproof-receipt-proof/1``) and its verification.

A bundle is what a shopper keeps: the chain, the ledger, the batch root and transaction, the
receipt leaf's values and the Merkle proof. :func:`verify_bundle` checks it against any
JSON-RPC node of that chain and nothing else: it recomputes the leaf from the values, folds
the proof, checks that the ledger runs the audited SaleLedger code, asks it (``eth_call``)
whether the root is committed and the proof holds, and reads the stated transaction's
receipt for the ledger's commit event of that root in the stated block.

The bundle comes from the platform, which may lie: every field is a claim. A bundle that
breaks a shape rule (the same rules as the browser verifier, ``api/pages/static/verify.js``)
is refused as unusable; every claim about the chain is checked against the chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from web3 import Web3
from web3.exceptions import TransactionNotFound

from chain.artifacts import load_artifact
from chain.bytecode import code_hash, compare_runtime
from chain.clients import SaleLedgerClient
from chain.clients.ledger import BatchState
from chain.errors import LeafEncodingError, LiveProofError, VerificationError
from chain.hashing import keccak256
from chain.merkle import process_proof
from chain.receipts import LEAF_FIELDS, LEAF_TYPES, ReceiptLeaf

BUNDLE_FORMAT: Final = "liveproof-receipt-proof/1"
_FIELDS: Final = (
    "format", "chainId", "ledger", "batchId", "root", "txHash", "blockNumber", "leafTypes",
    "leaf", "proof",
)  # fmt: skip
_BATCH_COMMITTED: Final = keccak256(b"BatchCommitted(bytes32,uint32)")
_RECEIPT_RECORDED: Final = keccak256(b"ReceiptRecorded(bytes32)")
_COMMIT_TOPICS: Final = frozenset({_BATCH_COMMITTED, _RECEIPT_RECORDED})
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX32: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_DIGITS: Final = re.compile(r"[0-9]+")


class BundleFormatError(LiveProofError, ValueError):
    """The document is not a usable proof bundle."""


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise BundleFormatError(f"{what} must be a 0x-prefixed 32-byte hex string")
    return bytes.fromhex(value[2:])


def _leaf_shape(leaf: Any) -> None:
    """The leaf's JSON shape as the browser verifier reads it: an object with exactly the
    leaf v1 fields, ``bytesN`` as ``0x`` + 2N hex digits, ``uintN`` as a non-negative integer
    or a string of decimal digits that fits N bits."""
    if not isinstance(leaf, Mapping):
        raise BundleFormatError("leaf: must be an object")
    names = {name for name, _ in LEAF_FIELDS}
    if set(leaf) != names:
        missing, extra = sorted(names - set(leaf)), sorted(set(leaf) - names)
        raise BundleFormatError(f"leaf: fields missing {missing}, unexpected {extra}")
    for name, kind in LEAF_FIELDS:
        value = leaf[name]
        if kind.startswith("bytes"):
            size = int(kind[5:])
            if not isinstance(value, str) or not re.fullmatch(
                rf"0x[0-9a-fA-F]{{{2 * size}}}", value
            ):
                raise BundleFormatError(f"leaf: {name} {kind} is 0x + {2 * size} hex digits")
            continue
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            number = value
        else:
            raise BundleFormatError(f"leaf: {name} {kind} is an unsigned integer")
        if number >= 2 ** int(kind[4:]):
            raise BundleFormatError(f"leaf: {name} {number} does not fit {kind}")


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
        if not isinstance(data["leafTypes"], list) or data["leafTypes"] != list(LEAF_TYPES):
            raise BundleFormatError("leafTypes is not receipt leaf v1")
        chain_id, block = data["chainId"], data["blockNumber"]
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
            raise BundleFormatError("chainId must be a positive integer")
        if not isinstance(block, int) or isinstance(block, bool) or block < 0:
            raise BundleFormatError("blockNumber must be a non-negative integer")
        ledger = data["ledger"]
        if not isinstance(ledger, str) or not _ADDRESS.fullmatch(ledger):
            raise BundleFormatError("ledger must be an address (0x + 40 hex digits)")
        if not Web3.is_address(ledger):
            raise BundleFormatError("ledger's mixed-case checksum (EIP-55) is wrong")
        root, tx_hash = _hex32(data["root"], "root"), _hex32(data["txHash"], "txHash")
        if _hex32(data["batchId"], "batchId") != root:
            raise BundleFormatError("batchId and root differ (a batch is named by its root)")
        if not isinstance(data["proof"], list):
            raise BundleFormatError("proof must be a list of 32-byte hex strings")
        proof = tuple(_hex32(p, f"proof[{i}]") for i, p in enumerate(data["proof"]))
        _leaf_shape(data["leaf"])
        try:
            leaf = ReceiptLeaf.from_json(dict(data["leaf"]))
        except (LeafEncodingError, TypeError, AttributeError) as exc:
            raise BundleFormatError(f"leaf: {exc}") from None
        return cls(
            chain_id=chain_id,
            ledger=Web3.to_checksum_address(ledger),
            root=root,
            tx_hash=tx_hash,
            block_number=block,
            leaf=leaf,
            proof=proof,
        )


@dataclass(frozen=True)
class Check:
    """One verified fact, for ``OK: <item>`` lines."""

    item: str


def verify_bundle(w3: Web3, bundle: ProofBundle) -> Iterator[Check]:
    """Yield each check as it passes; raise :class:`VerificationError` at the first failure.

    Nothing the bundle says is taken on trust: the ledger must run the audited SaleLedger
    code (any other contract could answer ``true`` to anything), the root must be committed
    there with a count the proof's length fits, and the stated transaction must be the one
    whose receipt carries the ledger's commit event of that root, in the stated block."""
    chain_id = int(w3.eth.chain_id)
    if chain_id != bundle.chain_id:
        raise VerificationError("chain id", bundle.chain_id, chain_id)
    yield Check(f"chain id {chain_id}")
    leaf = bundle.leaf.leaf_hash()
    folded = process_proof(leaf, list(bundle.proof))
    if folded != bundle.root:
        raise VerificationError("proof", f"root 0x{bundle.root.hex()}", f"0x{folded.hex()}")
    yield Check(f"leaf 0x{leaf.hex()} folds to root 0x{bundle.root.hex()}")
    yield from _check_ledger_code(w3, bundle.ledger)
    ledger = SaleLedgerClient.at(w3, bundle.ledger)
    batch = ledger.batch(bundle.root)
    if not batch.committed:
        raise VerificationError("root on the ledger", "committed", "not committed")
    if not ledger.verify_receipt(bundle.root, leaf, list(bundle.proof)):
        raise VerificationError("SaleLedger.verifyReceipt", True, False)
    yield Check(f"SaleLedger {bundle.ledger} holds the root and verifies the proof (eth_call)")
    yield from _check_count(batch, len(bundle.proof))
    if batch.block_number != bundle.block_number:
        raise VerificationError("commit block", bundle.block_number, batch.block_number)
    check_commit_tx(w3, bundle.tx_hash, bundle.block_number, bundle.ledger, bundle.root)
    yield Check(f"committed in block {bundle.block_number} by tx 0x{bundle.tx_hash.hex()}")
    yield Check(f"receipt 0x{bundle.leaf.receipt_id.hex()}")


def _check_ledger_code(w3: Web3, ledger: str) -> Iterator[Check]:
    """The ledger runs exactly the audited SaleLedger runtime code (the committed artifact)."""
    code = bytes(w3.eth.get_code(Web3.to_checksum_address(ledger)))
    verdict = compare_runtime(code, load_artifact("SaleLedger"))
    if verdict != "exact":
        found = "no code" if not code else f"other code (keccak {code_hash(code)})"
        raise VerificationError("ledger code", f"the SaleLedger artifact's code at {ledger}", found)
    yield Check(f"{ledger} runs the audited SaleLedger code")


def proof_lengths(count: int) -> range:
    """The proof lengths a StandardMerkleTree of ``count`` leaves gives: a complete binary tree
    puts every leaf at depth floor(log2 count) or ceil(log2 count)."""
    return range(count.bit_length() - 1, (2 * count - 1).bit_length())


def _check_count(batch: BatchState, proof_length: int) -> Iterator[Check]:
    """The committed count fits the proof: a platform that commits a large tree under a small
    ``count`` (hiding sales) gives its shoppers proofs too long for that count."""
    fits = proof_lengths(batch.count)
    if proof_length not in fits:
        shown = "/".join(str(n) for n in fits)
        raise VerificationError(
            "batch count",
            f"a proof of {shown} nodes for the {batch.count} receipts committed",
            f"{proof_length} nodes",
        )
    yield Check(f"a proof of {proof_length} nodes fits the {batch.count} receipts committed")


def check_commit_tx(w3: Web3, tx_hash: bytes, block_number: int, ledger: str, root: bytes) -> None:
    """Raise :class:`VerificationError` (item ``commit transaction``) unless ``tx_hash`` was
    mined in ``block_number``, succeeded, and carries ``ledger``'s BatchCommitted or
    ReceiptRecorded event of ``root``: the one transaction that committed it."""
    tx = f"0x{tx_hash.hex()}"
    try:
        receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    except TransactionNotFound:
        raise VerificationError("commit transaction", tx, "no such transaction") from None
    if int(receipt["blockNumber"]) != block_number:
        raise VerificationError(
            "commit transaction",
            f"{tx} in block {block_number}",
            f"in block {receipt['blockNumber']}",
        )
    for log in receipt["logs"]:
        topics = [bytes(t) for t in log["topics"]]
        if (
            str(log["address"]).lower() == ledger.lower()
            and len(topics) >= 2
            and topics[0] in _COMMIT_TOPICS
            and topics[1] == root
        ):
            return
    raise VerificationError(
        "commit transaction",
        f"{tx} emitting the ledger's commit of root 0x{root.hex()}",
        "another transaction (no such event)" if receipt["status"] else "a reverted transaction",
    )
