"""The ingest side of the API on both database backends and the real anvil: rooms, live
sessions, single and bulk orders, refunds, idempotency and object-level access."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_hash.auto import keccak
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session
from web3 import Web3

from api.app import create_app
from api.committer import Committer
from api.config import Settings
from api.db import make_engine
from api.models import Endorsement, Product
from chain.actions import EndorsementTerms, ProductInput, label_hash, product_id_of
from chain.clients.base import relayer_for
from chain.deploy import Deployment
from chain.events import EventDecoder
from chain.receipts import ReceiptKind, ReceiptLeaf, buyer_commitment
from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order

PROBLEM_JSON = "application/problem+json"
TABLES = ("rooms", "live_sessions", "receipts", "outbox", "idempotency_keys", "batches")
RECORDING = "0x" + label_hash("recording of live-1").hex()
#: A second real GS1 GTIN-13 (valid check digit), for a product the endorsement is not for.
OTHER_GTIN = 4_006_381_333_931


# ----------------------------------------------------------------------------- helpers


def row_counts(settings: Settings) -> dict[str, int]:
    """Rows per table, read straight from the test database."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            # Table names come from TABLES above, never from input.
            queries = {t: text(f"SELECT COUNT(*) FROM {t}") for t in TABLES}  # noqa: S608
            return {t: int(conn.execute(q).scalar_one()) for t, q in queries.items()}
    finally:
        engine.dispose()


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> Any:
    """Check an RFC 9457 problem response and return its JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["type"].startswith("urn:liveproof:problem:")
    if slug is not None:
        assert body["type"] == f"urn:liveproof:problem:{slug}", body
    return body


def post_order(
    client: TestClient, keys: Keys, body: dict[str, Any], key: str, who: str = "ingest"
) -> httpx.Response:
    """POST /v1/orders with ``key`` as the Idempotency-Key."""
    headers = {**getattr(keys, who), "Idempotency-Key": key}
    response: httpx.Response = client.post("/v1/orders", json=body, headers=headers)
    return response


def post_refund(
    client: TestClient, keys: Keys, code: str, quantity: int, key: str, **extra: Any
) -> httpx.Response:
    """POST /v1/refunds of ``quantity`` units of the sale ``code``."""
    body = {"receipt_code": code, "quantity": quantity, **extra}
    headers = {**keys.ingest, "Idempotency-Key": key}
    response: httpx.Response = client.post("/v1/refunds", json=body, headers=headers)
    return response


def in_parallel(count: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """Run ``call(i)`` for ``i < count`` in as many threads, released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> httpx.Response:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def leaf_of_code(client: TestClient, code: str) -> ReceiptLeaf:
    """The leaf the public receipt page shows for ``code``."""
    r = client.get(f"/v1/receipts/{code}")
    assert r.status_code == 200, r.text
    return ReceiptLeaf.from_json(r.json()["leaf"])


def h(value: bytes) -> str:
    """0x-hex."""
    return "0x" + value.hex()


# ----------------------------------------------------------------------------- rooms


