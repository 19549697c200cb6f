"""A fixed-size Bloom filter over 32-byte random ids (receipt ids), a batch of ids at a time.

The ids are random (or hashes), so their bytes index the filter with no further hashing.
Blocked: an id's three bits lie in one 64-byte block (the first 8 bytes of the id choose the
block, the next 8 the bits), so a lookup touches one cache line instead of three in 16 MiB;
numpy does each batch's ids at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

#: 2**27 bits (16 MiB), three probes in one block. About 1% false positives at ten million
#: ids; more beyond, which costs a caller lookups, never correctness.
BLOOM_BITS: Final = 1 << 27
#: 64-byte blocks (one cache line each), 512 bits.
_BLOCK_BYTES: Final = 64
_BLOCK_MASK: Final = np.uint64(BLOOM_BITS // 8 // _BLOCK_BYTES - 1)
#: The three probes take 9 bits each of an id's second 8 bytes.
_SHIFTS: Final = np.array([0, 9, 18], dtype=np.uint64)


class BlockedBloom:
    """The filter: add ids, ask which ids it may hold."""

    def __init__(self) -> None:
        self.bits = np.zeros(BLOOM_BITS // 8, dtype=np.uint8)

    @staticmethod
    def _probes(ids: Sequence[bytes]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
        """(byte index, bit mask) of the three probes of each id, one row per id."""
        words = np.frombuffer(b"".join(ids), dtype="<u8").reshape(-1, 4)
        block = (words[:, 0] & _BLOCK_MASK) * np.uint64(_BLOCK_BYTES)
        bits = (words[:, 1, None] >> _SHIFTS) & np.uint64(511)
        index = block[:, None] + (bits >> np.uint64(3))
        mask = np.left_shift(1, (bits & np.uint64(7)).astype(np.uint8), dtype=np.uint8)
        return index, mask

    def add_all(self, ids: Sequence[bytes]) -> None:
        """Add every id."""
        if not ids:
            return
        index, mask = self._probes(ids)
        np.bitwise_or.at(self.bits, index.ravel(), mask.ravel())

    def add_and_check(self, ids: Sequence[bytes]) -> list[bool]:
        """Add every id; for each, whether the filter may have held it before this call
        (ids repeated within ``ids`` are not seen as held)."""
        if not ids:
            return []
        index, mask = self._probes(ids)
        found: list[bool] = ((self.bits[index] & mask) != 0).all(axis=1).tolist()
        np.bitwise_or.at(self.bits, index.ravel(), mask.ravel())
        return found

    def may_hold(self, ids: Sequence[bytes]) -> list[bool]:
        """For each id, whether the filter may hold it (False: certainly not)."""
        if not ids:
            return []
        index, mask = self._probes(ids)
        hit = (self.bits[index] & mask) != 0
        found: list[bool] = hit.all(axis=1).tolist()
        return found
