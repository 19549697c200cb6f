"""``audit chain``: recompute every committed batch from its manifest and judge every receipt
against what the registries recorded, from the chain alone.

Two scans: the registries' events first (few: anchors, endorsements, claims, sessions), then
the ledger's commits, batch by batch. Each batch's leaves are parsed, hashed, folded to a root,
checked and dropped, so memory holds only a compact index of receipt ids (for duplicates and
refunds) and per-session tallies. A cursor file makes the second scan resumable and
incremental: a later run with the same file reads only the commits made since.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from chain.audit.findings import CHAIN_CHECKS, AuditReport, Finding
from chain.audit.manifests import Leaves, ManifestError, ManifestSource, parse_leaves
from chain.audit.registry import REGISTRY_EVENTS, Claim, Registry
from chain.audit.state_files import read_state, unusable, write_state
from chain.deploy import Deployment
from chain.events import ChainEvent, EventReader, ScanCursor

_FORMAT = "liveproof-audit-cursor/1"
LEDGER_EVENTS = ("SaleLedger.BatchCommitted", "SaleLedger.ReceiptRecorded")
_ZERO32 = bytes(32)
_SALE = 0

Progress = Callable[[str, int, int], None]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


class _Subject:
    """``receipt 0x…``, formatted only when a finding needs it (most receipts pass)."""

    __slots__ = ("receipt_id",)

    def __init__(self, receipt_id: bytes) -> None:
        self.receipt_id = receipt_id

    def __str__(self) -> str:
        return f"receipt {_hex(self.receipt_id)}"


@dataclass
class LedgerState:
    """What the ledger scan carries from batch to batch (and saves in the cursor file)."""

    cursor: ScanCursor
    checked: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: sale receipt id -> quantity | refunded << 32 (one int: the index is most of the memory)
    sales: dict[bytes, int] = field(default_factory=dict)
    refunds: set[bytes] = field(default_factory=set)
    #: refunds whose sale was not seen yet: (refund id, sale id, quantity, session id)
    waiting: list[tuple[bytes, bytes, int, bytes]] = field(default_factory=list)
    #: verified net units per session id
    net: Counter[bytes] = field(default_factory=Counter)
    batches: int = 0
    receipts: int = 0

    def save(self, path: Path, deployment: Deployment) -> None:
        """Write the state as JSON, atomically."""
        write_state(
            path,
            _FORMAT,
            {
                "next_block": self.cursor.next_block,
                "next_log_index": self.cursor.next_log_index,
                "checked": dict(self.checked),
                "findings": [[f.check, f.subject, f.expected, f.found] for f in self.findings],
                "sales": {k.hex(): v for k, v in self.sales.items()},
                "refunds": [k.hex() for k in self.refunds],
                "waiting": [[a.hex(), b.hex(), q, s.hex()] for a, b, q, s in self.waiting],
                "net": {k.hex(): v for k, v in self.net.items()},
                "batches": self.batches,
                "receipts": self.receipts,
            },
            deployment,
        )

    @classmethod
    def load(cls, path: Path, deployment: Deployment) -> LedgerState:
        """Read a state written by :meth:`save`."""
        data = read_state(path, _FORMAT, deployment)
        try:
            return cls(
                cursor=ScanCursor(int(data["next_block"]), int(data["next_log_index"])),
                checked=Counter(data["checked"]),
                findings=[Finding(*f) for f in data["findings"]],
                sales={bytes.fromhex(k): int(v) for k, v in data["sales"].items()},
                refunds={bytes.fromhex(k) for k in data["refunds"]},
                waiting=[
                    (bytes.fromhex(a), bytes.fromhex(b), int(q), bytes.fromhex(s))
                    for a, b, q, s in data["waiting"]
                ],
                net=Counter({bytes.fromhex(k): int(v) for k, v in data["net"].items()}),
                batches=int(data["batches"]),
                receipts=int(data["receipts"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(path, exc) from None


class ChainAudit:
    """One ``audit chain`` run over a deployment, with manifests from ``manifests``."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        manifests: ManifestSource,
        *,
        chunk_size: int = 10_000,
        cursor_file: Path | None = None,
        progress: Progress | None = None,
        to_block: int | None = None,
    ) -> None:
        """Audit ``deployment``'s events up to ``to_block`` (default: the latest block)."""
        self.w3 = w3
        self.deployment = deployment
        self.manifests = manifests
        self.chunk_size = chunk_size
        self.cursor_file = cursor_file
        self.progress = progress
        self.to_block = to_block
        self.registry = Registry()
        self._claims_cache: dict[tuple[bytes, int], list[Claim]] = {}

    def run(self) -> AuditReport:
        """Scan, check, and return the report."""
        started = time.perf_counter()
        reader = EventReader(self.w3, self.deployment, chunk_size=self.chunk_size)
        end = reader.latest_block() if self.to_block is None else self.to_block
        start = self.deployment.start_block
        self.registry = Registry.of(
            reader.iter_events(start, end, names=REGISTRY_EVENTS, progress=self._step("registry"))
        )
        state = self._initial_state(start)
        ledger = EventReader(
            self.w3, self.deployment, chunk_size=self.chunk_size, cursor=state.cursor
        )
        saved = time.monotonic()
        for event in ledger.iter_events(
            None, end, names=LEDGER_EVENTS, progress=self._step("ledger")
        ):
            self._batch(state, event)
            if self.cursor_file is not None and time.monotonic() - saved > 5:
                state.save(self.cursor_file, self.deployment)
                saved = time.monotonic()
        if self.cursor_file is not None:
            state.save(self.cursor_file, self.deployment)
        report = AuditReport("chain", dict(CHAIN_CHECKS), Counter(state.checked))
        report.findings = list(state.findings)
        self._finish(state, report)
        elapsed = time.perf_counter() - started
        report.stats = {
            "chain_id": self.deployment.chain_id,
            "from_block": start,
            "to_block": end,
            "batches": state.batches,
            "receipts": state.receipts,
            "endorsements": len(self.registry.endorsements),
            "sessions": len(self.registry.sessions),
            "seconds": round(elapsed, 4),
            "receipts_per_s": round(state.receipts / elapsed) if elapsed else None,
            "rpc_requests": reader.stats.requests + ledger.stats.requests,
        }
        return report

    # -- scanning -----------------------------------------------------------------------------

    def _step(self, phase: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done, end: progress(phase, done, end)

    def _initial_state(self, start: int) -> LedgerState:
        if self.cursor_file is not None and self.cursor_file.exists():
            return LedgerState.load(self.cursor_file, self.deployment)
        return LedgerState(ScanCursor(start))

    def _batch(self, state: LedgerState, event: ChainEvent) -> None:
        if event.name == "BatchCommitted":
            root, count = event.args["root"], int(event.args["count"])
        else:
            root, count = event.args["leaf"], 1
        subject = f"batch {_hex(root)} (block {event.block_number})"
        state.batches += 1
        state.checked["batch-manifest"] += 1

        def fail(check: str, expected: object, found: object) -> None:
            state.findings.append(Finding(check, subject, str(expected), str(found)))

        try:
            manifest = self.manifests.get(_hex(root))
            if manifest is None:
                fail("batch-manifest", "a manifest", "none")
                return
            leaves = parse_leaves(manifest)
        except ManifestError as exc:
            fail("batch-manifest", "receipt leaf v1 values", exc)
            return
        state.checked["batch-count"] += 1
        state.checked["batch-root"] += 1
        if len(leaves) != count:
            fail("batch-count", f"{count} leaves", len(leaves))
        rebuilt = leaves.root()
        if rebuilt != root:
            # The manifest is not what was committed: none of its leaves is proven.
            fail("batch-root", _hex(root), _hex(rebuilt))
            return
        self._receipts(state, leaves, event.block_number)

    def _claims(self, product_id: bytes, block: int) -> list[Claim]:
        key = (product_id, block)
        found = self._claims_cache.get(key)
        if found is None:
            found = self.registry.claims_before(product_id, block)
            self._claims_cache[key] = found
        return found

    def _receipts(self, state: LedgerState, leaves: Leaves, block: int) -> None:
        registry = self.registry
        sessions = registry.sessions
        endorsements = registry.endorsements
        sales = state.sales
        refunds = state.refunds
        net = state.net
        checked = state.checked
        findings = state.findings
        n_sales = n_refunds = n_endorsed = 0
        for rid, kind, ref, _room, sess, prod, end, qty, price, cur, at, _buyer in leaves.rows():
            if rid in sales or rid in refunds:
                findings.append(
                    Finding("duplicate-receipt", f"receipt {_hex(rid)}", "one commit", "two")
                )
                continue
            if kind != _SALE:
                n_refunds += 1
                refunds.add(rid)
                if ref in sales:
                    _refund_into(state, findings, rid, ref, qty, sess)
                else:
                    state.waiting.append((rid, ref, qty, sess))
                continue
            n_sales += 1
            sales[rid] = qty
            net[sess] += qty
            subject = _Subject(rid)
            live = sessions.get(sess)
            if live is None:
                findings.append(
                    Finding("order-in-session", str(subject), "a session opened on chain", "none")
                )
            elif at < live.opened_at or (live.closed_at is not None and at > live.closed_at):
                window = f"ordered in [{live.opened_at}, {live.closed_at or 'open'}]"
                findings.append(
                    Finding("order-in-session", str(subject), window, f"ordered at {at}")
                )
            claims_block = block
            if end != _ZERO32:
                n_endorsed += 1
                endorsement = endorsements.get(end)
                if endorsement is None:
                    findings.append(
                        Finding(
                            "sale-endorsement", str(subject), "a recorded endorsement", _hex(end)
                        )
                    )
                else:
                    claims_block = endorsement.block
                    self._endorsed_sale(findings, subject, endorsement, prod, price, cur, at)
            for claim in self._claims(prod, claims_block):
                if claim.revoked_at is not None and claim.revoked_at <= at:
                    findings.append(
                        Finding(
                            "sale-claims", str(subject), f"claim {_hex(claim.claim_id)} in force",
                            f"revoked at {claim.revoked_at}, ordered at {at}",
                        )
                    )  # fmt: skip
                elif claim.valid_until < at:
                    findings.append(
                        Finding(
                            "sale-claims", str(subject), f"claim {_hex(claim.claim_id)} in force",
                            f"expired at {claim.valid_until}, ordered at {at}",
                        )
                    )  # fmt: skip
        state.receipts += len(leaves)
        checked["duplicate-receipt"] += len(leaves)
        checked["order-in-session"] += n_sales
        checked["sale-claims"] += n_sales
        checked["sale-endorsement"] += n_endorsed
        checked["sale-price"] += n_endorsed
        checked["refund-match"] += n_refunds

    @staticmethod
    def _endorsed_sale(
        findings: list[Finding],
        subject: object,
        endorsement: Any,
        product: bytes,
        price: int,
        currency: bytes,
        at: int,
    ) -> None:
        e = endorsement
        if (
            e.product_id == product
            and (e.revoked_at is None or e.revoked_at > at)
            and e.valid_from <= at <= e.valid_until
            and currency == e.currency
            and price <= e.unit_price
        ):
            return
        text = str(subject)
        if e.product_id != product:
            findings.append(
                Finding("sale-endorsement", text, f"product {_hex(e.product_id)}", _hex(product))
            )
        if e.revoked_at is not None and e.revoked_at <= at:
            findings.append(
                Finding(
                    "sale-endorsement", text, f"ordered before revocation at {e.revoked_at}",
                    f"ordered at {at}",
                )
            )  # fmt: skip
        elif not e.valid_from <= at <= e.valid_until:
            findings.append(
                Finding(
                    "sale-endorsement", text, f"ordered in [{e.valid_from}, {e.valid_until}]",
                    f"ordered at {at}",
                )
            )  # fmt: skip
        if currency != e.currency or price > e.unit_price:
            promised = f"at most {e.unit_price} {e.currency.decode('ascii', 'replace')}"
            findings.append(
                Finding(
                    "sale-price", text, promised,
                    f"{price} {currency.decode('ascii', 'replace')}",
                )
            )  # fmt: skip

    def _finish(self, state: LedgerState, report: AuditReport) -> None:
        for rid, ref, qty, sess in state.waiting:
            if ref in state.sales:
                _refund_into(state, report.findings, rid, ref, qty, sess)
            else:
                report.add("refund-match", f"refund {_hex(rid)}", f"sale {_hex(ref)}", "none")
        report.checked["over-refund"] += sum(1 for v in state.sales.values() if v >> 32)
        for endorsement, signer_ok in self.registry.endorsement_signers:
            report.checked["endorsement-signer"] += 1
            if not signer_ok:
                report.add(
                    "endorsement-signer",
                    f"endorsement {_hex(endorsement.endorsement_id)} (block {endorsement.block})",
                    f"{endorsement.anchor} a registered anchor",
                    "not registered at that block",
                )
        net = state.net
        for live in self.registry.sessions.values():
            if live.displayed_sales is None:
                continue
            report.checked["displayed-sales"] += 1
            if live.displayed_sales > net[live.session_id]:
                report.add(
                    "displayed-sales",
                    f"session {_hex(live.session_id)}",
                    f"at most {net[live.session_id]} (verified net)",
                    f"{live.displayed_sales} displayed",
                )


def _refund_into(
    state: LedgerState, findings: list[Finding], rid: bytes, ref: bytes, qty: int, session: bytes
) -> None:
    """Count a refund against its sale (and the refund's session's net sales)."""
    packed = state.sales[ref] + (qty << 32)
    state.sales[ref] = packed
    state.net[session] -= qty
    sold, refunded = packed & 0xFFFFFFFF, packed >> 32
    if refunded > sold:
        findings.append(
            Finding(
                "over-refund", f"refund {_hex(rid)}", f"at most {sold} refunded",
                f"{refunded} refunded",
            )
        )  # fmt: skip
