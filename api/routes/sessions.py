"""Live sessions: opened and closed on-chain by the platform's operator (the relayer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlmodel import col, select

from api.auth import Principal
from api.chain_records import find_event, id_hash
from api.deps import SessionDep, StateDep, require, save
from api.models import Anchor, LiveSession, Role, Room
from api.models.rooms import LiveSessionClose, LiveSessionCreate, LiveSessionPublic
from api.problems import ProblemError
from chain.contract_errors import SessionAlreadyClosed, SessionAlreadyExists

router = APIRouter(prefix="/sessions", tags=["sessions"])

Ingest = Annotated[Principal, Depends(require(Role.INGEST))]


def _own_room(session: SessionDep, principal: Principal, room_id: str) -> Room:
    room = session.get(Room, room_id)
    if room is None or room.owner_key_id != principal.key_pk:
        raise ProblemError(404, "room-not-found", "No such room", room_id)
    return room


@router.post(
    "",
    status_code=201,
    response_model=LiveSessionPublic,
    summary="Open a live session in one of this key's rooms (written on-chain)",
    responses={
        404: {"description": "Room unknown or not this key's"},
        409: {"description": "The session id is taken"},
        422: {"description": "The anchor is not registered"},
    },
)
def open_session(
    body: LiveSessionCreate, principal: Ingest, session: SessionDep, state: StateDep
) -> LiveSession:
    """Relays ``openSession(sessionId, roomId, anchor)`` and records it."""
    room = _own_room(session, principal, body.room_id)
    existing = session.get(LiveSession, body.session_id)
    if existing is not None:
        raise ProblemError(409, "session-exists", "The session id is taken", body.session_id)
    anchor = session.get(Anchor, body.anchor)
    if anchor is None or anchor.removed_tx is not None:
        raise ProblemError(422, "unknown-anchor", "The anchor is not registered", body.anchor)
    session_hash = id_hash(body.session_id)
    sid, rid = bytes.fromhex(session_hash[2:]), bytes.fromhex(room.room_hash[2:])
    try:
        sent = state.gateway.send(lambda link: link.anchors.open_session(sid, rid, body.anchor))
        tx_hash, block = sent.tx_hash, sent.block_number
    except SessionAlreadyExists:
        # Opened by an earlier attempt whose answer was lost: adopt it if it is the same one.
        link = state.gateway.link()
        on_chain = link.anchors.session(sid)
        found = find_event(link, "AnchorRegistry", "SessionOpened", "sessionId", session_hash)
        if on_chain.anchor != body.anchor or on_chain.closed_at != 0 or found is None:
            # Not ours to adopt: another anchor's, or long since closed (orders would land
            # in a closed session).
            raise ProblemError(
                409,
                "session-exists",
                "A session with this id already exists on chain",
                body.session_id,
            ) from None
        tx_hash, block = found
    opened_at = state.gateway.link().anchors.session(sid).opened_at
    row = LiveSession(
        session_id=body.session_id,
        session_hash=session_hash,
        room_id=room.room_id,
        anchor=body.anchor,
        opened_at=opened_at,
        tx_hash=tx_hash,
        block_number=block,
    )
    save(state, row)
    state.lookups.forget_session(body.session_id)
    return row


@router.post(
    "/{session_id}/close",
    response_model=LiveSessionPublic,
    summary="Close a live session with its recording hash and the displayed sales count",
    responses={
        404: {"description": "Session unknown or not in this key's rooms"},
        409: {"description": "Already closed"},
    },
)
def close_session(
    session_id: str,
    body: LiveSessionClose,
    principal: Ingest,
    session: SessionDep,
    state: StateDep,
) -> LiveSession:
    """Relays ``closeSession(sessionId, recordingHash, displayedSales)`` and records it."""
    row = session.get(LiveSession, session_id)
    if row is None:
        raise ProblemError(404, "session-not-found", "No such session", session_id)
    room = session.get(Room, row.room_id)
    if room is None or room.owner_key_id != principal.key_pk:
        # Another key's session: answer as if it did not exist, so nothing leaks.
        raise ProblemError(404, "session-not-found", "No such session", session_id)
    if row.closed_at is not None:
        raise ProblemError(409, "session-closed", "The session is already closed", session_id)
    sid = bytes.fromhex(row.session_hash[2:])
    recording = bytes.fromhex(body.recording_hash[2:])
    try:
        sent = state.gateway.send(
            lambda link: link.anchors.close_session(sid, recording, body.displayed_sales)
        )
        tx_hash = sent.tx_hash
    except SessionAlreadyClosed:
        link = state.gateway.link()
        found = find_event(link, "AnchorRegistry", "SessionClosed", "sessionId", row.session_hash)
        if found is None:
            raise
        tx_hash = found[0]
    closed_at = state.gateway.link().anchors.session(sid).closed_at
    row.closed_at = closed_at
    row.recording_hash = body.recording_hash
    row.displayed_sales = body.displayed_sales
    row.close_tx = tx_hash
    save(state, row)
    state.lookups.forget_session(session_id)
    return row


@router.get(
    "/{session_id}",
    response_model=LiveSessionPublic,
    summary="A live session (public)",
    responses={404: {"description": "No such session"}},
)
def get_session_record(session_id: str, session: SessionDep) -> LiveSession:
    """Public: when it opened and closed, and the sales count viewers were shown."""
    row = session.get(LiveSession, session_id)
    if row is None:
        raise ProblemError(404, "session-not-found", "No such session", session_id)
    return row


@router.get("", response_model=list[LiveSessionPublic], summary="Sessions of a room (public)")
def list_sessions(room_id: str, session: SessionDep) -> list[LiveSession]:
    """All sessions held in ``room_id``."""
    return list(
        session.exec(
            select(LiveSession)
            .where(col(LiveSession.room_id) == room_id)
            .order_by(col(LiveSession.opened_at))
        )
    )
