"""Every ingest endpoint refuses callers without a valid ingest key, and every refusal is an
RFC 9457 problem that wrote nothing: no key, malformed and revoked keys, other roles,
unknown fields, invalid JSON and bodies over the size limit. Object-level: a key of the right
role never reaches another key's room, session, sale or idempotent answer, nor another brand's
or certifier's products, claims and attestations. (Every route against every role is in
test_route_matrix.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session
from web3 import Web3

from api.app import create_app
from api.auth import create_key
from api.config import Settings
from api.db import make_engine
from api.models import Role
from chain import eip712
from chain.actions import label_hash
from chain.deploy import Deployment
from tests.api.conftest import Keys, World
from tests.api.test_ingest import RECORDING, assert_problem, row_counts
from tests.api.test_orders import open_room_and_session, order
from tests.api.test_registry import (
    attestation_body,
    claim_body,
    product_body,
    register_brand,
    register_certifier,
    revocation_body,
)
from tests.api.test_route_matrix import Written, assert_refused
from tests.conftest import Accounts


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


# ----------------------------------------------------------------------------- object level


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_another_ingest_key_reaches_none_of_a_rooms_objects(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
) -> None:
    """ingest2 against ingest's room, session, sale and refund, even reusing ingest's
    Idempotency-Keys with ingest's very bodies: each is 404 as if it did not exist, no stored
    answer of ingest's is replayed (it holds the buyer's salt), nothing is written."""
    open_room_and_session(client, keys, world)
    sale_body = order(world, buyer_ref="buyer-canary-1", order_ref="SO-canary-1")
    sale = client.post(
        "/v1/orders", json=sale_body, headers={**keys.ingest, "Idempotency-Key": "s"}
    )
    assert sale.status_code == 201, sale.text
    refund_body = {"receipt_code": sale.json()["receipt_code"], "quantity": 1}
    refund = client.post(
        "/v1/refunds", json=refund_body, headers={**keys.ingest, "Idempotency-Key": "r"}
    )
    assert refund.status_code == 201, refund.text
    secrets = [
        _token(keys.ingest),
        sale.json()["receipt_code"],
        sale.json()["salt"],
        refund.json()["receipt_code"],
        "buyer-canary-1",
        "Tea room",  # the room's name: ingest2's errors do not describe the room
    ]
    theirs = keys.ingest2
    before = Written.take(settings, w3, accounts)

    r = client.post("/v1/orders", json=sale_body, headers={**theirs, "Idempotency-Key": "s"})
    assert_refused(r, 404, "room-not-found", secrets, "order, ingest's Idempotency-Key")
    bulk = {"orders": [sale_body]}
    r = client.post("/v1/orders/bulk", json=bulk, headers={**theirs, "Idempotency-Key": "b"})
    assert r.status_code == 404, r.text
    assert r.json()["type"] == "urn:liveproof:problem:room-not-found"
    assert r.json()["order_index"] == 0
    assert not [s for s in secrets if s in r.text]
    r = client.post("/v1/refunds", json=refund_body, headers={**theirs, "Idempotency-Key": "r"})
    # The sale's code was the caller's own input: only it may be echoed.
    echoed = [s for s in secrets if s != refund_body["receipt_code"]]
    assert_refused(r, 404, "receipt-not-found", echoed, "refund, ingest's Idempotency-Key")
    r = client.post(
        "/v1/sessions",
        json={"session_id": "live-2", "room_id": "room-1", "anchor": world.anchor},
        headers=theirs,
    )
    assert_refused(r, 404, "room-not-found", secrets, "open a session in ingest's room")
    r = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": RECORDING, "displayed_sales": 0},
        headers=theirs,
    )
    assert_refused(r, 404, "session-not-found", secrets, "close ingest's session")
    assert client.get("/v1/rooms", headers=theirs).json() == []
    assert Written.take(settings, w3, accounts) == before

    # ingest's own retries still get ingest's answers.
    again = client.post(
        "/v1/orders", json=sale_body, headers={**keys.ingest, "Idempotency-Key": "s"}
    )
    assert again.content == sale.content


def test_another_brand_key_reaches_none_of_a_brands_products_or_claims(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """brand2 (another registered brand) on the brand's product and claim: in the brand's name
    403, in its own name 404 as if they did not exist; nothing written, no gas spent."""
    brand, other = accounts.brand, accounts.stranger
    register_brand(client, keys, other.address, "Other Co.")
    claim = client.post(
        "/v1/claims", json=claim_body(w3, deployment, brand, world.product_id), headers=keys.brand
    )
    assert claim.status_code == 201, claim.text
    claim_id = claim.json()["claim_id"]
    secrets = [_token(keys.brand), _token(keys.brand2)]
    before = Written.take(settings, w3, accounts)
    nonce = deployment.provenance(w3).nonce(brand.address)
    theirs = keys.brand2

    product = product_body(w3, deployment, brand, gtin="04006381333931", nonce=nonce)
    r = client.post("/v1/products", json=product, headers=theirs)
    assert_refused(r, 403, "forbidden", secrets, "a product in the brand's name")
    in_its_name = claim_body(w3, deployment, brand, world.product_id, claim_type="grade")
    r = client.post("/v1/claims", json=in_its_name, headers=theirs)
    assert_refused(r, 403, "forbidden", secrets, "a claim in the brand's name")
    own = claim_body(w3, deployment, other, world.product_id, claim_type="grade")
    r = client.post("/v1/claims", json=own, headers=theirs)
    assert_refused(r, 404, "product-not-found", secrets, "a claim on the brand's product")
    url = f"/v1/claims/{claim_id}/revocation"
    brands = revocation_body(
        w3, deployment, brand, eip712.revoke_claim, "ProvenanceRegistry", claim_id, nonce=nonce
    )
    r = client.post(url, json=brands, headers=theirs)
    assert_refused(r, 403, "forbidden", secrets, "revoke with the brand's signature")
    others = revocation_body(
        w3, deployment, other, eip712.revoke_claim, "ProvenanceRegistry", claim_id
    )
    r = client.post(url, json=others, headers=theirs)
    assert_refused(r, 404, "claim-not-found", secrets, "revoke the brand's claim")
    assert Written.take(settings, w3, accounts) == before
    assert not deployment.provenance(w3).claim(bytes.fromhex(claim_id[2:])).revoked


def test_another_certifier_key_reaches_none_of_a_certifiers_attestations(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """A second registered certifier's key on the first one's attestation: in the first one's
    name 403, in its own name 404 as if it did not exist; nothing written, no gas spent."""
    lab, other = accounts.certifier, accounts.stranger
    register_certifier(client, keys, lab.address)
    register_certifier(client, keys, other.address)
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        _, token = create_key(session, role=Role.CERTIFIER, subject=other.address, label="lab2")
    engine.dispose()
    theirs = {"Authorization": f"Bearer {token}"}
    claim = client.post(
        "/v1/claims",
        json=claim_body(w3, deployment, accounts.brand, world.product_id),
        headers=keys.brand,
    ).json()["claim_id"]
    provenance = deployment.provenance(w3)
    body = attestation_body(w3, deployment, lab.address, claim, lab, report="r1")
    attested = client.post("/v1/attestations", json=body, headers=keys.certifier)
    assert attested.status_code == 201, attested.text
    attestation_id = attested.json()["attestation_id"]
    secrets = [token, _token(keys.certifier)]
    before = Written.take(settings, w3, accounts)
    nonce = provenance.nonce(lab.address)

    again = attestation_body(w3, deployment, lab.address, claim, lab, nonce=nonce, report="r2")
    r = client.post("/v1/attestations", json=again, headers=theirs)
    assert_refused(r, 403, "forbidden", secrets, "attest in the certifier's name")
    url = f"/v1/attestations/{attestation_id}/revocation"
    labs = revocation_body(
        w3,
        deployment,
        lab,
        eip712.revoke_attestation,
        "ProvenanceRegistry",
        attestation_id,
        nonce=nonce,
    )
    r = client.post(url, json=labs, headers=theirs)
    assert_refused(r, 403, "forbidden", secrets, "revoke with the certifier's signature")
    own = revocation_body(
        w3, deployment, other, eip712.revoke_attestation, "ProvenanceRegistry", attestation_id
    )
    r = client.post(url, json=own, headers=theirs)
    assert_refused(r, 404, "attestation-not-found", secrets, "revoke the certifier's attestation")
    assert Written.take(settings, w3, accounts) == before
    assert not provenance.attestation(bytes.fromhex(attestation_id[2:])).revoked
