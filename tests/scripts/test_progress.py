"""The auditor commands' progress bar: drawn on a terminal, from the scan's first block, with
the unit each phase counts; silent when stderr is not a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress

from scripts import audit_options


def _draw(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120, color_system=None)
    monkeypatch.setattr(audit_options, "err_console", console)
    with audit_options.progress_bar() as progress:
        progress("ledger", 20_000_001, 20_000_100)
        progress("ledger", 20_000_050, 20_000_100)
        progress("database", 3, 7)
    return out.getvalue()


def test_the_bar_counts_blocks_from_the_first_one_and_batches_by_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn = _draw(monkeypatch, terminal=True)
    assert "ledger" in drawn
    assert "block 20,000,050/20,000,100" in drawn
    assert "batches 3/7" in drawn


def test_no_bar_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _draw(monkeypatch, terminal=False) == ""


def test_a_block_scan_runs_from_its_first_block(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[float, float | None]] = []
    real_update = Progress.update

    def update(self: Progress, task: object, **fields: object) -> None:
        real_update(self, task, **fields)  # type: ignore[arg-type]
        seen.append((float(fields["completed"]), fields["total"]))  # type: ignore[arg-type]

    monkeypatch.setattr(Progress, "update", update)
    _draw(monkeypatch, terminal=True)
    # 50 of the 100 blocks scanned: half way, not 99.99975% of the chain.
    assert seen[1] == (50.0, 100)
    assert seen[2] == (3.0, 7)
