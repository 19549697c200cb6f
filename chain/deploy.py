"""Deploy the three LiveProof contracts and keep ``deployments/<chainId>.json``.

Deploying is idempotent: when the deployment file for the chain exists and the chain holds the
artifacts' code at its addresses, nothing is sent. When the chain no longer has the code (a
devnet started afresh), the contracts are deployed again and the file rewritten. When the code
is there but differs, deploy refuses: the file would point at contracts nobody audited.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.artifacts import DEPLOYED_CONTRACTS, artifact_hash, load_artifact
from chain.bytecode import code_hash, compare_runtime
from chain.clients import AnchorRegistryClient, ProvenanceRegistryClient, SaleLedgerClient
from chain.clients.base import relayer_for
from chain.errors import ConfigurationError, VerificationError
from chain.paths import project_root
from chain.relayer import Relayer

FORMAT = "liveproof-deployment/1"


@dataclass(frozen=True)
class DeployedContract:
    """Where one contract lives and how it got there."""

    address: str
    tx_hash: str
    block_number: int
    artifact_hash: str
    code_hash: str


@dataclass(frozen=True)
class Deployment:
    """The three contracts on one chain and the accounts holding their roles."""

    chain_id: int
    contracts: dict[str, DeployedContract]
    admin: str
    recorder: str
    operator: str
    deployer: str
    deployed_at: int
    format: str = FORMAT
    #: Optional claims ``audit contracts`` honours: ``admins`` (more holders of the admin role)
    #: and ``recorders`` (past recorders of the SaleLedger, oldest first).
    extra: dict[str, Any] = field(default_factory=dict)

    def address(self, name: str) -> str:
        """Address of contract ``name``."""
        return self.contracts[name].address

    @property
    def start_block(self) -> int:
        """The first block holding any LiveProof contract (where event scans start)."""
        return min(c.block_number for c in self.contracts.values())

    def to_json(self) -> str:
        """Serialise deterministically."""
        data = asdict(self)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Parse a deployment file."""
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ConfigurationError(f"not a {FORMAT} file (format={data.get('format')!r})")
        contracts = {k: DeployedContract(**v) for k, v in data.pop("contracts").items()}
        return cls(contracts=contracts, **data)

    def provenance(self, w3: Web3, relayer: Relayer | None = None) -> ProvenanceRegistryClient:
        """Client for this deployment's ProvenanceRegistry."""
        return ProvenanceRegistryClient.at(w3, self.address("ProvenanceRegistry"), relayer)

    def anchors(self, w3: Web3, relayer: Relayer | None = None) -> AnchorRegistryClient:
        """Client for this deployment's AnchorRegistry."""
        return AnchorRegistryClient.at(w3, self.address("AnchorRegistry"), relayer)

    def ledger(self, w3: Web3, relayer: Relayer | None = None) -> SaleLedgerClient:
        """Client for this deployment's SaleLedger."""
        return SaleLedgerClient.at(w3, self.address("SaleLedger"), relayer)


def deployment_path(chain_id: int, directory: Path | None = None) -> Path:
    """``deployments/<chainId>.json`` under the checkout (or ``directory``)."""
    return (directory or project_root() / "deployments") / f"{chain_id}.json"


def load_deployment(chain_id: int, directory: Path | None = None) -> Deployment:
    """Read the deployment file of ``chain_id``."""
    path = deployment_path(chain_id, directory)
    try:
        return Deployment.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"no deployment for chain {chain_id} at {path}: run `liveproof deploy`"
        ) from exc


def check_deployment(w3: Web3, deployment: Deployment) -> dict[str, str]:
    """Compare each address's code with its artifact: name -> exact/partial/mismatch/missing."""
    return {
        name: compare_runtime(
            bytes(w3.eth.get_code(Web3.to_checksum_address(c.address))), load_artifact(name)
        )
        for name, c in deployment.contracts.items()
    }


def _deploy_one(w3: Web3, relayer: Relayer, name: str, *args: Any) -> DeployedContract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    # transact() estimates first, so a failing constructor never costs gas.
    receipt = relayer.transact(factory.constructor(*args))
    address = str(receipt["contractAddress"])
    return DeployedContract(
        address=address,
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block_number=int(receipt["blockNumber"]),
        artifact_hash=artifact_hash(name),
        code_hash=code_hash(bytes(w3.eth.get_code(Web3.to_checksum_address(address)))),
    )


def deploy(
    w3: Web3,
    deployer: LocalAccount,
    *,
    admin: str | None = None,
    recorder: str | None = None,
    operator: str | None = None,
    directory: Path | None = None,
    write: bool = True,
) -> tuple[Deployment, bool]:
    """Deploy (or find) the contracts on ``w3``'s chain; returns the deployment and whether
    anything was sent. Roles default to the deployer's address."""
    chain_id = int(w3.eth.chain_id)
    path = deployment_path(chain_id, directory)
    if path.exists():
        existing = Deployment.from_json(path.read_text(encoding="utf-8"))
        verdicts = check_deployment(w3, existing)
        if all(v == "exact" for v in verdicts.values()):
            return existing, False
        if any(v in ("mismatch", "partial") for v in verdicts.values()):
            raise VerificationError(
                f"code at the addresses in {path}", "the committed artifacts", verdicts
            )
        # Every contract is missing: the chain was reset, deploy afresh below.
    relayer = relayer_for(w3, deployer)
    me = relayer.address
    admin_, recorder_, operator_ = admin or me, recorder or me, operator or me
    provenance = _deploy_one(w3, relayer, "ProvenanceRegistry", admin_)
    anchors = _deploy_one(w3, relayer, "AnchorRegistry", admin_, operator_, provenance.address)
    ledger = _deploy_one(w3, relayer, "SaleLedger", admin_, recorder_)
    deployment = Deployment(
        chain_id=chain_id,
        contracts=dict(zip(DEPLOYED_CONTRACTS, (provenance, anchors, ledger), strict=True)),
        admin=admin_,
        recorder=recorder_,
        operator=operator_,
        deployer=me,
        deployed_at=int(time.time()),
    )
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(deployment.to_json(), encoding="utf-8")
    return deployment, True
