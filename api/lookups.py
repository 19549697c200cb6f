"""Cached reads of the rows every order refers to (rooms, sessions, products, endorsements).

Hits are cached for a few seconds per process; misses are not cached, so a room or session
created a moment ago is found at once. A session's closing shows within a second, and so do an
anchor's promises for a product in a room (the one lookup whose empty answer is cached: a new
endorsement recorded by this process is forgotten at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from api.models import Endorsement, LiveSession, Product, Room

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class RoomInfo:
    """What an order needs to know about its room."""

    room_id: str
    room_hash: str
    owner_key_pk: int


@dataclass(frozen=True)
class SessionInfo:
    """What an order needs to know about its live session."""

    session_id: str
    session_hash: str
    room_id: str
    closed: bool
    #: The host's address, lower case.
    anchor: str


@dataclass(frozen=True)
class PromiseInfo:
    """An anchor's recorded endorsement: the terms an order under it must keep."""

    endorsement_id: str
    #: lower case
    anchor: str
    product_id: str
    room_hash: str
    unit_price: int
    currency: str
    valid_from: int
    valid_until: int
    revoked: bool

    def in_force(self, at: int) -> bool:
        """True when the promise binds an order placed at ``at``."""
        return not self.revoked and self.valid_from <= at <= self.valid_until


class _TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, load: Callable[[K], V | None]) -> None:
        self.ttl = ttl
        self.load = load
        self._data: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = self.load(key)
        if value is not None:
            with self._lock:
                if len(self._data) > 100_000:
                    self._data.clear()
                self._data[key] = (now + self.ttl, value)
        return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)


class Lookups:
    """Per-process cache of rooms, sessions, products and endorsements."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._rooms = _TtlCache[str, RoomInfo](5.0, self._load_room)
        self._sessions = _TtlCache[str, SessionInfo](1.0, self._load_session)
        self._products = _TtlCache[str, bool](30.0, self._load_product)
        self._endorsements = _TtlCache[str, PromiseInfo](1.0, self._load_endorsement)
        self._promises = _TtlCache[tuple[str, str, str], tuple[PromiseInfo, ...]](
            1.0, self._load_promises
        )

    def room(self, room_id: str) -> RoomInfo | None:
        """The room, or None."""
        return self._rooms.get(room_id)

    def session(self, session_id: str) -> SessionInfo | None:
        """The live session, or None."""
        return self._sessions.get(session_id)

    def product_exists(self, product_id: str) -> bool:
        """True when the product is registered."""
        return bool(self._products.get(product_id))

    def endorsement(self, endorsement_id: str) -> PromiseInfo | None:
        """The endorsement, or None when there is no such endorsement."""
        return self._endorsements.get(endorsement_id)

    def promises(self, anchor: str, product_id: str, room_hash: str) -> tuple[PromiseInfo, ...]:
        """Every endorsement by ``anchor`` (any case) of the product in the room."""
        return self._promises.get((anchor.lower(), product_id, room_hash)) or ()

    def forget_promises(self, anchor: str, product_id: str, room_hash: str) -> None:
        """Drop cached promises (after this process recorded or revoked one)."""
        self._promises.forget((anchor.lower(), product_id, room_hash))

    def forget_session(self, session_id: str) -> None:
        """Drop a cached session (after this process closed it)."""
        self._sessions.forget(session_id)

    def _load_room(self, room_id: str) -> RoomInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(col(Room.room_hash), col(Room.owner_key_id)).where(
                    col(Room.room_id) == room_id
                )
            ).first()
        return None if row is None else RoomInfo(room_id, row[0], int(row[1]))

    def _load_session(self, session_id: str) -> SessionInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    col(LiveSession.session_hash),
                    col(LiveSession.room_id),
                    col(LiveSession.closed_at),
                    col(LiveSession.anchor),
                ).where(col(LiveSession.session_id) == session_id)
            ).first()
        if row is None:
            return None
        return SessionInfo(session_id, row[0], row[1], row[2] is not None, str(row[3]).lower())

    def _load_product(self, product_id: str) -> bool | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(col(Product.product_id)).where(col(Product.product_id) == product_id)
            ).first()
        return True if row is not None else None

    def _load_endorsement(self, endorsement_id: str) -> PromiseInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_PROMISE_COLUMNS).where(col(Endorsement.endorsement_id) == endorsement_id)
            ).first()
        return None if row is None else _promise(row)

    def _load_promises(self, key: tuple[str, str, str]) -> tuple[PromiseInfo, ...]:
        anchor, product_id, room_hash = key
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_PROMISE_COLUMNS).where(
                    col(Endorsement.product_id) == product_id,
                    col(Endorsement.room_hash) == room_hash,
                )
            ).all()
        return tuple(p for p in map(_promise, rows) if p.anchor == anchor)


_PROMISE_COLUMNS = (
    col(Endorsement.endorsement_id), col(Endorsement.anchor), col(Endorsement.product_id),
    col(Endorsement.room_hash), col(Endorsement.unit_price), col(Endorsement.currency),
    col(Endorsement.valid_from), col(Endorsement.valid_until), col(Endorsement.revoked_tx),
)  # fmt: skip


def _promise(row: Any) -> PromiseInfo:
    return PromiseInfo(
        str(row[0]), str(row[1]).lower(), str(row[2]), str(row[3]), int(row[4]), str(row[5]),
        int(row[6]), int(row[7]), row[8] is not None,
    )  # fmt: skip
