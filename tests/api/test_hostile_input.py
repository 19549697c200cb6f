"""Hostile text: injection strings and odd Unicode are stored and returned literally, on SQLite
and PostgreSQL. Each is read back from the database rows themselves (rooms' names, receipts'
order and buyer references, claims' types and URIs), from every response that returns it, and,
where it reaches the chain, from the chain (hashed as exactly its UTF-8 bytes). Where a field
takes no such text (platform ids), it is refused with 422. NUL characters, which PostgreSQL
cannot store, and lone surrogates, which are not text at all, are refused with 422 and nothing
written, no gas spent, instead of failing as 500."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from web3 import Web3

from api.config import Settings
from api.db import make_engine
from chain.actions import ClaimInput, label_hash
from chain.deploy import Deployment
from chain.events import EventDecoder
from chain.receipts import buyer_commitment
from tests.api.conftest import Keys, World
from tests.api.test_ingest import assert_problem
from tests.api.test_orders import open_room_and_session, order
from tests.api.test_registry import claim_body
from tests.api.test_route_matrix import Written
from tests.conftest import Accounts

HOSTILE = {
    "sql": "'; DROP TABLE receipts; --",
    "sql-or": '" OR 1=1 --',
    "like": "100% _off_ \\%",
    "html": "<script>alert(1)</script>",
    "template": "{{7*7}} ${7*7} #{7*7} %s %n",
    "path": "../../etc/passwd ..\\..\\win.ini",
    "crlf": "a\r\nSet-Cookie: x=1",
    "escapes": "\\x00 \\u0000 \\' \\\" \\\\",
    "controls": "\x01\x07\x1b[31m\x7f",
    "rtl": "\u202egnp.exe",
    "combining": "e\u0301 vs \u00e9, Z\u0364\u0351a\u0308\u0356l\u036e",
    "astral": "\U0001d518\U0001d52b\U0001d526 \U0001f375\U0001f9e7 "
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "zero-width": "\ufeffzero\u200bwidth\u200c\u200d\u2060",
    "full-width": "\uff33\uff25\uff2c\uff25\uff23\uff34\u3000\uff0a 西湖龙井\u3000全角",
    "separators": "line\u2028para\u2029next\u0085end",
    "noncharacters": "\ufffe\uffff\U0010ffff",
}
#: The longest text each field takes, in astral characters (4 UTF-8 bytes each): the limits
#: count characters, and PostgreSQL's columns must hold them all.
ROOM_NAME, REF, CLAIM_TYPE, URI = 512, 128, 64, 2_048


def long(n: int) -> str:
    """``n`` characters, each outside the Basic Multilingual Plane."""
    return "\U0001d518" * n


def rows(settings: Settings, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query``, read straight from the test database."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query), params)]
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- rooms


@pytest.mark.parametrize("name", [*HOSTILE.values(), long(ROOM_NAME)], ids=[*HOSTILE, "longest"])
def test_a_hostile_room_name_is_stored_and_returned_literally(
    client: TestClient, keys: Keys, settings: Settings, name: str
) -> None:
    created = client.post(
        "/v1/rooms", json={"room_id": "room-x", "name": name}, headers=keys.ingest
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    [(stored,)] = rows(settings, "SELECT name FROM rooms WHERE room_id = 'room-x'")
    assert stored.encode() == name.encode()
    listed = client.get("/v1/rooms", headers=keys.ingest).json()
    assert [r["name"] for r in listed if r["room_id"] == "room-x"] == [name]
    assert client.get("/v1/rooms/room-x").json()["name"] == name


def test_a_room_name_over_the_limit_is_refused(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    body = {"room_id": "room-x", "name": long(ROOM_NAME + 1)}
    assert_problem(client.post("/v1/rooms", json=body, headers=keys.ingest), 422)
    assert rows(settings, "SELECT room_id FROM rooms") == []


# ----------------------------------------------------------------------------- receipts


def test_hostile_order_and_buyer_references_are_stored_byte_for_byte(
    client: TestClient, keys: Keys, world: World, settings: Settings
) -> None:
    """Single and bulk orders and refunds: ``order_ref`` as the receipts table holds it, in the
    answer and in its replay; ``buyer_ref`` as the table holds it and as the buyer commitment
    hashed it; and neither in the public receipt."""
    open_room_and_session(client, keys, world)
    refs = {name: value[:REF] for name, value in HOSTILE.items()}
    refs["longest"] = long(REF)
    accepted: dict[str, dict[str, Any]] = {}
    for i, (name, ref) in enumerate(refs.items()):
        body = order(world, order_ref=ref, buyer_ref=ref[::-1])
        # The Idempotency-Key is stored too (a header: ASCII only).
        headers = {**keys.ingest, "Idempotency-Key": f"'; DROP TABLE idempotency_keys; -- {i}"}
        r = client.post("/v1/orders", json=body, headers=headers)
        assert r.status_code == 201, (name, r.text)
        assert r.json()["order_ref"] == ref, name
        again = client.post("/v1/orders", json=body, headers=headers)
        assert again.content == r.content, name
        accepted[ref] = {**r.json(), "buyer_ref": ref[::-1]}
    bulk_refs = ["bulk:" + ref[: REF - 5] for ref in refs.values()]
    bulk = {"orders": [order(world, order_ref=ref, buyer_ref=ref) for ref in bulk_refs]}
    r = client.post("/v1/orders/bulk", json=bulk, headers={**keys.ingest, "Idempotency-Key": "b"})
    assert r.status_code == 201, r.text
    for ref, receipt in zip(bulk_refs, r.json()["receipts"], strict=True):
        assert receipt["order_ref"] == ref
        accepted[ref] = {**receipt, "buyer_ref": ref}
    for i, sale in enumerate(list(accepted.values())[: len(refs)]):
        ref = "refund:" + sale["order_ref"][: REF - 7]
        body = {"receipt_code": sale["receipt_code"], "quantity": 1, "order_ref": ref}
        r = client.post(
            "/v1/refunds", json=body, headers={**keys.ingest, "Idempotency-Key": f"r{i}"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["order_ref"] == ref
        accepted[ref] = {**r.json(), "buyer_ref": None}

    stored = {
        receipt_id: (order_ref, buyer_ref, salt, commitment)
        for receipt_id, order_ref, buyer_ref, salt, commitment in rows(
            settings,
            "SELECT receipt_id, order_ref, buyer_ref, salt, buyer_commitment FROM receipts",
        )
    }
    assert len(stored) == len(accepted)
    for ref, receipt in accepted.items():
        order_ref, buyer_ref, salt, commitment = stored[receipt["receipt_id"]]
        assert order_ref.encode() == ref.encode()
        if receipt["buyer_ref"] is None:  # a refund: no buyer of its own
            assert (buyer_ref, salt) == (None, None)
            continue
        assert buyer_ref.encode() == receipt["buyer_ref"].encode()
        assert salt == receipt["salt"]
        hashed = buyer_commitment(bytes.fromhex(salt[2:]), label_hash(receipt["buyer_ref"]))
        assert commitment == receipt["buyer_commitment"] == "0x" + hashed.hex()
        public = client.get(f"/v1/receipts/{receipt['receipt_code']}")
        assert public.status_code == 200
        assert not {"order_ref", "buyer_ref", "salt"} & set(public.json())
        assert ref not in public.text
        assert receipt["buyer_ref"] not in public.text


# ----------------------------------------------------------------------------- claims


def test_hostile_claim_types_and_uris_are_stored_byte_for_byte(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """A claim's type and URI as the claims table holds them, as the claim reads return them,
    as the chain hashed (type) and logged (URI) them, and HTML-escaped on the product page."""
    decoder = EventDecoder({"ProvenanceRegistry": deployment.address("ProvenanceRegistry")})
    cases = {name: (value[:CLAIM_TYPE], value) for name, value in HOSTILE.items()}
    cases["longest"] = (long(CLAIM_TYPE), long(URI))
    claims: dict[str, tuple[str, str]] = {}
    for name, (claim_type, uri) in cases.items():
        body = claim_body(
            w3, deployment, accounts.brand, world.product_id, claim_type=claim_type, uri=uri
        )
        r = client.post("/v1/claims", json=body, headers=keys.brand)
        assert r.status_code == 201, (name, r.text)
        claim = r.json()
        assert (claim["claim_type"], claim["uri"]) == (claim_type, uri), name
        expected_id = ClaimInput(
            bytes.fromhex(world.product_id[2:]),
            label_hash(claim_type),
            bytes.fromhex(body["content_hash"][2:]),
            uri,
            body["valid_until"],
        ).claim_id()
        assert claim["claim_id"] == "0x" + expected_id.hex(), name
        [event] = [
            e
            for e in decoder.decode_receipt(w3.eth.get_transaction_receipt(claim["tx_hash"]))
            if e.name == "ClaimAdded"
        ]
        logged_type = event.args["claimType"]
        logged_type = logged_type.hex() if isinstance(logged_type, bytes) else logged_type
        assert logged_type.removeprefix("0x") == label_hash(claim_type).hex(), name
        assert event.args["uri"] == uri, name
        got = client.get(f"/v1/claims/{claim['claim_id']}").json()
        assert (got["claim_type"], got["uri"]) == (claim_type, uri), name
        claims[claim["claim_id"]] = (claim_type, uri)

    stored = rows(settings, "SELECT claim_id, claim_type, uri FROM claims")
    assert {cid: (t.encode(), u.encode()) for cid, t, u in stored} == {
        cid: (t.encode(), u.encode()) for cid, (t, u) in claims.items()
    }
    listed = client.get(f"/v1/products/{world.gtin}/claims").json()
    assert {c["claim_id"]: (c["claim_type"], c["uri"]) for c in listed} == claims
    page = client.get(f"/01/{world.gtin}")
    assert page.status_code == 200
    assert HOSTILE["html"] not in page.text
    assert html.escape(HOSTILE["html"], quote=False) in page.text


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_platform_ids_are_refused_and_nothing_is_written(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    value: str,
) -> None:
    """Room and session ids are platform ids (letters, digits, ``._:-``): hostile ones are
    refused before any row or chain transaction."""
    open_room_and_session(client, keys, world)
    before = Written.take(settings, w3, accounts)
    attempts = [
        ("/v1/rooms", {"room_id": value, "name": "x"}),
        ("/v1/sessions", {"session_id": value, "room_id": "room-1", "anchor": world.anchor}),
        ("/v1/sessions", {"session_id": "live-2", "room_id": value, "anchor": world.anchor}),
        ("/v1/orders", order(world, room_id=value)),
        ("/v1/orders", order(world, session_id=value)),
    ]
    for i, (path, body) in enumerate(attempts):
        headers = {**keys.ingest, "Idempotency-Key": f"id-{i}"}
        problem = assert_problem(client.post(path, json=body, headers=headers), 422)
        assert problem["type"].endswith("validation-failed"), (path, problem)
    assert Written.take(settings, w3, accounts) == before


def test_nul_characters_are_refused_and_nothing_is_written(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """NUL in every kind of free text, on the ingest side and in signed, relayed actions
    (refused before the signature is even checked, so before any gas)."""
    open_room_and_session(client, keys, world)
    sale = client.post(
        "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": "s"}
    )
    assert sale.status_code == 201, sale.text
    code = sale.json()["receipt_code"]
    claim = claim_body(w3, deployment, accounts.brand, world.product_id)
    nul = "tea\x00room"
    attempts: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/v1/rooms", {"room_id": "room-nul", "name": nul}, keys.ingest),
        ("/v1/rooms", {"room_id": "room\x00nul", "name": "tea"}, keys.ingest),
        ("/v1/orders", order(world, order_ref=nul), keys.ingest),
        ("/v1/orders", order(world, buyer_ref=nul), keys.ingest),
        ("/v1/orders/bulk", {"orders": [order(world), order(world, buyer_ref=nul)]}, keys.ingest),
        ("/v1/refunds", {"receipt_code": code, "quantity": 1, "order_ref": nul}, keys.ingest),
        ("/v1/claims", {**claim, "claim_type": nul}, keys.brand),
        ("/v1/claims", {**claim, "uri": nul}, keys.brand),
        ("/v1/brands", {"address": accounts.stranger.address, "name": nul}, keys.admin),
        ("/v1/anchors", {"address": accounts.anchor2.address, "handle": "@a\x00b"}, keys.admin),
    ]
    before = Written.take(settings, w3, accounts)
    for i, (path, body, key) in enumerate(attempts):
        r = client.post(path, json=body, headers={**key, "Idempotency-Key": f"nul-{i}"})
        assert_problem(r, 422, "validation-failed")
    # A receipt code is looked up, never stored: with a NUL it names no receipt.
    body = {"receipt_code": code + "\x00", "quantity": 1}
    r = client.post("/v1/refunds", json=body, headers={**keys.ingest, "Idempotency-Key": "nul-c"})
    assert_problem(r, 404, "receipt-not-found")
    assert Written.take(settings, w3, accounts) == before


@pytest.mark.parametrize("surrogate", ["\\ud800", "\\udfff", "a\\udc00b"])
def test_lone_surrogates_are_refused_and_nothing_is_written(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
    surrogate: str,
) -> None:
    """A JSON ``\\ud800`` escape decodes to no character at all: the database could not encode
    it (nor keccak hash it); both body parsers refuse it with 422."""
    open_room_and_session(client, keys, world)
    claim = claim_body(w3, deployment, accounts.brand, world.product_id)
    ordered = order(world, buyer_ref="SURROGATE")
    claimed = {**claim, "claim_type": "SURROGATE"}
    attempts = [
        ("/v1/rooms", '{"room_id": "room-s", "name": "SURROGATE"}', keys.ingest),
        ("/v1/orders", json.dumps(ordered), keys.ingest),
        ("/v1/orders/bulk", json.dumps({"orders": [ordered]}), keys.ingest),
        ("/v1/claims", json.dumps(claimed), keys.brand),
    ]
    before = Written.take(settings, w3, accounts)
    for i, (path, raw, key) in enumerate(attempts):
        content = raw.replace("SURROGATE", surrogate).encode()
        headers = {**key, "Idempotency-Key": f"s-{i}", "content-type": "application/json"}
        r = client.post(path, content=content, headers=headers)
        problem = assert_problem(r, 422)
        assert problem["type"].endswith("validation-failed"), (path, problem)
    assert Written.take(settings, w3, accounts) == before


@pytest.mark.parametrize("path", ["/v1/orders", "/v1/orders/bulk", "/v1/refunds", "/v1/rooms"])
def test_a_body_nested_a_hundred_thousand_deep_is_refused_not_a_crash(
    client: TestClient, keys: Keys, world: World, settings: Settings, path: str
) -> None:
    """py_ecc (through web3) raises the recursion limit to 100,000 on import; a JSON parser
    recursing that deep overflows the C stack and kills the process. ``chain`` brings the
    limit back, so this body is a 4xx like any other that is not JSON of the route's shape."""
    import sys

    from chain import RECURSION_LIMIT

    assert sys.getrecursionlimit() <= RECURSION_LIMIT
    open_room_and_session(client, keys, world)
    depth = 100_000
    body = ("[" * depth + "]" * depth).encode()
    headers = {**keys.ingest, "Idempotency-Key": "deep", "Content-Type": "application/json"}
    r = client.post(path, content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert rows(settings, "SELECT COUNT(*) FROM receipts") == [(0,)]
