"""Crashes at the worst moments: every accepted receipt is committed exactly once afterwards,
and the auditor's ``audit chain`` and ``audit db`` find nothing wrong."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.faults.conftest import FaultStack, wait_for

pytestmark = pytest.mark.faults


def exactly_once(stack: FaultStack) -> None:
    """Every batch in the database is committed by exactly one event on chain."""
    roots = stack.committed_roots()
    repeated = [root for root, n in Counter(roots).items() if n > 1]
    assert repeated == []
    counts = stack.counts()
    assert counts.get("batches_committed", 0) == len(roots)
    assert "batches_sealed" not in counts


def test_killed_between_the_database_commit_and_the_chain_send(stack: FaultStack) -> None:
    """The committer seals a batch (in the database) and dies before sending it; then the
    whole server is SIGKILLed and started again."""
    stack.serve(failpoints="committer.after_seal")
    stack.open_session()
    stack.post_orders(40)
    wait_for("a sealed batch", lambda: stack.counts().get("batches_sealed", 0) >= 1)
    stack.crash()
    assert stack.committed_roots() == []  # nothing reached the chain
    stack.serve()
    wait_for("every receipt committed", lambda: stack.all_committed(40))
    exactly_once(stack)
    stack.audit()


def test_killed_after_the_send_before_the_commit_was_recorded(stack: FaultStack) -> None:
    """The batch is on chain, the database still says sealed: the restarted committer finds
    it on chain and records it, sending nothing twice."""
    stack.serve(failpoints="committer.after_send")
    stack.open_session()
    stack.post_orders(40)
    wait_for("the batch on chain", lambda: len(stack.committed_roots()) >= 1)
    stack.crash()
    assert stack.counts().get("batches_sealed", 0) == 1  # the commit was never recorded
    stack.serve()
    wait_for("every receipt committed", lambda: stack.all_committed(40))
    exactly_once(stack)
    stack.audit()


def test_a_crashed_committer_is_started_again_by_serve(stack: FaultStack) -> None:
    """No operator needed: serve's supervisor restarts its committer, which then finishes
    the batch its predecessor sealed."""
    stack.serve(failpoints="committer.after_seal")
    stack.open_session()
    stack.post_orders(10)
    wait_for("every receipt committed", lambda: stack.all_committed(10), timeout=30)
    exactly_once(stack)
    assert stack.server is not None
    log = (stack.prepared.workdir / "server.log").read_text()
    assert "the committer exited with -9" in log
    stack.audit()


def test_anvil_killed_loses_its_last_blocks_and_the_batches_are_committed_again(
    stack: FaultStack,
) -> None:
    """The batches are lost, not the session they belong to: a session opening lost the same
    way cannot be restored faithfully (its opening time would change), see reliability.md."""
    stack.serve()
    stack.open_session()
    stack.dump_anvil()  # the state file now holds the open session, and no commit
    stack.post_orders(30)
    wait_for("every receipt committed", lambda: stack.all_committed(30))
    lost = stack.committed_roots()
    assert lost
    stack.kill_anvil()  # its state file predates every commit
    assert not stack.rpc_answers()
    stack.restart_anvil()
    # (The committer may already be re-sending: it checks the chain every 0.2 s.)
    wait_for("the lost batches committed again", lambda: stack.committed_roots() == lost)
    wait_for("every receipt committed", lambda: stack.all_committed(30))
    exactly_once(stack)
    stack.audit()


def test_the_rpc_unreachable_under_load_loses_no_accepted_order(stack: FaultStack) -> None:
    """Orders keep coming while the chain is away for a while: each is accepted (201) or
    refused with 503 and Retry-After past the queue bound; every accepted one is committed
    once the chain is back."""
    outage = 30.0
    stack.serve(LIVEPROOF_MAX_PENDING="300")
    stack.open_session()
    stack.post_orders(5)
    wait_for("the first orders committed", lambda: stack.all_committed(5))
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                body = {
                    "room_id": "room-f", "session_id": "live-f",
                    "gtin": stack.prepared.catalogue.gtin, "quantity": 1, "unit_price": 12_800,
                    "currency": "CNY",
                }  # fmt: skip
                r = http.post(
                    f"{stack.base_url}/v1/orders", json=body,
                    headers={**stack.ingest, "Idempotency-Key": uuid.uuid4().hex},
                )  # fmt: skip
                statuses[r.status_code] += 1
                if r.status_code == 503:
                    retry_after.add(r.headers.get("retry-after", ""))
                time.sleep(0.02)

    with cf.ThreadPoolExecutor(2) as pool:
        loaders = [pool.submit(load) for _ in range(2)]
        time.sleep(1)
        stack.stop_anvil()  # cleanly: the chain keeps its state, it is only away
        assert not stack.rpc_answers()
        time.sleep(outage)
        stack.restart_anvil()
        time.sleep(2)
        stop.set()
        for loader in loaders:
            loader.result()
    print(f"answers during the outage: {dict(statuses)}, Retry-After {sorted(retry_after)}")
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[201] > 0
    if statuses[503]:
        assert retry_after
        assert "" not in retry_after
    wait_for(
        "every accepted order committed",
        lambda: stack.all_committed(5 + statuses[201]),
        timeout=120,
    )
    exactly_once(stack)
    stack.audit()


def test_1000_concurrent_orders_with_200_repeated_keys(stack: FaultStack) -> None:
    """800 distinct orders, 200 retries of some of them under the same Idempotency-Key, all
    at once from 32 connections: exactly 800 receipts, and each retry gets the first answer."""
    stack.serve()
    stack.open_session()
    keys = [uuid.uuid4().hex for _ in range(800)]
    requests = [(k, i) for i, k in enumerate(keys)] + [(keys[i * 4], i * 4) for i in range(200)]

    def send(item: tuple[str, int]) -> tuple[str, int, bytes]:
        key, index = item
        body = {
            "room_id": "room-f", "session_id": "live-f",
            "gtin": stack.prepared.catalogue.gtin, "quantity": 1 + index % 3,
            "unit_price": 12_800, "currency": "CNY", "order_ref": f"o-{index}",
        }  # fmt: skip
        r = httpx.post(
            f"{stack.base_url}/v1/orders", json=body,
            headers={**stack.ingest, "Idempotency-Key": key}, timeout=60,
        )  # fmt: skip
        return key, r.status_code, r.content

    with cf.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, requests))
    assert {status for _, status, _ in answers} == {201}, Counter(s for _, s, _ in answers)
    by_key: dict[str, set[bytes]] = {}
    for key, _, content in answers:
        by_key.setdefault(key, set()).add(content)
    assert len(by_key) == 800
    assert all(len(bodies) == 1 for bodies in by_key.values())  # byte-identical replays
    wait_for("every receipt committed", lambda: stack.all_committed(800))
    assert stack.counts()["receipts_committed"] == 800
    exactly_once(stack)
    stack.audit()
