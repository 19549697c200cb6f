"""``audit contracts``: is the code at the deployment's addresses the audited source, built with
the values the deployment claims, held by the accounts it names?

Four checks, each from the chain:

- ``deployment-origin``: each contract's creation block and transaction, located on the chain
  (:mod:`chain.audit.origin`), are the file's.
- ``contract-code``: the runtime code read with ``eth_getCode`` is the committed artifact's
  ``deployedBytecode`` exactly, immutables aside. Only an exact match passes: extra bytes or
  other metadata (what Sourcify calls a partial match) fail. The artifacts are built with
  ``bytecodeHash: none``, so a comment-only change to a source leaves the code exact.
- ``contract-wiring``: each immutable holds what this deployment implies, and the creation
  transaction is the artifact's creation code followed by exactly the constructor arguments
  the deployment implies (:mod:`chain.audit.wiring`).
- ``contract-roles``: role holders and recorders are the accounts the file names
  (:mod:`chain.audit.roles`).

Wiring and roles are judged only for contracts whose code is an exact match: for other code,
offsets and events mean nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Final

from web3 import Web3
from web3.exceptions import Web3Exception

from chain.artifacts import DEPLOYED_CONTRACTS, load_artifact
from chain.audit.findings import AuditReport, Finding
from chain.audit.origin import ORIGIN_CHECK, Creation, Origin, locate
from chain.audit.roles import ROLES_CHECK, role_findings
from chain.audit.wiring import WIRING_CHECK, constructor_findings, immutable_findings
from chain.bytecode import Match, code_hash, compare_runtime
from chain.deploy import Deployment
from chain.errors import RpcUnavailableError

#: The checks ``audit contracts`` runs, by stable name.
CONTRACT_CHECKS: Final = {
    ORIGIN_CHECK: "each contract's creation block and transaction, found on the chain, are the "
    "deployment file's",
    "contract-code": "each deployed contract's runtime code is exactly its committed "
    "artifact's (immutables aside; other metadata or extra bytes fail)",
    WIRING_CHECK: "each immutable and constructor argument is what the deployment implies "
    "(ProvenanceRegistry address, EIP-712 domain, admin, operator, recorder), and nothing "
    "follows the arguments",
    ROLES_CHECK: "every holder of the admin and operator roles, and every recorder the ledger "
    "had, is an account the deployment file names; its admin, operator and recorder hold them",
}

#: Verdicts that pass, and how an OK line words them.
PASSING: Final[dict[Match, str]] = {"exact": "exact match"}


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
        """True for an exact match only."""
        return self.match in PASSING

    @property
    def subject(self) -> str:
        """``<Name> <address>``, as OK and FAIL lines name the contract."""
        return f"{self.name} {self.address}"


@dataclass
class ContractsAudit:
    """The report of ``audit contracts``, each contract's verdict, and what passed (OK lines:
    ``<check> <subject>: <what holds>``)."""

    report: AuditReport
    verdicts: list[ContractVerdict]
    passed: list[str] = field(default_factory=list)


def _code_at(w3: Web3, address: str, block: int) -> bytes:
    try:
        return bytes(w3.eth.get_code(Web3.to_checksum_address(address), block))
    except (OSError, Web3Exception) as exc:
        raise RpcUnavailableError(f"eth_getCode for {address} failed: {exc}") from exc


def compare_deployment(
    w3: Web3, deployment: Deployment, *, block: int | None = None
) -> list[tuple[ContractVerdict, bytes]]:
    """Compare each deployed contract's code at ``block`` (default: latest) with its artifact;
    each verdict with the code read. Contracts the deployment file lacks are ``missing``."""
    at = int(w3.eth.block_number) if block is None else block
    verdicts = []
    for name in DEPLOYED_CONTRACTS:
        artifact = load_artifact(name)
        expected = code_hash(bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x")))
        entry = deployment.contracts.get(name)
        if entry is None:
            absent = ContractVerdict(
                name, "(not in the deployment file)", "missing", None, expected
            )
            verdicts.append((absent, b""))
            continue
        code = _code_at(w3, entry.address, at)
        address = Web3.to_checksum_address(entry.address)
        found = code_hash(code) if code else None
        verdict = ContractVerdict(name, address, compare_runtime(code, artifact), found, expected)
        verdicts.append((verdict, code))
    return verdicts


def _wiring(
    w3: Web3, deployment: Deployment, verdict: ContractVerdict, code: bytes, creation: Creation
) -> list[Finding]:
    findings = immutable_findings(
        verdict.name, verdict.subject, code, deployment.chain_id, deployment
    )
    if creation.tx_hash is not None:
        findings += constructor_findings(
            w3, verdict.name, verdict.subject, creation.tx_hash, deployment
        )
    elif creation.block is not None:
        expected = f"a transaction running artifacts/{verdict.name}.json's creation code"
        found = f"created by another contract in block {creation.block}: its constructor cannot "
        findings.append(Finding(WIRING_CHECK, verdict.subject, expected, found + "be checked"))
    return findings


def _judge(
    w3: Web3,
    deployment: Deployment,
    origin: Origin,
    result: ContractsAudit,
    code: bytes,
    verdict: ContractVerdict,
) -> None:
    report = result.report
    report.checked["contract-code"] += 1
    if not verdict.passed:
        expected = f"runtime code of artifacts/{verdict.name}.json ({verdict.artifact_code_hash})"
        if verdict.code_hash is None:
            found = "no code"
        else:
            kind = "other metadata or extra bytes" if verdict.match == "partial" else "other code"
            found = f"{kind} ({verdict.code_hash})"
        report.add("contract-code", verdict.subject, expected, found)
        return
    result.passed.append(f"contract-code {verdict.subject}: {PASSING[verdict.match]}")
    creation = origin.creations[verdict.name]
    report.checked[WIRING_CHECK] += 1
    wiring = _wiring(w3, deployment, verdict, code, creation)
    report.findings += wiring
    if not wiring:
        what = "immutables and constructor arguments are the deployment's"
        result.passed.append(f"{WIRING_CHECK} {verdict.subject}: {what}")
    report.checked[ROLES_CHECK] += 1
    start = creation.block if creation.block is not None else 0
    roles, shown = role_findings(w3, deployment, verdict.name, verdict.address, start, origin.block)
    report.findings += roles
    if not roles:
        result.passed.append(f"{ROLES_CHECK} {verdict.subject}: {shown}")


def audit_contracts(w3: Web3, deployment: Deployment) -> ContractsAudit:
    """Every check of ``audit contracts`` over every deployed contract, at the latest block."""
    block = int(w3.eth.block_number)
    origin = locate(w3, deployment, block=block)
    result = ContractsAudit(AuditReport("contracts", dict(CONTRACT_CHECKS)), [])
    result.report.checked[ORIGIN_CHECK] += len(origin.creations)
    result.report.findings += origin.findings
    for verdict, code in compare_deployment(w3, deployment, block=block):
        result.verdicts.append(verdict)
        _judge(w3, deployment, origin, result, code, verdict)
    result.report.stats = {
        "chain_id": deployment.chain_id,
        "block": block,
        "contracts": {v.name: asdict(v) for v in result.verdicts},
        "origin": {n: asdict(c) for n, c in origin.creations.items()},
    }
    return result
