"""``liveproof audit contracts``: the deployed code against the committed artifacts."""

from __future__ import annotations

from scripts.audit_options import DeploymentFile, ReportFile, Rpc, connect_chain, finish
from scripts.output import EXIT_USAGE, die, ok


def audit_contracts_command(
    rpc: Rpc,
    deployment: DeploymentFile = None,
    report: ReportFile = None,
) -> None:
    """Compare each deployed contract's runtime code with its committed artifact.

    Immutables are masked; an exact or partial (metadata only) match passes, other code or
    none fails.
    """
    from chain.audit.contracts import PASSING, audit_contracts
    from chain.errors import LiveProofError

    w3, dep = connect_chain(rpc, deployment)
    try:
        result, verdicts = audit_contracts(w3, dep)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)
    for verdict in verdicts:
        if verdict.passed:
            ok(f"contract-code {verdict.subject}: {PASSING[verdict.match]}")
    passed = sum(v.passed for v in verdicts)
    finish(
        result,
        report,
        summary=(
            f"{passed} of {len(verdicts)} contracts match their artifacts at block "
            f"{result.stats['block']} of chain {result.stats['chain_id']}"
        ),
    )
