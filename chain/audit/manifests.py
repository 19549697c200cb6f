"""Batch manifests (every leaf of a batch, as ``GET /v1/batches/{root}`` serves them), read from
a directory of ``<root>.json`` files or from a LiveProof API, and turned into receipt leaves."""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import eq, itemgetter
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from chain.audit.bounded_get import Answer, BoundedGet, NoAnswerError, TooLargeError
from chain.errors import ConfigurationError, LiveProofError
from chain.hashing import keccak_many
from chain.merkle import root_of_leaf_hashes
from chain.receipts import LEAF_FIELDS, LEAF_TYPES


class ManifestError(LiveProofError):
    """A manifest that cannot be read as a batch of receipt leaves (from a source that failed,
    misbehaved or served junk for this batch: the batch fails, the audit goes on)."""


#: Seconds one manifest may take from an API, retries of a 429/503 included.
DEFAULT_TIMEOUT = 60.0
#: Bytes a manifest may hold (an API batch of 65,536 leaves is about 70 MB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Requests in a row without an answer after which an API is no longer asked (each batch left
#: fails at once instead of waiting out its deadline).
GIVE_UP_AFTER = 3
#: Values a manifest may hold beside its leaves (an honest one has a few dozen; walking a
#: million takes about 0.1 s).
_MAX_OTHER_VALUES = 1_000_000


class ManifestSource(Protocol):
    """Where an audit gets the leaves of a committed root."""

    def get(self, root: str) -> dict[str, Any] | None:
        """The manifest of ``root`` (0x hex), or None when there is none; raises
        :class:`ManifestError` for anything wrong with this one manifest."""


