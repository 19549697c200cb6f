"""``liveproof up`` (what ``make run`` runs) and ``liveproof demo``.

``up`` brings a whole local stack up in the foreground: the anvil devnet (left running when
``up`` ends), the contracts, the database, the API server (a child process stopped with ``up``)
and, on an empty database, the demo data; then it prints where to look and serves until Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import httpx
import typer

from chain.devnet import DEFAULT_PORT
from scripts.output import EXIT_FAILED, die, errors_as_exit_codes

if TYPE_CHECKING:
    from web3 import Web3

    from api.config import Settings
    from chain.deploy import Deployment

DATABASE_ENV = "LIVEPROOF_DATABASE_URL"
READY_TIMEOUT = 60.0


def say(line: str = "") -> None:
    """Print one line at once (these commands run for long; output must not wait in a buffer)."""
    print(line, flush=True)


def _settings() -> Settings:
    from scripts.service_commands import _settings as read_settings

    return read_settings()


# ---------------------------------------------------------------------------------- demo


def demo_command(
    api: Annotated[
        str | None,
        typer.Option("--api", help="Base URL of the running API (default: $LIVEPROOF_PUBLIC_URL)"),
    ] = None,
    orders: Annotated[int, typer.Option("--orders", min=10, help="Orders to place")] = 300,
    immediate: Annotated[
        bool, typer.Option("--immediate/--no-immediate", help="Record one receipt alone, at once")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the receipts to commit")
    ] = 180,
) -> None:
    """Seed a live-commerce scenario into a running API on a local devnet, wait until its
    receipts are on chain and print the URLs a shopper would open.

    API keys are made in $LIVEPROOF_DATABASE_URL; participants sign with anvil's dev keys for
    the chain at $LIVEPROOF_RPC_URL (refused unless it is a local devnet: exit 2)."""
    from scripts.demo import DemoError, print_result, run_demo

    settings = _settings()
    with errors_as_exit_codes():
        try:
            result = run_demo(
                api or settings.public_url,
                orders=orders,
                immediate=immediate,
                timeout=timeout,
                settings=settings,
                say=say,
            )
        except DemoError as exc:
            die(str(exc), EXIT_FAILED)
    print_result(result, say)


# ------------------------------------------------------------------------------------ up


def database_mismatch(database_url: str, w3: Web3, deployment: Deployment) -> str | None:
    """Why the database belongs to another chain (a devnet started afresh), or None."""
    from sqlmodel import Session, col, select
    from web3.exceptions import TransactionNotFound

    from api.db import make_engine
    from api.models import Batch, Brand

    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            batch = session.exec(select(Batch).where(col(Batch.chain_id).is_not(None))).first()
            brand = session.exec(select(Brand)).first()
    finally:
        engine.dispose()
    ledger = deployment.address("SaleLedger")
    if batch is not None and (
        batch.chain_id != deployment.chain_id or str(batch.ledger).lower() != ledger.lower()
    ):
        return (
            f"its receipts are committed to ledger {batch.ledger} on chain {batch.chain_id}, "
            f"not to {ledger} on chain {deployment.chain_id}"
        )
    if brand is not None:
        try:
            w3.eth.get_transaction_receipt(brand.tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return f"brand {brand.address} was registered in {brand.tx_hash}, unknown to the chain"
    return None


def set_aside_sqlite(database_url: str) -> Path:
    """Rename a SQLite database (and its WAL files) out of the way; returns the new path."""
    path = Path(database_url.removeprefix("sqlite:///"))
    aside = path.with_name(f"{path.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{aside}{suffix}")
    return aside


def receipt_count(database_url: str) -> int:
    """How many receipts the database holds."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from api.db import make_engine
    from api.models import Receipt

    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(Receipt)).one())
    finally:
        engine.dispose()


