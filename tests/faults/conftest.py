"""Fault-injection tests (``-m faults``): real ``liveproof serve`` processes and anvil killed
with SIGKILL at chosen points, then the chain and the database audited with the auditor's own
commands. Every test ends with ``audit chain`` and ``audit db`` clean."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.db import make_engine
from api.models import Batch, Receipt
from chain.audit.chain_audit import LEDGER_EVENTS
from chain.connect import connect
from chain.deploy import Deployment
from chain.devnet import DevnetInfo, free_port, start_anvil, stop_anvil
from chain.events import EventReader
from scripts.bench.harness import Prepared, prepare, service_env, start_server, stop_server
from tests.scripts.test_demo import scratch_database

ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, ok: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``ok`` until it holds, or fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.2)


@dataclass
class FaultStack:
    """anvil (with a state file), contracts, a database and ``serve`` processes to kill."""

    prepared: Prepared
    anvil_dir: Path
    state_file: Path
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        return self.prepared.devnet.rpc_url

    @property
    def deployment_file(self) -> Path:
        return self.prepared.workdir / "31337.json"

    def serve(self, failpoints: str = "", **env: str) -> None:
        """Start ``serve`` (2 workers, committer every 0.2 s), with failpoints armed."""
        extra = {"LIVEPROOF_FAILPOINTS": failpoints, **env}
        self.server = start_server(
            self.prepared, self.port, workers=2, batch_interval=0.2, batch_size=64, extra_env=extra
        )

    def committer_process(self) -> subprocess.Popen[bytes]:
        """A ``liveproof committer`` of its own (as on another server), every 0.2 s."""
        env = {**os.environ, **service_env(self.prepared, batch_interval=0.2, batch_size=64)}
        with (self.prepared.workdir / "committers.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "scripts.cli", "committer"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip

    def crash(self) -> None:
        """SIGKILL ``serve``, its workers and its committer at once."""
        assert self.server is not None
        stop_server(self.server, kill=True)
        self.server = None

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None

    def kill_anvil(self) -> None:
        """SIGKILL anvil (its npm launcher and the binary: the whole process group), so that
        whatever it did since its last state dump is lost."""
        pid = int((self.anvil_dir / "anvil.pid").read_text())
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        wait_for("anvil's death", lambda: not _alive(pid) and not self.rpc_answers(), 10)

    def rpc_answers(self) -> bool:
        """True while something answers JSON-RPC on anvil's port."""
        try:
            httpx.post(
                self.rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1,
            )
        except httpx.HTTPError:
            return False
        return True

    def stop_anvil(self) -> None:
        """Stop anvil cleanly: it writes its state file first."""
        stop_anvil(self.prepared.devnet.port, run_dir=self.anvil_dir)

    def dump_anvil(self) -> None:
        """Stop anvil cleanly and start it again from its state file."""
        self.stop_anvil()
        self.restart_anvil()

    def restart_anvil(self) -> None:
        """anvil again on the same port, from its state file."""
        start_anvil(
            self.prepared.devnet.port, state_file=self.state_file, state_interval=3600,
            run_dir=self.anvil_dir,
        )  # fmt: skip

    # -- the API ------------------------------------------------------------------------------

    def post_orders(self, count: int, *, key: str | None = None) -> list[httpx.Response]:
        """``count`` orders in one bulk request (one Idempotency-Key)."""
        c = self.prepared.catalogue
        orders = [
            {
                "room_id": "room-f", "session_id": "live-f", "gtin": c.gtin, "quantity": 1,
                "unit_price": 12_800, "currency": "CNY", "order_ref": uuid.uuid4().hex,
            }
            for _ in range(count)
        ]  # fmt: skip
        response = httpx.post(
            f"{self.base_url}/v1/orders/bulk",
            json={"orders": orders},
            headers={**self.ingest, "Idempotency-Key": key or uuid.uuid4().hex},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        return [response]

    @property
    def ingest(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.prepared.ingest_token}"}

    def open_session(self) -> None:
        for path, body in (
            ("/v1/rooms", {"room_id": "room-f", "name": "Fault room"}),
            (
                "/v1/sessions",
                {
                    "session_id": "live-f",
                    "room_id": "room-f",
                    "anchor": self.prepared.catalogue.anchor,
                },
            ),
        ):
            r = httpx.post(f"{self.base_url}{path}", json=body, headers=self.ingest, timeout=60)
            assert r.status_code == 201, r.text

    # -- what is where --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Receipts by status and batches by status in the database."""
        engine = make_engine(self.prepared.database_url, pool_size=1)
        with Session(engine) as session:
            receipts = dict(
                session.exec(
                    select(Receipt.status, func.count()).group_by(col(Receipt.status))
                ).all()
            )
            batches = dict(
                session.exec(select(Batch.status, func.count()).group_by(col(Batch.status))).all()
            )
        engine.dispose()
        return {
            **{f"receipts_{k}": int(v) for k, v in receipts.items()},
            **{f"batches_{k}": int(v) for k, v in batches.items()},
        }

    def committed_roots(self) -> list[str]:
        """Every root the ledger's events commit, in chain order (repeats kept)."""
        w3 = connect(self.rpc_url)
        deployment = Deployment.from_json(self.deployment_file.read_text())
        reader = EventReader(w3, deployment)
        return [
            "0x" + (e.args.get("root") or e.args["leaf"]).hex()
            for e in reader.iter_events(names=LEDGER_EVENTS)
        ]

    def committed_receipt_ids(self) -> set[str]:
        """Receipt ids the database marks committed."""
        engine = make_engine(self.prepared.database_url, pool_size=1)
        with Session(engine) as session:
            ids = session.exec(
                select(Receipt.receipt_id).where(col(Receipt.status) == "committed")
            ).all()
        engine.dispose()
        return set(ids)

    def all_committed(self, total: int) -> bool:
        counts = self.counts()
        return counts.get("receipts_committed", 0) == total and "receipts_pending" not in counts

    def audit(self) -> None:
        """``audit chain`` (manifests from the API) and ``audit db`` both exit 0."""
        common = ["--rpc", self.rpc_url, "--deployment", str(self.deployment_file)]
        for args in (
            ["audit", "chain", *common, "--api", self.base_url],
            ["audit", "db", *common, "--database-url", self.prepared.database_url],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "scripts.cli", *args],
                cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, f"{' '.join(args[:2])}:\n{done.stdout}{done.stderr}"


class BlackHoleProxy:
    """A TCP proxy in front of the RPC node that can turn into a black hole: while ``hold``
    is on, connections are accepted and requests read, but nothing is forwarded or answered,
    so callers wait until their own timeout (a node that hangs, not one that refuses)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.holding = threading.Event()
        self._held: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self) -> None:
        """From now on, swallow every request."""
        self.holding.set()

    def release(self) -> None:
        """Forward again; connections held so far are dropped (their callers gave up)."""
        self.holding.clear()
        for held in self._held:
            with contextlib.suppress(OSError):
                held.close()
        self._held.clear()

    def close(self) -> None:
        self._closed = True
        self.release()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.holding.is_set():
                    self._held.append(source)
                    while self.holding.is_set() and not self._closed:
                        time.sleep(0.05)
                    break  # released: drop this connection, the caller reconnects
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as dead
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = 0
    return waited == 0 and Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@contextlib.contextmanager
def fault_stack(database_url: str | None = None) -> Iterator[FaultStack]:
    """anvil keeping state in a file (dumped only on a clean stop), contracts deployed and
    dumped, a database (SQLite unless given), keys; ``serve`` is started by the test."""
    with tempfile.TemporaryDirectory(prefix="liveproof-faults-") as tmp:
        work = Path(tmp)
        anvil_dir = work / "anvil"
        state = anvil_dir / "state.json"
        port = free_port()
        devnet: DevnetInfo = start_anvil(
            port, state_file=state, state_interval=3600, run_dir=anvil_dir
        )
        try:
            prepared = prepare(work, devnet, database_url)
            # A clean stop dumps the state: from here on only a SIGKILL loses anything.
            stop_anvil(port, run_dir=anvil_dir)
            start_anvil(port, state_file=state, state_interval=3600, run_dir=anvil_dir)
            fault = FaultStack(prepared, anvil_dir, state)
            yield fault
            fault.stop()
        finally:
            stop_anvil(port, run_dir=anvil_dir)


@pytest.fixture
def stack() -> Iterator[FaultStack]:
    """A fault stack on SQLite."""
    with fault_stack() as made:
        yield made


@pytest.fixture
def pg_stack() -> Iterator[FaultStack]:
    """A fault stack on a fresh PostgreSQL database (skipped without one)."""
    with (
        scratch_database("postgresql", Path(tempfile.gettempdir())) as url,
        fault_stack(url) as made,
    ):
        yield made
