"""Prometheus metrics, computed from the database at scrape time.

Every worker answers the same numbers because they come from the shared database, not from
per-process counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from api.models import Batch, BatchStatus, Outbox, Receipt

#: Commit latencies are summarised over receipts committed in this window.
LATENCY_WINDOW_SECONDS = 300


class DatabaseCollector(Collector):
    """Orders accepted, receipts pending, batches committed, commit latency."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        """Read the numbers (one short read transaction)."""
        since = time.time() - LATENCY_WINDOW_SECONDS
        with self.engine.connect() as conn:
            by_kind = dict(
                conn.execute(
                    select(col(Receipt.kind), func.count()).group_by(col(Receipt.kind))
                ).all()
            )
            pending = conn.execute(select(func.count()).select_from(Outbox)).scalar_one()
            sealed = conn.execute(
                select(func.count()).where(col(Batch.status) == BatchStatus.SEALED.value)
            ).scalar_one()
            committed = conn.execute(
                select(func.count()).where(col(Batch.status) == BatchStatus.COMMITTED.value)
            ).scalar_one()
            latencies = sorted(
                float(v or 0.0)
                for v in conn.execute(
                    select(col(Receipt.committed_at) - col(Receipt.accepted_at)).where(
                        col(Receipt.committed_at) >= since
                    )
                ).scalars()
            )
        orders = CounterMetricFamily(
            "liveproof_orders_accepted", "Orders accepted (sale receipts written)"
        )
        orders.add_metric([], float(by_kind.get(0, 0)))
        yield orders
        refunds = CounterMetricFamily("liveproof_refunds_accepted", "Refund receipts written")
        refunds.add_metric([], float(by_kind.get(1, 0)))
        yield refunds
        waiting = GaugeMetricFamily(
            "liveproof_receipts_pending", "Receipts not yet committed", labels=["stage"]
        )
        waiting.add_metric(["outbox"], float(pending))
        waiting.add_metric(["sealed_batches"], float(sealed))
        yield waiting
        batches = CounterMetricFamily("liveproof_batches_committed", "Batches committed on-chain")
        batches.add_metric([], float(committed))
        yield batches
        summary = SummaryMetricFamily(
            "liveproof_commit_latency_seconds",
            f"Order accepted to receipt committed, over the last {LATENCY_WINDOW_SECONDS} s",
        )
        summary.add_metric([], count_value=len(latencies), sum_value=sum(latencies))
        yield summary
        quantiles = GaugeMetricFamily(
            "liveproof_commit_latency_quantile_seconds",
            "Quantiles of commit latency over the same window",
            labels=["quantile"],
        )
        for q in (0.5, 0.9, 0.99):
            value = latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0
            quantiles.add_metric([str(q)], float(value))
        yield quantiles
