"""Exception hierarchy for LiveProof's chain layer.

Every error raised by :mod:`chain` derives from :class:`LiveProofError`, so a
caller can catch one class. Contract reverts surface as :class:`ContractError`
subclasses named after the Solidity custom error (see :mod:`chain.revert`).
"""

from __future__ import annotations

from typing import Any


class LiveProofError(Exception):
    """Root of every error raised by LiveProof."""


class ConfigurationError(LiveProofError, ValueError):
    """A setting, key or path is missing or unusable."""


class ToolNotFoundError(ConfigurationError, FileNotFoundError):
    """A required external tool (anvil, node, solc) is not installed."""


class RpcUnavailableError(LiveProofError, ConnectionError):
    """The JSON-RPC endpoint could not be reached."""


class DevKeyRefusedError(ConfigurationError):
    """A well-known development key was offered for a non-local chain."""


class VerificationError(LiveProofError, ValueError):
    """Something did not verify: says what was expected and what was found."""

    def __init__(self, what: str, expected: object, found: object) -> None:
        super().__init__(f"{what}: expected {expected}, found {found}")
        self.what = what
        self.expected = expected
        self.found = found


class TransactionFailedError(LiveProofError):
    """A transaction was mined but reverted, or never got a receipt."""


class MerkleTreeError(LiveProofError, ValueError):
    """A Merkle tree, proof or tree dump is malformed, empty or used out of range."""


class LeafEncodingError(MerkleTreeError):
    """A Merkle leaf value does not fit its ABI leaf encoding (arity, range, length, type)."""


class TransactionRevertedError(TransactionFailedError):
    """A transaction was mined with status 0; ``receipt`` is the mined receipt."""

    def __init__(self, receipt: Any) -> None:
        self.receipt = receipt
        self.tx_hash = _hex(receipt["transactionHash"])
        super().__init__(
            f"transaction {self.tx_hash} reverted in block {receipt['blockNumber']} "
            f"(gas used {receipt['gasUsed']})"
        )


class ReceiptTimeoutError(TransactionFailedError):
    """No receipt (or not enough confirmations) for a sent transaction before the deadline."""

    def __init__(self, tx_hash: bytes | str, timeout: float) -> None:
        self.tx_hash = _hex(tx_hash)
        self.timeout = timeout
        super().__init__(f"no receipt for transaction {self.tx_hash} within {timeout:g}s")


def _hex(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value if value.startswith("0x") else "0x" + value


class LedgerInconsistencyError(LiveProofError):
    """Records (a platform's database) no longer match a committed tree, so no honest proof
    can be served from them."""
