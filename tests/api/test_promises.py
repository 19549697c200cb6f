"""The honest service never writes a receipt the audit would flag: an order keeps every promise
its session's host made for the product in the room, names only that host's endorsements for
that room, and a refund is never dated before its sale. Each refusal writes nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from api.config import Settings
from chain.deploy import Deployment
from tests.api.conftest import Keys, World
from tests.api.test_ingest import assert_problem, leaf_of_code, post_order, post_refund, row_counts
from tests.api.test_orders import open_room_and_session, order
from tests.api.test_pages import endorse
from tests.conftest import Accounts


def _endorse(
    client: TestClient,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    world: World,
    *,
    room: str = "room-1",
    price: int = 12_800,
) -> str:
    recorded = endorse(client, w3, deployment, accounts, world, room_id=room, unit_price=price)
    endorsement_id: str = recorded["endorsement_id"]
    return endorsement_id


def _endorsement_of(client: TestClient, response: Any) -> str:
    assert response.status_code == 201, response.text
    return "0x" + leaf_of_code(client, response.json()["receipt_code"]).endorsement_id.hex()


def test_an_order_that_names_no_endorsement_runs_under_the_cheapest_promise_in_force(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    _endorse(client, w3, deployment, accounts, world, price=12_800)
    cheaper = _endorse(client, w3, deployment, accounts, world, price=11_800)
    _endorse(client, w3, deployment, accounts, world, room="room-2", price=9_000)  # elsewhere
    r = post_order(client, keys, order(world, unit_price=11_800), "a")
    assert _endorsement_of(client, r) == cheaper


def test_a_price_above_a_promise_in_force_is_refused_named_or_not(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    settings: Settings,
) -> None:
    open_room_and_session(client, keys, world)
    dear = _endorse(client, w3, deployment, accounts, world, price=12_800)
    _endorse(client, w3, deployment, accounts, world, price=11_800)
    before = row_counts(settings)
    for key, body in (
        ("omitted", order(world, unit_price=12_900)),
        ("named-dear", order(world, unit_price=12_800, endorsement_id=dear)),
        ("other-currency", order(world, unit_price=100, currency="USD")),
    ):
        problem = assert_problem(post_order(client, keys, body, key), 422, "price-above-promise")
        assert "promises at most" in problem["detail"]
    assert row_counts(settings) == before


def test_an_endorsement_of_another_room_or_host_is_refused(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    settings: Settings,
) -> None:
    open_room_and_session(client, keys, world)
    elsewhere = _endorse(client, w3, deployment, accounts, world, room="room-2")
    before = row_counts(settings)
    r = post_order(client, keys, order(world, endorsement_id=elsewhere), "room")
    assert "another room" in assert_problem(r, 422, "endorsement-not-this-session")["detail"]
    assert row_counts(settings) == before
    # The same host's promise for room-2 does not bind room-1's sales.
    r = post_order(client, keys, order(world, unit_price=20_000), "free")
    assert _endorsement_of(client, r) == "0x" + "00" * 32


def test_a_refund_dated_before_its_sale_is_refused(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    open_room_and_session(client, keys, world)
    sale = post_order(client, keys, order(world), "s")
    assert sale.status_code == 201, sale.text
    code = sale.json()["receipt_code"]
    ordered_at = leaf_of_code(client, code).ordered_at
    before = row_counts(settings)
    r = post_refund(client, keys, code, 1, "r", refunded_at=ordered_at - 1)
    assert_problem(r, 422, "refund-before-sale")
    assert row_counts(settings) == before
    assert post_refund(client, keys, code, 1, "r2", refunded_at=ordered_at).status_code == 201
