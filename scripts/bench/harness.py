"""A throw-away LiveProof stack on loopback: anvil, contracts, a SQLite database and the API.

Used by ``liveproof bench ...`` and the demo tests: everything lives in a temporary directory
and is stopped when the ``with`` block ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import Session

from api.auth import create_key
from api.db import make_engine
from api.migrate import upgrade
from api.models import Role
from api.seed import Catalogue, seed_catalogue
from chain.connect import connect
from chain.deploy import deploy
from chain.devnet import DevnetInfo, free_port, throwaway_anvil
from chain.errors import LiveProofError
from chain.keys import ANVIL_DEV_KEYS, account_from_key


@dataclass(frozen=True)
class Stack:
    """A running stack: where the API listens and the keys to use it."""

    base_url: str
    database_url: str
    devnet: DevnetInfo
    ingest_token: str
    admin_token: str
    catalogue: Catalogue
    workdir: Path
    server: subprocess.Popen[bytes]


def _wait_healthy(base_url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise LiveProofError(f"the API server exited with {server.returncode} at start-up")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise LiveProofError(f"the API did not answer on {base_url} within {timeout} s")


@contextmanager
def running_stack(
    *,
    workers: int = 2,
    batch_interval: float = 1.0,
    batch_size: int = 1_024,
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
) -> Iterator[Stack]:
    """Start anvil, deploy, migrate a fresh SQLite database, seed a catalogue, serve the API.

    ``database_url`` replaces the SQLite file with an empty database of the caller's (e.g. a
    PostgreSQL database made for one test); it is migrated here."""
    deployer = account_from_key(ANVIL_DEV_KEYS[0])
    with tempfile.TemporaryDirectory(prefix="liveproof-stack-") as tmp, throwaway_anvil() as devnet:
        workdir = Path(tmp)
        w3 = connect(devnet.rpc_url)
        deployment, _ = deploy(w3, deployer, directory=workdir)
        database_url = database_url or f"sqlite:///{workdir / 'liveproof.db'}"
        upgrade(database_url)
        catalogue = seed_catalogue(
            database_url,
            w3,
            deployment,
            registrar=deployer,
            brand=account_from_key(ANVIL_DEV_KEYS[1]),
            anchor=account_from_key(ANVIL_DEV_KEYS[3]),
        )
        engine = make_engine(database_url, pool_size=1)
        with Session(engine) as session:
            _, ingest = create_key(session, role=Role.INGEST, label="bench")
            _, admin = create_key(session, role=Role.ADMIN, label="bench")
        engine.dispose()
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "LIVEPROOF_DATABASE_URL": database_url,
            "LIVEPROOF_RPC_URL": devnet.rpc_url,
            "LIVEPROOF_DEPLOYMENTS_DIR": str(workdir),
            "LIVEPROOF_RELAYER_KEY": ANVIL_DEV_KEYS[0],
            "LIVEPROOF_BATCH_INTERVAL": str(batch_interval),
            "LIVEPROOF_BATCH_SIZE": str(batch_size),
            "LIVEPROOF_PUBLIC_URL": base_url,
            **(extra_env or {}),
        }
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(
            [
                sys.executable, "-m", "scripts.cli", "serve",
                "--port", str(port), "--workers", str(workers), "--log-level", "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            _wait_healthy(base_url, server, timeout=60)
            yield Stack(
                base_url=base_url,
                database_url=database_url,
                devnet=devnet,
                ingest_token=ingest,
                admin_token=admin,
                catalogue=catalogue,
                workdir=workdir,
                server=server,
            )
        finally:
            server.terminate()  # serve stops its workers and its committer process
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            log.close()
