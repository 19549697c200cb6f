"""Merkle trees compatible with OpenZeppelin's ``StandardMerkleTree``.

This is an independent Python implementation of the tree built by the npm package
``@openzeppelin/merkle-tree`` (v1.0.8), whose proofs verify on chain with
OpenZeppelin's ``MerkleProof.verify``:

* a leaf is ``keccak256(keccak256(abi.encode(value...)))`` for a list of ABI types, the
  *leaf encoding*; hashing twice means no 64-byte internal node can pass as a leaf;
* an internal node is ``keccak256(min(a, b) ++ max(a, b))`` (the pair sorted bytewise);
* the tree is a complete binary tree in array layout (``tree[0]`` is the root, the
  children of node ``i`` are ``2i + 1`` and ``2i + 2``) with ``2n - 1`` nodes for ``n``
  leaves; leaf ``k`` of the leaf list goes to ``tree[2n - 2 - k]``, and by default the
  leaf list is sorted by hash (ascending), so the leaf slots hold the hashes in
  descending order;
* :meth:`StandardMerkleTree.dump` / :meth:`StandardMerkleTree.load` use OZ's
  ``standard-v1`` JSON format, so either side can load the other's dump.

Values are given per leaf as a sequence with one entry per ABI type: ``bytes`` (or a
``0x`` hex string) of exactly ``N`` bytes for ``bytesN``, ``int`` (or a decimal or ``0x``
hex string) for ``uintN``/``intN``, ``bool`` for ``bool``, a 20-byte value or hex
address for ``address``, ``str`` for ``string``, and lists for arrays and tuples.

Leaves whose types are all static elementary types (``bytesN``, ``uintN``, ``intN``,
``address``, ``bool``) are encoded by packing 32-byte words directly; other encodings
use :func:`eth_abi.encode`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any, Final, Literal

from eth_abi.abi import encode as abi_encode
from eth_utils.address import is_checksum_address, to_checksum_address

from chain import hashing as _hashing
from chain.errors import LeafEncodingError, MerkleTreeError, VerificationError

__all__ = [
    "DUMP_FORMAT",
    "KECCAK_BACKEND",
    "StandardMerkleTree",
    "process_proof",
    "standard_leaf_hash",
    "standard_node_hash",
    "verify_proof",
]

DUMP_FORMAT: Final = "standard-v1"
"""The ``format`` field of an OZ ``StandardMerkleTree`` dump."""

_EMPTY_KECCAK: Final = bytes.fromhex(
    "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
)
_DIGEST: Final = methodcaller("digest")

# --------------------------------------------------------------------------- keccak


KECCAK_BACKEND: Final = _hashing.KECCAK_BACKEND
_keccak_many: Final = _hashing.keccak_many
_keccak: Final = _hashing.keccak256


# ------------------------------------------------------------------------ ABI types

_UINT_RE: Final = re.compile(r"u?int([1-9][0-9]*)?")
_BYTES_N_RE: Final = re.compile(r"bytes([1-9][0-9]?)")
_ARRAY_RE: Final = re.compile(r"(.+)\[([1-9][0-9]*)?\]")
_HEX_RE: Final = re.compile(r"0[xX]((?:[0-9a-fA-F]{2})*)")
_NODE_RE: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_DEC_RE: Final = re.compile(r"-?[0-9]+")
_STRIP_0X: Final = itemgetter(slice(2, None))
_PREFIX: Final = itemgetter(slice(0, 2))
_HEX_INT_RE: Final = re.compile(r"0[xX][0-9a-fA-F]+")
_BIG: Final[Literal["big"]] = "big"
_STATIC_KINDS: Final = frozenset({"uint", "int", "bytesN", "address", "bool"})


@dataclass(frozen=True, slots=True)
class _AbiType:
    """One parsed ABI type; ``canonical`` is the spelling handed to eth_abi."""

    kind: str  # uint int bytesN address bool bytes string array tuple
    canonical: str
    size: int = 0  # bits (u)int, N for bytesN, length of a fixed array (0 = dynamic)
    item: _AbiType | None = None
    components: tuple[_AbiType, ...] = ()


def _split_top_level(inner: str) -> list[str]:
    """Split a tuple's component list at commas outside nested parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return parts


