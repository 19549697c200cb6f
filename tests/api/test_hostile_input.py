"""Hostile text: injection strings and odd Unicode are stored and returned literally (SQLite
and PostgreSQL); NUL characters, which PostgreSQL cannot store, are refused with 422 and
nothing written, instead of failing as 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order

HOSTILE = [
    "'; DROP TABLE receipts; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "{{7*7}} ${7*7} %s %n",
    "../../etc/passwd",
    "\u202egnp.exe",  # right-to-left override
    "e\u0301 vs \u00e9",  # combining accent vs precomposed
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U0001f375\U0001f9e7",
    "\ufeffzero\u200bwidth",
    "西湖龙井 \u3000全角",
    "a" * 512,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_stored_and_returned_literally(
    client: TestClient, keys: Keys, text: str
) -> None:
    created = client.post(
        "/v1/rooms", json={"room_id": "room-x", "name": text}, headers=keys.ingest
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == text
    listed = client.get("/v1/rooms", headers=keys.ingest).json()
    assert [r["name"] for r in listed if r["room_id"] == "room-x"] == [text]


def test_hostile_order_and_buyer_references_round_trip(
    client: TestClient, keys: Keys, world: World
) -> None:
    open_room_and_session(client, keys, world)
    ref = HOSTILE[0][:100] + HOSTILE[7]
    r = client.post(
        "/v1/orders",
        json=order(world, order_ref=ref, buyer_ref=HOSTILE[2]),
        headers={**keys.ingest, "Idempotency-Key": HOSTILE[1]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["order_ref"] == ref
    again = client.post(
        "/v1/orders",
        json=order(world, order_ref=ref, buyer_ref=HOSTILE[2]),
        headers={**keys.ingest, "Idempotency-Key": HOSTILE[1]},
    )
    assert again.content == r.content


@pytest.mark.parametrize(
    "body",
    [
        {"room_id": "room-nul", "name": "tea\x00room"},
        {"room_id": "room\x00nul", "name": "tea"},
    ],
    ids=["name", "id"],
)
def test_nul_characters_are_refused_and_nothing_is_written(
    client: TestClient, keys: Keys, body: dict[str, str]
) -> None:
    r = client.post("/v1/rooms", json=body, headers=keys.ingest)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/rooms", headers=keys.ingest).json() == []


def test_a_nul_in_an_order_reference_is_refused(
    client: TestClient, keys: Keys, world: World
) -> None:
    open_room_and_session(client, keys, world)
    for field in ("order_ref", "buyer_ref"):
        r = client.post(
            "/v1/orders",
            json=order(world, **{field: "x\x00y"}),
            headers={**keys.ingest, "Idempotency-Key": f"nul-{field}"},
        )
        assert r.status_code == 422, r.text
