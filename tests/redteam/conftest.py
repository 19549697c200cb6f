"""The red team: tests that play the dishonest platform.

The platform holds the recorder key, its database, its API, the manifests it publishes and the
deployment file it hands out. Each test here starts from an honest world that audits clean,
stages one lie the platform could tell, and asserts that the right command exits 1 naming the
right check, and that nothing honest is flagged beside it. Every test in this folder carries
the ``redteam`` marker (``pytest -m redteam``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import Result
from web3 import Web3

from chain.deploy import Deployment
from tests.audit.world import AuditWorld
from tests.conftest import Accounts

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``redteam``."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.redteam)


@pytest.fixture
def world(w3: Web3, deployment: Deployment, accounts: Accounts, tmp_path: Path) -> AuditWorld:
    """A product with a claim and a registered anchor, and a manifest directory."""
    return AuditWorld.make(w3, deployment, accounts, tmp_path)


def fail_lines(result: Result) -> list[str]:
    """Every ``FAIL:`` line of a command's output."""
    return [line for line in result.output.splitlines() if line.startswith("FAIL: ")]


def assert_caught(result: Result, *checks: str) -> list[str]:
    """The command exited 1, and its FAIL lines name exactly the checks ``checks`` (each at
    least once, and no other): the lie is caught by the right check and nothing honest beside
    it is flagged. Returns the FAIL lines."""
    assert result.exit_code == 1, result.output
    lines = fail_lines(result)
    named = {line.removeprefix("FAIL: ").split(" ", 1)[0].rstrip(":") for line in lines}
    assert named == set(checks), result.output
    return lines


def assert_clean(result: Result) -> None:
    """The command exited 0 with no FAIL line."""
    assert result.exit_code == 0, result.output
    assert fail_lines(result) == [], result.output
