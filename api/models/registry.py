"""Brands, certifiers, products, claims and attestations: the ProvenanceRegistry's records."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from api.models.common import (
    FORBID_EXTRA,
    NO_NUL,
    Address,
    Gtin,
    Hash32,
    Signature,
    StoredUint64,
    Text,
    Uint64,
    Uri,
    now,
)


class OnChain(SQLModel):
    """Where a record was written on the chain."""

    tx_hash: str = Field(max_length=66)
    block_number: int


class SignedAction(SQLModel):
    """The EIP-712 envelope of a relayed participant action."""

    nonce: int = Field(ge=0, lt=2**256, description="The signer's next nonce on the registry")
    deadline: Uint64 = Field(description="Unix seconds after which the signature is void")
    signature: Signature


# ----------------------------------------------------------------------------- brands


class BrandBase(SQLModel):
    address: Address
    name: Text


class BrandCreate(BrandBase):
    model_config = FORBID_EXTRA


class Brand(OnChain, table=True):
    __tablename__ = "brands"

    address: str = Field(primary_key=True, max_length=42)
    name: str = Field(max_length=512)
    created_at: float = Field(default_factory=now)


class BrandPublic(BrandBase, OnChain):
    pass


# ------------------------------------------------------------------------- certifiers


class CertifierBase(SQLModel):
    address: Address
    name: Text


class CertifierCreate(CertifierBase):
    model_config = FORBID_EXTRA


class Certifier(OnChain, table=True):
    __tablename__ = "certifiers"

    address: str = Field(primary_key=True, max_length=42)
    name: str = Field(max_length=512)
    created_at: float = Field(default_factory=now)


class CertifierPublic(CertifierBase, OnChain):
    pass


# --------------------------------------------------------------------------- products


class ProductBase(SQLModel):
    brand: Address
    gtin: Gtin
    name: Text
    uri: Uri = ""
    metadata_hash: Hash32 = "0x" + "00" * 32


class ProductCreate(ProductBase, SignedAction):
    """A brand's signed ``RegisterProduct``, relayed by the API."""

    model_config = FORBID_EXTRA


class Product(OnChain, table=True):
    __tablename__ = "products"

    product_id: str = Field(primary_key=True, max_length=66)
    gtin: str = Field(max_length=14, unique=True, index=True)
    brand: str = Field(max_length=42, index=True, foreign_key="brands.address")
    name: str = Field(max_length=512)
    uri: str = Field(max_length=2048)
    metadata_hash: str = Field(max_length=66)
    created_at: float = Field(default_factory=now)


class ProductPublic(OnChain):
    product_id: str
    gtin: str
    brand: str
    name: str
    uri: str
    metadata_hash: str


# ----------------------------------------------------------------------------- claims


ClaimType = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]


class ClaimBase(SQLModel):
    issuer: Address
    product_id: Hash32
    claim_type: ClaimType = Field(description="e.g. origin, batch, certification")
    content_hash: Hash32
    uri: Uri = ""
    valid_until: StoredUint64


class ClaimCreate(ClaimBase, SignedAction):
    """A brand's signed ``ProductClaim``; ``claim_type`` is hashed as keccak256(utf8)."""

    model_config = FORBID_EXTRA


class Claim(OnChain, table=True):
    __tablename__ = "claims"

    claim_id: str = Field(primary_key=True, max_length=66)
    product_id: str = Field(max_length=66, index=True, foreign_key="products.product_id")
    issuer: str = Field(max_length=42)
    claim_type: str = Field(max_length=64)
    content_hash: str = Field(max_length=66)
    uri: str = Field(max_length=2048)
    # A uint64 on chain: a 64-bit column (PostgreSQL's INTEGER ends in January 2038).
    valid_until: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_tx: str | None = Field(default=None, max_length=66)
    created_at: float = Field(default_factory=now)


class ClaimPublic(OnChain):
    claim_id: str
    product_id: str
    issuer: str
    claim_type: str
    content_hash: str
    uri: str
    valid_until: int
    revoked_tx: str | None


class RevocationCreate(SignedAction):
    """A signed revocation (``RevokeClaim``, ``RevokeAttestation``, ``RevokeEndorsement``)."""

    model_config = FORBID_EXTRA

    signer: Address


# ----------------------------------------------------------------------- attestations


class AttestationBase(SQLModel):
    certifier: Address
    claim_id: Hash32
    report_hash: Hash32
    uri: Uri = ""


class AttestationCreate(AttestationBase, SignedAction):
    """A certifier's signed ``Attestation``."""

    model_config = FORBID_EXTRA


class Attestation(OnChain, table=True):
    __tablename__ = "attestations"

    attestation_id: str = Field(primary_key=True, max_length=66)
    claim_id: str = Field(max_length=66, index=True, foreign_key="claims.claim_id")
    certifier: str = Field(max_length=42)
    report_hash: str = Field(max_length=66)
    uri: str = Field(max_length=2048)
    revoked_tx: str | None = Field(default=None, max_length=66)
    created_at: float = Field(default_factory=now)


class AttestationPublic(OnChain):
    attestation_id: str
    claim_id: str
    certifier: str
    report_hash: str
    uri: str
    revoked_tx: str | None
