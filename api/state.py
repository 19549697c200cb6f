"""What one API process holds: settings, engines, caches, the writer and the chain gateway."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from api.auth import KeyVerifier
from api.chain_gateway import ChainGateway
from api.committer import Committer
from api.config import Settings
from api.db import WORKER_AUTOCHECKPOINT, make_engine, writer
from api.ingest import ReceiptFactory, ReceiptWriter
from api.lookups import Lookups
from api.models import Outbox


@dataclass
class PendingGauge:
    """Receipts waiting for a commit, re-counted at most once a second (and counted up by
    what this process accepts in between)."""

    engine: Engine
    _value: int = 0
    _read_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def value(self) -> int:
        """The number of outbox rows (cached for a second)."""
        now = time.monotonic()
        if now - self._read_at > 1.0:
            with self._lock:
                if now - self._read_at > 1.0:
                    with self.engine.connect() as conn:
                        self._value = int(
                            conn.execute(select(func.count(col(Outbox.receipt_id)))).scalar_one()
                        )
                    self._read_at = now
        return self._value

    def add(self, accepted: int) -> None:
        """Count receipts this process accepted since the last re-count, so that a burst
        within one second cannot pass the bound by more than the other workers accept."""
        with self._lock:
            self._value += accepted


@dataclass
class AppState:
    """Per-process service state, created by :func:`build_state`."""

    settings: Settings
    engine: Engine
    write_engine: Engine
    keys: KeyVerifier
    lookups: Lookups
    receipts: ReceiptFactory
    writer: ReceiptWriter
    gateway: ChainGateway
    pending: PendingGauge
    committer: Committer | None = None


def build_state(settings: Settings) -> AppState:
    """Create engines, caches, the receipt writer and the (lazy) chain gateway."""
    engine = make_engine(settings.database_url, autocheckpoint=WORKER_AUTOCHECKPOINT)
    lookups = Lookups(engine)
    return AppState(
        settings=settings,
        engine=engine,
        write_engine=writer(engine),
        keys=KeyVerifier(engine),
        lookups=lookups,
        receipts=ReceiptFactory(lookups, settings.public_url),
        writer=ReceiptWriter(writer(engine)),
        gateway=ChainGateway(settings, engine),
        pending=PendingGauge(engine),
    )
