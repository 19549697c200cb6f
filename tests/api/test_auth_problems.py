"""Every ingest endpoint refuses callers without a valid ingest key, and every refusal is an
RFC 9457 problem that wrote nothing: no key, malformed and revoked keys, other roles,
unknown fields, invalid JSON and bodies over the size limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from web3 import Web3

from api.app import create_app
from api.config import Settings
from api.db import make_engine
from chain.actions import label_hash
from chain.deploy import Deployment
from tests.api.conftest import Keys, World
from tests.api.test_ingest import RECORDING, assert_problem, row_counts
from tests.api.test_orders import open_room_and_session, order


@dataclass(frozen=True)
class Call:
    """One ingest endpoint and a body it would accept from the right caller."""

    method: str
    path: str
    body: dict[str, Any] | None
    #: Where an unknown field goes in the body (a path of keys).
    nest: tuple[str | int, ...] = ()

    def send(
        self,
        client: TestClient,
        headers: dict[str, str],
        *,
        body: dict[str, Any] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send the call with ``headers`` (plus an Idempotency-Key)."""
        all_headers = {"Idempotency-Key": f"k-{time.monotonic_ns()}", **headers}
        response: httpx.Response
        if content is not None:
            all_headers.setdefault("content-type", "application/json")
            response = client.request(self.method, self.path, content=content, headers=all_headers)
        else:
            payload = self.body if body is None else body
            response = client.request(self.method, self.path, json=payload, headers=all_headers)
        return response

    def with_unknown_field(self) -> dict[str, Any]:
        """The body with an extra ``surprise`` field where the model would see it."""
        assert self.body is not None
        body: Any = _copy(self.body)
        target = body
        for step in self.nest:
            target = target[step]
        target["surprise"] = 1
        result: dict[str, Any] = body
        return result


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def ingest_calls(world: World, sale_code: str) -> list[Call]:
    """All the ingest endpoints, each with a body the right caller could send."""
    return [
        Call("POST", "/v1/rooms", {"room_id": "room-new", "name": "New"}),
        Call("GET", "/v1/rooms", None),
        Call(
            "POST",
            "/v1/sessions",
            {"session_id": "live-new", "room_id": "room-1", "anchor": world.anchor},
        ),
        Call(
            "POST", "/v1/sessions/live-1/close", {"recording_hash": RECORDING, "displayed_sales": 5}
        ),
        Call("POST", "/v1/orders", order(world)),
        Call("POST", "/v1/orders/bulk", {"orders": [order(world)]}, ("orders", 0)),
        Call("POST", "/v1/refunds", {"receipt_code": sale_code, "quantity": 1}),
    ]


@dataclass(frozen=True)
class Scene:
    """A room with an open session and one sale, made by the ``ingest`` key."""

    calls: list[Call]
    sale_code: str


@pytest.fixture
def scene(client: TestClient, keys: Keys, world: World) -> Scene:
    """Room, open session and a sale, so that refused calls had something to change."""
    open_room_and_session(client, keys, world)
    r = client.post(
        "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": "sale"}
    )
    assert r.status_code == 201, r.text
    code = r.json()["receipt_code"]
    return Scene(ingest_calls(world, code), code)


def assert_untouched(
    settings: Settings, before: dict[str, int], w3: Web3, deployment: Deployment
) -> None:
    """Nothing was written: same row counts, no new session on chain, live-1 still open."""
    assert row_counts(settings) == before
    anchors = deployment.anchors(w3)
    assert not anchors.session(label_hash("live-new")).exists
    assert anchors.session(label_hash("live-1")).closed_at == 0


# ----------------------------------------------------------------------------- keys


