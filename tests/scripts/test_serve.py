"""`liveproof serve` runs its committer in a process of its own, which never outlives serve."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chain.devnet import free_port

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_committer_stops_when_serve_is_killed(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LIVEPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "LIVEPROOF_RPC_URL": "http://127.0.0.1:9",  # no chain: the committer just waits
        "LIVEPROOF_BATCH_INTERVAL": "0.2",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "serve did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        committers = [p for p in _children(serve.pid) if "committer" in _cmdline(p)]
        assert len(committers) == 1
        os.kill(serve.pid, signal.SIGKILL)  # nobody gets to tell the committer
        serve.wait()
        deadline = time.monotonic() + 15
        while _alive(committers[0]):
            assert time.monotonic() < deadline, "the committer outlived serve"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)  # the uvicorn workers, if left
