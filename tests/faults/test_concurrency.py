"""Many writers at once: two committer processes on one PostgreSQL database (one leads, the
other takes over when it dies, nothing committed twice), and every kind of SQLite writer at
once (orders, refunds, rooms and sessions, an erasure, the committer) with no "database is
locked" reaching anyone. Each test ends with ``audit chain`` and ``audit db`` clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from functools import partial

import httpx
import pytest

from scripts.bench.loadgen import run_loadgen
from tests.api.test_leader import leader_pids
from tests.faults.conftest import ROOT, FaultStack, wait_for
from tests.faults.test_crashes import exactly_once

pytestmark = pytest.mark.faults


def test_two_committer_processes_on_one_postgresql_database(pg_stack: FaultStack) -> None:
    """Two `liveproof committer` processes, as on two servers. Each is killed (SIGKILL) in
    turn while orders arrive, so whichever led, the other takes over; at no moment do two
    lead, and every receipt is committed exactly once."""
    stack = pg_stack
    url = stack.prepared.database_url
    stack.serve(LIVEPROOF_RUN_COMMITTER="false")
    stack.open_session()
    committers = [stack.committer_process(), stack.committer_process()]
    seen: Counter[int] = Counter()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen[len(leader_pids(url))] += 1
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        total = 0
        for victim in (0, 1):
            for _ in range(3):
                stack.post_orders(40)
                total += 40
                time.sleep(0.1)
            os.kill(committers[victim].pid, signal.SIGKILL)
            committers[victim].wait()
            stack.post_orders(40)
            total += 40
            wait_for(f"all {total} committed", partial(stack.all_committed, total), 90)
            committers[victim] = stack.committer_process()  # back, as a follower
        stop.set()
        watcher.join(timeout=5)
    finally:
        stop.set()
        for process in committers:
            process.terminate()
            process.wait(timeout=30)
    assert max(seen) <= 1, seen
    assert seen[1] > 0  # someone led
    exactly_once(stack)
    stack.audit()


def test_every_kind_of_sqlite_writer_at_once(stack: FaultStack) -> None:
    """Orders over 32 connections, refunds, new rooms and sessions, erasures and the
    committer, all writing to one SQLite file at once: every request is answered as it
    should be (no 5xx), and "database is locked" appears nowhere."""
    stack.serve()
    stack.open_session()
    sales = httpx.post(
        f"{stack.base_url}/v1/orders/bulk",
        json={
            "orders": [
                {
                    "room_id": "room-f",
                    "session_id": "live-f",
                    "gtin": stack.prepared.catalogue.gtin,
                    "quantity": 2,
                    "unit_price": 12_800,
                    "currency": "CNY",
                    "buyer_ref": f"buyer-{i}",
                }
                for i in range(60)
            ]
        },
        headers={**stack.ingest, "Idempotency-Key": "sales"},
        timeout=60,
    )
    assert sales.status_code == 201, sales.text
    codes = [r["receipt_code"] for r in sales.json()["receipts"]]
    answers: Counter[str] = Counter()
    bodies: list[str] = []

    def orders() -> None:
        template = {
            "room_id": "room-f", "session_id": "live-f", "gtin": stack.prepared.catalogue.gtin,
            "quantity": 1, "unit_price": 12_800, "currency": "CNY", "buyer_ref": "buyer-{i}",
        }  # fmt: skip
        body = json.dumps(template)
        result = run_loadgen(
            {
                "host": "127.0.0.1", "port": stack.port, "concurrency": 32,
                "requests": [
                    {"path": "/v1/orders",
                     "headers": {**stack.ingest, "Idempotency-Key": uuid.uuid4().hex},
                     "body": body.replace("{i}", str(i % 60))}
                    for i in range(3_000)
                ],
            }
        )  # fmt: skip
        answers.update(f"order {s}" for s in result["statuses"])

    def refunds() -> None:
        with httpx.Client(base_url=stack.base_url, headers=stack.ingest, timeout=60) as http:
            for code in codes:
                r = http.post(
                    "/v1/refunds", json={"receipt_code": code, "quantity": 1},
                    headers={"Idempotency-Key": f"refund-{code}"},
                )  # fmt: skip
                answers[f"refund {r.status_code}"] += 1
                bodies.append(r.text)

    def rooms() -> None:
        with httpx.Client(base_url=stack.base_url, headers=stack.ingest, timeout=60) as http:
            for i in range(25):
                r = http.post("/v1/rooms", json={"room_id": f"room-{i}", "name": f"Room {i}"})
                answers[f"room {r.status_code}"] += 1
                bodies.append(r.text)
                r = http.post(
                    "/v1/sessions",
                    json={"session_id": f"live-{i}", "room_id": f"room-{i}",
                          "anchor": stack.prepared.catalogue.anchor},
                )  # fmt: skip
                answers[f"session {r.status_code}"] += 1
                bodies.append(r.text)

    def erasures() -> None:
        env = {**os.environ, "LIVEPROOF_DATABASE_URL": stack.prepared.database_url}
        for i in range(0, 60, 6):
            done = subprocess.run(
                [sys.executable, "-m", "scripts.cli", "db", "erase-buyer", f"buyer-{i}"],
                cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            answers[f"erase {done.returncode}"] += 1
            bodies.append(done.stdout + done.stderr)

    writers = [threading.Thread(target=f) for f in (orders, refunds, rooms, erasures)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert answers == Counter(
        {"order 201": 3_000, "refund 201": 60, "room 201": 25, "session 201": 25, "erase 0": 10}
    ), answers
    log = (stack.prepared.workdir / "server.log").read_text(errors="replace")
    assert "database is locked" not in log
    assert not [b for b in bodies if "locked" in b]
    wait_for("every receipt committed", lambda: stack.all_committed(60 + 3_000 + 60), 120)
    exactly_once(stack)
    stack.audit()
