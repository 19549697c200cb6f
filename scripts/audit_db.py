"""``audit db``: reconcile a platform database with the chain. Every receipt the database
calls committed must be proven on chain, every batch on chain must be known to the database,
and receipts left pending too long are listed. Nothing the API would serve may be contradicted
by the chain (a committed batch's transaction, block, count, ledger and stored tree), no
status may lie outside the schema, and no timestamp may lie in the future or after the block
that committed it (beyond a stated clock tolerance).

The database is opened read-only (a SQLite file must exist; PostgreSQL runs one read-only
REPEATABLE READ transaction), so the audit reads one snapshot and never writes. The ledger is
scanned first and the database read afterwards: a batch the committer has just put on chain
has then had the most time to be marked committed in the database.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import requests
from sqlalchemy import Engine, create_engine, event, func, or_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select
from web3 import Web3
from web3.exceptions import Web3Exception

from api.bundles import leaf_of
from api.db import normalise_url
from api.models import Batch, Receipt
from api.models.receipts import BatchStatus, ReceiptStatus
from chain.audit.chain_audit import LEDGER_EVENTS, Progress
from chain.audit.findings import CHAIN_CHECKS, AuditReport
from chain.audit.origin import ORIGIN_CHECK, locate
from chain.audit.state_files import check_resume_point, read_state, unusable, write_state
from chain.audit.tolerances import DEFAULT_CLOCK_TOLERANCE
from chain.clients.ledger import BatchState, SaleLedgerClient
from chain.deploy import Deployment
from chain.errors import (
    ConfigurationError,
    LiveProofError,
    RpcUnavailableError,
    VerificationError,
)
from chain.events import EventReader, ScanCursor
from chain.hashing import keccak_many
from chain.merkle import root_of_leaf_hashes
from chain.proof_bundle import check_commit_tx

DB_CHECKS: Final = {
    ORIGIN_CHECK: CHAIN_CHECKS[ORIGIN_CHECK],
    "committed-on-chain": "each batch the database calls committed is committed on chain under "
    "its root, with its receipts' leaves rebuilding that root",
    "committed-in-batch": "each receipt the database calls committed is in a batch the database "
    "calls committed (which committed-on-chain proves on chain)",
    "chain-batch-known": "each batch committed on chain is a committed batch in the database",
    "pending-age": "no receipt pending longer than the threshold",
    "status-schema": "every receipt status is pending or committed and every batch status "
    "sealed or committed (the schema's)",
    "future-time": "no receipt's ordered_at, accepted_at or committed_at and no batch's "
    "sealed_at or committed_at is later than now plus the clock tolerance",
    "before-commit": "each committed receipt's ordered_at and accepted_at, and its batch's "
    "sealed_at, are no later than the chain's commit time of the batch plus the clock tolerance",
    "commit-event": "each committed batch's tx hash and block number are those of the ledger's "
    "BatchCommitted/ReceiptRecorded event of its root",
    "batch-count": "each committed batch's count is the count the chain committed",
    "bundle-ledger": "each committed batch names the audited chain id and ledger (what its "
    "proof bundles hand shoppers)",
    "batch-tree": "each committed batch's stored Merkle tree, which proofs are served from, is "
    "the tree of its receipts' leaves",
}

#: The ``--cursor`` file's format.
CURSOR_FORMAT: Final = "liveproof-audit-db-cursor/1"
#: Seconds between cursor saves while the ledger is scanned (and once at its end).
SAVE_EVERY: Final = 5.0
#: Seconds to wait for a PostgreSQL server before giving up (unless the URL sets its own).
CONNECT_TIMEOUT: Final = 10
#: Seconds a SQLite read waits for a writer's lock.
SQLITE_TIMEOUT: Final = 30.0
_COMMITTED: Final = ReceiptStatus.COMMITTED.value
_PENDING: Final = ReceiptStatus.PENDING.value
_BATCH_COMMITTED: Final = BatchStatus.COMMITTED.value
_RECEIPT_STATUSES: Final = tuple(s.value for s in ReceiptStatus)
_BATCH_STATUSES: Final = tuple(s.value for s in BatchStatus)
_ROOT: Final = re.compile(r"0x[0-9a-f]{64}")


# ----------------------------------------------------------------------------- the database


def open_database(url: str) -> Engine:
    """A read-only engine for ``url``; raises ConfigurationError for a SQLite file that does not
    exist (opening it would create an empty one) or a URL that is neither SQLite nor PostgreSQL.
    """
    sa_url = make_url(normalise_url(url))
    if sa_url.get_backend_name() == "sqlite":
        database = sa_url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ConfigurationError(f"--database-url {url}: expected sqlite:///PATH of a file")
        path = Path(database)
        if not path.is_file():
            raise ConfigurationError(f"no SQLite database at {path}: the file does not exist")
        return _sqlite_reader(path)
    if sa_url.get_backend_name() == "postgresql":
        connect_args = (
            {} if "connect_timeout" in sa_url.query else {"connect_timeout": CONNECT_TIMEOUT}
        )
        return create_engine(
            sa_url,
            poolclass=NullPool,
            connect_args=connect_args,
            isolation_level="REPEATABLE READ",
            execution_options={"postgresql_readonly": True},
        )
    raise ConfigurationError(f"--database-url {url}: expected sqlite:///PATH or postgresql://...")


def _sqlite_reader(path: Path) -> Engine:
    """An engine that opens ``path`` read-only (``mode=ro``: never creates or writes it)."""
    uri = path.resolve().as_uri() + "?mode=ro"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT)
        # SQLAlchemy's BEGIN (below) then holds one read transaction per session: one snapshot.
        connection.isolation_level = None
        return connection

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def probe_database(engine: Engine) -> None:
    """Read one row of each audited table, so an unusable database fails before the scan."""
    with engine.connect() as connection:
        connection.execute(select(Batch.root).limit(1)).all()
        connection.execute(select(Receipt.id).limit(1)).all()


def database_error(url: str, exc: SQLAlchemyError) -> str:
    """A one-line message for a database that cannot be read (password hidden)."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        shown = "<unparseable URL>"
    cause: Any = getattr(exc, "orig", None) or exc
    reason = " ".join(str(cause).split()) or type(cause).__name__
    return f"cannot read the database {shown}: {reason}"