def _parse_type(text: str) -> _AbiType:
    """Parse one ABI type string (elementary, ``T[]``, ``T[k]`` or ``(T1,T2,...)``)."""
    array = _ARRAY_RE.fullmatch(text)
    if array:
        item = _parse_type(array.group(1))
        length = int(array.group(2)) if array.group(2) else 0
        suffix = f"[{length}]" if length else "[]"
        return _AbiType("array", item.canonical + suffix, length, item=item)
    if text.startswith("(") and text.endswith(")") and len(text) > 2:
        parts = tuple(_parse_type(p) for p in _split_top_level(text[1:-1]))
        canonical = "(" + ",".join(p.canonical for p in parts) + ")"
        return _AbiType("tuple", canonical, components=parts)
    number = _UINT_RE.fullmatch(text)
    if number:
        bits = int(number.group(1) or 256)
        if bits > 256 or bits % 8:
            raise LeafEncodingError(f"unsupported ABI type {text!r}: bad integer size {bits}")
        kind = "uint" if text.startswith("u") else "int"
        return _AbiType(kind, f"{kind}{bits}", bits)
    fixed = _BYTES_N_RE.fullmatch(text)
    if fixed:
        size = int(fixed.group(1))
        if size > 32:
            raise LeafEncodingError(f"unsupported ABI type {text!r}: bytesN needs 1 <= N <= 32")
        return _AbiType("bytesN", text, size)
    if text in ("address", "bool", "bytes", "string"):
        return _AbiType(text, text)
    raise LeafEncodingError(f"unsupported ABI type {text!r}")


# ---------------------------------------------------------------- value coercion


def _type_name(value: object) -> str:
    """Short description of a value's Python type for error messages."""
    return type(value).__name__


def _coerce_bytes(value: Any, where: str, what: str) -> bytes:
    """Accept bytes-like or ``0x`` hex (even number of digits) and return ``bytes``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        match = _HEX_RE.fullmatch(value)
        if match is None:
            raise LeafEncodingError(
                f"{where} ({what}): {value!r} is not a 0x-prefixed hex string "
                "with an even number of digits"
            )
        return bytes.fromhex(match.group(1))
    raise LeafEncodingError(f"{where} ({what}): expected bytes or hex str, got {_type_name(value)}")


def _coerce_int(value: Any, t: _AbiType, where: str) -> int:
    """Accept an int or a decimal / ``0x`` hex string; check it fits ``t``."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and (_DEC_RE.fullmatch(value) or _HEX_INT_RE.fullmatch(value)):
        if len(value) > 100:  # far beyond 2**256; also keeps int() off huge strings
            raise LeafEncodingError(
                f"{where} ({t.canonical}): {value[:24]}... ({len(value)} characters) "
                "is out of range"
            )
        number = int(value, 16 if value[1:2] in ("x", "X") else 10)
    else:
        raise LeafEncodingError(
            f"{where} ({t.canonical}): expected an int or a decimal/0x-hex string, got {value!r}"
        )
    low, high = _int_range(t)
    if not low <= number <= high:
        raise LeafEncodingError(
            f"{where} ({t.canonical}): {number} is out of range [{low}, {high}]"
        )
    return number


def _int_range(t: _AbiType) -> tuple[int, int]:
    """Inclusive value range of a ``uintN`` / ``intN`` type."""
    if t.kind == "uint":
        return 0, (1 << t.size) - 1
    return -(1 << (t.size - 1)), (1 << (t.size - 1)) - 1


