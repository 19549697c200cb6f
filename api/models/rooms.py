"""Live rooms (each owned by an ingest key) and the live sessions held in them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from api.models.common import FORBID_EXTRA, Address, Hash32, PlatformId, StoredUint64, Text, now
from api.models.registry import OnChain


class RoomBase(SQLModel):
    room_id: PlatformId
    name: Text = ""


class RoomCreate(RoomBase):
    model_config = FORBID_EXTRA


class Room(SQLModel, table=True):
    __tablename__ = "rooms"

    room_id: str = Field(primary_key=True, max_length=128)
    room_hash: str = Field(max_length=66, index=True)
    name: str = Field(max_length=512)
    owner_key_id: int = Field(foreign_key="api_keys.id", index=True)
    created_at: float = Field(default_factory=now)


class RoomPublic(RoomBase):
    room_hash: str
    created_at: float


class LiveSessionBase(SQLModel):
    session_id: PlatformId
    room_id: PlatformId
    anchor: Address


class LiveSessionCreate(LiveSessionBase):
    model_config = FORBID_EXTRA


class LiveSessionClose(SQLModel):
    model_config = FORBID_EXTRA

    recording_hash: Hash32 = Field(description="Hash of the recording or transcript")
    displayed_sales: StoredUint64 = Field(description="The sales count viewers were shown")


class LiveSession(OnChain, table=True):
    __tablename__ = "live_sessions"

    session_id: str = Field(primary_key=True, max_length=128)
    session_hash: str = Field(max_length=66, index=True)
    room_id: str = Field(max_length=128, index=True, foreign_key="rooms.room_id")
    anchor: str = Field(max_length=42, foreign_key="anchors.address")
    # The contract's uint64s: 64-bit columns (PostgreSQL's INTEGER ends in January 2038).
    opened_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    closed_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    recording_hash: str | None = Field(default=None, max_length=66)
    displayed_sales: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    close_tx: str | None = Field(default=None, max_length=66)
    created_at: float = Field(default_factory=now)


class LiveSessionPublic(OnChain):
    session_id: str
    session_hash: str
    room_id: str
    anchor: str
    opened_at: int
    closed_at: int | None
    recording_hash: str | None
    displayed_sales: int | None
    close_tx: str | None
