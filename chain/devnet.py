"""Running a local anvil devnet: start, status, stop, and throwaway instances for tests.

anvil is launched from ``node_modules/.bin/anvil`` (override: ``$LIVEPROOF_ANVIL``)
in a session of its own. That path is a node wrapper which forwards SIGTERM to
the real binary and exits at once, so every signal goes to the whole process
group and "stopped" means no live process is left in that group.

With ``--state FILE`` anvil loads FILE at start if it exists, rewrites it every
``state_interval`` seconds and once more on SIGTERM; a SIGKILL loses whatever
happened since the last periodic dump.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from chain.errors import ConfigurationError, RpcUnavailableError, ToolNotFoundError
from chain.paths import node_bin, state_dir

ANVIL_ENV = "LIVEPROOF_ANVIL"
DEFAULT_PORT = 8545
_PID_FILE = "anvil.pid"
_META_FILE = "anvil.json"
_LOG_FILE = "anvil.log"
_POLL = 0.05

# Popen handles of anvils this process started, kept so they can be reaped
# (a dead child stays a zombie, and so looks alive, until its parent waits).
_children: dict[int, subprocess.Popen[bytes]] = {}


class _Default(enum.Enum):
    STATE_FILE = "default"


DEFAULT_STATE_FILE: Final = _Default.STATE_FILE
StateFileArg = Path | None | Literal[_Default.STATE_FILE]


class PortInUseError(ConfigurationError):
    """The port is held by something that is not a LiveProof-managed anvil."""


@dataclass(frozen=True)
class DevnetInfo:
    """A running anvil as seen through its pid file and JSON-RPC."""

    rpc_url: str
    port: int
    pid: int
    chain_id: int
    block_number: int
    state_file: Path | None
    log_file: Path


def anvil_path(anvil: Path | None = None) -> Path:
    """Return the anvil executable: ``anvil`` if given, else ``$LIVEPROOF_ANVIL``, else npm's."""
    if anvil is not None:
        return anvil
    override = os.environ.get(ANVIL_ENV)
    return Path(override).expanduser() if override else node_bin("anvil")


def run_dir_for(port: int) -> Path:
    """Return ``.liveproof/anvil/<port>``, home of that port's pid file, log and state."""
    return state_dir() / "anvil" / str(port)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_anvil(
    port: int = DEFAULT_PORT,
    *,
    state_file: StateFileArg = DEFAULT_STATE_FILE,
    state_interval: int = 1,
    chain_id: int = 31337,
    block_time: float | None = None,
    host: str = "127.0.0.1",
    timeout: float = 30,
    run_dir: Path | None = None,
    anvil: Path | None = None,
    extra_args: Sequence[str] = (),
) -> DevnetInfo:
    """Start anvil detached on ``port`` and wait until it answers; reuse ours if already up.

    ``state_file=None`` runs without persistence; ``extra_args`` go to anvil as they
    are (e.g. ``["--hardfork", "berlin"]``). Raises :class:`ToolNotFoundError`
    if anvil is not installed and :class:`PortInUseError` if another program
    holds the port.
    """
    rundir = run_dir or run_dir_for(port)
    rundir.mkdir(parents=True, exist_ok=True)
    probe_host = _probe_host(host)

    pid = _read_pid(rundir)
    if pid is not None and _ours_alive(rundir, pid):
        existing = _wait_answering(probe_host, port, timeout, alive=lambda: _group_alive(pid))
        if existing is None:
            raise ConfigurationError(
                f"anvil (pid {pid}) for port {port} is running but not answering; "
                f"see {rundir / _LOG_FILE} or stop it"
            )
        if existing[0] != chain_id:
            raise ConfigurationError(
                f"an anvil with chain id {existing[0]} already runs on port {port} "
                f"(asked for {chain_id}); stop it first"
            )
        info = anvil_status(port, run_dir=rundir)
        if info is not None:
            return info
    _clear_run_files(rundir)

    if _port_open_after_grace(probe_host, port):
        raise PortInUseError(
            f"port {port} on {probe_host} is already in use by another program "
            "(not an anvil started by LiveProof); stop it or choose another port"
        )
    binary = anvil_path(anvil)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise ToolNotFoundError(
            f"anvil not found at {binary}; run `npm ci` in the project root "
            "(make run/test does this)"
        )

    state = rundir / "state.json" if state_file is DEFAULT_STATE_FILE else state_file
    args = [str(binary), "--host", host, "--port", str(port), "--chain-id", str(chain_id)]
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        args += ["--state", str(state), "--state-interval", str(state_interval)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    args += list(extra_args)

    log_file = rundir / _LOG_FILE
    with log_file.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ToolNotFoundError(f"cannot run anvil at {binary}: {exc}") from exc
    _children[proc.pid] = proc
    _write_run_files(rundir, proc.pid, host, port, chain_id, state, log_file)

    answer = _wait_answering(probe_host, port, timeout, alive=lambda: _group_alive(proc.pid))
    # An answer while our process group is gone came from someone else on that port.
    if answer is None or not _group_alive(proc.pid):
        running = _group_alive(proc.pid)
        _terminate_group(proc.pid, grace=2)
        _clear_run_files(rundir)
        tail = _log_tail(log_file)
        if "Address already in use" in tail:
            raise PortInUseError(f"port {port} was taken while anvil started:\n{tail}")
        if running:
            raise RpcUnavailableError(
                f"anvil did not answer on port {port} within {timeout}s; log {log_file}:\n{tail}"
            )
        raise ConfigurationError(f"anvil exited during start-up; log {log_file}:\n{tail}")
    return DevnetInfo(
        rpc_url=f"http://{probe_host}:{port}",
        port=port,
        pid=proc.pid,
        chain_id=answer[0],
        block_number=answer[1],
        state_file=state,
        log_file=log_file,
    )


def anvil_status(port: int = DEFAULT_PORT, *, run_dir: Path | None = None) -> DevnetInfo | None:
    """Describe our anvil on ``port`` if its process is alive and answering, else None."""
    rundir = run_dir or run_dir_for(port)
    pid = _read_pid(rundir)
    if pid is None or not _ours_alive(rundir, pid):
        return None
    meta = _read_meta(rundir)
    probe_host = _probe_host(str(meta.get("host", "127.0.0.1")))
    answer = _chain_head(probe_host, port, timeout=2)
    if answer is None:
        return None
    state = meta.get("state_file")
    return DevnetInfo(
        rpc_url=f"http://{probe_host}:{port}",
        port=port,
        pid=pid,
        chain_id=answer[0],
        block_number=answer[1],
        state_file=Path(state) if isinstance(state, str) else None,
        log_file=Path(str(meta.get("log_file", rundir / _LOG_FILE))),
    )


def stop_anvil(
    port: int = DEFAULT_PORT, *, timeout: float = 10, run_dir: Path | None = None
) -> bool:
    """Stop our anvil on ``port`` (SIGTERM so it dumps state, SIGKILL after ``timeout``).

    Returns True if something was running; stopping twice is harmless.
    """
    rundir = run_dir or run_dir_for(port)
    pid = _read_pid(rundir)
    if pid is None:
        return False
    was_running = _ours_alive(rundir, pid)
    if was_running:
        _terminate_group(pid, grace=timeout)
    _clear_run_files(rundir)
    return was_running


@contextlib.contextmanager
def throwaway_anvil(
    *,
    port: int | None = None,
    chain_id: int = 31337,
    timeout: float = 30,
    extra_args: Sequence[str] = (),
) -> Iterator[DevnetInfo]:
    """Run a stateless anvil on a free (or the given) port for the duration of a ``with``."""
    with tempfile.TemporaryDirectory(prefix="liveproof-anvil-") as tmp:
        rundir = Path(tmp)
        # A free port can be grabbed by someone else before anvil binds it; try a few.
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            chosen = port if port is not None else free_port()
            try:
                info = start_anvil(
                    chosen,
                    state_file=None,
                    chain_id=chain_id,
                    timeout=timeout,
                    run_dir=rundir,
                    extra_args=extra_args,
                )
                break
            except PortInUseError:
                if attempt == attempts - 1:
                    raise
        try:
            yield info
        finally:
            stop_anvil(info.port, run_dir=rundir)


def live_children() -> tuple[int, ...]:
    """Return the pids of anvils started by this process that are still running."""
    return tuple(pid for pid in list(_children) if _group_alive(pid))


def _port_open_after_grace(host: str, port: int, grace: float = 3.0) -> bool:
    """Whether ``port`` stays in use: a process killed a moment ago (a crashed devnet being
    restarted) can hold its socket for a few milliseconds while the kernel tears it down."""
    deadline = time.monotonic() + grace
    while _port_open(host, port):
        if time.monotonic() >= deadline:
            return True
        time.sleep(_POLL)
    return False


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104


def _rpc(host: str, port: int, method: str, timeout: float) -> object:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []})
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    if not isinstance(reply, dict) or "result" not in reply:
        raise ValueError(f"unexpected reply to {method}: {reply!r}")
    return reply["result"]


