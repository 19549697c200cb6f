"""Every check an audit runs has a red-team test in which it fails: a check added without a
staged lie that trips it fails here, naming it."""

from __future__ import annotations

from pathlib import Path

from chain.audit.contracts import CONTRACT_CHECKS
from chain.audit.findings import CHAIN_CHECKS
from scripts.audit_db import DB_CHECKS

_HERE = Path(__file__).parent


def test_every_check_of_every_audit_is_named_by_a_red_team_test() -> None:
    sources = "".join(
        path.read_text(encoding="utf-8")
        for path in _HERE.glob("test_*.py")
        if path.name != Path(__file__).name
    )
    checks = {*CHAIN_CHECKS, *CONTRACT_CHECKS, *DB_CHECKS}
    assert len(checks) >= 25
    unstaged = sorted(name for name in checks if f'"{name}"' not in sources)
    assert unstaged == []
