"""Endorsements: an anchor signs ``Endorsement`` / ``RevokeEndorsement`` and anyone may hand
them in. No API key: the anchor's EIP-712 signature is the authentication, checked here before
the relayer spends gas and again by the AnchorRegistry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from sqlmodel import col, select

from api.chain_records import find_event, id_hash
from api.deps import Limit, Offset, SessionDep, StateDep, save
from api.models import Anchor, Endorsement, Product
from api.models.anchors import EndorsementCreate, EndorsementPublic
from api.models.common import Address, Hash32, hex32, unhex
from api.models.registry import RevocationCreate
from api.problems import ProblemError
from api.revocations import ENDORSEMENT, relay_revocation
from api.signatures import chain_now, domain, relay_signed, same_address
from chain import eip712
from chain.actions import EndorsementTerms, currency_code

router = APIRouter(prefix="/endorsements", tags=["endorsements"])

_ANCHOR = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
_EXAMPLE = {
    "anchor": _ANCHOR,
    "product_id": "0x" + "7a" * 32,
    "claims_digest": "0x" + "d1" * 32,
    "room_id": "room-8848",
    "sponsored": True,
    "commission_bps": 1500,
    "unit_price": 12800,
    "currency": "CNY",
    "valid_from": 1_780_000_000,
    "valid_until": 1_780_604_800,
    "nonce": 0,
    "deadline": 1_780_003_600,
    "signature": "0x" + "11" * 65,
}
_REVOCATION = {
    "signer": _ANCHOR,
    "nonce": 1,
    "deadline": 1_780_003_600,
    "signature": "0x" + "22" * 65,
}

_SIGNED_422 = "deadline passed, nonce not the anchor's next, or signature not the anchor's"


def endorsement_not_found(endorsement_id: str) -> ProblemError:
    """The 404 for an unknown endorsement."""
    return ProblemError(404, "endorsement-not-found", "No such endorsement", endorsement_id)


def _refuse(slug: str, title: str, detail: str) -> ProblemError:
    return ProblemError(422, slug, title, detail)


@router.post(
    "",
    status_code=201,
    response_model=EndorsementPublic,
    summary="Record an endorsement the anchor signed (no API key; written on-chain)",
    description=(
        "The anchor signs EIP-712 `Endorsement` on the AnchorRegistry's domain, with "
        "`roomId` = keccak256(room_id) and `currency` the ISO 4217 code as bytes3. The API "
        "checks the anchor and product are registered, the validity window, the deadline, the "
        "nonce (`nonces(anchor)`) and the signature before relaying `endorseBySig`, so a bad "
        "request costs no gas. The answer is the on-chain record, with the endorsement id the "
        "contract gave it. An endorsement already on chain (an earlier attempt whose answer "
        "was lost) is adopted."
    ),
    responses={
        409: {"description": "This endorsement is already recorded"},
        422: {
            "description": "Invalid body, anchor not registered or removed, product not "
            f"registered, empty or past validity window, {_SIGNED_422}"
        },
    },
)
def endorse(
    body: Annotated[
        EndorsementCreate,
        Body(openapi_examples={"endorsement": {"summary": "Signed", "value": _EXAMPLE}}),
    ],
    session: SessionDep,
    state: StateDep,
) -> Endorsement:
    """Relay the anchor's signed ``Endorsement`` and store the on-chain record."""
    anchor = session.get(Anchor, body.anchor)
    if anchor is None or anchor.removed_tx is not None:
        raise _refuse("unknown-anchor", "The anchor is not registered", body.anchor)
    if session.get(Product, body.product_id) is None:
        raise _refuse("unknown-product", "The product is not registered", body.product_id)
    if body.valid_until <= body.valid_from:
        raise _refuse(
            "invalid-validity-window",
            "The validity window is empty",
            f"valid_until {body.valid_until} must be after valid_from {body.valid_from}",
        )
    room_hash = id_hash(body.room_id)
    terms = EndorsementTerms(
        unhex(body.product_id),
        unhex(body.claims_digest),
        unhex(room_hash),
        body.sponsored,
        body.commission_bps,
        body.unit_price,
        currency_code(body.currency),
        body.valid_from,
        body.valid_until,
    )
    link = state.gateway.link()
    raw_id = link.anchors.endorsement_id_of(body.anchor, terms, body.nonce)
    endorsement_id = hex32(raw_id)
    if session.get(Endorsement, endorsement_id) is not None:
        raise ProblemError(
            409, "endorsement-exists", "The endorsement is already recorded", endorsement_id
        )
    found = None
    if link.anchors.endorsement(raw_id).exists:
        # The id commits to the anchor, every term and the nonce: the same request, answered
        # on chain by an earlier attempt whose answer was lost.
        key = "endorsementId"
        found = find_event(link, "AnchorRegistry", "EndorsementRecorded", key, endorsement_id)
    if found is not None:
        tx_hash, block = found
    else:
        if body.valid_until <= chain_now(link):
            raise _refuse(
                "endorsement-expired",
                "The endorsement would already be expired",
                f"valid_until {body.valid_until} has passed",
            )
        typed = eip712.endorsement(
            domain(link, "AnchorRegistry"), body.anchor, terms, body.nonce, body.deadline
        )
        sent = relay_signed(
            state,
            link,
            "AnchorRegistry",
            typed,
            signer=body.anchor,
            body=body,
            send=lambda lk, signature: lk.anchors.endorse_by_sig(
                body.anchor, terms, body.nonce, body.deadline, signature
            ),
        )
        endorsement_id, tx_hash, block = hex32(sent.value), sent.tx_hash, sent.block_number
    row = Endorsement(
        endorsement_id=endorsement_id,
        anchor=body.anchor,
        product_id=body.product_id,
        claims_digest=body.claims_digest,
        room_id=body.room_id,
        room_hash=room_hash,
        sponsored=body.sponsored,
        commission_bps=body.commission_bps,
        unit_price=body.unit_price,
        currency=body.currency,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        nonce=body.nonce,
        tx_hash=tx_hash,
        block_number=block,
    )
    save(state, row)
    state.lookups.forget_promises(row.anchor, row.product_id, row.room_hash)
    return row


