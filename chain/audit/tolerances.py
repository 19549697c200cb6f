"""The audit's stated tolerances: defaults shared by ``audit chain``, ``audit db`` and their
command-line options (one home, so a default said in the docs is the one applied)."""

from __future__ import annotations

from typing import Final

#: Seconds a receipt's ``orderedAt`` (the platform's clock) may stray past the chain's block
#: times: before its session opened, after it closed, after the block that committed it.
DEFAULT_CLOCK_TOLERANCE: Final = 300
#: Seconds after its session closed, or after its own order time, within which a sale may still
#: be committed (bounds backfilling and backdating).
DEFAULT_LATE_COMMIT_TOLERANCE: Final = 3_600
#: Sales under one buyer commitment from which a ``WARN:`` line names it.
DEFAULT_REUSE_THRESHOLD: Final = 5
