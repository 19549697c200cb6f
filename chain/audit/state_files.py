"""The JSON files that let a scan resume (``--cursor FILE``): written atomically, read with
their format checked, and bound to the chain and contracts they describe, so that a cursor made
for one deployment is never read against another (it would silently skip blocks)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chain.deploy import Deployment
from chain.errors import ConfigurationError


def scope_of(deployment: Deployment) -> dict[str, Any]:
    """What a cursor file is valid for: the chain id and every contract's address."""
    return {
        "chainId": deployment.chain_id,
        "contracts": {name: c.address.lower() for name, c in sorted(deployment.contracts.items())},
    }


def state_json(fmt: str, data: dict[str, Any], deployment: Deployment) -> str:
    """``data`` as JSON, tagged with ``fmt`` and ``deployment``'s scope."""
    return json.dumps(
        {"format": fmt, "scope": scope_of(deployment), **data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def parse_state(text: str, path: Path, fmt: str, deployment: Deployment) -> dict[str, Any]:
    """The data of :func:`state_json` output of format ``fmt`` for ``deployment`` (read from
    ``path``, named in errors); raises ConfigurationError otherwise."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a usable cursor file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ConfigurationError(f"{path} is not a usable cursor file: not {fmt}")
    check_scope(path, data.get("scope"), deployment)
    return data


def write_state(path: Path, fmt: str, data: dict[str, Any], deployment: Deployment) -> None:
    """Write ``data`` tagged with ``fmt`` and ``deployment``'s scope to ``path``; a crash leaves
    the old file or the new."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state_json(fmt, data, deployment), encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path, fmt: str, deployment: Deployment) -> dict[str, Any]:
    """The data of a state file of format ``fmt`` written for ``deployment``; raises
    ConfigurationError otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path} is not a usable cursor file: {exc}") from None
    return parse_state(text, path, fmt, deployment)


def check_scope(path: Path, scope: Any, deployment: Deployment) -> None:
    """Raise ConfigurationError unless ``scope`` (as stored) is ``deployment``'s."""
    expected = scope_of(deployment)
    if scope != expected:
        found = (
            f"chain {scope.get('chainId')}, contracts {scope.get('contracts')}"
            if isinstance(scope, dict)
            else "no chain and contracts recorded"
        )
        raise ConfigurationError(
            f"{path} was written for another deployment ({found}); this audit is of chain "
            f"{expected['chainId']}, contracts {expected['contracts']}: use another cursor file"
        )


def unusable(path: Path, exc: Exception) -> ConfigurationError:
    """The error for a state file whose fields do not parse."""
    return ConfigurationError(f"{path} is not a usable cursor file: {exc!r}")


def check_resume_point(next_block: int, latest_block: int) -> None:
    """Raise ConfigurationError when a cursor resumes past the chain's latest block: the chain
    was reset (a devnet's contract addresses repeat, so the deployment check cannot tell), and
    the cursor's tallies describe a chain that is gone."""
    if next_block > latest_block + 1:
        raise ConfigurationError(
            f"the cursor resumes at block {next_block}, past the chain's latest block "
            f"{latest_block}: was the chain reset? use another cursor file"
        )
