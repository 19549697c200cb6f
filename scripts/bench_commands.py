"""``liveproof bench ...``: measured on a throw-away stack on loopback, never in tests."""

from __future__ import annotations

from typing import Annotated

import typer

from scripts.output import console, errors_as_exit_codes

bench_app = typer.Typer(help="Benchmarks on a throw-away local stack.", no_args_is_help=True)


@bench_app.command("ingest")
def bench_ingest(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    orders: Annotated[int, typer.Option("--orders", min=600, help="Single-POST orders")] = 20_000,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Connections")] = 64,
    workers: Annotated[int, typer.Option("--workers", min=1, help="API workers")] = 2,
) -> None:
    """Orders/s for single POSTs and the bulk form, p50/p99 latency, time to commit, losses."""
    from scripts.bench.ingest import report_json, run_ingest_bench

    with errors_as_exit_codes():
        report = run_ingest_bench(orders=orders, concurrency=concurrency, workers=workers)
    if as_json:
        print(report_json(report))
        return
    console.print(
        f"single POST   {report.orders_per_s:>10,.0f} orders/s  "
        f"p50 {report.p50_ms} ms  p99 {report.p99_ms} ms  ({report.orders} orders, "
        f"{report.concurrency} connections, {report.workers} workers)"
    )
    console.print(
        f"bulk POST     {report.bulk_orders_per_s:>10,.0f} orders/s  "
        f"({report.bulk_orders} orders in requests of 5,000)"
    )
    console.print(f"to committed  p50 {report.commit_p50_s} s  p99 {report.commit_p99_s} s")
    console.print(
        f"lost {report.lost}  committed twice {report.duplicates}  errors {report.errors}"
    )


@bench_app.command("audit")
def bench_audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    receipts: Annotated[
        int, typer.Option("--receipts", min=1, help="Receipts committed before the audit")
    ] = 100_000,
) -> None:
    """Receipts/s and peak RSS of `audit chain` over a chain built with N receipts."""
    from scripts.bench.audit import report_json, run_audit_bench

    with errors_as_exit_codes():
        report = run_audit_bench(receipts)
    if as_json:
        print(report_json(report))
        return
    console.print(
        f"audit chain  {report.receipts_per_s:>10,} receipts/s  ({report.receipts:,} receipts in "
        f"{report.batches:,} batches, {report.seconds} s; {report.wall_seconds} s with start-up)"
    )
    console.print(f"peak RSS     {report.peak_rss_mb} MB   clean: {report.ok}")


@bench_app.command("soak")
def bench_soak(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    minutes: Annotated[float, typer.Option("--minutes", min=0.05, help="How long")] = 10.0,
    rate: Annotated[float, typer.Option("--rate", min=1, help="Orders per second")] = 1_000.0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="API workers")] = 2,
) -> None:
    """Hold a constant order rate: throughput, latency, RSS at start and end, lost, duplicates."""
    from scripts.bench.soak import report_json, run_soak

    with errors_as_exit_codes():
        report = run_soak(minutes=minutes, rate=rate, workers=workers)
    if as_json:
        print(report_json(report))
        return
    console.print(
        f"held {report.orders_per_s:,.0f} orders/s of {report.rate:,.0f} for {report.minutes:g} "
        f"min: {report.accepted:,} accepted of {report.orders:,}, p50 {report.p50_ms} ms, "
        f"p99 {report.p99_ms} ms, max {report.max_ms} ms"
    )
    console.print(
        f"RSS {report.rss_start_mb} MB -> {report.rss_end_mb} MB ({report.rss_growth_pct:+}%; "
        f"{report.rss_growth_after_warmup_pct:+}% after warm-up at {report.rss_warm_mb} MB)  "
        f"lost {report.lost}  duplicates {report.duplicates}  errors {report.errors}"
    )
