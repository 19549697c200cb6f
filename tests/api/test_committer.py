"""The committer against the real anvil: batching, proofs, restarts at every crash point,
chain rollbacks, races with other senders, an unreachable chain, and confirmations."""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col
from web3 import Web3

from api.chain_gateway import ChainGateway, ChainLink
from api.committer import Committer
from api.config import Settings
from api.db import make_engine, writer
from api.models import Batch, Outbox, Receipt
from api.receipt_codes import encode as encode_code
from chain.clients import SaleLedgerClient
from chain.clients.base import relayer_for
from chain.clients.ledger import BatchState
from chain.contract_errors import BatchAlreadyCommitted, NotRecorder, ReceiptAlreadyRecorded
from chain.deploy import Deployment
from chain.errors import RpcUnavailableError
from chain.events import EventReader
from chain.receipts import ReceiptLeaf
from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order
from tests.conftest import Accounts

T = TypeVar("T")

#: How long a test waits for a committer thread to get somewhere before failing.
PATIENCE = 30.0


# ----------------------------------------------------------------------------- helpers


def wait_until(what: str, predicate: Callable[[], T | None], timeout: float = PATIENCE) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def post_orders(client: TestClient, keys: Keys, world: World, count: int, tag: str) -> None:
    """Accept ``count`` orders in one bulk request."""
    orders = [order(world, buyer_ref=f"{tag}-{i}") for i in range(count)]
    r = client.post(
        "/v1/orders/bulk",
        json={"orders": orders},
        headers={**keys.ingest, "Idempotency-Key": f"bulk-{tag}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["count"] == count


@dataclass(frozen=True)
class BatchRow:
    """A batches row, as the tests read it."""

    root: str
    count: int
    single: bool
    status: str
    tx_hash: str | None
    block_number: int | None


def batch_rows(engine: Engine) -> list[BatchRow]:
    """Every batch in the database, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                col(Batch.root),
                col(Batch.count),
                col(Batch.single),
                col(Batch.status),
                col(Batch.tx_hash),
                col(Batch.block_number),
            ).order_by(col(Batch.sealed_at))
        ).all()
    return [BatchRow(r[0], int(r[1]), bool(r[2]), r[3], r[4], r[5]) for r in rows]


def outbox_size(engine: Engine) -> int:
    """Receipts not sealed into a batch yet."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Outbox)).scalar_one())


def receipt_count(engine: Engine, status: str | None = None) -> int:
    """Receipts in the database (with ``status``, if given)."""
    query = select(func.count(col(Receipt.id)))
    if status is not None:
        query = query.where(col(Receipt.status) == status)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def commit_events(w3: Web3, deployment: Deployment, from_block: int) -> list[tuple[str, int]]:
    """(root, count) of every BatchCommitted and ReceiptRecorded event since ``from_block``."""
    reader = EventReader(w3, deployment, start_block=from_block)
    found = []
    for event in reader.events(names=["BatchCommitted", "ReceiptRecorded"]):
        if event.name == "BatchCommitted":
            found.append(("0x" + event.args["root"].hex(), int(event.args["count"])))
        else:
            found.append(("0x" + event.args["leaf"].hex(), 1))
    return found


def assert_all_committed(
    client: TestClient, engine: Engine, ledger: SaleLedgerClient
) -> list[BatchRow]:
    """Every receipt sits in exactly one committed batch whose root is on chain with the
    right count, and the proof bundle the API serves for it verifies on chain; the outbox
    is empty."""
    assert outbox_size(engine) == 0
    batches = batch_rows(engine)
    assert batches, "no batch at all"
    by_root = {b.root: b for b in batches}
    with engine.connect() as conn:
        receipts = conn.execute(
            select(
                col(Receipt.receipt_id),
                col(Receipt.batch_root),
                col(Receipt.status),
                col(Receipt.leaf_hash),
            )
        ).all()
    members: dict[str, int] = dict.fromkeys(by_root, 0)
    for receipt_id, root, status, leaf_hash in receipts:
        assert status == "committed", f"receipt {receipt_id} is {status}"
        assert root in members, f"receipt {receipt_id} names unknown batch {root}"
        members[root] += 1
        code = encode_code(bytes.fromhex(receipt_id[2:]))
        r = client.get(f"/v1/receipts/{code}/proof")
        assert r.status_code == 200, r.text
        bundle = r.json()
        batch = by_root[root]
        assert (bundle["root"], bundle["txHash"], bundle["blockNumber"]) == (
            root,
            batch.tx_hash,
            batch.block_number,
        )
        leaf = ReceiptLeaf.from_json(bundle["leaf"]).leaf_hash()
        assert "0x" + leaf.hex() == leaf_hash
        steps = [bytes.fromhex(p[2:]) for p in bundle["proof"]]
        assert ledger.verify_receipt(bytes.fromhex(root[2:]), leaf, steps), receipt_id
    # One receipt, one batch: each batch holds exactly as many receipts as it claims, so no
    # receipt can also be counted in another batch's root.
    assert sum(b.count for b in batches) == len(receipts)
    for b in batches:
        assert b.status == "committed"
        assert b.tx_hash is not None
        assert b.block_number is not None
        assert members[b.root] == b.count, f"batch {b.root}"
        on_chain = ledger.batch(bytes.fromhex(b.root[2:]))
        assert on_chain.count == b.count
        assert on_chain.block_number == b.block_number
    return batches


def nonce_of(w3: Web3, accounts: Accounts) -> int:
    """The recorder's (relayer's) transaction count: it grows with every send."""
    return int(w3.eth.get_transaction_count(accounts.relayer.address))


def closed_port_url() -> str:
    """An http URL on a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


MakeCommitter = Callable[..., Committer]


@pytest.fixture
def make_committer(settings: Settings) -> Iterator[MakeCommitter]:
    """Build fresh committers (each one is a restarted process) on the test database."""
    made: list[tuple[Committer, Engine]] = []

    def make(gateway: type[ChainGateway] = ChainGateway, **overrides: Any) -> Committer:
        own = settings.model_copy(update=overrides)
        engine = writer(make_engine(own.database_url, pool_size=2))
        result = Committer(
            engine,
            gateway(own, engine),
            batch_size=own.batch_size,
            interval=own.batch_interval,
        )
        made.append((result, engine))
        return result

    yield make
    for result, engine in made:
        result.stop()
        result.leader.release()
        engine.dispose()


@contextmanager
def running(committer: Committer) -> Iterator[threading.Thread]:
    """``run_forever`` in a thread, stopped and joined on exit."""
    thread = threading.Thread(target=committer.run_forever, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        committer.stop()
        thread.join(timeout=PATIENCE)
    assert not thread.is_alive(), "run_forever did not return after stop()"


@pytest.fixture
def recorder(w3: Web3, deployment: Deployment, accounts: Accounts) -> SaleLedgerClient:
    """The ledger, sending as the recorder (the API's relayer key) from outside the API."""
    return deployment.ledger(w3, relayer_for(w3, accounts.relayer))


def sealed_in_db(engine: Engine) -> list[BatchRow]:
    """Batches sealed but not committed."""
    return [b for b in batch_rows(engine) if b.status == "sealed"]


# ----------------------------------------------------------------------------- batching


def test_150_orders_become_three_batches_whose_proofs_verify_on_chain(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 100, "a")
    post_orders(client, keys, world, 50, "b")
    start, nonce = w3.eth.block_number, nonce_of(w3, accounts)

    result = committer.run_once()

    assert (result.sealed, result.committed, result.receipts) == (3, 3, 150)
    batches = assert_all_committed(client, committer.engine, deployment.ledger(w3))
    assert [b.count for b in batches] == [64, 64, 22]
    assert not any(b.single for b in batches)
    assert len({b.tx_hash for b in batches}) == 3
    # Exactly three transactions, each committing one of the roots once.
    assert nonce_of(w3, accounts) == nonce + 3
    assert sorted(commit_events(w3, deployment, start + 1)) == sorted(
        (b.root, b.count) for b in batches
    )
    manifest = client.get(f"/v1/batches/{batches[2].root}").json()
    assert len(manifest["leaves"]) == 22
    # A pass with nothing to do sends nothing.
    assert committer.run_once().committed == 0
    assert nonce_of(w3, accounts) == nonce + 3


def test_the_service_loop_leaves_orders_that_arrive_mid_pass_for_its_next_pass(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load orders keep arriving while a batch is committed. Sealing them at once would
    commit many small batches back to back; a pass of the service loop seals whole batches and
    at most one partial batch, and the rest waits for the next pass (an interval later)."""
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 100, "a")  # one full batch of 64 and 36 more
    real_commit = committer.commit_sealed
    arrivals = iter(["b", "c"])

    def commit_while_orders_arrive(link: ChainLink, root: str) -> int:
        tag = next(arrivals, None)
        if tag is not None:
            post_orders(client, keys, world, 10, tag)  # while this batch is being committed
        return real_commit(link, root)

    monkeypatch.setattr(committer, "commit_sealed", commit_while_orders_arrive)
    result = committer.run_once(drain=False)
    # 64; then the 36 left with the 10 that came during the first commit, as the one partial
    # batch; the 10 that came during the second commit are left for the next pass.
    assert (result.sealed, result.receipts) == (2, 110)
    assert [b.count for b in batch_rows(committer.engine)] == [64, 46]
    assert outbox_size(committer.engine) == 10
    # The next pass takes them; draining (tests, `committer --once`) takes everything.
    assert committer.run_once(drain=False).receipts == 10
    assert [b.count for b in batch_rows(committer.engine)] == [64, 46, 10]
    post_orders(client, keys, world, 70, "d")
    assert committer.run_once(drain=True).receipts == 70
    assert_all_committed(client, committer.engine, deployment.ledger(w3))


def test_immediate_receipt_is_recorded_alone(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 3, "a")
    r = client.post(
        "/v1/orders",
        json=order(world, immediate=True),
        headers={**keys.ingest, "Idempotency-Key": "now"},
    )
    assert r.status_code == 201, r.text
    start = w3.eth.block_number

    assert committer.run_once().receipts == 4

    batches = assert_all_committed(client, committer.engine, deployment.ledger(w3))
    # The immediate receipt goes first, alone, under its own leaf hash with an empty proof.
    assert [(b.count, b.single) for b in batches] == [(1, True), (3, False)]
    assert batches[0].root == r.json()["leaf_hash"]
    bundle = client.get(f"/v1/receipts/{r.json()['receipt_code']}/proof").json()
    assert bundle["proof"] == []
    assert commit_events(w3, deployment, start + 1) == [(b.root, b.count) for b in batches]


# ----------------------------------------------------------------------------- restarts


def test_restart_between_seal_and_send_sends_the_sealed_batch_once(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    make_committer: MakeCommitter,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 5, "a")
    root = committer.seal_batch()
    assert root is not None
    assert outbox_size(committer.engine) == 0
    assert [(b.root, b.status) for b in batch_rows(committer.engine)] == [(root, "sealed")]
    committer.leader.release()  # the process dies; its lock goes with it
    start, nonce = w3.eth.block_number, nonce_of(w3, accounts)

    restarted = make_committer()
    assert restarted.leader.try_acquire()
    result = restarted.run_once()

    assert (result.sealed, result.committed, result.receipts) == (0, 1, 0)
    assert nonce_of(w3, accounts) == nonce + 1
    assert commit_events(w3, deployment, start + 1) == [(root, 5)]
    [batch] = assert_all_committed(client, restarted.engine, deployment.ledger(w3))
    assert batch.root == root
    # Reconciliation happens once per leadership: a later pass has nothing to send.
    assert restarted.run_once().committed == 0
    assert nonce_of(w3, accounts) == nonce + 1


def test_restart_after_send_records_the_commit_without_sending_again(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    make_committer: MakeCommitter,
    recorder: SaleLedgerClient,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 7, "a")
    root = committer.seal_batch()
    assert root is not None
    # The commit went out and was mined, then the process died before recording it.
    sent = recorder.commit_batch(bytes.fromhex(root[2:]), 7)
    committer.leader.release()
    head, nonce = w3.eth.block_number, nonce_of(w3, accounts)

    restarted = make_committer()
    assert restarted.leader.try_acquire()
    assert restarted.run_once().committed == 1

    # Nothing sent: no new transaction, no new block; the commit is adopted from its event.
    assert nonce_of(w3, accounts) == nonce
    assert w3.eth.block_number == head
    [batch] = assert_all_committed(client, restarted.engine, deployment.ledger(w3))
    assert (batch.root, batch.tx_hash, batch.block_number) == (
        root,
        sent.tx_hash,
        sent.block_number,
    )


def test_restart_after_a_single_receipt_was_recorded_adopts_its_event(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    make_committer: MakeCommitter,
    recorder: SaleLedgerClient,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    r = client.post(
        "/v1/orders",
        json=order(world, immediate=True),
        headers={**keys.ingest, "Idempotency-Key": "now"},
    )
    assert r.status_code == 201, r.text
    root = committer.seal_batch()
    assert root is not None
    assert root == r.json()["leaf_hash"]
    sent = recorder.record_receipt(bytes.fromhex(root[2:]))
    committer.leader.release()
    nonce = nonce_of(w3, accounts)

    restarted = make_committer()
    assert restarted.leader.try_acquire()
    assert restarted.run_once().committed == 1

    assert nonce_of(w3, accounts) == nonce
    [batch] = assert_all_committed(client, restarted.engine, deployment.ledger(w3))
    assert (batch.single, batch.tx_hash, batch.block_number) == (
        True,
        sent.tx_hash,
        sent.block_number,
    )


def test_chain_rollback_commits_the_vanished_batch_again(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    make_committer: MakeCommitter,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 70, "a")
    before = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    assert committer.run_once().committed == 2
    ledger = deployment.ledger(w3)
    first = assert_all_committed(client, committer.engine, ledger)
    committer.leader.release()

    # The node loses the blocks holding both commits (an anvil killed before its state dump).
    assert w3.provider.make_request("evm_revert", [before])["result"]  # type: ignore[arg-type]
    assert not any(ledger.batch(bytes.fromhex(b.root[2:])).committed for b in first)
    start, nonce = w3.eth.block_number, nonce_of(w3, accounts)

    restarted = make_committer()
    assert restarted.leader.try_acquire()
    assert restarted.run_once().committed == 2

    assert nonce_of(w3, accounts) == nonce + 2
    again = assert_all_committed(client, restarted.engine, ledger)
    assert [(b.root, b.count) for b in again] == [(b.root, b.count) for b in first]
    assert sorted(commit_events(w3, deployment, start + 1)) == sorted(
        (b.root, b.count) for b in first
    )


def test_a_running_committer_notices_the_chain_went_back_and_commits_again(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """No restart, no error seen: the node just comes back with an older state between two
    passes. The next pass finds the head lower (or its newest batch gone) and reconciles."""
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 10, "a")
    before = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    assert committer.run_once().committed == 1
    ledger = deployment.ledger(w3)
    first = assert_all_committed(client, committer.engine, ledger)
    assert committer.run_once().committed == 0  # idle pass: nothing to do, head recorded
    assert w3.provider.make_request("evm_revert", [before])["result"]  # type: ignore[arg-type]
    assert committer.run_once().committed == 1
    again = assert_all_committed(client, committer.engine, ledger)
    assert [b.root for b in again] == [b.root for b in first]


@dataclass(frozen=True)
class ProbedLedger(SaleLedgerClient):
    """The ledger, running a probe before every ``batch`` read (while the committer asks)."""

    probe: Callable[[], None] | None = None

    def batch(self, root: bytes) -> BatchState:
        """Probe, then read."""
        if self.probe is not None:
            self.probe()
        return super().batch(root)


class ProbedGateway(ChainGateway):
    """A gateway whose ledger reads run :attr:`probe` first."""

    probe: Callable[[], None] | None = None

    def link(self) -> ChainLink:
        """The real link with a probed ledger."""
        link = super().link()
        ledger = ProbedLedger(link.w3, link.ledger.address, link.ledger.relayer, self.probe)
        return replace(link, ledger=ledger)


def test_reconciling_reads_the_chain_without_holding_the_sqlite_write_lock(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    make_committer: MakeCommitter,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has no database-wide write lock")
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 3, "a")
    committer.run_once()
    committer.leader.release()
    path = settings.database_url.removeprefix("sqlite:///")
    probes: list[str] = []

    def write_meanwhile() -> None:
        # Orders keep arriving while the restarted committer checks recent batches on chain.
        conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            probes.append("wrote")
        except sqlite3.OperationalError as exc:
            probes.append(str(exc))
        finally:
            conn.close()

    restarted = make_committer(gateway=ProbedGateway)
    assert isinstance(restarted.gateway, ProbedGateway)
    restarted.gateway.probe = write_meanwhile
    assert restarted.leader.try_acquire()
    assert restarted.run_once().committed == 0

    assert probes == ["wrote"]
    assert_all_committed(client, restarted.engine, deployment.ledger(w3))


def test_failed_pass_leaves_a_sealed_batch_that_the_next_pass_commits(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 4, "a")
    admin = deployment.ledger(w3, relayer_for(w3, accounts.admin))
    # The ledger stops accepting the relayer mid-life: the pass seals, then the send fails.
    admin.set_recorder(accounts.stranger.address)
    with pytest.raises(NotRecorder):
        committer.run_once()
    [sealed] = batch_rows(committer.engine)
    assert sealed.status == "sealed"
    assert outbox_size(committer.engine) == 0
    assert receipt_count(committer.engine, "pending") == 4

    admin.set_recorder(accounts.relayer.address)
    # The same committer object, not a restart: its next pass must settle the sealed batch.
    assert committer.run_once().committed == 1
    [batch] = assert_all_committed(client, committer.engine, deployment.ledger(w3))
    assert batch.root == sealed.root


# ----------------------------------------------------------------------------- idempotency


def test_ledger_refuses_a_root_twice(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    recorder: SaleLedgerClient,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 2, "a")
    committer.run_once()
    [batch] = batch_rows(committer.engine)
    root = bytes.fromhex(batch.root[2:])
    with pytest.raises(BatchAlreadyCommitted):
        recorder.commit_batch(root, 2)
    leaf = bytes.fromhex("11" * 32)
    recorder.record_receipt(leaf)
    with pytest.raises(ReceiptAlreadyRecorded):
        recorder.record_receipt(leaf)


def test_root_committed_by_another_sender_after_sealing_is_adopted(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    recorder: SaleLedgerClient,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 3, "a")
    root = committer.seal_batch()
    assert root is not None
    sent = recorder.commit_batch(bytes.fromhex(root[2:]), 3)
    nonce = nonce_of(w3, accounts)

    assert committer.commit_sealed(committer.gateway.link(), root) == 3

    assert nonce_of(w3, accounts) == nonce
    [batch] = assert_all_committed(client, committer.engine, deployment.ledger(w3))
    assert (batch.tx_hash, batch.block_number) == (sent.tx_hash, sent.block_number)


class RacedGateway(ChainGateway):
    """A gateway where another sender commits every sealed batch just before our send."""

    recorder: SaleLedgerClient | None = None
    raced: list[str]

    def send(self, action: Callable[[ChainLink], T]) -> T:
        """Let the rival commit what is sealed, then send as usual (and get refused)."""
        assert self.recorder is not None
        self.raced = []
        for batch in sealed_in_db(self.engine):
            root = bytes.fromhex(batch.root[2:])
            if batch.single:
                sent = self.recorder.record_receipt(root)
            else:
                sent = self.recorder.commit_batch(root, batch.count)
            self.raced.append(sent.tx_hash)
        return super().send(action)


@pytest.mark.parametrize("immediate", [False, True], ids=["batch", "single"])
def test_root_committed_by_another_sender_between_check_and_send_is_adopted(
    immediate: bool,
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    recorder: SaleLedgerClient,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    r = client.post(
        "/v1/orders",
        json=order(world, immediate=immediate),
        headers={**keys.ingest, "Idempotency-Key": "one"},
    )
    assert r.status_code == 201, r.text
    if not immediate:
        post_orders(client, keys, world, 2, "a")
    raced = make_committer(gateway=RacedGateway)
    gateway = raced.gateway
    assert isinstance(gateway, RacedGateway)
    gateway.recorder = recorder
    start = w3.eth.block_number

    raced.run_once()

    # Our own send was refused at estimation (BatchAlreadyCommitted / ReceiptAlreadyRecorded)
    # and the rival's commit was recorded instead: one commit on chain, none of ours.
    [batch] = assert_all_committed(client, raced.engine, deployment.ledger(w3))
    assert batch.tx_hash == gateway.raced[0]
    assert commit_events(w3, deployment, start + 1) == [(batch.root, batch.count)]
    assert batch.single is immediate


# ----------------------------------------------------------------------------- unreachable chain


def test_unreachable_chain_keeps_the_outbox_until_the_chain_is_back(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 10, "a")
    lost = make_committer(rpc_url=closed_port_url())
    assert lost.leader.try_acquire()

    with pytest.raises(RpcUnavailableError):
        lost.run_once()
    with pytest.raises(RpcUnavailableError):
        lost.run_once()

    # Nothing sealed, nothing lost: the receipts are still pending in the outbox.
    assert outbox_size(lost.engine) == 10
    assert batch_rows(lost.engine) == []
    assert receipt_count(lost.engine, "pending") == 10

    lost.gateway.settings = settings
    lost.gateway.reset()
    assert lost.run_once().receipts == 10
    assert_all_committed(client, lost.engine, deployment.ledger(w3))


def test_run_forever_retries_while_the_chain_is_down(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 5, "a")
    lost = make_committer(rpc_url=closed_port_url())
    caplog.set_level(logging.WARNING, logger="liveproof.committer")

    def failures() -> int:
        return sum("committer pass failed" in r.getMessage() for r in caplog.records)

    with running(lost) as thread:
        wait_until("two failed passes", lambda: failures() >= 2)
        post_orders(client, keys, world, 5, "b")
        wait_until("a failed pass after the new orders", lambda: failures() >= 4)
        assert thread.is_alive()
        assert outbox_size(lost.engine) == 10
        assert batch_rows(lost.engine) == []

        lost.gateway.settings = settings
        lost.gateway.reset()
        wait_until("all receipts committed", lambda: receipt_count(lost.engine, "pending") == 0)
    assert_all_committed(client, lost.engine, deployment.ledger(w3))


def test_run_forever_commits_orders_posted_while_it_runs_and_stops(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    looping = make_committer()
    with running(looping):
        for round_ in range(3):
            post_orders(client, keys, world, 20, f"r{round_}")
            wait_until(
                f"round {round_} committed",
                lambda: receipt_count(looping.engine, "pending") == 0,
            )
    assert receipt_count(looping.engine) == 60
    assert_all_committed(client, looping.engine, deployment.ledger(w3))
    # stop() gave the leader lock up: another committer can lead now.
    other = make_committer()
    assert other.leader.try_acquire()


# ----------------------------------------------------------------------------- confirmations


def test_commit_is_recorded_only_after_the_confirmations(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 3, "a")
    careful = make_committer(confirmations=2)
    assert careful.leader.try_acquire()
    ledger = deployment.ledger(w3)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(careful.run_once())
        except Exception as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        [sealed] = wait_until("a sealed batch", lambda: batch_rows(careful.engine))
        root = bytes.fromhex(sealed.root[2:])
        mined = wait_until("the commit mined", lambda: ledger.batch(root).block_number)
        # Automine makes no blocks on its own: without more blocks nothing can be recorded.
        assert batch_rows(careful.engine)[0].status == "sealed"
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert w3.eth.block_number == mined + 1
        time.sleep(0.6)  # more than one confirmation poll: give a wrong count a chance to show
        assert batch_rows(careful.engine)[0].status == "sealed"
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        worker.join(timeout=PATIENCE)
    finally:
        careful.stop()
        worker.join(timeout=PATIENCE)
    [result] = outcome
    assert not isinstance(result, Exception), result
    [batch] = assert_all_committed(client, careful.engine, ledger)
    assert batch.block_number == mined
    assert w3.eth.block_number == mined + 2