def _coerce(t: _AbiType, value: Any, where: str) -> Any:
    """Return the canonical Python value of ``value`` for ABI type ``t``, or raise."""
    kind = t.kind
    if kind in ("uint", "int"):
        return _coerce_int(value, t, where)
    if kind == "bytesN":
        raw = _coerce_bytes(value, where, t.canonical)
        if len(raw) != t.size:
            raise LeafEncodingError(
                f"{where} ({t.canonical}): expected {t.size} bytes, got {len(raw)}"
            )
        return raw
    if kind == "bytes":
        return _coerce_bytes(value, where, "bytes")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise LeafEncodingError(f"{where} (bool): expected a bool, got {value!r}")
    if kind == "address":
        return _coerce_address(value, where)
    if kind == "string":
        if not isinstance(value, str):
            raise LeafEncodingError(f"{where} (string): expected str, got {_type_name(value)}")
        return value
    if isinstance(value, str | bytes | bytearray | memoryview | Mapping) or not isinstance(
        value, Sequence
    ):
        raise LeafEncodingError(
            f"{where} ({t.canonical}): expected a list or tuple, got {_type_name(value)}"
        )
    if kind == "array":
        assert t.item is not None
        if t.size and len(value) != t.size:
            raise LeafEncodingError(
                f"{where} ({t.canonical}): expected {t.size} items, got {len(value)}"
            )
        item = t.item
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(t.components):
        raise LeafEncodingError(
            f"{where} ({t.canonical}): expected {len(t.components)} fields, got {len(value)}"
        )
    return tuple(
        _coerce(c, v, f"{where}[{i}]")
        for i, (c, v) in enumerate(zip(t.components, value, strict=True))
    )


def _coerce_address(value: Any, where: str) -> str:
    """Accept a 20-byte value or a hex address (valid checksum if mixed case)."""
    if isinstance(value, str):
        if not re.fullmatch(r"0[xX][0-9a-fA-F]{40}", value):
            raise LeafEncodingError(f"{where} (address): {value!r} is not a 20-byte hex address")
        body = value[2:]
        if body != body.lower() and body != body.upper() and not is_checksum_address(value):
            raise LeafEncodingError(f"{where} (address): {value!r} has a bad EIP-55 checksum")
        return to_checksum_address("0x" + body.lower())
    raw = _coerce_bytes(value, where, "address")
    if len(raw) != 20:
        raise LeafEncodingError(f"{where} (address): expected 20 bytes, got {len(raw)}")
    return to_checksum_address(raw)


def _to_json(t: _AbiType, value: Any) -> Any:
    """Serialise a canonical value the way OZ dumps carry it (hex bytes, decimal ints)."""
    kind = t.kind
    if kind in ("uint", "int"):
        return str(value)
    if kind in ("bytesN", "bytes"):
        return "0x" + bytes(value).hex()
    if kind in ("bool", "address", "string"):
        return value
    if kind == "array":
        item = t.item
        assert item is not None
        return [_to_json(item, v) for v in value]
    return [_to_json(c, v) for c, v in zip(t.components, value, strict=True)]


# ------------------------------------------------------------ static word packing


def _pack_column(t: _AbiType, column: Sequence[Any]) -> Iterable[bytes]:
    """Turn a column of canonical static values into their 32-byte ABI words."""
    kind = t.kind
    if kind == "bytesN":
        if t.size == 32:
            return column
        return map(bytes.ljust, column, repeat(32), repeat(b"\0"))
    if kind in ("uint", "bool"):
        return map(int.to_bytes, column, repeat(32), repeat(_BIG))
    if kind == "int":
        return map(partial(int.to_bytes, length=32, byteorder="big", signed=True), column)
    return map(_address_word, column)


def _address_word(address: str) -> bytes:
    """The ABI word of a canonical (checksummed) address."""
    return bytes(12) + bytes.fromhex(address[2:])


def _fast_column(t: _AbiType, column: list[Any]) -> list[Any] | None:
    """Canonicalise a whole column with C-speed loops, or return ``None`` to go slowly.

    Handles the common cases: already-canonical ``bytes`` / ``int`` / ``bool`` columns
    and the all-string columns of a JSON dump (``0x`` hex bytes, decimal integers).
    """
    types = set(map(type, column))
    kind = t.kind
    if kind == "bytesN":
        if types == {str}:
            return _hex_to_bytes_column(column, t.size)
        if types == {bytes} and set(map(len, column)) == {t.size}:
            return column
        return None
    if kind in ("uint", "int"):
        if (
            types == {str}
            and all(map(str.isdigit, column))
            and all(map(str.isascii, column))
            and max(map(len, column)) <= 80
        ):
            column = list(map(int, column))
            types = {int}
        low, high = _int_range(t)
        if types == {int} and low <= min(column) and max(column) <= high:
            return column
        return None
    if kind == "bool" and types == {bool}:
        return column
    return None


