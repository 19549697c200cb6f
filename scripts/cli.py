"""The ``liveproof`` command."""

from __future__ import annotations

import typer

from scripts.audit_commands import audit_app
from scripts.bench_commands import bench_app
from scripts.chain_commands import compile_command, deploy_command, gas_report_command
from scripts.devnet_commands import devnet_app
from scripts.export_commands import export_app
from scripts.local_run import demo_command, up_command
from scripts.report_commands import report_app
from scripts.service_commands import committer_command, db_app, keys_app, serve_command
from scripts.sign_commands import sign_app
from scripts.verify_commands import verify_receipt_command

app = typer.Typer(
    name="liveproof",
    help="LiveProof: ledger-backed provenance for live-streaming e-commerce.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("compile")(compile_command)
app.command("deploy")(deploy_command)
app.command("gas-report")(gas_report_command)
app.add_typer(devnet_app, name="devnet")
app.command("serve")(serve_command)
app.command("committer")(committer_command)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(bench_app, name="bench")
app.command("verify-receipt")(verify_receipt_command)
app.add_typer(sign_app, name="sign")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.command("demo")(demo_command)
app.command("up")(up_command)


if __name__ == "__main__":  # pragma: no cover
    app()
