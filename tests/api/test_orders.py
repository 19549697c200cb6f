"""Orders become receipts, get committed in batches, and their proofs verify on-chain."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from api.committer import Committer
from chain.deploy import Deployment
from chain.receipts import ReceiptLeaf
from tests.api.conftest import Keys, World


def open_room_and_session(
    client: TestClient, keys: Keys, world: World, room: str = "room-1", session: str = "live-1"
) -> None:
    r = client.post("/v1/rooms", json={"room_id": room, "name": "Tea room"}, headers=keys.ingest)
    assert r.status_code == 201, r.text
    r = client.post(
        "/v1/sessions",
        json={"session_id": session, "room_id": room, "anchor": world.anchor},
        headers=keys.ingest,
    )
    assert r.status_code == 201, r.text


def order(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "room_id": "room-1",
        "session_id": "live-1",
        "gtin": world.gtin,
        "quantity": 2,
        "unit_price": 12_800,
        "currency": "CNY",
        "buyer_ref": "buyer-1",
        **extra,
    }


def test_order_is_committed_and_its_proof_verifies_on_chain(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    r = client.post(
        "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": "k1"}
    )
    assert r.status_code == 201, r.text
    accepted = r.json()
    assert accepted["status"] == "pending"
    code = accepted["receipt_code"]
    assert client.get(f"/v1/receipts/{code}").json()["status"] == "pending"
    assert client.get(f"/v1/receipts/{code}/proof").status_code == 409

    result = committer.run_once()
    assert result.receipts == 1

    receipt = client.get(f"/v1/receipts/{code}").json()
    assert receipt["status"] == "committed"
    bundle = client.get(f"/v1/receipts/{code}/proof").json()
    assert bundle["format"] == "liveproof-receipt-proof/1"
    assert bundle["ledger"] == deployment.address("SaleLedger")
    leaf = ReceiptLeaf.from_json(bundle["leaf"]).leaf_hash()
    assert "0x" + leaf.hex() == accepted["leaf_hash"]
    ledger = deployment.ledger(w3)
    root = bytes.fromhex(bundle["root"][2:])
    assert ledger.verify_receipt(root, leaf, [bytes.fromhex(p[2:]) for p in bundle["proof"]])


def test_idempotent_retry_gets_the_same_response_and_one_order(
    client: TestClient, keys: Keys, world: World
) -> None:
    open_room_and_session(client, keys, world)
    headers = {**keys.ingest, "Idempotency-Key": "same"}
    first = client.post("/v1/orders", json=order(world), headers=headers)
    again = client.post("/v1/orders", json=order(world), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    other = client.post("/v1/orders", json=order(world, quantity=3), headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:liveproof:problem:idempotency-key-reused"
    metrics = client.get("/metrics").text
    assert "liveproof_orders_accepted_total 1.0" in metrics


def test_the_apis_proof_bundle_verifies_with_the_chain_alone(
    client: TestClient, keys: Keys, world: World, committer: Committer, w3: Web3
) -> None:
    """What the API hands a shopper passes the API-free check (chain.proof_bundle)."""
    from chain.proof_bundle import ProofBundle, verify_bundle

    open_room_and_session(client, keys, world)
    codes = [
        client.post(
            "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": f"v{i}"}
        ).json()["receipt_code"]
        for i in range(5)
    ]
    committer.run_once()
    for code in codes:
        bundle = ProofBundle.parse(client.get(f"/v1/receipts/{code}/proof").json())
        checks = [c.item for c in verify_bundle(w3, bundle)]
        assert checks[-1] == f"receipt 0x{bundle.leaf.receipt_id.hex()}"
