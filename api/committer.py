"""The outbox committer: seal pending receipts into Merkle batches and commit them on-chain.

A batch goes through two database states:

1. **sealed** — in one transaction the receipts leave the outbox, get their batch root, and
   the batch row is written. Nothing has been sent yet.
2. **committed** — after ``commitBatch(root, count)`` (or ``recordReceipt(leaf)`` for a batch
   of one) is mined with the configured confirmations, the batch row gets its transaction and
   block, and every receipt its proof.

A crash between the two leaves a sealed batch. Before sending anything new the committer
*reconciles*: for each sealed batch it asks the ledger whether the root is there (the ledger
refuses a root twice, so asking is enough); if it is, the batch is marked committed from the
``BatchCommitted`` event, else the same root is sent again. It also re-checks recently
committed batches, so a chain that rolled back (an anvil killed before dumping its state)
gets its vanished batches again. Nothing is lost and nothing is committed twice.

Only one committer runs at a time across processes and servers: the leader lock.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col
from web3 import Web3

from api import failpoints
from api.chain_gateway import ChainGateway, ChainLink
from api.db import checkpoint
from api.locks import LeaderLock
from api.models import Batch, BatchStatus, Outbox, Receipt, ReceiptStatus
from chain.contract_errors import BatchAlreadyCommitted, ReceiptAlreadyRecorded
from chain.errors import LiveProofError
from chain.merkle import StandardMerkleTree
from chain.receipts import LEAF_TYPES

log = logging.getLogger("liveproof.committer")

#: Committed batches younger than this many blocks are re-checked at start-up (rollbacks).
RECHECK_BLOCKS = 256

_LEAF_COLUMNS = (
    col(Receipt.id),
    col(Receipt.receipt_id),
    col(Receipt.kind),
    col(Receipt.refers_to),
    col(Receipt.room_hash),
    col(Receipt.session_hash),
    col(Receipt.product_id),
    col(Receipt.endorsement_id),
    col(Receipt.quantity),
    col(Receipt.unit_price),
    col(Receipt.currency),
    col(Receipt.ordered_at),
    col(Receipt.buyer_commitment),
)


def leaf_values(row: Any) -> tuple[Any, ...]:
    """A receipt row (``_LEAF_COLUMNS`` order, id first) as leaf v1 values."""
    return (
        bytes.fromhex(row[1][2:]),
        int(row[2]),
        bytes.fromhex(row[3][2:]),
        bytes.fromhex(row[4][2:]),
        bytes.fromhex(row[5][2:]),
        bytes.fromhex(row[6][2:]),
        bytes.fromhex(row[7][2:]),
        int(row[8]),
        int(row[9]),
        str(row[10]).encode("ascii"),
        int(row[11]),
        bytes.fromhex(row[12][2:]),
    )


@dataclass(frozen=True)
class CommitResult:
    """What one committer pass did."""

    sealed: int = 0
    committed: int = 0
    receipts: int = 0


class Committer:
    """Seals and commits batches; call :meth:`run_once` or run :meth:`run_forever` in a thread."""

    def __init__(
        self,
        engine: Engine,
        gateway: ChainGateway,
        *,
        batch_size: int,
        interval: float,
        name: str = "committer",
    ) -> None:
        self.engine = engine
        self.gateway = gateway
        self.batch_size = batch_size
        self.interval = interval
        self.leader = LeaderLock(engine, name)
        self._reconciled = False
        self._head: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # ------------------------------------------------------------------ loop

    def run_forever(self) -> None:
        """Lead when possible and commit every ``interval`` seconds until :meth:`stop`."""
        while not self._stop.is_set():
            if not self._lead():
                self._stop.wait(self.interval)
                continue
            try:
                self.run_once(drain=False)
            except LiveProofError as exc:
                log.warning("committer pass failed (will retry): %s", exc)
                self.gateway.reset()
                self._reconciled = False
            except Exception:
                log.exception("committer pass failed (will retry)")
                self.gateway.reset()
                self._reconciled = False
            self._wake.wait(self.interval)
            self._wake.clear()
        self.leader.release()

    def _lead(self) -> bool:
        """Hold the leader lock (taking it if free); False while another process leads."""
        try:
            if self.leader.held:
                return True
            # A new term: whatever an earlier leader left sealed is settled before new work.
            self._reconciled = False
            return self.leader.try_acquire()
        except Exception as exc:  # the database is down: keep trying, never let the loop die
            log.warning("leader lock unavailable (will retry): %s", exc)
            return False

    def stop(self) -> None:
        """Ask :meth:`run_forever` to finish its pass and return."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Start the next pass now (an immediate receipt arrived)."""
        self._wake.set()

    def run_once(self, *, drain: bool = True) -> CommitResult:
        """Reconcile once, then seal and commit: until the outbox is drained, or (``drain``
        false, as the service loop runs) full batches and at most one partial batch.

        Under load, receipts keep arriving while a batch is being committed; draining would
        then commit them in many small batches back to back (a transaction each, tens per
        second at a thousand orders a second). The service loop leaves a partial remainder for
        its next pass, ``interval`` seconds on, so batches hold an interval's orders."""
        link = self.gateway.link()
        committed = 0
        receipts = 0
        sealed = 0
        try:
            if self._reconciled and self._chain_went_back(link):
                log.warning("the chain went back (restarted from an older state or reorganised)")
                self._reconciled = False
                # The relayer's nonce went back with it: reconnect to read it afresh.
                self.gateway.reset()
                link = self.gateway.link()
            if not self._reconciled:
                committed += self.reconcile(link)
                self._reconciled = True
            partial_left = True
            while True:
                root = self.seal_batch(partial=drain or partial_left)
                if root is None:
                    break
                failpoints.hit("committer.after_seal")
                sealed += 1
                in_batch = self.commit_sealed(link, root)
                receipts += in_batch
                if in_batch < self.batch_size:
                    partial_left = False
                committed += 1
        except BaseException:
            # A batch this pass sealed may be left uncommitted: the next pass reconciles first.
            self._reconciled = False
            raise
        return CommitResult(sealed=sealed, committed=committed, receipts=receipts)

    # ------------------------------------------------------------------ sealing

    def seal_batch(self, *, partial: bool = True) -> str | None:
        """Move up to ``batch_size`` outbox receipts into a new sealed batch; its root or None.

        Receipts flagged ``immediate`` are sealed alone (recorded with ``recordReceipt``), and
        always. Others only fill a whole batch unless ``partial``."""
        with self.engine.begin() as conn:
            # SKIP LOCKED (PostgreSQL; SQLite's writers queue at BEGIN): a leader that lost its
            # lock mid-pass may still be sealing, and must not claim the same receipts.
            first = conn.execute(
                select(col(Outbox.receipt_id), col(Outbox.immediate))
                # Same order as the batch query below, so the row locked here is in the batch.
                .order_by(
                    col(Outbox.immediate).desc(), col(Outbox.enqueued_at), col(Outbox.receipt_id)
                )
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if first is None:
                return None
            if first[1]:
                ids = [str(first[0])]
            else:
                ids = [
                    str(receipt_id)
                    for receipt_id in conn.execute(
                        select(col(Outbox.receipt_id))
                        .where(col(Outbox.immediate).is_(False))
                        .order_by(col(Outbox.enqueued_at), col(Outbox.receipt_id))
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    ).scalars()
                ]
                if not partial and len(ids) < self.batch_size:
                    return None
            rows = self._leaf_rows(conn, ids)
            tree = StandardMerkleTree.of([leaf_values(r) for r in rows], LEAF_TYPES)
            root = tree.root_hex
            conn.execute(
                Batch.__table__.insert().values(  # type: ignore[attr-defined]
                    root=root,
                    count=len(rows),
                    single=len(rows) == 1 and bool(first[1]),
                    status=BatchStatus.SEALED.value,
                    sealed_at=time.time(),
                    tree=orjson.dumps(["0x" + node.hex() for node in tree.tree]).decode(),
                )
            )
            conn.execute(
                update(Receipt).where(col(Receipt.receipt_id).in_(ids)).values(batch_root=root)
            )
            conn.execute(delete(Outbox).where(col(Outbox.receipt_id).in_(ids)))
        return root

    def _leaf_rows(self, conn: Connection, ids: list[str]) -> list[Any]:
        rows = list(
            conn.execute(
                select(*_LEAF_COLUMNS)
                .where(col(Receipt.receipt_id).in_(ids))
                .order_by(col(Receipt.id))
            )
        )
        if len(rows) != len(ids):
            raise LiveProofError(f"outbox names {len(ids)} receipts, found {len(rows)}")
        return rows

    # ------------------------------------------------------------------ committing

    def commit_sealed(self, link: ChainLink, root: str) -> int:
        """Send a sealed batch (unless the chain has it) and record the commit; receipt count."""
        with self.engine.connect() as conn:
            batch = conn.execute(
                select(col(Batch.count), col(Batch.single)).where(col(Batch.root) == root)
            ).one()
        count, single = int(batch[0]), bool(batch[1])
        root_bytes = bytes.fromhex(root[2:])
        state = link.ledger.batch(root_bytes)
        if state.committed:
            tx_hash, block_number = self._find_commit_tx(link, root_bytes, state.block_number)
        else:
            try:
                sent = self.gateway.send(
                    lambda lk: (
                        lk.ledger.record_receipt(root_bytes)
                        if single
                        else lk.ledger.commit_batch(root_bytes, count)
                    )
                )
                tx_hash, block_number = sent.tx_hash, sent.block_number
                failpoints.hit("committer.after_send")
            except (BatchAlreadyCommitted, ReceiptAlreadyRecorded):
                # Another sender got there between our check and our send.
                state = link.ledger.batch(root_bytes)
                tx_hash, block_number = self._find_commit_tx(link, root_bytes, state.block_number)
        self._wait_confirmations(link, block_number)
        committed = self._record_commit(link, root, tx_hash, block_number)
        # The API workers leave SQLite's checkpoints to this process (api.db).
        checkpoint(self.engine)
        return committed

    def _wait_confirmations(self, link: ChainLink, block_number: int) -> None:
        while link.w3.eth.block_number < block_number + link.confirmations:
            if self._stop.wait(0.5):
                raise LiveProofError("stopped while waiting for confirmations")

    def _find_commit_tx(self, link: ChainLink, root: bytes, block_number: int) -> tuple[str, int]:
        ledger = link.deployment.address("SaleLedger")
        logs = link.w3.eth.get_logs(
            {
                "address": Web3.to_checksum_address(ledger),
                "fromBlock": block_number,
                "toBlock": block_number,
                "topics": [None, "0x" + root.hex()],
            }
        )
        if not logs:
            raise LiveProofError(f"root 0x{root.hex()} is committed but no event was found")
        return "0x" + bytes(logs[0]["transactionHash"]).hex(), int(logs[0]["blockNumber"])

    def _record_commit(self, link: ChainLink, root: str, tx_hash: str, block_number: int) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            # One statement for the whole batch: proofs come from the batch's stored tree.
            committed = conn.execute(
                update(Receipt)
                .where(col(Receipt.batch_root) == root)
                .values(status=ReceiptStatus.COMMITTED.value, committed_at=now)
            ).rowcount
            conn.execute(
                update(Batch)
                .where(col(Batch.root) == root)
                .values(
                    status=BatchStatus.COMMITTED.value,
                    tx_hash=tx_hash,
                    block_number=block_number,
                    committed_at=now,
                    chain_id=link.chain_id,
                    ledger=link.deployment.address("SaleLedger"),
                )
            )
        return int(committed)

    # ------------------------------------------------------------------ reconciliation

    def _chain_went_back(self, link: ChainLink) -> bool:
        """True when the head is below the last one seen, or the newest committed batch is no
        longer on chain: a node restarted from an older state, or a reorganisation."""
        head = int(link.w3.eth.block_number)
        previous, self._head = self._head, head
        if previous is not None and head < previous:
            return True
        with self.engine.connect() as conn:
            newest = conn.execute(
                select(col(Batch.root))
                .where(col(Batch.status) == BatchStatus.COMMITTED.value)
                .order_by(col(Batch.block_number).desc())
                .limit(1)
            ).scalar()
        return newest is not None and not link.ledger.batch(bytes.fromhex(newest[2:])).committed

    def reconcile(self, link: ChainLink) -> int:
        """Settle sealed batches and re-send committed ones the chain lost; batches settled."""
        head = link.w3.eth.block_number
        with self.engine.connect() as conn:
            # Batches recorded above the chain's head are included: a rolled-back chain.
            recent = list(
                conn.execute(
                    select(col(Batch.root)).where(
                        col(Batch.status) == BatchStatus.COMMITTED.value,
                        col(Batch.block_number) >= max(head - RECHECK_BLOCKS, 0),
                    )
                ).scalars()
            )
        # Asked outside any write transaction: one chain read per batch must not hold the
        # database's write lock (SQLite's is database-wide) while orders wait to be stored.
        vanished = [r for r in recent if not link.ledger.batch(bytes.fromhex(r[2:])).committed]
        if vanished:
            log.warning("%d committed batches are gone from the chain: re-sending", len(vanished))
            with self.engine.begin() as conn:
                conn.execute(
                    update(Batch)
                    .where(col(Batch.root).in_(vanished))
                    .values(status=BatchStatus.SEALED.value, tx_hash=None, block_number=None)
                )
                conn.execute(
                    update(Receipt)
                    .where(col(Receipt.batch_root).in_(vanished))
                    .values(status=ReceiptStatus.PENDING.value, committed_at=None)
                )
        with self.engine.connect() as conn:
            sealed = list(
                conn.execute(
                    select(col(Batch.root))
                    .where(col(Batch.status) == BatchStatus.SEALED.value)
                    .order_by(col(Batch.sealed_at))
                ).scalars()
            )
        for root in sealed:
            self.commit_sealed(link, root)
        return len(sealed)
