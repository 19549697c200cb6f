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
from typing import Any, TypeVar

from web3 import Web3

from chain.audit.batch_loader import LoadedBatch, loaded_in_order
from chain.audit.block_clock import BlockClock
from chain.audit.buyer_reuse import BuyerReuse
from chain.audit.findings import CHAIN_CHECKS, AuditReport, Finding
from chain.audit.manifests import Leaves, ManifestSource
from chain.audit.origin import ORIGIN_CHECK, locate
from chain.audit.receipt_index import (
    DEFAULT_MEMORY_LIMIT,
    ReceiptIndex,
    SaleTerms,
    pack_sale,
    with_refunded,
)
from chain.audit.registry import REGISTRY_EVENTS, Claim, Endorsement, LiveSession, Registry
from chain.audit.state_files import check_resume_point, parse_state, state_json, unusable
from chain.audit.tolerances import (
    DEFAULT_CLOCK_TOLERANCE,
    DEFAULT_LATE_COMMIT_TOLERANCE,
    DEFAULT_REUSE_THRESHOLD,
)
from chain.deploy import Deployment
from chain.events import ChainEvent, EventReader, ScanCursor

_FORMAT = "liveproof-audit-cursor/3"
LEDGER_EVENTS = ("SaleLedger.BatchCommitted", "SaleLedger.ReceiptRecorded")
_ZERO32 = bytes(32)
_SALE = 0
_NONE: frozenset[bytes] = frozenset()
#: Seconds between cursor checkpoints during a scan.
_CHECKPOINT_SECONDS = 5.0
#: (product, block) claim lists kept at most (sales without an endorsement add one per batch).
_CLAIMS_CACHE_SIZE = 4_096

Progress = Callable[[str, int, int], None]
T = TypeVar("T")


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


def _currency_text(code: int) -> str:
    return code.to_bytes(3, "big").decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class RefundTerms:
    """A refund leaf's values that its sale must agree with."""

    refund_id: bytes
    sale_id: bytes
    quantity: int
    session: int
    product: int
    currency: int
    unit_price: int
    ordered_at: int

    def to_json(self) -> list[Any]:
        """For a cursor file."""
        return [self.refund_id.hex(), self.sale_id.hex(), self.quantity, self.session,
                self.product, self.currency, str(self.unit_price), self.ordered_at]  # fmt: skip

    @classmethod
    def from_json(cls, row: list[Any]) -> RefundTerms:
        """From a cursor file."""
        rid, ref, qty, session, product, currency, price, at = row
        return cls(bytes.fromhex(rid), bytes.fromhex(ref), int(qty), int(session), int(product),
                   int(currency), int(price), int(at))  # fmt: skip


