"""Where the deployment's contracts came from, found on the chain, not read from the file.

The deployment file says in which block and by which transaction each contract was created;
the platform writes that file, so it is only a hint. :func:`locate` finds each contract's
creation block by bisection over ``eth_getCode`` (no code at ``n - 1``, code at ``n``), then,
in that block, the transaction whose receipt created it. Every disagreement with the file is a
``deployment-origin`` finding, and the block audits must scan from is the earliest creation
block found on the chain: a file claiming a later block cannot hide early events.

A node that keeps no state history (a pruned node, or anvil reloaded from a state file) cannot
answer ``eth_getCode`` at old blocks; then the file's transaction is checked instead: when its
receipt created the address, its block is the creation block (an address is created once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Final, TypeVar

from eth_typing import ChecksumAddress, HexStr
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception
from web3.types import TxReceipt

from chain.audit.findings import Finding
from chain.deploy import Deployment
from chain.errors import RpcUnavailableError

#: The check name of every finding :func:`locate` makes.
ORIGIN_CHECK: Final = "deployment-origin"

T = TypeVar("T")


class _NoHistoryError(Exception):
    """The node cannot answer for a past block's state."""


@dataclass(frozen=True)
class Creation:
    """Where one contract's code appeared on the chain."""

    name: str
    address: str
    #: The block where the code appeared (None: no code at the audited block, or not locatable).
    block: int | None
    #: The transaction whose receipt created the address (None when none in ``block`` did:
    #: created by another contract, or not located).
    tx_hash: str | None


@dataclass(frozen=True)
class Origin:
    """The contracts' creations as found on the chain, and how the deployment file differs."""

    #: The block the contracts' code was looked for at.
    block: int
    creations: dict[str, Creation]
    findings: list[Finding] = field(default_factory=list)

    @property
    def start_block(self) -> int:
        """The first block an audit must scan: the earliest creation block on the chain, or 0
        when a contract could not be located (its events could be anywhere)."""
        blocks = [c.block for c in self.creations.values()]
        if not blocks or any(b is None for b in blocks):
            return 0
        return min(b for b in blocks if b is not None)


def _rpc(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except OSError as exc:
        raise RpcUnavailableError(f"{what} failed: {exc}") from exc


def _has_code(w3: Web3, address: ChecksumAddress, block: int) -> bool:
    try:
        return bool(_rpc("eth_getCode", lambda: w3.eth.get_code(address, block)))
    except Web3Exception as exc:
        raise _NoHistoryError(str(exc)) from exc


def creation_block(
    w3: Web3, address: ChecksumAddress, block: int, hint: int | None = None
) -> int | None:
    """The block where code appeared at ``address`` (None: no code at ``block``), by bisection
    over ``eth_getCode``; ``hint`` is tried first (two calls when it is right)."""
    if not _has_code(w3, address, block):
        return None
    if (
        hint is not None
        and 0 < hint <= block
        and _has_code(w3, address, hint)
        and not _has_code(w3, address, hint - 1)
    ):
        return hint
    if _has_code(w3, address, 0):
        return 0
    lo, hi = 0, block  # no code at lo, code at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _has_code(w3, address, mid) else (mid, hi)
    return hi


def _created(receipt: TxReceipt | None, address: str) -> bool:
    created = receipt.get("contractAddress") if receipt is not None else None
    return created is not None and str(created).lower() == address.lower()


def creation_tx(w3: Web3, address: str, block: int) -> str | None:
    """The transaction of ``block`` whose receipt created ``address`` (None if none did)."""
    found = _rpc("eth_getBlockByNumber", lambda: w3.eth.get_block(block, full_transactions=True))
    for tx in found.get("transactions", []):
        if not isinstance(tx, Mapping) or tx.get("to") is not None:
            continue
        tx_hash = HexBytes(tx["hash"])
        get = partial(w3.eth.get_transaction_receipt, tx_hash)
        receipt = _rpc("eth_getTransactionReceipt", get)
        if _created(receipt, address):
            return "0x" + tx_hash.hex()
    return None


def _receipt(w3: Web3, tx_hash: str) -> TxReceipt | None:
    try:
        return _rpc(
            "eth_getTransactionReceipt", lambda: w3.eth.get_transaction_receipt(HexStr(tx_hash))
        )
    except (TransactionNotFound, Web3Exception, ValueError):
        return None


class _Locator:
    def __init__(self, w3: Web3, deployment: Deployment, block: int) -> None:
        self.w3, self.deployment, self.block = w3, deployment, block
        self.findings: list[Finding] = []

    def fail(self, name: str, address: str, claimed: str, found: str) -> None:
        self.findings.append(Finding(ORIGIN_CHECK, f"{name} {address}", claimed, found))

    def locate(self, name: str) -> Creation:
        entry = self.deployment.contracts[name]
        address = Web3.to_checksum_address(entry.address)
        try:
            block = creation_block(self.w3, address, self.block, entry.block_number)
        except _NoHistoryError as exc:
            return self._from_receipt(name, address, str(exc))
        if block is None:
            claimed = f"code created in block {entry.block_number} (file)"
            self.fail(name, address, claimed, f"no code at block {self.block}")
            return Creation(name, address, None, None)
        if block != entry.block_number:
            claimed = f"created in block {entry.block_number} (file)"
            self.fail(name, address, claimed, f"created in block {block} (chain)")
        tx_hash = creation_tx(self.w3, address, block)
        claimed = f"created by tx {entry.tx_hash} (file)"
        if tx_hash is not None and tx_hash.lower() != entry.tx_hash.lower():
            self.fail(name, address, claimed, f"created by tx {tx_hash} (chain)")
        if tx_hash is None:
            # Created by another contract: the file's transaction must at least be in the block.
            receipt = _receipt(self.w3, entry.tx_hash)
            if receipt is None or int(receipt["blockNumber"]) != block:
                found = f"that tx is not in block {block}, where the code appeared (chain)"
                self.fail(name, address, claimed, found)
        return Creation(name, address, block, tx_hash)

    def _from_receipt(self, name: str, address: str, why: str) -> Creation:
        """No state history: the file's transaction must be the one that created the address."""
        entry = self.deployment.contracts[name]
        receipt = _receipt(self.w3, entry.tx_hash)
        if receipt is None or not _created(receipt, address):
            found = f"not its creation, and the node keeps no history to locate it ({why})"
            self.fail(name, address, f"created by tx {entry.tx_hash} (file)", found)
            return Creation(name, address, None, None)
        block = int(receipt["blockNumber"])
        if block != entry.block_number:
            claimed = f"created in block {entry.block_number} (file)"
            self.fail(name, address, claimed, f"created in block {block} (chain)")
        return Creation(name, address, block, entry.tx_hash.lower())


def locate(w3: Web3, deployment: Deployment, *, block: int) -> Origin:
    """Find each of the deployment's contracts' creation block and transaction on the chain
    (code looked for at ``block``), with a ``deployment-origin`` finding for every claim of
    the deployment file the chain contradicts and for every address without code."""
    locator = _Locator(w3, deployment, block)
    creations = {name: locator.locate(name) for name in deployment.contracts}
    return Origin(block, creations, locator.findings)
