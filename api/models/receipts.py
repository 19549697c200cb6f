"""Orders become receipts; the outbox feeds the committer; batches record what was committed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import model_validator
from pydantic.config import JsonDict
from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlalchemy import Text as SqlText
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from api.models.common import (
    FORBID_EXTRA,
    Currency,
    Gtin,
    Hash32,
    MinorUnits,
    PlatformId,
    Ref,
    StoredUint64,
)


class ReceiptStatus(StrEnum):
    """Where a receipt is on its way to the chain."""

    PENDING = "pending"
    COMMITTED = "committed"


class Receipt(SQLModel, table=True):
    """One receipt leaf (a sale, i.e. an order, or a refund) and its way to the chain."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("room_id", "order_ref", name="uq_receipts_room_order_ref"),
        Index("ix_receipts_refers_to", "refers_to"),
    )

    id: int | None = Field(default=None, primary_key=True)
    receipt_id: str = Field(max_length=66, unique=True, index=True)
    kind: int
    refers_to: str = Field(max_length=66)
    # Lookups by room use the (room_id, order_ref) unique index.
    room_id: str = Field(max_length=128, foreign_key="rooms.room_id")
    room_hash: str = Field(max_length=66)
    session_id: str = Field(max_length=128, index=True)
    session_hash: str = Field(max_length=66)
    product_id: str = Field(max_length=66, index=True)
    endorsement_id: str = Field(max_length=66)
    quantity: int
    unit_price: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    ordered_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    buyer_commitment: str = Field(max_length=66)
    # Unique by construction (random receiptId); an index would only slow every insert.
    leaf_hash: str = Field(max_length=66)
    #: The platform's own order id (unique per room when given).
    order_ref: str | None = Field(default=None, max_length=128)
    #: Personal data, off-chain only; erased by nulling both.
    buyer_ref: str | None = Field(default=None, max_length=128)
    salt: str | None = Field(default=None, max_length=66)
    status: str = Field(default=ReceiptStatus.PENDING, max_length=16)
    batch_root: str | None = Field(default=None, max_length=66, index=True)
    accepted_at: float
    committed_at: float | None = None
    ingest_key_id: int | None = Field(default=None, foreign_key="api_keys.id")


class Outbox(SQLModel, table=True):
    """Receipts written but not yet sealed into a batch."""

    __tablename__ = "outbox"

    receipt_id: str = Field(primary_key=True, max_length=66, foreign_key="receipts.receipt_id")
    immediate: bool = False
    enqueued_at: float = Field(index=True)


class BatchStatus(StrEnum):
    """A sealed batch is fixed in the database and may or may not be on chain yet."""

    SEALED = "sealed"
    COMMITTED = "committed"


class Batch(SQLModel, table=True):
    """A set of receipts committed under one Merkle root (a single receipt: root = leaf)."""

    __tablename__ = "batches"

    root: str = Field(primary_key=True, max_length=66)
    count: int
    single: bool = False
    status: str = Field(default=BatchStatus.SEALED, max_length=16, index=True)
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = None
    sealed_at: float
    committed_at: float | None = None
    chain_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    ledger: str | None = Field(default=None, max_length=42)
    #: Every node of the batch's Merkle tree (hex, array layout): each receipt's proof is read
    #: from it, so committing a batch writes one row, not one proof per receipt.
    tree: str = Field(sa_column=Column(SqlText, nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """The first response to an idempotent request, replayed for every retry."""

    __tablename__ = "idempotency_keys"

    key_id: int = Field(primary_key=True)
    idempotency_key: str = Field(primary_key=True, max_length=255)
    request_sha256: str = Field(max_length=64)
    status_code: int
    response: str = Field(sa_column=Column(SqlText, nullable=False))
    created_at: float


class LeaderLease(SQLModel, table=True):
    """Who runs the committer (used where advisory locks are not available)."""

    __tablename__ = "leader_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: float


# ----------------------------------------------------------------------------- API shapes


#: Exactly one of ``gtin`` and ``product_id``, as the schema says it (see ``_one_product``).
_ONE_PRODUCT_SCHEMA: JsonDict = {
    "oneOf": [
        {
            "required": ["gtin"],
            "properties": {"gtin": {"type": "string"}, "product_id": {"type": "null"}},
        },
        {
            "required": ["product_id"],
            "properties": {"product_id": {"type": "string"}, "gtin": {"type": "null"}},
        },
    ]
}


class OrderCreate(SQLModel):
    """One order placed in a live room."""

    model_config = SQLModelConfig(**FORBID_EXTRA, json_schema_extra=_ONE_PRODUCT_SCHEMA)

    room_id: PlatformId
    session_id: PlatformId
    gtin: Gtin | None = None
    product_id: Hash32 | None = None
    endorsement_id: Hash32 | None = Field(default=None, description="Endorsement it ran under")
    quantity: int = Field(ge=1, lt=2**32, schema_extra={"examples": [2]})
    unit_price: MinorUnits
    currency: Currency
    ordered_at: StoredUint64 | None = Field(default=None, description="Unix seconds; default: now")
    buyer_ref: Ref | None = Field(
        default=None, description="The platform's buyer id (never on chain)"
    )
    order_ref: Ref | None = Field(
        default=None, description="The platform's order id, unique per room"
    )
    immediate: bool = Field(default=False, description="Record this receipt alone, at once")

    @model_validator(mode="after")
    def _one_product(self) -> OrderCreate:
        if (self.gtin is None) == (self.product_id is None):
            raise ValueError("give exactly one of gtin and product_id")
        return self


class BulkOrderCreate(SQLModel):
    """Up to ``LIVEPROOF_MAX_BULK_ORDERS`` (10,000) orders, accepted or refused together."""

    model_config = FORBID_EXTRA

    orders: list[OrderCreate] = Field(min_length=1)


class RefundCreate(SQLModel):
    """A refund of (part of) a sale, identified by the sale's receipt code."""

    model_config = FORBID_EXTRA

    receipt_code: str = Field(min_length=1, max_length=80)
    quantity: int = Field(ge=1, lt=2**32)
    refunded_at: StoredUint64 | None = None
    order_ref: Ref | None = None


class ReceiptAccepted(SQLModel):
    """What the platform hands the buyer at once: the code, and the salt only they keep."""

    receipt_code: str
    receipt_id: str
    kind: str
    status: str
    order_ref: str | None
    leaf_hash: str
    salt: str | None
    buyer_commitment: str
    receipt_url: str = Field(description="The receipt as JSON (GET, public)")
    page_url: str = Field(description="The shopper's receipt page, with Verify and the QR code")
    accepted_at: float


class BulkAccepted(SQLModel):
    """The receipts of a bulk order request, in request order."""

    count: int
    receipts: list[ReceiptAccepted]


class ReceiptPublic(SQLModel):
    """A receipt as anyone may read it (no personal data)."""

    receipt_code: str
    receipt_id: str
    kind: str
    status: str
    leaf: dict[str, Any]
    leaf_hash: str
    batch_root: str | None
    tx_hash: str | None
    block_number: int | None
    proof: list[str] | None
    accepted_at: float
    committed_at: float | None


class BatchPublic(SQLModel):
    """A committed (or sealed) batch."""

    root: str
    count: int
    single: bool
    status: str
    tx_hash: str | None
    block_number: int | None
    sealed_at: float
    committed_at: float | None
    chain_id: int | None
    ledger: str | None


class BatchManifest(BatchPublic):
    """Every leaf of a batch, in tree order, so anyone can rebuild the root."""

    leaf_types: list[str]
    leaves: list[dict[str, Any]]
