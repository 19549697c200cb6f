"""Every receipt id an audit has seen, in bounded memory: the newest in a dict, the rest in a
SQLite file behind a fixed-size Bloom filter.

``audit chain`` must know every earlier receipt id to catch a duplicate or match a refund to
its sale, however long the chain. Keeping them all in memory grows by about 130 bytes per
receipt; here at most ``memory_limit`` entries stay in memory (half in the dict being filled,
half being written to disk by a background thread), the rest is on disk. Only ids the Bloom
filter (:mod:`chain.audit.bloom`, made at the first spill) may hold are looked up on disk.
Memory is then the dict's bound plus 16 MiB, whatever the number of receipts or batches
already checked.

With a file (``--cursor``) the index is also the audit's resume point: :meth:`checkpoint`
writes the pending entries and the caller's state in one SQLite transaction, so a crash leaves
either the old checkpoint or the new one, never receipts without the cursor that saw them.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from chain.audit.bloom import BlockedBloom


#: Entries kept in memory before they are written to disk (about 130 bytes each).
DEFAULT_MEMORY_LIMIT: Final = 250_000
#: Ids per ``IN (...)`` query (well under SQLite's parameter limit).
_QUERY_CHUNK: Final = 500
_REFUNDED: Final = 1 << 32
_U32: Final = 0xFFFF_FFFF
_U64: Final = (1 << 64) - 1

# A sale's entry is one int: quantity (bits 0-31), units refunded (32-63), orderedAt (64-127),
# the sale's session number (128-159) and product number (160-191) in the audit's registry
# (0: none on chain), its currency (192-215) and unit price (216 on). On disk: the low 64 bits
# (``units``), the rest as bytes (``terms``).
SESSION_SHIFT: Final = 128
PRODUCT_SHIFT: Final = 160
CURRENCY_SHIFT: Final = 192
PRICE_SHIFT: Final = 216


@dataclass(frozen=True, slots=True)
class SaleTerms:
    """What a refund is judged against: its sale's entry, unpacked."""

    quantity: int
    refunded: int
    ordered_at: int
    session: int
    product: int
    currency: int
    unit_price: int

    @classmethod
    def of(cls, packed: int) -> SaleTerms:
        """Unpack an index entry."""
        return cls(
            packed & _U32,
            (packed >> 32) & _U32,
            (packed >> 64) & _U64,
            (packed >> SESSION_SHIFT) & _U32,
            (packed >> PRODUCT_SHIFT) & _U32,
            (packed >> CURRENCY_SHIFT) & 0xFF_FFFF,
            packed >> PRICE_SHIFT,
        )


def pack_sale(ordered_at: int, session: int, product: int, currency: bytes, price: int) -> int:
    """A sale's entry without its quantity (OR the quantity in): see :class:`SaleTerms`."""
    return (
        (ordered_at << 64) | (session << SESSION_SHIFT) | (product << PRODUCT_SHIFT)
        | (int.from_bytes(currency, "big") << CURRENCY_SHIFT) | (price << PRICE_SHIFT)
    )  # fmt: skip


def with_refunded(packed: int, units: int) -> int:
    """``packed`` with ``units`` more refunded (saturating at 2**32 - 1: an over-refund anyway)."""
    refunded = min(((packed >> 32) & _U32) + units, _U32)
    return (packed & ~(_U32 << 32)) | (refunded << 32)


def _join(units: int, terms: bytes) -> int:
    return (int(units) & _U64) | (int.from_bytes(terms, "little") << 64)


