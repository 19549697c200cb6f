"""``liveproof audit db`` reconciles the platform database with the chain (SQLite and
PostgreSQL): clean after the committer ran; a receipt altered in the database, a batch the
database claims but the chain lacks, a receipt marked committed outside any committed batch, a
batch on chain the database does not know, and receipts pending too long are each caught with
exit 1 and a FAIL line. An unusable database, RPC or cursor exits 2 and writes nothing. With
``--cursor`` a later run scans only new blocks and still checks every root found before."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, delete, select
from typer.testing import CliRunner, Result
from web3 import Web3

from api.committer import Committer
from api.config import Settings
from api.db import make_engine
from api.models import Batch, Receipt
from chain.clients.base import relayer_for
from chain.deploy import Deployment, deploy, deployment_path
from scripts.audit_db import DB_CHECKS
from scripts.audit_db import audit_db as run_audit_db
from scripts.cli import app
from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order
from tests.conftest import Accounts

runner = CliRunner()


def cli(deployment_file: Path, rpc: str, database_url: str, *extra: str) -> Result:
    return runner.invoke(
        app,
        ["audit", "db", "--rpc", rpc, "--deployment", str(deployment_file),
         "--database-url", database_url, *extra],
    )  # fmt: skip


def audit_db(settings: Settings, w3: Web3, deployment: Deployment, *extra: str) -> Result:
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    assert settings.deployments_dir is not None
    dep = deployment_path(deployment.chain_id, settings.deployments_dir)
    return cli(dep, rpc, settings.database_url, *extra)


def orders(client: TestClient, keys: Keys, world: World, n: int, *, first: int = 0) -> None:
    if first == 0:
        open_room_and_session(client, keys, world)
    for i in range(first, first + n):
        r = client.post(
            "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": f"k{i}"}
        )
        assert r.status_code == 201, r.text


def fail_lines(result: Result, check: str) -> list[str]:
    return [x for x in result.output.splitlines() if x.startswith(f"FAIL: {check} ")]


def read_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def fake_batch(root: str, status: str) -> Batch:
    return Batch(
        root=root,
        count=1,
        status=status,
        sealed_at=0.0,
        tree="[]",
        tx_hash="0x" + "00" * 32,
        block_number=1,
    )


def random_root() -> str:
    return "0x" + os.urandom(32).hex()


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
    lines = result.output.splitlines()
    oks = [line for line in lines if line.startswith("OK: ")]
    assert [line for line in oks if line.split()[1] in {
        "deployment-origin:", "committed-on-chain:", "committed-in-batch:",
        "chain-batch-known:", "pending-age:",
    }] == [
        "OK: deployment-origin: 3 checked",
        "OK: committed-on-chain: 1 checked",
        "OK: committed-in-batch: 5 checked",
        "OK: chain-batch-known: 1 checked",
        "OK: pending-age: 0 checked",
    ], result.output  # fmt: skip
    assert len(oks) == len(DB_CHECKS)
    end = w3.eth.block_number
    assert lines[len(oks)] == (
        "1 committed batches (5 receipts) in the database, 1 on chain "
        f"(blocks {deployment.start_block}-{end} scanned), 0 pending"
    )
    data = read_report(report)
    assert data["format"] == "liveproof-audit-db/1"
    assert data["ok"] is True
    assert data["stats"]["from_block"] == deployment.start_block
    assert data["stats"]["to_block"] == end


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
        real_root = batch.root
        fake = fake_batch(random_root(), "committed")
        session.add(fake)
        session.commit()
        fake_root = fake.root
    engine.dispose()
    result = audit_db(settings, w3, deployment)
    assert result.exit_code == 1, result.output
    assert sorted(fail_lines(result, "committed-on-chain")) == sorted(
        [
            f"FAIL: committed-on-chain batch {real_root}: stored leaf hashes vs other values",
            f"FAIL: committed-on-chain batch {fake_root}: committed on chain vs not committed",
        ]
    ), result.output
    assert "OK: committed-in-batch: 3 checked" in result.output


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
    ledger = deployment.ledger(w3, relayer_for(w3, accounts.relayer))
    stray, sealed = os.urandom(32), os.urandom(32)
    stray_block = ledger.commit_batch(stray, 2).block_number
    sealed_block = ledger.commit_batch(sealed, 1).block_number
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        # In the database, but not (yet) marked committed: caught too, and said so.
        session.add(fake_batch("0x" + sealed.hex(), "sealed"))
        session.commit()
    engine.dispose()
    result = audit_db(settings, w3, deployment)
    assert result.exit_code == 1, result.output
    assert fail_lines(result, "chain-batch-known") == [
        f"FAIL: chain-batch-known batch 0x{stray.hex()} (block {stray_block}): "
        "a committed batch in the database vs unknown",
        f"FAIL: chain-batch-known batch 0x{sealed.hex()} (block {sealed_block}): "
        "a committed batch in the database vs marked sealed",
    ], result.output
    assert "OK: committed-on-chain: 1 checked" in result.output


def test_receipts_marked_committed_outside_a_committed_batch_are_caught(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    orders(client, keys, world, 4)
    committer.run_once()
    orders(client, keys, world, 3, first=4)  # pending: the database then calls them committed
    sealed_root, unknown_root = random_root(), random_root()
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        session.add(fake_batch(sealed_root, "sealed"))
        pending = session.exec(
            select(Receipt).where(col(Receipt.status) == "pending").order_by(col(Receipt.id))
        ).all()
        assert len(pending) == 3
        for receipt, root in zip(pending, (None, sealed_root, unknown_root), strict=True):
            receipt.status = "committed"
            receipt.batch_root = root
            session.add(receipt)
        ids = [r.receipt_id for r in pending]
        session.commit()
    engine.dispose()
    report = tmp_path / "db.json"
    result = audit_db(settings, w3, deployment, "--report", str(report))
    assert result.exit_code == 1, result.output
    assert fail_lines(result, "committed-in-batch") == [
        f"FAIL: committed-in-batch receipt {ids[0]}: in a committed batch vs no batch",
        f"FAIL: committed-in-batch receipt {ids[1]}: in a committed batch vs "
        f"batch {sealed_root}, marked sealed",
        f"FAIL: committed-in-batch receipt {ids[2]}: in a committed batch vs "
        f"batch {unknown_root}, unknown to the database",
    ], result.output
    assert "OK: committed-on-chain: 1 checked" in result.output
    assert "OK: chain-batch-known: 1 checked" in result.output
    check = read_report(report)["checks"]["committed-in-batch"]
    assert (check["checked"], check["failed"]) == (7, 3)


def test_receipts_pending_too_long_are_listed(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    orders(client, keys, world, 2)
    young = audit_db(settings, w3, deployment)
    assert young.exit_code == 0, young.output
    assert "OK: pending-age: 2 checked" in young.output
    result = audit_db(settings, w3, deployment, "--pending-after", "0")
    assert result.exit_code == 1, result.output
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        pending = session.exec(select(Receipt).where(col(Receipt.status) == "pending")).all()
    engine.dispose()
    assert len(pending) == 2
    lines = fail_lines(result, "pending-age")
    assert len(lines) == 2, result.output
    shape = re.compile(
        r"FAIL: pending-age receipt (0x[0-9a-f]{64}): committed within 0 s vs "
        r"pending since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    )
    found = [shape.fullmatch(line) for line in lines]
    assert all(found), lines
    assert {m.group(1) for m in found if m} == {r.receipt_id for r in pending}


def test_progress_is_reported_for_the_ledger_scan_and_the_batches(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    orders(client, keys, world, 2)
    committer.run_once()
    calls: list[tuple[str, int, int]] = []
    report = run_audit_db(
        w3, deployment, settings.database_url, chunk_size=2,
        progress=lambda phase, done, total: calls.append((phase, done, total)),
    )  # fmt: skip
    assert report.ok, report.findings
    end = w3.eth.block_number
    ledger = [(done, total) for phase, done, total in calls if phase == "ledger"]
    assert len(ledger) == len(range(deployment.start_block, end + 1, 2))  # one per chunk
    assert ledger[-1] == (end, end)
    assert all(total == end for _, total in ledger)
    assert [(d, t) for phase, d, t in calls if phase == "database"] == [(0, 1), (1, 1)]
    assert {phase for phase, _, _ in calls} == {"ledger", "database"}


def test_a_cursor_scans_only_new_blocks_and_keeps_every_root(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    cursor, first, second = tmp_path / "db.cursor", tmp_path / "1.json", tmp_path / "2.json"
    orders(client, keys, world, 2)
    committer.run_once()
    result = audit_db(settings, w3, deployment, "--cursor", str(cursor), "--report", str(first))
    assert result.exit_code == 0, result.output
    run1 = read_report(first)["stats"]
    assert run1["from_block"] == deployment.start_block
    assert (run1["scanned_events"], run1["chain_batches"]) == (1, 1)
    saved = json.loads(cursor.read_text(encoding="utf-8"))
    assert saved["format"] == "liveproof-audit-db-cursor/1"
    assert saved["next_block"] == run1["to_block"] + 1
    (old_root,) = saved["roots"]

    orders(client, keys, world, 3, first=2)
    committer.run_once()
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:  # the platform forgets the first batch
        session.exec(delete(Batch).where(col(Batch.root) == old_root))
        session.commit()
    engine.dispose()
    result = audit_db(settings, w3, deployment, "--cursor", str(cursor), "--report", str(second))
    assert result.exit_code == 1, result.output
    run2 = read_report(second)["stats"]
    assert run2["from_block"] == run1["to_block"] + 1  # only the blocks after the first run
    assert run2["to_block"] == w3.eth.block_number
    assert (run2["scanned_events"], run2["chain_batches"]) == (1, 2)
    (line,) = fail_lines(result, "chain-batch-known")
    assert line == (
        f"FAIL: chain-batch-known batch {old_root} (block {saved['roots'][old_root]}): "
        "a committed batch in the database vs unknown"
    )
    assert len(fail_lines(result, "committed-in-batch")) == 2  # its receipts lost their batch
    assert "OK: committed-on-chain: 1 checked" in result.output
    assert len(json.loads(cursor.read_text(encoding="utf-8"))["roots"]) == 2


def test_a_cursor_of_another_deployment_or_a_reset_chain_is_refused(
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    tmp_path: Path,
) -> None:
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    other, _ = deploy(w3, accounts.admin, directory=tmp_path)
    assert other.address("SaleLedger") != deployment.address("SaleLedger")
    cursor = tmp_path / "other.cursor"
    other_file = deployment_path(other.chain_id, tmp_path)
    made = cli(other_file, rpc, settings.database_url, "--cursor", str(cursor))
    assert made.exit_code == 0, made.output
    before = cursor.read_bytes()
    result = audit_db(settings, w3, deployment, "--cursor", str(cursor))
    assert result.exit_code == 2, result.output
    assert "was written for another deployment" in result.output
    assert "OK:" not in result.output
    assert "FAIL:" not in result.output
    assert cursor.read_bytes() == before

    data = json.loads(before)
    data["next_block"] = w3.eth.block_number + 100
    cursor.write_text(json.dumps(data), encoding="utf-8")
    result = cli(other_file, rpc, settings.database_url, "--cursor", str(cursor))
    assert result.exit_code == 2, result.output
    assert "past the chain's latest block" in result.output

    data["next_block"], data["roots"] = 1, {"0xNOT-A-ROOT": 1}
    cursor.write_text(json.dumps(data), encoding="utf-8")
    result = cli(other_file, rpc, settings.database_url, "--cursor", str(cursor))
    assert result.exit_code == 2, result.output
    assert "is not a usable cursor file" in result.output


def test_a_missing_sqlite_database_exits_2_and_creates_nothing(
    w3: Web3, deployment: Deployment, deployments_dir: Path, tmp_path: Path
) -> None:
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = deployment_path(deployment.chain_id, deployments_dir)
    for path in (tmp_path / "absent.db", tmp_path / "missing" / "path.db"):
        result = cli(dep, rpc, f"sqlite:///{path}")
        assert result.exit_code == 2, result.output
        assert f"error: no SQLite database at {path}: the file does not exist" in result.output
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_bad_or_unreachable_database_exits_2(
    settings: Settings, w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    bad = settings.model_copy(update={"database_url": "mysql://nope"})
    result = audit_db(bad, w3, deployment)
    assert result.exit_code == 2
    assert "error: --database-url must be sqlite:///PATH or postgresql://" in result.output
    down = "postgresql://postgres:secret@127.0.0.1:9/x"
    result = audit_db(settings.model_copy(update={"database_url": down}), w3, deployment)
    assert result.exit_code == 2, result.output
    (line,) = result.output.splitlines()  # one line, no traceback
    assert line.startswith("error: cannot read the database postgresql://postgres:***@")
    assert "Connection refused" in line
    assert "secret" not in line
    empty = tmp_path / "not-liveproof.db"
    empty.write_bytes(b"")
    result = audit_db(
        settings.model_copy(update={"database_url": f"sqlite:///{empty}"}), w3, deployment
    )
    assert result.exit_code == 2, result.output
    assert "no such table" in result.output
    assert empty.read_bytes() == b""


def test_an_unreachable_rpc_exits_2(
    settings: Settings, w3: Web3, deployment: Deployment, deployments_dir: Path
) -> None:
    dep = deployment_path(deployment.chain_id, deployments_dir)
    result = cli(dep, "http://127.0.0.1:9", settings.database_url)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert "OK:" not in result.output
    assert "FAIL:" not in result.output
