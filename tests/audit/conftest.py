"""Fixtures for the auditor's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from chain.deploy import Deployment
from tests.audit.world import AuditWorld
from tests.conftest import Accounts


@pytest.fixture
def world(w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path) -> AuditWorld:
    """A product with a claim and a registered anchor, and a manifest directory."""
    return AuditWorld.make(w3, deployment, accounts, tmp_path)
