"""`liveproof verify-receipt BUNDLE --rpc URL`: exit 0 verified, 1 not, 2 unusable input."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from chain.clients import SaleLedgerClient
from chain.deploy import Deployment
from chain.devnet import DevnetInfo, throwaway_anvil
from chain.merkle import StandardMerkleTree
from chain.proof_bundle import BUNDLE_FORMAT, BundleFormatError, ProofBundle
from chain.receipts import LEAF_TYPES
from tests.chain.test_receipts import make_leaf

ROOT = Path(__file__).resolve().parents[2]


def _cli(bundle: Path, rpc: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", "verify-receipt", str(bundle), "--rpc", rpc, *extra],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def bundle(ledger: SaleLedgerClient, deployment: Deployment, w3: Web3) -> dict[str, Any]:
    """A real bundle: receipt 3 of a committed 10-receipt batch."""
    rng = random.Random(42)
    leaves = [make_leaf(rng) for _ in range(10)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    sent = ledger.commit_batch(tree.root, len(leaves))
    return {
        "format": BUNDLE_FORMAT,
        "chainId": int(w3.eth.chain_id),
        "ledger": deployment.address("SaleLedger"),
        "batchId": tree.root_hex,
        "root": tree.root_hex,
        "txHash": sent.tx_hash,
        "blockNumber": sent.block_number,
        "leafTypes": list(LEAF_TYPES),
        "leaf": leaves[3].to_json(),
        "proof": ["0x" + p.hex() for p in tree.get_proof(3)],
    }


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_good_bundle_verifies(bundle: dict[str, Any], anvil: DevnetInfo, tmp_path: Path) -> None:
    result = _cli(_write(tmp_path, bundle), anvil.rpc_url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("OK: ") for line in lines)
    assert any("folds to root" in line for line in lines)
    assert any("verifies the proof (eth_call)" in line for line in lines)
    assert lines[-1] == f"OK: receipt {bundle['leaf']['receiptId']}"


def test_a_tampered_leaf_fails(bundle: dict[str, Any], anvil: DevnetInfo, tmp_path: Path) -> None:
    bundle["leaf"]["quantity"] += 1
    result = _cli(_write(tmp_path, bundle), anvil.rpc_url)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"OK: chain id {bundle['chainId']}"
    assert result.stdout.splitlines()[1].startswith(f"FAIL: proof: root {bundle['root']} vs 0x")


def test_a_wrong_root_fails_on_chain(
    bundle: dict[str, Any], anvil: DevnetInfo, tmp_path: Path
) -> None:
    """A self-consistent bundle for a root nobody committed: the ledger says no."""
    rng = random.Random(7)
    leaves = [make_leaf(rng) for _ in range(4)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
    forged = {
        **bundle,
        "root": tree.root_hex,
        "batchId": tree.root_hex,
        "leaf": leaves[0].to_json(),
        "proof": ["0x" + p.hex() for p in tree.get_proof(0)],
    }
    result = _cli(_write(tmp_path, forged), anvil.rpc_url)
    assert result.returncode == 1
    assert "FAIL: root on the ledger: committed vs not committed" in result.stdout


def test_a_wrong_transaction_fails(
    bundle: dict[str, Any], anvil: DevnetInfo, tmp_path: Path
) -> None:
    bundle["txHash"] = "0x" + "ab" * 32
    result = _cli(_write(tmp_path, bundle), anvil.rpc_url)
    assert result.returncode == 1
    assert "FAIL: commit transaction:" in result.stdout


def test_a_bundle_for_another_chain_fails(bundle: dict[str, Any], tmp_path: Path) -> None:
    path = _write(tmp_path, bundle)
    with throwaway_anvil(chain_id=1337) as other:
        result = _cli(path, other.rpc_url)
    assert result.returncode == 1
    assert f"FAIL: chain id: {bundle['chainId']} vs 1337" in result.stdout


def test_an_unreachable_rpc_exits_2(bundle: dict[str, Any], tmp_path: Path) -> None:
    result = _cli(_write(tmp_path, bundle), "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "cannot reach" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else/1"}, "format must be"),
        ({"leafTypes": ["bytes32"]}, "leafTypes"),
        ({"root": "0x1234", "batchId": "0x1234"}, "root must be"),
        ({"chainId": "31337"}, "chainId"),
        ({"leaf": {"receiptId": "0x00"}}, "leaf:"),
    ],
)
def test_unusable_bundles_exit_2(
    bundle: dict[str, Any], anvil: DevnetInfo, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    result = _cli(_write(tmp_path, {**bundle, **change}), anvil.rpc_url)
    assert result.returncode == 2
    assert message in result.stderr
    with pytest.raises(BundleFormatError):
        ProofBundle.parse({**bundle, **change})


def test_not_json_and_missing_file_exit_2(anvil: DevnetInfo, tmp_path: Path) -> None:
    assert _cli(_write(tmp_path, "{not json"), anvil.rpc_url).returncode == 2
    assert _cli(tmp_path / "missing.json", anvil.rpc_url).returncode == 2


def test_the_ledger_address_can_be_pinned(
    bundle: dict[str, Any], anvil: DevnetInfo, tmp_path: Path
) -> None:
    """A bundle naming another contract (one that might answer true to anything) fails when
    the shopper pins the ledger from the deployment file."""
    path = _write(tmp_path, bundle)
    unpinned = _cli(path, anvil.rpc_url)
    assert "came from the bundle" in unpinned.stderr
    pinned = _cli(path, anvil.rpc_url, "--ledger", bundle["ledger"].lower())
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert pinned.stdout.startswith(f"OK: ledger {bundle['ledger']} is the one given")
    other = _cli(path, anvil.rpc_url, "--ledger", "0x" + "11" * 20)
    assert other.returncode == 1
    assert other.stdout.startswith("FAIL: ledger address: 0x" + "11" * 20)
    assert _cli(path, anvil.rpc_url, "--ledger", "0x1234").returncode == 2
