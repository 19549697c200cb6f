"""``/healthz`` (the process answers), ``/readyz`` (database, chain, contracts) and ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import StateDep
from api.metrics import DatabaseCollector
from api.migrate import current_revision, head_revision
from api.problems import problem_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ``ok`` while the process runs."""
    return {"status": "ok"}


def _readiness(state: StateDep) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(state.settings.database_url, state.engine)
        head = head_revision()
        checks["database"] = "ok" if revision == head else f"schema at {revision}, need {head}"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks.update(state.gateway.readiness())
    return checks


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated, chain reachable, contracts deployed",
    responses={503: {"description": "Something is not ready; the problem lists the checks"}},
)
async def readyz(state: StateDep) -> Any:
    """200 with the checks when all are ``ok``, else a 503 problem listing them."""
    checks = await run_in_threadpool(_readiness, state)
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "checks": checks}
    return problem_response(
        503,
        "not-ready",
        "Not ready",
        "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"),
        instance="/readyz",
        checks=checks,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Orders accepted, receipts pending, batches committed, commit latency."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(state.engine))
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
