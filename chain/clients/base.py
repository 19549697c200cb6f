"""Shared machinery of the typed contract clients: calls, sends and revert decoding."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from chain.artifacts import abi_of
from chain.errors import ConfigurationError, TransactionRevertedError
from chain.revert import raise_decoded, raise_for_revert

if TYPE_CHECKING:
    from chain.relayer import Relayer

T = TypeVar("T")


@dataclass(frozen=True)
class Sent(Generic[T]):
    """A mined transaction: its hash, block, gas and the value it produced (an id, or None)."""

    tx_hash: str
    block_number: int
    gas_used: int
    value: T


@dataclass(frozen=True)
class ContractClient:
    """A deployed contract plus the relayer that sends its transactions."""

    contract_name: ClassVar[str]
    w3: Web3
    address: ChecksumAddress
    relayer: Relayer | None = None

    @classmethod
    def at(cls, w3: Web3, address: str, relayer: Relayer | None = None) -> Self:
        """A client for the contract at ``address``."""
        return cls(w3, Web3.to_checksum_address(address), relayer)

    def with_sender(self, relayer: Relayer) -> Self:
        """The same contract, with transactions sent (and paid) by ``relayer``'s account."""
        return replace(self, relayer=relayer)

    @property
    def contract(self) -> Contract:
        """The web3 contract object."""
        return self.w3.eth.contract(address=self.address, abi=abi_of(self.contract_name))

    @property
    def chain_id(self) -> int:
        """Chain id of the connected chain."""
        return int(self.w3.eth.chain_id)

    def _fn(self, name: str, *args: Any) -> ContractFunction:
        fn: ContractFunction = self.contract.get_function_by_name(name)(*args)
        return fn

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return self._fn(name, *args).call()
        except ContractLogicError as exc:
            raise_decoded(exc)

    def _send(self, name: str, *args: Any, gas: int | None = None) -> TxReceipt:
        if self.relayer is None:
            raise ConfigurationError(f"{self.contract_name} client has no relayer to send {name}")
        fn = self._fn(name, *args)
        try:
            return self.relayer.transact(fn, gas=gas)
        except TransactionRevertedError as exc:
            # Estimation passed but the mined call reverted (state moved in between, or gas
            # was given): replay it on the block's parent state to recover the custom error.
            self._explain_mined_revert(fn, exc)
            raise

    def _explain_mined_revert(self, fn: ContractFunction, exc: TransactionRevertedError) -> None:
        assert self.relayer is not None
        block = int(exc.receipt["blockNumber"])
        try:
            fn.call({"from": self.relayer.address}, block_identifier=max(block - 1, 0))
        except ContractLogicError as replayed:
            raise_for_revert(replayed)

    def _sent(self, receipt: TxReceipt, value: T) -> Sent[T]:
        return Sent(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            value=value,
        )

    def _event_arg(self, receipt: TxReceipt, event: str, arg: str) -> Any:
        logs = self.contract.events[event]().process_receipt(receipt)
        if not logs:
            raise ConfigurationError(f"transaction emitted no {event} event")
        return logs[0]["args"][arg]

    def nonce(self, account: str) -> int:
        """The nonce ``account``'s next signature must carry (registries only)."""
        return int(self._call("nonces", Web3.to_checksum_address(account)))


def relayer_for(w3: Web3, account: Any, **options: Any) -> Relayer:
    """A :class:`~chain.relayer.Relayer` whose reverts surface as named contract errors."""
    from chain.relayer import Relayer
    from chain.revert import raise_for_revert

    return Relayer(w3, account, on_revert=raise_for_revert, **options)
