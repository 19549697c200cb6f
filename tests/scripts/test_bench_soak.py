"""The soak benchmark's short version, as CI runs it: a constant order rate for 15 s loses
nothing and commits nothing twice. (Its speed figures are reported, never asserted.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.faults
def test_a_short_soak_loses_nothing_and_duplicates_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "bench", "soak", "--json",
         "--minutes", "0.25", "--rate", "200"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["orders"] == 3_000
    assert report["accepted"] == 3_000
    assert report["errors"] == 0
    assert report["lost"] == 0
    assert report["duplicates"] == 0
    # The server's memory was read from /proc at each point (all its processes).
    assert min(report["rss_start_mb"], report["rss_warm_mb"], report["rss_end_mb"]) > 50
