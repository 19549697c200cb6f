"""``contract-wiring``: the values the deployed code was built with are the deployment's.

Masking immutables to compare code would let a real AnchorRegistry point at a shadow
ProvenanceRegistry unseen. So each immutable is read at its offsets and compared with what it
must hold for this deployment: ``_provenance`` the deployment's ProvenanceRegistry, and
OpenZeppelin EIP712's cached domain separator, chain id, ``address(this)``, hashed and short
name and version those of this contract at this address on this chain. And the creation
transaction's input must be the artifact's creation code followed by exactly the ABI-encoded
constructor arguments the deployment implies (nothing after them).
"""

from __future__ import annotations

from typing import Any, Final

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak
from web3 import Web3
from web3.exceptions import Web3Exception

from chain.artifacts import load_artifact
from chain.audit.findings import Finding
from chain.bytecode import code_hash, immutable_words
from chain.deploy import Deployment
from chain.eip712 import DOMAIN_NAMES, DOMAIN_VERSION
from chain.errors import RpcUnavailableError

WIRING_CHECK: Final = "contract-wiring"

_EIP712: Final = {
    "3715": "_cachedDomainSeparator",
    "3717": "_cachedChainId",
    "3719": "_cachedThis",
    "3721": "_hashedName",
    "3723": "_hashedVersion",
    "3726": "_name",
    "3729": "_version",
}
#: Each artifact's immutables (``immutableReferences`` keys are AST ids) by variable name, read
#: from the compiler's AST of the committed sources. An id missing here is a finding: after a
#: recompile, update this table (tests/audit/test_audit_contracts.py checks it against solc).
IMMUTABLE_NAMES: Final[dict[str, dict[str, str]]] = {
    "ProvenanceRegistry": dict(_EIP712),
    "AnchorRegistry": {**_EIP712, "9207": "_provenance"},
    "SaleLedger": {},
}
_DOMAIN_TYPEHASH: Final = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


def _short_string(text: str) -> bytes:
    """OpenZeppelin's ``ShortString``: the bytes left-aligned, their length in the last byte."""
    raw = text.encode()
    return raw.ljust(31, b"\0") + bytes([len(raw)])


def expected_immutables(
    name: str, address: str, chain_id: int, deployment: Deployment
) -> dict[str, tuple[bytes, str]]:
    """What each immutable of contract ``name`` at ``address`` must hold in this deployment:
    variable name -> (the 32-byte word, what it is)."""
    values: dict[str, tuple[bytes, str]] = {}
    if name in DOMAIN_NAMES:
        label, version = DOMAIN_NAMES[name], DOMAIN_VERSION
        hashed_name, hashed_version = keccak(label.encode()), keccak(version.encode())
        this = _address_word(address)
        separator = keccak(
            _DOMAIN_TYPEHASH + hashed_name + hashed_version + chain_id.to_bytes(32, "big") + this
        )
        values |= {
            "_cachedDomainSeparator": (separator, f"the EIP-712 domain of {address}"),
            "_cachedChainId": (chain_id.to_bytes(32, "big"), f"chain id {chain_id}"),
            "_cachedThis": (this, f"its own address {address}"),
            "_hashedName": (hashed_name, f"keccak256({label!r})"),
            "_hashedVersion": (hashed_version, f"keccak256({version!r})"),
            "_name": (_short_string(label), repr(label)),
            "_version": (_short_string(version), repr(version)),
        }
    if name == "AnchorRegistry" and "ProvenanceRegistry" in deployment.contracts:
        provenance = Web3.to_checksum_address(deployment.address("ProvenanceRegistry"))
        values["_provenance"] = (_address_word(provenance), f"ProvenanceRegistry {provenance}")
    return values


def _shown(word: bytes) -> str:
    if word[:12] == bytes(12) and any(word[12:]):
        return Web3.to_checksum_address(word[12:])
    return "0x" + word.hex()


