"""``POST /v1/orders`` and ``POST /v1/orders/bulk``: orders become pending receipts at once."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import SQLModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth import Principal, forbidden
from api.ingest import WriteJob, encode_body, request_digest
from api.models import Role
from api.models.receipts import BulkAccepted, BulkOrderCreate, OrderCreate, ReceiptAccepted
from api.problems import ProblemError, validation_errors
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


#: OpenAPI description of what the hot routes read by hand (see hot_path_context).
HOT_PATH_PARAMETERS = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "Unique per request: a retry with the same key gets the same response",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "example": "9b1f6c0e-7d7e-4d55-9f0e-3f1b2a7c4d21",
    }
]
#: The role is named in the requirement (OpenAPI 3.1 allows role names for any scheme type):
#: these routes check it by hand, so no dependency says it.
INGEST_SECURITY: list[dict[str, list[str]]] = [{"apiKey": [Role.INGEST.value]}]

ORDER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or bad API key"},
    403: {"description": "Not an ingest key"},
    404: {"description": "Room unknown or owned by another key"},
    409: {"description": "Session closed, or order_ref reused in the room"},
    422: {"description": "Invalid order, or Idempotency-Key reused with another body"},
    503: {"description": "Too many receipts pending (see Retry-After)"},
}


def hand_parsed_body(model: type[SQLModel], example: Any) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that parses its body by hand, with the model's
    schema inline: FastAPI puts in ``components`` only the models of bodies it parses itself,
    so a ``$ref`` there would point at nothing. Nested models are inlined too (their
    ``#/$defs/...`` references would resolve against the whole document, not this schema)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return inline({**defs[ref.removeprefix("#/$defs/")], **siblings})
        return {key: inline(value) for key, value in node.items()}

    return {
        "required": True,
        "content": {"application/json": {"schema": inline(schema), "example": example}},
    }


def hot_path_context(request: Request) -> tuple[AppState, Principal, str]:
    """State, ingest principal and Idempotency-Key of an order request, read by hand.

    The order routes are the hot path: FastAPI's dependency solving costs more per request
    than everything else they do, so they check the same things directly."""
    state: AppState = request.app.state.liveproof
    principal = state.keys.verify(request.headers.get("authorization"))
    if principal.role is not Role.INGEST:
        raise forbidden(f"this needs a key with role ingest, not {principal.role.value}")
    key = request.headers.get("idempotency-key")
    if not key or len(key) > 255:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "Idempotency-Key"),
                    "msg": "an Idempotency-Key header of 1 to 255 characters is required",
                    "type": "missing" if not key else "string_too_long",
                }
            ]
        )
    return state, principal, key


def _check_capacity(state: AppState, adding: int = 1) -> None:
    if state.pending.value() + adding > state.settings.max_pending:
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


def _parse_bulk(raw: bytes) -> BulkOrderCreate:
    """Validate a bulk body; an invalid order is named by its ``order_index``."""
    try:
        return BulkOrderCreate.model_validate_json(raw)
    except ValidationError as exc:
        errors = validation_errors([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        indexes = [
            e["loc"][2]
            for e in errors
            if e["loc"][1:2] == ["orders"] and len(e["loc"]) > 2 and isinstance(e["loc"][2], int)
        ]
        if not indexes:
            raise RequestValidationError(errors) from None
        raise ProblemError(
            422,
            "validation-failed",
            "Request validation failed",
            f"order {min(indexes)} is invalid ({len(errors)} problem(s) with the request)",
            errors=errors,
            order_index=min(indexes),
        ) from None


async def _replay_or_raise(
    state: AppState, principal: Principal, idempotency_key: str, raw: bytes, exc: ProblemError
) -> Response:
    """A request refused before writing may retry one accepted earlier (the session has closed
    or the queue filled up since): the retry still gets the first response."""
    stored = await run_in_threadpool(
        state.writer.stored_response, principal.key_pk, idempotency_key, request_digest(raw)
    )
    if stored is None:
        raise exc
    return Response(stored[1], status_code=stored[0], media_type="application/json")


async def _write(state: AppState, job: WriteJob) -> Response:
    status, body = await asyncio.wrap_future(state.writer.submit(job))
    if status == 503:  # pragma: no cover - the writer never stores 503s
        raise ProblemError(503, "unavailable", "Try again")
    if status == 201:
        state.pending.add(len(job.items))
    if state.committer is not None and any(item.immediate for item in job.items):
        state.committer.wake()
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
        "parameters": HOT_PATH_PARAMETERS,
        "security": INGEST_SECURITY,
        "requestBody": hand_parsed_body(OrderCreate, _ORDER_EXAMPLE),
    },
    responses=ORDER_ERRORS,
)
async def create_order(request: Request) -> Response:
    """Accept one order (idempotent per ``Idempotency-Key``)."""
    state, principal, idempotency_key = hot_path_context(request)
    raw = await request.body()
    order = parse_body(OrderCreate, raw)
    try:
        _check_capacity(state)
        prepared = state.receipts.order(order, key_pk=principal.key_pk, now=time.time())
    except ProblemError as exc:
        return await _replay_or_raise(state, principal, idempotency_key, raw, exc)
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
        "parameters": HOT_PATH_PARAMETERS,
        "security": INGEST_SECURITY,
        "requestBody": hand_parsed_body(BulkOrderCreate, {"orders": [_ORDER_EXAMPLE]}),
    },
    responses={
        **ORDER_ERRORS,
        422: {
            "description": "An invalid order (named by `order_index`), more orders than "
            "allowed, or Idempotency-Key reused with another body"
        },
    },
)
async def create_orders_bulk(request: Request) -> Response:
    """Accept many orders in one request and one transaction."""
    state, principal, idempotency_key = hot_path_context(request)
    raw = await request.body()
    bulk = _parse_bulk(raw)
    limit = state.settings.max_bulk_orders
    if len(bulk.orders) > limit:
        raise ProblemError(
            422, "too-many-orders", "Too many orders in one request", f"at most {limit}"
        )
    now = time.time()
    items = []
    try:
        _check_capacity(state, len(bulk.orders))
        for index, order in enumerate(bulk.orders):
            try:
                items.append(state.receipts.order(order, key_pk=principal.key_pk, now=now))
            except ProblemError as exc:
                exc.extra["order_index"] = index
                raise
    except ProblemError as exc:
        return await _replay_or_raise(state, principal, idempotency_key, raw, exc)
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
