"""EIP-712 typed data for every signed LiveProof action, signed with eth-account.

The type strings here are the ones whose hashes the contracts hold as ``*_TYPEHASH``
constants; ``tests/chain/test_eip712.py`` checks each against the contract's digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak

from chain.actions import AttestationInput, ClaimInput, EndorsementTerms, ProductInput

#: EIP-712 domain names of the two registries (version "1").
DOMAIN_NAMES: Final = {
    "ProvenanceRegistry": "LiveProof ProvenanceRegistry",
    "AnchorRegistry": "LiveProof AnchorRegistry",
}
DOMAIN_VERSION: Final = "1"

_Field = tuple[str, str]

#: Every signed action's fields, in the order the contracts hash them.
TYPES: Final[dict[str, list[_Field]]] = {
    "RegisterProduct": [
        ("brand", "address"),
        ("gtin", "uint64"),
        ("name", "string"),
        ("uri", "string"),
        ("metadataHash", "bytes32"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "ProductClaim": [
        ("issuer", "address"),
        ("productId", "bytes32"),
        ("claimType", "bytes32"),
        ("contentHash", "bytes32"),
        ("uri", "string"),
        ("validUntil", "uint64"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "RevokeClaim": [
        ("issuer", "address"),
        ("claimId", "bytes32"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "Attestation": [
        ("certifier", "address"),
        ("claimId", "bytes32"),
        ("reportHash", "bytes32"),
        ("uri", "string"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "RevokeAttestation": [
        ("certifier", "address"),
        ("attestationId", "bytes32"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "Endorsement": [
        ("anchor", "address"),
        ("productId", "bytes32"),
        ("claimsDigest", "bytes32"),
        ("roomId", "bytes32"),
        ("sponsored", "bool"),
        ("commissionBps", "uint16"),
        ("unitPrice", "uint256"),
        ("currency", "bytes3"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "RevokeEndorsement": [
        ("anchor", "address"),
        ("endorsementId", "bytes32"),
        ("nonce", "uint256"),
        ("deadline", "uint64"),
    ],
    "CancelNonce": [("account", "address"), ("nonce", "uint256"), ("deadline", "uint64")],
}

#: Which contract verifies each action.
VERIFIER: Final = {
    "RegisterProduct": "ProvenanceRegistry",
    "ProductClaim": "ProvenanceRegistry",
    "RevokeClaim": "ProvenanceRegistry",
    "Attestation": "ProvenanceRegistry",
    "RevokeAttestation": "ProvenanceRegistry",
    "Endorsement": "AnchorRegistry",
    "RevokeEndorsement": "AnchorRegistry",
}


def type_string(primary_type: str) -> str:
    """The EIP-712 ``encodeType`` string, e.g. ``RevokeClaim(address issuer,...)``."""
    fields = ",".join(f"{kind} {name}" for name, kind in TYPES[primary_type])
    return f"{primary_type}({fields})"


def type_hash(primary_type: str) -> bytes:
    """keccak256 of :func:`type_string`: the contract's ``*_TYPEHASH`` constant."""
    return keccak(type_string(primary_type).encode())


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain: one registry contract on one chain."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    @classmethod
    def of(cls, contract: str, chain_id: int, address: str) -> Domain:
        """The domain of ``contract`` ("ProvenanceRegistry" or "AnchorRegistry") at ``address``."""
        return cls(DOMAIN_NAMES[contract], DOMAIN_VERSION, chain_id, address)

    def as_dict(self) -> dict[str, Any]:
        """The domain as EIP-712 JSON (``eth_signTypedData_v4``)."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def typed_data(primary_type: str, domain: Domain, message: dict[str, Any]) -> dict[str, Any]:
    """Full EIP-712 typed data for ``primary_type``, as ``eth_signTypedData_v4`` takes it."""
    expected = [name for name, _ in TYPES[primary_type]]
    if sorted(message) != sorted(expected):
        missing = set(expected) - set(message)
        extra = set(message) - set(expected)
        raise ValueError(f"{primary_type} message fields: missing {missing}, unexpected {extra}")
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            primary_type: [{"name": n, "type": t} for n, t in TYPES[primary_type]],
        },
        "primaryType": primary_type,
        "domain": domain.as_dict(),
        "message": message,
    }


def digest(data: dict[str, Any]) -> bytes:
    """The 32-byte EIP-712 digest that is signed (``\\x19\\x01 || domain || structHash``)."""
    signable = encode_typed_data(full_message=data)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign(account: LocalAccount, data: dict[str, Any]) -> bytes:
    """Sign typed data with a local key; returns the 65-byte ``r || s || v`` signature."""
    signed = Account.sign_message(encode_typed_data(full_message=data), account.key)
    return bytes(signed.signature)


#: Half the secp256k1 order: the contracts (OpenZeppelin ECDSA) refuse any larger ``s``.
SECP256K1_HALF_N: Final = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def recover(data: dict[str, Any], signature: bytes) -> str:
    """The address that signed ``data`` (checksummed); refuses what the contracts refuse:
    a signature that is not 65 bytes or whose ``s`` is in the upper half (malleable)."""
    if len(signature) != 65:
        raise ValueError(f"signature must be 65 bytes, got {len(signature)}")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        raise ValueError("signature has a high s value (malleable); the contracts refuse it")
    return str(Account.recover_message(encode_typed_data(full_message=data), signature=signature))


def register_product(
    domain: Domain, brand: str, product: ProductInput, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``registerProductBySig``."""
    return typed_data(
        "RegisterProduct",
        domain,
        {
            "brand": brand,
            "gtin": product.gtin,
            "name": product.name,
            "uri": product.uri,
            "metadataHash": product.metadata_hash,
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def product_claim(
    domain: Domain, issuer: str, claim: ClaimInput, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``addClaimBySig``."""
    return typed_data(
        "ProductClaim",
        domain,
        {
            "issuer": issuer,
            "productId": claim.product_id,
            "claimType": claim.claim_type,
            "contentHash": claim.content_hash,
            "uri": claim.uri,
            "validUntil": claim.valid_until,
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def revoke_claim(
    domain: Domain, issuer: str, claim_id: bytes, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``revokeClaimBySig``."""
    message = {"issuer": issuer, "claimId": claim_id, "nonce": nonce, "deadline": deadline}
    return typed_data("RevokeClaim", domain, message)


def attestation(
    domain: Domain, certifier: str, attestation_input: AttestationInput, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``attestBySig``."""
    return typed_data(
        "Attestation",
        domain,
        {
            "certifier": certifier,
            "claimId": attestation_input.claim_id,
            "reportHash": attestation_input.report_hash,
            "uri": attestation_input.uri,
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def revoke_attestation(
    domain: Domain, certifier: str, attestation_id: bytes, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``revokeAttestationBySig``."""
    message = {
        "certifier": certifier,
        "attestationId": attestation_id,
        "nonce": nonce,
        "deadline": deadline,
    }
    return typed_data("RevokeAttestation", domain, message)


def endorsement(
    domain: Domain, anchor: str, terms: EndorsementTerms, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``endorseBySig``."""
    message = {"anchor": anchor, **terms.message(), "nonce": nonce, "deadline": deadline}
    return typed_data("Endorsement", domain, message)


def revoke_endorsement(
    domain: Domain, anchor: str, endorsement_id: bytes, nonce: int, deadline: int
) -> dict[str, Any]:
    """Typed data for ``revokeEndorsementBySig``."""
    message = {"anchor": anchor, "endorsementId": endorsement_id, "nonce": nonce}
    return typed_data("RevokeEndorsement", domain, {**message, "deadline": deadline})


def cancel_nonce(domain: Domain, account: str, nonce: int, deadline: int) -> dict[str, Any]:
    """Typed data for ``increaseNonceBySig`` (cancels every signature carrying ``nonce``)."""
    message = {"account": account, "nonce": nonce, "deadline": deadline}
    return typed_data("CancelNonce", domain, message)
