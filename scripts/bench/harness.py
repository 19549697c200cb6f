"""A throw-away LiveProof stack on loopback: anvil, contracts, a SQLite database and the API.

Used by ``liveproof bench ...`` and the demo tests: everything lives in a temporary directory
and is stopped when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
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

    def cli_env(self) -> dict[str, str]:
        """The environment for a ``liveproof`` command run beside this stack's service."""
        return {
            **os.environ,
            "LIVEPROOF_DATABASE_URL": self.database_url,
            "LIVEPROOF_RPC_URL": self.devnet.rpc_url,
            "LIVEPROOF_DEPLOYMENTS_DIR": str(self.workdir),
        }


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


@dataclass(frozen=True)
class Prepared:
    """Contracts deployed, a database migrated and seeded, keys made: ready to serve."""

    workdir: Path
    database_url: str
    devnet: DevnetInfo
    ingest_token: str
    admin_token: str
    catalogue: Catalogue


def prepare(workdir: Path, devnet: DevnetInfo, database_url: str | None = None) -> Prepared:
    """Deploy to ``devnet`` (deployment file in ``workdir``), migrate the database (a SQLite
    file in ``workdir`` unless given), seed a catalogue and make an ingest and an admin key."""
    deployer = account_from_key(ANVIL_DEV_KEYS[0])
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
    return Prepared(workdir, database_url, devnet, ingest, admin, catalogue)


def service_env(
    prepared: Prepared, *, batch_interval: float = 1.0, batch_size: int = 1_024
) -> dict[str, str]:
    """The ``LIVEPROOF_*`` settings of a service (or a command run beside it) on ``prepared``."""
    return {
        "LIVEPROOF_DATABASE_URL": prepared.database_url,
        "LIVEPROOF_RPC_URL": prepared.devnet.rpc_url,
        "LIVEPROOF_DEPLOYMENTS_DIR": str(prepared.workdir),
        "LIVEPROOF_RELAYER_KEY": ANVIL_DEV_KEYS[0],
        "LIVEPROOF_BATCH_INTERVAL": str(batch_interval),
        "LIVEPROOF_BATCH_SIZE": str(batch_size),
    }


def start_server(
    prepared: Prepared,
    port: int,
    *,
    workers: int = 2,
    batch_interval: float = 1.0,
    batch_size: int = 1_024,
    extra_env: dict[str, str] | None = None,
    log_name: str = "server.log",
) -> subprocess.Popen[bytes]:
    """``liveproof serve`` for ``prepared`` on ``port`` (its own process group), once healthy."""
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **service_env(prepared, batch_interval=batch_interval, batch_size=batch_size),
        "LIVEPROOF_PUBLIC_URL": base_url,
        **(extra_env or {}),
    }
    with (prepared.workdir / log_name).open("ab") as log:
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
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """Stop ``serve`` (it stops its workers and committer); ``kill``: SIGKILL its whole
    process group at once, as a crash would."""
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        return
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


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
    with tempfile.TemporaryDirectory(prefix="liveproof-stack-") as tmp, throwaway_anvil() as devnet:
        prepared = prepare(Path(tmp), devnet, database_url)
        port = free_port()
        server = start_server(
            prepared, port, workers=workers, batch_interval=batch_interval,
            batch_size=batch_size, extra_env=extra_env,
        )  # fmt: skip
        try:
            yield Stack(
                base_url=f"http://127.0.0.1:{port}",
                database_url=prepared.database_url,
                devnet=devnet,
                ingest_token=prepared.ingest_token,
                admin_token=prepared.admin_token,
                catalogue=prepared.catalogue,
                workdir=prepared.workdir,
                server=server,
            )
        finally:
            stop_server(server)  # serve stops its workers and its committer process
