"""Fuzz fixtures: the API fixtures of ``tests/api`` (a migrated database per test, the app on the
session's anvil, keys by role, the seeded catalogue), plus a stage with one of everything, so
that generated requests can name things that exist and reach past the "not found" answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web3 import Web3

from api.committer import Committer
from chain.deploy import Deployment
from tests.api import conftest as api_fixtures
from tests.api.conftest import Keys, World
from tests.api.test_endorsements import endorsement_body
from tests.api.test_orders import open_room_and_session
from tests.api.test_registry import attestation_body, claim_body, register_certifier
from tests.conftest import Accounts

# The API tests' fixtures, for the tests here too: a migrated database per test (SQLite, and
# PostgreSQL when configured), the app on the session's anvil, keys by role, the catalogue.
sqlite_template = api_fixtures.sqlite_template
pg_database = api_fixtures.pg_database
database_url = api_fixtures.database_url
settings = api_fixtures.settings
keys = api_fixtures.keys
client = api_fixtures.client
committer = api_fixtures.committer
world = api_fixtures.world

# The ids the OpenAPI examples use, so the examples phase reaches the real paths too.
ROOM_ID = "room-8848"
SESSION_ID = "live-2026-11-25-evening"
HANDLE = "@tea-master-li"


@dataclass(frozen=True)
class Stage:
    """What exists when a fuzz test starts, by the name a request uses for it."""

    brand: str
    certifier: str
    anchor: str
    gtin: str
    product_id: str
    claim_id: str
    attestation_id: str
    endorsement_id: str
    committed_code: str
    pending_code: str
    batch_root: str


def _post(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _order(world: World, order_ref: str) -> dict[str, Any]:
    return {
        "room_id": ROOM_ID,
        "session_id": SESSION_ID,
        "gtin": world.gtin,
        "quantity": 3,
        "unit_price": 12_800,
        "currency": "CNY",
        "buyer_ref": "buyer-77121",
        "order_ref": order_ref,
    }


@pytest.fixture
def stage(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> Stage:
    """A certifier, a claim and its attestation, an endorsement, the examples' room with an
    open session, a committed sale and a pending one, all through the API."""
    register_certifier(client, keys, accounts.certifier.address)
    claim = _post(
        client,
        "/v1/claims",
        claim_body(w3, deployment, accounts.brand, world.product_id),
        keys.brand,
    )
    attestation = _post(
        client,
        "/v1/attestations",
        attestation_body(
            w3, deployment, accounts.certifier.address, claim["claim_id"], accounts.certifier
        ),
        keys.certifier,
    )
    endorsement = _post(
        client,
        "/v1/endorsements",
        endorsement_body(w3, deployment, accounts.anchor, world.product_id),
        {},
    )
    open_room_and_session(client, keys, world, room=ROOM_ID, session=SESSION_ID)
    ingest = {**keys.ingest, "Idempotency-Key": "stage-1"}
    committed = _post(client, "/v1/orders", _order(world, "SO-stage-1"), ingest)
    assert committer.run_once().receipts == 1
    ingest = {**keys.ingest, "Idempotency-Key": "stage-2"}
    pending = _post(client, "/v1/orders", _order(world, "SO-stage-2"), ingest)
    receipt = client.get(f"/v1/receipts/{committed['receipt_code']}").json()
    return Stage(
        brand=accounts.brand.address,
        certifier=accounts.certifier.address,
        anchor=world.anchor,
        gtin=world.gtin,
        product_id=world.product_id,
        claim_id=claim["claim_id"],
        attestation_id=attestation["attestation_id"],
        endorsement_id=endorsement["endorsement_id"],
        committed_code=committed["receipt_code"],
        pending_code=pending["receipt_code"],
        batch_root=receipt["batch_root"],
    )
