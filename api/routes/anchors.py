"""Anchors (live-stream hosts): registered and removed on the AnchorRegistry by the admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from sqlmodel import col, select

from api.chain_records import find_event, id_hash
from api.deps import AdminDep, Limit, Offset, SessionDep, StateDep, save
from api.models import Anchor
from api.models.anchors import AnchorCreate, AnchorPublic
from api.models.common import Address, Handle, hex32
from api.problems import ProblemError
from chain.contract_errors import AnchorAlreadyRegistered

router = APIRouter(prefix="/anchors", tags=["anchors"])

_EXAMPLE = {"address": "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "handle": "@tea-master-li"}


def anchor_not_found(what: str) -> ProblemError:
    """The 404 for an unknown anchor."""
    return ProblemError(404, "anchor-not-found", "No such anchor", what)


@router.post(
    "",
    status_code=201,
    response_model=AnchorPublic,
    summary="Register an anchor under a platform handle (admin; written on-chain)",
    description=(
        "Relays `registerAnchor(address, handle)`; the chain keeps keccak256(handle). An anchor "
        "removed earlier can be registered again. An anchor already on chain under the same "
        "handle (an earlier attempt whose answer was lost) is adopted without a new write."
    ),
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not an admin key"},
        409: {"description": "The anchor is registered, or the handle is another anchor's"},
        422: {"description": "Invalid body"},
    },
)
def register_anchor(
    body: Annotated[
        AnchorCreate, Body(openapi_examples={"anchor": {"summary": "A host", "value": _EXAMPLE}})
    ],
    _admin: AdminDep,
    session: SessionDep,
    state: StateDep,
) -> Anchor:
    """Register ``body.address`` as an anchor and record where it was written."""
    existing = session.get(Anchor, body.address)
    if existing is not None and existing.removed_tx is None:
        raise ProblemError(409, "anchor-exists", "The anchor is registered", body.address)
    holder = session.exec(select(Anchor).where(col(Anchor.handle) == body.handle)).first()
    if holder is not None and holder.address != body.address:
        raise ProblemError(409, "handle-taken", "The handle is another anchor's", body.handle)
    handle_hash = id_hash(body.handle)
    link = state.gateway.link()
    try:
        sent = state.gateway.send(lambda lk: lk.anchors.register_anchor(body.address, body.handle))
        tx_hash, block = sent.tx_hash, sent.block_number
    except AnchorAlreadyRegistered:
        # Registered by an earlier attempt whose answer was lost: adopt it if the handle agrees.
        on_chain = link.anchors.handle_of(body.address)
        found = find_event(link, "AnchorRegistry", "AnchorRegistered", "anchor", body.address)
        if on_chain is None or hex32(on_chain) != handle_hash or found is None:
            raise
        tx_hash, block = found
    row = Anchor(
        address=body.address,
        handle=body.handle,
        handle_hash=handle_hash,
        tx_hash=tx_hash,
        block_number=block,
        removed_tx=None,
    )
    save(state, row)
    return row


@router.delete(
    "/{address}",
    response_model=AnchorPublic,
    summary="Remove an anchor (admin; written on-chain)",
    description="Relays `removeAnchor(address)`; the anchor's later endorsements are refused.",
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not an admin key"},
        404: {"description": "No such anchor"},
        409: {"description": "Already removed"},
    },
)
def remove_anchor(
    address: Address, _admin: AdminDep, session: SessionDep, state: StateDep
) -> Anchor:
    """Relay ``removeAnchor`` and record the removal."""
    row = session.get(Anchor, address)
    if row is None:
        raise anchor_not_found(address)
    if row.removed_tx is not None:
        raise ProblemError(409, "anchor-removed", "The anchor is already removed", address)
    link = state.gateway.link()
    found = None
    if link.anchors.handle_of(address) is None:
        # Removed by an earlier attempt whose answer was lost.
        found = find_event(link, "AnchorRegistry", "AnchorRemoved", "anchor", address)
    if found is not None and found[1] >= row.block_number:
        row.removed_tx = found[0]
    else:
        row.removed_tx = state.gateway.send(lambda lk: lk.anchors.remove_anchor(address)).tx_hash
    save(state, row)
    return row


@router.get("", response_model=list[AnchorPublic], summary="Anchors (public)")
def list_anchors(
    session: SessionDep,
    include_removed: Annotated[bool, Query(description="Also removed anchors")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[Anchor]:
    """Anchors in handle order."""
    query = select(Anchor)
    if not include_removed:
        query = query.where(col(Anchor.removed_tx).is_(None))
    return list(session.exec(query.order_by(col(Anchor.handle)).offset(offset).limit(limit)))


@router.get(
    "/{handle}",
    response_model=AnchorPublic,
    summary="An anchor by platform handle (public)",
    responses={404: {"description": "No such anchor"}},
)
def get_anchor(handle: Handle, session: SessionDep) -> Anchor:
    """The anchor holding ``handle`` (removed ones show ``removed_tx``)."""
    row = session.exec(select(Anchor).where(col(Anchor.handle) == handle)).first()
    if row is None:
        raise anchor_not_found(handle)
    return row