@dataclass
class LedgerState:
    """What the ledger scan carries from batch to batch (and checkpoints into a cursor)."""

    cursor: ScanCursor
    index: ReceiptIndex
    checked: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: refunds whose sale was not seen yet
    waiting: list[RefundTerms] = field(default_factory=list)
    #: verified net units per session id
    net: Counter[bytes] = field(default_factory=Counter)
    #: units refunded per session id (the sale's session)
    refunded: Counter[bytes] = field(default_factory=Counter)
    buyers: BuyerReuse = field(default_factory=BuyerReuse)
    batches: int = 0
    receipts: int = 0

    def save(self, deployment: Deployment) -> None:
        """Checkpoint the scan into the cursor file: index and state in one transaction."""
        state = {
            "next_block": self.cursor.next_block,
            "next_log_index": self.cursor.next_log_index,
            "checked": dict(self.checked),
            "findings": [[f.check, f.subject, f.expected, f.found] for f in self.findings],
            "waiting": [w.to_json() for w in self.waiting],
            "net": {k.hex(): v for k, v in self.net.items()},
            "refunded": {k.hex(): v for k, v in self.refunded.items()},
            "buyer_repeats": {k.hex(): v for k, v in self.buyers.repeats.items()},
            "batches": self.batches,
            "receipts": self.receipts,
        }
        self.index.checkpoint(state_json(_FORMAT, state, deployment))

    @classmethod
    def open(
        cls,
        path: Path | None,
        deployment: Deployment,
        *,
        memory_limit: int,
        start: int | None = None,
    ) -> LedgerState:
        """The state saved in the cursor file ``path``, or a fresh one (also for ``None``)
        starting at block ``start`` (default: the deployment file's first block)."""
        try:
            index = ReceiptIndex(path, memory_limit=memory_limit)
            saved = index.saved_state()
        except sqlite3.DatabaseError as exc:
            raise unusable(path or Path("?"), exc) from None
        if saved is None:
            return cls(ScanCursor(deployment.start_block if start is None else start), index)
        assert path is not None
        data = parse_state(saved, path, _FORMAT, deployment)
        try:
            return cls(
                cursor=ScanCursor(int(data["next_block"]), int(data["next_log_index"])),
                index=index,
                checked=Counter(data["checked"]),
                findings=[Finding(*f) for f in data["findings"]],
                waiting=[RefundTerms.from_json(row) for row in data["waiting"]],
                net=Counter({bytes.fromhex(k): int(v) for k, v in data["net"].items()}),
                refunded=Counter({bytes.fromhex(k): int(v) for k, v in data["refunded"].items()}),
                buyers=BuyerReuse(
                    {bytes.fromhex(k): int(v) for k, v in data["buyer_repeats"].items()}
                ),
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
        clock_tolerance: int = DEFAULT_CLOCK_TOLERANCE,
        late_commit_tolerance: int = DEFAULT_LATE_COMMIT_TOLERANCE,
        reuse_threshold: int = DEFAULT_REUSE_THRESHOLD,
    ) -> None:
        """Audit ``deployment``'s events up to ``to_block`` (default: the latest block);
        ``memory_limit`` receipt ids stay in memory, the rest on disk; ``jobs`` processes
        load the manifests (default: one per CPU). ``clock_tolerance`` seconds are allowed
        between the platform's clock and block times, ``late_commit_tolerance`` between a
        session's close (or a sale's order time) and the sale's commit; a buyer commitment on
        ``reuse_threshold`` sales or more gets a warning."""
        self.w3 = w3
        self.deployment = deployment
        self.manifests = manifests
        self.chunk_size = chunk_size
        self.cursor_file = cursor_file
        self.progress = progress
        self.to_block = to_block
        self.memory_limit = memory_limit
        self.jobs = jobs
        self.clock_tolerance = clock_tolerance
        self.late_commit_tolerance = late_commit_tolerance
        self.reuse_threshold = reuse_threshold
        self.clock = BlockClock(w3)
        self.registry = Registry()
        self._claims_cache: dict[tuple[bytes, int], list[Claim]] = {}
        self._index_registry()

    def _index_registry(self) -> None:
        """The lookups the receipt checks need, from :attr:`registry`."""
        registry = self.registry
        #: Sessions and products numbered in chain order from 1 (0: not on chain).
        self._session_ids: list[bytes] = [_ZERO32, *registry.sessions]
        self._session_no = {sid: n for n, sid in enumerate(self._session_ids) if n}
        self._product_no = {pid: n + 1 for n, pid in enumerate(registry.products)}
        self._promises = registry.promises()
        for promises in self._promises.values():
            for e in promises:
                e.recorded_at = self.clock.at(e.block)
        self._anchor_times = registry.anchor_times(self.clock.at)

    def run(self) -> AuditReport:
        """Scan, check, and return the report."""
        started = time.perf_counter()
        reader = EventReader(self.w3, self.deployment, chunk_size=self.chunk_size)
        latest = reader.latest_block()
        end = latest if self.to_block is None else self.to_block
        # From the chain, not the file: a file claiming a later block would hide early events.
        origin = locate(self.w3, self.deployment, block=latest)
        start = origin.start_block
        # The clock keeps the events' block times: the anchors' and endorsements' blocks are
        # then known without asking for their headers.
        self.registry = Registry.of(
            self.clock.noting(
                reader.iter_events(
                    start, end, names=REGISTRY_EVENTS, progress=self._step("registry")
                )
            )
        )
        self._index_registry()
        state = LedgerState.open(
            self.cursor_file, self.deployment, memory_limit=self.memory_limit, start=start
        )
        try:
            check_resume_point(state.cursor.next_block, latest)
            ledger = self._scan_ledger(state, end)
            report = AuditReport("chain", dict(CHAIN_CHECKS), Counter(state.checked))
            report.findings = [*origin.findings, *state.findings]
            report.checked[ORIGIN_CHECK] += len(origin.creations)
            self._finish(state, report)
        finally:
            state.index.close()
        elapsed = time.perf_counter() - started
        report.stats = {
            **report.stats,
            "chain_id": self.deployment.chain_id,
            "from_block": start,
            "to_block": end,
            "batches": state.batches,
            "receipts": state.receipts,
            "endorsements": len(self.registry.endorsements),
            "sessions": len(self.registry.sessions),
            "seconds": round(elapsed, 4),
            "receipts_per_s": round(state.receipts / elapsed) if elapsed else None,
            "rpc_requests": reader.stats.requests + ledger.stats.requests + self.clock.requests,
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
        self._receipts(state, leaves, event.block_number, self.clock.of(event))

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

    def _receipts(self, state: LedgerState, leaves: Leaves, block: int, committed_at: int) -> None:
        """Judge one proven batch's receipts (committed in ``block`` at ``committed_at``).

        A receipt's verdict depends on its values but not on its id, quantity or buyer:
        receipts alike in kind, session, product, endorsement, room, currency, time and price
        (most of a batch, from one live room in a few seconds) are judged once per batch, and
        the batch's columns are then folded into the index at once."""
        index = state.index
        sales = index.sales
        findings = state.findings
        rids, qtys = leaves.receipt_id, leaves.quantity
        keys = list(zip(
            leaves.kind, leaves.session_id, leaves.product_id, leaves.endorsement_id,
            leaves.room_id, leaves.currency, leaves.ordered_at, leaves.unit_price, strict=True,
        ))  # fmt: skip
        buyers, refers_to = leaves.buyer_commitment, leaves.refers_to
        if not self._all_new(index, rids):
            rows = self._without_repeats(index, findings, rids)
            rids, qtys = _pick(rids, rows), _pick(qtys, rows)
            keys, buyers, refers_to = _pick(keys, rows), _pick(buyers, rows), _pick(refers_to, rows)
        # Each distinct key numbered once (one tuple hash per receipt); the rest works on
        # the numbers.
        numbers: dict[tuple[Any, ...], int] = {}
        codes = [numbers.setdefault(key, len(numbers)) for key in keys]
        distinct = list(numbers)
        verdicts = [self._judge(key, block, committed_at) for key in distinct]
        if any(verdict.failures for verdict in verdicts):
            for rid, code in zip(rids, codes, strict=True):
                if failures := verdicts[code].failures:
                    subject = f"receipt {_hex(rid)}"
                    findings.extend(Finding(c, subject, e, f) for c, e, f in failures)
        sale = [key[0] == _SALE for key in distinct]
        packed = [verdict.packed for verdict in verdicts]
        # Sales first: a refund later in the same batch then finds its sale.
        sales.update(
            {rid: qty | packed[code]
             for rid, qty, code in zip(rids, qtys, codes, strict=True) if sale[code]}
        )  # fmt: skip
        units = [0] * len(distinct)
        for qty, code in zip(qtys, codes, strict=True):
            units[code] += qty
        net = state.net
        n_sales = n_endorsed = n_priced = 0
        for code, count in Counter(codes).items():
            if sale[code]:
                verdict = verdicts[code]
                n_sales += count
                n_endorsed += count * verdict.endorsed
                n_priced += count * verdict.priced
                net[distinct[code][1]] += units[code]
        state.buyers.add([b for b, code in zip(buyers, codes, strict=True) if sale[code]])
        n_refunds = len(keys) - n_sales
        if n_refunds:
            self._refunds(state, [(rids[i], refers_to[i], qtys[i], keys[i])
                                  for i, code in enumerate(codes) if not sale[code]])  # fmt: skip
        checked = state.checked
        state.receipts += len(leaves)
        checked["duplicate-receipt"] += len(leaves)
        checked["receipt-room"] += len(keys)
        checked["receipt-product"] += len(keys)
        checked["order-time"] += len(keys)
        checked["order-in-session"] += n_sales
        checked["sale-anchor"] += n_sales
        checked["late-commit"] += n_sales
        checked["promise-omitted"] += n_sales
        checked["sale-claims"] += n_sales
        checked["sale-endorsement"] += n_endorsed
        checked["sale-price"] += n_priced
        checked["refund-match"] += n_refunds

    @staticmethod
    def _all_new(index: ReceiptIndex, rids: list[bytes]) -> bool:
        """True when no id of the batch was committed before or repeats within it."""
        return (
            len(set(rids)) == len(rids)
            and index.sales.keys().isdisjoint(rids)
            and index.refunds.isdisjoint(rids)
            and not (index.has_disk and index.on_disk(rids))
        )

    @staticmethod
    def _without_repeats(
        index: ReceiptIndex, findings: list[Finding], rids: list[bytes]
    ) -> list[int]:
        """The positions of the batch's first sight of each new id; every repeat (of an id
        committed before, or earlier in the batch) is a ``duplicate-receipt`` finding."""
        on_disk = index.on_disk(rids) if index.has_disk else _NONE
        seen: set[bytes] = set()
        keep = []
        for i, rid in enumerate(rids):
            if rid in index.sales or rid in index.refunds or rid in on_disk or rid in seen:
                findings.append(
                    Finding("duplicate-receipt", f"receipt {_hex(rid)}", "one commit", "two")
                )
            else:
                seen.add(rid)
                keep.append(i)
        return keep

    def _refunds(
        self, state: LedgerState, refunds: list[tuple[bytes, bytes, int, tuple[Any, ...]]]
    ) -> None:
        """Index a batch's refunds and judge each against its sale (or wait for the sale)."""
        index = state.index
        session_no, product_no = self._session_no, self._product_no
        for rid, ref, qty, key in refunds:
            _, sess, prod, _, _, cur, at, price = key
            index.refunds.add(rid)
            terms = RefundTerms(
                rid, ref, qty, session_no.get(sess, 0), product_no.get(prod, 0),
                int.from_bytes(cur, "big"), price, at,
            )  # fmt: skip
            sale = index.sale(ref)
            if sale is not None:
                self._refund_into(state, state.findings, terms, sale)
            else:
                state.waiting.append(terms)

    def _judge(self, key: tuple[Any, ...], block: int, committed_at: int) -> _Verdict:
        """The verdict on a receipt with these values (all but its id, quantity and buyer),
        committed in ``block`` at ``committed_at``."""
        kind, sess, prod, end, room, cur, at, price = key
        failures: list[tuple[str, str, str]] = []
        tolerance = self.clock_tolerance
        live = self.registry.sessions.get(sess)
        if live is not None and room != live.room_id:
            expected = f"room {_hex(live.room_id)} of session {_hex(sess)}"
            failures.append(("receipt-room", expected, f"room {_hex(room)}"))
        product = self.registry.products.get(prod)
        if product is None or product.block > block:
            failures.append(
                ("receipt-product", f"product {_hex(prod)} registered by block {block}",
                 "not registered" if product is None else f"block {product.block}")
            )  # fmt: skip
        if at > committed_at + tolerance:
            failures.append(
                ("order-time", f"ordered by {committed_at} (+{tolerance} s), when block {block} "
                 "committed it", f"ordered at {at}")
            )  # fmt: skip
        packed = pack_sale(
            at, self._session_no.get(sess, 0), self._product_no.get(prod, 0), cur, price
        )
        if kind != _SALE:
            return _Verdict(tuple(failures), packed, False, False)
        late_after = self.late_commit_tolerance
        binding: list[Endorsement] = []
        if live is None:
            failures.append(("order-in-session", "a session opened on chain", "none"))
        else:
            if at < live.opened_at - tolerance or (
                live.closed_at is not None and at > live.closed_at + tolerance
            ):
                window = f"ordered in [{live.opened_at}, {live.closed_at or 'open'}]"
                failures.append(("order-in-session", window, f"ordered at {at}"))
            if not self._anchor_registered(live.anchor, at):
                failures.append(
                    ("sale-anchor", f"host {live.anchor} a registered anchor at {at}",
                     "not registered then")
                )  # fmt: skip
            if live.closed_at is not None and committed_at > live.closed_at + late_after:
                failures.append(
                    ("late-commit", f"committed by {live.closed_at + late_after} (session closed "
                     f"at {live.closed_at}, +{late_after} s)",
                     f"committed at {committed_at} (block {block})")
                )  # fmt: skip
            elif committed_at > at + late_after:
                # Backdated: e.g. to before a promise was recorded, out of its reach.
                failures.append(
                    ("late-commit", f"committed by {at + late_after} (ordered at {at}, "
                     f"+{late_after} s)", f"committed at {committed_at} (block {block})")
                )  # fmt: skip
            binding = [
                e for e in self._promises.get((live.anchor, prod, room), ())
                if e.recorded_at <= at and e.valid_from <= at <= e.valid_until
                and (e.revoked_at is None or e.revoked_at > at)
            ]  # fmt: skip
        claims_block = block
        named: Endorsement | None = None
        if end != _ZERO32:
            named = self.registry.endorsements.get(end)
            if named is None:
                failures.append(("sale-endorsement", "a recorded endorsement", _hex(end)))
            else:
                claims_block = named.block
                failures += _named_endorsement(named, live, prod, room, price, cur, at, block)
        elif binding:
            failures.append(
                ("promise-omitted", f"endorsement {_hex(binding[0].endorsement_id)} named (in "
                 "force for its host, product and room)", "none named")
            )  # fmt: skip
        for e in binding:
            if e is not named and (cur != e.currency or price > e.unit_price):
                failures.append(_price_failure(e, price, cur))
                break
        for claim in self._claims(prod, claims_block):
            if claim.revoked_at is not None and claim.revoked_at <= at:
                failures.append(
                    ("sale-claims", f"claim {_hex(claim.claim_id)} in force",
                     f"revoked at {claim.revoked_at}, ordered at {at}")
                )  # fmt: skip
            elif claim.valid_until < at:
                failures.append(
                    ("sale-claims", f"claim {_hex(claim.claim_id)} in force",
                     f"expired at {claim.valid_until}, ordered at {at}")
                )  # fmt: skip
        endorsed = end != _ZERO32
        return _Verdict(tuple(failures), packed, endorsed, endorsed or bool(binding))

    def _anchor_registered(self, anchor: str, at: int) -> bool:
        """True when ``anchor`` was a registered anchor at time ``at`` (block timestamps)."""
        for start, end in self._anchor_times.get(anchor, ()):
            if start <= at and (end is None or at < end):
                return True
        return False

    def _refund_into(
        self, state: LedgerState, findings: list[Finding], r: RefundTerms, packed: int
    ) -> None:
        """Judge a refund against its sale (``packed``: the sale's index entry) and count it in
        the sale's session."""
        sale = SaleTerms.of(packed)
        subject = f"refund {_hex(r.refund_id)}"
        ids = self._session_ids

        def terms(session: int, product: int, currency: int) -> str:
            return (f"session {_hex(ids[session]) if session else 'not on chain'}, product "
                    f"#{product}, {_currency_text(currency)}")  # fmt: skip

        if (r.session, r.product, r.currency) != (sale.session, sale.product, sale.currency):
            findings.append(
                Finding("refund-terms", subject,
                        f"the sale's {terms(sale.session, sale.product, sale.currency)}",
                        terms(r.session, r.product, r.currency))
            )  # fmt: skip
        if r.unit_price > sale.unit_price:
            findings.append(
                Finding("refund-terms", subject, f"unit price at most {sale.unit_price}",
                        str(r.unit_price))
            )  # fmt: skip
        if r.ordered_at < sale.ordered_at:
            findings.append(
                Finding("refund-terms", subject, f"dated at or after the sale ({sale.ordered_at})",
                        f"dated {r.ordered_at}")
            )  # fmt: skip
        packed = with_refunded(packed, r.quantity)
        state.index.sales[r.sale_id] = packed
        # Counted in the sale's session, whatever session the refund names.
        session = ids[sale.session] if sale.session else None
        if session is not None:
            state.net[session] -= r.quantity
            state.refunded[session] += r.quantity
        refunded = SaleTerms.of(packed).refunded
        if refunded > sale.quantity:
            findings.append(
                Finding(
                    "over-refund", subject, f"at most {sale.quantity} refunded",
                    f"{refunded} refunded",
                )
            )  # fmt: skip

    def _finish(self, state: LedgerState, report: AuditReport) -> None:
        for waiting in state.waiting:
            sale = state.index.sale(waiting.sale_id)
            if sale is not None:
                self._refund_into(state, report.findings, waiting, sale)
            else:
                report.add(
                    "refund-match", f"refund {_hex(waiting.refund_id)}",
                    f"sale {_hex(waiting.sale_id)}", "none",
                )  # fmt: skip
        report.checked["refund-terms"] += state.checked["refund-match"]
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
        sessions: list[dict[str, Any]] = []
        for live in self.registry.sessions.values():
            verified, refunded = net[live.session_id], state.refunded[live.session_id]
            sold = verified + refunded
            sessions.append({
                "session": _hex(live.session_id),
                "anchor": live.anchor,
                "displayed": live.displayed_sales,
                "verified_net": verified,
                "sold": sold,
                "refunded": refunded,
                "refund_rate": round(refunded / sold, 4) if sold else None,
            })  # fmt: skip
            if live.displayed_sales is None:
                continue
            report.checked["displayed-sales"] += 1
            if live.displayed_sales > verified:
                report.add(
                    "displayed-sales",
                    f"session {_hex(live.session_id)}",
                    f"at most {verified} (verified net)",
                    f"{live.displayed_sales} displayed",
                )
        sold_all = sum(s["sold"] for s in sessions)
        refunded_all = sum(s["refunded"] for s in sessions)
        report.stats["sessions_detail"] = sessions
        report.stats["refund_rate"] = round(refunded_all / sold_all, 4) if sold_all else None
        threshold = self.reuse_threshold
        report.stats["buyer_commitments"] = state.buyers.stats(threshold)
        for commitment, count in state.buyers.over(threshold):
            report.warnings.append(
                f"buyer-reuse {_hex(commitment)}: on {count} sales (threshold {threshold})"
            )


def _pick(column: list[T], rows: list[int]) -> list[T]:
    """The values of ``column`` at ``rows``."""
    return [column[i] for i in rows]


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What a receipt's values earn it: failures as (check, expected, found), its index entry
    without the quantity, whether it names an endorsement, whether a price promise applies."""

    failures: tuple[tuple[str, str, str], ...]
    packed: int
    endorsed: bool
    priced: bool


def _named_endorsement(
    e: Endorsement,
    live: LiveSession | None,
    product: bytes,
    room: bytes,
    price: int,
    currency: bytes,
    at: int,
    block: int,
) -> list[tuple[str, str, str]]:
    """How a sale fails the endorsement it names (empty when it keeps it)."""
    failures: list[tuple[str, str, str]] = []
    if e.product_id != product:
        failures.append(("sale-endorsement", f"product {_hex(e.product_id)}", _hex(product)))
    if e.room_id != room:
        failures.append(("sale-endorsement", f"room {_hex(e.room_id)}", _hex(room)))
    if live is not None and e.anchor != live.anchor:
        failures.append(
            ("sale-endorsement", f"the session's host {live.anchor}", f"endorsement by {e.anchor}")
        )
    if e.block > block:
        failures.append(
            ("sale-endorsement", f"recorded by block {block} (the sale's commit)",
             f"block {e.block}")
        )  # fmt: skip
    if e.revoked_at is not None and e.revoked_at <= at:
        failures.append(
            ("sale-endorsement", f"ordered before revocation at {e.revoked_at}",
             f"ordered at {at}")
        )  # fmt: skip
    elif not e.valid_from <= at <= e.valid_until:
        failures.append(
            ("sale-endorsement", f"ordered in [{e.valid_from}, {e.valid_until}]",
             f"ordered at {at}")
        )  # fmt: skip
    if currency != e.currency or price > e.unit_price:
        failures.append(_price_failure(e, price, currency))
    return failures


def _price_failure(e: Endorsement, price: int, currency: bytes) -> tuple[str, str, str]:
    """``sale-price``: a sale above (or in another currency than) promise ``e``."""
    promised = f"at most {e.unit_price} {e.currency.decode('ascii', 'replace')}"
    return (
        "sale-price", f"{promised} (endorsement {_hex(e.endorsement_id)})",
        f"{price} {currency.decode('ascii', 'replace')}",
    )  # fmt: skip
