"""Locks that hold across processes and servers sharing one database.

PostgreSQL: session advisory locks on a dedicated connection (released by the server when the
holder dies). SQLite, which is one host's file anyway: ``flock`` on a file beside the database
(released by the kernel when the holder dies). Either way a crashed holder frees the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


def _lock_key(name: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"liveproof:{name}".encode()).digest()[:8], "big", signed=True
    )


def _lock_file(engine: Engine, name: str) -> Path:
    database = engine.url.database or ""
    if not database or database == ":memory:":
        base = Path(tempfile.gettempdir()) / f"liveproof-{os.getpid()}"
    else:
        base = Path(database)
    return base.with_name(f"{base.name}.{name}.lock")


class LeaderLock:
    """A non-blocking, process-wide lock: whoever holds it leads (runs the committer)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._file: IO[bytes] | None = None
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock (checks a PostgreSQL connection is alive)."""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            # End the probe's transaction: a session idling in one is ended by the server's
            # idle_in_transaction_session_timeout, and the lock with it.
            self._conn.rollback()
        except Exception:
            self._drop_connection()
            return False
        return True

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when held (also if already held)."""
        if self.held:
            return True
        if self.engine.dialect.name == "sqlite":
            path = _lock_file(self.engine, self.name)
            handle = path.open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        conn = self.engine.connect()
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(self.name)}
        ).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        """Give the lock up."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            try:
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(self.name)}
                )
                self._conn.commit()
            except Exception:
                # Usually the session is gone and the server freed the lock with it; else end
                # the session for real, never pool a connection that may still hold the lock.
                with contextlib.suppress(Exception):
                    self._conn.invalidate()
            finally:
                self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is already gone
                self._conn.close()
            self._conn = None


_thread_locks: dict[str, threading.Lock] = {}


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Block until no other thread, process or server holds ``name``; hold it in the body."""
    local = _thread_locks.setdefault(name, threading.Lock())
    with local:
        if engine.dialect.name == "sqlite":
            with _lock_file(engine, name).open("ab") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        with engine.connect() as conn:
            key: dict[str, Any] = {"k": _lock_key(name)}
            conn.execute(text("SELECT pg_advisory_lock(:k)"), key)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), key)
                conn.commit()
