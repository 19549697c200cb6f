"""``liveproof audit db`` reconciles the platform database with the chain (SQLite and
PostgreSQL): clean after the committer ran; a receipt altered in the database, a batch the
database claims but the chain lacks, a batch on chain the database does not know, and receipts
pending too long are each caught."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner, Result
from web3 import Web3

from api.committer import Committer
from api.config import Settings
from api.db import make_engine
from api.models import Batch, Receipt
from chain.deploy import Deployment, deployment_path
from scripts.cli import app
from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order
from tests.conftest import Accounts

runner = CliRunner()


def audit_db(settings: Settings, w3: Web3, deployment: Deployment, *extra: str) -> Result:
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    assert settings.deployments_dir is not None
    dep = deployment_path(deployment.chain_id, settings.deployments_dir)
    return runner.invoke(
        app,
        ["audit", "db", "--rpc", rpc, "--deployment", str(dep),
         "--database-url", settings.database_url, *extra],
    )  # fmt: skip


def orders(client: TestClient, keys: Keys, world: World, n: int) -> None:
    open_room_and_session(client, keys, world)
    for i in range(n):
        r = client.post(
            "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": f"k{i}"}
        )
        assert r.status_code == 201, r.text


def fail_lines(result: Result, check: str) -> list[str]:
    return [x for x in result.output.splitlines() if x.startswith(f"FAIL: {check} ")]


def test_a_committed_database_reconciles(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    orders(client, keys, world, 5)
    committer.run_once()
    report = tmp_path / "db.json"
    result = audit_db(settings, w3, deployment, "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "OK: committed-on-chain: 1 checked" in result.output
    assert "OK: chain-batch-known: 1 checked" in result.output
    assert report.exists()


def test_an_altered_receipt_and_a_batch_the_chain_lacks_are_caught(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    orders(client, keys, world, 3)
    committer.run_once()
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        receipt = session.exec(select(Receipt)).first()
        assert receipt is not None
        receipt.quantity += 1  # the platform quietly changes a committed sale
        session.add(receipt)
        batch = session.exec(select(Batch)).first()
        assert batch is not None
        fake = Batch(
            root="0x" + os.urandom(32).hex(),
            count=1,
            status="committed",
            sealed_at=0.0,
            tree="[]",
            tx_hash="0x" + "00" * 32,
            block_number=1,
        )
        session.add(fake)
        session.commit()
        fake_root = fake.root
    engine.dispose()
    result = audit_db(settings, w3, deployment)
    assert result.exit_code == 1, result.output
    lines = fail_lines(result, "committed-on-chain")
    assert len(lines) == 2, result.output
    assert any("stored leaf hashes vs other values" in x for x in lines)
    assert any(fake_root in x and "committed on chain vs not committed" in x for x in lines)


def test_a_batch_on_chain_the_database_does_not_know_is_caught(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    orders(client, keys, world, 1)
    committer.run_once()
    from chain.clients.base import relayer_for

    stray = os.urandom(32)
    deployment.ledger(w3, relayer_for(w3, accounts.relayer)).commit_batch(stray, 2)
    result = audit_db(settings, w3, deployment)
    (line,) = fail_lines(result, "chain-batch-known")
    assert f"batch 0x{stray.hex()}" in line


def test_receipts_pending_too_long_are_listed(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    orders(client, keys, world, 2)
    assert audit_db(settings, w3, deployment).exit_code == 0  # young enough
    result = audit_db(settings, w3, deployment, "--pending-after", "0")
    assert result.exit_code == 1
    assert len(fail_lines(result, "pending-age")) == 2
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        pending = session.exec(select(Receipt).where(col(Receipt.status) == "pending")).all()
    engine.dispose()
    assert len(pending) == 2


def test_a_bad_database_url_exits_2(settings: Settings, w3: Web3, deployment: Deployment) -> None:
    bad = settings.model_copy(update={"database_url": "mysql://nope"})
    assert audit_db(bad, w3, deployment).exit_code == 2
    missing = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:9/x"})
    assert audit_db(missing, w3, deployment).exit_code == 2
