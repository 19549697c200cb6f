"""Order ingest: validate, build the receipt leaf, and write it with its outbox row.

The write path is a *group commit*: requests hand their rows to one writer thread per
process, which commits whatever has queued up in one transaction, then answers them all.
An order, its receipt leaf, its outbox row and its idempotency record are always in the same
transaction, so a crash keeps all or none of them.

Idempotency is optimistic: nothing is read before writing. A retried key fails the primary
key of ``idempotency_keys``; that item alone is then answered from the stored first response
(or refused when the retry's body differs).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from api.lookups import Lookups, RoomInfo, SessionInfo
from api.models import IdempotencyRecord, Receipt
from api.models.common import hex32, unhex
from api.models.receipts import OrderCreate, ReceiptStatus, RefundCreate
from api.problems import ProblemError
from api.receipt_codes import encode as encode_code
from chain.actions import label_hash, product_id_of
from chain.receipts import ReceiptKind, ReceiptLeaf, buyer_commitment

log = logging.getLogger("liveproof.ingest")

_ZERO32 = "0x" + "00" * 32
_RECEIPT_COLUMNS = (
    "receipt_id", "kind", "refers_to", "room_id", "room_hash", "session_id", "session_hash",
    "product_id", "endorsement_id", "quantity", "unit_price", "currency", "ordered_at",
    "buyer_commitment", "leaf_hash", "order_ref", "buyer_ref", "salt", "status", "accepted_at",
    "ingest_key_id",
)  # fmt: skip
_OUTBOX_COLUMNS = ("receipt_id", "immediate", "enqueued_at")
_IDEMPOTENCY_COLUMNS = (
    "key_id", "idempotency_key", "request_sha256", "status_code", "response", "created_at",
)  # fmt: skip
_MAX_GROUP = 5_000


@dataclass
class Prepared:
    """A receipt ready to insert, and the response its caller gets."""

    row: dict[str, Any]
    response: dict[str, Any]
    immediate: bool = False


@dataclass
class WriteJob:
    """One request's rows: written together, answered together."""

    items: list[Prepared]
    key_pk: int
    idempotency_key: str | None
    request_sha256: str
    status_code: int
    body: bytes
    future: Future[tuple[int, bytes]] = field(default_factory=Future)


#: Stored in place of a request's digest when its buyer was erased: the digest of a body that
#: held the buyer's id could be matched against guessed ids, so it goes too.
ERASED_REQUEST = "erased"


def request_digest(raw: bytes) -> str:
    """SHA-256 of a request body, to tell a retry from a different request under one key."""
    return hashlib.sha256(raw).hexdigest()


def same_request(stored_digest: str, digest: str) -> bool:
    """True when a retry's ``digest`` matches the first request's. After an erasure the first
    request can no longer be compared; its (erased) answer is given to any retry of the key."""
    return stored_digest in (digest, ERASED_REQUEST)


