"""The registries' history, rebuilt from their events: who was an anchor when, every
endorsement, claim and live session, as an auditor needs them to judge receipts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chain.events import ChainEvent

#: The registry events an audit reads (the ledger's come batch by batch).
REGISTRY_EVENTS = (
    "ProvenanceRegistry.BrandRegistered",
    "ProvenanceRegistry.CertifierRegistered",
    "ProvenanceRegistry.ProductRegistered",
    "ProvenanceRegistry.ClaimAdded",
    "ProvenanceRegistry.ClaimRevoked",
    "ProvenanceRegistry.ClaimAttested",
    "ProvenanceRegistry.AttestationRevoked",
    "AnchorRegistry.AnchorRegistered",
    "AnchorRegistry.AnchorRemoved",
    "AnchorRegistry.EndorsementRecorded",
    "AnchorRegistry.EndorsementRevoked",
    "AnchorRegistry.SessionOpened",
    "AnchorRegistry.SessionClosed",
)


@dataclass
class Product:
    """A registered product."""

    product_id: bytes
    brand: str
    gtin: int
    name: str
    block: int
    tx_hash: str


@dataclass
class Claim:
    """A claim about a product."""

    claim_id: bytes
    product_id: bytes
    issuer: str
    claim_type: bytes
    valid_until: int
    block: int
    tx_hash: str
    revoked_at: int | None = None


@dataclass
class Endorsement:
    """An anchor's endorsement of a product, with its terms."""

    endorsement_id: bytes
    anchor: str
    product_id: bytes
    claims_digest: bytes
    room_id: bytes
    sponsored: bool
    commission_bps: int
    unit_price: int
    currency: bytes
    valid_from: int
    valid_until: int
    block: int
    tx_hash: str
    revoked_at: int | None = None
    #: The timestamp of the block that recorded it (filled in by an audit).
    recorded_at: int = 0


@dataclass
class LiveSession:
    """A live session, opened and perhaps closed."""

    session_id: bytes
    room_id: bytes
    anchor: str
    opened_at: int
    block: int
    tx_hash: str
    closed_at: int | None = None
    displayed_sales: int | None = None
    close_tx: str | None = None


@dataclass
class Attestation:
    """A certifier's attestation of a claim."""

    attestation_id: bytes
    claim_id: bytes
    certifier: str
    block: int
    tx_hash: str
    revoked_at: int | None = None


