"""``POST /v1/refunds``: a refund receipt for part or all of a sale.

Refunds are few, so they skip the group writer: each runs in a transaction that locks the
sale (SQLite: the write lock at BEGIN; PostgreSQL: ``SELECT ... FOR UPDATE``), so two
concurrent refunds can never together refund more than was sold.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth import Principal
from api.deps import get_state, require
from api.ingest import encode_body, request_digest, same_request
from api.models import IdempotencyRecord, Outbox, Receipt, Role
from api.models.receipts import ReceiptAccepted, RefundCreate
from api.problems import ProblemError
from api.receipt_codes import decode
from api.routes.orders import IdempotencyKey, hand_parsed_body, parse_body
from api.state import AppState
from chain.receipts import ReceiptKind

router = APIRouter(prefix="/refunds", tags=["refunds"])


def _stored(session: Session, key_pk: int, key: str, digest: str) -> tuple[int, bytes] | None:
    stored = session.get(IdempotencyRecord, (key_pk, key), populate_existing=True)
    if stored is None:
        return None
    if not same_request(stored.request_sha256, digest):
        raise ProblemError(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused with a different request",
            "a retry must repeat the first request exactly",
        )
    return stored.status_code, stored.response.encode()


def _refund(
    state: AppState, principal: Principal, refund: RefundCreate, key: str, digest: str
) -> tuple[int, bytes]:
    try:
        return _write_refund(state, principal, refund, key, digest)
    except IntegrityError as exc:
        # PostgreSQL: a concurrent retry under the same key committed first. Either backend:
        # the refund's order_ref is taken in the room.
        stored = state.writer.stored_response(principal.key_pk, key, digest)
        if stored is not None:
            return stored
        if "order_ref" in str(exc.orig):
            raise ProblemError(
                409,
                "duplicate-order-ref",
                "An order with this order_ref exists in the room",
                "order_ref must be unique per room",
            ) from None
        raise


def _write_refund(
    state: AppState, principal: Principal, refund: RefundCreate, key: str, digest: str
) -> tuple[int, bytes]:
    sale_id = "0x" + decode(refund.receipt_code).hex()
    with Session(state.write_engine, expire_on_commit=False) as session:
        stored = _stored(session, principal.key_pk, key, digest)
        if stored is not None:
            return stored
        sale = session.exec(
            select(Receipt).where(col(Receipt.receipt_id) == sale_id).with_for_update()
        ).first()
        if sale is None or sale.ingest_key_id != principal.key_pk:
            raise ProblemError(404, "receipt-not-found", "No such sale", refund.receipt_code)
        # PostgreSQL: a retry under the same key may have committed while we waited for the
        # sale's lock; it must be replayed, not counted against the sale as a second refund.
        stored = _stored(session, principal.key_pk, key, digest)
        if stored is not None:
            return stored
        if sale.kind != ReceiptKind.SALE:
            raise ProblemError(422, "not-a-sale", "Only a sale can be refunded")
        refunded = session.exec(
            select(func.coalesce(func.sum(col(Receipt.quantity)), 0)).where(
                col(Receipt.refers_to) == sale_id
            )
        ).one()
        if int(refunded) + refund.quantity > sale.quantity:
            raise ProblemError(
                409,
                "over-refund",
                "That would refund more than was sold",
                f"sold {sale.quantity}, refunded {refunded}, asked {refund.quantity}",
            )
        prepared = state.receipts.refund(sale, refund, key_pk=principal.key_pk, now=time.time())
        body = encode_body(prepared.response)
        receipt = Receipt(**prepared.row)
        session.add(receipt)
        session.flush()
        session.add(Outbox(receipt_id=receipt.receipt_id, enqueued_at=time.time()))
        session.add(
            IdempotencyRecord(
                key_id=principal.key_pk,
                idempotency_key=key,
                request_sha256=digest,
                status_code=201,
                response=body.decode(),
                created_at=time.time(),
            )
        )
        session.commit()
    return 201, body


@router.post(
    "",
    status_code=201,
    response_model=ReceiptAccepted,
    summary="Refund (part of) a sale: a refund receipt that refers to it",
    openapi_extra={
        "requestBody": hand_parsed_body(RefundCreate, {"receipt_code": "lp1...", "quantity": 1})
    },
    responses={
        404: {"description": "No such sale for this key"},
        409: {"description": "Would refund more than was sold, or order_ref reused in the room"},
        422: {"description": "Invalid request, or Idempotency-Key reused with another body"},
    },
)
async def create_refund(
    request: Request,
    idempotency_key: IdempotencyKey,
    principal: Annotated[Principal, Depends(require(Role.INGEST))],
    state: Annotated[AppState, Depends(get_state)],
) -> Response:
    """Accept a refund (idempotent per ``Idempotency-Key``)."""
    raw = await request.body()
    refund = parse_body(RefundCreate, raw)
    status, body = await run_in_threadpool(
        _refund, state, principal, refund, idempotency_key, request_digest(raw)
    )
    return Response(body, status_code=status, media_type="application/json")
