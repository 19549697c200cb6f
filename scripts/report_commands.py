"""``liveproof report sales``: verified net sales from the chain, as CSV, JSON or a chart.

Prints ``OK: <check>`` / ``FAIL: <check> <subject>: <expected> vs <found>`` for the checks
the figures rest on (``batch-verified``, ``duplicate-receipt``), then what it wrote. Exits 0
when every check holds, 1 when one fails: a committed batch could not be verified (its
manifest is missing or does not rebuild its root: the report is then not complete) or a
receipt id was committed twice (counted once); 2 for bad usage or unreachable input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from scripts.audit_options import (
    ApiUrl,
    ChunkSize,
    CursorFile,
    DeploymentFile,
    ManifestDir,
    ReportFile,
    Rpc,
    connect_chain,
    finish,
    manifest_source,
    progress_bar,
)
from scripts.output import EXIT_USAGE, die

report_app = typer.Typer(
    help="Reports computed from the chain and the public batch manifests alone.",
    no_args_is_help=True,
)

Format = Literal["csv", "json", "png"]
FORMATS: tuple[Format, ...] = get_args(Format)


def report_format(fmt: Format | None, out: Path) -> Format:
    """``--format``, or the one ``--out``'s suffix names; exits 2 when neither says."""
    if fmt is not None:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    named = [known for known in FORMATS if known == suffix]
    if not named:
        die(f"give --format csv|json|png (cannot tell it from {out.name!r})", EXIT_USAGE)
    return named[0]


@report_app.command("sales")
def report_sales_command(
    rpc: Rpc,
    out: Annotated[Path, typer.Option("--out", help="Write the report to this file")],
    by: Annotated[
        Literal["anchor", "product", "room", "session"],
        typer.Option("--by", help="Group by the session's anchor, the product, room or session"),
    ] = "anchor",
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="csv, json or png (default: from --out's suffix)"),
    ] = None,
    deployment: DeploymentFile = None,
    manifests: ManifestDir = None,
    api: ApiUrl = None,
    chunk_size: ChunkSize = 10_000,
    cursor: CursorFile = None,
    report_file: ReportFile = None,
) -> None:
    """Verified net sales per anchor, product, room or live session.

    Units sold, refunded and net, orders, and the net amount per currency in minor units.
    Only batches whose manifest rebuilds the committed root are counted; each one that does
    not is a FAIL line, and the command exits 1.
    """
    from chain.audit.sales_report import sales_report
    from chain.errors import LiveProofError

    kind = report_format(fmt, out)
    w3, dep = connect_chain(rpc, deployment)
    source = manifest_source(manifests, api)
    try:
        with progress_bar() as progress:
            report = sales_report(
                w3, dep, source, by=by, chunk_size=chunk_size, progress=progress,
                cursor_file=cursor,
            )  # fmt: skip
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    try:
        report.write(out, kind)
    except OSError as exc:
        die(f"cannot write {out}: {exc.strerror or exc}", EXIT_USAGE)
    summary = (
        f"wrote {len(report.rows):,} rows by {by} to {out} ({kind}): {report.receipts:,} "
        f"receipts in {report.batches:,} verified batches, blocks {report.from_block}-"
        f"{report.to_block} of chain {report.chain_id}"
    )
    if not report.complete:
        summary += f"; not complete: {len(report.skipped):,} committed batches not counted"
    finish(report.audit_report(), report_file, summary=summary)
