"""Batch manifests read, parsed, hashed and folded to their roots, in worker processes.

Reading a manifest and rebuilding its Merkle root is most of an audit's work (two keccak
permutations and a dozen decoded fields per leaf) and needs nothing from the other batches,
so it runs on every core; the audit then judges the batches in chain order in its own process.
Small audits stay in one process: the pool starts after :data:`POOL_AFTER` batches.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from chain.audit.manifests import ApiManifests, Leaves, ManifestError, ManifestSource, parse_leaves

#: Batches loaded in the audit's own process before worker processes are started.
POOL_AFTER: Final = 4

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoadedBatch:
    """A batch's manifest, parsed and folded: the leaves and their root, or why not."""

    leaves: Leaves | None
    root: bytes | None
    #: None: loaded; "" : there is no manifest; else what is wrong with it
    problem: str | None = None


def load_batch(source: ManifestSource, root: str) -> LoadedBatch:
    """Read ``root``'s manifest from ``source``, parse its leaves and rebuild its root. Never
    raises for what is wrong with one batch's manifest or its source: that is the problem."""
    try:
        manifest = source.get(root)
        if manifest is None:
            return LoadedBatch(None, None, "")
        claimed = manifest.get("root", root)
        if not isinstance(claimed, str) or claimed.lower() != root.lower():
            shown = claimed if isinstance(claimed, str) else repr(claimed)
            return LoadedBatch(None, None, f"the manifest of another root: {shown[:80]}")
        leaves = parse_leaves(manifest)
    except (ManifestError, RecursionError, MemoryError) as exc:
        return LoadedBatch(None, None, str(exc) or type(exc).__name__)
    rebuilt = leaves.root()
    # The leaf hashes are not judged: not sent back (every other column is). Columns that
    # repeat a few values (a live room's session, products, endorsements) share one object per
    # value: the batch pickles smaller, and the audit hashes each value once.
    memo: dict[bytes, bytes] = {}

    def shared(column: list[bytes]) -> list[bytes]:
        return [memo.setdefault(v, v) for v in column]

    slim = replace(
        leaves, hashes=[], refers_to=shared(leaves.refers_to), room_id=shared(leaves.room_id),
        session_id=shared(leaves.session_id), product_id=shared(leaves.product_id),
        endorsement_id=shared(leaves.endorsement_id), currency=shared(leaves.currency),
    )  # fmt: skip
    return LoadedBatch(slim, rebuilt)


_worker_source: ManifestSource | None = None


def _start_worker(source: ManifestSource) -> None:
    global _worker_source
    # An HTTP client's pooled connections must not be shared with the parent across fork.
    _worker_source = source.reopened() if isinstance(source, ApiManifests) else source


def _load_in_worker(root: str) -> LoadedBatch:
    assert _worker_source is not None
    return load_batch(_worker_source, root)


def default_jobs() -> int:
    """Worker processes to use: the CPUs this process may run on (1 where fork is missing)."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, len(os.sched_getaffinity(0)))


def loaded_in_order(
    source: ManifestSource,
    items: Iterable[T],
    root_of: Callable[[T], str],
    *,
    jobs: int | None = None,
    pool_after: int | None = None,
) -> Iterator[tuple[T, LoadedBatch]]:
    """Each of ``items`` with its loaded batch, in order; up to ``jobs`` processes load ahead
    once ``pool_after`` items were loaded here. A source that fails (an unreachable API, junk,
    a hang past its deadline) fails its batches' loads, never the iteration."""
    jobs = default_jobs() if jobs is None else jobs
    pool_after = POOL_AFTER if pool_after is None else pool_after
    pool: ProcessPoolExecutor | None = None
    ahead: deque[tuple[T, Future[LoadedBatch]]] = deque()
    try:
        for count, item in enumerate(items):
            if jobs <= 1 or count < pool_after:
                yield item, load_batch(source, root_of(item))
                continue
            if pool is None:
                pool = ProcessPoolExecutor(
                    jobs,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=_start_worker,
                    initargs=(source,),
                )
            ahead.append((item, pool.submit(_load_in_worker, root_of(item))))
            if len(ahead) >= 4 * jobs:
                first, future = ahead.popleft()
                yield first, future.result()
        while ahead:
            first, future = ahead.popleft()
            yield first, future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