def _hex_to_bytes_column(column: list[str], size: int) -> list[bytes] | None:
    """Decode ``0x`` hex strings of exactly ``size`` bytes each in one go, else ``None``."""
    if set(map(len, column)) != {2 + 2 * size} or set(map(_PREFIX, column)) != {"0x"}:
        return None
    try:
        decoded = list(map(bytes.fromhex, map(_STRIP_0X, column)))
    except ValueError:
        return None
    if set(map(len, decoded)) != {size}:
        return None  # there was whitespace, which bytes.fromhex skips
    return decoded


def _bytes_to_hex_column(column: Sequence[bytes], size: int) -> list[str]:
    """``0x`` hex of byte strings that are all exactly ``size`` bytes long, in one go."""
    if not column:
        return []
    text = b"".join(column).hex(",", size)
    return ("0x" + text.replace(",", ",0x")).split(",")


def _json_column(t: _AbiType, column: Sequence[Any]) -> Sequence[Any]:
    """A column of canonical values in OZ dump form."""
    if t.kind == "bytesN":
        return _bytes_to_hex_column(column, t.size)
    if t.kind == "bytes":
        return ["0x" + h for h in map(bytes.hex, column)]
    if t.kind in ("uint", "int"):
        return list(map(str, column))
    if t.kind in ("bool", "address", "string"):
        return column
    return [_to_json(t, v) for v in column]


# ------------------------------------------------------------------ leaf encoding


