"""``liveproof bench soak``: hold R orders/s for M minutes against a throw-away stack, then
count what was lost or committed twice and how the server's memory moved."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scripts.bench.harness import Stack, running_stack
from scripts.bench.ingest import audit_orders, prepare_room, quantile, wait_committed
from scripts.bench.loadgen import run_loadgen


@dataclass(frozen=True)
class SoakReport:
    """What ``bench soak --json`` prints."""

    minutes: float
    rate: float
    orders: int
    accepted: int
    orders_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    rss_start_mb: float
    rss_warm_mb: float
    rss_end_mb: float
    rss_growth_pct: float
    rss_growth_after_warmup_pct: float
    lost: int
    duplicates: int
    errors: int
    workers: int


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, from /proc."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _load(stack: Stack, count: int, rate: float, concurrency: int) -> dict[str, object]:
    host, port = stack.base_url.removeprefix("http://").split(":")
    body = json.dumps(
        {
            "room_id": "bench-room",
            "session_id": "bench-live",
            "gtin": stack.catalogue.gtin,
            "quantity": 1,
            "unit_price": 12_800,
            "currency": "CNY",
            "buyer_ref": "buyer",
            "order_ref": "soak-{i}",
        }
    )
    spec = {
        "host": host,
        "port": int(port),
        "concurrency": concurrency,
        "rate": rate,
        "count": count,
        "template": {
            "path": "/v1/orders",
            "headers": {
                "Authorization": f"Bearer {stack.ingest_token}",
                "Idempotency-Key": "soak-{i}",
            },
            "body": body,
        },
    }
    return run_loadgen(spec)


def run_soak(*, minutes: float, rate: float, workers: int = 2, concurrency: int = 64) -> SoakReport:
    """Hold ``rate`` orders/s for ``minutes``; the server's RSS (all its processes) is sampled
    as the load starts, once a tenth of the run has passed (warm caches) and at the end; lost
    orders are those accepted but not in a batch whose root is on chain."""
    count = max(1, round(minutes * 60 * rate))
    with running_stack(workers=workers, batch_interval=0.5) as stack:
        prepare_room(stack)
        samples: dict[str, int] = {"start": tree_rss_kb(stack.server.pid)}

        def sample() -> None:
            time.sleep(max(minutes * 6, 1.0))
            samples["warm"] = tree_rss_kb(stack.server.pid)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = _load(stack, count, rate, concurrency)
        samples["end"] = tree_rss_kb(stack.server.pid)
        sampler.join(timeout=1)
        statuses = [int(s) for s in result["statuses"]]  # type: ignore[attr-defined]
        latencies = sorted(float(x) for x in result["latencies_ms"])  # type: ignore[attr-defined]
        accepted = statuses.count(201)
        wait_committed(stack, timeout=max(120.0, minutes * 60))
        _, committed, duplicates = audit_orders(stack, ("soak",))
    start_kb, end_kb = samples["start"], samples["end"]
    warm_kb = samples.get("warm", end_kb)
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    return SoakReport(
        minutes=minutes,
        rate=rate,
        orders=count,
        accepted=accepted,
        orders_per_s=round(accepted / elapsed, 1),
        p50_ms=round(quantile(latencies, 0.50), 1),
        p99_ms=round(quantile(latencies, 0.99), 1),
        max_ms=round(latencies[-1], 1),
        rss_start_mb=round(start_kb / 1024, 1),
        rss_warm_mb=round(warm_kb / 1024, 1),
        rss_end_mb=round(end_kb / 1024, 1),
        rss_growth_pct=_growth(start_kb, end_kb),
        rss_growth_after_warmup_pct=_growth(warm_kb, end_kb),
        lost=accepted - committed,
        duplicates=duplicates,
        errors=count - accepted,
        workers=workers,
    )


def _growth(before_kb: int, after_kb: int) -> float:
    return round(100 * (after_kb - before_kb) / before_kb, 1) if before_kb else 0.0


def report_json(report: SoakReport) -> str:
    """The ``--json`` line."""
    return json.dumps(asdict(report))
