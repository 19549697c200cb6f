"""Invariant 7, robust to a hostile source: the platform's API (or the manifest directory it
hands out) errors, hangs, drips, resets, redirects or serves junk for one batch, or for all of
them. That batch fails ``batch-manifest`` and the audit goes on to the end: the lie told in a
later batch is still reported, exit 1; never exit 2, never a hang."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import Result

from chain.audit import batch_loader
from chain.deploy import deployment_path
from scripts.cli import app
from tests.audit.test_audit_chain import _deployments_dir, audit, runner
from tests.audit.world import AuditWorld
from tests.redteam.conftest import assert_caught, assert_clean, fail_lines

#: What a hostile handler does with one request (it may block until ``stop`` is set).
Behaviour = Callable[[BaseHTTPRequestHandler, threading.Event], None]

#: Seconds one manifest may take in these tests (``--manifest-timeout``).
TIMEOUT = 1.0


@dataclass
class Scene:
    """An honest session's batches, one of which (``victim``) its source will misbehave for,
    and, committed after it, a batch telling a real lie (``liar``)."""

    first: bytes
    victim: bytes
    liar: bytes
    roots: list[bytes]


def _change_one(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows[0] = {**rows[0], "quantity": int(rows[0]["quantity"]) + 1}
    return rows


def stage(world: AuditWorld, lie: str = "sale-price") -> Scene:
    """Sales at the promised price, a refund, the victim batch, then the liar: a sale above its
    promised price (``sale-price``) or a manifest not matching its commit (``batch-root``)."""
    session = world.open_session()
    endorsement = world.endorse(unit_price=12_800)

    def sell(quantity: int = 1, price: int = 12_800) -> Any:
        return world.sale(session, endorsement_id=endorsement, quantity=quantity, unit_price=price)

    sales = [sell(2), sell(3)]
    first = world.commit(sales)
    refund = world.commit([world.refund(sales[0])])
    victim = world.commit([sell(), sell()])
    if lie == "sale-price":
        liar = world.commit([sell(1, 12_900)])
    else:
        liar = world.commit([sell(), sell()], tamper=_change_one)
    last = world.commit([sell()])
    world.close_session(session, displayed=4)  # what the first two batches prove
    return Scene(first, victim, liar, [first, refund, victim, liar, last])


def _hex(root: bytes) -> str:
    return "0x" + root.hex()


# -- a hostile API ------------------------------------------------------------------------------


@dataclass
class HostileApi:
    """``GET /v1/batches/{root}`` answering the world's manifests, except where told."""

    world: AuditWorld
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    base: str = ""

    def serve(self) -> ThreadingHTTPServer:
        """Start serving on a free port of 127.0.0.1."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                root = self.path.removeprefix("/v1/batches/")
                behaviour = api.behaviours.get(root) or api.behaviours.get("*") or api.honest
                behaviour(self, api.stop)

            def log_message(self, *_: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, *_: Any) -> None:
                pass  # a client that gave up on a hostile answer: expected here

        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        return server

    def manifest(self, root: bytes) -> bytes:
        """The world's (honest) manifest of ``root``."""
        return (self.world.manifests / f"{_hex(root)}.json").read_bytes()

    def honest(self, handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        """The world's manifest, or 404."""
        path = self.world.manifests / f"{handler.path.removeprefix('/v1/batches/')}.json"
        found = path.is_file()
        answer(200 if found else 404, path.read_bytes() if found else b"{}")(handler, stop)


def answer(status: int, body: bytes = b"", **headers: str) -> Behaviour:
    """A complete answer: ``status``, ``headers`` and ``body``."""

    def behave(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)

    return behave


def hang(_: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Read the request, answer nothing."""
    stop.wait(60)


def drip_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A 200 announcing a body, then one byte of it every 50 ms (slowloris)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b'{"leaves": [')
    while not stop.wait(0.05):
        handler.wfile.write(b" ")
        handler.wfile.flush()


def drip_headers(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A status line, then a header one byte every 50 ms: the answer never starts."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Wait: ")
    while not stop.wait(0.05):
        handler.wfile.write(b"a")
        handler.wfile.flush()


def reset(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
    """Tear the connection down (TCP RST) instead of answering."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


@dataclass
class Endless:
    """A 200 with no length whose body never ends; counts what it could send."""

    sent: int = 0

    def __call__(self, handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        handler.send_response(200)
        handler.end_headers()  # HTTP/1.0, no Content-Length: the body runs to the close
        chunk = b" " * 65_536
        while not stop.is_set() and self.sent < 1 << 30:
            handler.wfile.write(chunk)
            self.sent += len(chunk)


@pytest.fixture
def api(world: AuditWorld) -> Iterator[HostileApi]:
    """The platform's API for the world, misbehaving where a test says."""
    hostile = HostileApi(world)
    server = hostile.serve()
    yield hostile
    hostile.stop.set()
    server.shutdown()
    server.server_close()


def audit_api(world: AuditWorld, base: str, *extra: str) -> Result:
    """``liveproof audit chain --api base`` with a short manifest timeout."""
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = deployment_path(world.deployment.chain_id, _deployments_dir(world))
    return runner.invoke(
        app,
        ["audit", "chain", "--rpc", rpc, "--deployment", str(dep), "--api", base,
         "--manifest-timeout", str(TIMEOUT), *extra],
    )  # fmt: skip


def caught_for_the_victim(result: Result, scene: Scene, other: str, why: str) -> str:
    """Exit 1; one batch-manifest FAIL, for the victim, saying ``why``; and the liar's lie
    (``other``) reported too: the audit went on past the victim. The victim's line."""
    assert_caught(result, "batch-manifest", other)
    (line,) = [x for x in fail_lines(result) if x.startswith("FAIL: batch-manifest ")]
    assert f"batch {_hex(scene.victim)}" in line, result.output
    assert why in line, result.output
    return line


# -- the honest API -----------------------------------------------------------------------------


def test_the_honest_world_audits_clean_through_its_api(
    world: AuditWorld, api: HostileApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.open_session()
    endorsement = world.endorse()
    sales = [world.sale(session, endorsement_id=endorsement, quantity=q) for q in (2, 3)]
    world.commit(sales)
    world.commit([world.refund(sales[0])])
    world.commit([world.sale(session, endorsement_id=endorsement)])
    world.close_session(session, displayed=5)
    monkeypatch.setattr(batch_loader, "POOL_AFTER", 1)  # worker processes read the API too
    result = audit_api(world, api.base, "--jobs", "2")
    assert_clean(result)
    assert "OK: batch-manifest: 3 checked" in result.output


# -- one batch's source misbehaves --------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 403])
def test_an_error_status_for_one_batch(world: AuditWorld, api: HostileApi, status: int) -> None:
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = answer(status, b'{"title": "oops"}')
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "sale-price", f"answered {status}")


def test_a_rate_limit_that_never_lifts(world: AuditWorld, api: HostileApi) -> None:
    """429 with a Retry-After, for ever: waited out while the deadline allows, then a FAIL."""
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = answer(429, b"{}", Retry_After="0.2")
    started = time.monotonic()
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "sale-price", "answered 429")
    assert time.monotonic() - started < 20


def test_a_hang_for_one_batch(world: AuditWorld, api: HostileApi) -> None:
    scene = stage(world, lie="batch-root")
    api.behaviours[_hex(scene.victim)] = hang
    started = time.monotonic()
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "batch-root", "no complete answer in time (1 s)")
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("in_a_worker", [False, True], ids=["main-process", "worker"])
def test_a_slowloris_body_for_one_batch(
    world: AuditWorld, api: HostileApi, monkeypatch: pytest.MonkeyPatch, in_a_worker: bool
) -> None:
    """A byte every 50 ms never trips a per-read timeout: the total deadline ends it."""
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = drip_body
    if in_a_worker:
        monkeypatch.setattr(batch_loader, "POOL_AFTER", 0)
    started = time.monotonic()
    result = audit_api(world, api.base, "--jobs", "2" if in_a_worker else "1")
    caught_for_the_victim(result, scene, "sale-price", "no complete answer in time")
    assert time.monotonic() - started < 20


def test_a_slowloris_in_the_headers_for_one_batch(world: AuditWorld, api: HostileApi) -> None:
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = drip_headers
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "sale-price", "no complete answer in time")