class _LeafEncoding:
    """A compiled leaf encoding: parses values to canonical form and hashes leaves.

    Values are handled as *columns* (one list per ABI type) so that checking, packing
    and hashing run as C-level ``map`` loops rather than per-field Python code.
    """

    def __init__(self, types: tuple[str, ...]) -> None:
        if not types:
            raise LeafEncodingError("leaf encoding is empty: give at least one ABI type")
        self.types = types
        self.abi = tuple(_parse_type(t) for t in types)
        self.canonical = tuple(a.canonical for a in self.abi)
        self.static = all(a.kind in _STATIC_KINDS for a in self.abi)

    def _check_row(self, row: Any, where: str) -> None:
        """Raise unless ``row`` is a list/tuple with one field per ABI type."""
        if isinstance(row, str | bytes | bytearray | memoryview | Mapping) or not isinstance(
            row, Sequence
        ):
            raise LeafEncodingError(
                f"{where}: expected a list or tuple of {len(self.abi)} fields, "
                f"got {_type_name(row)}"
            )
        if len(row) != len(self.abi):
            raise LeafEncodingError(
                f"{where}: expected {len(self.abi)} fields for leaf encoding "
                f"{list(self.types)}, got {len(row)}"
            )

    def coerce_row(self, row: Any, where: str = "value") -> tuple[Any, ...]:
        """Canonicalise one leaf value."""
        self._check_row(row, where)
        return tuple(
            _coerce(t, v, f"{where}[{j}]")
            for j, (t, v) in enumerate(zip(self.abi, row, strict=True))
        )

    def coerce_columns(self, rows: Sequence[Any]) -> list[Sequence[Any]]:
        """Canonicalise many leaf values; return them as one column per ABI type."""
        width = len(self.abi)
        if not (set(map(type, rows)) <= {list, tuple} and set(map(len, rows)) == {width}):
            for i, row in enumerate(rows):
                self._check_row(row, f"values[{i}]")
        return [self._coerce_column(j, list(map(itemgetter(j), rows))) for j in range(width)]

    def _coerce_column(self, j: int, column: list[Any]) -> Sequence[Any]:
        """Canonicalise column ``j``; errors name the offending ``values[i][j]``."""
        t = self.abi[j]
        fast = _fast_column(t, column)
        if fast is not None:
            return fast
        try:
            return [_coerce(t, v, "") for v in column]
        except LeafEncodingError:
            for i, v in enumerate(column):  # again, to name the bad value
                _coerce(t, v, f"values[{i}][{j}]")
            raise

    def hash_columns(self, columns: Sequence[Sequence[Any]]) -> list[bytes]:
        """Leaf hashes ``keccak(keccak(abi.encode(row)))`` of canonical columns."""
        if self.static:
            words = [_pack_column(t, c) for t, c in zip(self.abi, columns, strict=True)]
            encoded: Iterable[bytes] = map(b"".join, zip(*words, strict=True))
        else:
            encoded = map(partial(abi_encode, self.canonical), zip(*columns, strict=True))
        return list(_keccak_many(_keccak_many(encoded)))

    def hash_row(self, row: Sequence[Any]) -> bytes:
        """Leaf hash of one value (checked and canonicalised first)."""
        return self.hash_columns([[v] for v in self.coerce_row(row)])[0]

    def json_rows(self, columns: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Canonical columns as OZ dump rows (hex bytes, decimal-string integers)."""
        json_columns = [_json_column(t, c) for t, c in zip(self.abi, columns, strict=True)]
        return list(map(list, zip(*json_columns, strict=True)))


@lru_cache(maxsize=64)
def _compile(types: tuple[str, ...]) -> _LeafEncoding:
    """Cached :class:`_LeafEncoding` for a tuple of ABI type strings."""
    return _LeafEncoding(types)


def _encoding(leaf_encoding: Sequence[str]) -> _LeafEncoding:
    """Validate a user-supplied leaf encoding and return its compiled form."""
    if isinstance(leaf_encoding, str) or not all(isinstance(t, str) for t in leaf_encoding):
        raise LeafEncodingError(
            f"leaf encoding must be a list of ABI type strings, got {leaf_encoding!r}"
        )
    return _compile(tuple(leaf_encoding))


# -------------------------------------------------------------------- tree helpers


def _as_node(value: bytes | str, what: str) -> bytes:
    """Accept a 32-byte node as bytes or ``0x`` hex; raise :class:`MerkleTreeError`."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) == 32:
            return raw
        raise MerkleTreeError(f"{what}: expected 32 bytes, got {len(raw)}")
    if isinstance(value, str) and _NODE_RE.fullmatch(value):
        return bytes.fromhex(value[2:])
    raise MerkleTreeError(f"{what}: expected 32 bytes or 0x + 64 hex digits, got {value!r}")


def _node_hashes(left: Sequence[bytes], right: Sequence[bytes]) -> list[bytes]:
    """Parent hashes of paired children: keccak of each pair sorted bytewise."""
    pairs = map(bytes.__add__, map(min, left, right), map(max, left, right))
    return list(_keccak_many(pairs))


def _internal_chunks(leaf_count: int) -> Iterator[tuple[int, int]]:
    """Ranges ``[lo, hi)`` of internal nodes whose children all lie at ``>= hi``.

    Walking them in order fills a tree bottom-up, one C-speed batch per range.
    """
    hi = leaf_count - 1
    while hi > 0:
        lo = hi // 2
        yield lo, hi
        hi = lo


def _children(tree: Sequence[bytes], lo: int, hi: int) -> tuple[Sequence[bytes], Sequence[bytes]]:
    """Left and right children of the internal nodes ``lo..hi-1``."""
    return tree[2 * lo + 1 : 2 * hi : 2], tree[2 * lo + 2 : 2 * hi + 1 : 2]


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The StandardMerkleTree root over already-hashed leaves (sorted, as ``of()`` sorts them):
    what an auditor rebuilding roots needs, without values, proofs or a tree object."""
    if not hashes:
        raise MerkleTreeError("cannot build a Merkle tree with no leaves")
    count = len(hashes)
    tree: list[bytes] = [b""] * (count - 1)
    tree.extend(sorted(hashes, reverse=True))
    for lo, hi in _internal_chunks(count):
        tree[lo:hi] = _node_hashes(*_children(tree, lo, hi))
    return tree[0]


def standard_node_hash(a: bytes, b: bytes) -> bytes:
    """Hash of an internal node: ``keccak256`` of the two children, smaller first."""
    return _keccak(a + b if a <= b else b + a)


def standard_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """Leaf hash ``keccak256(keccak256(abi.encode(value)))`` for the given ABI types."""
    return _encoding(leaf_encoding).hash_row(value)


def process_proof(leaf: bytes | str, proof: Sequence[bytes | str]) -> bytes:
    """Fold a proof into a leaf hash and return the root it implies."""
    node = _as_node(leaf, "leaf")
    for i, sibling in enumerate(proof):
        other = _as_node(sibling, f"proof[{i}]")
        node = _keccak(node + other if node <= other else other + node)
    return node


def verify_proof(
    root: bytes | str,
    leaf_encoding: Sequence[str],
    value: Sequence[Any],
    proof: Sequence[bytes | str],
) -> bool:
    """Whether ``proof`` shows that ``value`` is a leaf of the tree with ``root``."""
    expected = _as_node(root, "root")
    return process_proof(standard_leaf_hash(leaf_encoding, value), proof) == expected


# --------------------------------------------------------------------------- tree


class StandardMerkleTree:
    """An OpenZeppelin ``StandardMerkleTree``: build with :meth:`of` or :meth:`load`."""

    __slots__ = ("_columns", "_count", "_encoding", "_lookup", "_tree", "_tree_index")

    def __init__(
        self,
        encoding: _LeafEncoding,
        tree: list[bytes],
        columns: list[Sequence[Any]],
        tree_index: list[int],
    ) -> None:
        """Wrap already-checked parts; use :meth:`of` or :meth:`load` instead."""
        self._encoding = encoding
        self._tree = tree
        self._columns = columns  # canonical values, one column per ABI type
        self._count = len(tree_index)
        self._tree_index = tree_index
        self._lookup: dict[bytes, int] | None = None

    # -- construction ---------------------------------------------------------

    @classmethod
    def of(
        cls,
        values: Sequence[Sequence[Any]],
        leaf_encoding: Sequence[str],
        *,
        sort_leaves: bool = True,
    ) -> StandardMerkleTree:
        """Build the tree of ``values`` (one sequence per leaf) like OZ ``of()``."""
        encoding = _encoding(leaf_encoding)
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise MerkleTreeError(f"values must be a sequence of leaves, got {_type_name(values)}")
        if not values:
            raise MerkleTreeError("cannot build a Merkle tree with no leaves")
        columns = encoding.coerce_columns(values)
        hashes = encoding.hash_columns(columns)
        count = len(hashes)
        # OZ sorts the leaf hashes ascending (stable) and puts leaf k at tree[2n - 2 - k].
        order = sorted(range(count), key=hashes.__getitem__) if sort_leaves else range(count)
        tree_index = [0] * count
        for position, value_index in enumerate(order):
            tree_index[value_index] = 2 * count - 2 - position
        tree: list[bytes] = [b""] * (count - 1)
        tree.extend(map(hashes.__getitem__, reversed(order)))
        for lo, hi in _internal_chunks(count):
            tree[lo:hi] = _node_hashes(*_children(tree, lo, hi))
        return cls(encoding, tree, columns, tree_index)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Load an OZ ``standard-v1`` dump (as made by OZ or :meth:`dump`) and validate it."""
        if not isinstance(data, Mapping):
            raise MerkleTreeError(f"tree dump must be a JSON object, got {_type_name(data)}")
        if data.get("format") != DUMP_FORMAT:
            raise MerkleTreeError(
                f"unknown tree dump format {data.get('format')!r}, expected {DUMP_FORMAT!r}"
            )
        raw_encoding = data.get("leafEncoding")
        if not isinstance(raw_encoding, list):
            raise MerkleTreeError("tree dump has no leafEncoding list")
        encoding = _encoding(raw_encoding)
        raw_tree = data.get("tree")
        raw_values = data.get("values")
        if not isinstance(raw_tree, list) or not isinstance(raw_values, list):
            raise MerkleTreeError("tree dump needs 'tree' and 'values' lists")
        if not raw_tree or not raw_values:
            raise MerkleTreeError("tree dump holds an empty tree")
        tree = _parse_nodes(raw_tree)
        rows, tree_index = _split_entries(raw_values)
        columns = encoding.coerce_columns(rows)
        _check_tree(tree, tree_index, encoding.hash_columns(columns))
        return cls(encoding, tree, columns, tree_index)

    def dump(self) -> dict[str, Any]:
        """The tree in OZ's ``standard-v1`` JSON form (bytes as hex, ints as decimal str)."""
        rows = self._encoding.json_rows(self._columns)
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(self._encoding.types),
            "tree": _bytes_to_hex_column(self._tree, 32),
            "values": [
                {"value": row, "treeIndex": index}
                for row, index in zip(rows, self._tree_index, strict=True)
            ],
        }

    def validate(self) -> None:
        """Re-hash every value and node; raise :class:`VerificationError` on a mismatch."""
        _check_tree(self._tree, self._tree_index, self._encoding.hash_columns(self._columns))

    # -- accessors --------------------------------------------------------------

    @property
    def root(self) -> bytes:
        """The 32-byte Merkle root."""
        return self._tree[0]

    @property
    def root_hex(self) -> str:
        """The Merkle root as ``0x`` + 64 lowercase hex digits (OZ's ``root``)."""
        return "0x" + self._tree[0].hex()

    @property
    def leaf_encoding(self) -> tuple[str, ...]:
        """The ABI types of a leaf, as given."""
        return self._encoding.types

    @property
    def tree(self) -> tuple[bytes, ...]:
        """All ``2n - 1`` nodes in array layout (a copy; ``tree[0]`` is the root)."""
        return tuple(self._tree)

    def __len__(self) -> int:
        """Number of values (leaves)."""
        return self._count

    def __repr__(self) -> str:
        """Short description with the root and size."""
        return f"StandardMerkleTree(root={self.root_hex}, leaves={self._count})"

    def at(self, index: int) -> tuple[Any, ...]:
        """The canonical value at ``index`` in the original values list."""
        i = self._value_index(index)
        return tuple(column[i] for column in self._columns)

    def entries(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """Yield ``(index, value)`` for every value, in the original order."""
        return enumerate(zip(*self._columns, strict=True))

    def tree_index(self, index: int) -> int:
        """Position in :attr:`tree` of the leaf of value ``index``."""
        return self._tree_index[self._value_index(index)]

    def leaf_hash(self, value: Sequence[Any]) -> bytes:
        """Leaf hash of ``value`` under this tree's leaf encoding."""
        return self._encoding.hash_row(value)

    # -- proofs -----------------------------------------------------------------

    def get_proof(self, index_or_value: int | Sequence[Any]) -> list[bytes]:
        """Sibling hashes from the leaf up to the root, for a value index or a value."""
        node = self._tree_index[self._value_index(index_or_value)]
        tree = self._tree
        proof: list[bytes] = []
        while node > 0:
            proof.append(tree[node + 1 if node % 2 else node - 1])
            node = (node - 1) // 2
        return proof

    def verify(self, index_or_value: int | Sequence[Any], proof: Sequence[bytes | str]) -> bool:
        """Whether ``proof`` proves the value (or value index) against this root."""
        if isinstance(index_or_value, int):
            leaf = self._tree[self._tree_index[self._value_index(index_or_value)]]
        else:
            leaf = self.leaf_hash(index_or_value)
        return process_proof(leaf, proof) == self.root

    def _value_index(self, index_or_value: int | Sequence[Any]) -> int:
        """Resolve a value index (checked) or a value (looked up by leaf hash)."""
        if isinstance(index_or_value, bool):
            raise MerkleTreeError("expected a value index (int) or a value, got a bool")
        if isinstance(index_or_value, int):
            if not 0 <= index_or_value < self._count:
                raise MerkleTreeError(
                    f"index {index_or_value} is out of range for a tree of {self._count} values"
                )
            return int(index_or_value)
        if self._lookup is None:
            # Like OZ, a value listed twice resolves to its last occurrence.
            self._lookup = {self._tree[t]: i for i, t in enumerate(self._tree_index)}
        found = self._lookup.get(self.leaf_hash(index_or_value))
        if found is None:
            raise MerkleTreeError("value is not a leaf of this tree")
        return found


def _parse_nodes(raw_tree: list[Any]) -> list[bytes]:
    """Parse a dump's ``tree`` (``0x`` + 64 hex digits each) into 32-byte nodes."""
    if set(map(type, raw_tree)) == {str}:
        nodes = _hex_to_bytes_column(raw_tree, 32)
        if nodes is not None:
            return nodes
    for i, node in enumerate(raw_tree):
        if not isinstance(node, str) or not _NODE_RE.fullmatch(node):
            raise MerkleTreeError(f"tree[{i}]: expected 0x + 64 hex digits, got {node!r}")
    raise AssertionError("unreachable")  # pragma: no cover


def _split_entries(raw_values: list[Any]) -> tuple[list[Any], list[int]]:
    """Split a dump's ``values`` entries into the raw values and their tree indices."""
    try:
        rows = list(map(itemgetter("value"), raw_values))
        tree_index = list(map(itemgetter("treeIndex"), raw_values))
        if set(map(type, tree_index)) == {int}:
            return rows, tree_index
    except (KeyError, TypeError, IndexError):
        pass
    for i, entry in enumerate(raw_values):
        if not isinstance(entry, Mapping) or "value" not in entry or "treeIndex" not in entry:
            raise MerkleTreeError(f"values[{i}] must be an object with 'value' and 'treeIndex'")
        index = entry["treeIndex"]
        if not isinstance(index, int) or isinstance(index, bool):
            raise MerkleTreeError(f"values[{i}].treeIndex must be an integer, got {index!r}")
    raise AssertionError("unreachable")  # pragma: no cover


def _check_tree(tree: list[bytes], tree_index: list[int], leaf_hashes: list[bytes]) -> None:
    """Check shape, leaf slots, leaf hashes and every internal node of a tree."""
    count = len(leaf_hashes)
    if len(tree) != 2 * count - 1:
        raise VerificationError("tree size", f"{2 * count - 1} nodes for {count} values", len(tree))
    if sorted(tree_index) != list(range(count - 1, 2 * count - 1)):
        raise VerificationError(
            "value tree indices",
            f"each leaf slot {count - 1}..{2 * count - 2} exactly once",
            "duplicates or indices outside the leaf slots",
        )
    for value_index, (node, leaf) in enumerate(zip(tree_index, leaf_hashes, strict=True)):
        if tree[node] != leaf:
            raise VerificationError(
                f"leaf hash of values[{value_index}] at tree[{node}]",
                "0x" + leaf.hex(),
                "0x" + tree[node].hex(),
            )
    for lo, hi in _internal_chunks(count):
        expected = _node_hashes(*_children(tree, lo, hi))
        if expected != tree[lo:hi]:
            bad = next(i for i, h in enumerate(expected) if h != tree[lo + i])
            raise VerificationError(
                f"internal node tree[{lo + bad}]",
                "0x" + expected[bad].hex(),
                "0x" + tree[lo + bad].hex(),
            )


def proof_from_tree(tree: Sequence[bytes], leaf: bytes) -> list[bytes]:
    """The proof of ``leaf`` in a tree given as its ``2n - 1`` nodes in array layout (as
    :attr:`StandardMerkleTree.tree` and OZ dumps list them); raises if the leaf is not there.

    Lets a service keep one node list per batch instead of one proof per receipt."""
    count = (len(tree) + 1) // 2
    if not tree or len(tree) != 2 * count - 1:
        raise MerkleTreeError(f"a tree has 2n - 1 nodes, got {len(tree)}")
    try:
        node = tree.index(leaf, count - 1)
    except ValueError:
        raise MerkleTreeError(f"leaf 0x{leaf.hex()} is not in this tree") from None
    proof: list[bytes] = []
    while node > 0:
        proof.append(tree[node + 1 if node % 2 else node - 1])
        node = (node - 1) // 2
    return proof