@dataclass
class Registry:
    """Everything the registries recorded, keyed by id."""

    brands: dict[str, str] = field(default_factory=dict)
    certifiers: dict[str, str] = field(default_factory=dict)
    products: dict[bytes, Product] = field(default_factory=dict)
    claims: dict[bytes, Claim] = field(default_factory=dict)
    claims_of: dict[bytes, list[Claim]] = field(default_factory=dict)
    attestations: dict[bytes, Attestation] = field(default_factory=dict)
    #: Per anchor address, the block spans during which it was registered: [from, to).
    anchor_spans: dict[str, list[list[int | None]]] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)
    endorsements: dict[bytes, Endorsement] = field(default_factory=dict)
    #: Endorsements in event order, with whether the signer was an anchor at that block.
    endorsement_signers: list[tuple[Endorsement, bool]] = field(default_factory=list)
    sessions: dict[bytes, LiveSession] = field(default_factory=dict)

    def anchor_at(self, address: str, block: int) -> bool:
        """True when ``address`` was a registered anchor at ``block``."""
        for start, end in self.anchor_spans.get(address, []):
            assert start is not None
            if start <= block and (end is None or block < end):
                return True
        return False

    def apply(self, event: ChainEvent) -> None:
        """Fold one registry event into the state."""
        a = event.args
        name = event.name
        if name == "BrandRegistered":
            self.brands[a["brand"]] = a["name"]
        elif name == "CertifierRegistered":
            self.certifiers[a["certifier"]] = a["name"]
        elif name == "ProductRegistered":
            self.products[a["productId"]] = Product(
                a["productId"], a["brand"], a["gtin"], a["name"], event.block_number, event.tx_hash
            )
        elif name == "ClaimAdded":
            claim = Claim(
                a["claimId"],
                a["productId"],
                a["issuer"],
                a["claimType"],
                a["validUntil"],
                event.block_number,
                event.tx_hash,
            )
            self.claims[claim.claim_id] = claim
            self.claims_of.setdefault(claim.product_id, []).append(claim)
        elif name == "ClaimRevoked":
            if a["claimId"] in self.claims:
                self.claims[a["claimId"]].revoked_at = a["revokedAt"]
        elif name == "ClaimAttested":
            self.attestations[a["attestationId"]] = Attestation(
                a["attestationId"], a["claimId"], a["certifier"], event.block_number, event.tx_hash
            )
        elif name == "AttestationRevoked":
            if a["attestationId"] in self.attestations:
                self.attestations[a["attestationId"]].revoked_at = a["revokedAt"]
        elif name == "AnchorRegistered":
            self.anchor_spans.setdefault(a["anchor"], []).append([event.block_number, None])
            self.handles[a["anchor"]] = a["handle"]
        elif name == "AnchorRemoved":
            spans = self.anchor_spans.get(a["anchor"], [])
            if spans and spans[-1][1] is None:
                spans[-1][1] = event.block_number
        elif name == "EndorsementRecorded":
            self._endorsed(event)
        elif name == "EndorsementRevoked":
            if a["endorsementId"] in self.endorsements:
                self.endorsements[a["endorsementId"]].revoked_at = a["revokedAt"]
        elif name == "SessionOpened":
            self.sessions[a["sessionId"]] = LiveSession(
                a["sessionId"], a["roomId"], a["anchor"], a["openedAt"], event.block_number,
                event.tx_hash,
            )  # fmt: skip
        elif name == "SessionClosed":
            live = self.sessions.get(a["sessionId"])
            if live is not None:
                live.closed_at = a["closedAt"]
                live.displayed_sales = a["displayedSales"]
                live.close_tx = event.tx_hash

    def _endorsed(self, event: ChainEvent) -> None:
        a = event.args
        t = a["terms"]
        endorsement = Endorsement(
            endorsement_id=a["endorsementId"],
            anchor=a["anchor"],
            product_id=a["productId"],
            claims_digest=t["claimsDigest"],
            room_id=t["roomId"],
            sponsored=t["sponsored"],
            commission_bps=t["commissionBps"],
            unit_price=t["unitPrice"],
            currency=t["currency"],
            valid_from=t["validFrom"],
            valid_until=t["validUntil"],
            block=event.block_number,
            tx_hash=event.tx_hash,
        )
        self.endorsements[endorsement.endorsement_id] = endorsement
        # Events arrive in log order, so "registered now" is exact even when the anchor was
        # removed in the same block, before or after this endorsement.
        spans = self.anchor_spans.get(endorsement.anchor, [])
        signer_ok = bool(spans) and spans[-1][1] is None
        self.endorsement_signers.append((endorsement, signer_ok))

    def promises(self) -> dict[tuple[str, bytes, bytes], list[Endorsement]]:
        """Endorsements by (anchor, product, room): the promises that may bind a sale by that
        anchor's session of that product in that room, whether or not the sale names them."""
        found: dict[tuple[str, bytes, bytes], list[Endorsement]] = {}
        for e in self.endorsements.values():
            found.setdefault((e.anchor, e.product_id, e.room_id), []).append(e)
        return found

    def anchor_times(
        self, time_of: Callable[[int], int]
    ) -> dict[str, list[tuple[int, int | None]]]:
        """Per anchor address, the time spans (block timestamps, ``[from, to)``) during which it
        was registered; ``time_of`` gives a block's timestamp."""
        return {
            anchor: [
                (time_of(start), None if end is None else time_of(end))
                for start, end in spans
                if start is not None
            ]
            for anchor, spans in self.anchor_spans.items()
        }

    def claims_before(self, product_id: bytes, block: int) -> list[Claim]:
        """The product's claims added at or before ``block``."""
        return [c for c in self.claims_of.get(product_id, []) if c.block <= block]

    @classmethod
    def of(cls, events: Iterable[ChainEvent]) -> Registry:
        """The state after ``events`` (in chain order)."""
        registry = cls()
        for event in events:
            registry.apply(event)
        return registry
