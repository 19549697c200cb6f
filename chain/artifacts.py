"""Load the committed contract artifacts (no compiler needed at run time)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from eth_hash.auto import keccak

from chain.errors import ConfigurationError
from chain.paths import project_root

#: The contracts ``liveproof deploy`` deploys, in deployment order.
DEPLOYED_CONTRACTS: Final = ("ProvenanceRegistry", "AnchorRegistry", "SaleLedger")


def artifact_path(name: str) -> Path:
    """Path of the committed artifact of contract ``name``."""
    return project_root() / "contracts" / "artifacts" / f"{name}.json"


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The artifact of contract ``name`` (abi, bytecode, deployedBytecode, compiler, sources)."""
    path = artifact_path(name)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"no artifact for {name} at {path}: run `liveproof compile`"
        ) from exc
    return data


def artifact_hash(name: str) -> str:
    """keccak256 of the artifact file's bytes, recorded in deployment files."""
    return "0x" + keccak(artifact_path(name).read_bytes()).hex()


def abi_type(item: Mapping[str, Any]) -> str:
    """The canonical ABI type of an ABI input entry (tuples spelled out), as in signatures."""
    kind: str = item["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in item["components"])
        return f"({inner}){kind[5:]}"
    return kind


def abi_of(name: str) -> list[dict[str, Any]]:
    """The ABI of contract ``name``."""
    abi: list[dict[str, Any]] = load_artifact(name)["abi"]
    return abi
