"""``liveproof devnet up|down|status``: the local anvil from node_modules."""

from __future__ import annotations

from typing import Annotated

import typer

from chain.devnet import DEFAULT_PORT, anvil_status, start_anvil, stop_anvil
from scripts.output import EXIT_FAILED, console, errors_as_exit_codes

devnet_app = typer.Typer(
    help="Run the local anvil devnet (state kept under .liveproof/).", no_args_is_help=True
)

PortOption = Annotated[int, typer.Option("--port", help="Port on 127.0.0.1")]


@devnet_app.command("up")
def devnet_up(port: PortOption = DEFAULT_PORT) -> None:
    """Start anvil (or find it running), wait until it answers, write its pid file."""
    with errors_as_exit_codes():
        info = start_anvil(port)
    console.print(
        f"anvil up: {info.rpc_url} chain {info.chain_id} block {info.block_number} pid {info.pid}"
    )
    console.print(f"  state: {info.state_file}  log: {info.log_file}")


@devnet_app.command("down")
def devnet_down(port: PortOption = DEFAULT_PORT) -> None:
    """Stop anvil (its state is dumped to the state file first)."""
    with errors_as_exit_codes():
        stopped = stop_anvil(port)
    console.print("anvil stopped" if stopped else f"no anvil of ours on port {port}")


@devnet_app.command("status")
def devnet_status(port: PortOption = DEFAULT_PORT) -> None:
    """Say whether anvil is running and answering; exit 1 when it is not."""
    with errors_as_exit_codes():
        info = anvil_status(port)
    if info is None:
        console.print(f"anvil: not running on port {port}")
        raise typer.Exit(EXIT_FAILED)
    console.print(
        f"anvil: running {info.rpc_url} chain {info.chain_id} "
        f"block {info.block_number} pid {info.pid}"
    )
