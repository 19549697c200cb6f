"""The platform lies in its own database, and ``liveproof audit db`` (and the proof route)
catch it.

Every test starts from an honest database whose receipts the committer put on the devnet,
stages one lie by writing the rows directly (as an operator with the database would), and
asserts that ``audit db`` exits 1 naming exactly the checks that catch it. Where the lie
reaches what a shopper is served, ``GET /v1/receipts/{code}/proof`` answers RFC 9457
``ledger-inconsistent`` (500) naming the inconsistency, with no traceback in the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from web3 import Web3

from api.bundles import leaf_of
from api.committer import Committer
from api.config import Settings
from api.db import make_engine
from api.models import Batch, Receipt
from api.receipt_codes import encode
from api.seed import seed_catalogue
from chain.deploy import Deployment
from chain.errors import VerificationError
from chain.merkle import StandardMerkleTree
from chain.proof_bundle import ProofBundle, verify_bundle
from chain.receipts import LEAF_TYPES
from scripts.audit_db import audit_db as run_audit_db
from tests.api import conftest as api_fixtures
from tests.api.conftest import Keys, World
from tests.api.test_audit_db import audit_db, fake_batch, random_root
from tests.api.test_ingest import assert_problem
from tests.api.test_orders import open_room_and_session, order
from tests.conftest import Accounts
from tests.redteam.conftest import assert_caught, assert_clean

DAY = 86_400

# tests/api/conftest.py serves only tests/api: its fixtures are brought here by name.
sqlite_template = api_fixtures.sqlite_template
pg_database = api_fixtures.pg_database
database_url = api_fixtures.database_url
settings = api_fixtures.settings
keys = api_fixtures.keys
client = api_fixtures.client
committer = api_fixtures.committer


@pytest.fixture
def shop(settings: Settings, w3: Web3, deployment: Deployment, accounts: Accounts) -> World:
    """A brand with one product and a registered anchor, on chain and in the database."""
    return seed_catalogue(
        settings.database_url, w3, deployment,
        registrar=accounts.relayer, brand=accounts.brand, anchor=accounts.anchor,
    )  # fmt: skip


@dataclass
class Shop:
    """The honest state: receipts placed through the API, committed by the committer."""

    client: TestClient
    keys: Keys
    world: World
    committer: Committer
    settings: Settings
    placed: int = 0

    def place(self, n: int, **extra: Any) -> list[str]:
        """Place ``n`` orders; returns their receipt ids."""
        if self.placed == 0:
            open_room_and_session(self.client, self.keys, self.world)
        ids = []
        for _ in range(n):
            self.placed += 1
            r = self.client.post(
                "/v1/orders", json=order(self.world, **extra),
                headers={**self.keys.ingest, "Idempotency-Key": f"order-{self.placed}"},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            ids.append(r.json()["receipt_id"])
        return ids

    def commit(self, n: int, **extra: Any) -> list[str]:
        """Place ``n`` orders and commit them in one batch."""
        ids = self.place(n, **extra)
        self.committer.run_once()
        return ids

    def proof(self, receipt_id: str) -> Any:
        """``GET /v1/receipts/{code}/proof`` for a receipt id."""
        return self.client.get(f"/v1/receipts/{encode(bytes.fromhex(receipt_id[2:]))}/proof")


@pytest.fixture
def honest(
    client: TestClient, keys: Keys, shop: World, committer: Committer, settings: Settings
) -> Shop:
    """The honest platform."""
    return Shop(client, keys, shop, committer, settings)


@contextmanager
def database(settings: Settings) -> Iterator[Session]:
    """The platform's own write access to its database (committed on leaving)."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with Session(engine) as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


def receipt(session: Session, receipt_id: str) -> Receipt:
    """The receipt row of ``receipt_id``."""
    return session.exec(select(Receipt).where(col(Receipt.receipt_id) == receipt_id)).one()


def batch_of(session: Session, receipt_id: str) -> Batch:
    """The batch row of a committed receipt."""
    root = receipt(session, receipt_id).batch_root
    assert root is not None
    row = session.get(Batch, root)
    assert row is not None
    return row


def rehash(row: Receipt) -> None:
    """Make a row's stored leaf hash agree with its (altered) fields, as a careful liar would."""
    row.leaf_hash = "0x" + leaf_of(row).leaf_hash().hex()


