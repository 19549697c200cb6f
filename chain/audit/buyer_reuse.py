"""Buyer commitments seen on more than one sale, in bounded memory.

The service gives every order a fresh random salt, so an honest ledger repeats a buyer
commitment only when the platform means to (a loyal buyer's salt kept on purpose). Many sales
under one commitment is the mark of brushing: one fake buyer ordering again and again.

The first :data:`EXACT_LIMIT` commitments are kept in a set (exact). Past that, they move
into a fixed-size Bloom filter (:mod:`chain.audit.bloom`, 16 MiB); only commitments it may
already hold are counted exactly. A false positive then counts a commitment seen once as seen
twice: reuse figures are upper bounds, off by at most one per commitment, and no reuse within
one run is ever missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from chain.audit.bloom import BlockedBloom

#: Commitments kept exactly (about 100 bytes each) before the Bloom filter takes over.
EXACT_LIMIT: Final = 250_000


class BuyerReuse:
    """How often each buyer commitment was reused on a sale."""

    def __init__(self, repeats: dict[bytes, int] | None = None) -> None:
        """A tally, resumed from ``repeats`` (commitment -> sales after its first)."""
        self._seen: set[bytes] = set()
        self._bloom: BlockedBloom | None = None
        #: commitment -> sales seen after its first
        self.repeats: Counter[bytes] = Counter(repeats or {})

    def add(self, commitments: Sequence[bytes]) -> None:
        """Count one batch's sales' commitments."""
        if not commitments:
            return
        repeats = self.repeats
        alone = len(set(commitments)) == len(commitments)
        bloom = self._bloom
        if bloom is None:
            seen = self._seen
            if alone and seen.isdisjoint(commitments):
                seen.update(commitments)
            else:
                for commitment in commitments:
                    if commitment in seen:
                        repeats[commitment] += 1
                    else:
                        seen.add(commitment)
            if len(seen) > EXACT_LIMIT:
                self._to_bloom()
            return
        hits = bloom.add_and_check(commitments)
        if not alone or any(hits):
            here: set[bytes] = set()
            for commitment, hit in zip(commitments, hits, strict=True):
                if hit or commitment in here:
                    repeats[commitment] += 1
                else:
                    here.add(commitment)

    def _to_bloom(self) -> None:
        # Imported here: numpy (and 16 MiB) only for audits past the exact limit.
        from chain.audit.bloom import BlockedBloom

        self._bloom = BlockedBloom()
        self._bloom.add_all(list(self._seen))
        self._seen = set()

    def over(self, threshold: int) -> list[tuple[bytes, int]]:
        """(commitment, sales) of each commitment on at least ``threshold`` sales, most first."""
        return [(c, n + 1) for c, n in self.repeats.most_common() if n + 1 >= threshold]

    def stats(self, threshold: int) -> dict[str, Any]:
        """The figures a report shows."""
        most = max(self.repeats.values(), default=0)
        return {
            "reused_commitments": len(self.repeats),
            "most_sales_per_commitment": most + 1,
            "threshold": threshold,
            "over_threshold": len(self.over(threshold)),
        }