def immutable_findings(
    name: str, subject: str, code: bytes, chain_id: int, deployment: Deployment
) -> list[Finding]:
    """A ``contract-wiring`` finding for each immutable of ``code`` (the runtime code of
    contract ``name``, already an exact match of its artifact) that does not hold what this
    deployment implies."""
    address = subject.rsplit(" ", 1)[-1]
    expected = expected_immutables(name, address, chain_id, deployment)
    names = IMMUTABLE_NAMES.get(name, {})
    findings = []
    words = immutable_words(code, load_artifact(name).get("immutableReferences", {}))
    for ast_id, found in words.items():
        variable = names.get(ast_id)
        if variable is None or variable not in expected:
            findings.append(
                Finding(
                    WIRING_CHECK,
                    subject,
                    f"immutable #{ast_id} known to the audit",
                    "an immutable it cannot judge",
                )
            )
            continue
        want, meaning = expected[variable]
        for word in dict.fromkeys(found):
            if word != want:
                shown = _shown(want)
                what = f"{variable} = {meaning}" + ("" if shown in meaning else f" ({shown})")
                findings.append(Finding(WIRING_CHECK, subject, what, _shown(word)))
    return findings


def constructor_values(deployment: Deployment) -> dict[str, Any]:
    """The constructor arguments the deployment implies, by constructor parameter name:
    its admin, operator, ProvenanceRegistry and first recorder (``extra["recorders"][0]`` when
    the file lists past recorders, else its recorder)."""
    past = deployment.extra.get("recorders") or []
    values: dict[str, Any] = {
        "admin": deployment.admin,
        "operator": deployment.operator,
        "initialRecorder": past[0] if past else deployment.recorder,
    }
    if "ProvenanceRegistry" in deployment.contracts:
        values["provenanceRegistry"] = deployment.address("ProvenanceRegistry")
    return {k: Web3.to_checksum_address(v) for k, v in values.items()}


def _constructor_inputs(name: str) -> list[dict[str, Any]]:
    for item in load_artifact(name)["abi"]:
        if item.get("type") == "constructor":
            inputs: list[dict[str, Any]] = item["inputs"]
            return inputs
    return []


def _args_found(types: list[str], params: list[str], data: bytes) -> str:
    try:
        decoded = decode(types, data)
    except DecodingError:
        return f"{len(data)} bytes of arguments that do not decode ({types})"
    shown = ", ".join(
        f"{p} {Web3.to_checksum_address(v)}" for p, v in zip(params, decoded, strict=True)
    )
    extra = len(data) - 32 * len(types)
    return shown + (f", then {extra} extra bytes" if extra > 0 else "")


def constructor_findings(
    w3: Web3, name: str, subject: str, tx_hash: str, deployment: Deployment
) -> list[Finding]:
    """A ``contract-wiring`` finding when the creation transaction ``tx_hash`` of contract
    ``name`` is not the artifact's creation code followed by exactly the constructor
    arguments the deployment implies."""
    try:
        data = bytes(w3.eth.get_transaction(tx_hash)["input"])  # type: ignore[arg-type]
    except (OSError, Web3Exception) as exc:
        raise RpcUnavailableError(f"eth_getTransactionByHash {tx_hash} failed: {exc}") from exc
    creation = bytes.fromhex(load_artifact(name)["bytecode"].removeprefix("0x"))
    if not data.startswith(creation):
        expected = f"creation code of artifacts/{name}.json ({code_hash(creation)})"
        return [Finding(WIRING_CHECK, subject, expected, f"other creation code in tx {tx_hash}")]
    inputs = _constructor_inputs(name)
    types = [i["type"] for i in inputs]
    params = [i["name"] for i in inputs]
    values = constructor_values(deployment)
    want = [values[p] for p in params]
    if data[len(creation) :] == encode(types, want):
        return []
    expected = (
        "constructor(" + ", ".join(f"{p} {v}" for p, v in zip(params, want, strict=True)) + ")"
    )
    found = f"constructor({_args_found(types, params, data[len(creation) :])})"
    return [Finding(WIRING_CHECK, subject, expected, found)]