class ReceiptFactory:
    """Turns validated orders and refunds into receipt rows."""

    def __init__(self, lookups: Lookups, public_url: str) -> None:
        self.lookups = lookups
        self.public_url = public_url.rstrip("/")

    def order(self, order: OrderCreate, *, key_pk: int, now: float) -> Prepared:
        """A sale receipt for ``order``; raises a problem for unknown or foreign references."""
        room = self.lookups.room(order.room_id)
        if room is None or room.owner_key_pk != key_pk:
            raise ProblemError(404, "room-not-found", "No such room", f"room {order.room_id!r}")
        live = self.lookups.session(order.session_id)
        if live is None or live.room_id != order.room_id:
            raise ProblemError(
                422,
                "session-not-in-room",
                "No such live session in this room",
                f"session {order.session_id!r} in room {order.room_id!r}",
            )
        if live.closed:
            raise ProblemError(
                409, "session-closed", "The live session is closed", order.session_id
            )
        if order.gtin is not None:
            product_id = hex32(product_id_of(int(order.gtin)))
        else:
            assert order.product_id is not None
            product_id = order.product_id
        if not self.lookups.product_exists(product_id):
            raise ProblemError(
                422, "unknown-product", "No such product", order.gtin or order.product_id
            )
        ordered_at = order.ordered_at if order.ordered_at is not None else int(now)
        endorsement_id = self._endorsement_for(order, live, room, product_id, ordered_at)
        salt = os.urandom(32)
        buyer_ref = order.buyer_ref or ""
        leaf = ReceiptLeaf(
            receipt_id=os.urandom(32),
            kind=ReceiptKind.SALE,
            refers_to=bytes(32),
            room_id=unhex(room.room_hash),
            session_id=unhex(live.session_hash),
            product_id=unhex(product_id),
            endorsement_id=unhex(endorsement_id),
            quantity=order.quantity,
            unit_price=order.unit_price,
            currency=order.currency.encode("ascii"),
            ordered_at=ordered_at,
            buyer_commitment=buyer_commitment(salt, label_hash(buyer_ref)),
        )
        return self._prepared(
            leaf,
            room_id=order.room_id,
            session_id=order.session_id,
            order_ref=order.order_ref,
            buyer_ref=order.buyer_ref,
            salt=salt,
            key_pk=key_pk,
            now=now,
            immediate=order.immediate,
        )

    def _endorsement_for(
        self, order: OrderCreate, live: SessionInfo, room: RoomInfo, product_id: str, at: int
    ) -> str:
        """The endorsement a sale runs under: the one the order names (which must be the
        session host's, for this product and room, in force), else the host's promise in force
        for the product and room, if any; zero for none. Refuses a price above any promise in
        force (or in another currency): the audit would flag the receipt."""
        binding = [
            p
            for p in self.lookups.promises(live.anchor, product_id, room.room_hash)
            if p.in_force(at)
        ]
        chosen = _ZERO32
        if order.endorsement_id is not None:
            named = self.lookups.endorsement(order.endorsement_id)
            if named is None:
                raise ProblemError(
                    422, "unknown-endorsement", "No such endorsement", order.endorsement_id
                )
            if named.product_id != product_id:
                raise ProblemError(
                    422,
                    "endorsement-product-mismatch",
                    "The endorsement is for another product",
                    f"endorsement {order.endorsement_id} endorses {named.product_id}",
                )
            if named.room_hash != room.room_hash or named.anchor != live.anchor:
                raise ProblemError(
                    422,
                    "endorsement-not-this-session",
                    "The endorsement is not the session host's for this room",
                    f"endorsement {order.endorsement_id} is by {named.anchor} for another room"
                    if named.room_hash != room.room_hash
                    else f"endorsement {order.endorsement_id} is by {named.anchor}, the session "
                    f"is hosted by {live.anchor}",
                )
            if not named.in_force(at):
                raise ProblemError(
                    422,
                    "endorsement-not-in-force",
                    "The endorsement is revoked or outside its validity",
                    f"endorsement {order.endorsement_id} is valid in [{named.valid_from}, "
                    f"{named.valid_until}]{', revoked' if named.revoked else ''}; ordered at {at}",
                )
            chosen = named.endorsement_id
            binding.append(named)
        elif binding:
            chosen = min(binding, key=lambda p: p.unit_price).endorsement_id
        for promise in binding:
            if order.currency != promise.currency or order.unit_price > promise.unit_price:
                raise ProblemError(
                    422,
                    "price-above-promise",
                    "The price is above the anchor's promise",
                    f"endorsement {promise.endorsement_id} promises at most "
                    f"{promise.unit_price} {promise.currency}; the order is "
                    f"{order.unit_price} {order.currency}",
                )
        return chosen

    def refund(self, sale: Receipt, refund: RefundCreate, *, key_pk: int, now: float) -> Prepared:
        """A refund receipt of ``refund.quantity`` units of ``sale``."""
        if refund.refunded_at is not None and refund.refunded_at < sale.ordered_at:
            raise ProblemError(
                422,
                "refund-before-sale",
                "A refund cannot be dated before its sale",
                f"refunded_at {refund.refunded_at} is before the sale's {sale.ordered_at}",
            )
        leaf = ReceiptLeaf(
            receipt_id=os.urandom(32),
            kind=ReceiptKind.REFUND,
            refers_to=unhex(sale.receipt_id),
            room_id=unhex(sale.room_hash),
            session_id=unhex(sale.session_hash),
            product_id=unhex(sale.product_id),
            endorsement_id=unhex(sale.endorsement_id),
            quantity=refund.quantity,
            unit_price=sale.unit_price,
            currency=sale.currency.encode("ascii"),
            ordered_at=refund.refunded_at if refund.refunded_at is not None else int(now),
            buyer_commitment=unhex(sale.buyer_commitment),
        )
        return self._prepared(
            leaf,
            room_id=sale.room_id,
            session_id=sale.session_id,
            order_ref=refund.order_ref,
            buyer_ref=None,
            salt=None,
            key_pk=key_pk,
            now=now,
            immediate=False,
        )

    def _prepared(
        self,
        leaf: ReceiptLeaf,
        *,
        room_id: str,
        session_id: str,
        order_ref: str | None,
        buyer_ref: str | None,
        salt: bytes | None,
        key_pk: int,
        now: float,
        immediate: bool,
    ) -> Prepared:
        receipt_id = hex32(leaf.receipt_id)
        leaf_hash = hex32(leaf.leaf_hash())
        code = encode_code(leaf.receipt_id)
        row = {
            "receipt_id": receipt_id,
            "kind": int(leaf.kind),
            "refers_to": hex32(leaf.refers_to),
            "room_id": room_id,
            "room_hash": hex32(leaf.room_id),
            "session_id": session_id,
            "session_hash": hex32(leaf.session_id),
            "product_id": hex32(leaf.product_id),
            "endorsement_id": hex32(leaf.endorsement_id),
            "quantity": leaf.quantity,
            "unit_price": leaf.unit_price,
            "currency": leaf.currency.decode("ascii"),
            "ordered_at": leaf.ordered_at,
            "buyer_commitment": hex32(leaf.buyer_commitment),
            "leaf_hash": leaf_hash,
            "order_ref": order_ref,
            "buyer_ref": buyer_ref,
            "salt": hex32(salt) if salt is not None else None,
            "status": ReceiptStatus.PENDING.value,
            "accepted_at": now,
            "ingest_key_id": key_pk,
        }
        response = {
            "receipt_code": code,
            "receipt_id": receipt_id,
            "kind": "sale" if leaf.kind == ReceiptKind.SALE else "refund",
            "status": ReceiptStatus.PENDING.value,
            "order_ref": order_ref,
            "leaf_hash": leaf_hash,
            "salt": row["salt"],
            "buyer_commitment": row["buyer_commitment"],
            "receipt_url": f"{self.public_url}/v1/receipts/{code}",
            "page_url": f"{self.public_url}/r/{code}",
            "accepted_at": now,
        }
        return Prepared(row, response, immediate)


