"""Block timestamps for an audit: from the logs when the node includes them (``blockTimestamp``),
else from the block headers, one request per block asked, cached.

An audit compares the platform's clock (a receipt's ``orderedAt``) with the chain's: the block
that committed a receipt, the blocks that registered or removed an anchor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from web3 import Web3
from web3.exceptions import Web3Exception

from chain.errors import RpcUnavailableError
from chain.events import ChainEvent

#: Block timestamps kept at most (a cache; one audit commits in many blocks).
_CACHE_SIZE: Final = 65_536


class BlockClock:
    """The timestamp of any block of one chain."""

    def __init__(self, w3: Web3) -> None:
        """A clock reading ``w3``'s blocks."""
        self.w3 = w3
        self._known: dict[int, int] = {}
        #: Headers fetched (the logs lacked ``blockTimestamp``).
        self.requests = 0

    def of(self, event: ChainEvent) -> int:
        """The timestamp of the block holding ``event``."""
        stamp = event.block_timestamp
        if stamp is not None:
            return stamp
        return self.at(event.block_number)

    def noting(self, events: Iterable[ChainEvent]) -> Iterator[ChainEvent]:
        """``events`` unchanged, their block times (where the logs carry them) remembered."""
        known = self._known
        for event in events:
            if event.block_timestamp is not None and len(known) < _CACHE_SIZE:
                known[event.block_number] = event.block_timestamp
            yield event

    def at(self, block: int) -> int:
        """The timestamp of block ``block``."""
        stamp = self._known.get(block)
        if stamp is None:
            try:
                header = self.w3.eth.get_block(block)
            except (OSError, Web3Exception) as exc:
                raise RpcUnavailableError(f"eth_getBlockByNumber {block} failed: {exc}") from exc
            self.requests += 1
            stamp = int(header["timestamp"])
            if len(self._known) >= _CACHE_SIZE:
                self._known.clear()
            self._known[block] = stamp
        return stamp
