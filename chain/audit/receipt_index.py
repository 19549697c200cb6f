"""Every receipt id an audit has seen, in bounded memory: the newest in a dict, the rest in a
SQLite file behind a fixed-size Bloom filter.

``audit chain`` must know every earlier receipt id to catch a duplicate or match a refund to
its sale, however long the chain. Keeping them all in memory grows by about 130 bytes per
receipt; here at most ``memory_limit`` entries stay in memory, then they are written to disk.
A receipt id is random (or a hash), so three 8-byte slices of it index the Bloom filter with no
further hashing; only ids the filter may hold are looked up on disk. Memory is then the dict's
bound plus 16 MiB, whatever the number of receipts or batches already checked.

With a file (``--cursor``) the index is also the audit's resume point: :meth:`checkpoint`
writes the pending entries and the caller's state in one SQLite transaction, so a crash leaves
either the old checkpoint or the new one, never receipts without the cursor that saw them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

#: Entries kept in memory before they are written to disk (about 130 bytes each).
DEFAULT_MEMORY_LIMIT: Final = 250_000
#: Bloom filter of the ids on disk: 2**27 bits (16 MiB), three probes. About 1% false
#: positives at ten million ids on disk; more beyond, which costs lookups, never correctness.
_BLOOM_BITS: Final = 1 << 27
_BLOOM_MASK: Final = _BLOOM_BITS - 1
#: Ids per ``IN (...)`` query (well under SQLite's parameter limit).
_QUERY_CHUNK: Final = 500
_REFUNDED: Final = 1 << 32

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS sales (id BLOB PRIMARY KEY, packed INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS refunds (id BLOB PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class _Bloom:
    """A fixed-size Bloom filter over 32-byte random ids."""

    def __init__(self) -> None:
        self.bits = bytearray(_BLOOM_BITS // 8)

    def add_all(self, ids: Iterable[bytes]) -> None:
        bits = self.bits
        for rid in ids:
            for at in (0, 8, 16):
                i = int.from_bytes(rid[at : at + 8], "little") & _BLOOM_MASK
                bits[i >> 3] |= 1 << (i & 7)

    def may_hold(self, rid: bytes) -> bool:
        bits = self.bits
        for at in (0, 8, 16):
            i = int.from_bytes(rid[at : at + 8], "little") & _BLOOM_MASK
            if not bits[i >> 3] & (1 << (i & 7)):
                return False
        return True


class ReceiptIndex:
    """Sale ids (with units sold and refunded) and refund ids, memory first, then disk.

    ``sales`` and ``refunds`` are the in-memory part; callers read them directly in their hot
    loop and ask :meth:`on_disk` / :meth:`sale` for the rest."""

    def __init__(self, path: Path | None = None, *, memory_limit: int = DEFAULT_MEMORY_LIMIT):
        """An index in ``path`` (kept: a cursor) or in a temporary file (``None``)."""
        self.path = path
        self.memory_limit = memory_limit
        #: sale receipt id -> quantity | refunded << 32
        self.sales: dict[bytes, int] = {}
        self.refunds: set[bytes] = set()
        self._db: sqlite3.Connection | None = None
        self._bloom: _Bloom | None = None
        if path is not None and path.exists():
            self._open()
            self._load_bloom()

    # -- the database --------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            target = str(self.path) if self.path is not None else ""  # "": a temporary file
            db = sqlite3.connect(target, isolation_level=None)
            if self.path is None:
                db.execute("PRAGMA journal_mode=OFF")
                db.execute("PRAGMA synchronous=OFF")
            else:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                db.execute(statement)
            self._db = db
        return self._db

    def _load_bloom(self) -> None:
        db = self._open()
        for table in ("sales", "refunds"):
            rows = db.execute(f"SELECT id FROM {table}")  # noqa: S608 - a constant name
            while chunk := rows.fetchmany(50_000):
                self._bloom_for_disk().add_all(row[0] for row in chunk)

    def _bloom_for_disk(self) -> _Bloom:
        if self._bloom is None:
            self._bloom = _Bloom()
        return self._bloom

    @property
    def has_disk(self) -> bool:
        """True once some ids live on disk (then :meth:`on_disk` must be asked)."""
        return self._bloom is not None

    def spill(self) -> None:
        """Write the in-memory entries to disk and forget them (within the caller's
        transaction when there is one)."""
        if not self.sales and not self.refunds:
            return
        db = self._open()
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO sales VALUES (?, ?)", self.sales.items())
        db.executemany("INSERT OR IGNORE INTO refunds VALUES (?)", ((r,) for r in self.refunds))
        if own:
            db.execute("COMMIT")
        bloom = self._bloom_for_disk()
        bloom.add_all(self.sales)
        bloom.add_all(self.refunds)
        self.sales.clear()
        self.refunds.clear()

    def spill_if_full(self) -> None:
        """:meth:`spill` once memory holds more than ``memory_limit`` entries."""
        if len(self.sales) + len(self.refunds) > self.memory_limit:
            self.spill()

    # -- lookups -------------------------------------------------------------------------

    def on_disk(self, ids: Sequence[bytes]) -> set[bytes]:
        """Those of ``ids`` already on disk (as a sale or a refund)."""
        bloom = self._bloom
        if bloom is None:
            return set()
        maybe = [rid for rid in ids if bloom.may_hold(rid)]
        found: set[bytes] = set()
        db = self._open()
        for start in range(0, len(maybe), _QUERY_CHUNK):
            chunk = maybe[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            for table in ("sales", "refunds"):
                query = f"SELECT id FROM {table} WHERE id IN ({marks})"  # noqa: S608
                found.update(row[0] for row in db.execute(query, chunk))
        return found

    def sale(self, rid: bytes) -> int | None:
        """The packed sale (quantity | refunded << 32) of ``rid``, or None."""
        packed = self.sales.get(rid)
        if packed is not None or self._bloom is None or not self._bloom.may_hold(rid):
            return packed
        row = self._open().execute("SELECT packed FROM sales WHERE id = ?", (rid,)).fetchone()
        return None if row is None else int(row[0])

    def refunded_sales(self) -> int:
        """How many sales have any unit refunded."""
        count = sum(1 for packed in self.sales.values() if packed >= _REFUNDED)
        if self._db is not None:
            # Sales in memory override their older copy on disk.
            on_disk = self._db.execute("SELECT id FROM sales WHERE packed >= ?", (_REFUNDED,))
            count += sum(1 for (rid,) in on_disk if rid not in self.sales)
        return count

    # -- checkpoints (cursor files) --------------------------------------------------------

    def checkpoint(self, state: str) -> None:
        """Write every in-memory entry and ``state`` (the caller's JSON) atomically."""
        db = self._open()
        db.execute("BEGIN IMMEDIATE")
        try:
            self.spill()
            db.execute("INSERT OR REPLACE INTO meta VALUES ('state', ?)", (state,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def saved_state(self) -> str | None:
        """The state of the last :meth:`checkpoint`, or None for a new index."""
        if self._db is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the file (a temporary one is deleted)."""
        if self._db is not None:
            self._db.close()
            self._db = None
