"""Erasure of a buyer's personal data: the platform's buyer id and each order's salt.

A receipt's leaf commits to ``keccak256(abi.encode(salt, keccak(buyer_ref)))``. Once the salt
and the buyer reference are gone from the database, nobody (the platform included) can link
the leaf, which stays on chain for ever, back to the buyer. Nothing else changes: the stored
commitment and leaf hash still prove the receipt, batches still commit, audits still pass.

The salt was also handed out in the order's response, which ``idempotency_keys`` keeps for
retries; those stored responses are rewritten with ``"salt": null``. The same rows keep a
SHA-256 of the order's body, which held the buyer's id: anyone with the database could hash
guessed ids until one matched, so that digest is replaced by a marker too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.db import writer
from api.ingest import ERASED_REQUEST
from api.models import IdempotencyRecord, Receipt

#: Receipt ids looked for in the stored responses per scan of ``idempotency_keys``.
_IDS_PER_SCAN = 64


@dataclass(frozen=True)
class Erasure:
    """What one erasure changed."""

    receipts: int
    stored_responses: int


def erase_buyer(engine: Engine, buyer_ref: str) -> Erasure:
    """Null the buyer reference and the salt of every receipt of ``buyer_ref``, and the salt in
    the stored responses that carried them, in one transaction. Erasing again changes nothing."""
    with Session(writer(engine)) as session:
        ids = list(
            session.exec(select(Receipt.receipt_id).where(col(Receipt.buyer_ref) == buyer_ref))
        )
        if not ids:
            return Erasure(0, 0)
        session.execute(
            update(Receipt)
            .where(col(Receipt.buyer_ref) == buyer_ref)
            .values(buyer_ref=None, salt=None)
        )
        rewritten = _erase_stored_salts(session, set(ids))
        session.commit()
    return Erasure(len(ids), rewritten)


def _erase_stored_salts(session: Session, receipt_ids: set[str]) -> int:
    ordered = sorted(receipt_ids)
    rewritten = 0
    for start in range(0, len(ordered), _IDS_PER_SCAN):
        chunk = ordered[start : start + _IDS_PER_SCAN]
        # Receipt ids are 0x-hex: no LIKE wildcards to escape.
        records = session.exec(
            select(IdempotencyRecord).where(
                or_(*(col(IdempotencyRecord.response).contains(rid) for rid in chunk))
            )
        ).all()
        for record in records:
            response = orjson.loads(record.response)
            if _null_salts(response, receipt_ids):
                record.response = orjson.dumps(response).decode()
                record.request_sha256 = ERASED_REQUEST
                session.add(record)
                rewritten += 1
    return rewritten


def _null_salts(value: Any, receipt_ids: set[str]) -> bool:
    """Set ``salt`` to None in every object of ``value`` describing one of ``receipt_ids``."""
    changed = False
    if isinstance(value, dict):
        if value.get("receipt_id") in receipt_ids and value.get("salt") is not None:
            value["salt"] = None
            changed = True
        for item in value.values():
            changed = _null_salts(item, receipt_ids) or changed
    elif isinstance(value, list):
        for item in value:
            changed = _null_salts(item, receipt_ids) or changed
    return changed
