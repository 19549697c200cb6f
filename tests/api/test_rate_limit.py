"""Request bursts get 429 problem+json with Retry-After before they cost anything; verified
keys have their own (larger) buckets; made-up keys do not buy fresh ones; probes are exempt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from api import auth, rate_limit
from api.app import create_app
from api.config import Settings
from api.db import make_engine
from api.models import ApiKey, Receipt
from api.rate_limit import Limit, TokenBuckets
from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_a_bucket_grants_its_burst_then_refills_at_its_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Limit(rate=2.0, burst=3), clock)
    assert [buckets.take(b"a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take(b"a") == pytest.approx(0.5)  # one token every 0.5 s
    assert buckets.take(b"b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert buckets.take(b"a") == 0.0
    clock.now += 100  # refills up to the burst, not beyond
    assert [buckets.take(b"a") for _ in range(4)][-1] > 0


def test_buckets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limit, "MAX_CLIENTS", 10)
    buckets = TokenBuckets(Limit(1.0, 1), FakeClock())
    for i in range(50):
        buckets.take(str(i).encode())
    assert len(buckets._buckets) == 10


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    """The app with small limits: 5 anonymous and 20 keyed requests, refilling slowly."""
    tight = settings.model_copy(
        update={
            "rate_limit_anonymous": 0.01,
            "rate_burst_anonymous": 5,
            "rate_limit_keyed": 0.01,
            "rate_burst_keyed": 20,
        }
    )
    with TestClient(create_app(tight)) as client:
        yield client


def test_an_anonymous_burst_gets_429_with_retry_after(limited: TestClient, world: World) -> None:
    answers = [limited.get(f"/v1/products/{world.gtin}") for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    problem = refused.json()
    assert problem["type"] == "urn:liveproof:problem:too-many-requests"
    assert problem["status"] == 429
    # Probes are never limited, and pages count like any other request.
    assert limited.get("/healthz").status_code == 200
    assert limited.get("/readyz").status_code in (200, 503)
    assert limited.get(f"/01/{world.gtin}").status_code == 429


def test_a_verified_key_has_its_own_bucket_and_made_up_keys_do_not(
    limited: TestClient, keys: Keys, world: World
) -> None:
    # The first request with a key is counted against the address (not verified yet).
    first = limited.get("/v1/rooms", headers=keys.ingest)
    assert first.status_code == 200
    for _ in range(4):
        limited.get("/v1/products")  # the address's 5 are now spent
    assert limited.get("/v1/products").status_code == 429
    # The verified key is not held back by its address.
    keyed = [limited.get("/v1/rooms", headers=keys.ingest).status_code for _ in range(20)]
    assert keyed == [200] * 20
    assert limited.get("/v1/rooms", headers=keys.ingest).status_code == 429
    # Inventing keys buys nothing: an unverified token counts against the address.
    fake = {"Authorization": f"Bearer lpk_{uuid.uuid4().hex[:12]}_nope"}
    assert limited.get("/v1/products", headers=fake).status_code == 429


def test_a_key_stays_in_its_own_bucket_after_its_cache_entry_expires(
    limited: TestClient, keys: Keys, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy every shopper has the proxy's address: once they spend it, a verified
    ingest key must not be refused because its cached verification went stale."""
    monkeypatch.setattr(auth, "_CACHE_SECONDS", 0.0)  # every entry is stale at once
    assert limited.get("/v1/rooms", headers=keys.ingest).status_code == 200
    for _ in range(4):
        limited.get("/v1/products")
    assert limited.get("/v1/products").status_code == 429  # the shared address is spent
    later = [limited.get("/v1/rooms", headers=keys.ingest).status_code for _ in range(5)]
    assert later == [200] * 5
    revoked_token = keys.ingest["Authorization"].removeprefix("Bearer ")
    engine = make_engine(limited.app.state.liveproof.settings.database_url, pool_size=1)  # type: ignore[attr-defined]
    with Session(engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.key_id == revoked_token.split("_")[1])).one()
        row.revoked_at = 1.0
        session.add(row)
        session.commit()
    engine.dispose()
    # A stale entry only chooses the bucket: the route still refuses a revoked key.
    assert limited.get("/v1/rooms", headers=keys.ingest).status_code == 401


def test_a_refused_order_writes_nothing(
    limited: TestClient, settings: Settings, keys: Keys, world: World
) -> None:
    open_room_and_session(limited, keys, world)  # 2 keyed requests (first one anonymous)
    statuses = [
        limited.post(
            "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": f"k{i}"}
        ).status_code
        for i in range(25)
    ]
    accepted = statuses.count(201)
    assert statuses.count(429) == 25 - accepted
    assert 0 < accepted < 25
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        stored = session.exec(select(func.count()).select_from(Receipt)).one()
    engine.dispose()
    assert stored == accepted


def test_the_openapi_document_declares_429(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "429" in paths["/v1/orders"]["post"]["responses"]
    assert "429" not in paths["/healthz"]["get"]["responses"]
