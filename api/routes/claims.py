"""Claims: a brand signs ``ProductClaim`` / ``RevokeClaim`` about its own products; the API
relays them to the ProvenanceRegistry. A brand's key never sees another brand's products or
claims as its own: they answer 404, exactly like ones that do not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from sqlmodel import col, select

from api.deps import BrandDep, SessionDep, StateDep, save
from api.models import Claim, Product
from api.models.common import Gtin, Hash32, hex32, unhex
from api.models.registry import ClaimCreate, ClaimPublic, RevocationCreate
from api.problems import ProblemError
from api.revocations import CLAIM, relay_revocation
from api.routes.products import product_by_gtin, product_not_found
from api.signatures import (
    chain_now,
    domain,
    recorded_event,
    relay_signed,
    require_subject,
    same_address,
)
from chain import eip712
from chain.actions import ClaimInput, label_hash

router = APIRouter(tags=["claims"])

_BRAND = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
_EXAMPLE = {
    "issuer": _BRAND,
    "product_id": "0x" + "7a" * 32,
    "claim_type": "origin",
    "content_hash": "0x" + "c0" * 32,
    "uri": "https://tea.example/claims/origin-westlake.pdf",
    "valid_until": 1_830_000_000,
    "nonce": 1,
    "deadline": 1_790_000_000,
    "signature": "0x" + "11" * 65,
}
_REVOCATION = {
    "signer": _BRAND,
    "nonce": 2,
    "deadline": 1_790_000_000,
    "signature": "0x" + "22" * 65,
}

_SIGNED_422 = "deadline passed, nonce not the signer's next, or signature not the signer's"


def claim_not_found(claim_id: str) -> ProblemError:
    """The 404 for an unknown claim (or, to a brand's key, another brand's claim)."""
    return ProblemError(404, "claim-not-found", "No such claim", claim_id)


@router.post(
    "/claims",
    status_code=201,
    response_model=ClaimPublic,
    summary="Add a claim the brand signed about its product (written on-chain)",
    description=(
        "The brand signs EIP-712 `ProductClaim`; `claimType` is keccak256 of `claim_type` "
        "(UTF-8). The API checks the product is the brand's, the claim is still valid, the "
        "deadline, the nonce and the signature before relaying `addClaimBySig`. The same "
        "claim already on chain (an earlier attempt whose answer was lost) is adopted."
    ),
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not a brand key, or the key acts for another brand"},
        404: {"description": "No such product among this brand's"},
        409: {"description": "The same claim (product, type, content) exists"},
        422: {"description": f"Invalid body, claim already expired, {_SIGNED_422}"},
    },
)
def add_claim(
    body: Annotated[
        ClaimCreate,
        Body(openapi_examples={"claim": {"summary": "A signed origin claim", "value": _EXAMPLE}}),
    ],
    principal: BrandDep,
    session: SessionDep,
    state: StateDep,
) -> Claim:
    """Relay the brand's signed ``ProductClaim`` and store the claim."""
    require_subject(principal, body.issuer, "brand")
    product = session.get(Product, body.product_id)
    if product is None or not same_address(product.brand, body.issuer):
        raise product_not_found(body.product_id)
    claim = ClaimInput(
        unhex(body.product_id),
        label_hash(body.claim_type),
        unhex(body.content_hash),
        body.uri,
        body.valid_until,
    )
    claim_id = hex32(claim.claim_id())
    if session.get(Claim, claim_id) is not None:
        raise ProblemError(409, "claim-exists", "The same claim exists", claim_id)
    link = state.gateway.link()
    if link.provenance.claim(claim.claim_id()).exists:
        earlier = recorded_event(
            link,
            "ProvenanceRegistry",
            "ClaimAdded",
            "claimId",
            claim_id,
            {"issuer": body.issuer, "uri": body.uri, "validUntil": body.valid_until},
        )
        if earlier is None:
            raise ProblemError(409, "claim-exists", "The same claim exists on chain", claim_id)
        tx_hash, block = earlier.tx_hash, earlier.block_number
    else:
        if body.valid_until <= chain_now(link):
            raise ProblemError(
                422,
                "claim-expired",
                "The claim's validity has already ended",
                str(body.valid_until),
            )
        typed = eip712.product_claim(
            domain(link, "ProvenanceRegistry"), body.issuer, claim, body.nonce, body.deadline
        )
        sent = relay_signed(
            state,
            link,
            "ProvenanceRegistry",
            typed,
            signer=body.issuer,
            body=body,
            send=lambda lk, signature: lk.provenance.add_claim_by_sig(
                body.issuer, claim, body.nonce, body.deadline, signature
            ),
        )
        tx_hash, block = sent.tx_hash, sent.block_number
    row = Claim(
        claim_id=claim_id,
        product_id=body.product_id,
        issuer=body.issuer,
        claim_type=body.claim_type,
        content_hash=body.content_hash,
        uri=body.uri,
        valid_until=body.valid_until,
        tx_hash=tx_hash,
        block_number=block,
    )
    save(state, row)
    return row


@router.post(
    "/claims/{claim_id}/revocation",
    response_model=ClaimPublic,
    summary="Revoke a claim with the brand's signed RevokeClaim (written on-chain)",
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not a brand key, or the key acts for another brand"},
        404: {"description": "No such claim among this brand's"},
        409: {"description": "Already revoked"},
        422: {"description": f"Invalid body, {_SIGNED_422}"},
    },
)
def revoke_claim(
    claim_id: Hash32,
    body: Annotated[
        RevocationCreate,
        Body(openapi_examples={"revocation": {"summary": "Signed", "value": _REVOCATION}}),
    ],
    principal: BrandDep,
    session: SessionDep,
    state: StateDep,
) -> Claim:
    """Relay ``revokeClaimBySig`` and mark the claim revoked."""
    require_subject(principal, body.signer, "brand")
    row = session.get(Claim, claim_id)
    if row is None or not same_address(row.issuer, body.signer):
        raise claim_not_found(claim_id)
    if row.revoked_tx is not None:
        raise ProblemError(409, "claim-revoked", "The claim is already revoked", claim_id)
    row.revoked_tx = relay_revocation(state, CLAIM, claim_id, body)
    save(state, row)
    return row


@router.get(
    "/claims/{claim_id}",
    response_model=ClaimPublic,
    summary="A claim (public)",
    responses={404: {"description": "No such claim"}},
)
def get_claim(claim_id: Hash32, session: SessionDep) -> Claim:
    """A claim by id, with its revocation if any."""
    row = session.get(Claim, claim_id)
    if row is None:
        raise claim_not_found(claim_id)
    return row


@router.get(
    "/products/{gtin}/claims",
    response_model=list[ClaimPublic],
    summary="A product's claims (public)",
    responses={404: {"description": "No such product"}},
)
def list_product_claims(gtin: Gtin, session: SessionDep) -> list[Claim]:
    """Every claim about the product, revoked ones included (``revoked_tx`` set)."""
    product = product_by_gtin(session, gtin)
    if product is None:
        raise product_not_found(gtin)
    query = (
        select(Claim)
        .where(col(Claim.product_id) == product.product_id)
        .order_by(col(Claim.block_number), col(Claim.claim_id))
    )
    return list(session.exec(query))
