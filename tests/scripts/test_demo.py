"""``liveproof demo`` against a throw-away stack (anvil, contracts, database, ``liveproof serve``),
and ``liveproof up --once`` against a throw-away anvil, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.db import make_engine
from api.models import Receipt
from chain.connect import connect
from chain.deploy import deploy, load_deployment
from chain.devnet import free_port, throwaway_anvil
from chain.keys import ANVIL_DEV_KEYS, account_from_key
from chain.receipts import ReceiptKind, ReceiptLeaf
from scripts.bench.harness import Stack, running_stack
from scripts.local_run import database_mismatch, port_in_use

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "LIVEPROOF_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]
RECEIPT_URL = re.compile(r"(http://\S+/v1/receipts/lp1[a-z2-7]+)(?=\s|$)", re.MULTILINE)
PROOF_URL = re.compile(r"(http://\S+/v1/receipts/lp1[a-z2-7]+/proof)")
SESSION_URL = re.compile(r"(http://\S+/v1/sessions/\S+)")
ENDORSEMENT_URL = re.compile(r"(http://\S+/v1/endorsements/0x[0-9a-f]{64})")
PAGE_URL = re.compile(r"(http://\S+/(?:r|01|a)/\S+)")
BATCH_URL = re.compile(r"(http://\S+/v1/batches/0x[0-9a-f]{64})")


@contextmanager
def scratch_database(backend: str, tmp: Path) -> Iterator[str]:
    """An empty database: a SQLite file under ``tmp``, or a PostgreSQL database dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'liveproof.db'}"
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"{PG_ENV} not set: PostgreSQL tests skipped")
    name = f"liveproof_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``liveproof ARGS`` with ``env`` on top of this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def stack_env(stack: Stack) -> dict[str, str]:
    """The service's LIVEPROOF_* settings, which the demo shares."""
    return {
        "LIVEPROOF_DATABASE_URL": stack.database_url,
        "LIVEPROOF_RPC_URL": stack.devnet.rpc_url,
        "LIVEPROOF_DEPLOYMENTS_DIR": str(stack.workdir),
    }


@dataclass(frozen=True)
class DemoRun:
    """A stack and what one demo run printed."""

    stack: Stack
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module", params=BACKENDS)
def demo_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoRun]:
    """One demo run (200 orders) into a fresh stack per database backend."""
    tmp = tmp_path_factory.mktemp(f"demo-{request.param}")
    with (
        scratch_database(request.param, tmp) as database_url,
        running_stack(workers=2, batch_interval=0.5, database_url=database_url) as stack,
    ):
        result = cli("demo", "--api", stack.base_url, "--orders", "200", env=stack_env(stack))
        yield DemoRun(stack, result)


def test_demo_exits_0_and_every_printed_receipt_is_committed(demo_run: DemoRun) -> None:
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    urls = RECEIPT_URL.findall(demo_run.result.stdout)
    assert len(urls) >= 4
    kinds = set()
    for url in urls:
        receipt = httpx.get(url).json()
        assert receipt["status"] == "committed", url
        assert receipt["proof"] is not None
        kinds.add(receipt["kind"])
    assert kinds == {"sale", "refund"}
    for url in BATCH_URL.findall(demo_run.result.stdout):
        manifest = httpx.get(url).json()
        assert manifest["status"] == "committed"
        assert manifest["count"] == len(manifest["leaves"])
    # The stack's own seeded catalogue did not get in the demo's way.
    products = httpx.get(f"{demo_run.stack.base_url}/v1/products").json()
    assert demo_run.stack.catalogue.gtin in {p["gtin"] for p in products}


def test_every_printed_page_opens(demo_run: DemoRun) -> None:
    pages = PAGE_URL.findall(demo_run.result.stdout)
    kinds = {re.sub(r"^http://[^/]+/(\w+)/.*$", r"\1", url) for url in pages}
    assert kinds == {"r", "01", "a"}
    for url in pages:
        page = httpx.get(url)
        assert page.status_code == 200, url
        assert page.headers["content-type"].startswith("text/html")


def test_every_demo_receipt_is_committed_and_refunds_exist(demo_run: DemoRun) -> None:
    engine = make_engine(demo_run.stack.database_url, pool_size=1)
    with Session(engine) as session:
        by_kind = dict(
            session.exec(select(Receipt.kind, func.count()).group_by(col(Receipt.kind))).all()
        )
        pending = session.exec(select(func.count()).where(col(Receipt.status) != "committed")).one()
    engine.dispose()
    assert by_kind[ReceiptKind.SALE] == 200
    assert by_kind[ReceiptKind.REFUND] > 0
    assert pending == 0


