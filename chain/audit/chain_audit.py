"""``audit chain``: recompute every committed batch from its manifest and judge every receipt
against what the registries recorded, from the chain alone.

Two scans: the registries' events first (few: anchors, endorsements, claims, sessions), then
the ledger's commits, batch by batch. Each batch's leaves are parsed, hashed, folded to a root,
checked and dropped. What must outlive a batch is the index of receipt ids (for duplicates and
refunds), kept in bounded memory with the rest on disk (:mod:`chain.audit.receipt_index`), and
per-session tallies. A cursor file (that index, with the scan's state) makes the second scan
resumable and incremental: a later run with the same file reads only the commits made since.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from chain.audit.batch_loader import LoadedBatch, loaded_in_order
from chain.audit.findings import CHAIN_CHECKS, AuditReport, Finding
from chain.audit.manifests import Leaves, ManifestSource
from chain.audit.receipt_index import DEFAULT_MEMORY_LIMIT, ReceiptIndex
from chain.audit.registry import REGISTRY_EVENTS, Claim, Registry
from chain.audit.state_files import check_resume_point, parse_state, state_json, unusable
from chain.deploy import Deployment
from chain.events import ChainEvent, EventReader, ScanCursor

_FORMAT = "liveproof-audit-cursor/2"
LEDGER_EVENTS = ("SaleLedger.BatchCommitted", "SaleLedger.ReceiptRecorded")
_ZERO32 = bytes(32)
_SALE = 0
_NONE: frozenset[bytes] = frozenset()
#: Seconds between cursor checkpoints during a scan.
_CHECKPOINT_SECONDS = 5.0
#: (product, block) claim lists kept at most (sales without an endorsement add one per batch).
_CLAIMS_CACHE_SIZE = 4_096

Progress = Callable[[str, int, int], None]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (Linux: since its program started, unlike
    ``ru_maxrss``, which keeps what a forking parent held before ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _root_of(event: ChainEvent) -> bytes:
    """The root a ledger event committed (a single receipt's leaf is its own root)."""
    root: bytes = event.args["root"] if event.name == "BatchCommitted" else event.args["leaf"]
    return root


def _root_hex(event: ChainEvent) -> str:
    return _hex(_root_of(event))


class _Subject:
    """``receipt 0x…``, formatted only when a finding needs it (most receipts pass)."""

    __slots__ = ("receipt_id",)

    def __init__(self, receipt_id: bytes) -> None:
        self.receipt_id = receipt_id

    def __str__(self) -> str:
        return f"receipt {_hex(self.receipt_id)}"


@dataclass
class LedgerState:
    """What the ledger scan carries from batch to batch (and checkpoints into a cursor)."""

    cursor: ScanCursor
    index: ReceiptIndex
    checked: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: refunds whose sale was not seen yet: (refund id, sale id, quantity, session id)
    waiting: list[tuple[bytes, bytes, int, bytes]] = field(default_factory=list)
    #: verified net units per session id
    net: Counter[bytes] = field(default_factory=Counter)
    batches: int = 0
    receipts: int = 0

    def save(self, deployment: Deployment) -> None:
        """Checkpoint the scan into the cursor file: index and state in one transaction."""
        state = {
            "next_block": self.cursor.next_block,
            "next_log_index": self.cursor.next_log_index,
            "checked": dict(self.checked),
            "findings": [[f.check, f.subject, f.expected, f.found] for f in self.findings],
            "waiting": [[a.hex(), b.hex(), q, s.hex()] for a, b, q, s in self.waiting],
            "net": {k.hex(): v for k, v in self.net.items()},
            "batches": self.batches,
            "receipts": self.receipts,
        }
        self.index.checkpoint(state_json(_FORMAT, state, deployment))

    @classmethod
    def open(cls, path: Path | None, deployment: Deployment, *, memory_limit: int) -> LedgerState:
        """The state saved in the cursor file ``path``, or a fresh one (also for ``None``)."""
        try:
            index = ReceiptIndex(path, memory_limit=memory_limit)
            saved = index.saved_state()
        except sqlite3.DatabaseError as exc:
            raise unusable(path or Path("?"), exc) from None
        if saved is None:
            return cls(ScanCursor(deployment.start_block), index)
        assert path is not None
        data = parse_state(saved, path, _FORMAT, deployment)
        try:
            return cls(
                cursor=ScanCursor(int(data["next_block"]), int(data["next_log_index"])),
                index=index,
                checked=Counter(data["checked"]),
                findings=[Finding(*f) for f in data["findings"]],
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
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        jobs: int | None = None,
    ) -> None:
        """Audit ``deployment``'s events up to ``to_block`` (default: the latest block);
        ``memory_limit`` receipt ids stay in memory, the rest on disk; ``jobs`` processes
        load the manifests (default: one per CPU)."""
        self.w3 = w3
        self.deployment = deployment
        self.manifests = manifests
        self.chunk_size = chunk_size
        self.cursor_file = cursor_file
        self.progress = progress
        self.to_block = to_block
        self.memory_limit = memory_limit
        self.jobs = jobs
        self.registry = Registry()
        self._claims_cache: dict[tuple[bytes, int], list[Claim]] = {}

    def run(self) -> AuditReport:
        """Scan, check, and return the report."""
        started = time.perf_counter()
        reader = EventReader(self.w3, self.deployment, chunk_size=self.chunk_size)
        latest = reader.latest_block()
        end = latest if self.to_block is None else self.to_block
        start = self.deployment.start_block
        self.registry = Registry.of(
            reader.iter_events(start, end, names=REGISTRY_EVENTS, progress=self._step("registry"))
        )
        state = LedgerState.open(self.cursor_file, self.deployment, memory_limit=self.memory_limit)
        try:
            check_resume_point(state.cursor.next_block, latest)
            ledger = self._scan_ledger(state, end)
            report = AuditReport("chain", dict(CHAIN_CHECKS), Counter(state.checked))
            report.findings = list(state.findings)
            self._finish(state, report)
        finally:
            state.index.close()
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
            "peak_rss_mb": peak_rss_mb(),
        }
        return report

    # -- scanning -----------------------------------------------------------------------------

    def _step(self, phase: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done, end: progress(phase, done, end)

    def _scan_ledger(self, state: LedgerState, end: int) -> EventReader:
        """Check every commit after the state's cursor up to ``end``; checkpoint on the way
        (every few seconds) and at the end when there is a cursor file."""
        # The reader runs ahead of the judging (manifests load in other processes), so the
        # state's cursor moves only past events already judged: a checkpoint never skips one.
        read = ScanCursor(state.cursor.next_block, state.cursor.next_log_index)
        ledger = EventReader(self.w3, self.deployment, chunk_size=self.chunk_size, cursor=read)
        events = ledger.iter_events(None, end, names=LEDGER_EVENTS, progress=self._step("ledger"))
        saved = time.monotonic()
        for event, loaded in loaded_in_order(self.manifests, events, _root_hex, jobs=self.jobs):
            self._batch(state, event, loaded)
            state.cursor.next_block = event.block_number
            state.cursor.next_log_index = event.log_index + 1
            if self.cursor_file is not None and time.monotonic() - saved > _CHECKPOINT_SECONDS:
                state.save(self.deployment)
                saved = time.monotonic()
            else:
                state.index.spill_if_full()
        state.cursor.next_block, state.cursor.next_log_index = read.next_block, read.next_log_index
        if self.cursor_file is not None:
            state.save(self.deployment)
        return ledger

    def _batch(self, state: LedgerState, event: ChainEvent, loaded: LoadedBatch) -> None:
        root = _root_of(event)
        count = int(event.args["count"]) if event.name == "BatchCommitted" else 1
        subject = f"batch {_hex(root)} (block {event.block_number})"
        state.batches += 1
        state.checked["batch-manifest"] += 1

        def fail(check: str, expected: object, found: object) -> None:
            state.findings.append(Finding(check, subject, str(expected), str(found)))

        leaves, rebuilt = loaded.leaves, loaded.root
        if loaded.problem == "":
            fail("batch-manifest", "a manifest", "none")
            return
        if leaves is None or rebuilt is None:
            fail("batch-manifest", "receipt leaf v1 values", loaded.problem)
            return
        state.checked["batch-count"] += 1
        state.checked["batch-root"] += 1
        if len(leaves) != count:
            fail("batch-count", f"{count} leaves", len(leaves))
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
            if len(self._claims_cache) >= _CLAIMS_CACHE_SIZE:
                # Keyed by block for sales without an endorsement: one entry per batch.
                self._claims_cache.clear()
            self._claims_cache[key] = found
        return found

    def _receipts(self, state: LedgerState, leaves: Leaves, block: int) -> None:
        registry = self.registry
        sessions = registry.sessions
        endorsements = registry.endorsements
        index = state.index
        sales = index.sales
        refunds = index.refunds
        on_disk = index.on_disk(leaves.receipt_id) if index.has_disk else _NONE
        net = state.net
        checked = state.checked
        findings = state.findings
        n_sales = n_refunds = n_endorsed = 0
        rows = zip(
            leaves.receipt_id, leaves.kind, leaves.refers_to, leaves.session_id,
            leaves.product_id, leaves.endorsement_id, leaves.quantity, leaves.unit_price,
            leaves.currency, leaves.ordered_at, strict=True,
        )  # fmt: skip
        for rid, kind, ref, sess, prod, end, qty, price, cur, at in rows:
            if rid in sales or rid in refunds or rid in on_disk:
                findings.append(
                    Finding("duplicate-receipt", f"receipt {_hex(rid)}", "one commit", "two")
                )
                continue
            if kind != _SALE:
                n_refunds += 1
                refunds.add(rid)
                if index.sale(ref) is not None:
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
            if state.index.sale(ref) is not None:
                _refund_into(state, report.findings, rid, ref, qty, sess)
            else:
                report.add("refund-match", f"refund {_hex(rid)}", f"sale {_hex(ref)}", "none")
        report.checked["over-refund"] += state.index.refunded_sales()
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
    before = state.index.sale(ref)
    assert before is not None
    packed = before + (qty << 32)
    state.index.sales[ref] = packed
    state.net[session] -= qty
    sold, refunded = packed & 0xFFFFFFFF, packed >> 32
    if refunded > sold:
        findings.append(
            Finding(
                "over-refund", f"refund {_hex(rid)}", f"at most {sold} refunded",
                f"{refunded} refunded",
            )
        )  # fmt: skip