def assert_inconsistent(response: Any, caplog: pytest.LogCaptureFixture, *named: str) -> None:
    """The proof route refused with ``ledger-inconsistent``, naming ``named``, and logged one
    line without a traceback."""
    body = assert_problem(response, 500, "ledger-inconsistent")
    for text in named:
        assert text in body["detail"], body
    records = [r for r in caplog.records if r.name == "liveproof.api"]
    assert any("ledger-inconsistent" in r.getMessage() for r in records), records
    assert all(r.exc_info is None for r in records), records


# ----------------------------------------------------------------------------- honest


def test_the_honest_database_is_clean_and_serves_proofs_that_verify(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    ids = honest.commit(3) + honest.commit(1, immediate=True)  # a batch, a receipt alone
    pending = honest.place(1)
    with database(settings) as session:
        assert batch_of(session, ids[-1]).single
    assert_clean(audit_db(settings, w3, deployment))
    for receipt_id in ids:
        r = honest.proof(receipt_id)
        assert r.status_code == 200, r.text
        checks = [c.item for c in verify_bundle(w3, ProofBundle.parse(r.json()))]
        assert checks[-1] == f"receipt {receipt_id}"
    assert_problem(honest.proof(pending[0]), 409, "receipt-pending")


# ----------------------------------------------------------------------------- statuses


def test_a_pending_receipt_marked_committed_with_no_batch(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    honest.commit(2)
    (lie,) = honest.place(1)
    with database(settings) as session:
        receipt(session, lie).status = "committed"
    assert_caught(audit_db(settings, w3, deployment), "committed-in-batch")


def test_a_receipt_committed_under_a_root_the_chain_lacks(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """The platform invents a committed single-receipt batch for a pending receipt, copying a
    real batch's transaction, block, chain and ledger so that it looks committed."""
    (real,) = honest.commit(1)
    (lie,) = honest.place(1)
    with database(settings) as session:
        row, model = receipt(session, lie), batch_of(session, real)
        session.add(
            Batch(
                root=row.leaf_hash, count=1, single=True, status="committed",
                tx_hash=model.tx_hash, block_number=model.block_number, sealed_at=time.time(),
                committed_at=time.time(), chain_id=model.chain_id, ledger=model.ledger,
                tree=orjson.dumps([row.leaf_hash]).decode(),
            )
        )  # fmt: skip
        row.status, row.batch_root, row.committed_at = "committed", row.leaf_hash, time.time()
    (line,) = assert_caught(audit_db(settings, w3, deployment), "committed-on-chain")
    assert line.endswith("committed on chain vs not committed")


def test_a_receipt_status_outside_the_schema(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """A status the code does not know ("shipped") is served as is and skipped by every
    check that looks for "pending" or "committed"."""
    honest.commit(1)
    (lie,) = honest.place(1)
    with database(settings) as session:
        receipt(session, lie).status = "shipped"
    (line,) = assert_caught(audit_db(settings, w3, deployment), "status-schema")
    assert line == f"FAIL: status-schema receipt {lie}: pending or committed vs 'shipped'"


def test_a_batch_status_outside_the_schema(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """A batch spelled "COMMITTED" is neither sealed nor committed to the code."""
    honest.commit(1)
    root = random_root()
    with database(settings) as session:
        session.add(fake_batch(root, "COMMITTED"))
    (line,) = assert_caught(audit_db(settings, w3, deployment), "status-schema")
    assert line == f"FAIL: status-schema batch {root}: sealed or committed vs 'COMMITTED'"


# ----------------------------------------------------------------------------- timestamps


def test_an_order_dated_in_the_future(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """A pending sale dated tomorrow (its leaf hash made to agree), e.g. to fill a session
    that has not happened yet."""
    honest.commit(1)
    (lie,) = honest.place(1)
    with database(settings) as session:
        row = receipt(session, lie)
        row.ordered_at += DAY
        rehash(row)
    (line,) = assert_caught(audit_db(settings, w3, deployment), "future-time")
    assert f"FAIL: future-time receipt {lie}: no time after " in line
    assert "vs ordered_at " in line


def test_a_commit_time_in_the_future(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """The database's committed_at is not in the leaf: the chain cannot contradict it, the
    clock can."""
    (lie, _) = honest.commit(2)
    with database(settings) as session:
        receipt(session, lie).committed_at = time.time() + DAY
        batch_of(session, lie).committed_at = time.time() + DAY
    lines = assert_caught(audit_db(settings, w3, deployment), "future-time")
    assert len(lines) == 2
    assert any(f"receipt {lie}" in line and "committed_at" in line for line in lines)


def test_an_order_dated_after_the_block_that_committed_it(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """A sale committed with an orderedAt 20 minutes after its commit block: on the day of
    the audit it is no longer in the future, but the chain's commit time contradicts it."""
    (lie,) = honest.commit(1, ordered_at=int(time.time()) + 1_200)
    report = run_audit_db(w3, deployment, settings.database_url, now=time.time() + DAY)
    assert {f.check for f in report.findings} == {"before-commit"}, report.findings
    (finding,) = report.findings
    assert finding.subject == f"receipt {lie}"
    assert finding.found.startswith("ordered ")


# ----------------------------------------------------------------------------- leaves and rows


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("unit_price", 1, "its fields hash to"),
        ("quantity", 0, "its fields are not a receipt leaf v1"),
        ("kind", 7, "its fields are not a receipt leaf v1"),
    ],
)
def test_a_receipt_altered_after_commit(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
    column: str,
    value: int,
    named: str,
) -> None:
    """A committed sale's amount (or kind) changed in the database: the chain's root no longer
    rebuilds, and the proof route will not serve a bundle that cannot verify."""
    lie, _, _ = honest.commit(3)
    with database(settings) as session:
        setattr(receipt(session, lie), column, value)
    (line,) = assert_caught(audit_db(settings, w3, deployment), "committed-on-chain")
    assert "vs other values" in line or "receipt leaf v1 values" in line
    assert_inconsistent(honest.proof(lie), caplog, f"receipt {lie}", named)


def test_a_consistent_rewrite_of_a_committed_batch(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """The careful liar rewrites a sale, its leaf hash, the tree and the root: the database is
    consistent again and serves bundles, but its root is on no chain, and the real root is no
    longer accounted for. The shopper's own check fails too."""
    ids = honest.commit(3)
    with database(settings) as session:
        old = batch_of(session, ids[0])
        real_root = old.root
        rows = [receipt(session, i) for i in ids]
        rows[0].unit_price += 5_000
        rehash(rows[0])
        tree = StandardMerkleTree.of([leaf_of(r).values() for r in rows], LEAF_TYPES)
        data = old.model_dump()
        session.delete(old)
        session.flush()
        tree_json = orjson.dumps(["0x" + n.hex() for n in tree.tree]).decode()
        session.add(Batch(**{**data, "root": tree.root_hex, "tree": tree_json}))
        for r in rows:
            r.batch_root = tree.root_hex
    lines = assert_caught(
        audit_db(settings, w3, deployment), "committed-on-chain", "chain-batch-known"
    )
    assert any(real_root in line for line in lines)
    served = honest.proof(ids[0])
    assert served.status_code == 200, served.text
    with pytest.raises(VerificationError, match="root on the ledger"):
        list(verify_bundle(w3, ProofBundle.parse(served.json())))


def test_a_receipt_row_deleted_from_a_committed_batch(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refunded-then-forgotten sale, say: the batch's rows no longer rebuild its root."""
    ids = honest.commit(3)
    with database(settings) as session:
        session.delete(receipt(session, ids[2]))
    (line,) = assert_caught(audit_db(settings, w3, deployment), "committed-on-chain")
    assert line.endswith("3 receipts (the chain's count) vs 2 in the database")
    assert_inconsistent(honest.proof(ids[0]), caplog, "2 receipt rows", "3 leaves")


def test_an_extra_row_slipped_into_a_committed_batch(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A later sale filed under an already committed batch, as if it had been proven then."""
    ids = honest.commit(2)
    (lie,) = honest.place(1)
    with database(settings) as session:
        row, batch = receipt(session, lie), batch_of(session, ids[0])
        row.status, row.batch_root, row.committed_at = "committed", batch.root, time.time()
    (line,) = assert_caught(audit_db(settings, w3, deployment), "committed-on-chain")
    assert line.endswith("2 receipts (the chain's count) vs 3 in the database")
    assert_inconsistent(honest.proof(lie), caplog, f"receipt {lie}", "not in this tree")
    assert_inconsistent(honest.proof(ids[0]), caplog, "3 receipt rows", "2 leaves")


def test_a_tampered_stored_tree(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rows are honest but the stored tree proofs are read from is not: one internal
    node is replaced, so the proofs that pass through it are served wrong."""
    ids = honest.commit(3)
    with database(settings) as session:
        batch = batch_of(session, ids[0])
        nodes = orjson.loads(batch.tree)
        nodes[1] = random_root()
        batch.tree = orjson.dumps(nodes).decode()
        victim = next(r for r in ids if receipt(session, r).leaf_hash == nodes[2])
    (line,) = assert_caught(audit_db(settings, w3, deployment), "batch-tree")
    # The root no longer hashes its two children (one of them is the forged node).
    assert line.endswith("node 0 hashing its children vs another value")
    assert_inconsistent(honest.proof(victim), caplog, f"proof of receipt {victim} folds to")


# ----------------------------------------------------------------------------- the batch row


def test_a_batch_count_that_differs_from_the_chain(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API lists the batch with one sale more than the chain committed."""
    ids = honest.commit(3)
    with database(settings) as session:
        batch_of(session, ids[0]).count = 4
    (line,) = assert_caught(audit_db(settings, w3, deployment), "batch-count")
    assert line.endswith("count 3 (the chain's) vs 4")
    assert_inconsistent(honest.proof(ids[0]), caplog, "(count 4)")


@pytest.mark.parametrize("also_block", [False, True], ids=["tx", "tx-and-block"])
def test_a_batch_naming_another_commit(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment, also_block: bool
) -> None:
    """The batch row (and every bundle of its receipts) names the commit transaction of
    another batch, with or without that batch's block."""
    first, second = honest.commit(2)[0], honest.commit(1)[0]
    with database(settings) as session:
        lie, other = batch_of(session, first), batch_of(session, second)
        lie.tx_hash, other_tx = other.tx_hash, other.tx_hash
        if also_block:
            lie.block_number = other.block_number
    (line,) = assert_caught(audit_db(settings, w3, deployment), "commit-event")
    assert ("vs block " if also_block else f"vs tx {other_tx}") in line


def test_a_batch_block_number_off_by_one(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    ids = honest.commit(2)
    with database(settings) as session:
        batch = batch_of(session, ids[0])
        assert batch.block_number is not None
        batch.block_number -= 1
    assert_caught(audit_db(settings, w3, deployment), "commit-event")


@pytest.mark.parametrize(
    "change",
    [{"ledger": "0x" + "5e" * 20}, {"chain_id": 1}],
    ids=["shadow-ledger", "another-chain"],
)
def test_a_batch_naming_another_ledger_or_chain(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    change: dict[str, Any],
) -> None:
    """Bundles of the batch's receipts would send shoppers to a ledger (or chain) of the
    platform's choosing, where it may have committed anything."""
    ids = honest.commit(2)
    with database(settings) as session:
        batch = batch_of(session, ids[0])
        for name, value in change.items():
            setattr(batch, name, value)
    (line,) = assert_caught(audit_db(settings, w3, deployment), "bundle-ledger")
    assert f"ledger {deployment.address('SaleLedger')}" in line
    assert honest.proof(ids[0]).json()["ledger" if "ledger" in change else "chainId"] == next(
        iter(change.values())
    )


def test_a_receipt_whose_leaf_is_not_in_its_batch_is_not_a_crash_on_any_route(
    honest: Shop,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The row's amount and stored leaf hash are rewritten together after the commit, so the
    leaf is in no committed tree: the receipt route, like the proof route, names the
    inconsistency (500 ledger-inconsistent, one log line, no traceback) instead of failing
    with an internal error."""
    lie, _, _ = honest.commit(3)
    with database(settings) as session:
        row = receipt(session, lie)
        row.unit_price += 1
        rehash(row)
    assert_caught(audit_db(settings, w3, deployment), "committed-on-chain")
    code = encode(bytes.fromhex(lie[2:]))
    assert_inconsistent(honest.client.get(f"/v1/receipts/{code}"), caplog, f"receipt {lie}")
    assert_inconsistent(honest.proof(lie), caplog, f"receipt {lie}")


def test_orders_accepted_and_never_committed(
    honest: Shop, settings: Settings, w3: Web3, deployment: Deployment
) -> None:
    """The platform takes the orders of a session it would rather not show and never lets
    the committer seal them: they stay pending forever."""
    honest.commit(2)
    withheld = honest.place(2)
    lines = assert_caught(audit_db(settings, w3, deployment, "--pending-after", "0"), "pending-age")
    assert {line.split()[3].rstrip(":") for line in lines} == set(withheld)
