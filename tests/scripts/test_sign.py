"""`liveproof sign claim|endorsement|revocation` against a real stack, with keystore files."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx
from eth_account import Account
from sqlmodel import Session

from api.auth import create_key
from api.db import make_engine
from api.models import Role
from chain.actions import claims_digest
from chain.connect import connect
from chain.deploy import load_deployment
from chain.keys import ANVIL_DEV_KEYS, KEYSTORE_PASSWORD_ENV
from scripts.bench.harness import running_stack

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def _keystore(tmp_path: Path, name: str, key: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(Account.encrypt(key, PASSWORD)))
    return path


def _sign(*args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIVEPROOF_KEYSTORE_PASSWORD": password}
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", "sign", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_claim_endorsement_and_revocation_are_signed_locally_and_recorded(
    tmp_path: Path,
) -> None:
    brand_keystore = _keystore(tmp_path, "brand", ANVIL_DEV_KEYS[1])
    anchor_keystore = _keystore(tmp_path, "anchor", ANVIL_DEV_KEYS[3])
    document = tmp_path / "origin.txt"
    document.write_text("Grown on Shifeng hill, Hangzhou; picked 2026-03-28.")
    with running_stack(workers=1) as stack:
        brand_address = Account.from_key(ANVIL_DEV_KEYS[1]).address
        engine = make_engine(stack.database_url, pool_size=1)
        with Session(engine) as session:
            _, brand_key = create_key(session, role=Role.BRAND, subject=brand_address)
        engine.dispose()
        gtin = stack.catalogue.gtin
        api = ["--api", stack.base_url]

        claim = _sign(
            "claim", "--keystore", str(brand_keystore), "--gtin", gtin, "--type", "origin",
            "--content-file", str(document), "--uri", "https://tea.example/origin",
            "--api-key", brand_key, *api,
        )  # fmt: skip
        assert claim.returncode == 0, claim.stdout + claim.stderr
        assert claim.stdout.startswith("OK: claim 0x")
        claim_id = claim.stdout.split()[2]

        endorsed = _sign(
            "endorsement", "--keystore", str(anchor_keystore), "--gtin", gtin,
            "--room", "tea-room", "--price", "12800", "--sponsored", "--commission-bps", "1500",
            *api,
        )  # fmt: skip
        assert endorsed.returncode == 0, endorsed.stdout + endorsed.stderr
        endorsement_id = endorsed.stdout.split()[2]
        record = httpx.get(f"{stack.base_url}/v1/endorsements/{endorsement_id}").json()
        assert record["sponsored"] is True
        assert record["commission_bps"] == 1500
        assert record["claims_digest"] == "0x" + claims_digest([bytes.fromhex(claim_id[2:])]).hex()
        w3 = connect(stack.devnet.rpc_url)
        anchors = load_deployment(int(w3.eth.chain_id), stack.workdir).anchors(w3)
        on_chain = anchors.endorsement(bytes.fromhex(endorsement_id[2:]))
        assert on_chain.anchor == Account.from_key(ANVIL_DEV_KEYS[3]).address
        assert not on_chain.revoked

        revoked = _sign(
            "revocation", "--keystore", str(anchor_keystore), "--endorsement", endorsement_id, *api
        )
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        assert anchors.endorsement(bytes.fromhex(endorsement_id[2:])).revoked
        again = _sign(
            "revocation", "--keystore", str(anchor_keystore), "--endorsement", endorsement_id, *api
        )
        assert again.returncode == 1
        assert again.stdout.startswith("FAIL: revocation: 409")

        unknown = _sign(
            "endorsement", "--keystore", str(anchor_keystore), "--gtin", "00000000000017",
            "--room", "tea-room", "--price", "1", *api,
        )  # fmt: skip
        assert unknown.returncode == 1
        assert "404" in unknown.stdout


def test_a_wrong_password_or_an_unreachable_api_exit_2(tmp_path: Path) -> None:
    keystore = _keystore(tmp_path, "anchor", ANVIL_DEV_KEYS[3])
    wrong = _sign(
        "revocation", "--keystore", str(keystore), "--endorsement", "0x" + "11" * 32,
        "--api", "http://127.0.0.1:9", password="not it",
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "wrong password" in wrong.stderr
    unreachable = _sign(
        "revocation", "--keystore", str(keystore), "--endorsement", "0x" + "11" * 32,
        "--api", "http://127.0.0.1:9",
    )  # fmt: skip
    assert unreachable.returncode == 2
    assert "cannot reach the API" in unreachable.stderr


def _sign_at_a_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run ``liveproof sign`` on a pseudo-terminal with no password in the environment, answer
    its password prompt with ``answer``; (exit code, everything the terminal showed)."""
    env = {k: v for k, v in os.environ.items() if k != KEYSTORE_PASSWORD_ENV}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling tty, as for a person
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "scripts.cli", "sign", *args], env)  # noqa: S606
    shown = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if not answered and b"Password for" in shown:
            # getpass turns echo off with TCSAFLUSH, which drops input typed before: answer
            # once the terminal no longer echoes (the master reads the slave's settings).
            while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(fd, answer.encode() + b"\n")
            answered = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_the_password_is_prompted_for_at_a_terminal_and_not_echoed(tmp_path: Path) -> None:
    keystore = _keystore(tmp_path, "anchor", ANVIL_DEV_KEYS[3])
    args = [
        "revocation", "--keystore", str(keystore), "--endorsement", "0x" + "11" * 32,
        "--api", "http://127.0.0.1:9",
    ]  # fmt: skip
    code, shown = _sign_at_a_terminal(args, "not it")
    assert code == 2
    assert f"Password for {keystore}" in shown
    assert "wrong password" in shown
    assert "not it" not in shown  # hidden input
    # The right password decrypts the key; the command then gets as far as the API.
    code, shown = _sign_at_a_terminal(args, PASSWORD)
    assert code == 2
    assert "cannot reach the API" in shown
    assert PASSWORD not in shown
