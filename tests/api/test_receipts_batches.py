"""Receipts and batches once the committer ran: manifests rebuild the committed roots, every
proof verifies on-chain, immediate orders are recorded alone, and bad codes are problems."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from api.committer import Committer
from chain.deploy import Deployment
from chain.events import EventDecoder
from chain.merkle import StandardMerkleTree
from chain.receipts import LEAF_TYPES, ReceiptLeaf
from tests.api.conftest import Keys, World
from tests.api.test_ingest import assert_problem, post_order, post_refund
from tests.api.test_orders import open_room_and_session, order


def _b(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _bulk(client: TestClient, keys: Keys, world: World, count: int, key: str) -> list[Any]:
    orders = [order(world, quantity=1 + i % 3, buyer_ref=f"buyer-{i}") for i in range(count)]
    r = client.post(
        "/v1/orders/bulk", json={"orders": orders}, headers={**keys.ingest, "Idempotency-Key": key}
    )
    assert r.status_code == 201, r.text
    receipts: list[Any] = r.json()["receipts"]
    return receipts


def test_manifests_rebuild_committed_roots_and_every_proof_verifies(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    accepted = _bulk(client, keys, world, 70, "bulk")
    refund = post_refund(client, keys, accepted[0]["receipt_code"], 1, "refund")
    assert refund.status_code == 201, refund.text
    accepted.append(refund.json())
    assert client.get("/v1/batches").json() == []

    result = committer.run_once()
    # batch_size is 64 in the test settings: 71 receipts make two batches.
    assert (result.sealed, result.receipts) == (2, 71)

    batches = client.get("/v1/batches").json()
    assert [b["count"] for b in batches] == [64, 7]
    assert client.get("/v1/batches", params={"limit": 1}).json() == batches[:1]
    after = client.get("/v1/batches", params={"after": batches[0]["sealed_at"]}).json()
    assert after == batches[1:]

    ledger = deployment.ledger(w3)
    seen: set[str] = set()
    for listed in batches:
        assert listed["status"] == "committed"
        assert listed["single"] is False
        assert listed["chain_id"] == w3.eth.chain_id
        assert listed["ledger"] == deployment.address("SaleLedger")
        manifest = client.get(f"/v1/batches/{listed['root']}").json()
        assert {k: manifest[k] for k in listed} == listed
        assert manifest["leaf_types"] == list(LEAF_TYPES)
        leaves = [ReceiptLeaf.from_json(leaf) for leaf in manifest["leaves"]]
        assert len(leaves) == listed["count"]
        tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_TYPES)
        assert tree.root_hex == listed["root"]
        on_chain = ledger.batch(_b(listed["root"]))
        assert on_chain.committed
        assert on_chain.count == listed["count"]
        assert on_chain.block_number == listed["block_number"]
        seen.update("0x" + leaf.receipt_id.hex() for leaf in leaves)
        # Manifests carry no personal data.
        assert "salt" not in str(manifest)
        assert "buyer-" not in str(manifest)
    assert seen == {a["receipt_id"] for a in accepted}

    for a in accepted:
        receipt = client.get(f"/v1/receipts/{a['receipt_code']}").json()
        assert receipt["status"] == "committed"
        assert receipt["leaf_hash"] == a["leaf_hash"]
        assert receipt["tx_hash"] is not None
        leaf = ReceiptLeaf.from_json(receipt["leaf"]).leaf_hash()
        proof = [_b(p) for p in receipt["proof"]]
        assert ledger.verify_receipt(_b(receipt["batch_root"]), leaf, proof)
        bundle = client.get(f"/v1/receipts/{a['receipt_code']}/proof").json()
        assert bundle["root"] == bundle["batchId"] == receipt["batch_root"]
        assert bundle["txHash"] == receipt["tx_hash"]
        assert bundle["chainId"] == w3.eth.chain_id
        assert bundle["leaf"] == receipt["leaf"]
        assert ledger.verify_receipt(_b(bundle["root"]), leaf, [_b(p) for p in bundle["proof"]])
    # A proof does not verify under the other batch's root.
    first = client.get(f"/v1/receipts/{accepted[0]['receipt_code']}").json()
    other = next(b["root"] for b in batches if b["root"] != first["batch_root"])
    leaf = ReceiptLeaf.from_json(first["leaf"]).leaf_hash()
    assert not ledger.verify_receipt(_b(other), leaf, [_b(p) for p in first["proof"]])

    assert committer.run_once().sealed == 0
    assert len(client.get("/v1/batches").json()) == 2


def test_an_immediate_order_is_recorded_alone(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    open_room_and_session(client, keys, world)
    plain = [post_order(client, keys, order(world), f"plain-{i}") for i in range(3)]
    now = post_order(client, keys, order(world, immediate=True), "now")
    assert now.status_code == 201, now.text
    leaf_hash = now.json()["leaf_hash"]

    result = committer.run_once()
    assert (result.sealed, result.receipts) == (2, 4)
    batches = {b["root"]: b for b in client.get("/v1/batches").json()}
    single = batches[leaf_hash]
    assert single["single"] is True
    assert single["count"] == 1
    [rest] = [b for root, b in batches.items() if root != leaf_hash]
    assert rest["single"] is False
    assert rest["count"] == 3

    manifest = client.get(f"/v1/batches/{leaf_hash}").json()
    assert [leaf["receiptId"] for leaf in manifest["leaves"]] == [now.json()["receipt_id"]]
    ledger = deployment.ledger(w3)
    assert ledger.batch(_b(leaf_hash)).count == 1
    assert ledger.verify_receipt(_b(leaf_hash), _b(leaf_hash), [])
    decoder = EventDecoder({"SaleLedger": deployment.address("SaleLedger")})
    events = decoder.decode_receipt(w3.eth.get_transaction_receipt(single["tx_hash"]))
    assert [e.name for e in events] == ["ReceiptRecorded"]
    events = decoder.decode_receipt(w3.eth.get_transaction_receipt(rest["tx_hash"]))
    assert [e.name for e in events] == ["BatchCommitted"]
    receipt = client.get(f"/v1/receipts/{now.json()['receipt_code']}").json()
    assert receipt["status"] == "committed"
    assert receipt["proof"] == []
    for r in plain:
        assert (
            client.get(f"/v1/receipts/{r.json()['receipt_code']}").json()["batch_root"]
            == (rest["root"])
        )


def test_receipt_codes_that_are_not_receipts_are_404_problems(
    client: TestClient, keys: Keys, world: World
) -> None:
    open_room_and_session(client, keys, world)
    r = post_order(client, keys, order(world), "one")
    code = r.json()["receipt_code"]
    assert client.get(f"/v1/receipts/{code.upper()}").json()["receipt_code"] == code
    bad = [
        "nope",
        "lp1",
        code[:-1],
        code + "a",
        "lp2" + code[3:],
        "lp1" + "a" * 52,  # well formed, no such receipt
        "lp1" + "0" * 52,  # not base32
        "lp1" + "\u00e9" * 52,
        "lp1" + "=" * 52,
    ]
    for text in bad:
        assert_problem(client.get(f"/v1/receipts/{text}"), 404, "receipt-not-found")
        assert_problem(client.get(f"/v1/receipts/{text}/proof"), 404, "receipt-not-found")
    assert_problem(client.get(f"/v1/receipts/{code}/proof"), 409, "receipt-pending")
    assert_problem(client.get("/v1/batches/0x" + "ab" * 32), 404, "batch-not-found")
    assert_problem(client.get("/v1/batches/not-a-root"), 404, "batch-not-found")
    assert_problem(client.get("/v1/batches", params={"limit": 0}), 422, "validation-failed")


def test_only_the_canonical_spelling_of_a_code_opens_a_receipt() -> None:
    """The last base32 character carries 4 unused bits; other spellings are not codes."""
    import base64

    import pytest

    from api.problems import ProblemError
    from api.receipt_codes import decode, encode

    receipt_id = bytes(range(32))
    code = encode(receipt_id)
    assert decode(code) == receipt_id
    assert decode(code.upper()) == receipt_id  # case does not matter
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    last = alphabet.index(code[-1])
    twins = [code[:-1] + alphabet[last ^ bit] for bit in (1, 2, 4, 8)]
    for twin in twins:
        assert base64.b32decode(twin[3:].upper() + "====") == receipt_id
        with pytest.raises(ProblemError):
            decode(twin)
