"""Admin registrations of brands and certifiers: one set of routes, built per kind.

Both are an address and a name written to the ProvenanceRegistry by the relayer; only the
names differ, so one factory makes both routers.

This module does not use ``from __future__ import annotations``: FastAPI must see each
router's request model (``kind.create``) as a real class when the routes are defined.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from sqlmodel import SQLModel, col, select

from api.chain_gateway import ChainLink
from api.deps import AdminDep, Limit, Offset, SessionDep, StateDep, save
from api.models import Brand, Certifier
from api.models.common import Address
from api.models.registry import BrandCreate, BrandPublic, CertifierCreate, CertifierPublic
from api.problems import ProblemError
from api.signatures import recorded_event
from chain.clients.base import Sent


@dataclass(frozen=True)
class Registration:
    """One kind of admin-registered participant."""

    noun: str
    plural: str
    contract_fn: str
    event: str
    table: type[Brand] | type[Certifier]
    create: type[SQLModel]
    public: type[SQLModel]
    is_registered: Callable[[ChainLink, str], bool]
    register: Callable[[ChainLink, str, str], Sent[None]]
    example: dict[str, str]


BRAND = Registration(
    noun="brand",
    plural="brands",
    contract_fn="registerBrand",
    event="BrandRegistered",
    table=Brand,
    create=BrandCreate,
    public=BrandPublic,
    is_registered=lambda link, address: link.provenance.is_brand(address),
    register=lambda link, address, name: link.provenance.register_brand(address, name),
    example={"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "name": "Example Tea Co."},
)
CERTIFIER = Registration(
    noun="certifier",
    plural="certifiers",
    contract_fn="registerCertifier",
    event="CertifierRegistered",
    table=Certifier,
    create=CertifierCreate,
    public=CertifierPublic,
    is_registered=lambda link, address: link.provenance.is_certifier(address),
    register=lambda link, address, name: link.provenance.register_certifier(address, name),
    example={
        "address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "name": "Hangzhou Tea Inspection Lab",
    },
)


def registration_router(kind: Registration) -> APIRouter:
    """``POST``, list and get routes for one kind of registered participant."""
    router = APIRouter(prefix=f"/{kind.plural}", tags=[kind.plural])
    noun = kind.noun

    @router.post(
        "",
        name=f"register_{noun}",
        status_code=201,
        response_model=kind.public,
        summary=f"Register a {noun} (admin; written on-chain)",
        description=(
            f"Relays `{kind.contract_fn}(address, name)`. A {noun} already registered on chain "
            "under the same name (an earlier attempt whose answer was lost) is adopted without "
            "a new write."
        ),
        responses={
            401: {"description": "No or bad API key"},
            403: {"description": "Not an admin key"},
            409: {"description": f"The {noun} is already registered here"},
            422: {"description": "Invalid body"},
        },
    )
    def register(
        body: Annotated[
            kind.create,  # type: ignore[name-defined]  # a class chosen per router, at runtime
            Body(openapi_examples={noun: {"summary": f"A {noun}", "value": kind.example}}),
        ],
        _admin: AdminDep,
        session: SessionDep,
        state: StateDep,
    ) -> Any:
        """Register ``body.address`` and record where it was written."""
        address, name = body.address, body.name
        if session.get(kind.table, address) is not None:
            raise ProblemError(409, f"{noun}-exists", f"The {noun} is already registered", address)
        link = state.gateway.link()
        earlier = None
        if kind.is_registered(link, address):
            earlier = recorded_event(
                link, "ProvenanceRegistry", kind.event, noun, address, {"name": name}
            )
        if earlier is not None:
            tx_hash, block = earlier.tx_hash, earlier.block_number
        else:
            sent = state.gateway.send(lambda lk: kind.register(lk, address, name))
            tx_hash, block = sent.tx_hash, sent.block_number
        row = kind.table(address=address, name=name, tx_hash=tx_hash, block_number=block)
        save(state, row)
        return row

    @router.get(
        "",
        name=f"list_{kind.plural}",
        response_model=list[kind.public],  # type: ignore[name-defined]
        summary=f"Registered {kind.plural} (public)",
    )
    def list_all(
        session: SessionDep,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Any:
        """In address order."""
        query = select(kind.table).order_by(col(kind.table.address)).offset(offset).limit(limit)
        return list(session.exec(query))

    @router.get(
        "/{address}",
        name=f"get_{noun}",
        response_model=kind.public,
        summary=f"A {noun} (public)",
        responses={404: {"description": f"No such {noun}"}},
    )
    def get_one(address: Annotated[Address, Path()], session: SessionDep) -> Any:
        """By address (any letter case)."""
        row = session.get(kind.table, address)
        if row is None:
            raise ProblemError(404, f"{noun}-not-found", f"No such {noun}", address)
        return row

    return router
