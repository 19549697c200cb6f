"""Verified sales: units in receipts committed on chain, refunds netted, pending counted apart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from api.models import Endorsement, LiveSession, Receipt
from api.models.receipts import ReceiptStatus
from chain.receipts import ReceiptKind


@dataclass
class Sales:
    """Units sold and refunded, committed on chain or still pending."""

    sold: int = 0
    refunded: int = 0
    orders: int = 0
    pending_sold: int = 0
    pending_refunded: int = 0

    @property
    def net(self) -> int:
        """Verified net units: committed sales minus committed refunds."""
        return self.sold - self.refunded

    @property
    def refund_rate(self) -> float | None:
        """Committed refunded units over committed sold units; None with no sales."""
        return self.refunded / self.sold if self.sold else None

    def add(self, kind: int, status: str, units: int, count: int) -> None:
        """Count one group of receipts."""
        committed = status == ReceiptStatus.COMMITTED
        if kind == ReceiptKind.SALE:
            if committed:
                self.sold += units
                self.orders += count
            else:
                self.pending_sold += units
        elif committed:
            self.refunded += units
        else:
            self.pending_refunded += units


def _tally(rows: Iterable[Any]) -> dict[str, Sales]:
    """Group ``(key, kind, status, units, count)`` rows into Sales per key."""
    out: dict[str, Sales] = defaultdict(Sales)
    for key, kind, status, units, count in rows:
        out[str(key)].add(int(kind), str(status), int(units or 0), int(count))
    return dict(out)


def _grouped(session: Session, key: Any, *where: Any) -> dict[str, Sales]:
    query = (
        sa_select(
            key,
            col(Receipt.kind),
            col(Receipt.status),
            func.sum(col(Receipt.quantity)),
            func.count(),
        )
        .join(LiveSession, col(LiveSession.session_id) == col(Receipt.session_id))
        .where(*where)
        .group_by(key, col(Receipt.kind), col(Receipt.status))
    )
    return _tally(session.execute(query).all())


def product_sales_by_anchor(session: Session, product_id: str) -> dict[str, Sales]:
    """A product's sales per anchor (the host of the session the order was placed in)."""
    return _grouped(session, col(LiveSession.anchor), col(Receipt.product_id) == product_id)


def anchor_sales_by_product(session: Session, anchor: str) -> dict[str, Sales]:
    """An anchor's sales per product id, over every session they hosted."""
    return _grouped(session, col(Receipt.product_id), col(LiveSession.anchor) == anchor)


def anchor_sales_by_session(session: Session, anchor: str) -> dict[str, Sales]:
    """An anchor's sales per live session id."""
    return _grouped(session, col(Receipt.session_id), col(LiveSession.anchor) == anchor)


def total(parts: Iterable[Sales]) -> Sales:
    """The sum of several tallies."""
    out = Sales()
    for part in parts:
        out.sold += part.sold
        out.refunded += part.refunded
        out.orders += part.orders
        out.pending_sold += part.pending_sold
        out.pending_refunded += part.pending_refunded
    return out


@dataclass(frozen=True)
class PricePromise:
    """How an anchor's committed sales under endorsements compare with the promised price."""

    sales: int
    kept: int

    @property
    def rate(self) -> float | None:
        """Share of sales at or below the promised price; None with no such sales."""
        return self.kept / self.sales if self.sales else None


def price_promise(session: Session, anchor: str) -> PricePromise:
    """Committed sales under the anchor's endorsements, and how many kept the promised price
    (same currency, unit price at or below the promise)."""
    kept = case(
        (
            (col(Receipt.unit_price) <= col(Endorsement.unit_price))
            & (col(Receipt.currency) == col(Endorsement.currency)),
            1,
        ),
        else_=0,
    )
    query = (
        select(func.count(), func.coalesce(func.sum(kept), 0))
        .select_from(Receipt)
        .join(Endorsement, col(Endorsement.endorsement_id) == col(Receipt.endorsement_id))
        .where(
            col(Endorsement.anchor) == anchor,
            col(Receipt.kind) == ReceiptKind.SALE,
            col(Receipt.status) == ReceiptStatus.COMMITTED,
        )
    )
    count, kept_count = session.exec(query).one()
    return PricePromise(int(count), int(kept_count))
