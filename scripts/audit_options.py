"""What every auditor command shares: ``--rpc``, ``--deployment``, ``--report``, the manifest
source, the progress bar, and printing a report as OK/FAIL lines with exit 0, 1 or 2."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from scripts.output import EXIT_FAILED, EXIT_USAGE, caution, console, die, err_console, fail, ok

if TYPE_CHECKING:
    from web3 import Web3

    from chain.audit.findings import AuditReport
    from chain.audit.manifests import ManifestSource
    from chain.deploy import Deployment

Rpc = Annotated[str, typer.Option("--rpc", help="Any JSON-RPC URL of the chain to audit")]
DeploymentFile = Annotated[
    Path | None,
    typer.Option(
        "--deployment",
        help="The liveproof-deployment/1 file (default: deployments/<chainId>.json)",
    ),
]
ReportFile = Annotated[
    Path | None, typer.Option("--report", help="Also write the full report as JSON here")
]
ManifestDir = Annotated[
    Path | None,
    typer.Option("--manifests", help="Directory of <root>.json batch manifests"),
]
ApiUrl = Annotated[
    str | None,
    typer.Option("--api", help="Read batch manifests from this LiveProof API instead"),
]
#: Defaults of --manifest-timeout and --manifest-max-bytes (as chain.audit.manifests's).
MANIFEST_TIMEOUT = 60.0
MANIFEST_MAX_BYTES = 256 * 1024 * 1024
ManifestTimeout = Annotated[
    float,
    typer.Option(
        "--manifest-timeout",
        min=0.001,
        help="Seconds one manifest may take from --api, retries included: a source slower "
        "than this (hanging, dripping bytes) fails that batch (batch-manifest)",
    ),
]
ManifestMaxBytes = Annotated[
    int,
    typer.Option(
        "--manifest-max-bytes",
        min=1,
        help="Bytes one manifest may hold (default 256 MiB): a larger one fails its batch "
        "unread (batch-manifest)",
    ),
]
CursorFile = Annotated[
    Path | None,
    typer.Option(
        "--cursor",
        help="Resume from (and save to) this file: a later run reads only new commits",
    ),
]
ChunkSize = Annotated[
    int, typer.Option("--chunk-size", min=1, help="Blocks per eth_getLogs request")
]

#: How many FAIL lines of one check are printed (the report file has them all).
SHOWN_PER_CHECK = 20


def connect_chain(rpc: str, deployment_file: Path | None) -> tuple[Web3, Deployment]:
    """A live connection and its deployment; exits 2 when either is unusable."""
    from chain.connect import connect, require_connection
    from chain.deploy import Deployment, load_deployment
    from chain.errors import LiveProofError

    try:
        w3 = connect(rpc)
        chain_id = require_connection(w3)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    try:
        if deployment_file is None:
            deployment = load_deployment(chain_id)
        else:
            deployment = Deployment.from_json(deployment_file.read_text(encoding="utf-8"))
    except OSError as exc:
        die(f"cannot read {deployment_file}: {exc.strerror or exc}", EXIT_USAGE)
    except (LiveProofError, ValueError, TypeError, KeyError) as exc:
        die(f"not a usable deployment file: {exc}", EXIT_USAGE)
    if deployment.chain_id != chain_id:
        die(f"the deployment is for chain {deployment.chain_id}, the RPC serves {chain_id}")
    return w3, deployment


def manifest_source(
    directory: Path | None,
    api: str | None,
    *,
    timeout: float = MANIFEST_TIMEOUT,
    max_bytes: int = MANIFEST_MAX_BYTES,
) -> ManifestSource:
    """Manifests from ``--manifests DIR`` or ``--api URL`` (exactly one), each read within
    ``timeout`` seconds (from an API) and ``max_bytes``; exits 2 for a bad directory or URL."""
    from chain.audit.manifests import ApiManifests, DirectoryManifests
    from chain.errors import ConfigurationError

    if (directory is None) == (api is None):
        die("give exactly one of --manifests DIR and --api URL", EXIT_USAGE)
    try:
        if api is not None:
            return ApiManifests(api, timeout=timeout, max_bytes=max_bytes)
        assert directory is not None
        return DirectoryManifests(directory, max_bytes=max_bytes)
    except ConfigurationError as exc:
        die(str(exc), EXIT_USAGE)


#: What a phase's position counts (block scans, unless named here).
PHASE_UNITS = {"database": "batches"}


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback ``(phase, position, last position)`` drawn on stderr when it is a
    terminal. A block scan's bar runs from the first block it reports, not from block 0."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[unit]} {task.fields[at]:,}/{task.fields[end]:,}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    tasks: dict[str, tuple[Any, int]] = {}

    def update(phase: str, position: int, end: int) -> None:
        if phase not in tasks:
            unit = PHASE_UNITS.get(phase, "block")
            first = 0 if unit == "batches" else max(0, position - 1)
            task = bar.add_task(f"{phase}", total=max(1, end - first), unit=unit, at=0, end=end)
            tasks[phase] = (task, first)
        task, first = tasks[phase]
        bar.update(
            task, completed=position - first, total=max(1, end - first), at=position, end=end
        )

    with bar:
        yield update


def finish(report: AuditReport, report_file: Path | None, *, summary: str) -> None:
    """Print OK/FAIL lines per check, write ``--report``, and exit 1 on any finding."""
    for check in report.checks:
        failures = report.failures(check)
        if not failures:
            ok(f"{check}: {report.checked.get(check, 0):,} checked")
            continue
        for finding in failures[:SHOWN_PER_CHECK]:
            fail(f"{finding.check} {finding.subject}", f"{finding.expected} vs {finding.found}")
        if len(failures) > SHOWN_PER_CHECK:
            fail(check, f"{len(failures) - SHOWN_PER_CHECK:,} more (see --report)")
    for warning in report.warnings:
        caution(warning)
    if report_file is not None:
        try:
            report_file.write_text(json.dumps(report.to_json(), indent=2) + "\n", "utf-8")
        except OSError as exc:
            die(f"cannot write {report_file}: {exc.strerror or exc}", EXIT_USAGE)
    console.print(summary)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
