"""``liveproof export manifests|epcis|credentials``: keep what the platform published and what
the chain proves, in files and standard formats an auditor can archive and share.

Exit codes: 0 everything exported, 1 the export is incomplete (a committed batch that does not
verify, a sale of an unregistered product), 2 bad usage or unreachable input.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scripts.audit_options import (
    ApiUrl,
    ChunkSize,
    DeploymentFile,
    ManifestDir,
    Rpc,
    connect_chain,
    manifest_source,
    progress_bar,
)
from scripts.output import EXIT_FAILED, EXIT_USAGE, console, die, error, warn

if TYPE_CHECKING:
    import httpx

    from chain.audit.verified import SkippedBatch

export_app = typer.Typer(
    help="Export what the chain proves in standard formats an auditor can keep.",
    no_args_is_help=True,
)

#: Batches asked for per ``GET /v1/batches`` page (the API's maximum).
PAGE_SIZE = 1_000
_ROOT = re.compile(r"0x[0-9a-f]{64}")


def _get(client: httpx.Client, url: str, params: dict[str, Any] | None = None) -> bytes:
    import httpx

    from chain.audit.manifests import polite_get
    from chain.errors import ConfigurationError

    try:
        response = polite_get(client, url, params)
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        raise ConfigurationError(f"{url} answered {response.status_code}")
    return response.content


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def download_manifests(
    base_url: str, out: Path, *, client: httpx.Client | None = None, page_size: int = PAGE_SIZE
) -> tuple[list[str], int]:
    """Save the manifest of every committed batch the API lists as ``out/<root>.json``, byte
    for byte as served; returns the roots saved and how many sealed batches (not yet on chain)
    were passed over. Raises ConfigurationError when the API cannot be read."""
    import httpx
    import orjson

    from chain.errors import ConfigurationError

    if page_size < 2:
        raise ConfigurationError("page_size must be at least 2 to page past equal instants")
    base = base_url.rstrip("/")
    own = client is None
    http = client or httpx.Client(timeout=30)
    seen: set[str] = set()
    saved: list[str] = []
    pending = 0
    after: float | None = None
    try:
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if after is not None:
                params["after"] = repr(after)
            listing = _get(http, f"{base}/v1/batches", params)
            try:
                page = orjson.loads(listing)
                sealed = [
                    (str(b["root"]).lower(), b["status"], float(b["sealed_at"])) for b in page
                ]
            except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
                raise ConfigurationError(
                    f"{base}/v1/batches is not a batch listing: {exc}"
                ) from None
            for root, status, _ in sealed:
                if root in seen:
                    continue
                if not _ROOT.fullmatch(root):  # it names a file: never a path
                    raise ConfigurationError(f"{base}/v1/batches lists a bad root {root!r}")
                seen.add(root)
                if status != "committed":
                    pending += 1
                    continue
                body = _get(http, f"{base}/v1/batches/{root}")
                _write_atomically(out / f"{root}.json", body)
                saved.append(root)
            if len(sealed) < page_size:
                return saved, pending
            # The listing pages by ``sealed_at > after``: start the next page before the last
            # instant of this one, so batches sealed at that same instant are not skipped.
            last = sealed[-1][2]
            earlier = [at for _, _, at in sealed if at < last]
            if not earlier:
                raise ConfigurationError(
                    f"more than {page_size} batches sealed at one instant: cannot page past them"
                )
            after = max(earlier)
    finally:
        if own:
            http.close()


@export_app.command("manifests")
def export_manifests_command(
    api: Annotated[str, typer.Option("--api", help="The LiveProof API to read batches from")],
    out: Annotated[Path, typer.Option("--out", help="Directory to save <root>.json files in")],
) -> None:
    """Save every committed batch's manifest from the API into DIR/<root>.json.

    Each file is the API's answer byte for byte (every leaf of the batch), ready for
    `liveproof audit chain --manifests DIR` without the API, and for the record.
    """
    from chain.errors import LiveProofError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        die(f"cannot create {out}: {exc.strerror or exc}", EXIT_USAGE)
    try:
        saved, pending = download_manifests(api, out)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    except OSError as exc:
        die(f"cannot write into {out}: {exc.strerror or exc}", EXIT_USAGE)
    note = f" ({pending:,} sealed batches not yet committed left out)" if pending else ""
    console.print(f"saved {len(saved):,} batch manifests to {out}{note}")


def _warn_skipped(batch: SkippedBatch) -> None:
    warn(f"batch 0x{batch.root.hex()} (block {batch.block_number}) not exported: {batch.why}")


def _write_json(path: Path, data: Any) -> None:
    try:
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    except OSError as exc:
        die(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)


@export_app.command("epcis")
def export_epcis_command(
    rpc: Rpc,
    out: Annotated[Path, typer.Option("--out", help="The EPCIS 2.0 JSON-LD file to write")],
    deployment: DeploymentFile = None,
    manifests: ManifestDir = None,
    api: ApiUrl = None,
    chunk_size: ChunkSize = 10_000,
    cursor: Annotated[
        Path | None,
        typer.Option(
            "--cursor",
            help="Write only what earlier runs with this file did not (incremental capture)",
        ),
    ] = None,
) -> None:
    """Write products and verified sales as an EPCIS 2.0 JSON-LD document.

    A `commissioning` ObjectEvent per registered product and a `retail_selling` ObjectEvent
    per sale of a verified batch; refunds are left out.
    """
    from chain.errors import LiveProofError
    from chain.exports.epcis import epcis_export

    w3, dep = connect_chain(rpc, deployment)
    source = manifest_source(manifests, api)
    try:
        with progress_bar() as progress:
            result = epcis_export(
                w3, dep, source, chunk_size=chunk_size, skipped=_warn_skipped, progress=progress,
                cursor_file=cursor,
            )  # fmt: skip
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    _write_json(out, result.document)
    console.print(
        f"wrote {result.products:,} commissioning and {result.sales:,} retail_selling events to "
        f"{out} (chain {result.chain_id} up to block {result.to_block}; "
        f"{result.refunds_left_out:,} refunds not exported)"
    )
    if result.duplicates:
        warn(f"{result.duplicates:,} repeated receipt ids exported once")
    for receipt_id in result.unknown_products:
        warn(
            f"sale 0x{receipt_id.hex()} not exported: its product is "
            "not registered, so it has no GTIN"
        )
    if not result.complete:
        error("the export is not complete (see the warnings)")
        raise typer.Exit(EXIT_FAILED)


@export_app.command("credentials")
def export_credentials_command(
    rpc: Rpc,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="A .json file (one JSON array) or a directory (one file per credential)"
        ),
    ],
    deployment: DeploymentFile = None,
    chunk_size: ChunkSize = 10_000,
) -> None:
    """Write each endorsement as a W3C Verifiable Credential 2.0 document.

    Issued by the anchor's did:pkh, with its AnchorRegistry transaction as evidence. The
    documents carry no proof: that transaction is it.
    """
    from chain.errors import LiveProofError
    from chain.exports.credentials import export_credentials, write_credentials

    w3, dep = connect_chain(rpc, deployment)
    try:
        with progress_bar() as progress:
            credentials = export_credentials(w3, dep, chunk_size=chunk_size, progress=progress)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    try:
        write_credentials(credentials, out)
    except OSError as exc:
        die(f"cannot write {out}: {exc.strerror or exc}", EXIT_USAGE)
    console.print(f"wrote {len(credentials):,} endorsement credentials to {out}")
