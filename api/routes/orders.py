"""``POST /v1/orders`` and ``POST /v1/orders/bulk``: orders become pending receipts at once."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import SQLModel
from starlette.responses import Response

from api.auth import Principal
from api.deps import get_state, require
from api.ingest import WriteJob, encode_body, request_digest
from api.models import Role
from api.models.receipts import BulkAccepted, BulkOrderCreate, OrderCreate, ReceiptAccepted
from api.problems import ProblemError
from api.state import AppState

router = APIRouter(tags=["orders"])

M = TypeVar("M", bound=SQLModel)

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per order: a retry with the same key gets the same response",
        examples=["9b1f6c0e-7d7e-4d55-9f0e-3f1b2a7c4d21"],
    ),
]

_ORDER_EXAMPLE = {
    "room_id": "room-8848",
    "session_id": "live-2026-11-25-evening",
    "gtin": "06901234567892",
    "endorsement_id": "0x" + "3c" * 32,
    "quantity": 2,
    "unit_price": 12800,
    "currency": "CNY",
    "buyer_ref": "buyer-77121",
    "order_ref": "SO-2026-000123",
}


def _check_capacity(state: AppState) -> None:
    if state.pending.value() >= state.settings.max_pending:
        raise ProblemError(
            503,
            "queue-full",
            "Too many receipts are waiting for the chain",
            f"more than {state.settings.max_pending} receipts are pending; retry later",
            headers={"Retry-After": str(max(1, int(state.settings.batch_interval * 5)))},
        )


def parse_body(model: type[M], raw: bytes) -> M:
    """Validate a JSON body; errors become the usual 422 problem."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from None


async def _write(state: AppState, job: WriteJob) -> Response:
    status, body = await asyncio.wrap_future(state.writer.submit(job))
    if status == 503:  # pragma: no cover - the writer never stores 503s
        raise ProblemError(503, "unavailable", "Try again")
    return Response(body, status_code=status, media_type="application/json")


@router.post(
    "/orders",
    status_code=201,
    response_model=ReceiptAccepted,
    summary="Accept one order",
    description=(
        "Stores the order, its receipt leaf and an outbox row in one transaction and answers "
        "with the receipt code at once; the committer puts it on-chain within about "
        "`LIVEPROOF_BATCH_INTERVAL` seconds. The `salt` goes to the buyer only."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/OrderCreate"},
                    "example": _ORDER_EXAMPLE,
                }
            },
        }
    },
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not an ingest key"},
        404: {"description": "Room unknown or owned by another key"},
        409: {"description": "Session closed, or order_ref reused in the room"},
        422: {"description": "Invalid order, or Idempotency-Key reused with another body"},
        503: {"description": "Too many receipts pending (see Retry-After)"},
    },
)
async def create_order(
    request: Request,
    idempotency_key: IdempotencyKey,
    principal: Annotated[Principal, Depends(require(Role.INGEST))],
    state: Annotated[AppState, Depends(get_state)],
) -> Response:
    """Accept one order (idempotent per ``Idempotency-Key``)."""
    raw = await request.body()
    order = parse_body(OrderCreate, raw)
    _check_capacity(state)
    prepared = state.receipts.order(order, key_pk=principal.key_pk, now=time.time())
    job = WriteJob(
        items=[prepared],
        key_pk=principal.key_pk,
        idempotency_key=idempotency_key,
        request_sha256=request_digest(raw),
        status_code=201,
        body=encode_body(prepared.response),
    )
    return await _write(state, job)


@router.post(
    "/orders/bulk",
    status_code=201,
    response_model=BulkAccepted,
    summary="Accept up to 10,000 orders at once",
    description="All orders are accepted together or none is (the first invalid one is named).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/BulkOrderCreate"},
                    "example": {"orders": [_ORDER_EXAMPLE]},
                }
            },
        }
    },
)
async def create_orders_bulk(
    request: Request,
    idempotency_key: IdempotencyKey,
    principal: Annotated[Principal, Depends(require(Role.INGEST))],
    state: Annotated[AppState, Depends(get_state)],
) -> Response:
    """Accept many orders in one request and one transaction."""
    raw = await request.body()
    bulk = parse_body(BulkOrderCreate, raw)
    limit = state.settings.max_bulk_orders
    if len(bulk.orders) > limit:
        raise ProblemError(
            422, "too-many-orders", "Too many orders in one request", f"at most {limit}"
        )
    _check_capacity(state)
    now = time.time()
    items = []
    for index, order in enumerate(bulk.orders):
        try:
            items.append(state.receipts.order(order, key_pk=principal.key_pk, now=now))
        except ProblemError as exc:
            exc.extra["order_index"] = index
            raise
    body = encode_body({"count": len(items), "receipts": [i.response for i in items]})
    job = WriteJob(
        items=items,
        key_pk=principal.key_pk,
        idempotency_key=idempotency_key,
        request_sha256=request_digest(raw),
        status_code=201,
        body=body,
    )
    return await _write(state, job)
