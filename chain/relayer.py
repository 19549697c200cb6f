"""Sending transactions from one local key: nonces, fees, gas, retries, receipts.

Transactions are signed in-process with eth-account (eth-keys picks its
coincurve backend when coincurve is importable, which it is here) and sent
with ``eth_sendRawTransaction``, so the node never holds the key.

Only transient transport failures are retried: refused/reset connections,
timeouts, HTTP 429 and 5xx, and JSON-RPC rate limiting. A nonce the node
rejects as too low or too high makes the relayer re-read the account's
pending nonce and re-sign. A revert is never retried.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import requests
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import Nonce, TxParams, TxReceipt, Wei

from chain.connect import endpoint_of, require_connection
from chain.errors import (
    ConfigurationError,
    ReceiptTimeoutError,
    RpcUnavailableError,
    TransactionRevertedError,
)
from chain.keys import refuse_dev_key_on_public_chain

log = logging.getLogger(__name__)

T = TypeVar("T")
RevertHook = Callable[[Exception], None]
_Verdict = Literal["transient", "nonce", "known", "fatal"]

_FEE_FIELDS = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")
# Fields that describe what a transaction does, as opposed to how it is paid and ordered.
_CALL_FIELDS = ("from", "to", "value", "data", "accessList")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for transient RPC failures."""

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 8.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ConfigurationError(f"invalid retry policy: {self}")

    def delay(self, retry: int) -> float:
        """Return how long to sleep before retry number ``retry`` (0-based)."""
        capped = min(self.max_delay, self.base_delay * 2.0**retry)
        # Jitter spreads out relayers that all lost the same node at the same moment.
        return capped * (1 + self.jitter * random.random())


def classify_error(exc: BaseException) -> _Verdict:
    """Sort an RPC failure into transient / nonce / known (already sent) / fatal."""
    if isinstance(exc, ContractLogicError):
        return "fatal"
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return "transient" if status == 429 or status >= 500 else "fatal"
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | ConnectionError
        | TimeoutError
        | ProviderConnectionError
        | RequestTimedOut
        | TooManyRequests,
    ):
        return "transient"
    if isinstance(exc, Web3RPCError):
        text = _rpc_message(exc)
        if any(s in text for s in ("nonce too low", "nonce too high", "replacement transaction")):
            return "nonce"
        if "already known" in text or "known transaction" in text or "already imported" in text:
            return "known"
        if "rate limit" in text or "too many requests" in text or _rpc_code(exc) == -32005:
            return "transient"
    return "fatal"


