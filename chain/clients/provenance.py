"""Typed client for ProvenanceRegistry: brands, products, claims and attestations."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from chain.actions import AttestationInput, ClaimInput, ProductInput
from chain.clients.base import Sent
from chain.clients.signed import SignedActionsClient

_ZERO = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class ClaimState:
    """A claim's issuer, end of validity and revocation state."""

    issuer: str
    valid_until: int
    revoked: bool

    @property
    def exists(self) -> bool:
        """True when the claim was ever added."""
        return self.issuer != _ZERO


@dataclass(frozen=True)
class AttestationState:
    """An attestation's certifier and revocation state."""

    certifier: str
    revoked: bool

    @property
    def exists(self) -> bool:
        """True when the attestation was ever made."""
        return self.certifier != _ZERO


class ProvenanceRegistryClient(SignedActionsClient):
    """Client for ``ProvenanceRegistry``."""

    contract_name = "ProvenanceRegistry"

    def register_brand(self, brand: str, name: str) -> Sent[None]:
        """Register ``brand`` (admin only)."""
        receipt = self._send("registerBrand", Web3.to_checksum_address(brand), name)
        return self._sent(receipt, None)

    def register_certifier(self, certifier: str, name: str) -> Sent[None]:
        """Register ``certifier`` (admin only)."""
        receipt = self._send("registerCertifier", Web3.to_checksum_address(certifier), name)
        return self._sent(receipt, None)

    def register_product(self, product: ProductInput) -> Sent[bytes]:
        """Register a product as the sending brand; the value is the product id."""
        receipt = self._send("registerProduct", product.as_tuple())
        return self._sent(
            receipt, bytes(self._event_arg(receipt, "ProductRegistered", "productId"))
        )

    def register_product_by_sig(
        self, brand: str, product: ProductInput, nonce: int, deadline: int, signature: bytes
    ) -> Sent[bytes]:
        """Relay ``brand``'s signed ``RegisterProduct``."""
        receipt = self._send(
            "registerProductBySig",
            Web3.to_checksum_address(brand),
            product.as_tuple(),
            nonce,
            deadline,
            signature,
        )
        return self._sent(
            receipt, bytes(self._event_arg(receipt, "ProductRegistered", "productId"))
        )

    def add_claim(self, claim: ClaimInput) -> Sent[bytes]:
        """Add a claim as the sending brand; the value is the claim id."""
        receipt = self._send("addClaim", claim.as_tuple())
        return self._sent(receipt, bytes(self._event_arg(receipt, "ClaimAdded", "claimId")))

    def add_claim_by_sig(
        self, issuer: str, claim: ClaimInput, nonce: int, deadline: int, signature: bytes
    ) -> Sent[bytes]:
        """Relay ``issuer``'s signed ``ProductClaim``."""
        receipt = self._send(
            "addClaimBySig",
            Web3.to_checksum_address(issuer),
            claim.as_tuple(),
            nonce,
            deadline,
            signature,
        )
        return self._sent(receipt, bytes(self._event_arg(receipt, "ClaimAdded", "claimId")))

    def revoke_claim(self, claim_id: bytes) -> Sent[bytes]:
        """Revoke a claim the sender issued."""
        return self._sent(self._send("revokeClaim", claim_id), claim_id)

    def revoke_claim_by_sig(
        self, issuer: str, claim_id: bytes, nonce: int, deadline: int, signature: bytes
    ) -> Sent[bytes]:
        """Relay ``issuer``'s signed ``RevokeClaim``."""
        receipt = self._send(
            "revokeClaimBySig",
            Web3.to_checksum_address(issuer),
            claim_id,
            nonce,
            deadline,
            signature,
        )
        return self._sent(receipt, claim_id)

    def attest(self, attestation: AttestationInput) -> Sent[bytes]:
        """Attest a claim as the sending certifier; the value is the attestation id."""
        receipt = self._send("attest", attestation.as_tuple())
        return self._sent(
            receipt, bytes(self._event_arg(receipt, "ClaimAttested", "attestationId"))
        )

    def attest_by_sig(
        self,
        certifier: str,
        attestation: AttestationInput,
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> Sent[bytes]:
        """Relay ``certifier``'s signed ``Attestation``."""
        receipt = self._send(
            "attestBySig",
            Web3.to_checksum_address(certifier),
            attestation.as_tuple(),
            nonce,
            deadline,
            signature,
        )
        return self._sent(
            receipt, bytes(self._event_arg(receipt, "ClaimAttested", "attestationId"))
        )

    def revoke_attestation(self, attestation_id: bytes) -> Sent[bytes]:
        """Revoke an attestation the sender made."""
        return self._sent(self._send("revokeAttestation", attestation_id), attestation_id)

    def revoke_attestation_by_sig(
        self, certifier: str, attestation_id: bytes, nonce: int, deadline: int, signature: bytes
    ) -> Sent[bytes]:
        """Relay ``certifier``'s signed ``RevokeAttestation``."""
        receipt = self._send(
            "revokeAttestationBySig",
            Web3.to_checksum_address(certifier),
            attestation_id,
            nonce,
            deadline,
            signature,
        )
        return self._sent(receipt, attestation_id)

    def product_id_of(self, gtin: int) -> bytes:
        """The product id of ``gtin`` as the contract computes it."""
        return bytes(self._call("productIdOf", gtin))

    def brand_of(self, product_id: bytes) -> str | None:
        """The brand that registered ``product_id``, or None."""
        brand = str(self._call("brandOf", product_id))
        return None if brand == _ZERO else brand

    def claim(self, claim_id: bytes) -> ClaimState:
        """A claim's current state."""
        issuer, valid_until, revoked = self._call("claim", claim_id)
        return ClaimState(str(issuer), int(valid_until), bool(revoked))

    def attestation(self, attestation_id: bytes) -> AttestationState:
        """An attestation's current state."""
        certifier, revoked = self._call("attestation", attestation_id)
        return AttestationState(str(certifier), bool(revoked))

    def is_brand(self, account: str) -> bool:
        """True when ``account`` is a registered brand."""
        return bool(self._call("isBrand", Web3.to_checksum_address(account)))

    def is_certifier(self, account: str) -> bool:
        """True when ``account`` is a registered certifier."""
        return bool(self._call("isCertifier", Web3.to_checksum_address(account)))
