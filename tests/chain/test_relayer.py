"""Relayer against a real anvil: nonces, fees, retries, reverts and receipts."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_hash.auto import keccak
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.types import Nonce, TxParams, TxReceipt, Wei

from chain.connect import connect
from chain.devnet import (
    DevnetInfo,
    free_port,
    start_anvil,
    stop_anvil,
    throwaway_anvil,
)
from chain.errors import (
    DevKeyRefusedError,
    ReceiptTimeoutError,
    RpcUnavailableError,
    TransactionFailedError,
    TransactionRevertedError,
)
from chain.keys import ANVIL_DEV_KEYS, account_from_key
from chain.relayer import Relayer, RetryPolicy, classify_error

pytestmark = pytest.mark.usefixtures("no_leaked_anvils")


SINK = Web3.to_checksum_address("0x000000000000000000000000000000000000dead")
FAST = RetryPolicy(attempts=10, base_delay=0.05, max_delay=0.4)
KEY = ANVIL_DEV_KEYS[1]


def _transfer(value: int = 1) -> TxParams:
    return {"to": SINK, "value": Wei(value)}


# --- a three-function contract, assembled by hand so the tests need no compiler ----------

ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "ok",
        "inputs": [],
        "outputs": [],
        "stateMutability": "nonpayable",
    },
    {
        "type": "function",
        "name": "boom",
        "inputs": [],
        "outputs": [],
        "stateMutability": "nonpayable",
    },
    {
        "type": "function",
        "name": "count",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
        "stateMutability": "view",
    },
    {"type": "error", "name": "Boom", "inputs": [{"name": "code", "type": "uint256"}]},
]


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def _assemble(items: list[int | bytes | str]) -> bytes:
    """Opcodes and raw bytes; "@x" pushes label x's offset, "x:" places a JUMPDEST."""
    labels: dict[str, int] = {}
    offset = 0
    for item in items:
        if isinstance(item, str) and item.endswith(":"):
            labels[item[:-1]] = offset
        offset += 2 if isinstance(item, str) and item.startswith("@") else _size(item)
    code = bytearray()
    for item in items:
        if isinstance(item, str):
            code += bytes([0x60, labels[item[1:]]]) if item.startswith("@") else b"\x5b"
        elif isinstance(item, bytes):
            code += item
        else:
            code.append(item)
    return bytes(code)


def _size(item: int | bytes | str) -> int:
    return len(item) if isinstance(item, bytes) else 1


PUSH0, PUSH1, PUSH4 = 0x5F, 0x60, 0x63
RUNTIME = _assemble(
    [
        PUSH0, 0x35, PUSH1, 0xE0, 0x1C,  # selector = calldata[0:4]
        0x80, PUSH4, _selector("ok()"), 0x14, "@ok", 0x57,
        0x80, PUSH4, _selector("boom()"), 0x14, "@boom", 0x57,
        0x80, PUSH4, _selector("count()"), 0x14, "@count", 0x57,
        PUSH0, PUSH0, 0xFD,  # unknown selector: revert()
        "ok:", PUSH0, 0x54, PUSH1, 1, 0x01, PUSH0, 0x55, 0x00,  # slot0 += 1
        "boom:", PUSH4, _selector("Boom(uint256)"), PUSH1, 0xE0, 0x1B, PUSH0, 0x52,
        PUSH1, 42, PUSH1, 4, 0x52, PUSH1, 36, PUSH0, 0xFD,  # revert Boom(42)
        "count:", PUSH0, 0x54, PUSH0, 0x52, PUSH1, 32, PUSH0, 0xF3,  # return slot0
    ]
)  # fmt: skip
# Copy the runtime out of the init code and return it.
INIT = bytes([PUSH1, len(RUNTIME), 0x80, PUSH1, 9, PUSH0, 0x39, PUSH0, 0xF3]) + RUNTIME


def _deploy(relayer: Relayer) -> Contract:
    factory = relayer.w3.eth.contract(abi=ABI, bytecode=INIT)
    receipt = relayer.transact(factory.constructor())
    address = receipt["contractAddress"]
    assert address is not None
    return relayer.w3.eth.contract(address=address, abi=ABI)


# --- an HTTP proxy in front of anvil that counts methods and can answer 503 -------------


class RpcProxy:
    """Forwards JSON-RPC to anvil; counts methods; fails the next ``fail_next`` with 503."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.calls: Counter[str] = Counter()
        self.fail_next = 0
        self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.calls[json.loads(body).get("method", "?")] += 1
                if proxy.fail_next > 0:
                    proxy.fail_next -= 1
                    proxy.failed += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=10)
                upstream.request("POST", "/", body, {"Content-Type": "application/json"})
                reply = upstream.getresponse().read()
                upstream.close()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(fresh_anvil: DevnetInfo) -> Iterator[RpcProxy]:
    """An RpcProxy in front of this test's anvil."""
    rpc = RpcProxy(fresh_anvil.port)
    yield rpc
    rpc.close()


def _bare_web3(url: str) -> Web3:
    # web3's own HTTP retry would hide 5xx answers from the relayer's retry policy.
    return Web3(HTTPProvider(url, exception_retry_configuration=None))