class Relayer:
    """Send transactions signed by one account, keeping its nonce locally.

    Thread-safe: concurrent :meth:`send` calls get consecutive nonces. The lock is
    held from nonce assignment until the node accepted the transaction (retries
    included), so nonces reach the node in order and a failed send leaves no gap.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        gas_margin: float = 1.2,
        retry: RetryPolicy | None = None,
        on_revert: RevertHook | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        """Bind ``account`` to ``w3``; refuses published dev keys on non-local chains."""
        if gas_margin < 1:
            raise ConfigurationError(f"gas_margin must be >= 1, got {gas_margin}")
        self.w3 = w3
        self.chain_id = require_connection(w3)
        refuse_dev_key_on_public_chain(bytes(account.key), self.chain_id)
        self._account = account
        self.gas_margin = gas_margin
        self.retry = retry or RetryPolicy()
        self.on_revert = on_revert
        self.poll_interval = poll_interval
        self._lock = threading.RLock()
        self._nonce: int | None = None

    def __repr__(self) -> str:
        return f"Relayer(address={self.address}, chain_id={self.chain_id})"

    @property
    def address(self) -> ChecksumAddress:
        """The sending account's checksum address."""
        return self._account.address

    def resync_nonce(self) -> int:
        """Forget the local nonce and re-read the account's pending nonce from the node."""
        with self._lock:
            self._nonce = self._with_retry(
                lambda: int(self.w3.eth.get_transaction_count(self._account.address, "pending")),
                "eth_getTransactionCount",
            )
            return self._nonce

    def send(self, tx: TxParams) -> HexBytes:
        """Fill in fees, gas and nonce, sign locally and broadcast; return the tx hash."""
        prepared = self._prepare(tx)
        with self._lock:
            return self._broadcast(prepared)

    def send_and_wait(
        self, tx: TxParams, *, timeout: float = 120, confirmations: int = 0
    ) -> TxReceipt:
        """Send ``tx`` and wait for its receipt; a revert raises TransactionRevertedError."""
        return self.wait(self.send(tx), timeout=timeout, confirmations=confirmations)

    def wait(
        self, tx_hash: bytes | str, *, timeout: float = 120, confirmations: int = 0
    ) -> TxReceipt:
        """Poll for a receipt with ``confirmations`` blocks on top of it; raise on status 0."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self._poll_receipt(tx_hash, confirmations)
            if receipt is not None:
                break
            if time.monotonic() >= deadline:
                raise ReceiptTimeoutError(tx_hash, timeout)
            time.sleep(self.poll_interval)
        if receipt["status"] == 0:
            raise TransactionRevertedError(receipt)
        return receipt

    def transact(
        self,
        fn: ContractFunction | ContractConstructor,
        *,
        gas: int | None = None,
        value: int = 0,
        timeout: float = 120,
        confirmations: int = 0,
    ) -> TxReceipt:
        """Call a contract function (or deploy, given a constructor) and wait for the receipt.

        Without ``gas`` the call is estimated first, so a revert surfaces (through
        ``on_revert``) before anything is signed or paid for.
        """
        params: TxParams = {"from": self._account.address, "value": Wei(value)}
        if gas is None:
            estimate = self._guarded(lambda: int(fn.estimate_gas(params)), "eth_estimateGas")
            gas = self._with_margin(estimate)
        params.update(self._fee_fields())
        params["gas"] = gas
        params["chainId"] = self.chain_id
        # build_transaction only encodes here: gas and fees are given, so it makes no RPC.
        return self.send_and_wait(
            fn.build_transaction(params), timeout=timeout, confirmations=confirmations
        )

    def call(self, fn: ContractFunction) -> Any:
        """Run a contract function with ``eth_call`` from this account; reverts go to on_revert."""
        return self._guarded(lambda: fn.call({"from": self._account.address}), "eth_call")

    def estimate_gas(self, tx: TxParams) -> int:
        """Estimate ``tx``'s gas and add the safety margin; reverts go to on_revert."""
        probe = cast(TxParams, {k: v for k, v in tx.items() if k in _CALL_FIELDS})
        probe.setdefault("from", self._account.address)
        estimate = self._guarded(lambda: int(self.w3.eth.estimate_gas(probe)), "eth_estimateGas")
        return self._with_margin(estimate)

    def _poll_receipt(self, tx_hash: bytes | str, confirmations: int) -> TxReceipt | None:
        try:
            # Re-read every round so a reorg that drops or moves the tx is noticed.
            receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            if confirmations <= 0:
                return receipt
            if self.w3.eth.block_number >= receipt["blockNumber"] + confirmations:
                return receipt
        except TransactionNotFound:
            return None
        except Exception as exc:
            if classify_error(exc) != "transient":
                raise
            log.warning("receipt poll for %s failed, still waiting: %s", _hx(tx_hash), exc)
        return None

    def _prepare(self, tx: TxParams) -> TxParams:
        prepared = cast(TxParams, dict(tx))
        sender = prepared.setdefault("from", self._account.address)
        shown = _hx(sender)
        if shown.lower() != self.address.lower():
            raise ConfigurationError(f"tx 'from' {shown} is not the relayer's {self.address}")
        prepared.setdefault("chainId", self.chain_id)
        prepared.setdefault("value", Wei(0))
        if not any(key in prepared for key in _FEE_FIELDS):
            prepared.update(self._fee_fields())
        elif "gasPrice" not in prepared:
            # Only half of an EIP-1559 pair was given: the caller's half wins.
            prepared = cast(TxParams, {**self._fee_fields(), **prepared})
        if "gas" not in prepared:
            prepared["gas"] = self.estimate_gas(prepared)
        return prepared

    def _fee_fields(self) -> TxParams:
        block = self._with_retry(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:
            price = self._with_retry(lambda: self.w3.eth.gas_price, "eth_gasPrice")
            return {"gasPrice": price}
        tip = self._with_retry(lambda: self.w3.eth.max_priority_fee, "eth_maxPriorityFeePerGas")
        # Twice the base fee survives six full blocks of base-fee growth at 12.5% each.
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": Wei(2 * base_fee + tip)}

    def _with_margin(self, estimate: int) -> int:
        return int(estimate * self.gas_margin)

    def _broadcast(self, tx: TxParams) -> HexBytes:
        explicit_nonce = "nonce" in tx
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            if not explicit_nonce:
                if self._nonce is None:
                    self.resync_nonce()
                tx["nonce"] = Nonce(cast(int, self._nonce))
            signed = self._account.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = HexBytes(signed.hash)
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception as exc:
                verdict = classify_error(exc)
                if verdict == "known":
                    self._advance(explicit_nonce, tx)
                    return tx_hash
                if verdict == "nonce" and self._already_sent(tx_hash):
                    # An earlier attempt got through before its reply was lost.
                    self._advance(explicit_nonce, tx)
                    return tx_hash
                if verdict == "fatal" or (verdict == "nonce" and explicit_nonce):
                    raise
                last = exc
                if verdict == "nonce":
                    log.warning("nonce %s rejected (%s); resyncing", tx.get("nonce"), exc)
                    self.resync_nonce()
                    continue
                if attempt < self.retry.attempts - 1:
                    self._sleep_before_retry(attempt, "eth_sendRawTransaction", exc)
            self._advance(explicit_nonce, tx)
            return tx_hash
        raise RpcUnavailableError(
            f"could not send a transaction to {endpoint_of(self.w3)} after "
            f"{self.retry.attempts} attempts: {last}"
        ) from last

    def _advance(self, explicit_nonce: bool, tx: TxParams) -> None:
        if not explicit_nonce:
            self._nonce = int(tx["nonce"]) + 1

    def _already_sent(self, tx_hash: HexBytes) -> bool:
        # Guessing "not sent" here would re-sign the payload under a new nonce and could
        # execute it twice, so a node that cannot answer makes the send fail instead.
        try:
            self._with_retry(lambda: self.w3.eth.get_transaction(tx_hash), "eth_getTransaction")
        except TransactionNotFound:
            return False
        return True

    def _guarded(self, fn: Callable[[], T], what: str) -> T:
        try:
            return self._with_retry(fn, what)
        except ContractLogicError as exc:
            if self.on_revert is not None:
                self.on_revert(exc)
            raise

    def _with_retry(self, fn: Callable[[], T], what: str) -> T:
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except Exception as exc:
                if classify_error(exc) != "transient":
                    raise
                last = exc
                if attempt < self.retry.attempts - 1:
                    self._sleep_before_retry(attempt, what, exc)
        raise RpcUnavailableError(
            f"{what} to {endpoint_of(self.w3)} failed {self.retry.attempts} times; last: {last}"
        ) from last

    def _sleep_before_retry(self, attempt: int, what: str, exc: Exception) -> None:
        delay = self.retry.delay(attempt)
        log.warning(
            "%s to %s failed (attempt %d/%d), retrying in %.2fs: %s",
            what,
            endpoint_of(self.w3),
            attempt + 1,
            self.retry.attempts,
            delay,
            exc,
        )
        time.sleep(delay)


def _rpc_message(exc: Web3RPCError) -> str:
    parts = [exc.message]
    error = (exc.rpc_response or {}).get("error")
    if isinstance(error, dict):
        parts.append(str(error.get("message", "")))
    return " ".join(str(p) for p in parts).lower()


def _rpc_code(exc: Web3RPCError) -> int | None:
    error = (exc.rpc_response or {}).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def _hx(value: bytes | str) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else value
