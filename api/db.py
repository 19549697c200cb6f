"""Database engines and sessions: SQLite (WAL, busy timeout) by default, PostgreSQL by URL."""

from __future__ import annotations

import fcntl
import sqlite3
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

#: How long a SQLite writer waits for the lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """SQLAlchemy URL for ``url``: ``postgresql://`` means the psycopg 3 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def is_sqlite(url: str) -> bool:
    """True for a SQLite database URL."""
    return url.startswith("sqlite")


#: WAL pages after which a committing connection checkpoints (SQLite's default, 1,000).
DEFAULT_AUTOCHECKPOINT = 1_000
#: The API workers' threshold: checkpoints (which fsync, and run inside a writer's COMMIT, so
#: under its write lock) are left to the committer, which runs them after each batch; this
#: higher threshold is only a backstop should no committer run.
WORKER_AUTOCHECKPOINT = 20_000


def _sqlite_pragmas(autocheckpoint: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy issues BEGIN itself (see _sqlite_begin), so pysqlite must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; NORMAL sync is durable at checkpoints
        # and safe against application crashes, which is what the outbox relies on.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        cursor.close()

    return on_connect


class _LockingConnection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions queue on a kernel ``flock`` first.

    SQLite's busy handler polls with sleeps of up to 100 ms; under load (two workers and the
    committer) that costs most of the throughput and all of the p99. A flock waiter is woken
    the moment the holder's COMMIT or ROLLBACK has run."""

    _lock_file: IO[bytes] | None = None
    _locked = False

    def lock_for_write(self, path: str) -> None:
        """Block until no other connection (thread or process) writes, then hold the lock."""
        if self._lock_file is None:
            self._lock_file = open(path, "ab")  # noqa: SIM115 - lives as long as the connection
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        self._locked = True

    def unlock(self) -> None:
        """Let the next writer in."""
        if self._locked and self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._locked = False

    def commit(self) -> None:
        """COMMIT, then let the next writer in."""
        try:
            super().commit()
        finally:
            self.unlock()

    def rollback(self) -> None:
        """ROLLBACK, then let the next writer in."""
        try:
            super().rollback()
        finally:
            self.unlock()

    def close(self) -> None:
        """Close the database and the lock file."""
        self.unlock()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        super().close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock at BEGIN (IMMEDIATE), so two writers never fail with
    # "database is locked" when one upgrades a read transaction; before that they queue on
    # the flock of _LockingConnection.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    database = conn.engine.url.database
    raw = conn.connection.driver_connection
    if mode == "IMMEDIATE" and database not in (None, "", ":memory:"):
        raw.lock_for_write(f"{database}.write-lock")
    try:
        conn.exec_driver_sql(f"BEGIN {mode}")
    except BaseException:
        raw.unlock()
        raise


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's WAL into the database without waiting for, or blocking, anyone (PASSIVE);
    nothing for PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    # Outside any transaction (a checkpoint cannot run inside one): the pooled DBAPI
    # connection, in autocommit mode.
    proxy = engine.raw_connection()
    try:
        dbapi = proxy.driver_connection
        assert dbapi is not None
        dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
    finally:
        proxy.close()


def writer(engine: Engine) -> Engine:
    """The same engine, but each transaction takes SQLite's write lock up front."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def make_engine(
    url: str, *, pool_size: int = 10, autocheckpoint: int = DEFAULT_AUTOCHECKPOINT
) -> Engine:
    """A new engine for ``url`` with LiveProof's connection settings (SQLite: WAL, and a
    checkpoint once ``autocheckpoint`` pages are in the WAL)."""
    sa_url = normalise_url(url)
    if is_sqlite(sa_url):
        engine = create_engine(
            sa_url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "factory": _LockingConnection,
            },
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas(autocheckpoint))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(sa_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