class DirectoryManifests:
    """``<root>.json`` files in a directory (as ``liveproof export manifests`` writes them)."""

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Read manifests of at most ``max_bytes`` from ``directory``."""
        if not directory.is_dir():
            raise ConfigurationError(f"{directory} is not a directory of batch manifests")
        self.directory = directory
        self.max_bytes = max_bytes

    def get(self, root: str) -> dict[str, Any] | None:
        """The manifest of ``root``, or None when the directory has no file for it."""
        path = self.directory / f"{root.lower()}.json"
        try:
            # Non-blocking: a FIFO planted under a root's name must not hang the audit.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ManifestError(f"{path.name}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "rb") as file:
                info = os.fstat(file.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise ManifestError(f"{path.name} is not a regular file")
                if info.st_size > self.max_bytes:
                    raise ManifestError(
                        f"{path.name}: {info.st_size:,} bytes, over the cap of {self.max_bytes:,}"
                    )
                data = file.read(self.max_bytes + 1)
        except OSError as exc:
            raise ManifestError(f"{path.name}: {exc.strerror or exc}") from None
        if len(data) > self.max_bytes:
            raise ManifestError(f"{path.name}: over {self.max_bytes:,} bytes")
        return _manifest_object(data, path.name)


def _manifest_object(data: bytes, where: str) -> dict[str, Any]:
    """``data`` parsed as a manifest object; raises :class:`ManifestError` otherwise."""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{where} is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where} is not a JSON object")
    colons, keys = data.count(b":"), _keys_and_colons(manifest)
    if colons != keys:
        # orjson keeps a repeated key's last value, another reader may keep its first.
        raise ManifestError(
            f"{where} names a key twice in one object (or escapes a ':'): "
            f"{colons:,} ':' for {keys:,} keys and ':' in strings"
        )
    return manifest


def _keys_and_colons(manifest: dict[str, Any]) -> int:
    """Keys in ``manifest``'s objects plus the ':' in its strings: outside its strings, each ':'
    of a JSON text ends one key, so a text naming a key twice has more. Leaves are counted at C
    speed (their keys are field names, their values hex or decimal: no ':', or parse_leaves
    refuses them); anything else is walked, up to :data:`_MAX_OTHER_VALUES` values."""
    leaves = manifest.get("leaves")
    rows = leaves if isinstance(leaves, list) and set(map(type, leaves)) <= {dict} else None
    total = sum(map(len, rows)) if rows is not None else 0
    todo: list[Any] = [v for k, v in manifest.items() if not (k == "leaves" and rows is not None)]
    total += len(manifest) + sum(k.count(":") for k in manifest)
    walked = 0
    while todo:
        value = todo.pop()
        walked += 1
        if walked > _MAX_OTHER_VALUES:
            raise ManifestError(f"more than {_MAX_OTHER_VALUES:,} values beside its leaves")
        if isinstance(value, dict):
            total += len(value) + sum(k.count(":") for k in value)
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
        elif isinstance(value, str):
            total += value.count(":")
    return total


def polite_get(
    client: httpx.Client, url: str, params: dict[str, Any] | None = None, *, attempts: int = 8
) -> httpx.Response:
    """GET that waits out a rate limit (429) or a busy service (503) for their ``Retry-After``
    (at most 10 s a time) before giving up; raises httpx errors for an unreachable host."""
    for attempt in range(attempts):
        response = client.get(url, params=params)
        if response.status_code not in (429, 503) or attempt == attempts - 1:
            return response
        time.sleep(_retry_after(response.headers.get("retry-after")))
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(value: str | None) -> float:
    """Seconds a ``Retry-After`` asks for, within [0.1, 10] (1 when it is a date or junk)."""
    try:
        wait = float(value or "1")
    except ValueError:  # an HTTP date: not worth parsing for a pause
        wait = 1.0
    return min(max(wait, 0.1), 10.0) if math.isfinite(wait) else 1.0


class ApiManifests:
    """Manifests from a LiveProof API's public ``GET /v1/batches/{root}``.

    Whatever the API does for one batch (an error status, a redirect, a hang, a slow drip, a
    reset, junk, a body over the cap) is a :class:`ManifestError` for that batch: each request,
    its retries included, ends by ``timeout`` seconds. After :data:`GIVE_UP_AFTER` requests in
    a row got no answer, the API is no longer asked (every later batch fails at once)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """Read manifests from the API at ``base_url`` (an http or https URL)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"{base_url!r} is not an http(s) URL of a LiveProof API")
        if not timeout > 0 or max_bytes < 1:
            raise ConfigurationError("a manifest needs a positive timeout and size cap")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._http = BoundedGet(self.base_url, max_bytes)
        self._unanswered = 0

    def reopened(self) -> ApiManifests:
        """The same source on fresh connections (for a forked worker process), remembering
        how many requests in a row went unanswered."""
        fresh = ApiManifests(self.base_url, timeout=self.timeout, max_bytes=self.max_bytes)
        fresh._unanswered = self._unanswered
        return fresh

    def get(self, root: str) -> dict[str, Any] | None:
        """The manifest of ``root``, or None when the API knows no such batch (404)."""
        url = f"{self.base_url}/v1/batches/{root}"
        if self._unanswered >= GIVE_UP_AFTER:
            raise ManifestError(
                f"not asked: {self.base_url} answered none of the {self._unanswered} requests "
                "before"
            )
        try:
            answer = self._polite(url, time.monotonic() + self.timeout)
        except NoAnswerError as exc:
            self._unanswered += 1
            within = f" ({self.timeout:g} s)" if exc.late else ""
            raise ManifestError(f"{url}: {exc}{within}") from None
        except TooLargeError as exc:
            self._unanswered = 0
            raise ManifestError(f"{url}: {exc} of {self.max_bytes:,} bytes") from None
        self._unanswered = 0
        if answer.status == 404:
            return None
        if answer.status != 200:
            moved = answer.headers.get("location")
            to = f" (a redirect to {moved[:200]!r}: not followed)" if moved else ""
            raise ManifestError(f"{url} answered {answer.status}{to}")
        encoding = answer.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise ManifestError(f"{url} answered in {encoding[:40]!r} encoding, not asked for")
        return _manifest_object(answer.body, url)

    def _polite(self, url: str, deadline: float) -> Answer:
        """The answer, after waiting out a 429/503 while its ``Retry-After`` fits the deadline."""
        while True:
            answer = self._http.get(url, deadline)
            if answer.status not in (429, 503):
                return answer
            wait = _retry_after(answer.headers.get("retry-after"))
            if time.monotonic() + wait >= deadline:
                return answer
            time.sleep(wait)


@dataclass(frozen=True, slots=True)
class Leaves:
    """A batch's receipt leaves, column by column (leaf v1 field order)."""

    receipt_id: list[bytes]
    kind: list[int]
    refers_to: list[bytes]
    room_id: list[bytes]
    session_id: list[bytes]
    product_id: list[bytes]
    endorsement_id: list[bytes]
    quantity: list[int]
    unit_price: list[int]
    currency: list[bytes]
    ordered_at: list[int]
    buyer_commitment: list[bytes]
    hashes: list[bytes]

    def __len__(self) -> int:
        # receipt_id, not hashes: a batch loader may drop the columns an audit does not read.
        return len(self.receipt_id)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Each leaf's values in leaf v1 order (without its hash)."""
        return zip(
            self.receipt_id, self.kind, self.refers_to, self.room_id, self.session_id,
            self.product_id, self.endorsement_id, self.quantity, self.unit_price, self.currency,
            self.ordered_at, self.buyer_commitment, strict=True,
        )  # fmt: skip

    def root(self) -> bytes:
        """The StandardMerkleTree root of the leaves."""
        return root_of_leaf_hashes(self.hashes)


