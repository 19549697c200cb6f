"""Liveness, readiness (database, chain, contracts), Prometheus metrics, and the pending-queue
bound; orders keep being accepted while the chain is unreachable."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from api.app import create_app
from api.chain_gateway import ChainGateway
from api.committer import Committer
from api.config import Settings
from api.db import make_engine, writer
from chain.errors import RpcUnavailableError
from tests.api.conftest import Keys, World
from tests.api.test_ingest import assert_problem, post_order, post_refund, row_counts
from tests.api.test_orders import open_room_and_session, order


def closed_port_url() -> str:
    """An RPC URL on a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def metric_samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The /metrics samples by (name, sorted labels)."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_healthz_and_readyz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "chain": "ok", "contracts": "ok"},
    }


def test_orders_are_accepted_while_the_chain_is_unreachable(
    client: TestClient, keys: Keys, world: World, settings: Settings, committer: Committer
) -> None:
    open_room_and_session(client, keys, world)
    down = settings.model_copy(update={"rpc_url": closed_port_url()})
    with TestClient(create_app(down)) as offline:
        assert offline.get("/healthz").status_code == 200
        ready = offline.get("/readyz")
        problem = assert_problem(ready, 503, "not-ready")
        assert problem["checks"]["database"] == "ok"
        assert problem["checks"]["chain"].startswith("unreachable")
        assert "chain" in problem["detail"]

        accepted = [post_order(offline, keys, order(world), f"offline-{i}") for i in range(3)]
        assert [r.status_code for r in accepted] == [201] * 3
        retry = post_order(offline, keys, order(world), "offline-0")
        assert retry.content == accepted[0].content
        before = row_counts(settings)
        # Writes that need the chain say so, and write nothing.
        opened = offline.post(
            "/v1/sessions",
            json={"session_id": "live-2", "room_id": "room-1", "anchor": world.anchor},
            headers=keys.ingest,
        )
        assert_problem(opened, 503, "chain-unavailable")
        assert "retry-after" in opened.headers
        assert row_counts(settings) == before

        # A committer that cannot reach the chain leaves them pending, sealed or not.
        engine = writer(make_engine(down.database_url, pool_size=1))
        stranded = Committer(
            engine, ChainGateway(down, engine), batch_size=64, interval=down.batch_interval
        )
        with pytest.raises(RpcUnavailableError):
            stranded.run_once()
        engine.dispose()
        for r in accepted:
            receipt = offline.get(f"/v1/receipts/{r.json()['receipt_code']}").json()
            assert receipt["status"] == "pending"
            assert receipt["batch_root"] is None
        assert row_counts(settings)["outbox"] == 3

    # Once the chain is back, the committer takes them.
    assert committer.run_once().receipts == 3
    for r in accepted:
        receipt = client.get(f"/v1/receipts/{r.json()['receipt_code']}").json()
        assert receipt["status"] == "committed"


def test_metrics_follow_orders_refunds_and_commits(
    client: TestClient, keys: Keys, world: World, committer: Committer
) -> None:
    start = metric_samples(client)
    assert start[("liveproof_orders_accepted_total", ())] == 0
    assert start[("liveproof_receipts_pending", (("stage", "outbox"),))] == 0
    assert start[("liveproof_batches_committed_total", ())] == 0
    assert start[("liveproof_commit_latency_seconds_count", ())] == 0

    open_room_and_session(client, keys, world)
    sales = [post_order(client, keys, order(world), f"o-{i}") for i in range(3)]
    refund = post_refund(client, keys, sales[0].json()["receipt_code"], 1, "r-1")
    assert refund.status_code == 201
    post_order(client, keys, order(world), "o-0")  # a retry is not a new order
    pending = metric_samples(client)
    assert pending[("liveproof_orders_accepted_total", ())] == 3
    assert pending[("liveproof_refunds_accepted_total", ())] == 1
    assert pending[("liveproof_receipts_pending", (("stage", "outbox"),))] == 4
    assert pending[("liveproof_receipts_pending", (("stage", "sealed_batches"),))] == 0
    assert pending[("liveproof_batches_committed_total", ())] == 0

    assert committer.run_once().receipts == 4
    done = metric_samples(client)
    assert done[("liveproof_orders_accepted_total", ())] == 3
    assert done[("liveproof_receipts_pending", (("stage", "outbox"),))] == 0
    assert done[("liveproof_batches_committed_total", ())] == 1
    assert done[("liveproof_commit_latency_seconds_count", ())] == 4
    assert done[("liveproof_commit_latency_seconds_sum", ())] > 0
    median = done[("liveproof_commit_latency_quantile_seconds", (("quantile", "0.5"),))]
    assert 0 < median <= done[("liveproof_commit_latency_seconds_sum", ())]


def test_a_full_queue_refuses_orders_with_retry_after(
    settings: Settings, keys: Keys, world: World, w3: Web3
) -> None:
    bounded = settings.model_copy(update={"max_pending": 3})
    with TestClient(create_app(bounded)) as client:
        open_room_and_session(client, keys, world)
        accepted = [post_order(client, keys, order(world), f"o-{i}") for i in range(3)]
        assert [r.status_code for r in accepted] == [201] * 3
    before = row_counts(settings)
    # A fresh process counts the queue when it first checks it.
    with TestClient(create_app(bounded)) as client:
        full = post_order(client, keys, order(world), "o-3")
        assert_problem(full, 503, "queue-full")
        assert int(full.headers["retry-after"]) >= 1
        bulk = client.post(
            "/v1/orders/bulk",
            json={"orders": [order(world)]},
            headers={**keys.ingest, "Idempotency-Key": "bulk"},
        )
        assert_problem(bulk, 503, "queue-full")
        assert row_counts(settings) == before
        # A retry of an order accepted before the queue filled up still gets its answer.
        retry = post_order(client, keys, order(world), "o-0")
        assert retry.status_code == 201
        assert retry.content == accepted[0].content


def test_a_bulk_request_counts_its_own_size_against_the_queue_bound(
    settings: Settings, keys: Keys, world: World, w3: Web3
) -> None:
    bounded = settings.model_copy(update={"max_pending": 5})
    with TestClient(create_app(bounded)) as client:
        open_room_and_session(client, keys, world)
        before = row_counts(settings)
        too_many = client.post(
            "/v1/orders/bulk",
            json={"orders": [order(world) for _ in range(6)]},
            headers={**keys.ingest, "Idempotency-Key": "six"},
        )
        assert_problem(too_many, 503, "queue-full")
        assert row_counts(settings) == before
        fits = client.post(
            "/v1/orders/bulk",
            json={"orders": [order(world) for _ in range(5)]},
            headers={**keys.ingest, "Idempotency-Key": "five"},
        )
        assert fits.status_code == 201
