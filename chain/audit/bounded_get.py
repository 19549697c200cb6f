"""HTTP GETs that a hostile server cannot stretch: one total deadline covers connecting, every
read and write (a server dripping a byte at a time, in its headers or its body, cannot keep a
request alive past it), and a body larger than a cap is refused without reading it all.

Built on httpcore's public network-backend interface: every socket operation's timeout is
clamped to what is left of the request's deadline. Redirects are never followed and no
content encoding is asked for, so what is read is what is counted.
"""

from __future__ import annotations

import math
import ssl
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpcore

#: What httpcore raises when a request got no (complete) answer.
_NO_ANSWER = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
    OSError,
)


class NoAnswerError(Exception):
    """The server gave no complete HTTP answer: unreachable, reset, junk or out of time."""

    def __init__(self, why: str, *, late: bool = False) -> None:
        """``why`` there was no answer; ``late`` when the deadline passed."""
        super().__init__(why)
        self.late = late


class TooLargeError(Exception):
    """The answer's body is larger than the cap."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A status, the headers (names in lower case) and, for a 200, the body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Clock:
    """The deadline of the request in flight (monotonic seconds)."""

    def __init__(self) -> None:
        self.deadline = math.inf

    def left(self, timeout: float | None, late: type[Exception]) -> float:
        """``timeout`` cut to what is left of the deadline; raises ``late`` once it passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise late("out of time")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the clock's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, clock: _Clock) -> None:
        self._inner = inner
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to ``max_bytes`` by the deadline."""
        return self._inner.read(max_bytes, self._clock.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write ``buffer`` by the deadline."""
        self._inner.write(buffer, self._clock.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        """Close the connection."""
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """TLS over this stream, its handshake done by the deadline."""
        left = self._clock.left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left), self._clock)

    def get_extra_info(self, info: str) -> Any:
        """What the wrapped stream says about ``info``."""
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's synchronous sockets, held to the clock's deadline."""

    def __init__(self, clock: _Clock) -> None:
        self._inner = httpcore.SyncBackend()
        self._clock = clock

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        """A TCP connection made by the deadline."""
        left = self._clock.left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, local_address, socket_options)
        return _Stream(stream, self._clock)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        """A Unix socket connection made by the deadline."""
        left = self._clock.left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, socket_options), self._clock)

    def sleep(self, seconds: float) -> None:
        """Sleep, at most until the deadline."""
        time.sleep(max(0.0, min(seconds, self._clock.deadline - time.monotonic())))


def _pool(base_url: str, clock: _Clock) -> httpcore.ConnectionPool:
    """A connection pool for ``base_url``, through the proxy the environment names for it."""
    backend = _Backend(clock)
    parts = urlsplit(base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return httpcore.HTTPProxy(proxy_url=proxy, network_backend=backend)
    return httpcore.ConnectionPool(network_backend=backend)


class BoundedGet:
    """GETs of one server's URLs, each answered in full by its deadline or not at all."""

    def __init__(self, base_url: str, max_bytes: int) -> None:
        """GETs under ``base_url`` whose bodies may hold at most ``max_bytes``."""
        self.max_bytes = max_bytes
        self._clock = _Clock()
        self._pool = _pool(base_url, self._clock)

    def get(self, url: str, deadline: float) -> Answer:
        """The answer to ``GET url`` by ``deadline`` (``time.monotonic()`` seconds); the body is
        read only for a 200. Raises :class:`NoAnswerError` or :class:`TooLargeError`."""
        self._clock.deadline = deadline
        headers = [(b"Accept", b"application/json"), (b"Accept-Encoding", b"identity")]
        try:
            with self._pool.stream("GET", url, headers=headers) as response:
                named = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
                }
                if response.status != 200:
                    return Answer(response.status, named, b"")
                return Answer(200, named, self._body(response, named))
        except _NO_ANSWER as exc:
            _no_answer(exc, deadline)
        finally:
            self._clock.deadline = math.inf

    def _body(self, response: httpcore.Response, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdecimal() and int(declared) > self.max_bytes:
            raise TooLargeError(f"a body of {int(declared):,} bytes, over the cap")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise TooLargeError("a body over the cap")
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()


def _no_answer(exc: BaseException, deadline: float) -> NoReturn:
    """Raise what ``exc`` means for the caller: out of time, or no answer and why."""
    if time.monotonic() >= deadline or isinstance(exc, httpcore.TimeoutException):
        raise NoAnswerError("no complete answer in time", late=True) from None
    text = str(exc) or type(exc).__name__
    raise NoAnswerError(f"no answer ({text[:200]})") from None
