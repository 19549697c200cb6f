"""Compile the Solidity sources into committed artifacts.

py-solc-x drives npm's ``solc`` (the official compiler built with emscripten) through
``chain/solc_shim.cjs``, which answers like a native binary. Sources are passed by content in
standard-JSON, so the compiler never reads the file system and the build is reproducible: the
compiler version, optimizer settings and ``bytecodeHash`` are pinned below.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from chain.errors import ConfigurationError, LiveProofError, ToolNotFoundError
from chain.paths import project_root

#: The exact compiler release the artifacts are built with (npm ``solc``).
SOLC_VERSION = "0.8.37"

#: Compiler settings; changing any of them changes every artifact.
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 20_000},
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
            ]
        }
    },
}

#: Source directories compiled, relative to the project root, and what they hold.
SOURCE_DIRS = ("contracts/src", "contracts/test")
ARTIFACTS_DIR = "contracts/artifacts"

_IMPORT = re.compile(r'^\s*import\s+(?:[^"\']*\s+from\s+)?["\']([^"\']+)["\']\s*;', re.MULTILINE)


class CompilationError(LiveProofError):
    """The compiler rejected the sources; the message holds its diagnostics."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract as written to ``contracts/artifacts/<name>.json``."""

    name: str
    data: dict[str, Any]

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, two-space indent, final newline)."""
        return json.dumps(self.data, indent=2, sort_keys=True) + "\n"


def _keccak_hex(data: bytes) -> str:
    return "0x" + keccak(data).hex()


def _resolve_import(importer: str, target: str) -> str:
    if target.startswith("."):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), target))
    return target


def _read_unit(root: Path, unit: str) -> str:
    path = root / "node_modules" / unit if unit.startswith("@") else root / unit
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        hint = " (run `npm ci`)" if unit.startswith("@") else ""
        raise ConfigurationError(f"Solidity source {unit} not found at {path}{hint}") from exc


def collect_sources(root: Path | None = None) -> dict[str, str]:
    """Return every source unit to compile, imports included, keyed by source unit name."""
    base = root or project_root()
    pending: list[str] = []
    for directory in SOURCE_DIRS:
        pending.extend(
            path.relative_to(base).as_posix() for path in sorted((base / directory).rglob("*.sol"))
        )
    if not pending:
        raise ConfigurationError(f"no Solidity sources under {', '.join(SOURCE_DIRS)} in {base}")
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(base, unit)
        sources[unit] = text
        pending.extend(_resolve_import(unit, target) for target in _IMPORT.findall(text))
    return dict(sorted(sources.items()))


def standard_json_input(sources: Mapping[str, str]) -> dict[str, Any]:
    """Build the compiler's standard-JSON input with sources passed by content."""
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": COMPILER_SETTINGS,
    }


def solc_shim_path() -> Path:
    """Path of the shim that makes npm's solc answer like a native binary."""
    return Path(__file__).with_name("solc_shim.cjs")


def run_compiler(input_json: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """Run py-solc-x on ``input_json`` with the npm compiler and return its output."""
    import shutil
    import subprocess

    import solcx
    from solcx.exceptions import SolcError

    base = root or project_root()
    if shutil.which("node") is None:
        raise ToolNotFoundError("node is not installed; LiveProof compiles with npm's solc")
    if not (base / "node_modules" / "solc").is_dir():
        raise ToolNotFoundError(f"npm package solc not found in {base}/node_modules: run `npm ci`")
    version = subprocess.run(
        [str(solc_shim_path()), "--version"], capture_output=True, text=True, check=False
    ).stdout
    if f"Version: {SOLC_VERSION}+" not in version:
        raise ConfigurationError(
            f"solc {SOLC_VERSION} required, node_modules has {version.strip() or 'none'}: "
            "run `npm ci`"
        )
    try:
        output: dict[str, Any] = solcx.compile_standard(
            input_json, solc_binary=solc_shim_path(), allow_empty=False
        )
    except SolcError as exc:
        raise CompilationError(str(exc)) from exc
    return output


def _compiler_long_version() -> str:
    import subprocess

    text = subprocess.run(
        [str(solc_shim_path()), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"Version: (\S+)", text)
    if match is None:  # pragma: no cover - run_compiler already checked the version
        raise ConfigurationError(f"cannot read the solc version from {text!r}")
    return match.group(1).removesuffix(".Emscripten.clang")


def build_artifacts(root: Path | None = None) -> list[Artifact]:
    """Compile every contract under :data:`SOURCE_DIRS` and return their artifacts."""
    base = root or project_root()
    sources = collect_sources(base)
    output = run_compiler(standard_json_input(sources), base)
    long_version = _compiler_long_version()
    own_units = [unit for unit in sources if not unit.startswith("@")]
    artifacts: list[Artifact] = []
    for unit in own_units:
        for name, contract in sorted(output.get("contracts", {}).get(unit, {}).items()):
            bytecode = contract["evm"]["bytecode"]["object"]
            if not bytecode or not contract["abi"]:  # interfaces, abstract, internal libraries
                continue
            deployed = contract["evm"]["deployedBytecode"]
            artifacts.append(
                Artifact(
                    name=name,
                    data={
                        "format": "liveproof-artifact/1",
                        "contractName": name,
                        "sourceName": unit,
                        "abi": contract["abi"],
                        "bytecode": "0x" + bytecode,
                        "deployedBytecode": "0x" + deployed["object"],
                        "immutableReferences": deployed.get("immutableReferences", {}),
                        "compiler": {"version": long_version, "settings": COMPILER_SETTINGS},
                        "sourceHashes": {
                            src: _keccak_hex(text.encode()) for src, text in sources.items()
                        },
                    },
                )
            )
    return artifacts


def artifacts_dir(root: Path | None = None) -> Path:
    """Directory holding the committed artifacts."""
    return (root or project_root()) / ARTIFACTS_DIR


def write_artifacts(artifacts: Iterable[Artifact], root: Path | None = None) -> list[Path]:
    """Write artifacts as ``<name>.json``, removing stale ones; return the paths written."""
    out = artifacts_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for artifact in artifacts:
        path = out / f"{artifact.name}.json"
        path.write_text(artifact.to_json(), encoding="utf-8")
        written.append(path)
    for stale in set(out.glob("*.json")) - set(written):
        stale.unlink()
    return written


def check_artifacts(root: Path | None = None) -> list[str]:
    """Recompile and list every difference from the committed artifacts (empty: all match)."""
    out = artifacts_dir(root)
    fresh = {artifact.name: artifact.to_json() for artifact in build_artifacts(root)}
    committed = {path.stem: path.read_text(encoding="utf-8") for path in out.glob("*.json")}
    problems = []
    for name in sorted(fresh.keys() | committed.keys()):
        if name not in committed:
            problems.append(f"{name}: no committed artifact")
        elif name not in fresh:
            problems.append(f"{name}: committed artifact has no source")
        elif fresh[name] != committed[name]:
            problems.append(f"{name}: committed artifact differs from a fresh compile")
    return problems
