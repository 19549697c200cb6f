"""Certifiers: registered on the ProvenanceRegistry by the platform's admin (the relayer sends)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from sqlmodel import col, select

from api.deps import AdminDep, SessionDep, StateDep, save
from api.models import Certifier
from api.models.common import Address
from api.models.registry import CertifierCreate, CertifierPublic
from api.problems import ProblemError
from api.signatures import recorded_event

router = APIRouter(prefix="/certifiers", tags=["certifiers"])

_EXAMPLE = {
    "address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "name": "Hangzhou Tea Inspection Lab",
}


@router.post(
    "",
    status_code=201,
    response_model=CertifierPublic,
    summary="Register a certifier (admin; written on-chain)",
    description=(
        "Relays `registerCertifier(address, name)`. A certifier already registered on chain "
        "under the same name (an earlier attempt whose answer was lost) is adopted without a "
        "new write."
    ),
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not an admin key"},
        409: {"description": "The certifier is already registered here"},
        422: {"description": "Invalid body"},
    },
)
def register_certifier(
    body: Annotated[
        CertifierCreate,
        Body(openapi_examples={"certifier": {"summary": "A certifier", "value": _EXAMPLE}}),
    ],
    _admin: AdminDep,
    session: SessionDep,
    state: StateDep,
) -> Certifier:
    """Register ``body.address`` as a certifier and record where it was written."""
    if session.get(Certifier, body.address) is not None:
        raise ProblemError(
            409, "certifier-exists", "The certifier is already registered", body.address
        )
    link = state.gateway.link()
    earlier = None
    if link.provenance.is_certifier(body.address):
        earlier = recorded_event(
            link,
            "ProvenanceRegistry",
            "CertifierRegistered",
            "certifier",
            body.address,
            {"name": body.name},
        )
    if earlier is not None:
        tx_hash, block = earlier.tx_hash, earlier.block_number
    else:
        sent = state.gateway.send(
            lambda lk: lk.provenance.register_certifier(body.address, body.name)
        )
        tx_hash, block = sent.tx_hash, sent.block_number
    row = Certifier(address=body.address, name=body.name, tx_hash=tx_hash, block_number=block)
    save(state, row)
    return row


@router.get("", response_model=list[CertifierPublic], summary="Registered certifiers (public)")
def list_certifiers(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Certifier]:
    """Certifiers in address order."""
    query = select(Certifier).order_by(col(Certifier.address)).offset(offset).limit(limit)
    return list(session.exec(query))


@router.get(
    "/{address}",
    response_model=CertifierPublic,
    summary="A certifier (public)",
    responses={404: {"description": "No such certifier"}},
)
def get_certifier(address: Annotated[Address, Path()], session: SessionDep) -> Certifier:
    """A certifier by its address (any letter case)."""
    row = session.get(Certifier, address)
    if row is None:
        raise ProblemError(404, "certifier-not-found", "No such certifier", address)
    return row