#: SQLite's page cache for the index (KiB): most lookups of recent ids stay in it.
_CACHE_KIB: Final = 8_192

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS sales (id BLOB PRIMARY KEY, units INTEGER NOT NULL,"
    " terms BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS refunds (id BLOB PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class ReceiptIndex:
    """Sale ids (with units sold and refunded) and refund ids, memory first, then disk.

    ``sales`` and ``refunds`` are the in-memory part; callers read them directly in their hot
    loop and ask :meth:`on_disk` / :meth:`sale` for the rest."""

    def __init__(self, path: Path | None = None, *, memory_limit: int = DEFAULT_MEMORY_LIMIT):
        """An index in ``path`` (kept: a cursor) or in a temporary file (``None``)."""
        self.path = path
        self.memory_limit = memory_limit
        #: sale receipt id -> its packed entry (see :class:`SaleTerms`)
        self.sales: dict[bytes, int] = {}
        self.refunds: set[bytes] = set()
        # Entries being written to disk by a background thread: still looked up here.
        self._spilling: dict[bytes, int] = {}
        self._spilling_refunds: set[bytes] = set()
        self._spiller: threading.Thread | None = None
        self._spill_error: BaseException | None = None
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._target = Path()
        self._bloom: BlockedBloom | None = None
        if path is not None and path.exists():
            self._open()
            self._load_bloom()

    # -- the database --------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        """The writing connection (the background spill and checkpoints use it)."""
        if self._db is None:
            if self.path is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="liveproof-index-")
                target = Path(self._tmp.name) / "index.sqlite"
            else:
                target = self.path
            db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            # WAL: the audit's lookups read on their own connection while a spill writes.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=" + ("OFF" if self.path is None else "NORMAL"))
            for statement in _SCHEMA:
                db.execute(statement)
            self._db = db
            self._target = target
        return self._db

    def _read(self) -> sqlite3.Connection:
        """The reading connection: the audit's own thread, never waiting for a spill."""
        if self._reader is None:
            self._open()
            self._reader = sqlite3.connect(self._target, isolation_level=None)
            self._reader.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        return self._reader

    def _load_bloom(self) -> None:
        db = self._open()
        for table in ("sales", "refunds"):
            rows = db.execute(f"SELECT id FROM {table}")  # noqa: S608 - a constant name
            while chunk := rows.fetchmany(50_000):
                self._bloom_for_disk().add_all([row[0] for row in chunk])

    def _bloom_for_disk(self) -> BlockedBloom:
        if self._bloom is None:
            # Imported here: numpy (and 16 MiB) only for audits that ever spill to disk.
            from chain.audit.bloom import BlockedBloom

            self._bloom = BlockedBloom()
        return self._bloom

    @property
    def has_disk(self) -> bool:
        """True once some ids live on disk (then :meth:`on_disk` must be asked)."""
        return self._bloom is not None

    def _write(self, sales: dict[bytes, int], refunds: set[bytes]) -> None:
        """Insert entries (within the caller's transaction when there is one)."""
        # The writing connection is used by one thread at a time: a spill is joined before the
        # next one, and before a checkpoint writes.
        db = self._open()
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        # In key order: B-tree pages are then filled one after another.
        # Each entry as (low 64 bits as SQLite's signed INTEGER, the rest as bytes), inline:
        # this runs for every entry, holding the GIL the audit's own thread needs.
        rows = [
            (rid, (p & _U64) - ((p >> 63 & 1) << 64),
             (h := p >> 64).to_bytes((h.bit_length() + 7) >> 3, "little"))
            for rid, p in sorted(sales.items())
        ]  # fmt: skip
        db.executemany("INSERT OR REPLACE INTO sales VALUES (?, ?, ?)", rows)
        db.executemany("INSERT OR IGNORE INTO refunds VALUES (?)", [(r,) for r in refunds])
        if own:
            db.execute("COMMIT")

    def _wait_for_spill(self) -> None:
        """Let a background write finish; raise what it raised."""
        if self._spiller is not None:
            self._spiller.join()
            self._spiller = None
            self._spilling = {}
            self._spilling_refunds = set()
        if self._spill_error is not None:
            error, self._spill_error = self._spill_error, None
            raise error

    def spill(self) -> None:
        """Write the in-memory entries to disk now and forget them (within the caller's
        transaction when there is one)."""
        self._wait_for_spill()
        if not self.sales and not self.refunds:
            return
        self._write(self.sales, self.refunds)
        bloom = self._bloom_for_disk()
        bloom.add_all(list(self.sales))
        bloom.add_all(list(self.refunds))
        self.sales, self.refunds = {}, set()

    def spill_if_full(self) -> None:
        """Once memory holds more than half of ``memory_limit`` entries, write them to disk in
        a background thread (SQLite works without the GIL) while the audit goes on; lookups
        still see them meanwhile. Memory then stays under ``memory_limit`` entries."""
        if len(self.sales) + len(self.refunds) <= self.memory_limit // 2:
            return
        self._wait_for_spill()
        self._read()  # both connections open here, in the audit's thread, before any spill
        sales, refunds = self.sales, self.refunds
        self.sales, self.refunds = {}, set()
        self._spilling, self._spilling_refunds = sales, refunds
        # The filter first: an id it does not hold is certainly absent, so it must never miss
        # one being written (lookups check the entries in flight before the disk).
        bloom = self._bloom_for_disk()
        bloom.add_all(list(sales))
        bloom.add_all(list(refunds))

        def write() -> None:
            try:
                self._write(sales, refunds)
            except BaseException as exc:  # raised again by the next wait
                self._spill_error = exc

        self._spiller = threading.Thread(target=write, name="receipt-index-spill", daemon=True)
        self._spiller.start()

    # -- lookups -------------------------------------------------------------------------

    def on_disk(self, ids: Sequence[bytes]) -> set[bytes]:
        """Those of ``ids`` already on disk (as a sale or a refund)."""
        bloom = self._bloom
        if bloom is None:
            return set()
        found = self._spilling.keys() & ids
        if self._spilling_refunds:
            found |= self._spilling_refunds.intersection(ids)
        maybe = [
            rid
            for rid, hit in zip(ids, bloom.may_hold(ids), strict=True)
            if hit and rid not in found
        ]
        db = self._read()
        for start in range(0, len(maybe), _QUERY_CHUNK):
            chunk = maybe[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            for table in ("sales", "refunds"):
                query = f"SELECT id FROM {table} WHERE id IN ({marks})"  # noqa: S608
                found.update(row[0] for row in db.execute(query, chunk))
        return found

    def sale(self, rid: bytes) -> int | None:
        """The packed entry of sale ``rid`` (see :class:`SaleTerms`), or None."""
        packed = self.sales.get(rid)
        if packed is None:
            packed = self._spilling.get(rid)
        if packed is not None or self._bloom is None or not self._bloom.may_hold([rid])[0]:
            return packed
        row = self._read().execute("SELECT units, terms FROM sales WHERE id = ?", (rid,)).fetchone()
        return None if row is None else _join(row[0], row[1])

    def refunded_sales(self) -> int:
        """How many sales have any unit refunded."""
        self._wait_for_spill()
        count = sum(1 for packed in self.sales.values() if packed & _U64 >= _REFUNDED)
        if self._db is not None:
            # Sales in memory override their older copy on disk.
            on_disk = self._db.execute(
                "SELECT id FROM sales WHERE units >= ? OR units < 0", (_REFUNDED,)
            )
            count += sum(1 for (rid,) in on_disk if rid not in self.sales)
        return count

    # -- checkpoints (cursor files) --------------------------------------------------------

    def checkpoint(self, state: str) -> None:
        """Write every in-memory entry and ``state`` (the caller's JSON) atomically."""
        self._wait_for_spill()
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
        if self._spiller is not None:
            self._spiller.join()
            self._spiller = None
        for connection in (self._reader, self._db):
            if connection is not None:
                connection.close()
        self._reader = self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
