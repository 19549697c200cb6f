"""Receipt views and the proof bundle a shopper keeps (``liveproof-receipt-proof/1``)."""

from __future__ import annotations

from typing import Any

import orjson

from api.models import Batch, Receipt
from api.models.common import unhex
from api.receipt_codes import encode as encode_code
from chain.merkle import proof_from_tree
from chain.proof_bundle import BUNDLE_FORMAT
from chain.receipts import LEAF_TYPES, ReceiptKind, ReceiptLeaf


def leaf_of(receipt: Receipt) -> ReceiptLeaf:
    """The receipt's leaf v1 values."""
    b = unhex
    return ReceiptLeaf(
        receipt_id=b(receipt.receipt_id),
        kind=ReceiptKind(receipt.kind),
        refers_to=b(receipt.refers_to),
        room_id=b(receipt.room_hash),
        session_id=b(receipt.session_hash),
        product_id=b(receipt.product_id),
        endorsement_id=b(receipt.endorsement_id),
        quantity=receipt.quantity,
        unit_price=receipt.unit_price,
        currency=receipt.currency.encode("ascii"),
        ordered_at=receipt.ordered_at,
        buyer_commitment=b(receipt.buyer_commitment),
    )


_TREES: dict[str, tuple[bytes, ...]] = {}


def batch_tree(batch: Batch) -> tuple[bytes, ...]:
    """A batch's Merkle tree nodes (parsed once per process: a root's tree never changes)."""
    nodes = _TREES.get(batch.root)
    if nodes is None:
        nodes = tuple(bytes.fromhex(h[2:]) for h in orjson.loads(batch.tree))
        if len(_TREES) > 4_096:
            _TREES.clear()
        _TREES[batch.root] = nodes
    return nodes


def receipt_proof(receipt: Receipt, batch: Batch) -> list[str]:
    """The receipt's Merkle proof, read from its batch's tree."""
    leaf = bytes.fromhex(receipt.leaf_hash[2:])
    return ["0x" + node.hex() for node in proof_from_tree(batch_tree(batch), leaf)]


def receipt_view(receipt: Receipt, batch: Batch | None) -> dict[str, Any]:
    """A receipt as anyone may see it: no buyer reference, no salt."""
    committed = batch is not None and batch.status == "committed"
    return {
        "receipt_code": encode_code(bytes.fromhex(receipt.receipt_id[2:])),
        "receipt_id": receipt.receipt_id,
        "kind": "sale" if receipt.kind == ReceiptKind.SALE else "refund",
        "status": receipt.status,
        "leaf": leaf_of(receipt).to_json(),
        "leaf_hash": receipt.leaf_hash,
        "batch_root": receipt.batch_root if committed else None,
        "tx_hash": batch.tx_hash if committed and batch else None,
        "block_number": batch.block_number if committed and batch else None,
        "proof": receipt_proof(receipt, batch) if committed and batch else None,
        "accepted_at": receipt.accepted_at,
        "committed_at": receipt.committed_at,
    }


def proof_bundle(receipt: Receipt, batch: Batch) -> dict[str, Any]:
    """The self-contained proof of a committed receipt, checkable with any RPC of the chain."""
    return {
        "format": BUNDLE_FORMAT,
        "chainId": batch.chain_id,
        "ledger": batch.ledger,
        "batchId": batch.root,
        "root": batch.root,
        "txHash": batch.tx_hash,
        "blockNumber": batch.block_number,
        "leafTypes": list(LEAF_TYPES),
        "leaf": leaf_of(receipt).to_json(),
        "proof": receipt_proof(receipt, batch),
    }
