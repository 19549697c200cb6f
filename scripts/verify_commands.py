"""``liveproof verify-receipt``: the shopper's check of a proof bundle, with no API at all.

The bundle is the platform's claim: an unusable one (not JSON, a broken shape rule) exits 2
with ``error: unusable bundle: <what>``; anything the chain contradicts is one
``FAIL: <check>: <expected> vs <found>`` line and exit 1. No exception text reaches the user.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scripts.output import EXIT_FAILED, EXIT_USAGE, die, err_console, fail, ok


def read_bundle(bundle_file: Path) -> Any:
    """The bundle file's JSON; exits 2 (``unusable bundle``) for anything that is not JSON."""
    try:
        text = bundle_file.read_text(encoding="utf-8")
    except OSError as exc:
        die(f"cannot read {bundle_file}: {exc.strerror or exc}", EXIT_USAGE)
    except UnicodeDecodeError:
        die(f"unusable bundle: not UTF-8 text ({bundle_file})", EXIT_USAGE)
    # Deep nesting raises RecursionError: ``chain`` keeps the recursion limit where the C
    # stack holds it (see chain/__init__.py).
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        die(f"unusable bundle: not JSON: {exc.msg}, line {exc.lineno} ({bundle_file})")
    except RecursionError:
        die(f"unusable bundle: nested too deeply to be a proof bundle ({bundle_file})")


def receipt_id_of(code: str) -> bytes:
    """The receiptId of a receipt code (``lp1...``) or a 0x-prefixed receiptId; exits 2 for
    anything else."""
    text = code.strip()
    if text.lower().startswith("0x"):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raw = b""
        if len(raw) == 32 and len(text) == 66:
            return raw
        die("--receipt must be a receipt code or a 0x-prefixed 32-byte receiptId", EXIT_USAGE)
    from api.problems import ProblemError
    from api.receipt_codes import decode

    try:
        return decode(text)
    except ProblemError:
        die("--receipt must be a receipt code or a 0x-prefixed 32-byte receiptId", EXIT_USAGE)


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
    receipt: Annotated[
        str | None,
        typer.Option(
            "--receipt",
            help="Your receipt code (or receiptId): the bundle must be this receipt's, not "
            "another real receipt's",
        ),
    ] = None,
) -> None:
    """Check a receipt's proof bundle against the chain: OK and exit 0, FAIL and exit 1,
    exit 2 for an unusable bundle or an unreachable RPC."""
    from chain.connect import connect, require_connection
    from chain.errors import LiveProofError, RpcUnavailableError, VerificationError
    from chain.proof_bundle import BundleFormatError, ProofBundle, verify_bundle

    data = read_bundle(bundle_file)
    try:
        bundle = ProofBundle.parse(data)
    except BundleFormatError as exc:
        die(f"unusable bundle: {exc} ({bundle_file})", EXIT_USAGE)
    if receipt is not None:
        expected = receipt_id_of(receipt)
        if expected != bundle.leaf.receipt_id:
            fail("receipt", f"0x{expected.hex()} vs 0x{bundle.leaf.receipt_id.hex()}")
            raise typer.Exit(EXIT_FAILED)
        ok(f"the bundle is receipt 0x{expected.hex()}'s")
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
