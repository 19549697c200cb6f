"""Named Python exceptions for every custom error the LiveProof contracts revert with.

Generated from the artifacts' ABIs; ``tests/chain/test_contract_errors.py`` fails when a
contract error has no class here. Decode a revert with :func:`chain.revert.decode_revert`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chain.errors import LiveProofError


class ContractError(LiveProofError):
    """A contract call reverted; ``error_args`` holds the custom error's decoded arguments."""

    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *values: Any) -> None:
        self.error_args: dict[str, Any] = dict(zip(self.fields, values, strict=True))
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.error_args.items())
        super().__init__(f"{type(self).__name__}({shown})")


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class UnknownContractError(ContractError):
    """A revert whose selector no LiveProof contract declares (raw data in ``data``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        LiveProofError.__init__(self, f"unknown revert 0x{data.hex()}")
        self.error_args = {}


class AccessControlBadConfirmation(ContractError):
    """renounceRole was called for another account."""

    fields = ()


class AccessControlUnauthorizedAccount(ContractError):
    """The caller lacks the role the function requires."""

    fields = ("account", "neededRole")


class AnchorAlreadyRegistered(ContractError):
    """`account` is already registered."""

    fields = ("account",)


class AttestationAlreadyExists(ContractError):
    """This certifier already attested this claim."""

    fields = ("attestationId",)


class AttestationAlreadyRevoked(ContractError):
    """The attestation was revoked."""

    fields = ("attestationId",)


class BatchAlreadyCommitted(ContractError):
    """This root was already committed."""

    fields = ("root",)


class ClaimAlreadyExists(ContractError):
    """The same claim (product, type, content) was already added."""

    fields = ("claimId",)


class ClaimAlreadyRevoked(ContractError):
    """The claim was revoked."""

    fields = ("claimId",)


class ClaimExpired(ContractError):
    """The claim's validity ended at `validUntil`."""

    fields = ("claimId", "validUntil")


class EmptyBatch(ContractError):
    """A zero root or leaf, or an empty batch."""

    fields = ()


class EndorsementAlreadyRevoked(ContractError):
    """The endorsement was already revoked."""

    fields = ("endorsementId",)


class EndorsementExpired(ContractError):
    """The endorsement would already be expired when recorded."""

    fields = ("validUntil",)


class HandleTaken(ContractError):
    """Another anchor holds this handle."""

    fields = ("handleHash",)


class InvalidAccountNonce(ContractError):
    """The signature's nonce is not the account's next nonce (replayed or cancelled)."""

    fields = ("account", "currentNonce")


class InvalidCommission(ContractError):
    """Commission above 100%."""

    fields = ("commissionBps",)


class InvalidGtin(ContractError):
    """`gtin` is not 14 digits or more with a valid GS1 check digit."""

    fields = ("gtin",)


class InvalidRecorder(ContractError):
    """The recorder cannot be the zero address."""

    fields = ("account",)


class InvalidShortString(ContractError):
    """An EIP-712 domain string is malformed."""

    fields = ()


class InvalidSignature(ContractError):
    """The signature is not a valid signature of `signer` over the typed data."""

    fields = ("signer",)


class InvalidValidityWindow(ContractError):
    """The endorsement's validity window is empty."""

    fields = ("validFrom", "validUntil")


class NotAnchor(ContractError):
    """`account` is not a registered anchor."""

    fields = ("account",)


class NotAttestationIssuer(ContractError):
    """`account` did not issue this attestation."""

    fields = ("attestationId", "account")


class NotBrand(ContractError):
    """`account` is not a registered brand."""

    fields = ("account",)


class NotCertifier(ContractError):
    """`account` is not a registered certifier."""

    fields = ("account",)


class NotClaimIssuer(ContractError):
    """`account` did not issue this claim."""

    fields = ("claimId", "account")


class NotEndorser(ContractError):
    """`account` is not the anchor who made this endorsement."""

    fields = ("endorsementId", "account")


