"""``liveproof bench audit`` builds its own chain (sales over several sessions and products,
with refunds), audits it clean and reports the figures the auditor issue asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_audit_reports_a_clean_audit_of_the_receipts_it_built() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "bench", "audit", "--json", "--receipts", "3000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"receipts", "seconds", "receipts_per_s", "peak_rss_mb"} <= set(report)
    assert report["receipts"] == 3000
    assert report["batches"] == 3
    assert report["ok"] is True
    assert abs(report["receipts_per_s"] * report["seconds"] - 3000) < 3000 * 0.02
    assert report["peak_rss_mb"] > 10
