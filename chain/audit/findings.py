"""What an audit checked and what it found: stable check names, findings and the JSON report."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Final

#: Every check ``audit chain`` runs, by stable name, with what it asserts.
CHAIN_CHECKS: Final = {
    "batch-manifest": "every committed root has a readable manifest of receipt leaves",
    "batch-count": "each manifest holds as many leaves as the chain's commit says",
    "batch-root": "each manifest's leaves rebuild the committed Merkle root",
    "endorsement-signer": "each endorsement's signer was a registered anchor at its block",
    "sale-endorsement": "each sale's named endorsement was recorded before the sale's commit, "
    "is for its product, room and session host, and was in force when it was ordered",
    "sale-claims": "no sale ran under a revoked or expired claim of its product",
    "sale-price": "no sale above any promise in force for its product, room and host "
    "(same currency), named by the sale or not",
    "promise-omitted": "no sale names no endorsement while one of its host's promises for its "
    "product and room is in force",
    "receipt-room": "each receipt's room is its live session's room",
    "receipt-product": "each receipt's product was registered by the block that committed it",
    "sale-anchor": "each sale's session host was a registered anchor when it was ordered",
    "refund-match": "each refund refers to a committed sale",
    "refund-terms": "each refund has its sale's session, product and currency, a unit price at "
    "most the sale's, and is dated no earlier than the sale",
    "over-refund": "no sale refunded beyond its quantity",
    "duplicate-receipt": "no receipt id committed twice",
    "order-in-session": "each sale was ordered inside its live session (within the clock "
    "tolerance)",
    "order-time": "no receipt is dated after the block that committed it (beyond the clock "
    "tolerance)",
    "late-commit": "no sale committed later than the late-commit tolerance after its session "
    "closed or after its own order time (backfilled or backdated sales)",
    "displayed-sales": "no closed session displayed more sales than its verified net sales",
    "deployment-origin": "each contract's creation block and transaction, found on the chain, "
    "are the deployment file's, and scans start at the earliest of them",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed check: ``FAIL: <check> <subject>: <expected> vs <found>``."""

    check: str
    subject: str
    expected: str
    found: str

    def line(self) -> str:
        """The text after ``FAIL: ``."""
        return f"{self.check} {self.subject}: {self.expected} vs {self.found}"


@dataclass
class AuditReport:
    """The outcome of an audit: how many items each check covered, and every finding."""

    kind: str
    checks: dict[str, str]
    checked: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    #: What a reader should look at that is not a failure (``WARN:`` lines).
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.findings

    def add(self, check: str, subject: str, expected: object, found: object) -> None:
        """Record a failed check."""
        self.findings.append(Finding(check, subject, str(expected), str(found)))

    def failures(self, check: str) -> list[Finding]:
        """The findings of one check."""
        return [f for f in self.findings if f.check == check]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (``--report FILE``)."""
        failed = Counter(f.check for f in self.findings)
        return {
            "format": f"liveproof-audit-{self.kind}/1",
            "ok": self.ok,
            "checks": {
                name: {
                    "asserts": text,
                    "checked": self.checked.get(name, 0),
                    "failed": failed.get(name, 0),
                }
                for name, text in self.checks.items()
            },
            "findings": [asdict(f) for f in self.findings],
            "warnings": list(self.warnings),
            "stats": self.stats,
        }