# --- tests -----------------------------------------------------------------------------


def test_dev_key_refused_on_chain_id_1() -> None:
    with throwaway_anvil(chain_id=1) as info, pytest.raises(DevKeyRefusedError, match="chain id 1"):
        Relayer(connect(info.rpc_url), account_from_key(KEY))


def test_dev_key_accepted_on_anvil(fresh_anvil: DevnetInfo) -> None:
    relayer = Relayer(connect(fresh_anvil.rpc_url), account_from_key(KEY))
    assert relayer.chain_id == 31337
    assert KEY[2:] not in repr(relayer)


def test_fifty_back_to_back_transfers_all_land(fresh_anvil: DevnetInfo) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    relayer = Relayer(w3, account_from_key(KEY))
    hashes = [relayer.send(_transfer(i + 1)) for i in range(50)]
    receipts = [relayer.wait(h, timeout=10) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    assert [w3.eth.get_transaction(h)["nonce"] for h in hashes] == list(range(50))
    assert w3.eth.get_balance(SINK) == sum(range(1, 51))
    tx = w3.eth.get_transaction(hashes[0])
    assert tx["type"] == 2  # EIP-1559 fees on a London+ chain
    assert tx["gas"] == int(21000 * relayer.gas_margin)


def test_concurrent_senders_get_consecutive_nonces(fresh_anvil: DevnetInfo) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    relayer = Relayer(w3, account_from_key(KEY))
    hashes: list[HexBytes] = []
    lock = threading.Lock()

    def burst() -> None:
        for _ in range(10):
            tx_hash = relayer.send(_transfer())
            with lock:
                hashes.append(tx_hash)

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(hashes) == 40
    assert all(relayer.wait(h, timeout=10)["status"] == 1 for h in hashes)
    assert sorted(w3.eth.get_transaction(h)["nonce"] for h in hashes) == list(range(40))


def test_resyncs_when_another_sender_used_its_nonce(
    fresh_anvil: DevnetInfo, caplog: pytest.LogCaptureFixture
) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    relayer = Relayer(w3, account_from_key(KEY))
    relayer.send_and_wait(_transfer())  # local next nonce: 1
    Relayer(w3, account_from_key(KEY)).send_and_wait(_transfer())  # takes nonce 1 behind its back
    with caplog.at_level(logging.WARNING, logger="chain.relayer"):
        receipt = relayer.send_and_wait(_transfer())
    assert receipt["status"] == 1
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == 2
    assert "resyncing" in caplog.text
    assert w3.eth.get_transaction_count(relayer.address) == 3


def test_explicit_nonce_is_used_as_given(fresh_anvil: DevnetInfo) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    relayer = Relayer(w3, account_from_key(KEY))
    relayer.send_and_wait({**_transfer(1), "nonce": Nonce(0)})
    # A different payload under a used nonce is the caller's mistake, not something to fix.
    with pytest.raises(Web3RPCError, match="nonce too low"):
        relayer.send({**_transfer(2), "nonce": Nonce(0)})


def test_retries_while_the_node_is_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port, state = free_port(), tmp_path / "state.json"
    start_anvil(port, run_dir=tmp_path, state_file=state)
    try:
        relayer = Relayer(connect(f"http://127.0.0.1:{port}"), account_from_key(KEY), retry=FAST)
        relayer.send_and_wait(_transfer())
        stop_anvil(port, run_dir=tmp_path)
        outcome: dict[str, object] = {}

        def send() -> None:
            try:
                outcome["receipt"] = relayer.send_and_wait(_transfer(2), timeout=20)
            except Exception as exc:
                outcome["error"] = exc

        with caplog.at_level(logging.WARNING, logger="chain.relayer"):
            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(0.4)  # the sender is now failing against a closed port
            start_anvil(port, run_dir=tmp_path, state_file=state)
            sender.join(30)
        assert "error" not in outcome, outcome.get("error")
        receipt: TxReceipt = outcome["receipt"]  # type: ignore[assignment]
        assert receipt["status"] == 1
        assert "Connection refused" in caplog.text
        assert "retrying" in caplog.text
        tx = relayer.w3.eth.get_transaction(receipt["transactionHash"])
        assert tx["nonce"] == 1  # the restarted node kept the first transfer
    finally:
        stop_anvil(port, run_dir=tmp_path)


def test_gives_up_after_bounded_attempts(tmp_path: Path) -> None:
    with throwaway_anvil() as info:
        relayer = Relayer(
            connect(info.rpc_url),
            account_from_key(KEY),
            retry=RetryPolicy(attempts=3, base_delay=0.01),
        )
    started = time.monotonic()
    with pytest.raises(RpcUnavailableError, match="failed 3 times"):
        relayer.send(_transfer())
    assert time.monotonic() - started < 2


def test_retries_http_503(proxy: RpcProxy, caplog: pytest.LogCaptureFixture) -> None:
    relayer = Relayer(_bare_web3(proxy.url), account_from_key(KEY), retry=FAST)
    proxy.fail_next = 3
    with caplog.at_level(logging.WARNING, logger="chain.relayer"):
        receipt = relayer.send_and_wait(_transfer())
    assert receipt["status"] == 1
    assert proxy.failed == 3
    assert caplog.text.count("retrying") == 3


def test_revert_is_not_retried_and_goes_to_on_revert(proxy: RpcProxy) -> None:
    seen: list[Exception] = []
    relayer = Relayer(
        _bare_web3(proxy.url), account_from_key(KEY), retry=FAST, on_revert=seen.append
    )
    contract = _deploy(relayer)
    proxy.calls.clear()
    with pytest.raises(ContractCustomError) as caught:
        relayer.transact(contract.functions.boom())
    assert seen == [caught.value]
    assert caught.value.data == "0x" + (_selector("Boom(uint256)") + (42).to_bytes(32)).hex()
    assert proxy.calls["eth_estimateGas"] == 1
    assert proxy.calls["eth_sendRawTransaction"] == 0


def test_on_revert_may_raise_its_own_exception(fresh_anvil: DevnetInfo) -> None:
    class BoomError(Exception):
        pass

    def decode(exc: Exception) -> None:
        assert isinstance(exc, ContractLogicError)
        raise BoomError(exc.data)

    relayer = Relayer(connect(fresh_anvil.rpc_url), account_from_key(KEY), on_revert=decode)
    contract = _deploy(relayer)
    with pytest.raises(BoomError):
        relayer.transact(contract.functions.boom())
    with pytest.raises(BoomError):
        relayer.call(contract.functions.boom())


def test_transact_and_call(fresh_anvil: DevnetInfo) -> None:
    relayer = Relayer(connect(fresh_anvil.rpc_url), account_from_key(KEY))
    contract = _deploy(relayer)
    receipt = relayer.transact(contract.functions.ok())
    assert receipt["status"] == 1
    assert relayer.transact(contract.functions.ok(), gas=80_000)["status"] == 1
    assert relayer.call(contract.functions.count()) == 2
    sent = relayer.w3.eth.get_transaction(receipt["transactionHash"])
    assert sent["gas"] > receipt["gasUsed"]  # the margin


def test_mined_revert_raises_with_receipt_and_keeps_nonces(fresh_anvil: DevnetInfo) -> None:
    relayer = Relayer(connect(fresh_anvil.rpc_url), account_from_key(KEY))
    contract = _deploy(relayer)
    # An explicit gas skips estimation, so the revert happens on chain.
    with pytest.raises(TransactionRevertedError) as caught:
        relayer.transact(contract.functions.boom(), gas=100_000)
    assert isinstance(caught.value, TransactionFailedError)
    assert caught.value.receipt["status"] == 0
    assert caught.value.tx_hash in str(caught.value)
    assert relayer.send_and_wait(_transfer())["status"] == 1


def test_confirmations(fresh_anvil: DevnetInfo) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    relayer = Relayer(w3, account_from_key(KEY), poll_interval=0.02)
    tx_hash = relayer.send(_transfer())
    with pytest.raises(ReceiptTimeoutError, match=r"within 0\.2s"):
        relayer.wait(tx_hash, timeout=0.2, confirmations=2)
    for _ in range(2):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert relayer.wait(tx_hash, timeout=2, confirmations=2)["status"] == 1


def test_legacy_fees_without_eip1559() -> None:
    with throwaway_anvil(extra_args=["--hardfork", "berlin"]) as info:
        w3 = connect(info.rpc_url)
        relayer = Relayer(w3, account_from_key(KEY))
        receipt = relayer.send_and_wait(_transfer())
        tx = w3.eth.get_transaction(receipt["transactionHash"])
        assert tx["type"] == 0
        assert tx["gasPrice"] > 0


def test_retry_policy_backoff_is_bounded() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.5, jitter=0.5)
    for retry, floor in enumerate([0.1, 0.2, 0.4, 0.5, 0.5]):
        delay = policy.delay(retry)
        assert floor <= delay <= floor * 1.5


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status}", response=response)


def _rpc_error(message: str, code: int = -32000) -> Web3RPCError:
    reply: Any = {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    return Web3RPCError(str(reply["error"]), rpc_response=reply)


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (requests.ConnectionError("refused"), "transient"),
        (requests.ReadTimeout("slow"), "transient"),
        (ConnectionResetError(), "transient"),
        (_http_error(429), "transient"),
        (_http_error(502), "transient"),
        (_http_error(400), "fatal"),
        (_rpc_error("nonce too low"), "nonce"),
        (_rpc_error("nonce too high: next nonce 3, tx nonce 9"), "nonce"),
        (_rpc_error("replacement transaction underpriced"), "nonce"),
        (_rpc_error("already known"), "known"),
        (_rpc_error("request limit exceeded", code=-32005), "transient"),
        (_rpc_error("insufficient funds for gas * price + value"), "fatal"),
        (_rpc_error("transaction underpriced"), "fatal"),
        (ContractLogicError("execution reverted", "0x"), "fatal"),
        (ValueError("boom"), "fatal"),
    ],
)
def test_classify_error(exc: Exception, verdict: str) -> None:
    assert classify_error(exc) == verdict
