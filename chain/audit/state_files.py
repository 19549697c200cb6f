"""The JSON files that let a scan resume (``--cursor FILE``): written atomically, read with
their format checked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chain.errors import ConfigurationError


def write_state(path: Path, fmt: str, data: dict[str, Any]) -> None:
    """Write ``data`` tagged with ``fmt`` to ``path``; a crash leaves the old file or the new."""
    tmp = path.with_name(path.name + ".tmp")
    payload = json.dumps({"format": fmt, **data}, separators=(",", ":"), ensure_ascii=False)
    tmp.write_text(payload, encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path, fmt: str) -> dict[str, Any]:
    """The data of a state file of format ``fmt``; raises ConfigurationError otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path} is not a usable cursor file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ConfigurationError(f"{path} is not a usable cursor file: not {fmt}")
    return data


def unusable(path: Path, exc: Exception) -> ConfigurationError:
    """The error for a state file whose fields do not parse."""
    return ConfigurationError(f"{path} is not a usable cursor file: {exc!r}")
