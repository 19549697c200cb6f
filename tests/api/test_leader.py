"""One committer leads at a time: the leader lock on PostgreSQL (advisory lock on a session)
and SQLite (flock beside the database file), hand-over when the leader goes away, and two
committers on one database committing every receipt exactly once."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlmodel import col
from web3 import Web3

from api.chain_gateway import ChainGateway
from api.committer import CommitResult, Committer
from api.config import Settings
from api.db import make_engine, writer
from api.locks import LeaderLock, _lock_key
from api.models import Receipt
from chain.deploy import Deployment
from tests.api.conftest import Keys, World
from tests.api.test_committer import (
    PATIENCE,
    MakeCommitter,
    assert_all_committed,
    batch_rows,
    commit_events,
    make_committer,
    outbox_size,
    post_orders,
    receipt_count,
    running,
    wait_until,
)
from tests.api.test_orders import open_room_and_session

__all__ = ["make_committer"]  # the fixture, shared with test_committer

ROOT = Path(__file__).resolve().parents[2]

_HOLD_LOCK = """
import sys
from api.db import make_engine
from api.locks import LeaderLock
lock = LeaderLock(make_engine(sys.argv[1], pool_size=1), "committer")
print("held" if lock.try_acquire() else "refused", flush=True)
sys.stdin.readline()
"""


def is_postgres(settings: Settings) -> bool:
    """True when the test runs on PostgreSQL."""
    return settings.database_url.startswith("postgresql")


def leader_pids(url: str, name: str = "committer") -> list[int]:
    """Server pids of the sessions holding the advisory lock ``name`` in ``url``'s database."""
    key = _lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (key >> 32, key & 0xFFFF_FFFF),
        ).fetchall()
    return [int(r[0]) for r in rows]


def terminate(url: str, pid: int) -> None:
    """Kill a server session, as a crash or a network cut would end it."""
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def session_state(url: str, pid: int) -> str:
    """pg_stat_activity's state of a server session."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert row is not None
    return str(row[0])


def leads(committer: Committer) -> bool:
    """Whether ``committer`` holds its lock, read without probing: ``held`` would use the
    lock's connection from this thread while the committer's thread may be using it."""
    return committer.leader._file is not None or committer.leader._conn is not None


@pytest.fixture
def lock_engine(settings: Settings) -> Iterator[Engine]:
    """An engine for bare LeaderLocks (each lock takes its own connection)."""
    engine = make_engine(settings.database_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture
def holder(settings: Settings) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the committer's leader lock (killed at the end)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, settings.database_url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    yield proc
    proc.kill()
    proc.wait(timeout=PATIENCE)


# ----------------------------------------------------------------------------- the lock


def test_one_leader_at_a_time_and_hand_over_on_release(
    make_committer: MakeCommitter, settings: Settings
) -> None:
    first, second = make_committer(), make_committer()
    assert first.leader.try_acquire()
    assert first.leader.try_acquire()  # holding it already counts
    assert not second.leader.try_acquire()
    assert not second.leader.held
    if is_postgres(settings):
        assert len(leader_pids(settings.database_url)) == 1

    first.leader.release()
    assert not first.leader.held
    assert second.leader.try_acquire()
    assert not first.leader.try_acquire()
    second.leader.release()
    second.leader.release()  # releasing twice is harmless


def test_locks_with_other_names_do_not_exclude_each_other(lock_engine: Engine) -> None:
    committer, other = LeaderLock(lock_engine, "committer"), LeaderLock(lock_engine, "other")
    try:
        assert committer.try_acquire()
        assert other.try_acquire()
    finally:
        committer.release()
        other.release()


def test_sqlite_locks_in_one_process_exclude_each_other(
    lock_engine: Engine, settings: Settings
) -> None:
    if is_postgres(settings):
        pytest.skip("flock is the SQLite lock")
    # Each lock opens the file itself: flock conflicts between open file descriptions even
    # in one process, so two committers in one process cannot both lead.
    first, second = LeaderLock(lock_engine, "committer"), LeaderLock(lock_engine, "committer")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        assert database.with_name(database.name + ".committer.lock").exists()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def test_a_lock_held_by_another_process_is_freed_when_it_dies(
    lock_engine: Engine, settings: Settings, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    here = LeaderLock(lock_engine, "committer")
    try:
        assert not here.try_acquire()
        holder.kill()  # no release: the kernel (flock) or the server (session) frees it
        holder.wait(timeout=PATIENCE)
        wait_until("the dead holder's lock to be free", here.try_acquire)
        # And now the other way round: a new process is refused while we lead.
        again = subprocess.run(
            [sys.executable, "-c", _HOLD_LOCK, settings.database_url],
            cwd=ROOT,
            input="\n",
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            check=True,
        )
        assert again.stdout.strip() == "refused"
    finally:
        here.release()


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_url(settings: Settings) -> str:
    """The test's PostgreSQL database URL (the test is skipped on SQLite)."""
    if not is_postgres(settings):
        pytest.skip("PostgreSQL advisory locks")
    return settings.database_url


