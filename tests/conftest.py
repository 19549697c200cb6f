"""Shared fixtures: one anvil per test session, accounts, a fresh deployment, and a chain
snapshot reverted after every test so tests never see each other's transactions."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.clients import AnchorRegistryClient, ProvenanceRegistryClient, SaleLedgerClient
from chain.clients.base import relayer_for
from chain.connect import connect
from chain.deploy import Deployment, deploy
from chain.devnet import DevnetInfo, throwaway_anvil
from chain.keys import ANVIL_DEV_KEYS, account_from_key
from chain.relayer import Relayer

# Counts the fuzz tests' generated cases across xdist workers (the controller only loads this
# conftest, never tests/fuzz/conftest.py).
pytest_plugins = ["tests.fuzz.tally"]


@dataclass(frozen=True)
class Accounts:
    """The dev accounts by role (anvil's well-known keys, funded on every devnet)."""

    admin: LocalAccount
    brand: LocalAccount
    certifier: LocalAccount
    anchor: LocalAccount
    anchor2: LocalAccount
    stranger: LocalAccount
    relayer: LocalAccount


@pytest.fixture(scope="session")
def anvil() -> Iterator[DevnetInfo]:
    """A throw-away anvil for the whole test session (no state file)."""
    with throwaway_anvil() as info:
        yield info


@pytest.fixture(scope="session")
def w3(anvil: DevnetInfo) -> Web3:
    """Web3 connected to the session's anvil."""
    return connect(anvil.rpc_url)


@pytest.fixture(scope="session")
def accounts() -> Accounts:
    """Dev accounts by role."""
    keys = [account_from_key(k) for k in ANVIL_DEV_KEYS[:7]]
    return Accounts(*keys)


@pytest.fixture(scope="session")
def deployments_dir() -> Path:
    """Where the session's deployment file is written."""
    return Path(tempfile.mkdtemp(prefix="liveproof-deploy-"))


@pytest.fixture(scope="session")
def deployment(w3: Web3, accounts: Accounts, deployments_dir: Path) -> Deployment:
    """The three contracts deployed once per session. The relayer account records, operates
    sessions and, like the platform's relayer behind the API, also holds the registries'
    admin role so that it can register brands, certifiers and anchors."""
    dep, _ = deploy(
        w3,
        accounts.admin,
        recorder=accounts.relayer.address,
        operator=accounts.relayer.address,
        directory=deployments_dir,
    )
    admin = relayer_for(w3, accounts.admin)
    dep.provenance(w3, admin).grant_role("DEFAULT_ADMIN_ROLE", accounts.relayer.address)
    dep.anchors(w3, admin).grant_role("DEFAULT_ADMIN_ROLE", accounts.relayer.address)
    return dep


@pytest.fixture(autouse=True)
def _chain_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Revert the session chain after each test that used it."""
    if "w3" not in request.fixturenames:
        yield
        return
    w3: Web3 = request.getfixturevalue("w3")
    # Session fixtures must exist before the snapshot, or reverting it would wipe them while
    # pytest keeps them cached.
    request.getfixturevalue("deployment")
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    # Reverting also winds the chain's clock back to the snapshot's: set it to the wall clock
    # again, as a real chain's is, or every later test's block times lag its orders' times.
    w3.provider.make_request("evm_setTime", [int(time.time())])  # type: ignore[arg-type]


@pytest.fixture
def relayers(w3: Web3, accounts: Accounts) -> dict[str, Relayer]:
    """A relayer per account role; fresh per test because snapshots rewind nonces."""
    return {
        name: relayer_for(w3, getattr(accounts, name))
        for name in ("admin", "brand", "certifier", "anchor", "anchor2", "stranger", "relayer")
    }


@pytest.fixture
def provenance(
    w3: Web3, deployment: Deployment, relayers: dict[str, Relayer]
) -> ProvenanceRegistryClient:
    """ProvenanceRegistry client sending as the admin."""
    return deployment.provenance(w3, relayers["admin"])


@pytest.fixture
def anchors(w3: Web3, deployment: Deployment, relayers: dict[str, Relayer]) -> AnchorRegistryClient:
    """AnchorRegistry client sending as the admin."""
    return deployment.anchors(w3, relayers["admin"])


@pytest.fixture
def ledger(w3: Web3, deployment: Deployment, relayers: dict[str, Relayer]) -> SaleLedgerClient:
    """SaleLedger client sending as the recorder (the relayer account)."""
    return deployment.ledger(w3, relayers["relayer"])
