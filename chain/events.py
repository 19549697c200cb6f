"""Read every LiveProof event from the chain, fast.

:class:`EventReader` scans block ranges in chunks with one ``eth_getLogs`` per chunk covering
all the deployment's contracts, and decodes each log with a table built once from the contract
ABIs (topic0 -> event spec). Decoding never goes through web3's ``process_log``: logs are taken
straight from the JSON-RPC response (hex strings) and events whose inputs are all one-word
static types are decoded by slicing the hex, without eth_abi; the volume events
(``BatchCommitted``, ``ReceiptRecorded``) have hand-written decoders. Other events (strings,
the ``EndorsementTerms`` tuple) are decoded with eth_abi, tuples as dicts keyed by component
name.

Argument values: ``bytes`` for ``bytesN``, checksum ``str`` for addresses, ``int`` for
integers, ``bool``, ``str`` for strings, ``dict`` for tuples, ``list`` for arrays; an indexed
dynamic value (string, bytes, array, tuple) is its 32-byte topic (a keccak hash).

A scan is resumable: the reader's :class:`ScanCursor` always names the first log not yet
yielded, so a scan stopped at any point (an exception, a ``break``) and resumed from the saved
cursor yields every remaining event exactly once. When the node refuses a range as too large
(too many results, response too big, range over its limit) the range is halved and retried;
transient transport failures are retried with backoff.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, cast

import requests
from eth_abi.abi import decode as abi_decode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3 import JSONBaseProvider, Web3
from web3.exceptions import Web3RPCError
from web3.types import FilterParams, RPCEndpoint

from chain.artifacts import abi_of, abi_type
from chain.deploy import Deployment
from chain.errors import ConfigurationError, LiveProofError
from chain.relayer import RetryPolicy, classify_error

__all__ = [
    "ChainEvent",
    "EventDecodeError",
    "EventDecoder",
    "EventReader",
    "EventScanError",
    "EventSpec",
    "ScanCursor",
    "ScanStats",
    "event_specs",
    "is_range_too_large",
    "raw_log",
]

_ETH_GET_LOGS: Final = RPCEndpoint("eth_getLogs")
_ZERO_WORD: Final = "0" * 64
_TWO_256: Final = 1 << 256
_TWO_255: Final = 1 << 255

#: Decodes a log's args from its topics and data (both as 0x-prefixed hex, as JSON-RPC has them).
ArgsDecoder = Callable[[Sequence[str], str], dict[str, Any]]
_WordConverter = Callable[[str], Any]


class EventDecodeError(LiveProofError, ValueError):
    """A log carrying a known event's topic does not match that event's ABI layout."""


class EventScanError(LiveProofError):
    """An RPC request of a scan failed even after retries (and, for logs, splitting)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} failed: {reason}")
        self.what = what


@dataclass(frozen=True, slots=True)
class ChainEvent:
    """One decoded LiveProof event; hashes are 0x-prefixed hex, ``address`` is checksummed."""

    contract: str
    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    address: str
    #: The block's timestamp when the node puts it in the log (``blockTimestamp``: anvil,
    #: geth 1.16+), else None (ask the block). Not part of the event's identity.
    block_timestamp: int | None = field(default=None, compare=False)

    @property
    def position(self) -> tuple[int, int]:
        """``(block_number, log_index)``: where the event sits in the chain's log order."""
        return (self.block_number, self.log_index)


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One ABI event of one contract: its signature, topic0 and inputs."""

    contract: str
    name: str
    signature: str
    topic0: str
    inputs: tuple[dict[str, Any], ...]
    anonymous: bool = False

    @property
    def qualified_name(self) -> str:
        """``Contract.Event``, as :meth:`EventReader.iter_events` ``names`` accepts it."""
        return f"{self.contract}.{self.name}"


@dataclass(slots=True)
class ScanCursor:
    """Where a scan resumes: the first block (and, in it, the first log index) not yet yielded."""

    next_block: int
    next_log_index: int = 0

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the cursor as JSON, atomically (a crash leaves the old file or the new one)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScanCursor:
        """Read a cursor written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            cursor = cls(int(data["next_block"]), int(data.get("next_log_index", 0)))
        except FileNotFoundError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not a scan cursor file: {exc}") from exc
        if cursor.next_block < 0 or cursor.next_log_index < 0:
            raise ConfigurationError(f"{path} holds a negative cursor position")
        return cursor


