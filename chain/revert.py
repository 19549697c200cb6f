"""Turn contract reverts into the named exceptions of :mod:`chain.contract_errors`."""

from __future__ import annotations

from functools import cache
from typing import Any, NoReturn

from eth_abi.abi import decode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3.exceptions import ContractLogicError

from chain import contract_errors
from chain.artifacts import DEPLOYED_CONTRACTS, abi_of, abi_type
from chain.errors import TransactionFailedError

_ErrorSpec = tuple[type[contract_errors.ContractError], list[str]]


@cache
def error_selectors() -> dict[bytes, _ErrorSpec]:
    """Map every custom error's 4-byte selector to its exception class and argument types."""
    table: dict[bytes, _ErrorSpec] = {}
    for name in DEPLOYED_CONTRACTS:
        for item in abi_of(name):
            if item["type"] != "error":
                continue
            types = [abi_type(i) for i in item["inputs"]]
            selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
            cls = contract_errors.ERRORS_BY_NAME.get(item["name"])
            if cls is None:
                raise TypeError(f"no exception class for contract error {item['name']}")
            table[selector] = (cls, types)
    return table


def _as_bytes(data: Any) -> bytes | None:
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def decode_revert(data: bytes) -> contract_errors.ContractError:
    """Decode raw revert data into a named exception (``UnknownContractError`` if unknown)."""
    spec = error_selectors().get(data[:4])
    if spec is None:
        return contract_errors.UnknownContractError(data)
    cls, types = spec
    try:
        values = decode(types, data[4:])
    except Exception:
        return contract_errors.UnknownContractError(data)
    # eth_abi decodes addresses in lower case; web3 and the clients use checksummed ones.
    return cls(*(_checksum(v) if t == "address" else v for t, v in zip(types, values, strict=True)))


def _checksum(value: Any) -> Any:
    return to_checksum_address(value) if isinstance(value, str) else value


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data carried by a web3 or RPC exception, when there is any."""
    if isinstance(exc, ContractLogicError):
        return _as_bytes(exc.data)
    for arg in exc.args:
        if isinstance(arg, dict):
            found = _as_bytes(arg.get("data"))
            if found is not None:
                return found
    return None


def raise_for_revert(exc: BaseException) -> None:
    """Re-raise ``exc`` as a named contract error when it is a decodable revert; else return."""
    data = revert_data(exc)
    if data is not None and len(data) >= 4:
        raise decode_revert(data) from exc


def raise_decoded(exc: BaseException) -> NoReturn:
    """Raise the named contract error for ``exc``, or a :class:`TransactionFailedError`."""
    raise_for_revert(exc)
    raise TransactionFailedError(str(exc)) from exc
