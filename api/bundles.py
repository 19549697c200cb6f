"""Receipt views and the proof bundle a shopper keeps (``liveproof-receipt-proof/1``).

A bundle is only handed out when the database still matches the committed tree: the
receipt's fields hash to its stored leaf, that leaf is in the batch's stored tree, the proof
read from the tree folds to the batch's root, and the batch's rows are the tree's leaves.
Anything else raises :class:`LedgerInconsistencyError` naming what disagrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from api.models import Batch, Receipt
from api.models.common import unhex
from api.receipt_codes import encode as encode_code
from chain.errors import LedgerInconsistencyError, LiveProofError
from chain.merkle import process_proof, proof_from_tree
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
    """The receipt's Merkle proof, read from its batch's tree (raises
    :class:`LedgerInconsistencyError` when the tree does not hold the receipt's leaf)."""
    try:
        leaf = bytes.fromhex(receipt.leaf_hash[2:])
        return ["0x" + node.hex() for node in proof_from_tree(batch_tree(batch), leaf)]
    except (LiveProofError, ValueError, TypeError) as exc:
        raise LedgerInconsistencyError(
            f"receipt {receipt.receipt_id} in batch {batch.root}: {exc}"
        ) from None


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


def consistent_proof(receipt: Receipt, batch: Batch, batch_leaves: Sequence[str]) -> list[str]:
    """The receipt's proof, after checking the database against its committed tree (raises
    :class:`LedgerInconsistencyError` naming the first disagreement). ``batch_leaves``: the
    stored leaf hashes of every receipt row that names the batch."""
    what = f"receipt {receipt.receipt_id}"
    try:
        leaf = leaf_of(receipt).leaf_hash()
    except (LiveProofError, ValueError, TypeError) as exc:
        raise LedgerInconsistencyError(
            f"{what}: its fields are not a receipt leaf v1 ({exc})"
        ) from None
    if "0x" + leaf.hex() != receipt.leaf_hash.lower():
        raise LedgerInconsistencyError(
            f"{what}: its fields hash to 0x{leaf.hex()}, not its committed leaf {receipt.leaf_hash}"
        )
    try:
        tree = batch_tree(batch)
    except (ValueError, TypeError, AttributeError) as exc:
        raise LedgerInconsistencyError(f"batch {batch.root}: its stored tree: {exc}") from None
    try:
        proof = proof_from_tree(tree, leaf)
    except LiveProofError as exc:
        raise LedgerInconsistencyError(f"{what} in batch {batch.root}: {exc}") from None
    folded = "0x" + process_proof(leaf, proof).hex()
    if folded != batch.root.lower():
        raise LedgerInconsistencyError(
            f"batch {batch.root}: the stored tree's proof of {what} folds to {folded}"
        )
    stored = sorted((h.lower() for h in batch_leaves), reverse=True)
    count = (len(tree) + 1) // 2
    if stored != ["0x" + node.hex() for node in tree[count - 1 :]] or batch.count != count:
        raise LedgerInconsistencyError(
            f"batch {batch.root}: {len(stored)} receipt rows (count {batch.count}) are not "
            f"the {count} leaves of its committed tree"
        )
    return ["0x" + node.hex() for node in proof]


def proof_bundle(
    receipt: Receipt, batch: Batch, batch_leaves: Sequence[str] | None = None
) -> dict[str, Any]:
    """The self-contained proof of a committed receipt, checkable with any RPC of the chain.
    With ``batch_leaves`` (every row's stored leaf hash) the database is first checked against
    the committed tree (see :func:`consistent_proof`)."""
    proof = (
        receipt_proof(receipt, batch)
        if batch_leaves is None
        else consistent_proof(receipt, batch, batch_leaves)
    )
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
        "proof": proof,
    }
