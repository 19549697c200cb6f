"""`liveproof compile --check` against the committed artifacts and a changed source."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIVEPROOF = [sys.executable, "-m", "scripts.cli"]

pytestmark = pytest.mark.skipif(
    not (ROOT / "node_modules" / "solc").is_dir(), reason="npm solc not installed (run npm ci)"
)


def _checkout_copy(tmp_path: Path) -> Path:
    """A minimal checkout: pyproject marker, contracts and node_modules (linked)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    return tmp_path


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIVEPROOF_HOME": str(home)}
    return subprocess.run(
        [*LIVEPROOF, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_check_passes_on_committed_artifacts(tmp_path: Path) -> None:
    home = _checkout_copy(tmp_path)
    result = _run("compile", "--check", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: committed artifacts match a fresh compile" in result.stdout


def test_check_fails_after_uncompiled_source_change(tmp_path: Path) -> None:
    home = _checkout_copy(tmp_path)
    source = home / "contracts" / "src" / "SaleLedger.sol"
    text = source.read_text()
    source.write_text(text.replace("if (leaf == bytes32(0)) revert EmptyBatch();", ""))
    result = _run("compile", "--check", home=home)
    assert result.returncode == 1
    assert "FAIL: SaleLedger: committed artifact differs from a fresh compile" in result.stdout
    # Compiling brings the artifacts back in line with the changed source.
    assert _run("compile", home=home).returncode == 0
    assert _run("compile", "--check", home=home).returncode == 0


def test_check_reports_a_missing_artifact(tmp_path: Path) -> None:
    home = _checkout_copy(tmp_path)
    (home / "contracts" / "artifacts" / "AnchorRegistry.json").unlink()
    result = _run("compile", "--check", home=home)
    assert result.returncode == 1
    assert "FAIL: AnchorRegistry: no committed artifact" in result.stdout


def test_compile_error_is_a_clear_usage_error(tmp_path: Path) -> None:
    home = _checkout_copy(tmp_path)
    source = home / "contracts" / "src" / "SaleLedger.sol"
    source.write_text(source.read_text().replace("contract SaleLedger", "contract SaleLedger oops"))
    result = _run("compile", home=home)
    assert result.returncode == 2
    assert "ParserError" in result.stderr