@dataclass(slots=True)
class ScanStats:
    """Counters of an :class:`EventReader` across all its scans."""

    requests: int = 0
    retries: int = 0
    splits: int = 0
    logs: int = 0
    events: int = 0
    unknown: int = 0
    unknown_topics: Counter[str] = field(default_factory=Counter)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


def _is_word_type(kind: str) -> bool:
    """True for the static types that fill exactly one 32-byte word (no arrays, no tuples)."""
    if kind in ("address", "bool"):
        return True
    for prefix in ("uint", "int", "bytes"):
        if kind.startswith(prefix):
            rest = kind[len(prefix) :]
            return rest.isdigit() or (rest == "" and prefix != "bytes")
    return False


def _word_converter(kind: str) -> _WordConverter:
    """Converter from a 64-hex-digit word (no 0x) to the Python value of a one-word type."""
    if kind == "address":
        return lambda w: _checksum("0x" + w[24:])
    if kind == "bool":
        return lambda w: w != _ZERO_WORD
    if kind.startswith("uint"):
        return lambda w: int(w, 16)
    if kind.startswith("int"):

        def signed(w: str) -> int:
            value = int(w, 16)
            return value - _TWO_256 if value >= _TWO_255 else value

        return signed
    size = int(kind[5:])
    if size == 32:
        return bytes.fromhex
    return lambda w: bytes.fromhex(w[: 2 * size])