def test_pg_leader_whose_session_is_killed_hands_over(
    make_committer: MakeCommitter, pg_url: str
) -> None:
    first, second = make_committer(), make_committer()
    assert first.leader.try_acquire()
    [pid] = leader_pids(pg_url)
    assert not second.leader.try_acquire()

    terminate(pg_url, pid)

    wait_until("the killed leader's lock to be free", second.leader.try_acquire)
    assert leader_pids(pg_url) != [pid]
    # The old leader finds out at its next check, and cannot lead again while the other does.
    assert not first.leader.held
    assert not first.leader.try_acquire()
    second.leader.release()
    assert first.leader.try_acquire()


def test_pg_release_after_the_session_died_does_not_raise(
    make_committer: MakeCommitter, pg_url: str
) -> None:
    first, second = make_committer(), make_committer()
    assert first.leader.try_acquire()
    [pid] = leader_pids(pg_url)
    terminate(pg_url, pid)
    wait_until("the session to end", lambda: not leader_pids(pg_url))

    first.leader.release()  # the server freed the lock with the session: nothing to undo

    assert not first.leader.held
    assert second.leader.try_acquire()


def test_pg_leader_session_is_not_left_idle_in_transaction(
    make_committer: MakeCommitter, pg_url: str
) -> None:
    leader = make_committer()
    assert leader.leader.try_acquire()
    [pid] = leader_pids(pg_url)
    # run_forever checks its lock before every pass. A session idling inside a transaction
    # would be ended by an idle_in_transaction_session_timeout, and the lock with it.
    assert leader.leader.held
    assert leader.leader.try_acquire()
    assert session_state(pg_url, pid) == "idle"