def test_a_connection_reset_for_one_batch(world: AuditWorld, api: HostileApi) -> None:
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = reset
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "sale-price", "no answer (")


def test_a_redirect_to_another_host_is_not_followed(world: AuditWorld, api: HostileApi) -> None:
    """Even to a host that would serve the right manifest: the auditor asked this API."""
    scene = stage(world)
    elsewhere = HostileApi(world)
    other = elsewhere.serve()
    try:
        moved = f"{elsewhere.base}/v1/batches/{_hex(scene.victim)}"
        api.behaviours[_hex(scene.victim)] = answer(302, b"", Location=moved)
        result = audit_api(world, api.base)
    finally:
        other.shutdown()
        other.server_close()
    line = caught_for_the_victim(result, scene, "sale-price", "answered 302")
    assert "not followed" in line


def _nested(depth: int) -> bytes:
    return b'{"leaves": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("junk", "why"),
    [
        (lambda _api, _s: b"<html><body>502 Bad Gateway</body></html>", "is not JSON"),
        (lambda api, s: api.manifest(s.victim)[:-40], "is not JSON"),
        (lambda _api, _s: _nested(100_000), "is not JSON"),
        (lambda _api, _s: b'{"leaves": [{"quantity": NaN}]}', "is not JSON"),
        (lambda _api, _s: b'{"leaves": [{"quantity": Infinity}]}', "is not JSON"),
        (lambda _api, _s: b'{"leaves": "all of them"}', "a non-empty list of leaves"),
        (
            lambda api, s: api.manifest(s.victim).replace(b'"quantity": 1,', b'"quantity": 1.0,'),
            "leaf field quantity",
        ),
        (lambda _api, _s: b"", "is not JSON"),
    ],
    ids=["html", "truncated", "deeply-nested", "nan", "infinity", "wrong-type", "float", "empty"],
)
def test_junk_for_one_batch(
    world: AuditWorld, api: HostileApi, junk: Callable[[HostileApi, Scene], bytes], why: str
) -> None:
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = answer(200, junk(api, scene))
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "sale-price", why)


