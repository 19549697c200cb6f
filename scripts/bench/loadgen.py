"""A small HTTP/1.1 load generator for the benchmarks, run as its own process.

It keeps C keep-alive connections busy with pre-built requests and records each request's
latency. Written on raw asyncio streams because a general-purpose client would spend more CPU
than the server under test, on the same two cores.

Input (JSON on stdin): host, port, requests: list of {path, headers, body} (body a string).
Output (JSON on stdout): elapsed, statuses, latencies_ms, bodies (only when asked).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
    uvloop = None  # type: ignore[assignment]


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """A complete HTTP/1.1 POST request."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _worker(
    host: str, port: int, queue: list[tuple[int, bytes]], out: dict[str, Any], keep_bodies: bool
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            index, raw = queue.pop()
            started = time.perf_counter()
            writer.write(raw)
            status, body = await _read_response(reader)
            out["latencies"][index] = (time.perf_counter() - started) * 1000
            out["statuses"][index] = status
            if keep_bodies:
                out["bodies"][index] = body.decode()
    finally:
        writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Send every request in ``spec`` over ``concurrency`` connections."""
    host, port = spec["host"], int(spec["port"])
    requests = spec["requests"]
    raws = [
        (i, build_request(host, port, r["path"], r["headers"], r["body"].encode()))
        for i, r in enumerate(requests)
    ]
    raws.reverse()  # pop() from the end keeps the original order
    n = len(raws)
    out: dict[str, Any] = {"latencies": [0.0] * n, "statuses": [0] * n, "bodies": [""] * n}
    keep = bool(spec.get("keep_bodies"))
    started = time.perf_counter()
    await asyncio.gather(
        *(_worker(host, port, raws, out, keep) for _ in range(int(spec["concurrency"])))
    )
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "statuses": out["statuses"],
        "latencies_ms": out["latencies"],
        "bodies": out["bodies"] if keep else [],
    }


async def _paced_worker(
    host: str,
    port: int,
    schedule: _Schedule,
    template: dict[str, Any],
    out: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = template["body"]
    try:
        while True:
            slot = schedule.next()
            if slot is None:
                return
            index, due = slot
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = head.replace("{i}", str(index)).encode()
            headers = {k: v.replace("{i}", str(index)) for k, v in template["headers"].items()}
            writer.write(build_request(host, port, template["path"], headers, body))
            status, _ = await _read_response(reader)
            # From when the request was due, not when it went out: a server that falls behind
            # shows in the latencies (no coordinated omission).
            out["latencies"][index] = (time.perf_counter() - due) * 1000
            out["statuses"][index] = status
    finally:
        writer.close()


class _Schedule:
    """Request ``i`` is due at ``start + i / rate``."""

    def __init__(self, count: int, rate: float, start: float) -> None:
        self.count, self.rate, self.start, self.issued = count, rate, start, 0

    def next(self) -> tuple[int, float] | None:
        if self.issued >= self.count:
            return None
        index = self.issued
        self.issued += 1
        return index, self.start + index / self.rate


async def run_paced(spec: dict[str, Any]) -> dict[str, Any]:
    """Send ``count`` requests from ``template`` (``{i}`` replaced by the request's number) at
    ``rate`` per second over ``concurrency`` connections: an open-loop, constant-rate load."""
    host, port = spec["host"], int(spec["port"])
    count, rate = int(spec["count"]), float(spec["rate"])
    out: dict[str, Any] = {"latencies": [0.0] * count, "statuses": [0] * count}
    started = time.perf_counter()
    schedule = _Schedule(count, rate, started + 0.05)
    await asyncio.gather(
        *(
            _paced_worker(host, port, schedule, spec["template"], out)
            for _ in range(int(spec["concurrency"]))
        )
    )
    return {
        "elapsed": time.perf_counter() - started,
        "statuses": out["statuses"],
        "latencies_ms": out["latencies"],
        "bodies": [],
    }


def run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator on ``spec`` in its own process and return its result."""
    from chain.errors import LiveProofError

    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise LiveProofError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    """Read the spec on stdin, run it, print the result."""
    spec = json.load(sys.stdin)
    if uvloop is not None:
        uvloop.install()
    result = asyncio.run(run_paced(spec) if "template" in spec else run(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
