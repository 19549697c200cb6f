"""connect(): the embedded chain, HTTP endpoints, URL checks and unreachable nodes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from web3 import HTTPProvider, Web3
from web3.types import Wei

from chain.connect import (
    DEFAULT_RPC_URL,
    connect,
    redact_url,
    require_connection,
    rpc_url_from_env,
)
from chain.devnet import DevnetInfo, free_port
from chain.errors import ConfigurationError, RpcUnavailableError
from chain.keys import ETH_TESTER_DEV_KEYS, LOCAL_CHAIN_IDS, account_from_key
from chain.relayer import Relayer

pytestmark = pytest.mark.usefixtures("no_leaked_anvils")


def test_embedded_is_one_funded_chain_per_process() -> None:
    w3 = connect("embedded")
    assert connect(" embedded ") is w3
    assert require_connection(w3) in LOCAL_CHAIN_IDS
    assert len(w3.eth.accounts) == 10
    assert all(w3.eth.get_balance(a) >= 10**24 for a in w3.eth.accounts)


def test_embedded_chain_takes_locally_signed_transactions() -> None:
    w3 = connect("embedded")
    relayer = Relayer(w3, account_from_key(ETH_TESTER_DEV_KEYS[9]))
    sink = Web3.to_checksum_address("0x000000000000000000000000000000000000beef")
    before = w3.eth.get_balance(sink)
    receipt = relayer.send_and_wait({"to": sink, "value": Wei(12345)})
    assert receipt["status"] == 1
    # Shared per process: a second connect sees the same transfer.
    assert connect("embedded").eth.get_balance(sink) == before + 12345


def test_http_connects_to_anvil(fresh_anvil: DevnetInfo) -> None:
    w3 = connect(fresh_anvil.rpc_url, timeout=3)
    assert isinstance(w3.provider, HTTPProvider)
    assert w3.provider.get_request_kwargs()["timeout"] == 3
    assert require_connection(w3) == 31337


def test_unreachable_endpoint_says_where_and_why() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RpcUnavailableError, match=f"cannot reach {url}: Connection refused"):
        require_connection(connect(url))


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ws://127.0.0.1:8546", "websocket"),
        ("wss://node.example/ws/SECRET", "websocket"),
        ("ipc:///tmp/geth.ipc", "scheme 'ipc'"),
        ("127.0.0.1:8545", "no scheme"),
        ("", "no scheme"),
    ],
)
def test_unsupported_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        connect(url)
    assert "SECRET" not in str(caught.value)


def test_redact_url_hides_credentials_and_api_keys() -> None:
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact_url("embedded") == "embedded"
    assert redact_url("https://mainnet.infura.io/v3/abc123") == "https://mainnet.infura.io/***"
    assert redact_url("https://user:pw@rpc.example:8443/") == "https://rpc.example:8443/***"
    assert redact_url("https://rpc.example/?key=abc") == "https://rpc.example/***"


def test_unreachable_hosted_endpoint_does_not_leak_its_key() -> None:
    url = f"http://127.0.0.1:{free_port()}/v3/APIKEY123"
    with pytest.raises(RpcUnavailableError) as caught:
        require_connection(connect(url))
    assert "APIKEY123" not in str(caught.value)


def test_rpc_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEPROOF_RPC_URL", raising=False)
    assert rpc_url_from_env() == DEFAULT_RPC_URL == "http://127.0.0.1:8545"
    monkeypatch.setenv("LIVEPROOF_RPC_URL", " http://10.1.2.3:9999 ")
    assert rpc_url_from_env() == "http://10.1.2.3:9999"
    monkeypatch.setenv("LIVEPROOF_RPC_URL", "")
    assert rpc_url_from_env() == DEFAULT_RPC_URL


class _Always503(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_http_errors_do_not_leak_the_path_either() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Always503)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v3/APIKEY123"
        w3 = Web3(HTTPProvider(url, exception_retry_configuration=None))
        with pytest.raises(RpcUnavailableError, match="503") as caught:
            require_connection(w3)
        assert "APIKEY123" not in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()