def recent_urls(database_url: str, base_url: str, limit: int = 3) -> list[tuple[str, str]]:
    """URLs of a product and the latest committed receipts already in the database."""
    from sqlmodel import Session, col, select

    from api.db import make_engine
    from api.models import Product, Receipt, ReceiptStatus
    from api.receipt_codes import encode

    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            product = session.exec(select(Product).order_by(col(Product.gtin))).first()
            receipts = session.exec(
                select(Receipt)
                .where(col(Receipt.status) == ReceiptStatus.COMMITTED.value)
                .order_by(col(Receipt.id).desc())
                .limit(limit)
            ).all()
    finally:
        engine.dispose()
    urls = []
    if product is not None:
        urls.append(("product page", f"{base_url}/01/{product.gtin}"))
        urls.append(("product", f"{base_url}/v1/products/{product.gtin}"))
    for receipt in receipts:
        code = encode(bytes.fromhex(receipt.receipt_id[2:]))
        urls.append(("receipt page", f"{base_url}/r/{code}"))
        urls.append(("receipt", f"{base_url}/v1/receipts/{code}"))
        urls.append(("proof bundle", f"{base_url}/v1/receipts/{code}/proof"))
    roots = dict.fromkeys(r.batch_root for r in receipts)
    urls += [("batch manifest", f"{base_url}/v1/batches/{root}") for root in roots]
    return urls


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_server(
    host: str, port: int, workers: int, env: dict[str, str], log_file: Path
) -> subprocess.Popen[bytes]:
    """``liveproof serve`` as a child in its own process group, logging to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable, "-m", "scripts.cli", "serve",
                "--host", host, "--port", str(port), "--workers", str(workers),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop_server(server: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM the server's process group (uvicorn shuts down cleanly), SIGKILL after ``grace``."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:  # pragma: no cover - gone between poll and kill
        server.wait()


def wait_ready(base_url: str, server: subprocess.Popen[bytes], log_file: Path) -> None:
    """Block until ``/readyz`` answers 200; exit 2 when the server dies or stays unready."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            die(f"the API server exited with code {server.returncode}; see {log_file}")
        try:
            ready = httpx.get(f"{base_url}/readyz", timeout=5)
            if ready.status_code == 200:
                return
            last = str(ready.json().get("detail", ready.status_code))
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    die(f"the API at {base_url} was not ready after {READY_TIMEOUT:g} s ({last}); see {log_file}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up_command(
    port: Annotated[int, typer.Option("--port", help="API port")] = 8000,
    host: Annotated[str, typer.Option("--host", help="API address")] = "127.0.0.1",
    devnet_port: Annotated[
        int, typer.Option("--devnet-port", help="Port of the anvil devnet on 127.0.0.1")
    ] = DEFAULT_PORT,
    rpc: Annotated[
        str | None,
        typer.Option("--rpc", help="Use this running local chain instead of the devnet"),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="API worker processes")] = 1,
    demo_orders: Annotated[
        int, typer.Option("--demo-orders", min=10, help="Orders the demo places")
    ] = 300,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="API server log (default: .liveproof/api.log)"),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print where to look, stop the API and exit")
    ] = False,
) -> None:
    """Devnet, contracts, database, API and demo data: the whole local stack, in the foreground.

    The demo runs when the database holds no receipts yet. Ctrl-C stops the API; the devnet
    keeps running (`liveproof devnet down` stops it)."""
    from chain.connect import connect, require_connection
    from chain.deploy import deploy, deployment_path
    from chain.devnet import anvil_status, start_anvil
    from chain.keys import is_local_chain
    from chain.paths import state_dir
    from scripts.chain_commands import deployer_account

    settings = _settings()
    if port_in_use(host, port):
        die(f"port {port} on {host} is in use: stop what runs there or pass --port")
    signal.signal(signal.SIGTERM, _interrupt)
    with errors_as_exit_codes():
        if rpc is None:
            running = anvil_status(devnet_port) is not None
            devnet = start_anvil(devnet_port)
            rpc_url = devnet.rpc_url
            say(f"devnet    {rpc_url} chain {devnet.chain_id} "
                f"({'already running' if running else 'started'}, pid {devnet.pid})")  # fmt: skip
        else:
            rpc_url = rpc
        w3 = connect(rpc_url)
        chain_id = require_connection(w3)
        if not is_local_chain(chain_id):
            die(f"chain {chain_id} is not a local devnet: `liveproof up` is for local runs; "
                "use `liveproof deploy` and `liveproof serve` elsewhere")  # fmt: skip
        deployment, sent = deploy(
            w3, deployer_account(w3, None), directory=settings.deployments_dir
        )
        where = deployment_path(chain_id, settings.deployments_dir)
        say(f"contracts {'deployed' if sent else 'already deployed'} ({where})")
        settings = settings.model_copy(update={"rpc_url": rpc_url})
        database_url = _prepared_database(settings, w3, deployment)
    log_file = log or state_dir() / "api.log"
    base_url = f"http://{host}:{port}"
    env = {
        **os.environ,
        DATABASE_ENV: database_url,
        "LIVEPROOF_RPC_URL": rpc_url,
        "LIVEPROOF_PUBLIC_URL": os.environ.get("LIVEPROOF_PUBLIC_URL", base_url),
    }
    server = start_server(host, port, workers, env, log_file)
    try:
        say(f"api       {base_url} (pid {server.pid}, log {log_file})")
        wait_ready(base_url, server, log_file)
        urls = _demo_or_recent(settings, base_url, demo_orders)
        _print_where_to_look(base_url, urls, log_file, None if rpc else devnet_port)
        if once:
            return
        code = server.wait()
        die(f"the API server exited with code {code}; see {log_file}", EXIT_FAILED)
    except KeyboardInterrupt:
        say("stopping the API ...")
    finally:
        stop_server(server)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _prepared_database(settings: Settings, w3: Web3, deployment: Deployment) -> str:
    """Migrate; a default SQLite database left from an earlier chain is set aside."""
    from api.migrate import upgrade

    database_url = settings.database_url
    upgrade(database_url)
    why = database_mismatch(database_url, w3, deployment)
    if why is None:
        return database_url
    if os.environ.get(DATABASE_ENV) or not database_url.startswith("sqlite:///"):
        die(f"the database {DATABASE_ENV} belongs to another chain: {why}")
    aside = set_aside_sqlite(database_url)
    say(f"database  was for another chain ({why}); kept as {aside}, starting afresh")
    upgrade(database_url)
    return database_url


