"""``audit db``: reconcile a platform database with the chain. Every receipt the database
calls committed must be proven on chain, every batch on chain must be known to the database,
and receipts left pending too long are listed."""

from __future__ import annotations

import time
from collections import Counter
from typing import Final

from sqlalchemy import func
from sqlmodel import Session, col, select
from web3 import Web3

from api.bundles import leaf_of
from api.db import make_engine
from api.models import Batch, Receipt
from api.models.receipts import BatchStatus, ReceiptStatus
from chain.audit.chain_audit import LEDGER_EVENTS
from chain.audit.findings import AuditReport
from chain.deploy import Deployment
from chain.events import EventReader
from chain.merkle import root_of_leaf_hashes

DB_CHECKS: Final = {
    "committed-on-chain": "each batch the database calls committed is committed on chain under "
    "its root, with its receipts' leaves rebuilding that root",
    "chain-batch-known": "each batch committed on chain is a committed batch in the database",
    "pending-age": "no receipt pending longer than the threshold",
}


def audit_db(
    w3: Web3,
    deployment: Deployment,
    database_url: str,
    *,
    pending_after: float = 300.0,
    chunk_size: int = 10_000,
    now: float | None = None,
) -> AuditReport:
    """Reconcile the database at ``database_url`` with ``deployment``'s ledger."""
    started = time.perf_counter()
    report = AuditReport("db", dict(DB_CHECKS), Counter())
    ledger = deployment.ledger(w3)
    engine = make_engine(database_url, pool_size=1)
    known: set[str] = set()
    receipts = 0
    try:
        with Session(engine) as session:
            batches = session.exec(
                select(Batch).where(col(Batch.status) == BatchStatus.COMMITTED.value)
            ).all()
            for batch in batches:
                known.add(batch.root.lower())
                report.checked["committed-on-chain"] += 1
                rows = session.exec(
                    select(Receipt).where(col(Receipt.batch_root) == batch.root)
                ).all()
                receipts += len(rows)
                subject = f"batch {batch.root}"
                state = ledger.batch(bytes.fromhex(batch.root[2:]))
                if not state.committed:
                    report.add("committed-on-chain", subject, "committed on chain", "not committed")
                    continue
                if state.count != len(rows):
                    report.add("committed-on-chain", subject, f"{state.count} receipts", len(rows))
                    continue
                hashes = [leaf_of(r).leaf_hash() for r in rows]
                stored = [bytes.fromhex(r.leaf_hash[2:]) for r in rows]
                if hashes != stored:
                    report.add("committed-on-chain", subject, "stored leaf hashes", "other values")
                    continue
                rebuilt = "0x" + root_of_leaf_hashes(hashes).hex()
                if rebuilt != batch.root.lower():
                    report.add("committed-on-chain", subject, batch.root, rebuilt)
                    continue
                wrong = [r.receipt_id for r in rows if r.status != ReceiptStatus.COMMITTED.value]
                if wrong:
                    report.add(
                        "committed-on-chain", subject, "every receipt marked committed",
                        f"{len(wrong)} not, e.g. {wrong[0]}",
                    )  # fmt: skip
            cutoff = (time.time() if now is None else now) - pending_after
            pending = session.exec(
                select(Receipt.receipt_id, Receipt.accepted_at)
                .where(col(Receipt.status) == ReceiptStatus.PENDING.value)
                .order_by(col(Receipt.accepted_at))
            ).all()
            total_pending = session.exec(
                select(func.count()).where(col(Receipt.status) == ReceiptStatus.PENDING.value)
            ).one()
    finally:
        engine.dispose()
    report.checked["pending-age"] += int(total_pending)
    for receipt_id, accepted_at in pending:
        if accepted_at < cutoff:
            report.add(
                "pending-age", f"receipt {receipt_id}", f"committed within {pending_after:g} s",
                f"pending since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(accepted_at))}",
            )  # fmt: skip
    reader = EventReader(w3, deployment, chunk_size=chunk_size)
    chain_batches = 0
    for event in reader.iter_events(names=LEDGER_EVENTS):
        root = event.args["root"] if event.name == "BatchCommitted" else event.args["leaf"]
        chain_batches += 1
        report.checked["chain-batch-known"] += 1
        if "0x" + root.hex() not in known:
            report.add(
                "chain-batch-known", f"batch 0x{root.hex()} (block {event.block_number})",
                "a committed batch in the database", "unknown",
            )  # fmt: skip
    report.stats = {
        "database_batches": len(known),
        "database_receipts_committed": receipts,
        "chain_batches": chain_batches,
        "pending": int(total_pending),
        "seconds": round(time.perf_counter() - started, 4),
    }
    return report
