"""Verified receipts: the leaves of every committed batch whose manifest rebuilds its root, for
reports and exports that must rest on the chain, not on the platform's word."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from web3 import Web3

from chain.audit.chain_audit import LEDGER_EVENTS, Progress
from chain.audit.manifests import Leaves, ManifestError, ManifestSource, parse_leaves
from chain.audit.registry import REGISTRY_EVENTS, Registry
from chain.deploy import Deployment
from chain.events import EventReader, ScanCursor


@dataclass(frozen=True)
class VerifiedBatch:
    """A committed batch and its leaves, rebuilt to the committed root."""

    root: bytes
    block_number: int
    tx_hash: str
    leaves: Leaves


@dataclass
class SkippedBatch:
    """A committed root whose manifest was missing or did not rebuild it."""

    root: bytes
    block_number: int
    why: str


def _step(progress: Progress | None, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, end: progress(phase, done, end)


def read_registry(
    w3: Web3,
    deployment: Deployment,
    *,
    to_block: int | None = None,
    chunk_size: int = 10_000,
    progress: Progress | None = None,
) -> Registry:
    """The registries' state from their events (``progress`` as ``audit chain`` takes it)."""
    reader = EventReader(w3, deployment, chunk_size=chunk_size)
    end = reader.latest_block() if to_block is None else to_block
    steps = _step(progress, "registry")
    return Registry.of(
        reader.iter_events(deployment.start_block, end, names=REGISTRY_EVENTS, progress=steps)
    )


def verified_batches(
    w3: Web3,
    deployment: Deployment,
    manifests: ManifestSource,
    *,
    to_block: int | None = None,
    chunk_size: int = 10_000,
    skipped: Callable[[SkippedBatch], None] | None = None,
    progress: Progress | None = None,
    cursor: ScanCursor | None = None,
) -> Iterator[VerifiedBatch]:
    """Each committed batch whose manifest rebuilds its root, in chain order; the others are
    handed to ``skipped`` (their leaves are not proven, so they are never counted).

    With ``cursor`` the scan resumes there and moves it past every batch handed out."""
    reader = EventReader(w3, deployment, chunk_size=chunk_size, cursor=cursor)
    end = reader.latest_block() if to_block is None else to_block
    steps = _step(progress, "ledger")
    start = None if cursor is not None else deployment.start_block
    for event in reader.iter_events(start, end, names=LEDGER_EVENTS, progress=steps):
        root = event.args["root"] if event.name == "BatchCommitted" else event.args["leaf"]
        try:
            manifest = manifests.get("0x" + root.hex())
            if manifest is None:
                raise ManifestError("no manifest")
            leaves = parse_leaves(manifest)
        except ManifestError as exc:
            if skipped is not None:
                skipped(SkippedBatch(root, event.block_number, str(exc)))
            continue
        if leaves.root() != root:
            if skipped is not None:
                skipped(SkippedBatch(root, event.block_number, "manifest does not rebuild root"))
            continue
        yield VerifiedBatch(root, event.block_number, event.tx_hash, leaves)
