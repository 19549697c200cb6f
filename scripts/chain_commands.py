"""``liveproof compile``, ``deploy`` and ``gas-report``."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.artifacts import DEPLOYED_CONTRACTS
from chain.compile import build_artifacts, check_artifacts, write_artifacts
from chain.connect import connect, redact_url, require_connection, rpc_url_from_env
from chain.keys import account_or_dev_key
from scripts.output import EXIT_FAILED, console, errors_as_exit_codes, fail, ok

DEPLOYER_KEY_ENV = "LIVEPROOF_DEPLOYER_KEY"

RpcOption = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        help="JSON-RPC URL, or 'embedded' (default: $LIVEPROOF_RPC_URL or the local devnet)",
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help=f"Deployer: a keystore path, or the NAME of an env variable holding a key or keystore "
        f"path (default: ${DEPLOYER_KEY_ENV}; on a local devnet its first dev account)",
    ),
]


def deployer_account(w3: Web3, key: str | None) -> LocalAccount:
    """The deploying account: ``--key``, else ``$LIVEPROOF_DEPLOYER_KEY``, else a dev key on a
    local chain. Dev keys on other chains are refused by the relayer."""
    source = key or (DEPLOYER_KEY_ENV if os.environ.get(DEPLOYER_KEY_ENV) else None)
    return account_or_dev_key(
        source, int(w3.eth.chain_id), what=f"deployer (--key or ${DEPLOYER_KEY_ENV})"
    )


def _connect(rpc: str | None) -> Web3:
    url = rpc or rpc_url_from_env()
    w3 = connect(url)
    require_connection(w3)
    return w3


def compile_command(
    check: Annotated[
        bool, typer.Option("--check", help="Recompile and exit 1 if any committed artifact differs")
    ] = False,
) -> None:
    """Compile contracts/ into contracts/artifacts/ (or check the committed artifacts)."""
    with errors_as_exit_codes():
        if check:
            problems = check_artifacts()
            for problem in problems:
                name, _, why = problem.partition(": ")
                fail(name, why)
            if problems:
                raise typer.Exit(EXIT_FAILED)
            ok("committed artifacts match a fresh compile")
            return
        for path in write_artifacts(build_artifacts()):
            console.print(f"wrote {path}")


def deploy_command(rpc: RpcOption = None, key: KeyOption = None) -> None:
    """Deploy ProvenanceRegistry, AnchorRegistry and SaleLedger; write deployments/<chainId>.json.

    Re-running against a chain that has them sends nothing and checks their code."""
    from chain.deploy import deploy, deployment_path

    with errors_as_exit_codes():
        w3 = _connect(rpc)
        deployment, sent = deploy(w3, deployer_account(w3, key))
        verb = "deployed" if sent else "already deployed (code checked)"
        console.print(
            f"chain {deployment.chain_id} at {redact_url(rpc or rpc_url_from_env())}: {verb}"
        )
        for name in DEPLOYED_CONTRACTS:
            contract = deployment.contracts[name]
            console.print(f"  {name:<20} {contract.address}  block {contract.block_number}")
        console.print(f"deployment file: {deployment_path(deployment.chain_id)}")


def gas_report_command(
    rpc: RpcOption = None,
    key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Deploy to a fresh chain and print the gas used by each operation.

    Without --rpc a throw-away anvil is started and stopped."""
    from chain.devnet import throwaway_anvil
    from chain.gas_report import GAS_TARGETS, measure_gas

    with errors_as_exit_codes():
        if rpc is None:
            with throwaway_anvil() as info:
                w3 = _connect(info.rpc_url)
                report = measure_gas(w3, deployer_account(w3, key))
        else:
            w3 = _connect(rpc)
            report = measure_gas(w3, deployer_account(w3, key))
    if as_json:
        console.print_json(json.dumps(report.gas))
        return
    console.print(f"gas used on chain {report.chain_id} (whole transaction, 21,000 base included)")
    for name, used in report.gas.items():
        target = GAS_TARGETS.get(name)
        suffix = f"  (target <= {target:,})" if target else ""
        console.print(f"  {name:<28} {used:>10,}{suffix}")
    for name, (used, target) in report.misses().items():
        fail(name, f"{used:,} gas vs target {target:,}")
