"""Typed client for SaleLedger: commit receipt batches and single receipts, verify proofs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3

from chain.clients.base import ContractClient, Sent


@dataclass(frozen=True)
class BatchState:
    """A committed batch's count, commit time and block (count 0: not committed)."""

    count: int
    committed_at: int
    block_number: int

    @property
    def committed(self) -> bool:
        """True when the root is on the ledger."""
        return self.count > 0


class SaleLedgerClient(ContractClient):
    """Client for ``SaleLedger``."""

    contract_name = "SaleLedger"

    def commit_batch(self, root: bytes, count: int, *, gas: int | None = None) -> Sent[bytes]:
        """Commit a Merkle root of ``count`` receipts (recorder only)."""
        return self._sent(self._send("commitBatch", root, count, gas=gas), root)

    def record_receipt(self, leaf: bytes, *, gas: int | None = None) -> Sent[bytes]:
        """Record one receipt leaf on its own (recorder only)."""
        return self._sent(self._send("recordReceipt", leaf, gas=gas), leaf)

    def set_recorder(self, new_recorder: str) -> Sent[None]:
        """Hand the recorder duty to ``new_recorder`` (admin only)."""
        return self._sent(self._send("setRecorder", Web3.to_checksum_address(new_recorder)), None)

    def recorder(self) -> str:
        """The current recorder."""
        return str(self._call("recorder"))

    def verify_receipt(self, root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
        """True when ``root`` is committed and ``proof`` folds ``leaf`` into it (an eth_call)."""
        return bool(self._call("verifyReceipt", root, leaf, list(proof)))

    def batch(self, root: bytes) -> BatchState:
        """The batch committed under ``root``."""
        count, committed_at, block_number = self._call("batch", root)
        return BatchState(int(count), int(committed_at), int(block_number))
