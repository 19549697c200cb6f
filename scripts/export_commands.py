"""``liveproof export manifests|epcis|credentials``: keep what the platform published and what
the chain proves, in files and standard formats an auditor can archive and share.

``epcis`` and ``credentials`` print ``OK: <check>`` / ``FAIL: <check> <subject>: <expected> vs
<found>`` for the checks the export rests on, then what they wrote, and take ``--report FILE``.
Exit codes: 0 everything exported and every check holds, 1 a check failed (the export is
incomplete: a committed batch that does not verify, a sale or endorsement of an unregistered
product; or a receipt id committed twice, exported once), 2 bad usage or unreachable input.
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
from scripts.output import EXIT_USAGE, console, die

if TYPE_CHECKING:
    import httpx

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
    report_file: ReportFile = None,
) -> None:
    """Write products and verified sales as an EPCIS 2.0 JSON-LD document.

    A `commissioning` ObjectEvent per registered product and a `retail_selling` ObjectEvent
    per sale of a verified batch; refunds are left out. A batch that does not verify, a
    receipt id committed twice and a sale of an unregistered product are FAIL lines.
    """
    from chain.errors import LiveProofError
    from chain.exports.epcis import epcis_export

    w3, dep = connect_chain(rpc, deployment)
    source = manifest_source(manifests, api)
    try:
        with progress_bar() as progress:
            result = epcis_export(
                w3, dep, source, chunk_size=chunk_size, progress=progress, cursor_file=cursor
            )
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    _write_json(out, result.document)
    summary = (
        f"wrote {result.products:,} commissioning and {result.sales:,} retail_selling events to "
        f"{out} (chain {result.chain_id} up to block {result.to_block}; "
        f"{result.refunds_left_out:,} refunds not exported)"
    )
    if not result.complete:
        summary += "; the export is not complete"
    finish(result.audit_report(), report_file, summary=summary)


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
    issuer_key: Annotated[
        Path | None,
        typer.Option(
            "--issuer-key",
            help="PEM P-256 private key that signs the credentials (default: one kept in "
            ".liveproof/credential-issuer-key.pem, made on first use)",
        ),
    ] = None,
    cursor: CursorFile = None,
    report_file: ReportFile = None,
) -> None:
    """Write each endorsement as a W3C Verifiable Credential 2.0 document.

    Secured with an ecdsa-jcs-2019 Data Integrity proof by the issuer key (a did:key): the
    exporter attests that the chain records the endorsement. The subject is the anchor's
    did:pkh; the AnchorRegistry transactions that recorded (and revoked) it are the evidence.
    With --cursor a later run reads only new blocks and still writes every credential.
    """
    from chain.errors import LiveProofError
    from chain.exports.credentials import export_credentials, write_credentials
    from chain.exports.data_integrity import issuer_key as load_issuer_key

    w3, dep = connect_chain(rpc, deployment)
    try:
        key = load_issuer_key(issuer_key)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    made = ", made now" if key.created else ""
    shown = key.path.relative_to(Path.cwd()) if key.path.is_relative_to(Path.cwd()) else key.path
    console.print(f"issuer {key.did} (key {shown}{made})")
    try:
        with progress_bar() as progress:
            result = export_credentials(
                w3, dep, key, chunk_size=chunk_size, progress=progress, cursor_file=cursor
            )
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    try:
        write_credentials(result.credentials, out)
    except OSError as exc:
        die(f"cannot write {out}: {exc.strerror or exc}", EXIT_USAGE)
    read = (
        f"blocks {result.scanned_from}-{result.to_block} read"
        if result.scanned_from <= result.to_block
        else f"no new block after {result.to_block}"
    )
    finish(
        result.report,
        report_file,
        summary=f"wrote {len(result.credentials):,} endorsement credentials to {out} "
        f"({result.revoked:,} revoked; chain {result.chain_id}, {read})",
    )
