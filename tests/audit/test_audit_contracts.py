"""``liveproof audit contracts``: the session deployment matches its artifacts, wiring and
roles; a SaleLedger compiled from changed source and deployed fails; one whose source changed
only in a comment and was compiled with a metadata hash (a partial match) fails too; the
immutables' names the audit knows are the compiler's; an unreachable RPC exits 2.

The lies a dishonest platform could tell about its contracts are in
tests/redteam/test_contract_lies.py."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result
from web3 import Web3

from chain.bytecode import compare_runtime
from chain.clients.base import relayer_for
from chain.compile import COMPILER_SETTINGS, collect_sources, run_compiler, standard_json_input
from chain.deploy import DeployedContract, Deployment, deployment_path
from scripts.cli import app
from tests.conftest import Accounts

ROOT = Path(__file__).resolve().parents[2]
UNIT = "contracts/src/SaleLedger.sol"
CHANGED = "if (leaf == bytes32(0)) revert EmptyBatch();"

runner = CliRunner()


def _compile_sale_ledger(home: Path, source: str, bytecode_hash: str) -> dict[str, Any]:
    """SaleLedger compiled from ``source`` with the project's solc and settings, except the
    metadata's ``bytecodeHash``; the artifact's abi, bytecode and deployedBytecode."""
    (home / UNIT).write_text(source, encoding="utf-8")
    input_json = standard_json_input(collect_sources(home))
    settings = copy.deepcopy(COMPILER_SETTINGS)
    settings["metadata"]["bytecodeHash"] = bytecode_hash
    # Only SaleLedger's code is generated: the same code, in a third of the time.
    outputs = COMPILER_SETTINGS["outputSelection"]["*"]["*"]
    settings["outputSelection"] = {UNIT: {"SaleLedger": outputs}}
    input_json["settings"] = settings
    contract = run_compiler(input_json, home)["contracts"][UNIT]["SaleLedger"]
    return {
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """SaleLedger built from a copy of the checkout's contracts: with a check removed
    (``changed``), and with only a comment added, compiled with the project's settings
    (``comment``) and with an IPFS metadata hash (``comment-ipfs``)."""
    if not (ROOT / "node_modules" / "solc").is_dir():
        pytest.skip("npm solc not installed (run npm ci)")
    home = tmp_path_factory.mktemp("checkout")
    shutil.copy(ROOT / "pyproject.toml", home / "pyproject.toml")
    shutil.copytree(ROOT / "contracts", home / "contracts")
    (home / "node_modules").symlink_to(ROOT / "node_modules")
    original = (home / UNIT).read_text(encoding="utf-8")
    assert CHANGED in original
    commented = original + "\n// Reviewed by the auditors: nothing to change.\n"
    return {
        "changed": _compile_sale_ledger(home, original.replace(CHANGED, ""), "none"),
        "comment": _compile_sale_ledger(home, commented, "none"),
        "comment-ipfs": _compile_sale_ledger(home, commented, "ipfs"),
    }


def _deploy_sale_ledger(
    w3: Web3, accounts: Accounts, deployment: Deployment, artifact: dict[str, Any], out: Path
) -> tuple[Path, str]:
    """Deploy ``artifact`` as SaleLedger and write a deployment file naming it; (file, address)."""
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    sender = relayer_for(w3, accounts.admin)
    receipt = sender.transact(factory.constructor(accounts.admin.address, accounts.relayer.address))
    address = str(receipt["contractAddress"])
    contracts = dict(deployment.contracts)
    contracts["SaleLedger"] = DeployedContract(
        address, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"], "", ""
    )
    out.write_text(replace(deployment, contracts=contracts).to_json(), encoding="utf-8")
    return out, address


def audit_contracts(w3: Web3, deployment_file: Path, *extra: str) -> Result:
    """``liveproof audit contracts`` against the session's anvil."""
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    return runner.invoke(
        app, ["audit", "contracts", "--rpc", rpc, "--deployment", str(deployment_file), *extra]
    )


