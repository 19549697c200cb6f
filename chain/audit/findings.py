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
    "sale-endorsement": "each sale under an endorsement was inside its validity, before any "
    "revocation, for its product",
    "sale-claims": "no sale ran under a revoked or expired claim of its product",
    "sale-price": "no sale above its endorsement's promised unit price (same currency)",
    "refund-match": "each refund refers to a committed sale",
    "over-refund": "no sale refunded beyond its quantity",
    "duplicate-receipt": "no receipt id committed twice",
    "order-in-session": "each sale was ordered inside its live session",
    "displayed-sales": "no closed session displayed more sales than its verified net sales",
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
            "stats": self.stats,
        }
