"""``liveproof bench ingest``: orders/s, request latency, time to commit, lost and duplicates."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from api.db import make_engine
from api.models import Batch, Outbox, Receipt
from chain.connect import connect
from chain.deploy import load_deployment
from chain.errors import LiveProofError
from chain.events import EventReader
from scripts.bench.harness import Stack, running_stack
from scripts.bench.loadgen import run_loadgen

BULK_SIZE = 5_000


@dataclass(frozen=True)
class IngestReport:
    """The figures ``--json`` prints."""

    orders_per_s: float
    bulk_orders_per_s: float
    p50_ms: float
    p99_ms: float
    commit_p50_s: float
    commit_p99_s: float
    lost: int
    duplicates: int
    orders: int
    bulk_orders: int
    concurrency: int
    workers: int
    errors: int


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _order(stack: Stack, index: int, tag: str) -> dict[str, Any]:
    return {
        "room_id": "bench-room",
        "session_id": "bench-live",
        "gtin": stack.catalogue.gtin,
        "quantity": 1 + index % 3,
        "unit_price": 12_800,
        "currency": "CNY",
        "buyer_ref": f"buyer-{index % 997}",
        "order_ref": f"{tag}-{index}",
    }


def prepare_room(stack: Stack) -> None:
    """Open the bench room and its live session on ``stack``."""
    headers = {"Authorization": f"Bearer {stack.ingest_token}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=60) as client:
        r = client.post("/v1/rooms", json={"room_id": "bench-room", "name": "Bench room"})
        r.raise_for_status()
        r = client.post(
            "/v1/sessions",
            json={
                "session_id": "bench-live",
                "room_id": "bench-room",
                "anchor": stack.catalogue.anchor,
            },
        )
        r.raise_for_status()


def _drive(stack: Stack, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    host, port = stack.base_url.removeprefix("http://").split(":")
    return run_loadgen(
        {"host": host, "port": int(port), "concurrency": concurrency, "requests": requests}
    )


def wait_committed(stack: Stack, timeout: float) -> None:
    """Wait until every receipt on ``stack`` is committed; raise after ``timeout`` seconds."""
    engine = make_engine(stack.database_url, pool_size=1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(select(func.count()).select_from(Outbox)).scalar_one()
                uncommitted = conn.execute(
                    select(func.count()).where(col(Receipt.status) != "committed")
                ).scalar_one()
            if pending == 0 and uncommitted == 0:
                return
            time.sleep(0.25)
    finally:
        engine.dispose()
    raise LiveProofError(f"receipts still pending after {timeout} s")


def audit_orders(stack: Stack, tags: tuple[str, ...]) -> tuple[list[float], int, int]:
    """Commit latencies of the first tag's orders, receipts of all tags committed (in a batch
    whose root is on chain), and receipts committed twice (on chain, or more leaves on chain
    than receipts)."""
    engine = make_engine(stack.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    col(Receipt.order_ref),
                    col(Receipt.status),
                    col(Receipt.accepted_at),
                    col(Receipt.committed_at),
                    col(Receipt.batch_root),
                ).where(col(Receipt.order_ref).is_not(None))
            ).all()
            total_receipts = conn.execute(select(func.count()).select_from(Receipt)).scalar_one()
            known_roots = set(conn.execute(select(col(Batch.root))).scalars())
    finally:
        engine.dispose()
    ours = [r for r in rows if str(r[0]).split("-", 1)[0] in tags]
    latencies = [
        float(r[3]) - float(r[2])
        for r in ours
        if r[3] is not None and str(r[0]).startswith(f"{tags[0]}-")
    ]
    w3 = connect(stack.devnet.rpc_url)
    deployment = load_deployment(int(w3.eth.chain_id), stack.workdir)
    reader = EventReader(w3, deployment, start_block=deployment.start_block)
    roots: list[str] = []
    leaves_on_chain = 0
    for event in reader.iter_events(names=["BatchCommitted", "ReceiptRecorded"]):
        root = event.args.get("root") or event.args.get("leaf")
        assert isinstance(root, bytes)
        roots.append("0x" + root.hex())
        leaves_on_chain += int(event.args.get("count", 1))
    # Committed means in a batch whose root the chain holds, not what the database says.
    on_chain = set(roots)
    committed = sum(1 for r in ours if r[1] == "committed" and r[4] in on_chain)
    duplicates = (len(roots) - len(set(roots))) + max(0, leaves_on_chain - int(total_receipts))
    duplicates += sum(1 for r in roots if r not in known_roots)
    return latencies, committed, duplicates


def run_ingest_bench(*, orders: int, concurrency: int, workers: int = 2) -> IngestReport:
    """Start a stack, drive single and bulk orders, wait for every commit, and measure."""
    bulk_orders = max(BULK_SIZE, orders)
    with running_stack(workers=workers) as stack:
        prepare_room(stack)
        auth = f"Bearer {stack.ingest_token}"
        tag = "s" + uuid.uuid4().hex[:6]
        singles = [
            {
                "path": "/v1/orders",
                "headers": {"Authorization": auth, "Idempotency-Key": f"{tag}-{i}"},
                "body": json.dumps(_order(stack, i, tag)),
            }
            for i in range(orders)
        ]
        # Warm-up: connections, caches, JIT-less but cold imports in the workers.
        warm = _drive(stack, singles[: min(500, orders)], concurrency)
        single = _drive(stack, singles[min(500, orders) :], concurrency)
        btag = "b" + uuid.uuid4().hex[:6]
        bulk_requests = []
        for start in range(0, bulk_orders, BULK_SIZE):
            chunk = [
                _order(stack, i, btag) for i in range(start, min(start + BULK_SIZE, bulk_orders))
            ]
            bulk_requests.append(
                {
                    "path": "/v1/orders/bulk",
                    "headers": {"Authorization": auth, "Idempotency-Key": f"{btag}-{start}"},
                    "body": json.dumps({"orders": chunk}),
                }
            )
        bulk = _drive(stack, bulk_requests, concurrency=2)
        measured = len(singles) - min(500, orders)
        accepted = sum(1 for st in warm["statuses"] + single["statuses"] if st == 201)
        errors = len(singles) - accepted
        for request, status in zip(bulk_requests, bulk["statuses"], strict=True):
            size = len(json.loads(str(request["body"]))["orders"])
            if status == 201:
                accepted += size
            else:
                errors += size
        wait_committed(stack, timeout=120 + orders / 1_000)
        latencies, committed, duplicates = audit_orders(stack, (tag, btag))
        lost = accepted - committed
        return IngestReport(
            orders_per_s=round(measured / single["elapsed"], 1),
            bulk_orders_per_s=round(bulk_orders / bulk["elapsed"], 1),
            p50_ms=round(statistics.median(single["latencies_ms"]), 2),
            p99_ms=round(quantile(single["latencies_ms"], 0.99), 2),
            commit_p50_s=round(quantile(latencies, 0.5), 3),
            commit_p99_s=round(quantile(latencies, 0.99), 3),
            lost=lost,
            duplicates=duplicates,
            orders=orders,
            bulk_orders=bulk_orders,
            concurrency=concurrency,
            workers=workers,
            errors=errors,
        )


def report_json(report: IngestReport) -> str:
    """The ``--json`` output."""
    return json.dumps(asdict(report))