class CountingCommitter(Committer):
    """A committer that keeps every pass's result (so a test knows when a pass is over)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes: list[CommitResult] = []

    def run_once(self, *, drain: bool = True) -> CommitResult:
        """One pass, remembered."""
        result = super().run_once(drain=drain)
        self.passes.append(result)
        return result


def test_pg_leader_that_regains_the_lock_settles_what_others_sealed_meanwhile(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    settings: Settings,
    pg_url: str,
    w3: Web3,
    deployment: Deployment,
) -> None:
    engine = writer(make_engine(pg_url, pool_size=2))
    # An hour between passes: the test wakes it when it wants a pass.
    leader = CountingCommitter(engine, ChainGateway(settings, engine), batch_size=64, interval=3600)
    open_room_and_session(client, keys, world)
    try:
        with running(leader):
            wait_until("the first pass", lambda: leader.passes)
            [pid] = leader_pids(pg_url)
            terminate(pg_url, pid)
            wait_until("the session to end", lambda: not leader_pids(pg_url))
            # Meanwhile another committer leads, seals a batch and dies before sending it.
            post_orders(client, keys, world, 5, "a")
            other = make_committer()
            assert other.leader.try_acquire()
            root = other.seal_batch()
            other.leader.release()

            leader.wake()
            wait_until("the next pass", lambda: len(leader.passes) >= 2)
        # A new term starts with reconciling: the batch sealed by the other leader is sent.
        assert leader.passes[1].committed == 1
        [batch] = assert_all_committed(client, engine, deployment.ledger(w3))
        assert batch.root == root
    finally:
        engine.dispose()


def test_run_forever_survives_an_unreachable_database(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if is_postgres(settings):
        url = "postgresql://postgres@127.0.0.1:1/nowhere"
    else:
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'liveproof.db'}"
    engine = writer(make_engine(url, pool_size=1))
    lost = Committer(engine, ChainGateway(settings, engine), batch_size=8, interval=0.05)
    caplog.set_level(logging.WARNING, logger="liveproof.committer")

    def failures() -> int:
        return sum("leader lock" in r.getMessage() for r in caplog.records)

    try:
        with running(lost) as thread:
            wait_until(
                "two failed attempts to lead", lambda: failures() >= 2 or not thread.is_alive()
            )
            assert thread.is_alive(), "run_forever died on a database error"
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- two committers


def test_two_committers_commit_every_receipt_exactly_once(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    start = w3.eth.block_number
    pair = [make_committer(batch_size=16), make_committer(batch_size=16)]
    total = 0
    with running(pair[0]), running(pair[1]):
        for round_ in range(4):
            post_orders(client, keys, world, 25, f"a{round_}")
            total += 25
        leader = wait_until("a leader", lambda: next((c for c in pair if leads(c)), None))
        follower = pair[1 - pair.index(leader)]
        assert not leads(follower)
        # Hand over while orders flow: PostgreSQL loses the leader's session under it (the
        # old leader may be mid-pass, and either committer may win the lock next); on SQLite
        # the leader stops (a process exiting) and the other one takes over.
        if is_postgres(settings):
            url = settings.database_url
            [pid] = leader_pids(url)
            terminate(url, pid)
            wait_until("a new leader session", lambda: leader_pids(url) not in ([], [pid]))
        else:
            leader.stop()
            wait_until("the other committer to lead", lambda: leads(follower))
        for round_ in range(4):
            post_orders(client, keys, world, 25, f"b{round_}")
            total += 25
        wait_until(
            "every receipt committed",
            lambda: (
                receipt_count(follower.engine, "pending") == 0 and outbox_size(follower.engine) == 0
            ),
        )
    engine = follower.engine
    assert receipt_count(engine) == total
    batches = assert_all_committed(client, engine, deployment.ledger(w3))
    assert all(b.count <= 16 for b in batches)
    # The chain saw each root once, and exactly the batches the database has.
    events = commit_events(w3, deployment, start + 1)
    roots = [root for root, _ in events]
    assert len(roots) == len(set(roots))
    assert sorted(events) == sorted((b.root, b.count) for b in batches)
    assert len(batch_rows(engine)) == len(events)


def test_concurrent_sealers_never_put_a_receipt_in_two_batches(
    client: TestClient,
    keys: Keys,
    world: World,
    make_committer: MakeCommitter,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """A leader that lost its lock mid-pass may seal while the new leader seals too."""
    open_room_and_session(client, keys, world)
    post_orders(client, keys, world, 12, "a")
    paused, resume = threading.Event(), threading.Event()

    def pause_after_claiming(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM OUTBOX"):
            paused.set()
            resume.wait(PATIENCE)

    base = make_engine(settings.database_url, pool_size=2)
    event.listen(base, "after_cursor_execute", pause_after_claiming)
    slow_engine = writer(base)
    slow = Committer(slow_engine, ChainGateway(settings, slow_engine), batch_size=10, interval=1)
    fast = make_committer()
    roots: dict[str, str | None] = {}
    threads = [
        threading.Thread(target=lambda: roots.update(slow=slow.seal_batch()), daemon=True),
        threading.Thread(target=lambda: roots.update(fast=fast.seal_batch()), daemon=True),
    ]
    try:
        threads[0].start()
        assert paused.wait(PATIENCE)
        threads[1].start()
        # Give the second sealer time to read the outbox while the first holds its claim
        # (on SQLite it queues for the write lock instead).
        threads[1].join(timeout=1.0)
        resume.set()
        for thread in threads:
            thread.join(timeout=PATIENCE)
            assert not thread.is_alive()
    finally:
        resume.set()
        slow_engine.dispose()

    assert roots["slow"] is not None
    assert roots["fast"] is not None
    counts = {b.root: b.count for b in batch_rows(fast.engine)}
    assert counts == {roots["slow"]: 10, roots["fast"]: 2}
    with fast.engine.connect() as conn:
        named = [r for (r,) in conn.execute(select(col(Receipt.batch_root)))]
    assert {root: named.count(root) for root in counts} == counts
    assert outbox_size(fast.engine) == 0

    assert fast.leader.try_acquire()
    assert fast.run_once().committed == 2
    assert_all_committed(client, fast.engine, deployment.ledger(w3))
