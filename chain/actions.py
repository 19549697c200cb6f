"""The inputs of every LiveProof contract action, mirroring the Solidity structs."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

from chain.errors import ConfigurationError
from chain.hashing import keccak256


def _bytes32(value: bytes | str, what: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ConfigurationError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def label_hash(text: str) -> bytes:
    """keccak256 of a UTF-8 label, e.g. a claim type ``"origin"`` or a platform room id."""
    return keccak256(text.encode("utf-8"))


def currency_code(code: str) -> bytes:
    """An ISO 4217 currency code (``"CNY"``) as the contracts' ``bytes3``."""
    if len(code) != 3 or not code.isascii() or not code.isalpha() or not code.isupper():
        raise ConfigurationError(f"currency must be a 3-letter upper-case ISO 4217 code: {code!r}")
    return code.encode("ascii")


def gtin_is_valid(gtin: int | str) -> bool:
    """True when ``gtin`` has at most 14 digits and a valid GS1 mod-10 check digit."""
    text = str(gtin)
    if not text.isdigit() or not 0 < int(text) <= 99_999_999_999_999:
        return False
    digits = [int(d) for d in text.zfill(14)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    return (10 - total % 10) % 10 == digits[-1]


def product_id_of(gtin: int) -> bytes:
    """The ProvenanceRegistry's product id for ``gtin``: keccak256(abi.encode(uint64 gtin))."""
    return keccak256(gtin.to_bytes(32, "big"))


@dataclass(frozen=True)
class ProductInput:
    """A product as a brand registers it (``IProvenanceRegistry.ProductInput``)."""

    gtin: int
    name: str
    uri: str
    metadata_hash: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple for the contract call."""
        return astuple(self)


@dataclass(frozen=True)
class ClaimInput:
    """A brand's claim about a product (``IProvenanceRegistry.ClaimInput``)."""

    product_id: bytes
    claim_type: bytes
    content_hash: bytes
    uri: str
    valid_until: int

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple for the contract call."""
        return astuple(self)

    def claim_id(self) -> bytes:
        """The id the registry gives this claim: keccak256(abi.encode(product, type, content))."""
        return keccak256(self.product_id + self.claim_type + self.content_hash)


@dataclass(frozen=True)
class AttestationInput:
    """A certifier's attestation of a claim (``IProvenanceRegistry.AttestationInput``)."""

    claim_id: bytes
    report_hash: bytes
    uri: str

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple for the contract call."""
        return astuple(self)

    def attestation_id(self, certifier: str) -> bytes:
        """The id the registry gives this attestation by ``certifier``."""
        return keccak256(self.claim_id + bytes(12) + bytes.fromhex(certifier.removeprefix("0x")))


@dataclass(frozen=True)
class EndorsementTerms:
    """What an anchor endorses (``IAnchorRegistry.EndorsementTerms``)."""

    product_id: bytes
    claims_digest: bytes
    room_id: bytes
    sponsored: bool
    commission_bps: int
    unit_price: int
    currency: bytes
    valid_from: int
    valid_until: int

    def __post_init__(self) -> None:
        for name in ("product_id", "claims_digest", "room_id"):
            _bytes32(getattr(self, name), name)
        if len(self.currency) != 3:
            raise ConfigurationError("currency must be 3 bytes (ISO 4217)")

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple for the contract call."""
        return astuple(self)

    def message(self) -> dict[str, Any]:
        """The fields as EIP-712 message entries (camelCase, as in the Solidity struct)."""
        return {
            "productId": self.product_id,
            "claimsDigest": self.claims_digest,
            "roomId": self.room_id,
            "sponsored": self.sponsored,
            "commissionBps": self.commission_bps,
            "unitPrice": self.unit_price,
            "currency": self.currency,
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
        }


def claims_digest(claim_ids: list[bytes]) -> bytes:
    """Digest of the claim ids an anchor reviewed: keccak256 of the sorted ids concatenated."""
    return keccak256(b"".join(sorted(claim_ids)))