def test_rooms_are_created_by_ingest_keys_and_listed_per_owner(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    r = client.post("/v1/rooms", json={"room_id": "room-1", "name": "Tea"}, headers=keys.ingest)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["room_id"] == "room-1"
    assert created["name"] == "Tea"
    assert created["room_hash"] == h(label_hash("room-1"))
    r = client.post("/v1/rooms", json={"room_id": "room-2"}, headers=keys.ingest2)
    assert r.status_code == 201, r.text

    mine = client.get("/v1/rooms", headers=keys.ingest).json()
    assert [room["room_id"] for room in mine] == ["room-1"]
    theirs = client.get("/v1/rooms", headers=keys.ingest2).json()
    assert [room["room_id"] for room in theirs] == ["room-2"]

    taken = client.post("/v1/rooms", json={"room_id": "room-1"}, headers=keys.ingest2)
    assert_problem(taken, 409, "room-exists")
    assert [room["room_id"] for room in client.get("/v1/rooms", headers=keys.ingest2).json()] == [
        "room-2"
    ]

    public = client.get("/v1/rooms/room-1")
    assert public.status_code == 200
    assert public.json() == created
    assert_problem(client.get("/v1/rooms/no-such-room"), 404, "room-not-found")
    assert row_counts(settings)["rooms"] == 2


# ----------------------------------------------------------------------------- sessions


def test_session_opens_and_closes_on_chain(
    client: TestClient, keys: Keys, world: World, w3: Web3, deployment: Deployment
) -> None:
    open_room_and_session(client, keys, world)
    sid = label_hash("live-1")
    opened = client.get("/v1/sessions/live-1").json()
    assert opened["room_id"] == "room-1"
    assert opened["anchor"] == world.anchor
    assert opened["session_hash"] == h(sid)
    assert opened["closed_at"] is None
    on_chain = deployment.anchors(w3).session(sid)
    assert on_chain.anchor == world.anchor
    assert on_chain.opened_at == opened["opened_at"] > 0
    assert on_chain.closed_at == 0

    r = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": RECORDING, "displayed_sales": 1_234},
        headers=keys.ingest,
    )
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["recording_hash"] == RECORDING
    assert closed["displayed_sales"] == 1_234
    on_chain = deployment.anchors(w3).session(sid)
    assert on_chain.closed_at == closed["closed_at"] > 0
    decoder = EventDecoder({"AnchorRegistry": deployment.address("AnchorRegistry")})
    events = decoder.decode_receipt(w3.eth.get_transaction_receipt(closed["close_tx"]))
    [event] = [e for e in events if e.name == "SessionClosed"]
    args = {k: h(v) if isinstance(v, bytes) else v for k, v in event.args.items()}
    assert args["sessionId"] == h(sid)
    assert args["recordingHash"] == RECORDING
    assert int(args["displayedSales"]) == 1_234

    again = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": RECORDING, "displayed_sales": 9},
        headers=keys.ingest,
    )
    assert_problem(again, 409, "session-closed")
    assert client.get("/v1/sessions/live-1").json() == closed
    listed = client.get("/v1/sessions", params={"room_id": "room-1"}).json()
    assert [s["session_id"] for s in listed] == ["live-1"]


def test_a_displayed_sales_count_past_32_bits_is_stored(
    client: TestClient, keys: Keys, world: World, w3: Web3, deployment: Deployment
) -> None:
    """Found by the fuzzer: the count is a uint64 on chain, and the database column must hold
    it too (PostgreSQL's INTEGER did not); one no column holds is refused before any gas."""
    open_room_and_session(client, keys, world)
    sid = label_hash("live-1")
    url = "/v1/sessions/live-1/close"
    too_big = {"recording_hash": RECORDING, "displayed_sales": 2**63}
    assert_problem(client.post(url, json=too_big, headers=keys.ingest), 422, "validation-failed")
    assert deployment.anchors(w3).session(sid).closed_at == 0
    largest = {"recording_hash": RECORDING, "displayed_sales": 2**63 - 1}
    r = client.post(url, json=largest, headers=keys.ingest)
    assert r.status_code == 200, r.text
    assert r.json()["displayed_sales"] == 2**63 - 1
    assert client.get("/v1/sessions/live-1").json() == r.json()
    assert client.get("/v1/sessions/live-1").json()["opened_at"] > 2**20


def test_session_needs_a_registered_anchor_and_a_free_id(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    accounts: Any,
    settings: Settings,
) -> None:
    open_room_and_session(client, keys, world)
    before = row_counts(settings)
    taken = client.post(
        "/v1/sessions",
        json={"session_id": "live-1", "room_id": "room-1", "anchor": world.anchor},
        headers=keys.ingest,
    )
    assert_problem(taken, 409, "session-exists")
    stranger = client.post(
        "/v1/sessions",
        json={"session_id": "live-2", "room_id": "room-1", "anchor": accounts.anchor2.address},
        headers=keys.ingest,
    )
    assert_problem(stranger, 422, "unknown-anchor")
    assert not deployment.anchors(w3).session(label_hash("live-2")).exists
    assert row_counts(settings) == before


