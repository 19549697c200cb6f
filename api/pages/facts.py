"""What each page shows, read from the database: products, receipts and anchors."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from api.bundles import receipt_view
from api.chain_records import checksum
from api.models import (
    Anchor,
    Attestation,
    Batch,
    Brand,
    Certifier,
    Claim,
    Endorsement,
    LiveSession,
    Product,
    Receipt,
)
from api.pages.sales import (
    PricePromise,
    Sales,
    anchor_sales_by_product,
    anchor_sales_by_session,
    price_promise,
    product_sales_by_anchor,
    total,
)
from api.receipt_codes import encode as encode_code

ZERO32 = "0x" + "00" * 32
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def claim_state(claim: Claim, now: float) -> str:
    """``revoked``, ``expired`` or ``valid``."""
    if claim.revoked_tx is not None:
        return "revoked"
    return "expired" if claim.valid_until < now else "valid"


def endorsement_state(endorsement: Endorsement, now: float) -> str:
    """``revoked``, ``expired``, ``pending`` (not yet valid) or ``active``."""
    if endorsement.revoked_tx is not None:
        return "revoked"
    if endorsement.valid_until < now:
        return "expired"
    return "pending" if endorsement.valid_from > now else "active"


@dataclass
class ClaimFacts:
    """A claim, its state and the attestations on it."""

    claim: Claim
    state: str
    attestations: list[tuple[Attestation, str]]


@dataclass
class EndorsementFacts:
    """An endorsement with its anchor's handle and its state."""

    endorsement: Endorsement
    handle: str
    state: str
    product: Product | None = None


@dataclass
class ProductFacts:
    """Everything the product page shows."""

    product: Product
    brand: Brand | None
    claims: list[ClaimFacts]
    endorsements: list[EndorsementFacts]
    sales: Sales
    sales_by_anchor: dict[str, Sales]


def product_by_gtin(session: Session, gtin14: str) -> Product | None:
    """The product with this 14-digit GTIN, or None."""
    return session.exec(select(Product).where(col(Product.gtin) == gtin14)).first()


def product_facts(session: Session, product: Product, now: float | None = None) -> ProductFacts:
    """Brand, claims with attestations, endorsements in force and verified sales."""
    now = time.time() if now is None else now
    claims = list(
        session.exec(
            select(Claim)
            .where(col(Claim.product_id) == product.product_id)
            .order_by(col(Claim.block_number), col(Claim.claim_id))
        )
    )
    names = {c.address: c.name for c in session.exec(select(Certifier))}
    attestations: dict[str, list[tuple[Attestation, str]]] = {}
    if claims:
        rows = session.exec(
            select(Attestation)
            .where(col(Attestation.claim_id).in_([c.claim_id for c in claims]))
            .order_by(col(Attestation.block_number))
        )
        for row in rows:
            attestations.setdefault(row.claim_id, []).append(
                (row, names.get(row.certifier, row.certifier))
            )
    endorsed = session.exec(
        select(Endorsement, Anchor.handle)
        .join(Anchor, col(Anchor.address) == col(Endorsement.anchor))
        .where(col(Endorsement.product_id) == product.product_id)
        .order_by(col(Endorsement.block_number).desc())
    ).all()
    in_force = [
        EndorsementFacts(e, handle, endorsement_state(e, now))
        for e, handle in endorsed
        if endorsement_state(e, now) == "active"
    ]
    by_anchor = product_sales_by_anchor(session, product.product_id)
    return ProductFacts(
        product=product,
        brand=session.get(Brand, product.brand),
        claims=[
            ClaimFacts(c, claim_state(c, now), attestations.get(c.claim_id, [])) for c in claims
        ],
        endorsements=in_force,
        sales=total(by_anchor.values()),
        sales_by_anchor=by_anchor,
    )


