"""All routers: one module per resource, gathered under ``/v1``."""

from fastapi import APIRouter

from api.problem_docs import document_problems
from api.routes import (
    anchors,
    attestations,
    batches,
    brands,
    certifiers,
    chain_info,
    claims,
    endorsements,
    health,
    orders,
    products,
    receipts,
    refunds,
    rooms,
    sessions,
)

api_router = APIRouter(prefix="/v1")
for module in (
    rooms,
    sessions,
    orders,
    refunds,
    receipts,
    batches,
    brands,
    certifiers,
    chain_info,
    products,
    claims,
    attestations,
    anchors,
    endorsements,
):
    # Every error is a problem document; say so in the OpenAPI document.
    document_problems(module.router)
    api_router.include_router(module.router)

document_problems(health.router)
root_router = APIRouter()
root_router.include_router(health.router)

__all__ = ["api_router", "root_router"]
