"""`liveproof deploy` and `liveproof gas-report` on throw-away anvils."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from web3 import Web3

from chain.connect import connect
from chain.deploy import Deployment, deploy, load_deployment
from chain.devnet import start_anvil, stop_anvil, throwaway_anvil
from chain.errors import DevKeyRefusedError
from chain.keys import ANVIL_DEV_KEYS, account_from_key

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_GAS_KEYS = {
    "commit_batch",
    "record_receipt",
    "endorse_relayed",
    "register_product_relayed",
    "add_claim_relayed",
    "revoke_endorsement",
    "open_session",
    "close_session",
}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def test_gas_report_json_meets_targets() -> None:
    result = _cli("gas-report", "--json")
    assert result.returncode == 0, result.stderr
    gas = json.loads(result.stdout)
    assert gas.keys() >= REQUIRED_GAS_KEYS
    assert gas["commit_batch"] <= 48_000
    assert gas["record_receipt"] <= 48_000
    assert gas["endorse_relayed"] <= 80_000
    # The first endorsement writes the nonce slot from zero, so it costs more.
    assert gas["endorse_relayed_first"] > gas["endorse_relayed"]


def test_deploy_is_idempotent_and_checks_code(tmp_path: Path) -> None:
    admin = account_from_key(ANVIL_DEV_KEYS[0])
    with throwaway_anvil() as info:
        w3 = connect(info.rpc_url)
        first, sent = deploy(w3, admin, directory=tmp_path)
        assert sent
        block = w3.eth.block_number
        again, sent_again = deploy(w3, admin, directory=tmp_path)
        assert not sent_again
        assert again == first
        assert w3.eth.block_number == block  # nothing was sent
        assert load_deployment(first.chain_id, tmp_path) == first
        for name, contract in first.contracts.items():
            assert w3.eth.get_code(Web3.to_checksum_address(contract.address)), name


def test_deploy_refuses_code_that_differs(tmp_path: Path) -> None:
    admin = account_from_key(ANVIL_DEV_KEYS[0])
    with throwaway_anvil() as info:
        w3 = connect(info.rpc_url)
        first, _ = deploy(w3, admin, directory=tmp_path)
        # Point the file's SaleLedger at the AnchorRegistry: its code is not SaleLedger's.
        data = json.loads(first.to_json())
        data["contracts"]["SaleLedger"] = data["contracts"]["AnchorRegistry"]
        (tmp_path / f"{first.chain_id}.json").write_text(json.dumps(data))
        from chain.errors import VerificationError

        with pytest.raises(VerificationError, match="mismatch"):
            deploy(w3, admin, directory=tmp_path)


def test_dev_key_refused_on_a_non_local_chain(tmp_path: Path) -> None:
    with throwaway_anvil(chain_id=11155111) as info:
        w3 = connect(info.rpc_url)
        with pytest.raises(DevKeyRefusedError, match="11155111"):
            deploy(w3, account_from_key(ANVIL_DEV_KEYS[0]), directory=tmp_path)
        result = _cli("deploy", "--rpc", info.rpc_url)
        assert result.returncode == 2
        assert "not a local devnet" in result.stderr


def test_deploy_cli_on_unreachable_rpc_exits_2() -> None:
    result = _cli("deploy", "--rpc", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "cannot reach" in result.stderr


def test_state_survives_an_anvil_restart(tmp_path: Path) -> None:
    """Deployment, events and batches are still there after anvil restarts from its state."""
    from chain.clients.base import relayer_for
    from chain.devnet import free_port

    port = free_port()
    state = tmp_path / "state.json"
    admin = account_from_key(ANVIL_DEV_KEYS[0])
    start_anvil(port, state_file=state, run_dir=tmp_path)
    try:
        w3 = connect(f"http://127.0.0.1:{port}")
        dep, _ = deploy(w3, admin, directory=tmp_path)
        ledger = dep.ledger(w3, relayer_for(w3, admin))
        root = Web3.keccak(text="batch before restart")
        committed = ledger.commit_batch(root, 42)
        height = w3.eth.block_number
    finally:
        stop_anvil(port, run_dir=tmp_path)
    start_anvil(port, state_file=state, run_dir=tmp_path)
    try:
        w3 = connect(f"http://127.0.0.1:{port}")
        assert w3.eth.block_number == height
        again, sent = deploy(w3, admin, directory=tmp_path)
        assert not sent
        assert again == dep
        batch = Deployment.ledger(dep, w3).batch(root)
        assert batch.count == 42
        assert batch.block_number == committed.block_number
        logs = w3.eth.get_logs(
            {"address": dep.address("SaleLedger"), "fromBlock": 0, "toBlock": "latest"}
        )
        assert any(bytes(log["topics"][1]) == root for log in logs if len(log["topics"]) > 1)
        tx = w3.eth.get_transaction_receipt(committed.tx_hash)
        assert tx["status"] == 1
    finally:
        stop_anvil(port, run_dir=tmp_path)