def test_printed_proof_bundle_verifies_on_chain(demo_run: DemoRun) -> None:
    stack = demo_run.stack
    w3 = connect(stack.devnet.rpc_url)
    ledger = load_deployment(int(w3.eth.chain_id), stack.workdir).ledger(w3)
    for url in PROOF_URL.findall(demo_run.result.stdout):
        bundle = httpx.get(url).json()
        assert bundle["format"] == "liveproof-receipt-proof/1"
        assert bundle["chainId"] == w3.eth.chain_id
        assert bundle["ledger"].lower() == ledger.address.lower()
        leaf = ReceiptLeaf.from_json(bundle["leaf"]).leaf_hash()
        proof = [bytes.fromhex(p[2:]) for p in bundle["proof"]]
        assert ledger.verify_receipt(bytes.fromhex(bundle["root"][2:]), leaf, proof), url
        # A leaf with one value changed does not verify against the same root.
        forged = {**bundle["leaf"], "quantity": int(bundle["leaf"]["quantity"]) + 1}
        forged_leaf = ReceiptLeaf.from_json(forged).leaf_hash()
        assert not ledger.verify_receipt(bytes.fromhex(bundle["root"][2:]), forged_leaf, proof)


def test_sessions_closed_with_the_net_units_actually_sold(demo_run: DemoRun) -> None:
    urls = SESSION_URL.findall(demo_run.result.stdout)
    assert len(urls) == 2
    engine = make_engine(demo_run.stack.database_url, pool_size=1)
    for url in urls:
        live = httpx.get(url).json()
        assert live["closed_at"] is not None
        assert live["close_tx"] is not None
        assert live["recording_hash"] is not None
        with Session(engine) as session:
            units = dict(
                session.exec(
                    select(Receipt.kind, func.sum(col(Receipt.quantity)))
                    .where(col(Receipt.session_id) == live["session_id"])
                    .group_by(col(Receipt.kind))
                ).all()
            )
        net = units[ReceiptKind.SALE] - units.get(ReceiptKind.REFUND, 0)
        assert live["displayed_sales"] == net
    engine.dispose()


def test_one_sponsored_endorsement_and_prices_mostly_as_promised(demo_run: DemoRun) -> None:
    endorsements = [httpx.get(u).json() for u in ENDORSEMENT_URL.findall(demo_run.result.stdout)]
    assert len(endorsements) == 2
    sponsored = [e for e in endorsements if e["sponsored"]]
    assert len(sponsored) == 1
    assert sponsored[0]["commission_bps"] > 0
    assert all(e["unit_price"] > 0 and e["currency"] == "CNY" for e in endorsements)
    assert {e["anchor"] for e in endorsements} == {
        account_from_key(ANVIL_DEV_KEYS[i]).address for i in (7, 8)
    }
    engine = make_engine(demo_run.stack.database_url, pool_size=1)
    with Session(engine) as session:
        for endorsement in endorsements:
            prices = session.exec(
                select(Receipt.unit_price).where(
                    col(Receipt.endorsement_id) == endorsement["endorsement_id"],
                    col(Receipt.kind) == ReceiptKind.SALE,
                )
            ).all()
            promised = endorsement["unit_price"]
            assert prices
            assert all(p <= promised for p in prices)
            assert sum(p == promised for p in prices) > 0.8 * len(prices)
    engine.dispose()