def _demo_or_recent(settings: Settings, base_url: str, orders: int) -> list[tuple[str, str]]:
    from scripts.demo import DemoError, print_result, run_demo, url_line

    existing = receipt_count(settings.database_url)
    if existing:
        say(f"demo      skipped: the database holds {existing} receipts "
            "(`liveproof demo` adds another round). Recent ones:")  # fmt: skip
        urls = recent_urls(settings.database_url, base_url)
        for what, url in urls:
            say(url_line(what, url))
        return urls
    with errors_as_exit_codes():
        try:
            result = run_demo(base_url, orders=orders, settings=settings, say=say)
        except DemoError as exc:
            die(str(exc), EXIT_FAILED)
    print_result(result, say)
    return result.shopper_urls()


def _print_where_to_look(
    base_url: str, urls: list[tuple[str, str]], log_file: Path, devnet: int | None
) -> None:
    say()
    say("LiveProof is up.")
    for what, url in (
        ("pages", f"{base_url}/"),
        ("API docs", f"{base_url}/docs"),
        ("readiness", f"{base_url}/readyz"),
        ("metrics", f"{base_url}/metrics"),
        ("log", str(log_file)),
    ):
        say(f"  {what:<10} {url}")
    page = next((url for what, url in urls if what.startswith("receipt page")), None)
    receipt = next((url for what, url in urls if what.startswith("receipt (")), None)
    receipt = receipt or next((url for what, url in urls if what == "receipt"), None)
    if page is not None:
        say(f"  {'a receipt':<10} {page}")
    if receipt is not None:
        say(f"  {'as JSON':<10} {receipt}")
        say(f"  {'its proof':<10} {receipt}/proof")
    say("Ctrl-C stops the API.")
    if devnet is not None:
        flag = "" if devnet == DEFAULT_PORT else f" --port {devnet}"
        say(f"The devnet keeps running; stop it with: .venv/bin/liveproof devnet down{flag}")
