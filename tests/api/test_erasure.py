"""Erasure: a buyer's id and salts leave the database (receipts and stored retry responses);
the receipts stay proven, commit and audit as before (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner
from web3 import Web3

from api.committer import Committer
from api.config import Settings
from api.db import make_engine
from api.erasure import Erasure, erase_buyer
from api.ingest import ERASED_REQUEST
from api.models import IdempotencyRecord, Receipt
from chain.deploy import Deployment
from chain.receipts import ReceiptLeaf
from scripts.cli import app
from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order


def _rows(settings: Settings) -> tuple[list[Receipt], list[IdempotencyRecord]]:
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        receipts = list(session.exec(select(Receipt)).all())
        records = list(session.exec(select(IdempotencyRecord)).all())
    engine.dispose()
    return receipts, records


def _place_orders(client: TestClient, keys: Keys, world: World) -> dict[str, dict[str, object]]:
    """Two single orders and a bulk of two for buyer-a, one order for buyer-b, and a refund
    of one of buyer-a's orders; answers by receipt id."""
    open_room_and_session(client, keys, world)
    answers: dict[str, dict[str, object]] = {}
    for key, buyer in (("a1", "buyer-a"), ("a2", "buyer-a"), ("b1", "buyer-b")):
        r = client.post(
            "/v1/orders",
            json=order(world, buyer_ref=buyer, order_ref=key),
            headers={**keys.ingest, "Idempotency-Key": key},
        )
        assert r.status_code == 201, r.text
        answers[r.json()["receipt_id"]] = r.json()
    bulk = client.post(
        "/v1/orders/bulk",
        json={"orders": [order(world, buyer_ref="buyer-a", order_ref=f"bulk-{i}") for i in (1, 2)]},
        headers={**keys.ingest, "Idempotency-Key": "bulk"},
    )
    assert bulk.status_code == 201, bulk.text
    for item in bulk.json()["receipts"]:
        answers[item["receipt_id"]] = item
    sale = next(a for a in answers.values() if a["order_ref"] == "a1")
    refund = client.post(
        "/v1/refunds",
        json={"receipt_code": sale["receipt_code"], "quantity": 1},
        headers={**keys.ingest, "Idempotency-Key": "refund"},
    )
    assert refund.status_code == 201, refund.text
    return answers


def test_erasing_a_buyer_removes_their_id_and_salts_and_nothing_else(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    answers = _place_orders(client, keys, world)
    a_ids = {rid for rid, a in answers.items() if str(a["order_ref"]).startswith(("a", "bulk"))}
    assert len(a_ids) == 4
    before, stored_before = _rows(settings)

    engine = make_engine(settings.database_url, pool_size=1)
    done = erase_buyer(engine, "buyer-a")
    assert (done.receipts, done.stored_responses) == (4, 3)  # a1, a2 and the bulk
    assert erase_buyer(engine, "buyer-a") == Erasure(0, 0)
    engine.dispose()

    after, stored_after = _rows(settings)
    by_id = {r.receipt_id: r for r in after}
    for rid in a_ids:
        assert by_id[rid].buyer_ref is None
        assert by_id[rid].salt is None
    b = next(r for r in after if r.order_ref == "b1")
    assert b.buyer_ref == "buyer-b"
    assert b.salt is not None
    # Nothing the chain or a proof needs has changed.
    unchanged = ("buyer_commitment", "leaf_hash", "status", "order_ref", "quantity")
    old = {r.receipt_id: r for r in before}
    for receipt in after:
        for name in unchanged:
            assert getattr(receipt, name) == getattr(old[receipt.receipt_id], name)
    # The stored responses no longer hold buyer-a's salts; buyer-b's and the refund's are kept.
    for record in stored_after:
        text = record.response
        for rid in a_ids:
            salt = old[rid].salt
            assert salt is not None
            assert salt not in text
    old_b = next(r for r in stored_before if r.idempotency_key == "b1")
    new_b = next(r for r in stored_after if r.idempotency_key == "b1")
    assert (new_b.response, new_b.request_sha256) == (old_b.response, old_b.request_sha256)
    # The digests of buyer-a's order bodies (which named the buyer) are gone: guessing buyer
    # ids and hashing candidate bodies can no longer find them.
    erased = {r.idempotency_key: r.request_sha256 for r in stored_after}
    assert {erased[k] for k in ("a1", "a2", "bulk")} == {ERASED_REQUEST}
    digests_before = {
        r.request_sha256 for r in stored_before if r.idempotency_key in ("a1", "a2", "bulk")
    }
    assert not digests_before & {r.request_sha256 for r in stored_after}

    # A retry is answered from the rewritten response: same receipt, no salt.
    retry = client.post(
        "/v1/orders",
        json=order(world, buyer_ref="buyer-a", order_ref="a2"),
        headers={**keys.ingest, "Idempotency-Key": "a2"},
    )
    assert retry.status_code == 201
    first = next(a for a in answers.values() if a["order_ref"] == "a2")
    assert retry.json() == {**first, "salt": None}

    # Erased receipts still commit, and their proofs still verify on chain.
    assert committer.run_once().receipts == 6
    ledger = deployment.ledger(w3)
    for rid in a_ids:
        bundle = client.get(f"/v1/receipts/{answers[rid]['receipt_code']}/proof").json()
        assert "salt" not in str(bundle)
        leaf = ReceiptLeaf.from_json(bundle["leaf"]).leaf_hash()
        proof = [bytes.fromhex(p[2:]) for p in bundle["proof"]]
        assert ledger.verify_receipt(bytes.fromhex(bundle["root"][2:]), leaf, proof)


def test_db_erase_buyer_command(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _place_orders(client, keys, world)
    monkeypatch.setenv("LIVEPROOF_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    done = runner.invoke(app, ["db", "erase-buyer", "buyer-a"])
    assert done.exit_code == 0, done.output
    assert "erased the buyer id and salt of 4 receipt(s); 3 stored response(s)" in done.output
    again = runner.invoke(app, ["db", "erase-buyer", "buyer-a"])
    assert again.exit_code == 0
    assert "no receipts hold that buyer id" in again.output
    receipts, _ = _rows(settings)
    assert sorted(r.buyer_ref for r in receipts if r.buyer_ref) == ["buyer-b"]

    empty = runner.invoke(app, ["db", "erase-buyer", ""])
    assert empty.exit_code == 2
    assert "give the buyer id" in empty.output


def test_db_erase_buyer_on_an_unusable_database_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEPROOF_DATABASE_URL", f"sqlite:///{tmp_path}/missing/none.db")
    done = CliRunner().invoke(app, ["db", "erase-buyer", "buyer-a"])
    assert done.exit_code == 2
    assert "cannot erase in sqlite:///" in done.output
