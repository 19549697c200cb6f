"""The FastAPI application: ``create_app()`` for uvicorn, tests and ``liveproof serve``."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.staticfiles import StaticFiles

from api.body_limit import BodySizeLimit
from api.committer import Committer
from api.config import Settings, get_settings
from api.pages.routes import router as pages_router
from api.problems import install_problem_handlers
from api.rate_limit import EXEMPT, Limit, RateLimit
from api.routes import api_router, root_router
from api.state import AppState, build_state

log = logging.getLogger("liveproof.api")

DESCRIPTION = """
LiveProof links every order placed in a live room to a receipt committed on an Ethereum
chain, and relays brands', certifiers' and anchors' EIP-712 signed actions to the contracts.

* **Auth**: `Authorization: Bearer <API key>`; keys have one role (admin, brand, certifier,
  ingest, auditor) and are created with `liveproof keys create --role ...`. Shopper reads
  (receipts, batches, products) are public.
* **Errors** are RFC 9457 `application/problem+json` with a stable `type`
  (`urn:liveproof:problem:<slug>`); a refused request writes nothing.
* **Idempotency**: `POST /v1/orders`, `/v1/orders/bulk` and `/v1/refunds` need an
  `Idempotency-Key`; a retry with the same key and body gets the first response again.
"""


def start_committer(state: AppState) -> tuple[Committer, threading.Thread]:
    """Run a committer thread; it leads only when it wins the leader lock."""
    committer = Committer(
        state.write_engine,
        state.gateway,
        batch_size=state.settings.batch_size,
        interval=state.settings.batch_interval,
    )
    thread = threading.Thread(target=committer.run_forever, name="committer", daemon=True)
    thread.start()
    return committer, thread


def create_served_app() -> FastAPI:
    """The app as ``liveproof serve`` runs it in each uvicorn worker process."""
    return create_app(freeze_gc=True)


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> FastAPI:
    """Build the app; the database must already be migrated (``liveproof db upgrade``).
    ``freeze_gc``: move what start-up built out of the collector's reach (a worker process
    of its own; not in a test process, where it would keep every earlier test's garbage)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings)
        app.state.liveproof = state
        state.writer.start()
        committer = None
        if settings.run_committer:
            committer, thread = start_committer(state)
            state.committer = committer
        if freeze_gc:
            # What start-up built lives as long as the process: keep it out of the
            # collector's full passes, which otherwise walk it again and again under load.
            gc.freeze()
        try:
            yield
        finally:
            if committer is not None:
                committer.stop()
                thread.join(timeout=30)
            state.writer.stop()
            state.engine.dispose()

    app = FastAPI(
        title="LiveProof API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(api_router)
    app.include_router(root_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(packages=[("api.pages", "static")]), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last, so it runs first: a refused burst costs nothing else.
    app.add_middleware(
        RateLimit,
        keyed=Limit(settings.rate_limit_keyed, settings.rate_burst_keyed),
        anonymous=Limit(settings.rate_limit_anonymous, settings.rate_burst_anonymous),
    )
    app.openapi = lambda: _openapi_with_security(app)  # type: ignore[method-assign]
    return app


def _openapi_with_security(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the Bearer API-key scheme the routes refer to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path, operations in schema.get("paths", {}).items():
            if path in EXEMPT:
                continue
            for operation in operations.values():
                operation.setdefault("responses", {}).setdefault(
                    "429",
                    {
                        "description": "Too many requests from this key or address: retry "
                        "after the `Retry-After` seconds"
                    },
                )
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `liveproof keys create --role ...`",
        }
        app.openapi_schema = schema
    return app.openapi_schema
