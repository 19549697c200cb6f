"""Request-rate limits: a token bucket per verified API key, or per client address otherwise,
in each worker process. Past its bucket a client gets 429 problem+json with ``Retry-After``, before
the request reaches any route, so a burst costs no database or chain work.

Health probes (``/healthz``, ``/readyz``, ``/metrics``) are never limited. A limit of 0
switches that kind of client's limit off.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem_type

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
#: Buckets kept per process; the least recently used go first past this.
MAX_CLIENTS = 100_000


@dataclass(frozen=True)
class Limit:
    """``rate`` requests per second, with bursts of up to ``burst``."""

    rate: float
    burst: int

    @property
    def enabled(self) -> bool:
        """False when the rate is 0."""
        return self.rate > 0


class Clock(Protocol):
    """Where time comes from (the ``time`` module, or a test's clock)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back."""


class TokenBuckets:
    """Token buckets by client key, refilled lazily from a monotonic clock."""

    def __init__(self, limit: Limit, clock: Clock = time) -> None:
        """Buckets of ``limit``."""
        self.limit = limit
        self._clock = clock
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    def take(self, key: bytes) -> float:
        """Take one token for ``key``: 0.0 when granted, else the seconds until one is due."""
        now = self._clock.monotonic()
        limit = self.limit
        tokens, stamp = self._buckets.pop(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - stamp) * limit.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / limit.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


def client_key(scope: Scope, verified_id: Callable[[str], str | None]) -> tuple[bool, bytes]:
    """(keyed, key): the API key's id when ``verified_id`` knows the bearer token as verified,
    else the client's address. A key this process has not verified yet (or a made-up one)
    counts against its address, so inventing keys does not buy fresh buckets."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token:
                key_id = verified_id(token)
                if key_id is not None:
                    return True, b"key:" + key_id.encode()
            break
    client = scope.get("client")
    host = client[0] if client else "unknown"
    return False, b"ip:" + str(host).encode()


def _verified_id(scope: Scope) -> Callable[[str], str | None]:
    state = getattr(getattr(scope.get("app"), "state", None), "liveproof", None)
    if state is None:
        return lambda _token: None
    verifier: Callable[[str], str | None] = state.keys.verified_id
    return verifier


class RateLimit:
    """ASGI middleware applying :class:`TokenBuckets` to every HTTP request but the probes."""

    def __init__(self, app: ASGIApp, *, keyed: Limit, anonymous: Limit) -> None:
        """Limit requests with an API key by ``keyed``, others by ``anonymous``."""
        self.app = app
        self.keyed = TokenBuckets(keyed) if keyed.enabled else None
        self.anonymous = TokenBuckets(anonymous) if anonymous.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 429."""
        if scope["type"] != "http" or scope.get("path") in EXEMPT:
            await self.app(scope, receive, send)
            return
        keyed, key = client_key(scope, _verified_id(scope))
        buckets = self.keyed if keyed else self.anonymous
        wait = buckets.take(key) if buckets is not None else 0.0
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send, wait, buckets.limit if buckets else None)


async def _refuse(scope: Scope, send: Send, wait: float, limit: Limit | None) -> None:
    retry_after = max(1, math.ceil(wait))
    rate = f"{limit.rate:g} requests/s (bursts of {limit.burst})" if limit else "the limit"
    body = orjson.dumps(
        {
            "type": problem_type("too-many-requests"),
            "title": "Too many requests",
            "status": 429,
            "detail": f"this client may send {rate}; retry after {retry_after} s",
            "instance": scope.get("path", ""),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
