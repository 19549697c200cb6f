"""Opening a :class:`~web3.Web3` to a JSON-RPC endpoint or to an in-process chain."""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit

from web3 import EthereumTesterProvider, HTTPProvider, Web3

from chain.errors import ConfigurationError, RpcUnavailableError

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
RPC_URL_ENV = "LIVEPROOF_RPC_URL"
EMBEDDED = "embedded"

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")

_embedded_lock = threading.Lock()
_embedded: Web3 | None = None


def rpc_url_from_env() -> str:
    """Return ``$LIVEPROOF_RPC_URL``, or :data:`DEFAULT_RPC_URL` (a local anvil) if unset."""
    return os.environ.get(RPC_URL_ENV, "").strip() or DEFAULT_RPC_URL


def connect(rpc_url: str, *, timeout: float = 10) -> Web3:
    """Return a Web3 for ``rpc_url``: ``"embedded"`` or an ``http(s)://`` endpoint.

    Nothing is sent yet; call :func:`require_connection` to find out if it answers.
    """
    url = rpc_url.strip()
    if url == EMBEDDED:
        return embedded_chain()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
    if scheme in ("ws", "wss"):
        # web3 8 ships only the asyncio WebSocketProvider; everything here is synchronous.
        raise ConfigurationError(
            f"websocket RPC URLs are not supported ({redact_url(url)}); use the node's http(s) URL"
        )
    found = f"scheme {scheme!r}" if "://" in url else "no scheme"
    raise ConfigurationError(
        f"unsupported RPC URL ({found}): expected http(s)://host:port or {EMBEDDED!r}"
    )


def embedded_chain() -> Web3:
    """Return this process's in-memory eth-tester chain, creating it on first use.

    Every call shares one chain, so contracts deployed by one caller are seen by
    the next. Its ten funded accounts sign with :data:`chain.keys.ETH_TESTER_DEV_KEYS`.
    """
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            try:
                provider = EthereumTesterProvider()
            except ImportError as exc:
                raise ConfigurationError(
                    "the embedded chain needs eth-tester: pip install 'liveproof[embedded]'"
                ) from exc
            _embedded = Web3(provider)
        return _embedded


def require_connection(w3: Web3) -> int:
    """Return the endpoint's chain id, or raise :class:`RpcUnavailableError` saying why not."""
    try:
        return int(w3.eth.chain_id)
    except Exception as exc:
        # Any failure to answer eth_chainId means the endpoint is unusable, whatever layer
        # (socket, HTTP, JSON-RPC) it surfaced from.
        reason = _scrub(_reason(exc), getattr(w3.provider, "endpoint_uri", None))
        raise RpcUnavailableError(f"cannot reach {endpoint_of(w3)}: {reason}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # requests nests the socket error three wrappers deep; its errno text is the news.
    found = _ERRNO.search(text)
    return found.group(1).strip() if found else text


def _scrub(text: str, uri: object) -> str:
    # requests quotes the request path ("for url: ..."), which may carry an API key.
    if not uri:
        return text
    parts = urlsplit(str(uri))
    for secret in (parts.path + ("?" + parts.query if parts.query else ""), parts.path):
        if secret.strip("/"):
            text = text.replace(secret, "/***")
    if parts.password:
        text = text.replace(parts.password, "***")
    return text


def endpoint_of(w3: Web3) -> str:
    """Describe where ``w3`` sends requests, with credentials redacted."""
    uri = getattr(w3.provider, "endpoint_uri", None)
    if uri:
        return redact_url(str(uri))
    if isinstance(w3.provider, EthereumTesterProvider):
        return EMBEDDED
    return type(w3.provider).__name__


def redact_url(url: str) -> str:
    """Drop user info, path and query from a URL: hosted RPCs put API keys there."""
    if url.strip() == EMBEDDED:
        return EMBEDDED
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<unparseable URL>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":<bad port>"
    hidden = parts.username or parts.password or parts.path.strip("/") or parts.query
    return f"{parts.scheme}://{host}{port}" + ("/***" if hidden else "")
