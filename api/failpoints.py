"""Failpoints: named places where a fault-injection test can have the process killed.

``LIVEPROOF_FAILPOINTS=committer.after_seal`` (comma-separated names) makes the process
SIGKILL itself the first time it reaches that place, exactly as a crash or an OOM kill would
stop it there. Unset (always, outside tests) each check is one frozenset lookup.
"""

from __future__ import annotations

import os
import signal
from typing import Final

ENV: Final = "LIVEPROOF_FAILPOINTS"
#: Every failpoint, so a misspelt name in a test fails loudly instead of never firing.
KNOWN: Final = frozenset({"committer.after_seal", "committer.after_send"})

_ARMED: frozenset[str] = frozenset(
    name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()
)
if _ARMED - KNOWN:
    raise RuntimeError(f"{ENV} names unknown failpoints: {sorted(_ARMED - KNOWN)}")


def hit(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when ``name`` is armed."""
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
