"""The anvil lifecycle on the real binary: start, status, persistence, stop, failures."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.types import Wei

from chain.devnet import (
    DevnetInfo,
    PortInUseError,
    anvil_status,
    free_port,
    live_children,
    start_anvil,
    stop_anvil,
    throwaway_anvil,
)
from chain.errors import ConfigurationError, ToolNotFoundError
from chain.paths import node_bin, project_root, state_dir

pytestmark = pytest.mark.usefixtures("no_leaked_anvils")

SINK = Web3.to_checksum_address("0x000000000000000000000000000000000000dead")
Starter = Callable[..., DevnetInfo]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    """start_anvil with a per-test run dir; whatever it started is stopped afterwards."""
    ports: set[int] = set()

    def _start(port: int | None = None, **kwargs: Any) -> DevnetInfo:
        chosen = port if port is not None else free_port()
        ports.add(chosen)
        kwargs.setdefault("run_dir", tmp_path / "run")
        return start_anvil(chosen, **kwargs)

    yield _start
    for port in ports:
        stop_anvil(port, run_dir=tmp_path / "run")


def _pay(info: DevnetInfo, wei: int) -> None:
    w3 = Web3(Web3.HTTPProvider(info.rpc_url))
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": SINK, "value": Wei(wei)})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def _balance(info: DevnetInfo) -> int:
    return Web3(Web3.HTTPProvider(info.rpc_url)).eth.get_balance(SINK)


def test_state_survives_stop_and_restart(start: Starter, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    info = start(state_file=state)
    assert info.chain_id == 31337
    assert info.block_number == 0
    assert info.state_file == state
    assert info.log_file.is_file()
    run = tmp_path / "run"
    assert anvil_status(info.port, run_dir=run) == info

    _pay(info, 7)
    assert stop_anvil(info.port, run_dir=run) is True
    assert anvil_status(info.port, run_dir=run) is None
    assert info.pid not in live_children()
    assert state.stat().st_size > 0  # written by the SIGTERM dump

    again = start(info.port, state_file=state)
    assert again.pid != info.pid
    assert again.block_number == 1
    assert _balance(again) == 7


def test_sigkill_loses_what_the_last_dump_missed(start: Starter, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # A long interval means no periodic dump happens during the test.
    info = start(state_file=state, state_interval=600)
    _pay(info, 7)
    os.killpg(info.pid, signal.SIGKILL)
    assert not state.exists()
    # SIGKILL is delivered at once but the processes take a moment to go: wait for the
    # process group itself (what stop_anvil checks), not just for the RPC to fall silent.
    deadline = time.monotonic() + 10
    while info.pid in live_children():
        assert time.monotonic() < deadline, "anvil survived SIGKILL"
        time.sleep(0.05)
    assert stop_anvil(info.port, run_dir=tmp_path / "run") is False  # already dead

    again = start(info.port, state_file=state)
    assert again.block_number == 0
    assert _balance(again) == 0


def test_start_is_idempotent(start: Starter) -> None:
    info = start(state_file=None)
    assert start(info.port, state_file=None) == info


def test_start_refuses_a_different_chain_id_on_a_running_port(start: Starter) -> None:
    info = start(state_file=None)
    with pytest.raises(ConfigurationError, match="chain id 31337 already runs"):
        start(info.port, state_file=None, chain_id=1337)


def test_stop_is_idempotent(tmp_path: Path) -> None:
    port = free_port()
    assert stop_anvil(port, run_dir=tmp_path) is False
    assert anvil_status(port, run_dir=tmp_path) is None


def test_default_state_file_lives_in_the_run_dir(start: Starter, tmp_path: Path) -> None:
    info = start()
    assert info.state_file == tmp_path / "run" / "state.json"
    assert info.log_file == tmp_path / "run" / "anvil.log"
    assert (tmp_path / "run" / "anvil.pid").read_text().strip() == str(info.pid)


def test_missing_anvil_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "node_modules" / ".bin" / "anvil"
    with pytest.raises(ToolNotFoundError, match=r"anvil not found at .*run `npm ci`"):
        start_anvil(free_port(), run_dir=tmp_path, anvil=missing)
    monkeypatch.setenv("LIVEPROOF_ANVIL", str(missing))
    with pytest.raises(ToolNotFoundError, match=str(missing)):
        start_anvil(free_port(), run_dir=tmp_path)


def test_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .* already in use"):
            start_anvil(port, run_dir=tmp_path)
    assert not (tmp_path / "anvil.pid").exists()


def test_anvil_failing_at_start_up_shows_its_log(tmp_path: Path) -> None:
    corrupt = tmp_path / "state.json"
    corrupt.write_text("not json")
    with pytest.raises(ConfigurationError, match="exited during start-up") as caught:
        start_anvil(free_port(), run_dir=tmp_path, state_file=corrupt)
    assert "failed to parse json" in str(caught.value)
    assert not (tmp_path / "anvil.pid").exists()


def test_throwaway_anvil_is_stateless_and_stops() -> None:
    with throwaway_anvil() as info:
        assert info.state_file is None
        assert info.pid in live_children()
        _pay(info, 1)
        run_dir = info.log_file.parent
    assert info.pid not in live_children()
    assert not run_dir.exists()


def test_throwaway_anvil_with_chain_id_and_extra_args() -> None:
    with throwaway_anvil(chain_id=1, extra_args=["--hardfork", "berlin"]) as info:
        w3 = Web3(Web3.HTTPProvider(info.rpc_url))
        assert w3.eth.chain_id == 1
        assert "baseFeePerGas" not in w3.eth.get_block("latest")


def test_project_root_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEPROOF_HOME", raising=False)
    root = project_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "chain" / "paths.py").is_file()
    assert node_bin("anvil") == root / "node_modules" / ".bin" / "anvil"
    with pytest.raises(ConfigurationError):
        node_bin("../anvil")

    monkeypatch.setenv("LIVEPROOF_HOME", str(tmp_path))
    assert project_root() == tmp_path.resolve()
    assert not (tmp_path / ".liveproof").exists()
    assert state_dir() == tmp_path.resolve() / ".liveproof"
    assert state_dir().is_dir()

    monkeypatch.setenv("LIVEPROOF_HOME", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="LIVEPROOF_HOME"):
        project_root()


def test_default_layout_under_liveproof_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEPROOF_ANVIL", str(node_bin("anvil")))
    monkeypatch.setenv("LIVEPROOF_HOME", str(tmp_path))
    port = free_port()
    info = start_anvil(port)
    try:
        run = tmp_path.resolve() / ".liveproof" / "anvil" / str(port)
        assert info.state_file == run / "state.json"
        assert (run / "anvil.pid").read_text().strip() == str(info.pid)
        assert anvil_status(port) == info
    finally:
        assert stop_anvil(port) is True
    assert (run / "state.json").is_file()
    assert not (run / "anvil.pid").exists()