def _chain_head(host: str, port: int, timeout: float) -> tuple[int, int] | None:
    try:
        chain_id = _rpc(host, port, "eth_chainId", timeout)
        block = _rpc(host, port, "eth_blockNumber", timeout)
        return int(str(chain_id), 16), int(str(block), 16)
    except (OSError, ValueError, http.client.HTTPException):
        return None


def _wait_answering(
    host: str, port: int, timeout: float, *, alive: Callable[[], bool]
) -> tuple[int, int] | None:
    deadline = time.monotonic() + timeout
    while True:
        answer = _chain_head(host, port, timeout=1)
        if answer is not None:
            return answer
        if not alive() or time.monotonic() >= deadline:
            return None
        time.sleep(_POLL)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _terminate_group(pgid: int, *, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(_POLL)


def _ours_alive(rundir: Path, pid: int) -> bool:
    # A pid file can outlive its process (reboot, SIGKILL); its number may since
    # belong to someone else, which a different start time gives away.
    recorded = _read_meta(rundir).get("start_time")
    current = _start_time(pid)
    if recorded is not None and current is not None and current != recorded:
        return False
    return _group_alive(pid)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _group_alive(pgid: int) -> bool:
    child = _children.get(pgid)
    if child is not None and child.poll() is not None:
        del _children[pgid]
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # killpg(0) also succeeds for zombies, which linger until their reaper runs.
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _read_pid(rundir: Path) -> int | None:
    try:
        return int((rundir / _PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _read_meta(rundir: Path) -> dict[str, object]:
    try:
        meta = json.loads((rundir / _META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_run_files(
    rundir: Path,
    pid: int,
    host: str,
    port: int,
    chain_id: int,
    state: Path | None,
    log_file: Path,
) -> None:
    meta = {
        "pid": pid,
        "host": host,
        "port": port,
        "chain_id": chain_id,
        "state_file": str(state) if state is not None else None,
        "log_file": str(log_file),
        "start_time": _start_time(pid),
    }
    (rundir / _META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    (rundir / _PID_FILE).write_text(f"{pid}\n")


def _clear_run_files(rundir: Path) -> None:
    for name in (_PID_FILE, _META_FILE):
        (rundir / name).unlink(missing_ok=True)


def _log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])