@dataclass
class ReceiptFacts:
    """Everything the receipt page shows (no personal data)."""

    code: str
    receipt: Receipt
    view: dict[str, Any]
    batch: Batch | None
    product: Product | None
    live_session: LiveSession | None
    endorsement: Endorsement | None
    sale_code: str | None

    @property
    def committed(self) -> bool:
        """True once the receipt's batch is on chain."""
        return self.view["tx_hash"] is not None


def receipt_facts(session: Session, receipt_id: str) -> ReceiptFacts | None:
    """The receipt with this id and what it refers to, or None."""
    receipt = session.exec(select(Receipt).where(col(Receipt.receipt_id) == receipt_id)).first()
    if receipt is None:
        return None
    batch = session.get(Batch, receipt.batch_root) if receipt.batch_root else None
    view = receipt_view(receipt, batch)
    endorsement = (
        session.get(Endorsement, receipt.endorsement_id)
        if receipt.endorsement_id != ZERO32
        else None
    )
    sale_code = None
    if receipt.refers_to != ZERO32:
        sale_code = encode_code(bytes.fromhex(receipt.refers_to[2:]))
    return ReceiptFacts(
        code=view["receipt_code"],
        receipt=receipt,
        view=view,
        batch=batch,
        product=session.get(Product, receipt.product_id),
        live_session=session.get(LiveSession, receipt.session_id),
        endorsement=endorsement,
        sale_code=sale_code,
    )


@dataclass
class SessionFacts:
    """A live session of an anchor with its displayed and verified sales."""

    live: LiveSession
    sales: Sales

    @property
    def overstated(self) -> int:
        """Units displayed beyond the verified net sales (0 when honest or still open)."""
        if self.live.displayed_sales is None:
            return 0
        return max(0, self.live.displayed_sales - self.sales.net)


@dataclass
class AnchorFacts:
    """Everything the anchor profile shows."""

    anchor: Anchor
    endorsements: list[EndorsementFacts]
    sales_by_product: list[tuple[Product | None, Sales]]
    sales: Sales
    promise: PricePromise
    sessions: list[SessionFacts] = field(default_factory=list)


def anchor_facts(session: Session, handle: str, now: float | None = None) -> AnchorFacts | None:
    """The anchor with this handle (case-insensitive, ``@`` optional) or address, and their
    record."""
    now = time.time() if now is None else now
    anchor = session.exec(select(Anchor).where(col(Anchor.handle) == handle)).first()
    if anchor is None and _ADDRESS.match(handle):
        anchor = session.get(Anchor, checksum(handle))
    if anchor is None:
        spellings = {handle.lower(), "@" + handle.lower().lstrip("@")}
        anchor = session.exec(
            select(Anchor).where(func.lower(col(Anchor.handle)).in_(sorted(spellings)))
        ).first()
    if anchor is None:
        return None
    rows = session.exec(
        select(Endorsement)
        .where(col(Endorsement.anchor) == anchor.address)
        .order_by(col(Endorsement.block_number).desc())
    ).all()
    by_product = anchor_sales_by_product(session, anchor.address)
    wanted = {e.product_id for e in rows} | set(by_product)
    products = {
        p.product_id: p
        for p in session.exec(select(Product).where(col(Product.product_id).in_(sorted(wanted))))
    }
    endorsements = [
        EndorsementFacts(e, anchor.handle, endorsement_state(e, now), products.get(e.product_id))
        for e in rows
    ]
    by_session = anchor_sales_by_session(session, anchor.address)
    lives = session.exec(
        select(LiveSession)
        .where(col(LiveSession.anchor) == anchor.address)
        .order_by(col(LiveSession.opened_at).desc())
    )
    return AnchorFacts(
        anchor=anchor,
        endorsements=endorsements,
        sales_by_product=sorted(
            ((products.get(pid), sales) for pid, sales in by_product.items()),
            key=lambda item: -item[1].net,
        ),
        sales=total(by_product.values()),
        promise=price_promise(session, anchor.address),
        sessions=[SessionFacts(s, by_session.get(s.session_id, Sales())) for s in lives],
    )
