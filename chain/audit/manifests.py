"""Batch manifests (every leaf of a batch, as ``GET /v1/batches/{root}`` serves them), read from
a directory of ``<root>.json`` files or from a LiveProof API, and turned into receipt leaves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import eq, itemgetter
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from chain.errors import ConfigurationError, LiveProofError
from chain.hashing import keccak_many
from chain.merkle import root_of_leaf_hashes
from chain.receipts import LEAF_FIELDS, LEAF_TYPES


class ManifestError(LiveProofError):
    """A manifest that cannot be read as a batch of receipt leaves."""


class ManifestSource(Protocol):
    """Where an audit gets the leaves of a committed root."""

    def get(self, root: str) -> dict[str, Any] | None:
        """The manifest of ``root`` (0x hex), or None when there is none."""


class DirectoryManifests:
    """``<root>.json`` files in a directory (as ``liveproof export manifests`` writes them)."""

    def __init__(self, directory: Path) -> None:
        """Read manifests from ``directory``."""
        if not directory.is_dir():
            raise ConfigurationError(f"{directory} is not a directory of batch manifests")
        self.directory = directory

    def get(self, root: str) -> dict[str, Any] | None:
        """The manifest of ``root``, or None when the directory has no file for it."""
        path = self.directory / f"{root.lower()}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return _manifest_object(data, path.name)


def _manifest_object(data: bytes, where: str) -> dict[str, Any]:
    """``data`` parsed as a manifest object; raises :class:`ManifestError` otherwise."""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{where} is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where} is not a JSON object")
    return manifest


def polite_get(
    client: httpx.Client, url: str, params: dict[str, Any] | None = None, *, attempts: int = 8
) -> httpx.Response:
    """GET that waits out a rate limit (429) or a busy service (503) for their ``Retry-After``
    (at most 10 s a time) before giving up; raises httpx errors for an unreachable host."""
    for attempt in range(attempts):
        response = client.get(url, params=params)
        if response.status_code not in (429, 503) or attempt == attempts - 1:
            return response
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:  # an HTTP date: not worth parsing for a pause
            wait = 1.0
        time.sleep(min(max(wait, 0.1), 10.0))
    raise AssertionError("unreachable")  # pragma: no cover


class ApiManifests:
    """Manifests from a LiveProof API's public ``GET /v1/batches/{root}``."""

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        """Read manifests from the API at ``base_url``."""
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=30)

    def get(self, root: str) -> dict[str, Any] | None:
        """The manifest of ``root``, or None when the API knows no such batch."""
        try:
            response = polite_get(self.client, f"{self.base_url}/v1/batches/{root}")
        except httpx.HTTPError as exc:
            raise ConfigurationError(f"cannot reach the API at {self.base_url}: {exc}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ConfigurationError(
                f"{self.base_url}/v1/batches/{root} answered {response.status_code}"
            )
        return _manifest_object(response.content, f"{self.base_url}/v1/batches/{root}")


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


def _parse_leaves(manifest: dict[str, Any]) -> Leaves:
    types = manifest.get("leaf_types")
    if types is not None and (not isinstance(types, list) or tuple(types) != LEAF_TYPES):
        raise ManifestError(f"leaf types {types!r} are not receipt leaf v1")
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
