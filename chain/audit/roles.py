"""``contract-roles``: who holds each role, and who recorded, is who the deployment names.

Holders are read from the contracts' own ``RoleGranted``/``RoleRevoked`` events, from the block
the code appeared in (the constructor's grants are there) to the audited block, so that a
holder the file does not mention cannot hide. Every holder of ``DEFAULT_ADMIN_ROLE`` (all three
contracts) and ``OPERATOR_ROLE`` (AnchorRegistry) must be an account the file names (its admin,
operator or recorder, or one of ``extra["admins"]``), and the file's admin and operator must
hold their roles. The SaleLedger's ``recorder()`` must be the file's recorder, and every
recorder it ever had (``RecorderChanged``) must be named: the file's recorder or one of
``extra["recorders"]`` (past recorders, oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from eth_hash.auto import keccak
from web3 import Web3
from web3.exceptions import Web3Exception

from chain.artifacts import abi_of
from chain.audit.findings import Finding
from chain.deploy import Deployment
from chain.errors import RpcUnavailableError
from chain.events import EventReader

ROLES_CHECK: Final = "contract-roles"

#: Role id -> role name, of the roles whose holders are judged.
ROLE_NAMES: Final = {bytes(32): "DEFAULT_ADMIN_ROLE", keccak(b"OPERATOR_ROLE"): "OPERATOR_ROLE"}
#: Per contract: each judged role and the deployment field naming the account that must hold it.
REQUIRED: Final[dict[str, dict[str, str]]] = {
    "ProvenanceRegistry": {"DEFAULT_ADMIN_ROLE": "admin"},
    "AnchorRegistry": {"DEFAULT_ADMIN_ROLE": "admin", "OPERATOR_ROLE": "operator"},
    "SaleLedger": {"DEFAULT_ADMIN_ROLE": "admin"},
}


def named_accounts(deployment: Deployment) -> dict[str, str]:
    """Every account the deployment names, lower-case address -> how the file names it."""
    named: dict[str, list[str]] = {}
    fields = [
        ("admin", deployment.admin),
        ("operator", deployment.operator),
        ("recorder", deployment.recorder),
    ]
    fields += [("extra admin", a) for a in deployment.extra.get("admins") or []]
    for label, address in fields:
        named.setdefault(str(address).lower(), []).append(label)
    return {address: ", ".join(labels) for address, labels in named.items()}


@dataclass
class Holders:
    """What one contract's events say about its roles and recorders."""

    #: role name -> holders (checksum addresses) at the audited block, in grant order
    roles: dict[str, list[str]] = field(default_factory=dict)
    #: every recorder the ledger had: (address, block it became recorder)
    recorders: list[tuple[str, int]] = field(default_factory=list)


def read_holders(w3: Web3, name: str, address: str, from_block: int, block: int) -> Holders:
    """Replay contract ``name``'s role and recorder events from ``from_block`` to ``block``."""
    names = [
        f"{name}.{e}"
        for e in ("RoleGranted", "RoleRevoked", "RecorderChanged")
        if any(i.get("name") == e for i in abi_of(name))
    ]
    reader = EventReader(w3, {name: address}, chunk_size=10_000)
    held: dict[str, dict[str, None]] = {role: {} for role in ROLE_NAMES.values()}
    holders = Holders()
    for event in reader.iter_events(from_block, block, names=names):
        if event.name == "RecorderChanged":
            recorder = Web3.to_checksum_address(event.args["newRecorder"])
            holders.recorders.append((recorder, event.block_number))
            continue
        role = ROLE_NAMES.get(bytes(event.args["role"]))
        if role is None:
            continue
        account = Web3.to_checksum_address(event.args["account"])
        if event.name == "RoleGranted":
            held[role][account] = None
        else:
            held[role].pop(account, None)
    holders.roles = {role: list(accounts) for role, accounts in held.items()}
    return holders


def _current_recorder(w3: Web3, address: str, block: int) -> str:
    ledger = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi_of("SaleLedger"))
    try:
        return str(ledger.functions.recorder().call(block_identifier=block))
    except (OSError, Web3Exception) as exc:
        raise RpcUnavailableError(f"SaleLedger.recorder() at {address} failed: {exc}") from exc


def role_findings(
    w3: Web3, deployment: Deployment, name: str, address: str, from_block: int, block: int
) -> tuple[list[Finding], str]:
    """The ``contract-roles`` findings of contract ``name`` at ``address``, and what its roles
    are (for an OK line)."""
    subject = f"{name} {address}"
    named = named_accounts(deployment)
    holders = read_holders(w3, name, address, from_block, block)
    findings: list[Finding] = []
    shown = []
    for role, field_name in REQUIRED.get(name, {}).items():
        accounts = holders.roles.get(role, [])
        claimed = Web3.to_checksum_address(getattr(deployment, field_name))
        if claimed not in accounts:
            findings.append(
                Finding(
                    ROLES_CHECK,
                    subject,
                    f"{role} held by {claimed} ({field_name}, file)",
                    "not held by it",
                )
            )
        for account in accounts:
            if account.lower() not in named:
                findings.append(
                    Finding(
                        ROLES_CHECK,
                        subject,
                        f"{role} held only by accounts the file names",
                        f"held by {account}, not named",
                    )
                )
        held = ", ".join(f"{a} ({named.get(a.lower(), 'not named')})" for a in accounts)
        shown.append(f"{role} held by {held or 'nobody'}")
    if name == "SaleLedger":
        findings += _recorder_findings(w3, deployment, subject, holders, block)
        shown.append(f"recorder {Web3.to_checksum_address(deployment.recorder)}")
    return findings, "; ".join(shown)


def _recorder_findings(
    w3: Web3, deployment: Deployment, subject: str, holders: Holders, block: int
) -> list[Finding]:
    claimed = Web3.to_checksum_address(deployment.recorder)
    allowed = {claimed.lower()} | {str(a).lower() for a in deployment.extra.get("recorders") or []}
    findings = []
    current = _current_recorder(w3, subject.rsplit(" ", 1)[-1], block)
    if current.lower() != claimed.lower():
        findings.append(
            Finding(ROLES_CHECK, subject, f"recorder {claimed} (file)", f"recorder() is {current}")
        )
    for recorder, at in holders.recorders:
        if recorder.lower() not in allowed:
            findings.append(
                Finding(
                    ROLES_CHECK,
                    subject,
                    "every recorder named by the file",
                    f"recorder {recorder} from block {at}, not named",
                )
            )
    return findings
