"""chain.contract_errors and chain.revert against the deployed contracts' ABIs: a named class
for every custom error, and decoding of real and made-up revert data."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_hash.auto import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError

from chain import contract_errors
from chain.artifacts import DEPLOYED_CONTRACTS, abi_of
from chain.clients import ProvenanceRegistryClient
from chain.contract_errors import ERRORS_BY_NAME, ContractError, UnknownContractError
from chain.errors import LiveProofError, TransactionFailedError
from chain.revert import decode_revert, error_selectors, raise_decoded, revert_data


def _abi_errors() -> list[tuple[str, dict[str, Any]]]:
    return [
        (contract, item)
        for contract in DEPLOYED_CONTRACTS
        for item in abi_of(contract)
        if item["type"] == "error"
    ]


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"


def _sample(kind: str, index: int) -> Any:
    """A distinctive value of ABI type ``kind`` (only the types the contracts' errors use)."""
    if kind == "address":
        return Web3.to_checksum_address(keccak(bytes([index]))[-20:])
    if kind.startswith("bytes") and kind != "bytes":
        return keccak(bytes([index]))[: int(kind[5:])]
    if kind.startswith("uint"):
        return 2 ** int(kind[4:]) - 1 - index
    if kind == "string":
        return f"value {index} ✓"
    raise AssertionError(f"no sample for ABI type {kind}")


ABI_ERRORS = _abi_errors()


def test_the_abis_declare_errors() -> None:
    names = {item["name"] for _, item in ABI_ERRORS}
    # A sample from each contract, so an empty or wrong ABI cannot pass the tests below.
    assert {"InvalidSignature", "NotEndorser", "NotRecorder", "InvalidAccountNonce"} <= names


@pytest.mark.parametrize(
    ("contract", "item"), ABI_ERRORS, ids=[f"{c}.{i['name']}" for c, i in ABI_ERRORS]
)
def test_every_abi_error_has_a_named_class(contract: str, item: dict[str, Any]) -> None:
    cls = ERRORS_BY_NAME.get(item["name"])
    assert cls is not None, f"{contract} declares {_signature(item)} but no class handles it"
    assert cls.__name__ == item["name"]
    assert issubclass(cls, ContractError)
    assert getattr(contract_errors, item["name"]) is cls
    assert cls.fields == tuple(i["name"] for i in item["inputs"])


def test_no_class_for_an_error_no_contract_declares() -> None:
    assert set(ERRORS_BY_NAME) == {item["name"] for _, item in ABI_ERRORS}


def test_same_error_name_means_the_same_signature_in_every_contract() -> None:
    seen: dict[str, str] = {}
    for _, item in ABI_ERRORS:
        assert seen.setdefault(item["name"], _signature(item)) == _signature(item)


def test_every_selector_is_mapped() -> None:
    table = error_selectors()
    for _, item in ABI_ERRORS:
        selector = keccak(_signature(item).encode())[:4]
        cls, types = table[selector]
        assert cls is ERRORS_BY_NAME[item["name"]]
        assert types == [i["type"] for i in item["inputs"]]


@pytest.mark.parametrize(
    ("contract", "item"), ABI_ERRORS, ids=[f"{c}.{i['name']}" for c, i in ABI_ERRORS]
)
def test_decode_round_trips_every_error(contract: str, item: dict[str, Any]) -> None:
    types = [i["type"] for i in item["inputs"]]
    values = [_sample(kind, n) for n, kind in enumerate(types)]
    data = keccak(_signature(item).encode())[:4] + encode(types, values)
    error = decode_revert(data)
    assert type(error) is ERRORS_BY_NAME[item["name"]]
    expected = dict(zip((i["name"] for i in item["inputs"]), values, strict=True))
    assert error.error_args == expected
    assert isinstance(error, LiveProofError)
    assert str(error).startswith(item["name"] + "(")


def test_decoded_addresses_are_checksummed() -> None:
    account = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
    data = keccak(b"NotRecorder(address)")[:4] + encode(["address"], [account])
    assert decode_revert(data).error_args == {"account": account}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x12\x34",
        bytes.fromhex("deadbeef") + bytes(32),
        # Error(string), Solidity's require message: not a custom error of ours.
        keccak(b"Error(string)")[:4] + encode(["string"], ["not owner"]),
        # Panic(uint256).
        keccak(b"Panic(uint256)")[:4] + encode(["uint256"], [0x11]),
    ],
    ids=["empty", "short", "unknown-selector", "Error(string)", "Panic"],
)
def test_unknown_revert_data_is_an_unknown_contract_error(data: bytes) -> None:
    error = decode_revert(data)
    assert type(error) is UnknownContractError
    assert error.data == data
    assert error.error_args == {}
    assert isinstance(error, ContractError)
    assert ("0x" + data.hex()) in str(error)


def test_known_selector_with_truncated_arguments_is_unknown() -> None:
    data = keccak(b"NotProductBrand(bytes32,address)")[:4] + bytes(32)  # one word short
    error = decode_revert(data)
    assert type(error) is UnknownContractError
    assert error.data == data


def test_revert_from_a_real_call_decodes(
    provenance: ProvenanceRegistryClient, accounts: Any
) -> None:
    fn = provenance.contract.functions.registerProduct((4006381333931, "", "", bytes(32)))
    with pytest.raises(ContractLogicError) as caught:
        fn.call({"from": accounts.stranger.address})
    data = revert_data(caught.value)
    assert data is not None
    assert data[:4] == keccak(b"NotBrand(address)")[:4]
    error = decode_revert(data)
    assert isinstance(error, contract_errors.NotBrand)
    assert Web3.to_checksum_address(error.error_args["account"]) == accounts.stranger.address
    with pytest.raises(contract_errors.NotBrand) as raised:
        raise_decoded(caught.value)
    assert raised.value.__cause__ is caught.value


def test_revert_without_data_is_a_transaction_failure() -> None:
    with pytest.raises(TransactionFailedError):
        raise_decoded(RuntimeError("connection dropped"))
    assert revert_data(RuntimeError({"data": "0xnot-hex"})) is None
    assert revert_data(RuntimeError({"data": "0x12345678"})) == bytes.fromhex("12345678")
