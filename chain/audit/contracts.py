"""``audit contracts``: is the code at the deployment's addresses the audited source?

Each contract's runtime code is read with ``eth_getCode`` (at one block, for all three) and
compared with the committed artifact's ``deployedBytecode``, immutables masked. As Sourcify
grades it: ``exact`` when the code is the same, ``partial`` when only the trailing CBOR
metadata differs (same instructions, other metadata), anything else fails. The artifacts are
built with ``bytecodeHash: none``, so their metadata names only the compiler version: a
comment-only change to a source leaves the code, and the verdict, exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

from web3 import Web3
from web3.exceptions import Web3Exception

from chain.artifacts import DEPLOYED_CONTRACTS, load_artifact
from chain.audit.findings import AuditReport
from chain.bytecode import Match, code_hash, compare_runtime
from chain.deploy import Deployment
from chain.errors import RpcUnavailableError

#: The one check ``audit contracts`` runs, by stable name.
CONTRACT_CHECKS: Final = {
    "contract-code": "each deployed contract's runtime code is its committed artifact's "
    "(immutables masked; only a metadata difference is allowed, as a partial match)",
}

#: Verdicts that pass, and how an OK line words them.
PASSING: Final[dict[Match, str]] = {
    "exact": "exact match",
    "partial": "partial match (metadata differs)",
}


@dataclass(frozen=True)
class ContractVerdict:
    """How one deployed contract compares with its artifact."""

    name: str
    address: str
    match: Match
    #: keccak256 of the code found on chain (None when there is none).
    code_hash: str | None
    #: keccak256 of the artifact's runtime code (immutables unfilled, as compiled).
    artifact_code_hash: str

    @property
    def passed(self) -> bool:
        """True for an exact or partial match."""
        return self.match in PASSING

    @property
    def subject(self) -> str:
        """``<Name> <address>``, as OK and FAIL lines name the contract."""
        return f"{self.name} {self.address}"


def _code_at(w3: Web3, address: str, block: int) -> bytes:
    try:
        return bytes(w3.eth.get_code(Web3.to_checksum_address(address), block))
    except (OSError, Web3Exception) as exc:
        raise RpcUnavailableError(f"eth_getCode for {address} failed: {exc}") from exc


def compare_deployment(
    w3: Web3, deployment: Deployment, *, block: int | None = None
) -> list[ContractVerdict]:
    """Compare each deployed contract's code at ``block`` (default: latest) with its artifact.

    Contracts of :data:`DEPLOYED_CONTRACTS` that the deployment file lacks are ``missing``.
    """
    at = int(w3.eth.block_number) if block is None else block
    verdicts = []
    for name in DEPLOYED_CONTRACTS:
        artifact = load_artifact(name)
        expected = bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))
        entry = deployment.contracts.get(name)
        if entry is None:
            verdicts.append(ContractVerdict(name, "(not in the deployment file)", "missing",
                                            None, code_hash(expected)))  # fmt: skip
            continue
        code = _code_at(w3, entry.address, at)
        verdicts.append(
            ContractVerdict(
                name=name,
                address=Web3.to_checksum_address(entry.address),
                match=compare_runtime(code, artifact),
                code_hash=code_hash(code) if code else None,
                artifact_code_hash=code_hash(expected),
            )
        )
    return verdicts


def audit_contracts(w3: Web3, deployment: Deployment) -> tuple[AuditReport, list[ContractVerdict]]:
    """The ``contract-code`` check over every deployed contract, and each contract's verdict."""
    block = int(w3.eth.block_number)
    verdicts = compare_deployment(w3, deployment, block=block)
    report = AuditReport("contracts", dict(CONTRACT_CHECKS))
    for verdict in verdicts:
        report.checked["contract-code"] += 1
        if verdict.passed:
            continue
        expected = f"runtime code of artifacts/{verdict.name}.json ({verdict.artifact_code_hash})"
        found = "no code" if verdict.code_hash is None else f"other code ({verdict.code_hash})"
        report.add("contract-code", verdict.subject, expected, found)
    report.stats = {
        "chain_id": deployment.chain_id,
        "block": block,
        "contracts": {v.name: asdict(v) for v in verdicts},
    }
    return report, verdicts
