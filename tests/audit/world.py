"""A chain built for auditing: registry records made with the contract clients, batches of
receipt leaves committed by the recorder, and their manifests written to a directory, so that
a test can create any condition an auditor must flag."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.actions import (
    ClaimInput,
    EndorsementTerms,
    ProductInput,
    claims_digest,
    currency_code,
    label_hash,
)
from chain.clients.base import relayer_for
from chain.deploy import Deployment
from chain.merkle import root_of_leaf_hashes
from chain.receipts import LEAF_TYPES, ReceiptKind, ReceiptLeaf
from tests.conftest import Accounts

ZERO = bytes(32)


@dataclass
class AuditWorld:
    """Helpers that write to the session's devnet (reverted after each test)."""

    w3: Web3
    deployment: Deployment
    accounts: Accounts
    manifests: Path
    gtin: int = 6_901_234_567_892
    product_id: bytes = b""
    claim_ids: list[bytes] = field(default_factory=list)

    @classmethod
    def make(
        cls, w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
    ) -> AuditWorld:
        """A brand with one product and one origin claim, and a registered anchor."""
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        world = cls(w3, deployment, accounts, manifests)
        admin = world.admin
        admin.provenance.register_brand(accounts.brand.address, "Example Tea Co.")
        brand = world.as_(accounts.brand)
        sent = brand.provenance.register_product(
            ProductInput(world.gtin, "Longjing 250 g", "https://tea.example/p", label_hash("m"))
        )
        world.product_id = sent.value
        world.claim_ids.append(world.claim())
        admin.anchors.register_anchor(accounts.anchor.address, "@tea-master-li")
        return world

    # -- clients ---------------------------------------------------------------------------

    @dataclass(frozen=True)
    class _Clients:
        provenance: Any
        anchors: Any
        ledger: Any

    def as_(self, account: LocalAccount) -> AuditWorld._Clients:
        """Contract clients sending as ``account``."""
        relayer = relayer_for(self.w3, account)
        return AuditWorld._Clients(
            self.deployment.provenance(self.w3, relayer),
            self.deployment.anchors(self.w3, relayer),
            self.deployment.ledger(self.w3, relayer),
        )

    @property
    def admin(self) -> AuditWorld._Clients:
        """The relayer: registries' admin, operator and recorder in the test deployment."""
        return self.as_(self.accounts.relayer)

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    # -- registry records ------------------------------------------------------------------

    def claim(self, valid_for: int = 365 * 86_400, product_id: bytes | None = None) -> bytes:
        """A new claim by the brand; its id."""
        claim = ClaimInput(
            product_id or self.product_id,
            label_hash("origin"),
            os.urandom(32),
            "https://tea.example/origin.pdf",
            self.now() + valid_for,
        )
        sent = self.as_(self.accounts.brand).provenance.add_claim(claim)
        return bytes(sent.value)

    def revoke_claim(self, claim_id: bytes) -> None:
        """The brand revokes a claim."""
        self.as_(self.accounts.brand).provenance.revoke_claim(claim_id)

    def endorse(
        self,
        anchor: LocalAccount | None = None,
        *,
        unit_price: int = 12_800,
        valid_from: int | None = None,
        valid_for: int = 7 * 86_400,
        room: str = "room-1",
    ) -> bytes:
        """An endorsement of the product by ``anchor`` (default: the registered anchor)."""
        now = self.now()
        start = now if valid_from is None else valid_from
        terms = EndorsementTerms(
            product_id=self.product_id,
            claims_digest=claims_digest(self.claim_ids),
            room_id=label_hash(room),
            sponsored=True,
            commission_bps=1_500,
            unit_price=unit_price,
            currency=currency_code("CNY"),
            valid_from=start,
            valid_until=start + valid_for,
        )
        sent = self.as_(anchor or self.accounts.anchor).anchors.endorse(terms)
        return bytes(sent.value)

    def revoke_endorsement(self, endorsement_id: bytes, anchor: LocalAccount | None = None) -> None:
        """The anchor revokes an endorsement."""
        self.as_(anchor or self.accounts.anchor).anchors.revoke_endorsement(endorsement_id)

    def open_session(self, name: str = "live-1", room: str = "room-1") -> bytes:
        """The operator opens a session hosted by the anchor; its id (hash)."""
        session_id = label_hash(name)
        self.admin.anchors.open_session(session_id, label_hash(room), self.accounts.anchor.address)
        return session_id

    def close_session(self, session_id: bytes, displayed: int) -> None:
        """The operator closes a session showing ``displayed`` sales."""
        self.admin.anchors.close_session(session_id, os.urandom(32), displayed)

    # -- receipts --------------------------------------------------------------------------

    def sale(
        self,
        session_id: bytes,
        *,
        endorsement_id: bytes = ZERO,
        quantity: int = 1,
        unit_price: int = 12_800,
        ordered_at: int | None = None,
        receipt_id: bytes | None = None,
    ) -> ReceiptLeaf:
        """A sale leaf in ``session_id`` (ordered now unless told)."""
        return ReceiptLeaf(
            receipt_id=receipt_id or os.urandom(32),
            kind=ReceiptKind.SALE,
            refers_to=ZERO,
            room_id=label_hash("room-1"),
            session_id=session_id,
            product_id=self.product_id,
            endorsement_id=endorsement_id,
            quantity=quantity,
            unit_price=unit_price,
            currency=b"CNY",
            ordered_at=self.now() if ordered_at is None else ordered_at,
            buyer_commitment=os.urandom(32),
        )

    def refund(self, sale: ReceiptLeaf, quantity: int = 1) -> ReceiptLeaf:
        """A refund of ``quantity`` units of ``sale``."""
        return replace(
            sale,
            receipt_id=os.urandom(32),
            kind=ReceiptKind.REFUND,
            refers_to=sale.receipt_id,
            quantity=quantity,
            ordered_at=sale.ordered_at + 60,
        )

    def commit(
        self,
        leaves: Sequence[ReceiptLeaf],
        *,
        tamper: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    ) -> bytes:
        """Commit ``leaves`` as one batch and write its manifest (``tamper`` alters what the
        manifest says after the commit); the root."""
        root = root_of_leaf_hashes([leaf.leaf_hash() for leaf in leaves])
        if len(leaves) == 1:
            self.admin.ledger.record_receipt(root)
        else:
            self.admin.ledger.commit_batch(root, len(leaves))
        rows = [leaf.to_json() for leaf in leaves]
        if tamper is not None:
            rows = tamper(rows)
        self.write_manifest(root, rows)
        return root

    def write_manifest(self, root: bytes, rows: list[dict[str, Any]]) -> Path:
        """``<root>.json`` as ``GET /v1/batches/{root}`` serves it."""
        path = self.manifests / f"0x{root.hex()}.json"
        manifest = {
            "root": "0x" + root.hex(),
            "count": len(rows),
            "leaf_types": list(LEAF_TYPES),
            "leaves": rows,
        }
        path.write_text(json.dumps(manifest), encoding="utf-8")
        return path
