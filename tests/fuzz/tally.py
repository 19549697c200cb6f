"""A pytest plugin that counts the cases the fuzz tests really sent, reports the figure, and
fails the session when a complete fuzz run sent fewer than :data:`MINIMUM_CASES`.

The figure holds across pytest-xdist workers: each worker hands its count to the controller
through ``workeroutput``, so the plugin is registered from the root ``tests/conftest.py`` (an
xdist controller never imports ``tests/fuzz/conftest.py``). The minimum is enforced only when
every fuzz test was selected and none failed (skips are fine: without PostgreSQL the SQLite half
must reach it alone): for a ``-k`` subset, ``--lf`` or a failure, the choice or the failures
already say what matters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

#: The floor the fuzzing acceptance criterion sets for one run.
MINIMUM_CASES = 1_000
MARKER = "fuzz"
_OUTPUT_KEY = "liveproof_fuzz_tally"


@dataclass
class FuzzTally:
    """Fuzz tests collected, selected, passed and failed, the time they took and the cases
    they sent."""

    collected: int = 0
    selected: int = 0
    passed: int = 0
    failed: int = 0
    seconds: float = 0.0
    cases: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """All cases sent."""
        return sum(self.cases.values())

    @property
    def complete(self) -> bool:
        """Whether every fuzz test was selected and none failed, so the total is a whole
        run's."""
        return self.passed > 0 and self.selected == self.collected and self.failed == 0


def _is_fuzz(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None


class FuzzTallyPlugin:
    """The hooks; one instance per pytest process."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tally = FuzzTally()
        self.shortfall: str | None = None

    def record_case(self, nodeid: str) -> None:
        """One more case sent by the fuzz test ``nodeid``."""
        self.tally.cases[nodeid] += 1

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        """Count fuzz tests before any deselection."""
        if _is_fuzz(item):
            self.tally.collected += 1

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Count the fuzz tests that will run."""
        self.tally.selected = sum(1 for item in session.items if _is_fuzz(item))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count passed and failed fuzz tests and their time (an xdist controller sees every
        worker's reports)."""
        if MARKER not in report.keywords:
            return
        self.tally.failed += int(report.failed)
        if report.when == "call":
            self.tally.seconds += report.duration
            self.tally.passed += int(report.passed)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:  # noqa: ARG002 - hook spec
        """xdist controller: add a finished worker's collection counts and cases."""
        output = getattr(node, "workeroutput", {}).get(_OUTPUT_KEY)
        if output is None:
            return
        # Every worker collects the same items.
        self.tally.collected = max(self.tally.collected, int(output["collected"]))
        self.tally.selected = max(self.tally.selected, int(output["selected"]))
        self.tally.cases.update(output["cases"])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Workers hand their tally over; the process that reports checks the minimum."""
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[_OUTPUT_KEY] = {
                "collected": self.tally.collected,
                "selected": self.tally.selected,
                "cases": dict(self.tally.cases),
            }
            return
        if self.tally.complete and self.tally.total < MINIMUM_CASES:
            self.shortfall = (
                f"the fuzz tests sent {self.tally.total} generated cases; a run must send at "
                f"least {MINIMUM_CASES}"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One line with the figures, and the shortfall if any."""
        tally = self.tally
        if tally.selected == 0 or hasattr(self.config, "workeroutput"):
            return
        terminalreporter.write_sep("-", "fuzz")
        terminalreporter.write_line(
            f"{tally.total} generated cases sent by {len(tally.cases)} of {tally.selected} "
            f"fuzz tests in {tally.seconds:.1f} s of test time"
        )
        if self.shortfall is not None:
            terminalreporter.write_line(f"FAILED: {self.shortfall}", red=True, bold=True)


_PLUGIN_NAME = "liveproof-fuzz-tally"


def pytest_configure(config: pytest.Config) -> None:
    """Register this process's tally."""
    config.pluginmanager.register(FuzzTallyPlugin(config), _PLUGIN_NAME)


def fuzz_tally(config: pytest.Config) -> FuzzTallyPlugin:
    """This process's tally plugin."""
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    assert isinstance(plugin, FuzzTallyPlugin)
    return plugin