class ReceiptWriter:
    """One writer thread per process that group-commits receipt rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock_path = f"{engine.url.database}.write-lock"
        self._integrity_error: type[Exception] = engine.dialect.dbapi.IntegrityError  # type: ignore[union-attr]
        self._queue: queue.SimpleQueue[WriteJob | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="receipt-writer", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._start_lock:
            if not self._started:
                self._thread.start()
                self._started = True

    def stop(self, timeout: float = 10) -> None:
        """Finish queued jobs and stop."""
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, job: WriteJob) -> Future[tuple[int, bytes]]:
        """Queue a job; its future resolves to the (status, body) to answer with."""
        self.start()
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            rows = len(first.items)
            stop = False
            while rows < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                rows += len(nxt.items)
            self._write_group(jobs)
            if stop:
                return

    def _write_group(self, jobs: list[WriteJob]) -> None:
        try:
            self._write(jobs)
        except self._integrity_error:
            # Someone in the group retried a key or reused an order_ref: settle one by one.
            for job in jobs:
                self._write_alone(job)
            return
        except Exception as exc:
            log.exception("receipt write failed")
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job in jobs:
            job.future.set_result((job.status_code, job.body))

    def _write_alone(self, job: WriteJob) -> None:
        try:
            self._write([job])
        except self._integrity_error as exc:
            try:
                job.future.set_result(self._replay_or_refuse(job, exc))
            except Exception as replay_error:
                job.future.set_exception(replay_error)
            return
        except Exception as exc:
            job.future.set_exception(exc)
            return
        job.future.set_result((job.status_code, job.body))

    def _write(self, jobs: Sequence[WriteJob]) -> None:
        now = time.time()
        receipts = [
            tuple(item.row[c] for c in _RECEIPT_COLUMNS) for job in jobs for item in job.items
        ]
        outbox = [
            (item.row["receipt_id"], item.immediate, now) for job in jobs for item in job.items
        ]
        idempotency = [
            (
                job.key_pk,
                job.idempotency_key,
                job.request_sha256,
                job.status_code,
                job.body.decode(),
                now,
            )
            for job in jobs
            if job.idempotency_key is not None
        ]
        # The pooled DBAPI connection, driven directly: this loop is the hottest in the
        # service and SQLAlchemy's statement machinery costs more than the inserts.
        proxy = self.engine.raw_connection()
        dbapi = proxy.driver_connection
        assert dbapi is not None
        try:
            cursor = dbapi.cursor()
            if self._sqlite:
                dbapi.lock_for_write(self._lock_path)
                cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.executemany(self._sql("receipts", _RECEIPT_COLUMNS), receipts)
                cursor.executemany(self._sql("outbox", _OUTBOX_COLUMNS), outbox)
                if idempotency:
                    cursor.executemany(
                        self._sql("idempotency_keys", _IDEMPOTENCY_COLUMNS), idempotency
                    )
            except BaseException:
                dbapi.rollback()
                raise
            dbapi.commit()
            cursor.close()
        finally:
            proxy.close()

    def _sql(self, table: str, columns: tuple[str, ...]) -> str:
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(columns)
        # Table and column names are this module's constants; values go as parameters.
        marks = ", ".join([mark] * len(columns))
        return f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608

    def stored_response(
        self, key_pk: int, idempotency_key: str, request_sha256: str
    ) -> tuple[int, bytes] | None:
        """The first response under ``idempotency_key``, None when there was none; raises a
        422 problem when the key was used for a different request."""
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(
                    col(IdempotencyRecord.request_sha256),
                    col(IdempotencyRecord.status_code),
                    col(IdempotencyRecord.response),
                ).where(
                    col(IdempotencyRecord.key_id) == key_pk,
                    col(IdempotencyRecord.idempotency_key) == idempotency_key,
                )
            ).first()
        if stored is None:
            return None
        if not same_request(str(stored[0]), request_sha256):
            raise ProblemError(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
                "a retry must repeat the first request exactly",
            )
        return int(stored[1]), str(stored[2]).encode()

    def _replay_or_refuse(self, job: WriteJob, exc: Exception) -> tuple[int, bytes]:
        if job.idempotency_key is not None:
            stored = self.stored_response(job.key_pk, job.idempotency_key, job.request_sha256)
            if stored is not None:
                return stored
        if "order_ref" in str(exc) or "uq_receipts_room_order_ref" in str(exc):
            raise ProblemError(
                409,
                "duplicate-order-ref",
                "An order with this order_ref exists in the room",
                "order_ref must be unique per room",
            )
        raise ProblemError(409, "conflict", "The request conflicts with stored data")


def encode_body(payload: Any) -> bytes:
    """Serialise a response body (the same bytes are stored for idempotent replays)."""
    return orjson.dumps(payload)