def test_the_session_deployment_matches_its_artifacts(
    w3: Web3, deployment: Deployment, deployments_dir: Path, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.json"
    file = deployment_path(deployment.chain_id, deployments_dir)
    result = audit_contracts(w3, file, "--report", str(report_file))
    assert result.exit_code == 0, result.output
    for name in ("ProvenanceRegistry", "AnchorRegistry", "SaleLedger"):
        address = deployment.address(name)
        assert f"OK: contract-code {name} {address}: exact match" in result.output
    assert "OK: contract-code: 3 checked" in result.output
    for check in ("deployment-origin", "contract-wiring", "contract-roles"):
        assert f"OK: {check}: 3 checked" in result.output
    anchors = deployment.address("AnchorRegistry")
    assert f"OK: contract-wiring AnchorRegistry {anchors}: immutables and constructor" in (
        result.output
    )
    assert f"OK: contract-roles AnchorRegistry {anchors}: DEFAULT_ADMIN_ROLE held by " in (
        result.output
    )
    assert "FAIL" not in result.output
    report = json.loads(report_file.read_text())
    assert report["format"] == "liveproof-audit-contracts/1"
    assert report["ok"] is True
    assert report["checks"]["contract-code"]["checked"] == 3
    assert {c["match"] for c in report["stats"]["contracts"].values()} == {"exact"}
    assert report["stats"]["chain_id"] == w3.eth.chain_id


def test_a_contract_deployed_from_changed_source_fails(
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    variants: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    file, address = _deploy_sale_ledger(
        w3, accounts, deployment, variants["changed"], tmp_path / "changed.json"
    )
    result = audit_contracts(w3, file, "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 1, result.output
    fails = [line for line in result.output.splitlines() if line.startswith("FAIL: ")]
    assert len(fails) == 1, result.output
    assert fails[0].startswith(
        f"FAIL: contract-code SaleLedger {address}: runtime code of artifacts/SaleLedger.json ("
    )
    assert " vs other code (0x" in fails[0]
    # The other two still pass, and are said to.
    assert f"OK: contract-code AnchorRegistry {deployment.address('AnchorRegistry')}" in (
        result.output
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is False
    assert report["stats"]["contracts"]["SaleLedger"]["match"] == "mismatch"


def test_a_metadata_only_difference_fails(
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    variants: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    """Same instructions, other metadata: once graded a passing partial match, now a FAIL
    (nothing beyond an exact match passes)."""
    file, address = _deploy_sale_ledger(
        w3, accounts, deployment, variants["comment-ipfs"], tmp_path / "partial.json"
    )
    result = audit_contracts(w3, file)
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("FAIL: ")]
    assert line.startswith(f"FAIL: contract-code SaleLedger {address}: runtime code of ")
    assert " vs other metadata or extra bytes (0x" in line


def test_a_comment_only_change_leaves_the_code_exact(variants: dict[str, dict[str, Any]]) -> None:
    """The artifacts' metadata carries no source hash (``bytecodeHash: none``), so a comment
    cannot change the code: nothing for the audit to tell apart."""
    from chain.artifacts import load_artifact

    code = bytes.fromhex(variants["comment"]["deployedBytecode"][2:])
    assert compare_runtime(code, load_artifact("SaleLedger")) == "exact"


def test_a_contract_with_no_code_fails(
    w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path
) -> None:
    contracts = dict(deployment.contracts)
    contracts["AnchorRegistry"] = replace(
        contracts["AnchorRegistry"], address=accounts.stranger.address
    )
    file = tmp_path / "nocode.json"
    file.write_text(replace(deployment, contracts=contracts).to_json())
    result = audit_contracts(w3, file)
    assert result.exit_code == 1, result.output
    origin, code = [x for x in result.output.splitlines() if x.startswith("FAIL: ")]
    assert code.startswith(f"FAIL: contract-code AnchorRegistry {accounts.stranger.address}: ")
    assert code.endswith(" vs no code")
    assert origin.startswith(f"FAIL: deployment-origin AnchorRegistry {accounts.stranger.address}")
    assert " vs no code at block " in origin


def test_an_unreachable_rpc_exits_2(deployment: Deployment, deployments_dir: Path) -> None:
    file = deployment_path(deployment.chain_id, deployments_dir)
    result = runner.invoke(
        app, ["audit", "contracts", "--rpc", "http://127.0.0.1:9", "--deployment", str(file)]
    )
    assert result.exit_code == 2, result.output
    assert "error: cannot reach http://127.0.0.1:9" in result.output


def test_the_audits_immutable_names_are_the_compilers() -> None:
    """The artifacts key immutables by AST id; the audit's table of their names must be what
    the compiler's AST of the committed sources says (update it after a recompile)."""
    if not (ROOT / "node_modules" / "solc").is_dir():
        pytest.skip("npm solc not installed (run npm ci)")
    from chain.artifacts import load_artifact
    from chain.audit.wiring import IMMUTABLE_NAMES

    input_json = standard_json_input(collect_sources(ROOT))
    settings = copy.deepcopy(COMPILER_SETTINGS)
    settings["outputSelection"] = {"*": {"": ["ast"]}}
    input_json["settings"] = settings
    names: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("nodeType") == "VariableDeclaration" and node.get("mutability") == (
                "immutable"
            ):
                names[str(node["id"])] = node["name"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for source in run_compiler(input_json, ROOT)["sources"].values():
        walk(source["ast"])
    for contract, table in IMMUTABLE_NAMES.items():
        ids = set(load_artifact(contract)["immutableReferences"])
        assert set(table) == ids, contract
        assert {i: names[i] for i in ids} == table, contract
