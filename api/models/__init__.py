"""SQLModel tables and API schemas, in families: XBase -> XCreate -> X(table) -> XPublic."""

from api.models.anchors import Anchor, Endorsement
from api.models.keys import ApiKey, Role
from api.models.receipts import (
    Batch,
    BatchStatus,
    IdempotencyRecord,
    LeaderLease,
    Outbox,
    Receipt,
    ReceiptStatus,
)
from api.models.registry import Attestation, Brand, Certifier, Claim, Product
from api.models.rooms import LiveSession, Room

__all__ = [
    "Anchor",
    "ApiKey",
    "Attestation",
    "Batch",
    "BatchStatus",
    "Brand",
    "Certifier",
    "Claim",
    "Endorsement",
    "IdempotencyRecord",
    "LeaderLease",
    "LiveSession",
    "Outbox",
    "Product",
    "Receipt",
    "ReceiptStatus",
    "Role",
    "Room",
]