def test_another_ingest_key_cannot_open_or_close_sessions_in_the_room(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    settings: Settings,
) -> None:
    open_room_and_session(client, keys, world)
    before = row_counts(settings)
    opened = client.post(
        "/v1/sessions",
        json={"session_id": "live-x", "room_id": "room-1", "anchor": world.anchor},
        headers=keys.ingest2,
    )
    assert_problem(opened, 404, "room-not-found")
    assert not deployment.anchors(w3).session(label_hash("live-x")).exists
    assert_problem(client.get("/v1/sessions/live-x"), 404, "session-not-found")

    closed = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": RECORDING, "displayed_sales": 1},
        headers=keys.ingest2,
    )
    assert_problem(closed, 404, "session-not-found")
    assert deployment.anchors(w3).session(label_hash("live-1")).closed_at == 0
    assert client.get("/v1/sessions/live-1").json()["closed_at"] is None
    unknown = client.post(
        "/v1/sessions/no-such/close",
        json={"recording_hash": RECORDING, "displayed_sales": 1},
        headers=keys.ingest,
    )
    assert_problem(unknown, 404, "session-not-found")
    assert row_counts(settings) == before


def test_orders_are_refused_after_the_session_closed(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    first = post_order(client, keys, order(world), "before-close")
    assert first.status_code == 201, first.text
    r = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": RECORDING, "displayed_sales": 1},
        headers=keys.ingest,
    )
    assert r.status_code == 200, r.text
    assert_problem(post_order(client, keys, order(world), "after-close"), 409, "session-closed")
    bulk = client.post(
        "/v1/orders/bulk",
        json={"orders": [order(world)]},
        headers={**keys.ingest, "Idempotency-Key": "bulk-after-close"},
    )
    assert assert_problem(bulk, 409, "session-closed")["order_index"] == 0
    # A retry of an order accepted before the close still gets its first answer.
    retry = post_order(client, keys, order(world), "before-close")
    assert retry.status_code == 201
    assert retry.content == first.content
    counts = row_counts(settings)
    assert counts["receipts"] == counts["outbox"] == counts["idempotency_keys"] == 1


# ----------------------------------------------------------------------------- orders


