"""Receipt leaf v1: the sale/refund record committed to SaleLedger as a Merkle leaf.

A receipt is one leaf of an OpenZeppelin StandardMerkleTree with the ABI types in
:data:`LEAF_TYPES`, so ``leaf = keccak256(keccak256(abi.encode(values)))``. No personal data
goes in: the buyer appears only as ``keccak256(abi.encode(salt, buyerRef))``, and deleting the
salt off-chain makes the receipt unlinkable to the buyer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, Final

from chain.errors import LeafEncodingError
from chain.hashing import keccak256

#: Field names and ABI types of receipt leaf v1, in encoding order.
LEAF_FIELDS: Final = (
    ("receiptId", "bytes32"),
    ("kind", "uint8"),
    ("refersTo", "bytes32"),
    ("roomId", "bytes32"),
    ("sessionId", "bytes32"),
    ("productId", "bytes32"),
    ("endorsementId", "bytes32"),
    ("quantity", "uint32"),
    ("unitPrice", "uint256"),
    ("currency", "bytes3"),
    ("orderedAt", "uint64"),
    ("buyerCommitment", "bytes32"),
)
#: The leaf encoding handed to :class:`chain.merkle.StandardMerkleTree`.
LEAF_TYPES: Final = tuple(kind for _, kind in LEAF_FIELDS)

_ZERO32: Final = bytes(32)


class ReceiptKind(IntEnum):
    """What a receipt records."""

    SALE = 0
    REFUND = 1


def buyer_commitment(salt: bytes, buyer_ref: bytes) -> bytes:
    """``keccak256(abi.encode(bytes32 salt, bytes32 buyerRef))``; only the buyer gets the salt."""
    if len(salt) != 32 or len(buyer_ref) != 32:
        raise LeafEncodingError("salt and buyer reference must be 32 bytes each")
    return keccak256(salt + buyer_ref)


def new_salt() -> bytes:
    """32 random bytes for a buyer commitment."""
    return os.urandom(32)


@dataclass(frozen=True, slots=True)
class ReceiptLeaf:
    """One receipt's values, in leaf v1 order."""

    receipt_id: bytes
    kind: ReceiptKind
    refers_to: bytes
    room_id: bytes
    session_id: bytes
    product_id: bytes
    endorsement_id: bytes
    quantity: int
    unit_price: int
    currency: bytes
    ordered_at: int
    buyer_commitment: bytes

    def __post_init__(self) -> None:
        for f, (name, _) in zip(fields(self), LEAF_FIELDS, strict=True):
            value = getattr(self, f.name)
            if name == "currency":
                if len(value) != 3:
                    raise LeafEncodingError("currency must be a 3-byte ISO 4217 code")
            elif isinstance(value, bytes) and len(value) != 32:
                raise LeafEncodingError(f"{name} must be 32 bytes, got {len(value)}")
        if self.kind == ReceiptKind.SALE and self.refers_to != _ZERO32:
            raise LeafEncodingError("a sale refers to no other receipt (refersTo must be zero)")
        if self.kind == ReceiptKind.REFUND and self.refers_to == _ZERO32:
            raise LeafEncodingError("a refund must refer to the sale's receiptId")
        if not 0 < self.quantity < 2**32:
            raise LeafEncodingError(f"quantity must be 1..2^32-1, got {self.quantity}")
        if not 0 <= self.unit_price < 2**256:
            raise LeafEncodingError("unit price must fit uint256")
        if not 0 <= self.ordered_at < 2**64:
            raise LeafEncodingError("orderedAt must fit uint64")

    def values(self) -> tuple[Any, ...]:
        """The leaf's values in :data:`LEAF_TYPES` order (``kind`` as a plain int)."""
        return (
            self.receipt_id,
            int(self.kind),
            self.refers_to,
            self.room_id,
            self.session_id,
            self.product_id,
            self.endorsement_id,
            self.quantity,
            self.unit_price,
            self.currency,
            self.ordered_at,
            self.buyer_commitment,
        )

    def encode(self) -> bytes:
        """``abi.encode`` of the values: every type is static, so twelve 32-byte words."""
        return b"".join(
            (
                self.receipt_id,
                int(self.kind).to_bytes(32, "big"),
                self.refers_to,
                self.room_id,
                self.session_id,
                self.product_id,
                self.endorsement_id,
                self.quantity.to_bytes(32, "big"),
                self.unit_price.to_bytes(32, "big"),
                self.currency.ljust(32, b"\0"),
                self.ordered_at.to_bytes(32, "big"),
                self.buyer_commitment,
            )
        )

    def leaf_hash(self) -> bytes:
        """The StandardMerkleTree leaf: ``keccak256(keccak256(abi.encode(values)))``."""
        return keccak256(keccak256(self.encode()))

    def to_json(self) -> dict[str, Any]:
        """The leaf as JSON with the Solidity field names (hex for bytes, ints as strings
        where they may exceed 2^53)."""
        out: dict[str, Any] = {}
        for (name, kind), value in zip(LEAF_FIELDS, self.values(), strict=True):
            if isinstance(value, bytes):
                out[name] = "0x" + value.hex()
            elif kind in ("uint256", "uint64"):
                out[name] = str(value)
            else:
                out[name] = int(value)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReceiptLeaf:
        """Parse :meth:`to_json` output; raises LeafEncodingError on a missing or bad field."""
        expected = {name for name, _ in LEAF_FIELDS}
        if set(data) != expected:
            missing, extra = sorted(expected - set(data)), sorted(set(data) - expected)
            raise LeafEncodingError(f"receipt leaf fields: missing {missing}, unexpected {extra}")
        values: list[Any] = []
        for name, kind in LEAF_FIELDS:
            raw = data[name]
            try:
                if kind.startswith("bytes"):
                    if not isinstance(raw, str) or not raw.startswith("0x"):
                        raise ValueError("expected 0x-prefixed hex")
                    values.append(bytes.fromhex(raw[2:]))
                else:
                    if isinstance(raw, bool) or not isinstance(raw, int | str):
                        raise ValueError("expected an integer")
                    values.append(int(raw))
            except ValueError as exc:
                raise LeafEncodingError(f"receipt leaf field {name}: {exc}") from None
        values[1] = ReceiptKind(values[1]) if values[1] in (0, 1) else values[1]
        if not isinstance(values[1], ReceiptKind):
            raise LeafEncodingError(f"receipt leaf field kind: 0 or 1, got {values[1]}")
        return cls(*values)
