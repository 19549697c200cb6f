"""Live rooms: created by an ingest key, which alone may then post orders and sessions there."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.auth import Principal
from api.chain_records import id_hash
from api.deps import SessionDep, WriteSessionDep, require
from api.models import Role, Room
from api.models.rooms import RoomCreate, RoomPublic
from api.problems import ProblemError

router = APIRouter(prefix="/rooms", tags=["rooms"])

Ingest = Annotated[Principal, Depends(require(Role.INGEST))]


@router.post(
    "",
    status_code=201,
    response_model=RoomPublic,
    summary="Create a live room owned by this ingest key",
    responses={409: {"description": "The room id is taken"}},
)
def create_room(body: RoomCreate, principal: Ingest, session: WriteSessionDep) -> Room:
    """The room's on-chain id is keccak256 of its platform id."""
    room = Room(
        room_id=body.room_id,
        room_hash=id_hash(body.room_id),
        name=body.name,
        owner_key_id=principal.key_pk,
    )
    session.add(room)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ProblemError(409, "room-exists", "The room id is taken", body.room_id) from None
    return room


@router.get("", response_model=list[RoomPublic], summary="This ingest key's rooms")
def list_rooms(principal: Ingest, session: SessionDep) -> list[Room]:
    """Only the caller's own rooms."""
    return list(
        session.exec(
            select(Room)
            .where(col(Room.owner_key_id) == principal.key_pk)
            .order_by(col(Room.room_id))
        )
    )


@router.get(
    "/{room_id}",
    response_model=RoomPublic,
    summary="A room (public)",
    responses={404: {"description": "No such room"}},
)
def get_room(room_id: str, session: SessionDep) -> Room:
    """Public: a room's id, name and on-chain hash."""
    room = session.get(Room, room_id)
    if room is None:
        raise ProblemError(404, "room-not-found", "No such room", room_id)
    return room
