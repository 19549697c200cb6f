"""Anchors and their endorsements: the AnchorRegistry's records."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from api.models.common import (
    FORBID_EXTRA,
    Address,
    Currency,
    Handle,
    Hash32,
    MinorUnits,
    PlatformId,
    StoredUint64,
    now,
)
from api.models.registry import OnChain, SignedAction


class AnchorBase(SQLModel):
    address: Address
    handle: Handle


class AnchorCreate(AnchorBase):
    model_config = FORBID_EXTRA


class Anchor(OnChain, table=True):
    __tablename__ = "anchors"

    address: str = Field(primary_key=True, max_length=42)
    handle: str = Field(max_length=64, unique=True, index=True)
    handle_hash: str = Field(max_length=66)
    removed_tx: str | None = Field(default=None, max_length=66)
    created_at: float = Field(default_factory=now)


class AnchorPublic(OnChain):
    address: str
    handle: str
    handle_hash: str
    removed_tx: str | None


class EndorsementBase(SQLModel):
    anchor: Address
    product_id: Hash32
    claims_digest: Hash32
    room_id: PlatformId
    sponsored: bool = Field(description="Paid promotion: shown as 广告 / Ad")
    commission_bps: int = Field(ge=0, le=10_000, description="Commission in basis points")
    unit_price: MinorUnits = Field(description="Promised unit price, minor currency units")
    currency: Currency
    valid_from: StoredUint64
    valid_until: StoredUint64


class EndorsementCreate(EndorsementBase, SignedAction):
    """An anchor's signed ``Endorsement`` (the room id is hashed as keccak256(utf8))."""

    model_config = FORBID_EXTRA


class Endorsement(OnChain, table=True):
    __tablename__ = "endorsements"

    endorsement_id: str = Field(primary_key=True, max_length=66)
    anchor: str = Field(max_length=42, index=True, foreign_key="anchors.address")
    product_id: str = Field(max_length=66, index=True, foreign_key="products.product_id")
    claims_digest: str = Field(max_length=66)
    room_id: str = Field(max_length=128)
    room_hash: str = Field(max_length=66)
    sponsored: bool
    commission_bps: int
    # Wide values on chain (uint256, uint64): 64-bit columns, as PostgreSQL's INTEGER is 32.
    unit_price: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    valid_from: int = Field(sa_column=Column(BigInteger, nullable=False))
    valid_until: int = Field(sa_column=Column(BigInteger, nullable=False))
    nonce: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_tx: str | None = Field(default=None, max_length=66)
    created_at: float = Field(default_factory=now)


class EndorsementPublic(OnChain):
    endorsement_id: str
    anchor: str
    product_id: str
    claims_digest: str
    room_id: str
    room_hash: str
    sponsored: bool
    commission_bps: int
    unit_price: int
    currency: str
    valid_from: int
    valid_until: int
    nonce: int
    revoked_tx: str | None
