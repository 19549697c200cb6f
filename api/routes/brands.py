"""Brands: registered on the ProvenanceRegistry by the platform's admin (the relayer sends)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from sqlmodel import col, select

from api.deps import AdminDep, SessionDep, StateDep, save
from api.models import Brand
from api.models.common import Address
from api.models.registry import BrandCreate, BrandPublic
from api.problems import ProblemError
from api.signatures import recorded_event

router = APIRouter(prefix="/brands", tags=["brands"])

_EXAMPLE = {"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "name": "Example Tea Co."}


@router.post(
    "",
    status_code=201,
    response_model=BrandPublic,
    summary="Register a brand (admin; written on-chain)",
    description=(
        "Relays `registerBrand(address, name)`. A brand already registered on chain under the "
        "same name (an earlier attempt whose answer was lost) is adopted without a new write."
    ),
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not an admin key"},
        409: {"description": "The brand is already registered here"},
        422: {"description": "Invalid body"},
    },
)
def register_brand(
    body: Annotated[
        BrandCreate, Body(openapi_examples={"brand": {"summary": "A brand", "value": _EXAMPLE}})
    ],
    _admin: AdminDep,
    session: SessionDep,
    state: StateDep,
) -> Brand:
    """Register ``body.address`` as a brand and record where it was written."""
    if session.get(Brand, body.address) is not None:
        raise ProblemError(409, "brand-exists", "The brand is already registered", body.address)
    link = state.gateway.link()
    earlier = None
    if link.provenance.is_brand(body.address):
        earlier = recorded_event(
            link,
            "ProvenanceRegistry",
            "BrandRegistered",
            "brand",
            body.address,
            {"name": body.name},
        )
    if earlier is not None:
        tx_hash, block = earlier.tx_hash, earlier.block_number
    else:
        sent = state.gateway.send(lambda lk: lk.provenance.register_brand(body.address, body.name))
        tx_hash, block = sent.tx_hash, sent.block_number
    row = Brand(address=body.address, name=body.name, tx_hash=tx_hash, block_number=block)
    save(state, row)
    return row


@router.get("", response_model=list[BrandPublic], summary="Registered brands (public)")
def list_brands(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Brand]:
    """Brands in address order."""
    query = select(Brand).order_by(col(Brand.address)).offset(offset).limit(limit)
    return list(session.exec(query))


@router.get(
    "/{address}",
    response_model=BrandPublic,
    summary="A brand (public)",
    responses={404: {"description": "No such brand"}},
)
def get_brand(address: Annotated[Address, Path()], session: SessionDep) -> Brand:
    """A brand by its address (any letter case)."""
    row = session.get(Brand, address)
    if row is None:
        raise ProblemError(404, "brand-not-found", "No such brand", address)
    return row