def test_a_manifest_for_another_root(world: AuditWorld, api: HostileApi) -> None:
    """The first batch's manifest, served for the victim: honest leaves, the wrong batch."""
    scene = stage(world)
    api.behaviours[_hex(scene.victim)] = answer(200, api.manifest(scene.first))
    result = audit_api(world, api.base)
    line = caught_for_the_victim(result, scene, "sale-price", "the manifest of another root")
    assert _hex(scene.first) in line


def test_duplicate_keys_for_one_batch(world: AuditWorld, api: HostileApi) -> None:
    """``{"leaves": <other leaves>, ...honest manifest...}``: a parser keeping the last key
    rebuilds the root, one keeping the first reads other leaves. Both cannot be the batch."""
    scene = stage(world)
    honest_text = api.manifest(scene.victim)
    other_leaves = honest_text.replace(b'"quantity": 1,', b'"quantity": 9,')
    start = other_leaves.index(b'"leaves": ')
    decoy = other_leaves[start:-1]
    api.behaviours[_hex(scene.victim)] = answer(200, b"{" + decoy + b", " + honest_text[1:])
    result = audit_api(world, api.base)
    caught_for_the_victim(result, scene, "sale-price", "names a key twice")


def test_a_body_announced_over_the_cap_is_not_read(world: AuditWorld, api: HostileApi) -> None:
    scene = stage(world)
    huge = str(10**12)

    def announce(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", huge)
        handler.end_headers()
        stop.wait(60)  # never sends it: the announcement alone is refused

    api.behaviours[_hex(scene.victim)] = announce
    result = audit_api(world, api.base, "--manifest-max-bytes", "100000")
    caught_for_the_victim(result, scene, "sale-price", "over the cap of 100,000 bytes")


def test_an_endless_body_is_cut_at_the_cap(world: AuditWorld, api: HostileApi) -> None:
    scene = stage(world)
    endless = Endless()
    api.behaviours[_hex(scene.victim)] = endless
    result = audit_api(world, api.base, "--manifest-max-bytes", "100000")
    caught_for_the_victim(result, scene, "sale-price", "a body over the cap")
    assert endless.sent < 64 << 20  # the auditor stopped reading (socket buffers aside)


# -- every batch's source misbehaves -------------------------------------------------------------


def test_an_api_down_for_every_batch(world: AuditWorld) -> None:
    """Nothing listens: every batch fails batch-manifest (after three, the API is no longer
    asked), the session displaying sales no batch proves is a finding too; exit 1, not 2."""
    scene = stage(world)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = audit_api(world, f"http://127.0.0.1:{port}")
    assert_caught(result, "batch-manifest", "displayed-sales")
    lines = [x for x in fail_lines(result) if x.startswith("FAIL: batch-manifest ")]
    assert [_hex(r) in x for r, x in zip(scene.roots, lines, strict=True)] == [True] * 5
    assert sum("not asked" in x for x in lines) == 2


def test_an_api_hanging_for_every_batch_does_not_hang_the_audit(
    world: AuditWorld, api: HostileApi
) -> None:
    scene = stage(world)
    api.behaviours["*"] = hang
    started = time.monotonic()
    result = audit_api(world, api.base)
    assert_caught(result, "batch-manifest", "displayed-sales")
    lines = [x for x in fail_lines(result) if x.startswith("FAIL: batch-manifest ")]
    assert len(lines) == len(scene.roots)
    assert time.monotonic() - started < 3 * TIMEOUT + 15  # three waited out, then not asked


# -- a hostile manifest directory ----------------------------------------------------------------


def test_a_fifo_in_place_of_a_manifest_file(world: AuditWorld) -> None:
    """Reading a FIFO blocks until someone writes to it: the audit must not wait."""
    scene = stage(world)
    path = world.manifests / f"{_hex(scene.victim)}.json"
    path.unlink()
    os.mkfifo(path)
    caught_for_the_victim(audit(world), scene, "sale-price", "is not a regular file")


def test_a_manifest_file_over_the_cap(world: AuditWorld) -> None:
    scene = stage(world)
    path = world.manifests / f"{_hex(scene.victim)}.json"
    path.write_bytes(path.read_bytes()[:-1] + b" " * 200_000 + b"}")
    result = audit(world, "--manifest-max-bytes", "100000")
    caught_for_the_victim(result, scene, "sale-price", "over the cap")


def test_only_a_bad_command_line_stays_exit_2(world: AuditWorld) -> None:
    """Not a hostile source but the auditor's own mistake: a URL that is no http(s) URL, or a
    timeout or cap that is not positive."""
    stage(world)
    assert audit_api(world, "ftp://127.0.0.1/").exit_code == 2
    assert audit_api(world, "http://127.0.0.1:9", "--manifest-timeout", "0").exit_code == 2
    assert audit(world, "--manifest-max-bytes", "0").exit_code == 2