def test_order_and_refund_times_past_what_the_database_holds_are_refused(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    """Found by the fuzzer: ``ordered_at`` and ``refunded_at`` are the leaf's uint64, but the
    database keeps them signed 64-bit; 2**63 and up was a 500 after validation."""
    open_room_and_session(client, keys, world)
    before = row_counts(settings)
    late = post_order(client, keys, order(world, ordered_at=2**63), "late")
    assert_problem(late, 422, "validation-failed")
    assert row_counts(settings) == before
    sale = post_order(client, keys, order(world, ordered_at=2**63 - 1), "latest")
    assert sale.status_code == 201, sale.text
    code = sale.json()["receipt_code"]
    assert leaf_of_code(client, code).ordered_at == 2**63 - 1
    before = row_counts(settings)
    late = post_refund(client, keys, code, 1, "refund-late", refunded_at=2**63)
    assert_problem(late, 422, "validation-failed")
    assert row_counts(settings) == before
    refund = post_refund(client, keys, code, 1, "refund-latest", refunded_at=2**63 - 1)
    assert refund.status_code == 201, refund.text
    assert leaf_of_code(client, refund.json()["receipt_code"]).ordered_at == 2**63 - 1


def test_order_receipt_leaf_matches_the_request(
    client: TestClient, keys: Keys, world: World
) -> None:
    open_room_and_session(client, keys, world)
    body = order(world, ordered_at=1_760_000_000, order_ref="SO-1", buyer_ref="buyer-77")
    r = post_order(client, keys, body, "leaf-1")
    assert r.status_code == 201, r.text
    accepted = r.json()
    assert accepted["status"] == "pending"
    assert accepted["kind"] == "sale"
    assert accepted["order_ref"] == "SO-1"
    assert accepted["receipt_url"] == f"http://testserver/v1/receipts/{accepted['receipt_code']}"
    assert accepted["page_url"] == f"http://testserver/r/{accepted['receipt_code']}"

    leaf = leaf_of_code(client, accepted["receipt_code"])
    assert h(leaf.receipt_id) == accepted["receipt_id"]
    assert leaf.kind == ReceiptKind.SALE
    assert leaf.refers_to == bytes(32)
    assert leaf.room_id == label_hash("room-1")
    assert leaf.session_id == label_hash("live-1")
    assert h(leaf.product_id) == world.product_id == h(product_id_of(int(world.gtin)))
    assert leaf.endorsement_id == bytes(32)
    assert leaf.quantity == 2
    assert leaf.unit_price == 12_800
    assert leaf.currency == b"CNY"
    assert leaf.ordered_at == 1_760_000_000
    assert h(leaf.leaf_hash()) == accepted["leaf_hash"]

    # The salt is the buyer's alone: keccak256(salt || keccak256(buyer_ref)).
    salt = bytes.fromhex(accepted["salt"][2:])
    assert len(salt) == 32
    expected = keccak(salt + keccak(b"buyer-77"))
    assert expected == buyer_commitment(salt, label_hash("buyer-77")) == leaf.buyer_commitment
    assert accepted["buyer_commitment"] == h(expected)

    public = client.get(f"/v1/receipts/{accepted['receipt_code']}")
    assert "salt" not in public.json()
    assert "buyer_ref" not in public.json()
    assert accepted["salt"][2:] not in public.text
    assert "buyer-77" not in public.text


def test_order_by_product_id_and_exactly_one_product_reference(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    by_id = {**order(world), "product_id": world.product_id}
    del by_id["gtin"]
    r = post_order(client, keys, by_id, "by-id")
    assert r.status_code == 201, r.text
    assert h(leaf_of_code(client, r.json()["receipt_code"]).product_id) == world.product_id

    before = row_counts(settings)
    both = post_order(client, keys, order(world, product_id=world.product_id), "both")
    assert "exactly one" in str(assert_problem(both, 422, "validation-failed")["errors"])
    neither = {k: v for k, v in order(world).items() if k != "gtin"}
    assert_problem(post_order(client, keys, neither, "neither"), 422, "validation-failed")
    unknown_gtin = post_order(client, keys, order(world, gtin="04006381333931"), "unknown-gtin")
    assert_problem(unknown_gtin, 422, "unknown-product")
    unknown_id = {**by_id, "product_id": "0x" + "ab" * 32}
    assert_problem(post_order(client, keys, unknown_id, "unknown-id"), 422, "unknown-product")
    assert row_counts(settings) == before


def test_order_references_must_be_known_and_the_callers(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    r = client.post("/v1/rooms", json={"room_id": "room-2"}, headers=keys.ingest)
    assert r.status_code == 201
    before = row_counts(settings)
    foreign = post_order(client, keys, order(world), "foreign", who="ingest2")
    assert_problem(foreign, 404, "room-not-found")
    unknown_room = post_order(client, keys, order(world, room_id="room-404"), "unknown-room")
    assert_problem(unknown_room, 404, "room-not-found")
    wrong_room = post_order(client, keys, order(world, room_id="room-2"), "wrong-room")
    assert_problem(wrong_room, 422, "session-not-in-room")
    no_session = post_order(client, keys, order(world, session_id="live-404"), "no-session")
    assert_problem(no_session, 422, "session-not-in-room")
    unknown_endorsement = post_order(
        client, keys, order(world, endorsement_id="0x" + "cd" * 32), "unknown-endorsement"
    )
    assert_problem(unknown_endorsement, 422, "unknown-endorsement")
    assert row_counts(settings) == before


@dataclass(frozen=True)
class Endorsed:
    """An endorsement of the world's product, and a second product it does not cover."""

    endorsement_id: str
    other_product_id: str


@pytest.fixture
def endorsed(
    world: World, w3: Web3, deployment: Deployment, accounts: Any, settings: Settings
) -> Endorsed:
    """The anchor endorses the world's product on chain; a second product is registered."""
    now = int(w3.eth.get_block("latest")["timestamp"])
    terms = EndorsementTerms(
        bytes.fromhex(world.product_id[2:]),
        label_hash("claims"),
        label_hash("room-1"),
        sponsored=True,
        commission_bps=1_500,
        unit_price=12_800,
        currency=b"CNY",
        valid_from=now - 60,
        valid_until=now + 86_400,
    )
    sent = deployment.anchors(w3, relayer_for(w3, accounts.anchor)).endorse(terms)
    other = deployment.provenance(w3, relayer_for(w3, accounts.brand)).register_product(
        ProductInput(OTHER_GTIN, "Oolong 100 g", "https://tea.example/o", label_hash("o"))
    )
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        session.add(
            Product(
                product_id=h(other.value),
                gtin=f"{OTHER_GTIN:014d}",
                brand=accounts.brand.address,
                name="Oolong 100 g",
                uri="https://tea.example/o",
                metadata_hash=h(label_hash("o")),
                tx_hash=other.tx_hash,
                block_number=other.block_number,
            )
        )
        session.commit()
        session.add(
            Endorsement(
                endorsement_id=h(sent.value),
                anchor=world.anchor,
                product_id=world.product_id,
                claims_digest=h(terms.claims_digest),
                room_id="room-1",
                room_hash=h(terms.room_id),
                sponsored=True,
                commission_bps=1_500,
                unit_price=12_800,
                currency="CNY",
                valid_from=terms.valid_from,
                valid_until=terms.valid_until,
                nonce=0,
                tx_hash=sent.tx_hash,
                block_number=sent.block_number,
            )
        )
        session.commit()
    engine.dispose()
    return Endorsed(h(sent.value), h(other.value))


def test_order_under_an_endorsement_must_be_for_its_product(
    client: TestClient, keys: Keys, world: World, endorsed: Endorsed, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    r = post_order(client, keys, order(world, endorsement_id=endorsed.endorsement_id), "ok")
    assert r.status_code == 201, r.text
    assert h(leaf_of_code(client, r.json()["receipt_code"]).endorsement_id) == (
        endorsed.endorsement_id
    )
    before = row_counts(settings)
    other = order(world, endorsement_id=endorsed.endorsement_id, gtin=f"{OTHER_GTIN:014d}")
    assert_problem(post_order(client, keys, other, "other"), 422, "endorsement-product-mismatch")
    assert row_counts(settings) == before


def test_missing_idempotency_key_is_a_problem(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    before = row_counts(settings)
    for path, body in (
        ("/v1/orders", order(world)),
        ("/v1/orders/bulk", {"orders": [order(world)]}),
    ):
        problem = assert_problem(
            client.post(path, json=body, headers=keys.ingest), 422, "validation-failed"
        )
        assert ["header", "Idempotency-Key"] in [e["loc"] for e in problem["errors"]]
    assert row_counts(settings) == before


def test_idempotent_retries_replay_and_a_changed_body_is_refused(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    first = post_order(client, keys, order(world, order_ref="SO-9"), "same")
    assert first.status_code == 201, first.text
    for _ in range(3):
        again = post_order(client, keys, order(world, order_ref="SO-9"), "same")
        assert again.status_code == 201
        assert again.content == first.content
    changed = post_order(client, keys, order(world, order_ref="SO-9", quantity=3), "same")
    assert_problem(changed, 422, "idempotency-key-reused")
    # Keys are per API key: another ingest key may use the same string for its own order.
    r = client.post("/v1/rooms", json={"room_id": "room-b"}, headers=keys.ingest2)
    assert r.status_code == 201
    counts = row_counts(settings)
    assert counts["receipts"] == counts["outbox"] == counts["idempotency_keys"] == 1
    assert "liveproof_orders_accepted_total 1.0" in client.get("/metrics").text


def test_concurrent_duplicates_make_exactly_one_order(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    same = in_parallel(20, lambda _: post_order(client, keys, order(world), "dup"))
    assert {r.status_code for r in same} == {201}
    assert len({r.content for r in same}) == 1
    assert row_counts(settings)["receipts"] == 1

    distinct = in_parallel(20, lambda i: post_order(client, keys, order(world), f"k-{i}"))
    assert {r.status_code for r in distinct} == {201}
    assert len({r.json()["receipt_code"] for r in distinct}) == 20
    counts = row_counts(settings)
    assert counts["receipts"] == counts["outbox"] == counts["idempotency_keys"] == 21


def test_order_ref_is_unique_per_room(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    open_room_and_session(client, keys, world, room="room-2", session="live-2")
    assert post_order(client, keys, order(world, order_ref="SO-1"), "a").status_code == 201
    before = row_counts(settings)
    dup = post_order(client, keys, order(world, order_ref="SO-1"), "b")
    assert_problem(dup, 409, "duplicate-order-ref")
    assert row_counts(settings) == before
    elsewhere = order(world, order_ref="SO-1", room_id="room-2", session_id="live-2")
    assert post_order(client, keys, elsewhere, "c").status_code == 201


# ----------------------------------------------------------------------------- bulk


def test_bulk_of_a_thousand_orders_makes_a_thousand_receipts(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    orders = [order(world, order_ref=f"SO-{i}", quantity=1 + i % 5) for i in range(1_000)]
    headers = {**keys.ingest, "Idempotency-Key": "bulk-1"}
    r = client.post("/v1/orders/bulk", json={"orders": orders}, headers=headers)
    assert r.status_code == 201, r.text
    accepted = r.json()
    assert accepted["count"] == 1_000
    receipts = accepted["receipts"]
    assert [x["order_ref"] for x in receipts] == [f"SO-{i}" for i in range(1_000)]
    assert len({x["receipt_code"] for x in receipts}) == 1_000
    assert leaf_of_code(client, receipts[7]["receipt_code"]).quantity == 1 + 7 % 5
    counts = row_counts(settings)
    assert counts["receipts"] == counts["outbox"] == 1_000
    assert counts["idempotency_keys"] == 1

    again = client.post("/v1/orders/bulk", json={"orders": orders}, headers=headers)
    assert again.status_code == 201
    assert again.content == r.content
    assert row_counts(settings) == counts


BAD_ORDERS: list[tuple[dict[str, Any], str]] = [
    ({"gtin": "04006381333931"}, "unknown-product"),
    ({"session_id": "live-404"}, "session-not-in-room"),
    ({"quantity": 0}, "validation-failed"),
    ({"surprise": 1}, "validation-failed"),
]


def test_one_invalid_order_refuses_the_whole_bulk(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    before = row_counts(settings)
    for n, (bad, slug) in enumerate(BAD_ORDERS):
        orders = [order(world, order_ref=f"SO-{i}") for i in range(50)]
        orders[37] = {**orders[37], **bad}
        r = client.post(
            "/v1/orders/bulk",
            json={"orders": orders},
            headers={**keys.ingest, "Idempotency-Key": f"bulk-bad-{n}"},
        )
        problem = assert_problem(r, 422, slug)
        assert problem["order_index"] == 37, bad
        assert row_counts(settings) == before
    # The key was not spent: the corrected request goes through under it.
    orders = [order(world, order_ref=f"SO-{i}") for i in range(50)]
    fixed = client.post(
        "/v1/orders/bulk",
        json={"orders": orders},
        headers={**keys.ingest, "Idempotency-Key": "bulk-bad-0"},
    )
    assert fixed.status_code == 201, fixed.text


def test_duplicate_order_refs_inside_a_bulk_write_nothing(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    before = row_counts(settings)
    orders = [order(world, order_ref="SO-1"), order(world, order_ref="SO-1")]
    r = client.post(
        "/v1/orders/bulk",
        json={"orders": orders},
        headers={**keys.ingest, "Idempotency-Key": "bulk-dup"},
    )
    assert_problem(r, 409, "duplicate-order-ref")
    assert row_counts(settings) == before


def test_bulk_over_the_limit_is_refused(
    settings: Settings, keys: Keys, world: World, w3: Web3
) -> None:
    small = settings.model_copy(update={"max_bulk_orders": 5})
    with TestClient(create_app(small)) as client:
        open_room_and_session(client, keys, world)
        before = row_counts(settings)
        headers = {**keys.ingest, "Idempotency-Key": "bulk-big"}
        too_many = client.post(
            "/v1/orders/bulk", json={"orders": [order(world)] * 6}, headers=headers
        )
        assert_problem(too_many, 422, "too-many-orders")
        assert row_counts(settings) == before
        ok = client.post("/v1/orders/bulk", json={"orders": [order(world)] * 5}, headers=headers)
        assert ok.status_code == 201, ok.text
        assert ok.json()["count"] == 5
    empty = TestClient(create_app(small))
    with empty:
        r = empty.post("/v1/orders/bulk", json={"orders": []}, headers=headers)
        assert_problem(r, 422, "validation-failed")


# ----------------------------------------------------------------------------- refunds


def _sale(client: TestClient, keys: Keys, world: World, quantity: int) -> dict[str, Any]:
    open_room_and_session(client, keys, world)
    r = post_order(client, keys, order(world, quantity=quantity, order_ref="SO-1"), "sale")
    assert r.status_code == 201, r.text
    sale: dict[str, Any] = r.json()
    return sale


def test_partial_and_full_refunds_and_no_over_refund(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
) -> None:
    sale = _sale(client, keys, world, quantity=3)
    refunded_at = leaf_of_code(client, sale["receipt_code"]).ordered_at + 100
    part = post_refund(client, keys, sale["receipt_code"], 1, "r1", refunded_at=refunded_at)
    assert part.status_code == 201, part.text
    refund = part.json()
    assert refund["kind"] == "refund"
    assert refund["salt"] is None
    leaf = leaf_of_code(client, refund["receipt_code"])
    sale_leaf = leaf_of_code(client, sale["receipt_code"])
    assert leaf.kind == ReceiptKind.REFUND
    assert h(leaf.refers_to) == sale["receipt_id"]
    assert leaf.quantity == 1
    assert leaf.ordered_at == refunded_at
    for name in ("room_id", "session_id", "product_id", "endorsement_id", "unit_price"):
        assert getattr(leaf, name) == getattr(sale_leaf, name)
    assert leaf.currency == sale_leaf.currency
    assert leaf.buyer_commitment == sale_leaf.buyer_commitment

    rest = post_refund(client, keys, sale["receipt_code"], 2, "r2")
    assert rest.status_code == 201, rest.text
    before = row_counts(settings)
    over = post_refund(client, keys, sale["receipt_code"], 1, "r3")
    assert_problem(over, 409, "over-refund")
    assert row_counts(settings) == before

    result = committer.run_once()
    assert result.receipts == 3
    ledger = deployment.ledger(w3)
    for accepted in (sale, refund, rest.json()):
        receipt = client.get(f"/v1/receipts/{accepted['receipt_code']}").json()
        assert receipt["status"] == "committed"
        assert receipt["kind"] == accepted["kind"]
        proof = [bytes.fromhex(p[2:]) for p in receipt["proof"]]
        root = bytes.fromhex(receipt["batch_root"][2:])
        leaf_hash = bytes.fromhex(receipt["leaf_hash"][2:])
        assert ledger.verify_receipt(root, leaf_hash, proof)
    metrics = client.get("/metrics").text
    assert "liveproof_refunds_accepted_total 2.0" in metrics


def test_refunds_only_of_own_sales(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    sale = _sale(client, keys, world, quantity=2)
    refund = post_refund(client, keys, sale["receipt_code"], 1, "r1")
    assert refund.status_code == 201
    before = row_counts(settings)
    of_refund = post_refund(client, keys, refund.json()["receipt_code"], 1, "r2")
    assert_problem(of_refund, 422, "not-a-sale")
    foreign = client.post(
        "/v1/refunds",
        json={"receipt_code": sale["receipt_code"], "quantity": 1},
        headers={**keys.ingest2, "Idempotency-Key": "r3"},
    )
    assert_problem(foreign, 404, "receipt-not-found")
    unknown = post_refund(client, keys, "lp1" + "a" * 52, 1, "r4")
    assert_problem(unknown, 404, "receipt-not-found")
    garbage = post_refund(client, keys, "not-a-code", 1, "r5")
    assert_problem(garbage, 404, "receipt-not-found")
    zero = post_refund(client, keys, sale["receipt_code"], 0, "r6")
    assert_problem(zero, 422, "validation-failed")
    dup_ref = post_refund(client, keys, sale["receipt_code"], 1, "r7", order_ref="SO-1")
    assert_problem(dup_ref, 409, "duplicate-order-ref")
    assert row_counts(settings) == before


def test_refund_retries_replay_and_a_changed_body_is_refused(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    sale = _sale(client, keys, world, quantity=2)
    first = post_refund(client, keys, sale["receipt_code"], 1, "r1")
    assert first.status_code == 201
    again = post_refund(client, keys, sale["receipt_code"], 1, "r1")
    assert again.status_code == 201
    assert again.content == first.content
    changed = post_refund(client, keys, sale["receipt_code"], 2, "r1")
    assert_problem(changed, 422, "idempotency-key-reused")
    assert row_counts(settings)["receipts"] == 2


def test_concurrent_refunds_cannot_over_refund(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    sale = _sale(client, keys, world, quantity=5)
    code = sale["receipt_code"]
    results = in_parallel(12, lambda i: post_refund(client, keys, code, 1, f"r-{i}"))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] * 5 + [409] * 7, [r.text for r in results]
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "over-refund")
    assert row_counts(settings)["receipts"] == 6

    retries = in_parallel(8, lambda _: post_refund(client, keys, code, 1, "r-0"))
    assert len({(r.status_code, r.content) for r in retries}) == 1
    assert row_counts(settings)["receipts"] == 6


def test_concurrent_retries_of_one_refund_make_one_refund(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    sale = _sale(client, keys, world, quantity=5)
    code = sale["receipt_code"]
    results = in_parallel(10, lambda _: post_refund(client, keys, code, 2, "same"))
    assert {r.status_code for r in results} == {201}, [r.text for r in results]
    assert len({r.content for r in results}) == 1
    counts = row_counts(settings)
    assert counts["receipts"] == 2
    assert counts["idempotency_keys"] == 2


def test_a_closed_session_on_chain_is_never_adopted_by_a_new_open(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    """A database that lost its session row (or a fresh one on an old chain) must not reopen
    a session the chain has closed: orders would land in a closed session."""
    open_room_and_session(client, keys, world)
    closed = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": RECORDING, "displayed_sales": 0},
        headers=keys.ingest,
    )
    assert closed.status_code == 200, closed.text
    engine = make_engine(settings.database_url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM live_sessions WHERE session_id = 'live-1'"))
    engine.dispose()
    again = client.post(
        "/v1/sessions",
        json={"session_id": "live-1", "room_id": "room-1", "anchor": world.anchor},
        headers=keys.ingest,
    )
    assert_problem(again, 409, "session-exists")
    assert client.get("/v1/sessions/live-1").status_code == 404
