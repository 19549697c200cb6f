"""``liveproof audit chain|db|contracts``: the auditor's checks, against any RPC URL.

Each prints ``OK: <check>`` or ``FAIL: <check>: <expected> vs <found>`` lines, writes a JSON
report with ``--report FILE``, and exits 0 when everything holds, 1 when any check fails and 2
for bad usage or unreachable input.
"""

from __future__ import annotations

from typing import Annotated

import typer

from chain.audit.receipt_index import DEFAULT_MEMORY_LIMIT
from chain.audit.tolerances import (
    DEFAULT_CLOCK_TOLERANCE,
    DEFAULT_LATE_COMMIT_TOLERANCE,
    DEFAULT_REUSE_THRESHOLD,
)
from scripts.audit_contracts import audit_contracts_command
from scripts.audit_options import (
    MANIFEST_MAX_BYTES,
    MANIFEST_TIMEOUT,
    ApiUrl,
    ChunkSize,
    CursorFile,
    DeploymentFile,
    ManifestDir,
    ManifestMaxBytes,
    ManifestTimeout,
    ReportFile,
    Rpc,
    connect_chain,
    finish,
    manifest_source,
    progress_bar,
)
from scripts.output import EXIT_USAGE, die

audit_app = typer.Typer(
    help="Recompute LiveProof's records from the chain and exit non-zero on any mismatch.",
    no_args_is_help=True,
)


@audit_app.command("chain")
def audit_chain_command(
    rpc: Rpc,
    deployment: DeploymentFile = None,
    manifests: ManifestDir = None,
    api: ApiUrl = None,
    report: ReportFile = None,
    cursor: CursorFile = None,
    chunk_size: ChunkSize = 10_000,
    memory_limit: Annotated[
        int,
        typer.Option(
            "--memory-limit",
            min=1,
            help="Receipt ids kept in memory (about 130 bytes each); older ones go to disk",
        ),
    ] = DEFAULT_MEMORY_LIMIT,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Processes reading manifests (default: one per CPU)"),
    ] = None,
    clock_tolerance: Annotated[
        int,
        typer.Option(
            "--clock-tolerance",
            min=0,
            help="Seconds a receipt's time may stray past block times (session open and "
            "close, the committing block)",
        ),
    ] = DEFAULT_CLOCK_TOLERANCE,
    late_commit_tolerance: Annotated[
        int,
        typer.Option(
            "--late-commit-tolerance",
            min=0,
            help="Seconds after a session closed, or after a sale's order time, within which "
            "the sale may still be committed",
        ),
    ] = DEFAULT_LATE_COMMIT_TOLERANCE,
    reuse_threshold: Annotated[
        int,
        typer.Option(
            "--reuse-threshold",
            min=2,
            help="Sales under one buyer commitment from which a WARN line names it",
        ),
    ] = DEFAULT_REUSE_THRESHOLD,
    manifest_timeout: ManifestTimeout = MANIFEST_TIMEOUT,
    manifest_max_bytes: ManifestMaxBytes = MANIFEST_MAX_BYTES,
) -> None:
    """Rebuild every committed batch and judge every receipt from the chain alone.

    Each batch's manifest must rebuild its committed root; each receipt is checked against the
    registries: endorsements, claims, promised prices, refunds, duplicates, sessions and the
    sales counts they displayed."""
    from chain.audit.chain_audit import ChainAudit
    from chain.errors import LiveProofError

    w3, dep = connect_chain(rpc, deployment)
    source = manifest_source(manifests, api, timeout=manifest_timeout, max_bytes=manifest_max_bytes)
    try:
        with progress_bar() as progress:
            result = ChainAudit(
                w3, dep, source, chunk_size=chunk_size, cursor_file=cursor, progress=progress,
                memory_limit=memory_limit, jobs=jobs, clock_tolerance=clock_tolerance,
                late_commit_tolerance=late_commit_tolerance, reuse_threshold=reuse_threshold,
            ).run()  # fmt: skip
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    s = result.stats
    finish(
        result,
        report,
        summary=(
            f"{s['receipts']:,} receipts in {s['batches']:,} batches, blocks "
            f"{s['from_block']}-{s['to_block']} of chain {s['chain_id']}, checked in "
            f"{s['seconds']:.2f} s"
        ),
    )


@audit_app.command("db")
def audit_db_command(
    rpc: Rpc,
    database_url: Annotated[
        str,
        typer.Option("--database-url", help="The platform database (sqlite:/// or postgresql://)"),
    ],
    deployment: DeploymentFile = None,
    report: ReportFile = None,
    cursor: CursorFile = None,
    pending_after: Annotated[
        float,
        typer.Option("--pending-after", min=0, help="Seconds a receipt may stay pending"),
    ] = 300.0,
    chunk_size: ChunkSize = 10_000,
    clock_tolerance: Annotated[
        int,
        typer.Option(
            "--clock-tolerance",
            min=0,
            help="Seconds a database time may stray past now or past the committing block",
        ),
    ] = DEFAULT_CLOCK_TOLERANCE,
) -> None:
    """Reconcile the platform database with the chain.

    Committed receipts must be proven on chain, on-chain batches known to the database, and
    receipts pending too long are listed. The database is only read, never written."""
    from sqlalchemy.exc import SQLAlchemyError

    from chain.errors import LiveProofError
    from scripts.audit_db import audit_db, database_error

    if not database_url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        die("--database-url must be sqlite:///PATH or postgresql://...", EXIT_USAGE)
    w3, dep = connect_chain(rpc, deployment)
    try:
        with progress_bar() as progress:
            result = audit_db(
                w3, dep, database_url,
                pending_after=pending_after, chunk_size=chunk_size, cursor_file=cursor,
                progress=progress, clock_tolerance=clock_tolerance,
            )  # fmt: skip
    except SQLAlchemyError as exc:
        die(database_error(database_url, exc), EXIT_USAGE)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    s = result.stats
    scanned = (
        f"blocks {s['from_block']}-{s['to_block']} scanned"
        if s["from_block"] <= s["to_block"]
        else f"no blocks after {s['to_block']} yet"
    )
    finish(
        result,
        report,
        summary=(
            f"{s['database_batches']:,} committed batches ({s['database_receipts_committed']:,} "
            f"receipts) in the database, {s['chain_batches']:,} on chain ({scanned}), "
            f"{s['pending']:,} pending"
        ),
    )


audit_app.command("contracts")(audit_contracts_command)
