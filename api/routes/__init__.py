"""All routers: one module per resource, gathered under ``/v1``."""

from fastapi import APIRouter

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
    api_router.include_router(module.router)

root_router = APIRouter()
root_router.include_router(health.router)

__all__ = ["api_router", "root_router"]