def test_second_run_reuses_the_catalogue_in_a_fresh_room(demo_run: DemoRun) -> None:
    again = cli(
        "demo", "--api", demo_run.stack.base_url, "--orders", "20", "--no-immediate",
        env=stack_env(demo_run.stack),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "(already registered)" in again.stdout
    assert "westlake-longjing-live-2" in again.stdout
    for url in RECEIPT_URL.findall(again.stdout):
        assert httpx.get(url).json()["status"] == "committed"


def test_demo_refuses_a_chain_that_is_not_a_local_devnet(tmp_path: Path) -> None:
    with throwaway_anvil(chain_id=11_155_111) as devnet:
        result = cli(
            "demo", "--api", "http://127.0.0.1:9",
            env={
                "LIVEPROOF_RPC_URL": devnet.rpc_url,
                "LIVEPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            },
        )  # fmt: skip
    assert result.returncode == 2
    assert "refusing to run the demo on chain 11155111" in result.stderr


def test_demo_without_a_service_exits_2(tmp_path: Path) -> None:
    with throwaway_anvil() as devnet:
        w3 = connect(devnet.rpc_url)
        deploy(w3, account_from_key(ANVIL_DEV_KEYS[0]), directory=tmp_path)
        result = cli(
            "demo", "--api", f"http://127.0.0.1:{free_port()}",
            env={
                "LIVEPROOF_RPC_URL": devnet.rpc_url,
                "LIVEPROOF_DEPLOYMENTS_DIR": str(tmp_path),
                "LIVEPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            },
        )  # fmt: skip
    assert result.returncode == 2
    assert "no LiveProof API answers" in result.stderr


# ------------------------------------------------------------------------- liveproof up


@pytest.mark.parametrize("backend", BACKENDS)
def test_up_once_deploys_serves_seeds_then_skips_the_demo(backend: str, tmp_path: Path) -> None:
    with scratch_database(backend, tmp_path) as database_url, throwaway_anvil() as devnet:
        port = free_port()
        env = {"LIVEPROOF_DATABASE_URL": database_url, "LIVEPROOF_DEPLOYMENTS_DIR": str(tmp_path)}
        args = (
            "up", "--once", "--rpc", devnet.rpc_url, "--port", str(port),
            "--demo-orders", "20", "--log", str(tmp_path / "api.log"),
        )  # fmt: skip
        first = cli(*args, env=env)
        assert first.returncode == 0, first.stderr + first.stdout
        assert "contracts deployed" in first.stdout
        assert f"http://127.0.0.1:{port}/docs" in first.stdout
        assert "LiveProof is up." in first.stdout
        assert len(RECEIPT_URL.findall(first.stdout)) >= 4
        assert f"http://127.0.0.1:{port}/r/lp1" in first.stdout
        # --once stops the server it started.
        assert not port_in_use("127.0.0.1", port)

        second = cli(*args, env=env)
        assert second.returncode == 0, second.stderr + second.stdout
        assert "contracts already deployed" in second.stdout
        assert "demo      skipped" in second.stdout
        assert RECEIPT_URL.findall(second.stdout)

        w3 = connect(devnet.rpc_url)
        deployment = load_deployment(int(w3.eth.chain_id), tmp_path)
        assert database_mismatch(database_url, w3, deployment) is None
        # Against a devnet started afresh (same addresses: same deployer, same nonces), the
        # database's records are not on the chain.
        with throwaway_anvil() as fresh:
            w3 = connect(fresh.rpc_url)
            deployer = account_from_key(ANVIL_DEV_KEYS[0])
            other, _ = deploy(w3, deployer, directory=tmp_path / "fresh", write=False)
            assert other.address("SaleLedger") == deployment.address("SaleLedger")
            assert "unknown to the chain" in str(database_mismatch(database_url, w3, other))


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    with throwaway_anvil() as devnet:
        result = cli(
            "up", "--once", "--rpc", devnet.rpc_url, "--port", str(devnet.port),
            env={
                "LIVEPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "LIVEPROOF_DEPLOYMENTS_DIR": str(tmp_path),
            },
        )  # fmt: skip
    assert result.returncode == 2
    assert f"port {devnet.port} on 127.0.0.1 is in use" in result.stderr


def test_the_demo_passes_every_audit(demo_run: DemoRun, tmp_path: Path) -> None:
    """An auditor with only the RPC URL, the deployment file and the public manifests (read
    from the API) finds the demo clean; so does the database reconciliation."""
    stack = demo_run.stack
    w3 = connect(stack.devnet.rpc_url)
    deployment_file = stack.workdir / f"{w3.eth.chain_id}.json"
    report = tmp_path / "chain.json"
    chain = cli(
        "audit", "chain", "--rpc", stack.devnet.rpc_url, "--deployment", str(deployment_file),
        "--api", stack.base_url, "--report", str(report), env={},
    )  # fmt: skip
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert "FAIL" not in chain.stdout
    stats = json.loads(report.read_text())["stats"]
    engine = make_engine(stack.database_url, pool_size=1)
    with Session(engine) as session:
        receipts = session.exec(select(func.count()).select_from(Receipt)).one()
    engine.dispose()
    assert stats["receipts"] == receipts
    db = cli(
        "audit", "db", "--rpc", stack.devnet.rpc_url, "--deployment", str(deployment_file),
        "--database-url", stack.database_url, env={},
    )  # fmt: skip
    assert db.returncode == 0, db.stdout + db.stderr
