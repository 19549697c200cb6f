"""The red team on invariants 1 and 2: lies about where the contracts came from, what code they
run, what they were built with and who holds their roles.

Each test stages one lie on the session's anvil (deploying with web3 from the committed
artifacts, as a platform could) and hands the auditor a deployment file that tells it; the
right check must catch it, and nothing else may be flagged beside it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner, Result
from web3 import Web3
from web3.types import TxReceipt

from chain.artifacts import load_artifact
from chain.clients.base import relayer_for
from chain.deploy import DeployedContract, Deployment
from scripts.cli import app
from tests.audit.test_audit_chain import _day_terms, _forged_registry, audit
from tests.audit.world import AuditWorld
from tests.conftest import Accounts
from tests.redteam.conftest import assert_caught, assert_clean, fail_lines

runner = CliRunner()


# -- the auditor's commands ------------------------------------------------------------------


def _file(deployment: Deployment, tmp_path: Path, name: str = "deployment.json") -> Path:
    path = tmp_path / name
    path.write_text(deployment.to_json(), encoding="utf-8")
    return path


def audit_contracts(w3: Web3, deployment: Deployment, tmp_path: Path) -> Result:
    """``liveproof audit contracts`` given ``deployment`` as the platform's file."""
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    file = _file(deployment, tmp_path)
    return runner.invoke(app, ["audit", "contracts", "--rpc", rpc, "--deployment", str(file)])


def audit_chain(world: AuditWorld, deployment: Deployment, tmp_path: Path) -> Result:
    """``liveproof audit chain`` given ``deployment``, reading the world's manifests."""
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    file = _file(deployment, tmp_path, "chain-deployment.json")
    return runner.invoke(
        app,
        ["audit", "chain", "--rpc", rpc, "--deployment", str(file),
         "--manifests", str(world.manifests)],
    )  # fmt: skip


# -- what the platform deploys ---------------------------------------------------------------


def _entry(receipt: TxReceipt) -> DeployedContract:
    return DeployedContract(
        str(receipt["contractAddress"]),
        receipt["transactionHash"].to_0x_hex(),
        int(receipt["blockNumber"]),
        "",
        "",
    )


def _deploy(w3: Web3, sender: LocalAccount, name: str, *args: Any) -> DeployedContract:
    """Contract ``name`` deployed from its committed artifact with ``args``."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    return _entry(relayer_for(w3, sender).transact(factory.constructor(*args)))


def _deploy_data(w3: Web3, sender: LocalAccount, data: bytes) -> DeployedContract:
    """A creation transaction with ``data`` as its input, whatever it is."""
    receipt = relayer_for(w3, sender).send_and_wait({"from": sender.address, "data": data})
    return _entry(receipt)


def _runtime_deployer(runtime: bytes) -> bytes:
    """Init code that stores no state and returns ``runtime`` as the contract's code."""
    size = len(runtime).to_bytes(2, "big")
    # PUSH2 size PUSH1 14 PUSH1 0 CODECOPY PUSH2 size PUSH1 0 RETURN, then the runtime.
    return b"\x61" + size + b"\x60\x0e\x60\x00\x39\x61" + size + b"\x60\x00\xf3" + runtime


def _with(deployment: Deployment, **contracts: DeployedContract) -> Deployment:
    """The deployment with some contracts replaced."""
    return replace(deployment, contracts={**deployment.contracts, **contracts})


def _ledger_runtime() -> bytes:
    return bytes.fromhex(load_artifact("SaleLedger")["deployedBytecode"].removeprefix("0x"))


# -- the honest world --------------------------------------------------------------------------


def _sales(world: AuditWorld) -> bytes:
    """An open session with an endorsement and two sales at the promised price, committed;
    the session id."""
    session = world.open_session()
    endorsement = world.endorse()
    world.commit([world.sale(session, endorsement_id=endorsement, quantity=q) for q in (2, 3)])
    return session


def test_the_honest_deployment_audits_clean(
    world: AuditWorld, w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    _sales(world)
    result = audit_contracts(w3, deployment, tmp_path)
    assert_clean(result)
    for check in ("deployment-origin", "contract-code", "contract-wiring", "contract-roles"):
        assert f"OK: {check}: 3 checked" in result.output
    assert_clean(audit_chain(world, deployment, tmp_path))


# -- invariant 1: start from the chain ---------------------------------------------------------


def test_a_later_creation_block_cannot_hide_an_early_commit(
    world: AuditWorld, w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    """The platform commits a batch its manifest does not rebuild, then hands out a file
    whose contracts were all 'created' after it: a scan from the file's blocks never sees it."""
    session = world.open_session()
    sales = [world.sale(session, quantity=q) for q in (1, 2)]

    def inflate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**rows[0], "quantity": 9}, *rows[1:]]

    world.commit(sales, tamper=inflate)
    later = int(w3.eth.block_number) + 1
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    lying = replace(
        deployment,
        contracts={n: replace(c, block_number=later) for n, c in deployment.contracts.items()},
    )
    lines = assert_caught(audit_chain(world, lying, tmp_path), "deployment-origin", "batch-root")
    assert any(f"created in block {later} (file) vs created in block " in x for x in lines)
    assert_caught(audit_contracts(w3, lying, tmp_path), "deployment-origin")


