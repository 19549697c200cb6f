"""``liveproof serve``, ``db upgrade``, ``keys create`` and ``committer``."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from typing import Annotated

import typer

from api.committer import Committer
from api.config import Settings
from scripts.output import console, die, errors_as_exit_codes

log = logging.getLogger("liveproof.serve")

db_app = typer.Typer(help="The service database (migrations).", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys (stored hashed; the token is shown once).", no_args_is_help=True
)


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        die(f"bad LIVEPROOF_* setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply the migrations to LIVEPROOF_DATABASE_URL."""
    from api.migrate import current_revision, upgrade

    settings = _settings()
    with errors_as_exit_codes():
        upgrade(settings.database_url, revision)
        console.print(f"database at revision {current_revision(settings.database_url)}")


@db_app.command("erase-buyer")
def db_erase_buyer(
    buyer_ref: Annotated[str, typer.Argument(help="The platform's buyer id, as sent in orders")],
) -> None:
    """Erase a buyer's personal data from LIVEPROOF_DATABASE_URL: the buyer reference and the
    salt of each of their receipts, also in stored retry responses. The receipts stay proven;
    nobody can link them to the buyer any more. Cannot be undone."""
    from api.db import make_engine
    from api.erasure import erase_buyer

    if not buyer_ref:
        die("give the buyer id to erase")
    from sqlalchemy.exc import SQLAlchemyError

    settings = _settings()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        done = erase_buyer(engine, buyer_ref)
    except SQLAlchemyError as exc:
        die(f"cannot erase in {settings.database_url}: {getattr(exc, 'orig', None) or exc}")
    finally:
        engine.dispose()
    if done.receipts == 0:
        console.print("no receipts hold that buyer id (already erased, or never given)")
        return
    console.print(
        f"erased the buyer id and salt of {done.receipts} receipt(s); "
        f"{done.stored_responses} stored response(s) rewritten"
    )


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="admin, brand, certifier, ingest or auditor")],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="For brand and certifier keys: the participant's address"),
    ] = None,
    label: Annotated[
        str, typer.Option("--label", help="A note for whoever reads the key list")
    ] = "",
) -> None:
    """Create an API key and print its token (only this once)."""
    from sqlmodel import Session
    from web3 import Web3

    from api.auth import create_key
    from api.db import make_engine
    from api.migrate import upgrade
    from api.models import Role

    try:
        chosen = Role(role)
    except ValueError:
        die(f"unknown role {role!r}: use one of {', '.join(r.value for r in Role)}")
    if chosen in (Role.BRAND, Role.CERTIFIER):
        if subject is None or not Web3.is_address(subject):
            die(f"a {chosen.value} key needs --subject with the {chosen.value}'s address")
        subject = Web3.to_checksum_address(subject)
    elif subject is not None:
        die(f"--subject is only for brand and certifier keys, not {chosen.value}")
    settings = _settings()
    with errors_as_exit_codes():
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url, pool_size=1)
        with Session(engine) as session:
            row, token = create_key(session, role=chosen, subject=subject, label=label)
        engine.dispose()
    console.print(
        f"created {chosen.value} key {row.key_id}" + (f" for {subject}" if subject else "")
    )
    print(token)


def serve_command(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Migrate the database, then serve the API; the committer runs beside the workers in a
    process of its own (so it never competes with a worker's event loop for the GIL), and
    leads only while no other committer on the database does."""
    import os
    import sys

    from api.migrate import upgrade

    settings = _settings()
    with errors_as_exit_codes():
        upgrade(settings.database_url)
    supervisor: CommitterSupervisor | None = None
    if settings.run_committer:
        supervisor = CommitterSupervisor(
            [sys.executable, "-m", "scripts.cli", "committer"],
            {**os.environ, PARENT_ENV: str(os.getpid())},
        )
        supervisor.start()
        # The workers only serve; the committer process commits.
        os.environ["LIVEPROOF_RUN_COMMITTER"] = "false"
    try:
        _run_uvicorn(host, port, workers, log_level)
    finally:
        if supervisor is not None:
            supervisor.stop()


class CommitterSupervisor:
    """Runs ``serve``'s committer process and starts it again whenever it dies (a crash, an
    OOM kill), after a back-off that doubles up to 30 s and resets once it has run a minute."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        """Supervise ``command`` run with ``env``."""
        self.command = command
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="committer-supervisor", daemon=True)

    def start(self) -> None:
        """Start the committer and watch it."""
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self.process = subprocess.Popen(self.command, env=self.env)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            process = self.process
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = 1.0
            log.warning("the committer exited with %s: starting it again in %.0f s", code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            self.restarts += 1
            self._spawn()

    def stop(self) -> None:
        """Stop watching and stop the committer (SIGTERM, SIGKILL after 30 s)."""
        self._stopping.set()
        with self._lock:
            process = self.process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _run_uvicorn(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        "api.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        # Fewer headers and no proxy header parsing: measurable on the order hot path.
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )


#: Set by ``serve`` for the committer it starts: that committer stops when serve is gone.
PARENT_ENV = "LIVEPROOF_COMMITTER_PARENT"


def _stop_with_parent(committer: Committer) -> None:
    """If ``serve`` started us, stop when it dies, even by SIGKILL (then nobody tells us)."""
    import os
    import threading

    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1)
        committer.stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def committer_command(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit")] = False,
) -> None:
    """Run the outbox committer alone (it waits while another process leads)."""
    import os

    from api.chain_gateway import ChainGateway
    from api.committer import Committer
    from api.db import make_engine, writer
    from api.migrate import upgrade

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
    if os.environ.get(PARENT_ENV):
        # Started by serve: orders wait on the workers, never on this process, so on a busy
        # machine the workers go first.
        os.nice(5)
    with errors_as_exit_codes():
        upgrade(settings.database_url)
        engine = writer(make_engine(settings.database_url, pool_size=2))
        committer = Committer(
            engine,
            ChainGateway(settings, engine),
            batch_size=settings.batch_size,
            interval=settings.batch_interval,
        )
        if once:
            if not committer.leader.try_acquire():
                die("another committer leads; not running", 1)
            result = committer.run_once()
            committer.leader.release()
            console.print(
                f"sealed {result.sealed} batches, committed {result.committed}, "
                f"{result.receipts} receipts"
            )
            return
        signal.signal(signal.SIGTERM, lambda *_: committer.stop())
        _stop_with_parent(committer)
        try:
            committer.run_forever()
        except KeyboardInterrupt:
            committer.stop()
