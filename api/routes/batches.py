"""Public batch listing and manifests: every leaf of a batch, so anyone can rebuild its root."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.bundles import leaf_of
from api.deps import Limit, SessionDep
from api.models import Batch, Receipt
from api.models.receipts import BatchManifest, BatchPublic
from api.problems import ProblemError
from chain.receipts import LEAF_TYPES

router = APIRouter(prefix="/batches", tags=["batches"])


@router.get("", response_model=list[BatchPublic], summary="Committed and sealed batches")
def list_batches(
    session: SessionDep,
    limit: Limit = 100,
    after: Annotated[float | None, Query(description="sealed_at of the last batch seen")] = None,
) -> list[Batch]:
    """Batches in the order they were sealed."""
    query = select(Batch).order_by(col(Batch.sealed_at)).limit(limit)
    if after is not None:
        query = query.where(col(Batch.sealed_at) > after)
    return list(session.exec(query))


@router.get(
    "/{root}",
    response_model=BatchManifest,
    summary="A batch's manifest: every leaf",
    responses={404: {"description": "No such batch"}},
)
def get_batch(root: str, session: SessionDep) -> dict[str, Any]:
    """The batch and all its leaves (leaf v1 JSON, no personal data)."""
    batch = session.get(Batch, root.lower())
    if batch is None:
        raise ProblemError(404, "batch-not-found", "No such batch", root)
    receipts = session.exec(
        select(Receipt).where(col(Receipt.batch_root) == batch.root).order_by(col(Receipt.id))
    ).all()
    return {
        **batch.model_dump(),
        "leaf_types": list(LEAF_TYPES),
        "leaves": [leaf_of(r).to_json() for r in receipts],
    }
