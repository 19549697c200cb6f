"""``liveproof verify-receipt``: the shopper's check of a proof bundle, with no API at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scripts.output import EXIT_FAILED, EXIT_USAGE, die, err_console, fail, ok


def verify_receipt_command(
    bundle_file: Annotated[Path, typer.Argument(help="The proof bundle (JSON) to check")],
    rpc: Annotated[
        str,
        typer.Option("--rpc", help="Any JSON-RPC URL of the bundle's chain"),
    ],
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="The SaleLedger address you trust (from the deployment file); without it the "
            "bundle's own is used",
        ),
    ] = None,
) -> None:
    """Check a receipt's proof bundle against the chain: OK and exit 0, FAIL and exit 1,
    exit 2 for an unusable bundle or an unreachable RPC."""
    from chain.connect import connect, require_connection
    from chain.errors import LiveProofError, RpcUnavailableError, VerificationError
    from chain.proof_bundle import BundleFormatError, ProofBundle, verify_bundle

    try:
        data = json.loads(bundle_file.read_text(encoding="utf-8"))
    except OSError as exc:
        die(f"cannot read {bundle_file}: {exc.strerror or exc}", EXIT_USAGE)
    except json.JSONDecodeError as exc:
        die(f"{bundle_file} is not JSON: {exc.msg} (line {exc.lineno})", EXIT_USAGE)
    try:
        bundle = ProofBundle.parse(data)
    except BundleFormatError as exc:
        die(f"{bundle_file} is not a usable proof bundle: {exc}", EXIT_USAGE)
    if ledger is not None:
        try:
            trusted = bytes.fromhex(ledger.removeprefix("0x"))
        except ValueError:
            trusted = b""
        if len(trusted) != 20:
            die("--ledger must be a 0x-prefixed 20-byte address", EXIT_USAGE)
        if trusted != bytes.fromhex(bundle.ledger.removeprefix("0x")):
            fail("ledger address", f"{ledger} vs {bundle.ledger}")
            raise typer.Exit(EXIT_FAILED)
        ok(f"ledger {bundle.ledger} is the one given with --ledger")
    try:
        w3 = connect(rpc)
        require_connection(w3)
        for check in verify_bundle(w3, bundle):
            ok(check.item)
        if ledger is None:
            err_console.print(
                f"note: the ledger address {bundle.ledger} came from the bundle; pass --ledger "
                "with the address from the deployment file to pin it",
                soft_wrap=True,
            )
    except VerificationError as exc:
        fail(exc.what, f"{exc.expected} vs {exc.found}")
        raise typer.Exit(EXIT_FAILED) from None
    except RpcUnavailableError as exc:
        die(str(exc), EXIT_USAGE)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    except Exception as exc:  # a node that drops mid-check is unreachable input, not a FAIL
        die(f"the RPC failed during the check: {type(exc).__name__}: {exc}", EXIT_USAGE)