def test_every_ingest_endpoint_needs_a_key(
    client: TestClient,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    for call in scene.calls:
        r = call.send(client, {})
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer"), call.path
    assert_untouched(settings, before, w3, deployment)


MALFORMED = [
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer not-a-key",
    "Bearer lpk_only-two",
    "Bearer xyz_abc_def",
    "lpk_abc_def",
]


def test_malformed_keys_are_refused(
    client: TestClient,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    for authorization in MALFORMED:
        for call in scene.calls:
            r = call.send(client, {"Authorization": authorization})
            assert_problem(r, 401, "unauthenticated")
            assert "www-authenticate" in r.headers, (authorization, call.path)
    assert_untouched(settings, before, w3, deployment)


def test_a_wrong_secret_is_refused(
    client: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    prefix, key_id, _ = keys.ingest["Authorization"].split("_", 2)
    forged = {"Authorization": f"{prefix}_{key_id}_{'x' * 43}"}
    before = row_counts(settings)
    for call in scene.calls:
        assert_problem(call.send(client, forged), 401, "unauthenticated")
    assert_untouched(settings, before, w3, deployment)


@pytest.fixture
def revoked_client(settings: Settings, keys: Keys, scene: Scene) -> Iterator[TestClient]:
    """A fresh app (empty key cache) after the ``ingest`` key was revoked in the database."""
    key_id = keys.ingest["Authorization"].split("_", 2)[1]
    engine = make_engine(settings.database_url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET revoked_at = :now WHERE key_id = :key_id"),
            {"now": time.time(), "key_id": key_id},
        )
    engine.dispose()
    with TestClient(create_app(settings)) as fresh:
        yield fresh


def test_a_revoked_key_is_refused(
    revoked_client: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    for call in scene.calls:
        r = call.send(revoked_client, keys.ingest)
        assert_problem(r, 401, "unauthenticated")
        assert "revoked" in r.json()["detail"]
    assert_untouched(settings, before, w3, deployment)
    # Other keys keep working.
    assert revoked_client.get("/v1/rooms", headers=keys.ingest2).status_code == 200


def test_other_roles_are_forbidden(
    client: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    for role in ("admin", "brand", "certifier", "auditor"):
        for call in scene.calls:
            r = call.send(client, getattr(keys, role))
            problem = assert_problem(r, 403, "forbidden")
            assert "ingest" in problem["detail"], (role, call.path)
    assert_untouched(settings, before, w3, deployment)


# ----------------------------------------------------------------------------- bodies


def test_unknown_fields_are_named(
    client: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    for call in scene.calls:
        if call.body is None:
            continue
        r = call.send(client, keys.ingest, body=call.with_unknown_field())
        problem = assert_problem(r, 422, "validation-failed")
        [error] = problem["errors"]
        assert error["loc"] == ["body", *call.nest, "surprise"], call.path
        assert error["type"] == "extra_forbidden"
    assert_untouched(settings, before, w3, deployment)


def test_invalid_json_is_a_problem(
    client: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    # The last two are not UTF-8 (found by the fuzzer: they were 400 on some routes).
    invalid = (b"{", b"not json", b"", b"[]", b'{"a": 1,}', b"\xff\xfe", b"\x80", b'{"a": "\xff"}')
    for content in invalid:
        for call in scene.calls:
            if call.body is None:
                continue
            r = call.send(client, keys.ingest, content=content)
            assert r.status_code == 422, (content, call.path, r.text)
            assert_problem(r, 422, "validation-failed")
    assert_untouched(settings, before, w3, deployment)


def test_a_declared_body_over_the_limit_is_refused_unread(
    client: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    w3: Web3,
    deployment: Deployment,
) -> None:
    before = row_counts(settings)
    declared = str(settings.max_body_bytes + 1)
    for call in scene.calls:
        if call.body is None:
            continue
        r = call.send(client, {**keys.ingest, "Content-Length": declared}, content=b"{}")
        problem = assert_problem(r, 413, "payload-too-large")
        assert str(settings.max_body_bytes) in problem["detail"]
    assert_untouched(settings, before, w3, deployment)


def test_a_streamed_body_over_the_limit_is_cut_off(
    settings: Settings,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2_048})
    with TestClient(create_app(small)) as client:
        calls = ingest_calls(world, "lp1" + "a" * 52)
        open_room_and_session(client, keys, world)
        before = row_counts(settings)
        for call in calls:
            if call.body is None:
                continue

            def chunks() -> Iterator[bytes]:
                yield b'{"padding": "'
                for _ in range(10):
                    yield b"x" * 512
                yield b'"}'

            headers = {**keys.ingest, "Idempotency-Key": "big", "content-type": "application/json"}
            r = client.request(call.method, call.path, content=chunks(), headers=headers)
            assert_problem(r, 413, "payload-too-large")
        assert_untouched(settings, before, w3, deployment)


def test_errors_outside_the_routes_are_problems_too(client: TestClient, keys: Keys) -> None:
    assert_problem(client.get("/v1/no-such-thing"), 404, "not-found")
    assert_problem(client.delete("/v1/rooms", headers=keys.ingest), 405, "method-not-allowed")
    assert_problem(client.get("/v1/receipts/nope"), 404, "receipt-not-found")