def _value_converter(item: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """Post-processing of an eth_abi value (None: keep as is)."""
    kind: str = item["type"]
    if kind.endswith("]"):
        inner_item = {**item, "type": kind[: kind.rindex("[")]}
        inner = _value_converter(inner_item)
        if inner is None:
            return list
        return lambda values: [inner(v) for v in values]
    if kind == "tuple":
        parts = [(c["name"], _value_converter(c)) for c in item["components"]]
        return lambda values: {
            name: (value if conv is None else conv(value))
            for (name, conv), value in zip(parts, values, strict=True)
        }
    if kind == "address":
        return _checksum
    return None


def _hex_bytes(value: str) -> bytes:
    try:
        return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    except ValueError as exc:
        raise EventDecodeError(f"not hex: {value[:20]!r}") from exc


def _compile_word_decoder(
    inputs: Sequence[Mapping[str, Any]], topic_count: int, word_count: int, signature: str
) -> ArgsDecoder:
    """A decoder for events whose inputs all fill one word: slices the hex, no eth_abi."""
    fields: list[tuple[str, bool, int, int, _WordConverter]] = []
    topic = 1
    word = 0
    for item in inputs:
        conv = _word_converter(item["type"])
        if item["indexed"]:
            fields.append((item["name"], True, topic, 0, conv))
            topic += 1
        else:
            start = 2 + 64 * word
            fields.append((item["name"], False, start, start + 64, conv))
            word += 1
    data_length = 2 + 64 * word_count
    frozen = tuple(fields)

    def decode(topics: Sequence[str], data: str) -> dict[str, Any]:
        if len(topics) != topic_count or len(data) != data_length:
            raise EventDecodeError(
                f"{signature}: expected {topic_count} topics and {word_count} data words, "
                f"got {len(topics)} topics and {(len(data) - 2) / 64:g} words"
            )
        try:
            return {
                name: conv(topics[a][2:]) if in_topic else conv(data[a:b])
                for name, in_topic, a, b, conv in frozen
            }
        except ValueError as exc:
            raise EventDecodeError(f"{signature}: {exc}") from exc

    return decode


def _compile_abi_decoder(
    inputs: Sequence[Mapping[str, Any]], topic_count: int, signature: str
) -> ArgsDecoder:
    """A decoder using eth_abi for the data (strings, tuples, arrays) and words for topics."""
    order = [item["name"] for item in inputs]
    indexed: list[tuple[str, _WordConverter]] = []
    data_types: list[str] = []
    data_names: list[str] = []
    data_convs: list[Callable[[Any], Any] | None] = []
    for item in inputs:
        if item["indexed"]:
            kind = abi_type(item)
            # A dynamic indexed value is stored as its keccak hash: keep the 32 bytes.
            indexed.append(
                (item["name"], _word_converter(kind if _is_word_type(kind) else "bytes32"))
            )
        else:
            data_types.append(abi_type(item))
            data_names.append(item["name"])
            data_convs.append(_value_converter(item))
    types = tuple(data_types)

    def decode(topics: Sequence[str], data: str) -> dict[str, Any]:
        if len(topics) != topic_count:
            raise EventDecodeError(f"{signature}: expected {topic_count} topics, got {len(topics)}")
        try:
            values = abi_decode(types, _hex_bytes(data)) if types else ()
            found = {name: conv(topics[i + 1][2:]) for i, (name, conv) in enumerate(indexed)}
        except EventDecodeError:
            raise
        except Exception as exc:  # eth_abi raises a family of DecodingError / ValueError
            raise EventDecodeError(f"{signature}: {exc}") from exc
        for name, conv, value in zip(data_names, data_convs, values, strict=True):
            found[name] = value if conv is None else conv(value)
        return {name: found[name] for name in order}

    return decode


def _decode_batch_committed(topics: Sequence[str], data: str) -> dict[str, Any]:
    # BatchCommitted(bytes32 indexed root, uint32 count): the volume event, hand-decoded.
    if len(topics) != 2 or len(data) != 66:
        raise EventDecodeError("BatchCommitted(bytes32,uint32): malformed log")
    try:
        return {"root": bytes.fromhex(topics[1][2:]), "count": int(data[2:], 16)}
    except ValueError as exc:
        raise EventDecodeError(f"BatchCommitted(bytes32,uint32): {exc}") from exc


def _decode_receipt_recorded(topics: Sequence[str], data: str) -> dict[str, Any]:
    # ReceiptRecorded(bytes32 indexed leaf)
    if len(topics) != 2 or len(data) != 2:
        raise EventDecodeError("ReceiptRecorded(bytes32): malformed log")
    try:
        return {"leaf": bytes.fromhex(topics[1][2:])}
    except ValueError as exc:
        raise EventDecodeError(f"ReceiptRecorded(bytes32): {exc}") from exc


#: Hand-written decoders, used when an ABI event has exactly this signature, indexing and names.
_FAST_PATHS: Final[dict[tuple[str, tuple[tuple[str, bool], ...]], ArgsDecoder]] = {
    ("BatchCommitted(bytes32,uint32)", (("root", True), ("count", False))): (
        _decode_batch_committed
    ),
    ("ReceiptRecorded(bytes32)", (("leaf", True),)): _decode_receipt_recorded,
}


def _compile(spec: EventSpec) -> ArgsDecoder:
    inputs = spec.inputs
    layout = tuple((str(i["name"]), bool(i["indexed"])) for i in inputs)
    fast = _FAST_PATHS.get((spec.signature, layout))
    if fast is not None and not spec.anonymous:
        return fast
    topic_count = sum(1 for i in inputs if i["indexed"]) + (0 if spec.anonymous else 1)
    if all(_is_word_type(abi_type(i)) for i in inputs):
        words = sum(1 for i in inputs if not i["indexed"])
        return _compile_word_decoder(inputs, topic_count, words, spec.signature)
    return _compile_abi_decoder(inputs, topic_count, spec.signature)


def event_specs(contract: str) -> list[EventSpec]:
    """The non-anonymous events in ``contract``'s ABI, in ABI order."""
    specs = []
    for item in abi_of(contract):
        if item.get("type") != "event" or item.get("anonymous"):
            continue
        inputs = tuple(dict(i) for i in item["inputs"])
        signature = f"{item['name']}({','.join(abi_type(i) for i in inputs)})"
        topic0 = "0x" + keccak(signature.encode()).hex()
        specs.append(EventSpec(contract, item["name"], signature, topic0, inputs))
    return specs


class _Entry:
    """A decodable (address, topic0): the spec, its compiled decoder, the emitting address."""

    __slots__ = ("address", "contract", "decode_args", "name", "qualified_name", "spec")

    def __init__(self, spec: EventSpec, address: str) -> None:
        self.spec = spec
        self.contract = spec.contract
        self.name = spec.name
        self.qualified_name = spec.qualified_name
        self.address = address
        self.decode_args = _compile(spec)

    def build(self, log: Mapping[str, Any]) -> ChainEvent:
        """The event of a JSON-RPC-form log whose (address, topic0) is this entry's."""
        return ChainEvent(
            self.contract,
            self.name,
            self.decode_args(log["topics"], log["data"]),
            int(log["blockNumber"], 16),
            log["blockHash"],
            log["transactionHash"],
            int(log["logIndex"], 16),
            self.address,
            int(stamp, 16) if isinstance(stamp := log.get("blockTimestamp"), str) else None,
        )


def _hex_of(value: Any) -> str:
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def _qty(value: Any) -> str:
    return value if isinstance(value, str) else hex(int(value))


def raw_log(log: Mapping[str, Any]) -> dict[str, Any]:
    """A web3-formatted log (HexBytes, ints) in JSON-RPC form (hex strings), as decoders take."""
    return {
        "address": str(log["address"]),
        "topics": [_hex_of(t) for t in log["topics"]],
        "data": _hex_of(log["data"]),
        "blockNumber": _qty(log["blockNumber"]),
        "blockHash": _hex_of(log["blockHash"]),
        "transactionHash": _hex_of(log["transactionHash"]),
        "logIndex": _qty(log["logIndex"]),
        "removed": bool(log.get("removed", False)),
        **({"blockTimestamp": _qty(stamp)} if (stamp := log.get("blockTimestamp")) else {}),
    }


class EventDecoder:
    """Decodes logs of a set of contracts (name -> address) from their ABIs."""

    def __init__(self, contracts: Mapping[str, str]) -> None:
        """Build the (address, topic0) -> event table for ``contracts`` once."""
        if not contracts:
            raise ConfigurationError("no contracts to decode events of")
        self.addresses: dict[str, str] = {}
        self.specs: dict[str, list[EventSpec]] = {}
        self._table: dict[str, dict[str, _Entry]] = {}
        for name, address in contracts.items():
            checksum = _checksum(address)
            specs = event_specs(name)
            entries = {spec.topic0: _Entry(spec, checksum) for spec in specs}
            self.addresses[name] = checksum
            self.specs[name] = specs
            # JSON-RPC nodes send addresses lower-case (some checksummed): key both forms.
            self._table[checksum.lower()] = entries
            self._table[checksum] = entries

    def _lookup(self, log: Mapping[str, Any]) -> _Entry | None:
        """The table entry for a JSON-RPC-form log, or None when its event is unknown."""
        by_topic = self._table.get(log["address"])
        if by_topic is None:
            by_topic = self._table.get(str(log["address"]).lower())
            if by_topic is None:
                return None
        topics = log["topics"]
        if not topics:
            return None
        entry = by_topic.get(topics[0])
        if entry is None:
            return by_topic.get(topics[0].lower())
        return entry

    def decode(self, log: Mapping[str, Any]) -> ChainEvent | None:
        """Decode one log (JSON-RPC hex form or web3-formatted); None for an unknown event."""
        if not isinstance(log["data"], str) or not isinstance(log["blockNumber"], str):
            log = raw_log(log)
        entry = self._lookup(log)
        return None if entry is None else entry.build(log)

    def decode_receipt(self, receipt: Mapping[str, Any]) -> list[ChainEvent]:
        """The known events among a transaction receipt's logs, in log order."""
        events = (self.decode(log) for log in receipt["logs"])
        return [e for e in events if e is not None]

    def topics_of(self, names: Collection[str]) -> tuple[list[str], frozenset[str]]:
        """Topic0s and qualified names selected by ``names`` (``Event`` or ``Contract.Event``)."""
        if isinstance(names, str):
            names = [names]
        topics: dict[str, None] = {}
        selected: set[str] = set()
        for wanted in names:
            contract, _, event = wanted.rpartition(".")
            matches = [
                spec
                for name, specs in self.specs.items()
                if not contract or contract == name
                for spec in specs
                if spec.name == event
            ]
            if not matches:
                known = sorted({s.name for specs in self.specs.values() for s in specs})
                raise ConfigurationError(f"unknown event {wanted!r}; known: {', '.join(known)}")
            for spec in matches:
                topics[spec.topic0] = None
                selected.add(spec.qualified_name)
        return list(topics), frozenset(selected)


# --------------------------------------------------------------------------------------------
# Errors from eth_getLogs
# --------------------------------------------------------------------------------------------

# Messages nodes and providers send when a range holds too many logs or too many blocks:
# geth-style and Infura "query returned more than 10000 results" (-32005), Infura's newer
# "range 1000000 exceeds limit of 10000", Alchemy "Log response size exceeded ..." and "You can
# make eth_getLogs requests with up to a 2K block range ...", reth "query exceeds max results
# 20000" / "query exceeds max block range 100000", BSC/Polygon "exceed maximum block range:
# 5000", QuickNode "eth_getLogs is limited to a 10,000 range", Ankr/Frontier "block range is
# too wide", Tenderly "range 9009594 is bigger than range limit 2000", zkSync "Query returned
# more than 10000 results. Try with this block range [...]", and the like.
_TOO_LARGE: Final = re.compile(
    r"more than [\d,]+ (?:results|logs|blocks)"
    r"|too many (?:results|logs|blocks)"
    r"|response size"
    r"|response (?:is )?too (?:large|big)"
    r"|exceeds? (?:the )?max(?:imum)? (?:results|logs|block range|range|number)"
    r"|max(?:imum)? (?:results|logs) (?:exceeded|reached)"
    r"|block range.{0,40}?(?:too|exceed|limit|larger|bigger|max|allowed)"
    r"|range \d+ (?:exceeds|is bigger|is larger)"
    r"|range limit"
    r"|limited to (?:a )?[\d,]+"
    r"|up to a [\d,k]+ block range"
    r"|log query limit|logs? limit exceeded|result window is too large"
    r"|payload too large|entity too large"
)
# A server-side timeout of a log query: a smaller range is the cure.
_QUERY_TIMEOUT: Final = re.compile(r"timed? ?out|deadline exceeded|timeout exceeded")


def _error_text(exc: BaseException) -> str:
    parts = [str(exc)]
    if isinstance(exc, Web3RPCError):
        parts.append(str(exc.message))
        error = (exc.rpc_response or {}).get("error")
        if isinstance(error, dict):
            parts.append(str(error.get("message", "")))
            parts.append(str(error.get("data", "")))
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        parts.append(exc.response.text[:2000])
    return " ".join(parts).lower()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Web3RPCError):
        error = (exc.rpc_response or {}).get("error")
        text = repr(error) if error is not None else str(exc.message)
    else:
        text = str(exc) or type(exc).__name__
    return text[:500]


