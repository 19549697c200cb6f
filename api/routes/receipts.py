"""Public receipt reads by receipt code, with the proof bundle once committed."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from sqlmodel import col, select
from starlette.responses import Response

from api.bundles import proof_bundle, receipt_view
from api.deps import SessionDep, StateDep
from api.models import Batch, Receipt
from api.models.receipts import ReceiptPublic
from api.problems import ProblemError
from api.qr import qr_response, receipt_page
from api.receipt_codes import decode

router = APIRouter(prefix="/receipts", tags=["receipts"])
log = logging.getLogger("liveproof.api")


def _load(session: SessionDep, code: str) -> tuple[Receipt, Batch | None]:
    receipt_id = "0x" + decode(code).hex()
    receipt = session.exec(select(Receipt).where(col(Receipt.receipt_id) == receipt_id)).first()
    if receipt is None:
        raise ProblemError(404, "receipt-not-found", "No such receipt", code)
    batch = session.get(Batch, receipt.batch_root) if receipt.batch_root else None
    return receipt, batch


@router.get(
    "/{code}",
    response_model=ReceiptPublic,
    summary="A receipt: pending or committed, with batch, block, transaction and proof",
    responses={404: {"description": "No such receipt"}},
)
def get_receipt(code: str, session: SessionDep) -> dict[str, Any]:
    """Anyone holding the code may read the receipt (it carries no personal data)."""
    receipt, batch = _load(session, code)
    return receipt_view(receipt, batch)


@router.get(
    "/{code}/proof",
    summary="The receipt's proof bundle (liveproof-receipt-proof/1)",
    responses={
        404: {"description": "No such receipt"},
        409: {"description": "Not committed yet"},
        500: {
            "description": "`ledger-inconsistent`: the platform's database no longer matches "
            "the committed tree (the detail names what disagrees); no proof is served"
        },
    },
)
def get_proof_bundle(code: str, session: SessionDep) -> dict[str, Any]:
    """A JSON document anyone can check against the chain without this API; served only while
    the database still matches the committed tree."""
    receipt, batch = _load(session, code)
    if batch is None or batch.status != "committed":
        raise ProblemError(
            409, "receipt-pending", "The receipt is not committed yet", "try again in a moment"
        )
    leaves = session.exec(
        select(Receipt.leaf_hash).where(col(Receipt.batch_root) == batch.root)
    ).all()
    # A database that no longer matches the tree raises LedgerInconsistencyError: answered
    # 500 ledger-inconsistent by the app's problem handlers, with no proof served.
    return proof_bundle(receipt, batch, leaves)


@router.get(
    "/{code}/qr.{fmt}",
    summary="QR code (png or svg) of the receipt's page URL",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/svg+xml": {}}},
        404: {"description": "No such receipt or format"},
    },
)
def get_receipt_qr(code: str, fmt: str, session: SessionDep, state: StateDep) -> Response:
    """The QR code a shopper scans to open this receipt's page."""
    _load(session, code)
    return qr_response(receipt_page(state.settings.public_url, code.strip().lower()), fmt)
