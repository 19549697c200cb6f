"""``liveproof serve``, ``db upgrade``, ``keys create`` and ``committer``."""

from __future__ import annotations

import logging
import signal
import time
from typing import Annotated

import typer

from api.committer import Committer
from api.config import Settings
from scripts.output import console, die, errors_as_exit_codes

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
    import subprocess
    import sys

    from api.migrate import upgrade

    settings = _settings()
    with errors_as_exit_codes():
        upgrade(settings.database_url)
    committer: subprocess.Popen[bytes] | None = None
    if settings.run_committer:
        committer = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "committer"],
            env={**os.environ, PARENT_ENV: str(os.getpid())},
        )
        # The workers only serve; the committer process commits.
        os.environ["LIVEPROOF_RUN_COMMITTER"] = "false"
    try:
        _run_uvicorn(host, port, workers, log_level)
    finally:
        if committer is not None:
            committer.terminate()
            try:
                committer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                committer.kill()


def _run_uvicorn(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        "api.app:create_app",
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
    from api.chain_gateway import ChainGateway
    from api.committer import Committer
    from api.db import make_engine, writer
    from api.migrate import upgrade

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
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
