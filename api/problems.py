"""RFC 9457 problem details: every error a client sees is ``application/problem+json``.

``type`` is a stable URN (``urn:liveproof:problem:<slug>``) that clients can switch on; no
stack trace or internal message ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from chain.contract_errors import ContractError
from chain.errors import LedgerInconsistencyError, RpcUnavailableError

log = logging.getLogger("liveproof.api")

PROBLEM_JSON = "application/problem+json"

_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    428: "precondition-required",
    429: "too-many-requests",
    503: "unavailable",
}


#: The JSON schema of what :func:`problem_response` sends, for the OpenAPI document. Problems
#: may carry more members (``errors``, ``order_index``, ``contract_error``, ``checks``, ...).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}


def problem_type(slug: str) -> str:
    """The stable ``type`` URI of a problem slug."""
    return f"urn:liveproof:problem:{slug}"


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail or title}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A ``problem+json`` response."""
    body: dict[str, Any] = {"type": problem_type(slug), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _from_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


def _from_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers 400 for a body that is not UTF-8. A JSON body must be UTF-8 (RFC
        # 8259), so it is as malformed as any other bad JSON: 422, as the routes that parse
        # their body by hand (orders) and the OpenAPI document say.
        return _validation_problem(
            request,
            [{"loc": ["body"], "msg": "the body is not UTF-8 JSON", "type": "json_invalid"}],
        )
    slug = _HTTP_SLUGS.get(exc.status_code, "error")
    title = slug.replace("-", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(
        exc.status_code,
        slug,
        title,
        detail,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors as a problem's ``errors`` entries: where, what and which kind."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]


def _from_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    from api.deps import key_problem  # deps builds on this module

    unauthorised = key_problem(request)
    if unauthorised is not None:
        return _from_problem(request, unauthorised)
    return _validation_problem(request, validation_errors(exc.errors()))


def _validation_problem(request: Request, errors: list[dict[str, Any]]) -> Response:
    return problem_response(
        422,
        "validation-failed",
        "Request validation failed",
        f"{len(errors)} problem(s) with the request",
        instance=request.url.path,
        errors=errors,
    )


def _from_contract(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ContractError)
    name = type(exc).__name__
    args = {k: ("0x" + v.hex()) if isinstance(v, bytes) else v for k, v in exc.error_args.items()}
    return problem_response(
        409 if not name.startswith(("Invalid", "Not", "Signature")) else 422,
        "contract-rejected",
        "The contract refused the action",
        str(exc),
        instance=request.url.path,
        contract_error=name,
        contract_args=args,
    )


def _from_rpc(request: Request, _exc: Exception) -> Response:
    return problem_response(
        503,
        "chain-unavailable",
        "The chain cannot be reached",
        "Try again shortly",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


def _from_inconsistency(request: Request, exc: Exception) -> Response:
    # The operator must hear of it, but it is no crash: one line, no traceback.
    log.error("ledger-inconsistent on %s: %s", request.url.path, exc)
    return problem_response(
        500,
        "ledger-inconsistent",
        "The platform's records no longer match the committed tree",
        str(exc),
        instance=request.url.path,
    )


def _from_anything(request: Request, _exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "internal-error", "Internal server error", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through problem+json."""
    app.add_exception_handler(ProblemError, _from_problem)
    app.add_exception_handler(StarletteHTTPException, _from_http)
    app.add_exception_handler(RequestValidationError, _from_validation)
    app.add_exception_handler(ContractError, _from_contract)
    app.add_exception_handler(RpcUnavailableError, _from_rpc)
    app.add_exception_handler(LedgerInconsistencyError, _from_inconsistency)
    app.add_exception_handler(Exception, _from_anything)
