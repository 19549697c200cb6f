"""Attestations: a certifier signs ``Attestation`` / ``RevokeAttestation`` about a claim; the
API relays them to the ProvenanceRegistry. A certifier's key sees other certifiers'
attestations only through the public reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from sqlmodel import col, select

from api.deps import CertifierDep, SessionDep, StateDep, save
from api.models import Attestation, Certifier, Claim
from api.models.common import Hash32, hex32, unhex
from api.models.registry import AttestationCreate, AttestationPublic, RevocationCreate
from api.problems import ProblemError
from api.revocations import ATTESTATION, relay_revocation
from api.routes.claims import claim_not_found
from api.signatures import (
    chain_now,
    domain,
    recorded_event,
    relay_signed,
    require_subject,
    same_address,
)
from chain import eip712
from chain.actions import AttestationInput

router = APIRouter(prefix="/attestations", tags=["attestations"])

_CERTIFIER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
_EXAMPLE = {
    "certifier": _CERTIFIER,
    "claim_id": "0x" + "c1" * 32,
    "report_hash": "0x" + "9e" * 32,
    "uri": "https://lab.example/reports/2026-0117.pdf",
    "nonce": 0,
    "deadline": 1_790_000_000,
    "signature": "0x" + "11" * 65,
}
_REVOCATION = {
    "signer": _CERTIFIER,
    "nonce": 1,
    "deadline": 1_790_000_000,
    "signature": "0x" + "22" * 65,
}

_SIGNED_422 = "deadline passed, nonce not the signer's next, or signature not the signer's"


def attestation_not_found(attestation_id: str) -> ProblemError:
    """The 404 for an unknown attestation (or, to a certifier's key, another's attestation)."""
    return ProblemError(404, "attestation-not-found", "No such attestation", attestation_id)


@router.post(
    "",
    status_code=201,
    response_model=AttestationPublic,
    summary="Attest a claim with the certifier's signed Attestation (written on-chain)",
    description=(
        "The certifier signs EIP-712 `Attestation` (certifier, claimId, reportHash, uri, "
        "nonce, deadline). The API checks the certifier is registered, the claim is live, the "
        "deadline, the nonce and the signature before relaying `attestBySig`. The same "
        "attestation already on chain (an earlier attempt whose answer was lost) is adopted."
    ),
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not a certifier key, or the key acts for another certifier"},
        404: {"description": "No such claim"},
        409: {"description": "This certifier already attested the claim, or it is revoked"},
        422: {"description": f"Certifier not registered, claim expired, {_SIGNED_422}"},
    },
)
def attest(
    body: Annotated[
        AttestationCreate,
        Body(openapi_examples={"attestation": {"summary": "Signed", "value": _EXAMPLE}}),
    ],
    principal: CertifierDep,
    session: SessionDep,
    state: StateDep,
) -> Attestation:
    """Relay the certifier's signed ``Attestation`` and store it."""
    require_subject(principal, body.certifier, "certifier")
    if session.get(Certifier, body.certifier) is None:
        raise ProblemError(
            422, "unknown-certifier", "The certifier is not registered", body.certifier
        )
    claim = session.get(Claim, body.claim_id)
    if claim is None:
        raise claim_not_found(body.claim_id)
    if claim.revoked_tx is not None:
        raise ProblemError(409, "claim-revoked", "The claim is revoked", body.claim_id)
    attestation = AttestationInput(unhex(body.claim_id), unhex(body.report_hash), body.uri)
    attestation_id = hex32(attestation.attestation_id(body.certifier))
    if session.get(Attestation, attestation_id) is not None:
        raise ProblemError(
            409, "attestation-exists", "This certifier already attested the claim", attestation_id
        )
    link = state.gateway.link()
    if link.provenance.attestation(unhex(attestation_id)).exists:
        earlier = recorded_event(
            link,
            "ProvenanceRegistry",
            "ClaimAttested",
            "attestationId",
            attestation_id,
            {"certifier": body.certifier, "reportHash": body.report_hash, "uri": body.uri},
        )
        if earlier is None:
            raise ProblemError(
                409, "attestation-exists", "The claim is attested on chain", attestation_id
            )
        tx_hash, block = earlier.tx_hash, earlier.block_number
    else:
        if claim.valid_until <= chain_now(link):
            raise ProblemError(422, "claim-expired", "The claim has expired", body.claim_id)
        typed = eip712.attestation(
            domain(link, "ProvenanceRegistry"),
            body.certifier,
            attestation,
            body.nonce,
            body.deadline,
        )
        sent = relay_signed(
            state,
            link,
            "ProvenanceRegistry",
            typed,
            signer=body.certifier,
            body=body,
            send=lambda lk, signature: lk.provenance.attest_by_sig(
                body.certifier, attestation, body.nonce, body.deadline, signature
            ),
        )
        tx_hash, block = sent.tx_hash, sent.block_number
    row = Attestation(
        attestation_id=attestation_id,
        claim_id=body.claim_id,
        certifier=body.certifier,
        report_hash=body.report_hash,
        uri=body.uri,
        tx_hash=tx_hash,
        block_number=block,
    )
    save(state, row)
    return row


@router.post(
    "/{attestation_id}/revocation",
    response_model=AttestationPublic,
    summary="Revoke an attestation with the certifier's signed RevokeAttestation",
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not a certifier key, or the key acts for another certifier"},
        404: {"description": "No such attestation among this certifier's"},
        409: {"description": "Already revoked"},
        422: {"description": f"Invalid body, {_SIGNED_422}"},
    },
)
def revoke_attestation(
    attestation_id: Hash32,
    body: Annotated[
        RevocationCreate,
        Body(openapi_examples={"revocation": {"summary": "Signed", "value": _REVOCATION}}),
    ],
    principal: CertifierDep,
    session: SessionDep,
    state: StateDep,
) -> Attestation:
    """Relay ``revokeAttestationBySig`` and mark the attestation revoked."""
    require_subject(principal, body.signer, "certifier")
    row = session.get(Attestation, attestation_id)
    if row is None or not same_address(row.certifier, body.signer):
        raise attestation_not_found(attestation_id)
    if row.revoked_tx is not None:
        raise ProblemError(409, "attestation-revoked", "Already revoked", attestation_id)
    row.revoked_tx = relay_revocation(state, ATTESTATION, attestation_id, body)
    save(state, row)
    return row


@router.get(
    "/{attestation_id}",
    response_model=AttestationPublic,
    summary="An attestation (public)",
    responses={404: {"description": "No such attestation"}},
)
def get_attestation(attestation_id: Hash32, session: SessionDep) -> Attestation:
    """An attestation by id, with its revocation if any."""
    row = session.get(Attestation, attestation_id)
    if row is None:
        raise attestation_not_found(attestation_id)
    return row


@router.get("", response_model=list[AttestationPublic], summary="A claim's attestations (public)")
def list_attestations(
    claim_id: Annotated[Hash32, Query(description="The attested claim")],
    session: SessionDep,
) -> list[Attestation]:
    """Every attestation of ``claim_id``, revoked ones included (``revoked_tx`` set)."""
    query = (
        select(Attestation)
        .where(col(Attestation.claim_id) == claim_id)
        .order_by(col(Attestation.block_number), col(Attestation.attestation_id))
    )
    return list(session.exec(query))
