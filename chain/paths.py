"""Where LiveProof's checkout, local state and node tools live on disk."""

from __future__ import annotations

import os
from pathlib import Path

from chain.errors import ConfigurationError

HOME_ENV = "LIVEPROOF_HOME"
_MARKER = "pyproject.toml"


def project_root() -> Path:
    """Return the checkout root: ``$LIVEPROOF_HOME`` or the nearest dir holding pyproject.toml."""
    override = os.environ.get(HOME_ENV)
    if override:
        root = Path(override).expanduser().resolve()
        if not root.is_dir():
            raise ConfigurationError(f"{HOME_ENV}={override} is not a directory")
        return root
    here = Path(__file__).resolve().parent
    for candidate in (here, *here.parents):
        if (candidate / _MARKER).is_file():
            return candidate
    # Only reachable from a non-editable install, where the checkout is unknown.
    raise ConfigurationError(
        f"cannot find the LiveProof checkout above {here}; set {HOME_ENV} to its path"
    )


def state_dir() -> Path:
    """Return ``<root>/.liveproof``, creating it on first use."""
    path = project_root() / ".liveproof"
    path.mkdir(parents=True, exist_ok=True)
    return path


def node_bin(name: str) -> Path:
    """Return the path of an npm-installed executable under ``node_modules/.bin``."""
    if not name or Path(name).name != name:
        raise ConfigurationError(f"not a bare executable name: {name!r}")
    return project_root() / "node_modules" / ".bin" / name