def is_range_too_large(exc: BaseException) -> bool:
    """True when an ``eth_getLogs`` failure says the block range or its result is too large."""
    response = exc.response if isinstance(exc, requests.HTTPError) else None
    if response is not None and response.status_code == 413:
        return True
    return bool(_TOO_LARGE.search(_error_text(exc)))


def _is_query_timeout(exc: BaseException) -> bool:
    # Only a node's JSON-RPC answer: a client-side timeout is a transport failure, retried.
    return isinstance(exc, Web3RPCError) and bool(_QUERY_TIMEOUT.search(_error_text(exc)))


def _is_transient(exc: BaseException) -> bool:
    # -32005 is both Infura's rate limit and its result limit: the result limit is not retried.
    return classify_error(exc) == "transient" and not is_range_too_large(exc)


class _RangeTooLargeError(Exception):
    """Internal: the node refused a multi-block range as too large; split it."""


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


class EventReader:
    """Scan LiveProof events in block chunks, one ``eth_getLogs`` per chunk for all contracts."""

    #: Consecutive successful requests before a range shrunk by splitting doubles again.
    GROW_AFTER: Final = 4

    def __init__(
        self,
        w3: Web3,
        contracts: Deployment | Mapping[str, str],
        *,
        chunk_size: int = 2000,
        start_block: int | None = None,
        cursor: ScanCursor | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Read the events of ``contracts`` (a deployment, or contract name -> address).

        Scans start at ``cursor`` if given, else ``start_block``, else the deployment's first
        block (0 for a plain mapping). ``retry`` bounds the retries of transient RPC failures.
        """
        if chunk_size < 1:
            raise ConfigurationError(f"chunk_size must be >= 1, got {chunk_size}")
        if isinstance(contracts, Deployment):
            addresses = {name: c.address for name, c in contracts.contracts.items()}
            default_start = contracts.start_block
        else:
            addresses = dict(contracts)
            default_start = 0
        self.w3 = w3
        self.decoder = EventDecoder(addresses)
        self.chunk_size = chunk_size
        self.retry = retry or RetryPolicy(attempts=4, base_delay=0.25, max_delay=4.0)
        first = default_start if start_block is None else start_block
        if first < 0:
            raise ConfigurationError(f"start_block must be >= 0, got {first}")
        self.cursor = cursor if cursor is not None else ScanCursor(first)
        self.stats = ScanStats()
        # Checksummed: nodes take any case, and web3's get_logs (the fallback) insists on it.
        self._address_filter = sorted(set(self.decoder.addresses.values()))

    @property
    def addresses(self) -> dict[str, str]:
        """Contract name -> checksum address of the contracts read."""
        return dict(self.decoder.addresses)

    def latest_block(self) -> int:
        """The node's latest block number (retried like log requests)."""
        return int(self._with_retry(lambda: int(self.w3.eth.block_number), "eth_blockNumber"))

    def iter_events(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        names: Collection[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[ChainEvent]:
        """Yield events in (block, log index) order from ``from_block`` to ``to_block``.

        ``from_block`` None resumes at :attr:`cursor` (exactly: logs of the cursor's block
        before its log index are skipped); an explicit ``from_block`` moves the cursor there
        first. ``to_block`` None is the latest block when the scan
        starts. ``names`` (``"BatchCommitted"`` or ``"SaleLedger.BatchCommitted"``) restricts
        the scan to those events, filtered by topic0 at the node. The cursor is moved past
        each event as it is yielded and to the end of each finished chunk; ``progress`` is
        called after each finished chunk with (last block scanned, ``to_block``).
        """
        topic_filter: list[str] | None = None
        selected: frozenset[str] | None = None
        if names is not None:
            topic_filter, selected = self.decoder.topics_of(names)
        cursor = self.cursor
        if from_block is None:
            lo, skip_below = cursor.next_block, cursor.next_log_index
        else:
            if from_block < 0:
                raise ConfigurationError(f"from_block must be >= 0, got {from_block}")
            lo, skip_below = from_block, 0
            cursor.next_block, cursor.next_log_index = from_block, 0
        end = self.latest_block() if to_block is None else to_block
        skip_block = lo
        span = self.chunk_size
        streak = 0
        lookup = self.decoder._lookup
        stats = self.stats
        while lo <= end:
            hi = min(end, lo + span - 1)
            try:
                logs = self._get_logs(lo, hi, topic_filter)
            except _RangeTooLargeError:
                span = (hi - lo + 1) // 2
                streak = 0
                stats.splits += 1
                continue
            stats.logs += len(logs)
            events: list[ChainEvent] = []
            append = events.append
            for log in logs:
                if log.get("removed"):
                    continue
                entry = lookup(log)
                if entry is None:
                    stats.unknown += 1
                    topics = log.get("topics") or ["<anonymous>"]
                    stats.unknown_topics[str(topics[0])] += 1
                    continue
                if selected is not None and entry.qualified_name not in selected:
                    continue
                append(entry.build(log))
            if not _in_order(events):
                events.sort(key=_position)
            if skip_below:
                events = [
                    e for e in events if e.block_number != skip_block or e.log_index >= skip_below
                ]
                skip_below = 0
            stats.events += len(events)
            for event in events:
                # Counted as consumed once handed out: a consumer that stops here resumes after it.
                cursor.next_block = event.block_number
                cursor.next_log_index = event.log_index + 1
                yield event
            cursor.next_block, cursor.next_log_index = hi + 1, 0
            if progress is not None:
                progress(hi, end)
            lo = hi + 1
            streak += 1
            if span < self.chunk_size and streak >= self.GROW_AFTER:
                span = min(self.chunk_size, span * 2)
                streak = 0

    def events(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        names: Collection[str] | None = None,
    ) -> list[ChainEvent]:
        """All events of :meth:`iter_events` as a list."""
        return list(self.iter_events(from_block, to_block, names=names))

    # -- RPC ----------------------------------------------------------------------------------

    def _get_logs(self, lo: int, hi: int, topics: list[str] | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "address": self._address_filter,
            "fromBlock": hex(lo),
            "toBlock": hex(hi),
        }
        if topics is not None:
            params["topics"] = [topics]
        logs: list[dict[str, Any]] = self._with_retry(
            lambda: self._request_logs(params), f"eth_getLogs for blocks {lo}-{hi}", hi > lo
        )
        return logs

    def _request_logs(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.stats.requests += 1
        provider = self.w3.provider
        if isinstance(provider, JSONBaseProvider):
            # Straight from the JSON-RPC answer: web3's result formatters and AttributeDict
            # middleware would cost more than decoding the logs does.
            response: Any = provider.make_request(_ETH_GET_LOGS, [params])
            error = response.get("error")
            if error is not None:
                raise Web3RPCError(repr(error), rpc_response=response)
            result = response.get("result")
            if not isinstance(result, list):
                raise Web3RPCError(f"eth_getLogs answered {result!r}", rpc_response=response)
            return result
        # Other providers (eth-tester, custom ones) format their own results: normalise them.
        logs = self.w3.eth.get_logs(cast(FilterParams, params))
        return [raw_log(log) for log in logs]

    def _with_retry(self, fn: Callable[[], Any], what: str, splittable: bool = False) -> Any:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if splittable and (is_range_too_large(exc) or _is_query_timeout(exc)):
                    raise _RangeTooLargeError(exc) from exc
                if not (_is_transient(exc) or _is_query_timeout(exc)):
                    if is_range_too_large(exc):
                        reason = f"a single block is too large for the node: {_describe(exc)}"
                        raise EventScanError(what, reason) from exc
                    raise EventScanError(what, _describe(exc)) from exc
                if attempt + 1 >= self.retry.attempts:
                    reason = f"gave up after {attempt + 1} attempts: {_describe(exc)}"
                    raise EventScanError(what, reason) from exc
                self.stats.retries += 1
                time.sleep(self.retry.delay(attempt))
                attempt += 1


def _position(event: ChainEvent) -> tuple[int, int]:
    return (event.block_number, event.log_index)


def _in_order(events: list[ChainEvent]) -> bool:
    block, index = -1, -1
    for event in events:
        b, i = event.block_number, event.log_index
        if b < block or (b == block and i <= index):
            return False
        block, index = b, i
    return True
