"""``liveproof audit contracts``: the deployed code, its wiring and its role holders against
the committed artifacts and the deployment file."""

from __future__ import annotations

from scripts.audit_options import DeploymentFile, ReportFile, Rpc, connect_chain, finish
from scripts.output import EXIT_USAGE, die, ok


def audit_contracts_command(
    rpc: Rpc,
    deployment: DeploymentFile = None,
    report: ReportFile = None,
) -> None:
    """Prove each deployed contract is the audited source, built and held as the file says.

    Creation blocks and transactions are located on the chain; runtime code must match the
    artifact exactly (other metadata or extra bytes fail); immutables and constructor
    arguments must be the deployment's; role holders and recorders must be accounts the file
    names."""
    from chain.audit.contracts import audit_contracts
    from chain.errors import LiveProofError

    w3, dep = connect_chain(rpc, deployment)
    try:
        result = audit_contracts(w3, dep)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    for line in result.passed:
        ok(line)
    passed = sum(v.passed for v in result.verdicts)
    stats = result.report.stats
    finish(
        result.report,
        report,
        summary=(
            f"{passed} of {len(result.verdicts)} contracts match their artifacts at block "
            f"{stats['block']} of chain {stats['chain_id']}"
        ),
    )