_BYTES_FIELDS = {name: int(kind[5:]) for name, kind in LEAF_FIELDS if kind.startswith("bytes")}
_UINT_FIELDS = {name: int(kind[4:]) for name, kind in LEAF_FIELDS if kind.startswith("uint")}
_NAMES = tuple(name for name, _ in LEAF_FIELDS)
_FIELD_SET = frozenset(_NAMES)
_ROW = itemgetter(*_NAMES)
_DIGITS = itemgetter(slice(2, None))


def _bytes_column(raw: tuple[Any, ...], name: str, size: int) -> list[bytes]:
    """Hex strings of ``size`` bytes, checked and decoded a column at a time (C-speed slices)."""
    step = 2 + 2 * size
    count = len(raw)
    try:
        joined = "".join(raw)
    except TypeError:
        raise ManifestError(f"leaf field {name}: expected 0x-prefixed hex strings") from None
    if (
        len(joined) != count * step
        or joined[0::step] != "0" * count
        or joined[1::step] != "x" * count
    ):
        raise ManifestError(f"leaf field {name}: expected {size} bytes as 0x-prefixed hex")
    try:
        data = bytes.fromhex("".join(map(_DIGITS, raw)))
    except ValueError:
        raise ManifestError(f"leaf field {name}: not hex") from None
    if len(data) != count * size:
        raise ManifestError(f"leaf field {name}: expected {size} bytes as 0x-prefixed hex")
    return [data[i : i + size] for i in range(0, len(data), size)]


def _uint_column(raw: tuple[Any, ...], name: str, bits: int) -> list[int]:
    """Integers (JSON numbers or decimal strings) that fit ``uint<bits>``."""
    kinds = set(map(type, raw))
    if not kinds <= {int, str} or (
        str in kinds and not all(map(str.isdecimal, (v for v in raw if type(v) is str)))
    ):
        raise ManifestError(f"leaf field {name}: expected an unsigned integer")
    out = list(map(int, raw))
    if min(out) < 0 or max(out) >= 1 << bits:
        raise ManifestError(f"leaf field {name}: expected a uint{bits}")
    return out


def parse_leaves(manifest: dict[str, Any]) -> Leaves:
    """The manifest's leaves, checked and hashed; raises :class:`ManifestError` for anything
    that is not receipt leaf v1 (a manifest is the audited party's word: never trusted)."""
    if not isinstance(manifest, dict):
        raise ManifestError("a manifest is a JSON object")
    try:
        return _parse_leaves(manifest)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        # The checks below aim to say precisely what is wrong; this catches what they miss.
        raise ManifestError(f"unreadable leaves: {type(exc).__name__}: {exc}") from None


def _shown(value: object, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a manifest's junk can be any size)."""
    if isinstance(value, list) and len(value) > 20:
        value = [*value[:20], ...]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_leaves(manifest: dict[str, Any]) -> Leaves:
    types = manifest.get("leaf_types")
    if types is not None and (not isinstance(types, list) or tuple(types) != LEAF_TYPES):
        raise ManifestError(f"leaf types {_shown(types)} are not receipt leaf v1")
    rows = manifest.get("leaves")
    if not isinstance(rows, list) or not rows:
        raise ManifestError("a manifest needs a non-empty list of leaves")
    if set(map(type, rows)) != {dict} or not all(map(eq, repeat(_FIELD_SET), map(dict.keys, rows))):
        raise ManifestError(f"every leaf must have exactly the fields {sorted(_FIELD_SET)}")
    raw_columns = list(zip(*map(_ROW, rows), strict=True))
    columns: dict[str, list[Any]] = {}
    for name, raw in zip(_NAMES, raw_columns, strict=True):
        if name in _BYTES_FIELDS:
            columns[name] = _bytes_column(raw, name, _BYTES_FIELDS[name])
        else:
            columns[name] = _uint_column(raw, name, _UINT_FIELDS[name])
    if not set(columns["kind"]) <= {0, 1}:
        raise ManifestError("leaf field kind: 0 (sale) or 1 (refund)")
    encoded = [
        b"".join((
            rid, k.to_bytes(32, "big"), ref, room, sess, prod, end, q.to_bytes(32, "big"),
            price.to_bytes(32, "big"), cur + bytes(29), at.to_bytes(32, "big"), buyer,
        ))
        for rid, k, ref, room, sess, prod, end, q, price, cur, at, buyer in zip(
            *(columns[n] for n in _NAMES), strict=True
        )
    ]  # fmt: skip
    hashes = list(keccak_many(keccak_many(encoded)))
    return Leaves(
        receipt_id=columns["receiptId"],
        kind=columns["kind"],
        refers_to=columns["refersTo"],
        room_id=columns["roomId"],
        session_id=columns["sessionId"],
        product_id=columns["productId"],
        endorsement_id=columns["endorsementId"],
        quantity=columns["quantity"],
        unit_price=columns["unitPrice"],
        currency=columns["currency"],
        ordered_at=columns["orderedAt"],
        buyer_commitment=columns["buyerCommitment"],
        hashes=hashes,
    )
