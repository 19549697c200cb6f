"""Database engines and sessions: SQLite (WAL, busy timeout) by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy issues BEGIN itself (see _sqlite_begin), so pysqlite must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is durable at checkpoints and
    # safe against application crashes, which is what the outbox relies on.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock at BEGIN (IMMEDIATE), so two writers queue on busy_timeout
    # instead of one failing with "database is locked" when it upgrades a read transaction.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: Engine) -> Engine:
    """The same engine, but each transaction takes SQLite's write lock up front."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """A new engine for ``url`` with LiveProof's connection settings."""
    sa_url = normalise_url(url)
    if is_sqlite(sa_url):
        engine = create_engine(
            sa_url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(sa_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """The process-wide engine for ``url``."""
    return make_engine(url)


def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that is closed afterwards (FastAPI dependency body)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