class NotProductBrand(ContractError):
    """`account` is not the brand that owns the product."""

    fields = ("productId", "account")


class NotRecorder(ContractError):
    """`account` is not the recorder."""

    fields = ("account",)


class NotSessionManager(ContractError):
    """`account` may not open or close this session."""

    fields = ("sessionId", "account")


class ProductAlreadyRegistered(ContractError):
    """The product with this GTIN is already registered."""

    fields = ("productId",)


class ReceiptAlreadyRecorded(ContractError):
    """This receipt leaf was already recorded."""

    fields = ("leaf",)


class SessionAlreadyClosed(ContractError):
    """The session was already closed."""

    fields = ("sessionId",)


class SessionAlreadyExists(ContractError):
    """A session with this id exists."""

    fields = ("sessionId",)


class SignatureExpired(ContractError):
    """The signature's deadline has passed."""

    fields = ("deadline",)


class StringTooLong(ContractError):
    """An EIP-712 domain string is too long."""

    fields = ("str",)


class UnknownAttestation(ContractError):
    """No attestation has this id."""

    fields = ("attestationId",)


class UnknownClaim(ContractError):
    """No claim has this id."""

    fields = ("claimId",)


class UnknownEndorsement(ContractError):
    """No endorsement has this id."""

    fields = ("endorsementId",)


class UnknownProduct(ContractError):
    """No product has this id."""

    fields = ("productId",)


class UnknownSession(ContractError):
    """No session has this id."""

    fields = ("sessionId",)


#: Every named contract error, by Solidity error name.
ERRORS_BY_NAME: dict[str, type[ContractError]] = {
    "AccessControlBadConfirmation": AccessControlBadConfirmation,
    "AccessControlUnauthorizedAccount": AccessControlUnauthorizedAccount,
    "AnchorAlreadyRegistered": AnchorAlreadyRegistered,
    "AttestationAlreadyExists": AttestationAlreadyExists,
    "AttestationAlreadyRevoked": AttestationAlreadyRevoked,
    "BatchAlreadyCommitted": BatchAlreadyCommitted,
    "ClaimAlreadyExists": ClaimAlreadyExists,
    "ClaimAlreadyRevoked": ClaimAlreadyRevoked,
    "ClaimExpired": ClaimExpired,
    "EmptyBatch": EmptyBatch,
    "EndorsementAlreadyRevoked": EndorsementAlreadyRevoked,
    "EndorsementExpired": EndorsementExpired,
    "HandleTaken": HandleTaken,
    "InvalidAccountNonce": InvalidAccountNonce,
    "InvalidCommission": InvalidCommission,
    "InvalidGtin": InvalidGtin,
    "InvalidRecorder": InvalidRecorder,
    "InvalidShortString": InvalidShortString,
    "InvalidSignature": InvalidSignature,
    "InvalidValidityWindow": InvalidValidityWindow,
    "NotAnchor": NotAnchor,
    "NotAttestationIssuer": NotAttestationIssuer,
    "NotBrand": NotBrand,
    "NotCertifier": NotCertifier,
    "NotClaimIssuer": NotClaimIssuer,
    "NotEndorser": NotEndorser,
    "NotProductBrand": NotProductBrand,
    "NotRecorder": NotRecorder,
    "NotSessionManager": NotSessionManager,
    "ProductAlreadyRegistered": ProductAlreadyRegistered,
    "ReceiptAlreadyRecorded": ReceiptAlreadyRecorded,
    "SessionAlreadyClosed": SessionAlreadyClosed,
    "SessionAlreadyExists": SessionAlreadyExists,
    "SignatureExpired": SignatureExpired,
    "StringTooLong": StringTooLong,
    "UnknownAttestation": UnknownAttestation,
    "UnknownClaim": UnknownClaim,
    "UnknownEndorsement": UnknownEndorsement,
    "UnknownProduct": UnknownProduct,
    "UnknownSession": UnknownSession,
}