@router.post(
    "/{endorsement_id}/revocation",
    response_model=EndorsementPublic,
    summary="Revoke an endorsement with the anchor's signed RevokeEndorsement (no API key)",
    description="A removed anchor can still revoke what it endorsed.",
    responses={
        403: {"description": "The signer is not the anchor who made the endorsement"},
        404: {"description": "No such endorsement"},
        409: {"description": "Already revoked"},
        422: {"description": f"Invalid body, {_SIGNED_422}"},
    },
)
def revoke_endorsement(
    endorsement_id: Hash32,
    body: Annotated[
        RevocationCreate,
        Body(openapi_examples={"revocation": {"summary": "Signed", "value": _REVOCATION}}),
    ],
    session: SessionDep,
    state: StateDep,
) -> Endorsement:
    """Relay ``revokeEndorsementBySig`` and record the revocation."""
    row = session.get(Endorsement, endorsement_id)
    if row is None:
        raise endorsement_not_found(endorsement_id)
    if not same_address(row.anchor, body.signer):
        raise ProblemError(
            403,
            "not-endorser",
            "Only the anchor who made the endorsement can revoke it",
            f"{body.signer} did not make {endorsement_id}",
        )
    if row.revoked_tx is not None:
        raise ProblemError(409, "endorsement-revoked", "Already revoked", endorsement_id)
    row.revoked_tx = relay_revocation(state, ENDORSEMENT, endorsement_id, body)
    save(state, row)
    state.lookups.forget_promises(row.anchor, row.product_id, row.room_hash)
    return row


@router.get(
    "/{endorsement_id}",
    response_model=EndorsementPublic,
    summary="An endorsement (public)",
    responses={404: {"description": "No such endorsement"}},
)
def get_endorsement(endorsement_id: Hash32, session: SessionDep) -> Endorsement:
    """An endorsement by id, with its revocation if any."""
    row = session.get(Endorsement, endorsement_id)
    if row is None:
        raise endorsement_not_found(endorsement_id)
    return row


@router.get("", response_model=list[EndorsementPublic], summary="Endorsements (public)")
def list_endorsements(
    session: SessionDep,
    anchor: Annotated[Address | None, Query(description="Only this anchor's")] = None,
    product_id: Annotated[Hash32 | None, Query(description="Only for this product")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[Endorsement]:
    """Endorsements in the order they were recorded, optionally filtered."""
    query = select(Endorsement)
    if anchor is not None:
        query = query.where(col(Endorsement.anchor) == anchor)
    if product_id is not None:
        query = query.where(col(Endorsement.product_id) == product_id)
    query = query.order_by(col(Endorsement.block_number), col(Endorsement.endorsement_id))
    return list(session.exec(query.offset(offset).limit(limit)))