# ----------------------------------------------------------------------------- the chain


@dataclass
class ChainRoots:
    """Every root found on the ledger so far (root -> block, root -> commit transaction) and
    where the scan resumes: the ``--cursor`` file's content."""

    cursor: ScanCursor
    roots: dict[str, int] = field(default_factory=dict)
    txs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, cursor_file: Path | None, deployment: Deployment, first: int) -> ChainRoots:
        """The state saved in ``cursor_file``, or an empty one at block ``first`` (where the
        contracts were found on the chain)."""
        if cursor_file is not None and cursor_file.exists():
            return cls.load(cursor_file, deployment)
        return cls(ScanCursor(first))

    @classmethod
    def load(cls, path: Path, deployment: Deployment) -> ChainRoots:
        """Read a state written by :meth:`save` for ``deployment``."""
        data = read_state(path, CURSOR_FORMAT, deployment)
        try:
            cursor = ScanCursor(int(data["next_block"]), int(data["next_log_index"]))
            roots = {str(root): int(block) for root, block in data["roots"].items()}
            # Cursors written before transactions were kept have none: those are then read
            # from the chain (commit-event).
            txs = {str(root): str(tx) for root, tx in data.get("txs", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(path, exc) from None
        if cursor.next_block < 0 or cursor.next_log_index < 0:
            raise unusable(path, ValueError("a negative scan position"))
        bad = next((h for h in [*roots, *txs, *txs.values()] if not _ROOT.fullmatch(h)), None)
        if bad is not None:
            raise unusable(path, ValueError(f"not a 0x-prefixed lower-case hash: {bad!r}"))
        return cls(cursor, roots, txs)

    def save(self, path: Path, deployment: Deployment) -> None:
        """Write the state to ``path`` atomically, bound to ``deployment``."""
        data = {
            "next_block": self.cursor.next_block,
            "next_log_index": self.cursor.next_log_index,
            "roots": self.roots,
            "txs": self.txs,
        }
        write_state(path, CURSOR_FORMAT, data, deployment)


@dataclass(frozen=True)
class LedgerScan:
    """What one run's ledger scan read."""

    from_block: int
    to_block: int
    events: int
    requests: int


def scan_ledger(
    w3: Web3,
    deployment: Deployment,
    found: ChainRoots,
    *,
    chunk_size: int,
    cursor_file: Path | None = None,
    progress: Progress | None = None,
) -> LedgerScan:
    """Add the roots the ledger committed since ``found.cursor`` (up to the latest block) to
    ``found``, saving it to ``cursor_file`` now and then and at the end."""
    reader = EventReader(w3, deployment, chunk_size=chunk_size, cursor=found.cursor)
    start, end = found.cursor.next_block, reader.latest_block()
    check_resume_point(start, end)
    step = None if progress is None else (lambda done, total: progress("ledger", done, total))
    saved = time.monotonic()
    try:
        for commit in reader.iter_events(None, end, names=LEDGER_EVENTS, progress=step):
            root = commit.args["root"] if commit.name == "BatchCommitted" else commit.args["leaf"]
            found.roots["0x" + root.hex()] = commit.block_number
            found.txs["0x" + root.hex()] = commit.tx_hash.lower()
            if cursor_file is not None and time.monotonic() - saved > SAVE_EVERY:
                found.save(cursor_file, deployment)
                saved = time.monotonic()
    finally:
        # The cursor only ever names events already added: saving after a failure is safe.
        if cursor_file is not None:
            found.save(cursor_file, deployment)
    return LedgerScan(start, end, reader.stats.events, reader.stats.requests)


def batch_on_chain(ledger: SaleLedgerClient, root: bytes) -> BatchState:
    """The ledger's record of ``root``; raises RpcUnavailableError when the node fails."""
    try:
        return ledger.batch(root)
    except (requests.RequestException, Web3Exception, OSError) as exc:
        raise RpcUnavailableError(f"reading batch 0x{root.hex()} from the ledger: {exc}") from exc


# ----------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class BatchAudit:
    """What checking a committed batch against the chain needs."""

    w3: Web3
    ledger: SaleLedgerClient
    chain_id: int
    found: ChainRoots
    now: float
    tolerance: float


def audit_db(
    w3: Web3,
    deployment: Deployment,
    database_url: str,
    *,
    pending_after: float = 300.0,
    chunk_size: int = 10_000,
    cursor_file: Path | None = None,
    progress: Progress | None = None,
    now: float | None = None,
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
) -> AuditReport:
    """Reconcile the database at ``database_url`` with ``deployment``'s ledger.

    With ``cursor_file`` the ledger scan resumes where the previous run stopped, and the roots
    found then are checked again with the new ones. ``progress`` is called with
    ``("ledger", block, last block)`` during the scan and ``("database", batch, batches)``
    while committed batches are checked on chain. ``now`` (default: the clock) and
    ``clock_tolerance`` (seconds) judge timestamps."""
    started = time.perf_counter()
    report = AuditReport("db", dict(DB_CHECKS))
    at = time.time() if now is None else now
    engine = open_database(database_url)
    try:
        probe_database(engine)
        # Where the contracts are on the chain, not where the deployment file says: a file
        # claiming a later block would hide earlier commits from chain-batch-known.
        origin = locate(w3, deployment, block=int(w3.eth.block_number))
        report.findings += origin.findings
        report.checked[ORIGIN_CHECK] += len(origin.creations)
        found = ChainRoots.start(cursor_file, deployment, origin.start_block)
        scan = scan_ledger(
            w3, deployment, found,
            chunk_size=chunk_size, cursor_file=cursor_file, progress=progress,
        )  # fmt: skip
        audit = BatchAudit(
            w3, deployment.ledger(w3), deployment.chain_id, found, at, clock_tolerance
        )
        with Session(engine) as session:
            statuses = check_committed_batches(session, audit, report, progress)
            committed_receipts = check_committed_in_batch(session, report)
            pending = check_pending_age(session, report, at - pending_after, pending_after)
            check_statuses(session, report)
            check_future_times(session, report, at + clock_tolerance, clock_tolerance)
    finally:
        engine.dispose()
    check_chain_batches_known(report, found.roots, statuses)
    report.stats = {
        "chain_id": deployment.chain_id,
        "from_block": scan.from_block,
        "to_block": scan.to_block,
        "scanned_events": scan.events,
        "log_requests": scan.requests,
        "database_batches": sum(1 for s in statuses.values() if s == _BATCH_COMMITTED),
        "database_receipts_committed": committed_receipts,
        "chain_batches": len(found.roots),
        "pending": pending,
        "clock_tolerance": clock_tolerance,
        "seconds": round(time.perf_counter() - started, 4),
    }
    return report


def check_committed_batches(
    session: Session, audit: BatchAudit, report: AuditReport, progress: Progress | None
) -> dict[str, str]:
    """Every batch the database calls committed, against the chain; returns every batch's
    status by lower-case root."""
    rows = session.exec(select(Batch.root, Batch.status).order_by(col(Batch.root))).all()
    committed = [root for root, status in rows if status == _BATCH_COMMITTED]
    if progress is not None:
        progress("database", 0, len(committed))
    for done, root in enumerate(committed, 1):
        report.checked["committed-on-chain"] += 1
        _check_committed_batch(session, audit, report, root)
        if progress is not None:
            progress("database", done, len(committed))
    return {root.lower(): status for root, status in rows}


def _check_committed_batch(
    session: Session, audit: BatchAudit, report: AuditReport, root: str
) -> None:
    subject = f"batch {root}"

    def fail(expected: object, found: object) -> None:
        report.add("committed-on-chain", subject, expected, found)

    if not _ROOT.fullmatch(root.lower()):
        fail("a 0x-prefixed 32-byte hex root", "malformed")
        return
    state = batch_on_chain(audit.ledger, bytes.fromhex(root[2:]))
    if not state.committed:
        fail("committed on chain", "not committed")
        return
    batch = session.get(Batch, root)
    assert batch is not None  # listed by the same snapshot
    check_commit_record(audit, report, batch, state)
    rows = session.exec(select(Receipt).where(col(Receipt.batch_root) == root)).all()
    if state.count != len(rows):
        fail(f"{state.count} receipts (the chain's count)", f"{len(rows)} in the database")
        return
    mismatch = _leaf_mismatch(rows, root)
    if mismatch is not None:
        fail(*mismatch)
        return
    wrong = [r.receipt_id for r in rows if r.status != _COMMITTED]
    if wrong:
        fail("every receipt marked committed", f"{len(wrong)} not, e.g. {wrong[0]}")
        return
    # The rows are the chain's leaves: now what the API serves from them and the batch row.
    check_batch_tree(report, batch, [r.leaf_hash.lower() for r in rows])
    check_before_commit(report, audit.tolerance, batch, rows, state.committed_at)


def check_commit_record(
    audit: BatchAudit, report: AuditReport, batch: Batch, state: BatchState
) -> None:
    """``batch-count``, ``bundle-ledger`` and ``commit-event`` for a batch the chain holds:
    what the API says of it (count, chain, ledger, block, transaction) is what the chain says.
    """
    subject, ledger = f"batch {batch.root}", audit.ledger.address
    for check in ("batch-count", "bundle-ledger", "commit-event"):
        report.checked[check] += 1
    if batch.count != state.count:
        report.add("batch-count", subject, f"count {state.count} (the chain's)", batch.count)
    if batch.chain_id != audit.chain_id or (batch.ledger or "").lower() != ledger.lower():
        report.add(
            "bundle-ledger", subject, f"chain {audit.chain_id}, ledger {ledger}",
            f"chain {batch.chain_id}, ledger {batch.ledger}",
        )  # fmt: skip
    if batch.block_number != state.block_number:
        report.add(
            "commit-event", subject, f"block {state.block_number} (the chain's commit)",
            f"block {batch.block_number}",
        )  # fmt: skip
        return
    tx = (batch.tx_hash or "").lower()
    known = audit.found.txs.get(batch.root.lower())
    if known is not None:
        if tx != known:
            report.add("commit-event", subject, f"tx {known} (the chain's commit)", f"tx {tx}")
        return
    if not _ROOT.fullmatch(tx):
        report.add("commit-event", subject, "a 0x-prefixed 32-byte tx hash", repr(batch.tx_hash))
        return
    try:  # a root the scan did not see (a cursor of an older format): ask the transaction
        check_commit_tx(
            audit.w3, bytes.fromhex(tx[2:]), state.block_number, ledger,
            bytes.fromhex(batch.root[2:]),
        )  # fmt: skip
    except VerificationError as exc:
        report.add("commit-event", subject, exc.expected, exc.found)
    except (requests.RequestException, Web3Exception, OSError) as exc:
        raise RpcUnavailableError(f"reading transaction {tx}: {exc}") from exc


def check_batch_tree(report: AuditReport, batch: Batch, leaves: Sequence[str]) -> None:
    """``batch-tree``: the stored tree has the batch's leaves in its leaf slots (sorted, as
    the committer builds it), every internal node hashes its two children, and its top is the
    root; so every proof the API reads from it is the chain's."""
    report.checked["batch-tree"] += 1
    subject = f"batch {batch.root}"
    try:
        nodes = [bytes.fromhex(str(h).removeprefix("0x")) for h in orjson.loads(batch.tree)]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        report.add("batch-tree", subject, "a JSON list of hex nodes", "unreadable")
        return
    count = len(leaves)
    expected_leaves = sorted((bytes.fromhex(h[2:]) for h in leaves), reverse=True)
    if len(nodes) != 2 * count - 1 or nodes[count - 1 :] != expected_leaves:
        report.add(
            "batch-tree", subject, f"{2 * count - 1} nodes ending in its {count} leaves",
            f"{len(nodes)} nodes, other leaves",
        )  # fmt: skip
        return
    pairs = (
        min(nodes[2 * i + 1], nodes[2 * i + 2]) + max(nodes[2 * i + 1], nodes[2 * i + 2])
        for i in range(count - 1)
    )
    bad = next((i for i, h in enumerate(keccak_many(pairs)) if h != nodes[i]), None)
    if bad is not None:
        report.add("batch-tree", subject, f"node {bad} hashing its children", "another value")
    elif "0x" + nodes[0].hex() != batch.root.lower():
        report.add("batch-tree", subject, f"top node {batch.root}", "0x" + nodes[0].hex())


def check_before_commit(
    report: AuditReport, tolerance: float, batch: Batch, rows: Sequence[Receipt], at: int
) -> None:
    """``before-commit``: nothing in a committed batch is dated after the chain committed it
    (``at``, the ledger's commit time) by more than ``tolerance`` seconds."""
    limit = at + tolerance
    expected = f"no later than {_iso(at)} (the commit) + {tolerance:g} s"
    report.checked["before-commit"] += len(rows) + 1
    if batch.sealed_at > limit:
        report.add(
            "before-commit", f"batch {batch.root}", expected, f"sealed {_iso(batch.sealed_at)}"
        )
    for r in rows:
        late = [
            (n, t) for n, t in (("ordered", r.ordered_at), ("accepted", r.accepted_at)) if t > limit
        ]
        if late:
            shown = ", ".join(f"{n} {_iso(t)}" for n, t in late)
            report.add("before-commit", f"receipt {r.receipt_id}", expected, shown)


def _iso(at: float) -> str:
    """``at`` as an ISO 8601 UTC time (out-of-range values as they are)."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    except (OverflowError, OSError, ValueError):
        return f"{at:g} (unix seconds)"


def _leaf_mismatch(rows: Sequence[Receipt], root: str) -> tuple[str, str] | None:
    """(expected, found) when the rows' values do not give their stored leaf hashes or do not
    rebuild ``root``; None when they do."""
    try:
        hashes = [leaf_of(r).leaf_hash() for r in rows]
        stored = [bytes.fromhex(r.leaf_hash.removeprefix("0x")) for r in rows]
    except (LiveProofError, ValueError) as exc:
        return "receipt leaf v1 values", f"{type(exc).__name__}: {exc}"
    if hashes != stored:
        return "stored leaf hashes", "other values"
    rebuilt = "0x" + root_of_leaf_hashes(hashes).hex()
    if rebuilt != root.lower():
        return root, rebuilt
    return None


def check_committed_in_batch(session: Session, report: AuditReport) -> int:
    """``committed-in-batch``: one anti-join finds every receipt marked committed whose batch
    the database does not call committed (no batch, an unknown root, a sealed batch). Returns
    how many receipts are marked committed."""
    total = session.exec(
        select(func.count()).select_from(Receipt).where(col(Receipt.status) == _COMMITTED)
    ).one()
    report.checked["committed-in-batch"] += int(total)
    outside = session.exec(
        select(Receipt.receipt_id, Receipt.batch_root, Batch.status)
        .outerjoin(Batch, col(Batch.root) == col(Receipt.batch_root))
        .where(
            col(Receipt.status) == _COMMITTED,
            or_(col(Batch.root).is_(None), col(Batch.status) != _BATCH_COMMITTED),
        )
        .order_by(col(Receipt.id))
    ).all()
    for receipt_id, root, status in outside:
        if root is None:
            found = "no batch"
        elif status is None:
            found = f"batch {root}, unknown to the database"
        else:
            found = f"batch {root}, marked {status}"
        report.add("committed-in-batch", f"receipt {receipt_id}", "in a committed batch", found)
    return int(total)


def check_pending_age(
    session: Session, report: AuditReport, cutoff: float, pending_after: float
) -> int:
    """``pending-age``: every receipt pending since before ``cutoff``. Returns how many
    receipts are pending."""
    total = session.exec(
        select(func.count()).select_from(Receipt).where(col(Receipt.status) == _PENDING)
    ).one()
    report.checked["pending-age"] += int(total)
    late = session.exec(
        select(Receipt.receipt_id, Receipt.accepted_at)
        .where(col(Receipt.status) == _PENDING, col(Receipt.accepted_at) < cutoff)
        .order_by(col(Receipt.accepted_at))
    ).all()
    for receipt_id, accepted_at in late:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(accepted_at))
        report.add(
            "pending-age", f"receipt {receipt_id}", f"committed within {pending_after:g} s",
            f"pending since {since}",
        )  # fmt: skip
    return int(total)


def check_chain_batches_known(
    report: AuditReport, roots: dict[str, int], statuses: dict[str, str]
) -> None:
    """``chain-batch-known``: every root found on chain (``roots``: root -> block) is a batch
    the database calls committed (``statuses``: lower-case root -> status)."""
    for root, block in roots.items():
        report.checked["chain-batch-known"] += 1
        status = statuses.get(root)
        if status != _BATCH_COMMITTED:
            report.add(
                "chain-batch-known", f"batch {root} (block {block})",
                "a committed batch in the database",
                "unknown" if status is None else f"marked {status}",
            )  # fmt: skip


def check_statuses(session: Session, report: AuditReport) -> None:
    """``status-schema``: every receipt's and batch's status is one the schema defines (a
    status the code does not know is served as is, and skipped by every other check)."""
    for table, key, statuses in (
        (Receipt, Receipt.receipt_id, _RECEIPT_STATUSES),
        (Batch, Batch.root, _BATCH_STATUSES),
    ):
        kind = "receipt" if table is Receipt else "batch"
        total = session.exec(select(func.count()).select_from(table)).one()
        report.checked["status-schema"] += int(total)
        status = col(table.status)
        odd = session.exec(
            select(key, status).where(or_(status.is_(None), status.not_in(statuses)))
        ).all()
        for name, found in odd:
            report.add("status-schema", f"{kind} {name}", " or ".join(statuses), repr(found))


def check_future_times(
    session: Session, report: AuditReport, limit: float, tolerance: float
) -> None:
    """``future-time``: no receipt or batch timestamp later than ``limit`` (now plus
    ``tolerance`` seconds)."""
    expected = f"no time after {_iso(limit)} (now + {tolerance:g} s)"
    tables: tuple[tuple[str, Any, Any, tuple[Any, ...]], ...] = (
        ("receipt", Receipt, Receipt.receipt_id, (Receipt.ordered_at, Receipt.accepted_at,
                                                  Receipt.committed_at)),
        ("batch", Batch, Batch.root, (Batch.sealed_at, Batch.committed_at)),
    )  # fmt: skip
    for kind, table, key, columns in tables:
        total = session.exec(select(func.count()).select_from(table)).one()
        report.checked["future-time"] += int(total)
        late = session.exec(
            select(key, *columns).where(or_(*(col(c) > limit for c in columns)))
        ).all()
        for name, *values in late:
            shown = ", ".join(
                f"{c.key} {_iso(v)}"
                for c, v in zip(columns, values, strict=True)
                if v is not None and v > limit
            )
            report.add("future-time", f"{kind} {name}", expected, shown)