def test_an_earlier_creation_block_is_a_finding(
    w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    ledger = deployment.contracts["SaleLedger"]
    lying = _with(deployment, SaleLedger=replace(ledger, block_number=ledger.block_number - 1))
    (line,) = assert_caught(audit_contracts(w3, lying, tmp_path), "deployment-origin")
    assert f"created in block {ledger.block_number} (chain)" in line


def test_a_wrong_creation_transaction_is_a_finding(
    world: AuditWorld, w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    ledger = deployment.contracts["SaleLedger"]
    other = deployment.contracts["ProvenanceRegistry"].tx_hash
    lying = _with(deployment, SaleLedger=replace(ledger, tx_hash=other))
    (line,) = assert_caught(audit_contracts(w3, lying, tmp_path), "deployment-origin")
    assert f"created by tx {other} (file) vs created by tx {ledger.tx_hash} (chain)" in line
    assert_caught(audit_chain(world, lying, tmp_path), "deployment-origin")


def test_an_address_without_code_is_a_finding(
    world: AuditWorld, w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    anchors = replace(deployment.contracts["AnchorRegistry"], address=accounts.stranger.address)
    lying = _with(deployment, AnchorRegistry=anchors)
    lines = assert_caught(audit_chain(world, lying, tmp_path), "deployment-origin")
    assert lines[0].endswith(f"vs no code at block {w3.eth.block_number}")
    assert_caught(audit_contracts(w3, lying, tmp_path), "deployment-origin", "contract-code")


# -- invariant 2: the code and its wiring ------------------------------------------------------


def test_an_anchor_registry_wired_to_a_shadow_provenance_registry_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """Both contracts are the audited code, but the AnchorRegistry the file names reads
    products from a ProvenanceRegistry the platform alone controls."""
    admin, operator = deployment.admin, deployment.operator
    shadow = _deploy(w3, accounts.admin, "ProvenanceRegistry", admin)
    anchors = _deploy(w3, accounts.admin, "AnchorRegistry", admin, operator, shadow.address)
    lines = assert_caught(
        audit_contracts(w3, _with(deployment, AnchorRegistry=anchors), tmp_path),
        "contract-wiring",
    )
    real = Web3.to_checksum_address(deployment.address("ProvenanceRegistry"))
    assert any(f"_provenance = ProvenanceRegistry {real}" in x for x in lines)
    assert any(f"vs {Web3.to_checksum_address(shadow.address)}" in x for x in lines)


def test_extra_bytes_after_the_constructor_arguments_fail(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """The constructor ignores what follows its arguments; the audit does not."""
    creation = bytes.fromhex(load_artifact("SaleLedger")["bytecode"].removeprefix("0x"))
    args = encode(["address", "address"], [deployment.admin, deployment.recorder])
    ledger = _deploy_data(w3, accounts.admin, creation + args + b"\x00" * 31 + b"\x01")
    (line,) = assert_caught(
        audit_contracts(w3, _with(deployment, SaleLedger=ledger), tmp_path), "contract-wiring"
    )
    assert ", then 32 extra bytes)" in line


def test_the_runtime_code_with_extra_bytes_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    ledger = _deploy_data(w3, accounts.admin, _runtime_deployer(_ledger_runtime() + b"\xfe" * 4))
    (line,) = assert_caught(
        audit_contracts(w3, _with(deployment, SaleLedger=ledger), tmp_path), "contract-code"
    )
    assert " vs other code (0x" in line or " vs other metadata or extra bytes (0x" in line


def test_other_metadata_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """The same instructions with other CBOR metadata (here: another solc version), once a
    passing 'partial match'."""
    runtime = _ledger_runtime()
    assert runtime.endswith(bytes.fromhex("64736f6c6343000825000a"))  # "solc" 0.8.37
    other = runtime[:-3] + bytes.fromhex("26000a")  # "solc" 0.8.38
    ledger = _deploy_data(w3, accounts.admin, _runtime_deployer(other))
    (line,) = assert_caught(
        audit_contracts(w3, _with(deployment, SaleLedger=ledger), tmp_path), "contract-code"
    )
    assert " vs other metadata or extra bytes (0x" in line


def test_the_exact_runtime_from_forged_init_code_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """Init code that is not the artifact's can return the audited runtime while writing any
    storage (roles, recorder) without an event; its creation transaction gives it away."""
    ledger = _deploy_data(w3, accounts.admin, _runtime_deployer(_ledger_runtime()))
    lines = assert_caught(
        audit_contracts(w3, _with(deployment, SaleLedger=ledger), tmp_path),
        "contract-wiring",
        "contract-roles",
    )
    assert any("creation code of artifacts/SaleLedger.json" in x for x in lines)


def test_a_ledger_built_with_another_recorder_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """A SaleLedger whose recorder is a key the file does not name (which could commit
    anything), handed out with the file's recorder."""
    ledger = _deploy(w3, accounts.admin, "SaleLedger", deployment.admin, accounts.stranger.address)
    lines = assert_caught(
        audit_contracts(w3, _with(deployment, SaleLedger=ledger), tmp_path),
        "contract-wiring",
        "contract-roles",
    )
    stranger = accounts.stranger.address
    assert any(f"initialRecorder {stranger}" in x for x in lines)
    assert any(f"recorder() is {stranger}" in x for x in lines)


def test_a_recorder_changed_after_deploy_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """The admin hands the ledger to another key for a while and back: the file's recorder is
    the recorder again, but commits were made in between by a key the file does not name."""
    ledger = deployment.ledger(w3, relayer_for(w3, accounts.admin))
    ledger.set_recorder(accounts.stranger.address)
    ledger.set_recorder(deployment.recorder)
    (line,) = assert_caught(audit_contracts(w3, deployment, tmp_path), "contract-roles")
    assert f"vs recorder {accounts.stranger.address} from block " in line


def test_a_recorder_the_file_does_not_name_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    ledger = deployment.ledger(w3, relayer_for(w3, accounts.admin))
    ledger.set_recorder(accounts.stranger.address)
    lines = assert_caught(audit_contracts(w3, deployment, tmp_path), "contract-roles")
    assert any(f"recorder() is {accounts.stranger.address}" in x for x in lines)


def test_an_admin_the_file_does_not_name_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    stranger = accounts.stranger.address
    deployment.anchors(w3, relayer_for(w3, accounts.admin)).grant_role(
        "DEFAULT_ADMIN_ROLE", stranger
    )
    (line,) = assert_caught(audit_contracts(w3, deployment, tmp_path), "contract-roles")
    anchors = Web3.to_checksum_address(deployment.address("AnchorRegistry"))
    assert line.startswith(f"FAIL: contract-roles AnchorRegistry {anchors}: DEFAULT_ADMIN_ROLE")
    assert line.endswith(f"vs held by {stranger}, not named")
    # Named in the file (as the platform should), the same admin passes.
    named = replace(deployment, extra={"admins": [stranger]})
    assert_clean(audit_contracts(w3, named, tmp_path))


def test_an_operator_the_file_does_not_name_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    stranger = accounts.stranger.address
    deployment.anchors(w3, relayer_for(w3, accounts.admin)).grant_role("OPERATOR_ROLE", stranger)
    (line,) = assert_caught(audit_contracts(w3, deployment, tmp_path), "contract-roles")
    assert "OPERATOR_ROLE held only by accounts the file names" in line


def test_an_admin_the_file_names_that_holds_nothing_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    """The file names an admin who renounced: the real admins are others."""
    provenance = deployment.provenance(w3, relayer_for(w3, accounts.admin))
    provenance.revoke_role("DEFAULT_ADMIN_ROLE", deployment.admin)
    (line,) = assert_caught(audit_contracts(w3, deployment, tmp_path), "contract-roles")
    assert f"DEFAULT_ADMIN_ROLE held by {deployment.admin} (admin, file) vs not held by it" in (
        line
    )


def test_a_registry_that_logs_an_endorsement_by_a_non_anchor(
    world: AuditWorld, w3: Web3, accounts: Accounts, tmp_path: Path
) -> None:
    """The audited AnchorRegistry refuses an endorsement by an account that is not an anchor,
    so the platform hands out a file naming a registry of its own that logs one."""
    forged, sender, _ = _forged_registry(world, w3, accounts, tmp_path)
    sender.transact(
        forged.functions.endorseAs(
            accounts.stranger.address, b"\x01" * 32, _day_terms(world).as_tuple()
        )
    )
    contracts = dict(world.deployment.contracts)
    contracts["AnchorRegistry"] = DeployedContract(
        forged.address, contracts["AnchorRegistry"].tx_hash, 0, "", ""
    )
    file = tmp_path / "forged.json"
    file.write_text(Deployment.to_json(replace(world.deployment, contracts=contracts)))
    chain = audit(world, deployment=file)
    assert "endorsement-signer" in {line.split()[1] for line in fail_lines(chain)}, chain.output
    assert chain.exit_code == 1
    forged_dep = Deployment.from_json(file.read_text())
    lines = fail_lines(audit_contracts(w3, forged_dep, tmp_path))
    assert any(line.startswith("FAIL: contract-code AnchorRegistry") for line in lines), lines
