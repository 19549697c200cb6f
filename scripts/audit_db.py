"""``audit db``: reconcile a platform database with the chain. Every receipt the database
calls committed must be proven on chain, every batch on chain must be known to the database,
and receipts left pending too long are listed.

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
from chain.audit.findings import AuditReport
from chain.audit.state_files import check_resume_point, read_state, unusable, write_state
from chain.clients.ledger import BatchState, SaleLedgerClient
from chain.deploy import Deployment
from chain.errors import ConfigurationError, LiveProofError, RpcUnavailableError
from chain.events import EventReader, ScanCursor
from chain.merkle import root_of_leaf_hashes

DB_CHECKS: Final = {
    "committed-on-chain": "each batch the database calls committed is committed on chain under "
    "its root, with its receipts' leaves rebuilding that root",
    "committed-in-batch": "each receipt the database calls committed is in a batch the database "
    "calls committed (which committed-on-chain proves on chain)",
    "chain-batch-known": "each batch committed on chain is a committed batch in the database",
    "pending-age": "no receipt pending longer than the threshold",
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
    """Every root found on the ledger so far (root -> block) and where the scan resumes: the
    ``--cursor`` file's content."""

    cursor: ScanCursor
    roots: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, cursor_file: Path | None, deployment: Deployment) -> ChainRoots:
        """The state saved in ``cursor_file``, or an empty one at the deployment's first block."""
        if cursor_file is not None and cursor_file.exists():
            return cls.load(cursor_file, deployment)
        return cls(ScanCursor(deployment.start_block))

    @classmethod
    def load(cls, path: Path, deployment: Deployment) -> ChainRoots:
        """Read a state written by :meth:`save` for ``deployment``."""
        data = read_state(path, CURSOR_FORMAT, deployment)
        try:
            cursor = ScanCursor(int(data["next_block"]), int(data["next_log_index"]))
            roots = {str(root): int(block) for root, block in data["roots"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(path, exc) from None
        if cursor.next_block < 0 or cursor.next_log_index < 0:
            raise unusable(path, ValueError("a negative scan position"))
        bad = next((root for root in roots if not _ROOT.fullmatch(root)), None)
        if bad is not None:
            raise unusable(path, ValueError(f"not a 0x-prefixed lower-case root: {bad!r}"))
        return cls(cursor, roots)

    def save(self, path: Path, deployment: Deployment) -> None:
        """Write the state to ``path`` atomically, bound to ``deployment``."""
        data = {
            "next_block": self.cursor.next_block,
            "next_log_index": self.cursor.next_log_index,
            "roots": self.roots,
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
) -> AuditReport:
    """Reconcile the database at ``database_url`` with ``deployment``'s ledger.

    With ``cursor_file`` the ledger scan resumes where the previous run stopped, and the roots
    found then are checked again with the new ones. ``progress`` is called with
    ``("ledger", block, last block)`` during the scan and ``("database", batch, batches)``
    while committed batches are checked on chain."""
    started = time.perf_counter()
    report = AuditReport("db", dict(DB_CHECKS))
    engine = open_database(database_url)
    try:
        probe_database(engine)
        found = ChainRoots.start(cursor_file, deployment)
        scan = scan_ledger(
            w3, deployment, found,
            chunk_size=chunk_size, cursor_file=cursor_file, progress=progress,
        )  # fmt: skip
        with Session(engine) as session:
            statuses = check_committed_batches(session, deployment.ledger(w3), report, progress)
            committed_receipts = check_committed_in_batch(session, report)
            cutoff = (time.time() if now is None else now) - pending_after
            pending = check_pending_age(session, report, cutoff, pending_after)
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
        "seconds": round(time.perf_counter() - started, 4),
    }
    return report


def check_committed_batches(
    session: Session, ledger: SaleLedgerClient, report: AuditReport, progress: Progress | None
) -> dict[str, str]:
    """``committed-on-chain`` for every batch the database calls committed; returns every
    batch's status by lower-case root."""
    rows = session.exec(select(Batch.root, Batch.status).order_by(col(Batch.root))).all()
    committed = [root for root, status in rows if status == _BATCH_COMMITTED]
    if progress is not None:
        progress("database", 0, len(committed))
    for done, root in enumerate(committed, 1):
        report.checked["committed-on-chain"] += 1
        _check_committed_batch(session, ledger, report, root)
        if progress is not None:
            progress("database", done, len(committed))
    return {root.lower(): status for root, status in rows}


def _check_committed_batch(
    session: Session, ledger: SaleLedgerClient, report: AuditReport, root: str
) -> None:
    subject = f"batch {root}"

    def fail(expected: object, found: object) -> None:
        report.add("committed-on-chain", subject, expected, found)

    if not _ROOT.fullmatch(root.lower()):
        fail("a 0x-prefixed 32-byte hex root", "malformed")
        return
    state = batch_on_chain(ledger, bytes.fromhex(root[2:]))
    if not state.committed:
        fail("committed on chain", "not committed")
        return
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
