"""``report sales``: verified net sales from the chain, grouped by anchor, product, room or
live session, as CSV, JSON or a chart.

Only receipts of batches whose manifest rebuilds the committed root are counted (see
:func:`chain.audit.verified.verified_batches`); a batch that does not verify is left out and
named, so the report says it is incomplete rather than guessing. A receipt id committed more
than once counts once, and the repeat is a finding. A refund counts where its sale counted (the
sale's anchor, product, room or session), whatever its own leaf names: a platform cannot move
refunds to another session or anchor (``audit chain`` flags such a refund, ``refund-terms``).
A refund whose sale is not (yet) counted counts under its own leaf's fields.

:data:`BATCH_CHECKS` are the checks behind any figure counted from verified batches; ``export
epcis`` runs them too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

from web3 import Web3

from chain.audit.chain_audit import Progress
from chain.audit.findings import AuditReport
from chain.audit.manifests import ManifestSource
from chain.audit.registry import Registry
from chain.audit.state_files import check_resume_point, read_state, unusable, write_state
from chain.audit.verified import SkippedBatch, VerifiedBatch, read_registry, verified_batches
from chain.deploy import Deployment
from chain.errors import ConfigurationError
from chain.events import ScanCursor

Grouping = Literal["anchor", "product", "room", "session"]
GROUPINGS: Final[tuple[Grouping, ...]] = get_args(Grouping)
_SALE: Final = 0
_NO_SESSION: Final = "(no session opened on chain)"
_STATE_FORMAT: Final = "liveproof-sales-cursor/2"

#: The checks behind every figure counted from verified batches, by stable name.
BATCH_CHECKS: Final = {
    "batch-verified": "each committed batch's manifest rebuilds its committed root, so its "
    "receipts are counted",
    "duplicate-receipt": "no receipt id committed twice (a repeat is counted once)",
}


@dataclass(frozen=True)
class RepeatedReceipt:
    """A receipt id committed again, in a later batch or twice in one."""

    receipt_id: bytes
    root: bytes
    block_number: int


def add_batch_findings(
    report: AuditReport,
    *,
    verified: int,
    skipped: Iterable[SkippedBatch],
    receipts: int,
    repeats: Iterable[RepeatedReceipt],
) -> None:
    """Count :data:`BATCH_CHECKS` into ``report``: ``verified`` batches counted and those
    ``skipped``, ``receipts`` read and the ``repeats`` among them."""
    left_out = list(skipped)
    report.checked["batch-verified"] += verified + len(left_out)
    for batch in left_out:
        report.add("batch-verified", f"batch 0x{batch.root.hex()} (block {batch.block_number})",
                   "a manifest that rebuilds the committed root", batch.why)  # fmt: skip
    report.checked["duplicate-receipt"] += receipts
    for repeat in repeats:
        report.add("duplicate-receipt", f"receipt 0x{repeat.receipt_id.hex()}", "committed once",
                   f"committed again in batch 0x{repeat.root.hex()} "
                   f"(block {repeat.block_number})")  # fmt: skip


@dataclass
class SalesRow:
    """The verified sales of one group; amounts in minor currency units."""

    key: str
    label: str
    units_sold: int = 0
    units_refunded: int = 0
    orders: int = 0
    refunds: int = 0
    #: Net amount (sales minus refunds) per ISO 4217 currency code.
    net_amount: dict[str, int] = field(default_factory=dict)

    @property
    def net_units(self) -> int:
        """Units sold less units refunded."""
        return self.units_sold - self.units_refunded

    def to_json(self) -> dict[str, Any]:
        """The row as one object of the JSON report."""
        return {
            "key": self.key,
            "label": self.label,
            "units_sold": self.units_sold,
            "units_refunded": self.units_refunded,
            "net_units": self.net_units,
            "orders": self.orders,
            "refunds": self.refunds,
            "net_amount": dict(sorted(self.net_amount.items())),
        }


@dataclass
class SalesReport:
    """Verified net sales of one chain up to one block, grouped one way."""

    by: Grouping
    chain_id: int
    from_block: int
    to_block: int
    rows: list[SalesRow]
    batches: int = 0
    receipts: int = 0
    duplicates: int = 0
    skipped: list[SkippedBatch] = field(default_factory=list)
    repeats: list[RepeatedReceipt] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every committed batch was verified and counted."""
        return not self.skipped

    @property
    def currencies(self) -> list[str]:
        """Every currency with an amount in some row, sorted."""
        return sorted({code for row in self.rows for code in row.net_amount})

    def audit_report(self) -> AuditReport:
        """What the report rests on, as :data:`BATCH_CHECKS` (``--report FILE``)."""
        report = AuditReport("sales", dict(BATCH_CHECKS))
        add_batch_findings(report, verified=self.batches, skipped=self.skipped,
                           receipts=self.receipts, repeats=self.repeats)  # fmt: skip
        report.stats = {
            "chain_id": self.chain_id, "from_block": self.from_block, "to_block": self.to_block,
            "by": self.by, "rows": len(self.rows), "batches": self.batches,
            "receipts": self.receipts, "duplicates": self.duplicates,
            "skipped_batches": len(self.skipped),
        }  # fmt: skip
        return report

    def to_json(self) -> list[dict[str, Any]]:
        """The rows as a JSON list of objects."""
        return [row.to_json() for row in self.rows]

    def to_csv(self) -> str:
        """The rows as CSV with a header row; one ``net_amount_<CUR>`` column per currency."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        currencies = self.currencies
        writer.writerow(
            [self.by, "label", "units_sold", "units_refunded", "net_units", "orders", "refunds",
             *(f"net_amount_{code}" for code in currencies)]
        )  # fmt: skip
        for r in self.rows:
            writer.writerow(
                [r.key, r.label, r.units_sold, r.units_refunded, r.net_units, r.orders, r.refunds,
                 *(r.net_amount.get(code, 0) for code in currencies)]
            )  # fmt: skip
        return out.getvalue()

    def write(self, path: Path, fmt: Literal["csv", "json", "png"]) -> None:
        """Write the report to ``path`` as CSV, JSON or a PNG chart."""
        if fmt == "png":
            from chain.audit.sales_chart import render_sales_chart

            render_sales_chart(self, path)
        elif fmt == "csv":
            path.write_text(self.to_csv(), encoding="utf-8")
        else:
            path.write_text(
                json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8"
            )


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def group_of(registry: Registry, by: Grouping) -> Callable[[bytes, bytes, bytes], tuple[str, str]]:
    """A function from a leaf's (session id, room id, product id) to its group's key and label."""
    if by == "session":
        return lambda session, _room, _product: (_hex(session), _hex(session))
    if by == "room":
        return lambda _session, room, _product: (_hex(room), _hex(room))
    if by == "product":

        def product(_session: bytes, _room: bytes, product_id: bytes) -> tuple[str, str]:
            found = registry.products.get(product_id)
            if found is None:
                return _hex(product_id), f"(unregistered product {_hex(product_id)})"
            return _hex(product_id), f"{found.name} (GTIN {found.gtin:014d})"

        return product

    def anchor(session_id: bytes, _room: bytes, _product: bytes) -> tuple[str, str]:
        session = registry.sessions.get(session_id)
        if session is None:
            return "", _NO_SESSION
        handle = registry.handles.get(session.anchor)
        return session.anchor, f"{handle} ({session.anchor})" if handle else session.anchor

    return anchor


@dataclass
class SalesState:
    """A report in progress: what ``--cursor FILE`` keeps between runs."""

    by: Grouping
    cursor: ScanCursor
    rows: dict[str, SalesRow] = field(default_factory=dict)
    #: Every receipt id counted -> the row key a sale counted under ("" for a refund).
    seen: dict[bytes, str] = field(default_factory=dict)
    batches: int = 0
    receipts: int = 0
    duplicates: int = 0
    repeats: list[RepeatedReceipt] = field(default_factory=list)

    def save(self, path: Path, deployment: Deployment) -> None:
        """Write the state as JSON, atomically (only ever of a complete report)."""
        write_state(
            path,
            _STATE_FORMAT,
            {
                "by": self.by,
                "next_block": self.cursor.next_block,
                "next_log_index": self.cursor.next_log_index,
                "rows": [asdict(row) for row in self.rows.values()],
                "seen": {rid.hex(): key for rid, key in self.seen.items()},
                "batches": self.batches,
                "receipts": self.receipts,
                "duplicates": self.duplicates,
                "repeats": [
                    [r.receipt_id.hex(), r.root.hex(), r.block_number] for r in self.repeats
                ],
            },
            deployment,
        )

    @classmethod
    def load(cls, path: Path, by: Grouping, deployment: Deployment) -> SalesState:
        """Read a state written by :meth:`save` for the same grouping."""
        data = read_state(path, _STATE_FORMAT, deployment)
        if data.get("by") != by:
            raise ConfigurationError(f"{path} holds a report by {data.get('by')}, not by {by}")
        try:
            rows = [SalesRow(**row) for row in data["rows"]]
            return cls(
                by=by,
                cursor=ScanCursor(int(data["next_block"]), int(data["next_log_index"])),
                rows={row.key: row for row in rows},
                seen={bytes.fromhex(rid): str(key) for rid, key in data["seen"].items()},
                batches=int(data["batches"]),
                receipts=int(data["receipts"]),
                duplicates=int(data["duplicates"]),
                repeats=[
                    RepeatedReceipt(bytes.fromhex(rid), bytes.fromhex(root), int(block))
                    for rid, root, block in data.get("repeats", [])
                ],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(path, exc) from None


def tally_sales(
    registry: Registry,
    batches: Iterable[VerifiedBatch],
    by: Grouping,
    state: SalesState | None = None,
) -> SalesReport:
    """Fold verified batches into rows (most net units first), on top of ``state`` when
    resuming; chain fields are left zero."""
    group = group_of(registry, by)
    state = state or SalesState(by, ScanCursor(0))
    rows = state.rows
    seen = state.seen
    report = SalesReport(by, 0, 0, 0, [])
    report.batches, report.receipts, report.duplicates = (
        state.batches, state.receipts, state.duplicates,
    )  # fmt: skip
    report.repeats = state.repeats  # shared, like rows and seen: the state keeps them
    for batch in batches:
        report.batches += 1
        leaves = batch.leaves
        for rid, kind, ref, session, room, product, qty, price, currency in zip(
            leaves.receipt_id, leaves.kind, leaves.refers_to, leaves.session_id, leaves.room_id,
            leaves.product_id, leaves.quantity, leaves.unit_price, leaves.currency, strict=True,
        ):  # fmt: skip
            report.receipts += 1
            if rid in seen:
                report.duplicates += 1
                report.repeats.append(RepeatedReceipt(rid, batch.root, batch.block_number))
                continue
            sale_key = seen.get(ref) if kind != _SALE else None
            if sale_key:  # a refund counts where its sale counted
                key, label = sale_key, rows[sale_key].label
            else:
                key, label = group(session, room, product)
            seen[rid] = key if kind == _SALE else ""
            row = rows.get(key)
            if row is None:
                row = rows[key] = SalesRow(key, label)
            code = currency.decode("ascii", "replace")
            amount = qty * price
            if kind == _SALE:
                row.units_sold += qty
                row.orders += 1
                row.net_amount[code] = row.net_amount.get(code, 0) + amount
            else:
                row.units_refunded += qty
                row.refunds += 1
                row.net_amount[code] = row.net_amount.get(code, 0) - amount
    report.rows = sorted(rows.values(), key=lambda r: (-r.net_units, r.label, r.key))
    state.batches, state.receipts, state.duplicates = (
        report.batches, report.receipts, report.duplicates,
    )  # fmt: skip
    return report


def sales_report(
    w3: Web3,
    deployment: Deployment,
    manifests: ManifestSource,
    *,
    by: Grouping = "anchor",
    to_block: int | None = None,
    chunk_size: int = 10_000,
    skipped: Callable[[SkippedBatch], None] | None = None,
    progress: Progress | None = None,
    cursor_file: Path | None = None,
) -> SalesReport:
    """Verified net sales of ``deployment`` up to ``to_block`` (default: the latest block),
    grouped ``by`` anchor, product, room or session. Batches that do not verify are listed in
    :attr:`SalesReport.skipped` (and handed to ``skipped`` as they are met).

    With ``cursor_file`` the tallies and the scan position are kept there: a later run with
    the same file reads only the commits made since."""
    latest = int(w3.eth.block_number)
    end = latest if to_block is None else to_block
    registry = read_registry(w3, deployment, to_block=end, chunk_size=chunk_size, progress=progress)
    if cursor_file is not None and cursor_file.exists():
        state = SalesState.load(cursor_file, by, deployment)
        check_resume_point(state.cursor.next_block, latest)
    else:
        state = SalesState(by, ScanCursor(deployment.start_block))
    left_out: list[SkippedBatch] = []

    def skip(batch: SkippedBatch) -> None:
        left_out.append(batch)
        if skipped is not None:
            skipped(batch)

    batches = verified_batches(
        w3, deployment, manifests, to_block=end, chunk_size=chunk_size, skipped=skip,
        progress=progress, cursor=state.cursor,
    )  # fmt: skip
    report = tally_sales(registry, batches, by, state)
    if cursor_file is not None and not left_out:
        # An incomplete report leaves the cursor where it was, so the next run retries.
        state.save(cursor_file, deployment)
    report.chain_id = deployment.chain_id
    report.from_block = deployment.start_block
    report.to_block = end
    report.skipped = left_out
    return report
