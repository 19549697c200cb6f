"""The server-rendered pages (no browser): what they count, which language they speak, how they
answer bad links, and that nothing a participant wrote can inject markup or script."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from web3 import Web3

from api.committer import Committer
from api.config import Settings
from api.db import make_engine
from api.pages import facts as facts_module
from api.pages import i18n
from api.pages.facts import claim_state
from api.pages.render import CSP
from chain import eip712
from chain.deploy import Deployment
from tests.api.conftest import Keys, World
from tests.api.test_endorsements import endorsement_body, revocation
from tests.api.test_orders import open_room_and_session, order
from tests.api.test_registry import (
    attestation_body,
    chain_time,
    claim_body,
    register_certifier,
    revocation_body,
)
from tests.conftest import Accounts

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "pages" / "templates"
STATIC = TEMPLATES.parent / "static"
MINUS = "\N{MINUS SIGN}"


def by_testid(html: str, name: str) -> str:
    """The text of the first element with ``data-testid=name`` (tags stripped)."""
    found = re.search(rf'<(\w+)[^>]*data-testid="{name}"[^>]*>(.*?)</\1>', html, re.S)
    assert found is not None, f"no {name} in page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found[2])).strip()


def post_order(client: TestClient, keys: Keys, world: World, key: str, **extra: Any) -> str:
    r = client.post(
        "/v1/orders", json=order(world, **extra), headers={**keys.ingest, "Idempotency-Key": key}
    )
    assert r.status_code == 201, r.text
    code: str = r.json()["receipt_code"]
    return code


def endorse(
    client: TestClient,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    world: World,
    **terms: Any,
) -> dict[str, Any]:
    """The anchor's endorsement of the world's product, recorded through the API (in room-1
    unless ``terms`` say otherwise)."""
    body = endorsement_body(
        w3, deployment, accounts.anchor, world.product_id, **{"room_id": "room-1", **terms}
    )
    r = client.post("/v1/endorsements", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def test_product_page_counts_committed_sales_net_of_refunds_and_pending_apart(
    client: TestClient,
    keys: Keys,
    world: World,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    endorsement = endorse(client, w3, deployment, accounts, world)
    first = post_order(client, keys, world, "a", endorsement_id=endorsement["endorsement_id"])
    post_order(client, keys, world, "b", quantity=3)
    committer.run_once()
    refund = client.post(
        "/v1/refunds",
        json={"receipt_code": first, "quantity": 1},
        headers={**keys.ingest, "Idempotency-Key": "r"},
    )
    assert refund.status_code == 201, refund.text
    committer.run_once()
    post_order(client, keys, world, "c", quantity=4)  # stays pending

    page = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sales = by_testid(page.text, "verified-sales")
    # 2 + 3 sold and committed, 1 refunded: 4 verified; 4 more pending, shown apart.
    assert by_testid(page.text, "net") == "4"
    assert "refunded 1" in sales
    assert by_testid(page.text, "pending") == "pending: sold +4"
    # The endorsement in force, with its disclosure and promised price (¥128.00).
    assert by_testid(page.text, "ad-badge") == "广告 / Ad"
    assert by_testid(page.text, "commission-badge") == "Commission 15%"
    assert by_testid(page.text, "promised-price") == "CN¥128.00"
    assert f'href="/tx/{endorsement["tx_hash"]}"' in page.text


def test_anchor_profile_refund_rate_price_promise_and_overstated_sessions(
    client: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    committer: Committer,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    open_room_and_session(client, keys, world)
    endorsement_id = endorse(client, w3, deployment, accounts, world)["endorsement_id"]
    sold = post_order(client, keys, world, "a", quantity=4, endorsement_id=endorsement_id)
    above = post_order(client, keys, world, "b", quantity=1, endorsement_id=endorsement_id)
    # The service refuses a price above the promise; a dishonest platform edits its database
    # before the commit (the committer builds leaves from the rows), as the audit must catch.
    with make_engine(settings.database_url).begin() as conn:
        conn.execute(
            text("UPDATE receipts SET unit_price = 15000 WHERE receipt_id = :rid"),
            {"rid": client.get(f"/v1/receipts/{above}").json()["receipt_id"]},
        )
    client.post(
        "/v1/refunds",
        json={"receipt_code": sold, "quantity": 1},
        headers={**keys.ingest, "Idempotency-Key": "r"},
    )
    closed = client.post(
        "/v1/sessions/live-1/close",
        json={"recording_hash": "0x" + "ab" * 32, "displayed_sales": 10},
        headers=keys.ingest,
    )
    assert closed.status_code == 200, closed.text
    committer.run_once()

    for path in (
        "/a/@tea-master-li",
        "/a/tea-master-li",
        "/a/@TEA-master-li",
        f"/a/{world.anchor}",
    ):
        page = client.get(path, headers={"Accept-Language": "en"})
        assert page.status_code == 200, path
        assert by_testid(page.text, "anchor-handle") == "@tea-master-li"
    # 5 sold, 1 refunded.
    assert by_testid(page.text, "net") == "4"
    assert by_testid(page.text, "refund-rate") == "20%"
    # One sale at the promised ¥128.00, one at ¥150.00 above it.
    assert by_testid(page.text, "price-promise").startswith("50% · 1/2")
    # Displayed 10, verified 4: overstated by 6.
    assert 'data-overstated="6"' in page.text
    assert by_testid(page.text, "displayed") == "10"


def test_language_from_accept_language_query_and_cookie(client: TestClient, world: World) -> None:
    zh = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in zh.text
    assert "已验证销量" in zh.text
    assert zh.headers["content-language"] == "zh-CN"
    assert "Accept-Language" in zh.headers["vary"]
    en = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "fr;q=1, en;q=0.5, zh;q=0.4"})
    assert '<html lang="en">' in en.text
    # ?lang= wins over the header and is remembered.
    switched = client.get(f"/01/{world.gtin}?lang=zh-CN", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in switched.text
    assert client.cookies.get(i18n.COOKIE) == "zh-CN"
    again = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in again.text
    # The switch link offers the other language.
    assert 'href="/01/' + world.gtin + '?lang=en"' in again.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-TW", "zh-CN"),
        ("zh-Hans-CN;q=0.2, en-GB;q=0.3", "en"),
        ("de, zh;q=0.1", "zh-CN"),
        ("en;q=0, zh;q=0", "en"),
        ("en;q=bogus, zh", "zh-CN"),
    ],
)
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert i18n.choose(None, None, header) == expected


def test_gs1_digital_link_paths(client: TestClient, world: World) -> None:
    short = world.gtin.lstrip("0")
    moved = client.get(f"/01/{short}/10/LOT1?x=1", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == f"/01/{world.gtin}/10/LOT1?x=1"
    page = client.get(f"/01/{world.gtin}/10/L26-11.A%25/21/SN-0001")
    assert page.status_code == 200
    assert by_testid(page.text, "lot") == "L26-11.A%"
    assert by_testid(page.text, "serial") == "SN-0001"
    bad_check_digit = world.gtin[:-1] + str((int(world.gtin[-1]) + 1) % 10)
    for path in (
        f"/01/{bad_check_digit}",
        "/01/12345",
        f"/01/{world.gtin}/10/{'x' * 21}",
        f"/01/{world.gtin}/21/S%20N",
        f"/01/{world.gtin}/10/caf%C3%A9",
        "/01/123456789012345",
        f"/01/{world.gtin}/21/{'9' * 65}",
    ):
        refused = client.get(path, headers={"Accept-Language": "en"})
        assert refused.status_code == 404, path
        assert refused.headers["content-type"].startswith("text/html")
        assert "not a valid GS1 Digital Link" in refused.text
    unknown = client.get("/01/04006381333931")
    assert unknown.status_code == 404
    assert "No product is registered with this GTIN." in unknown.text


def test_receipt_page_pending_then_committed(
    client: TestClient, keys: Keys, world: World, committer: Committer
) -> None:
    open_room_and_session(client, keys, world)
    code = post_order(client, keys, world, "a")
    pending = client.get(f"/r/{code}", headers={"Accept-Language": "en"})
    assert pending.status_code == 200
    assert 'data-status="pending"' in pending.text
    assert pending.headers["refresh"] == "5"
    assert "verify-button" not in pending.text
    committer.run_once()
    committed = client.get(f"/r/{code.upper()}")
    receipt = client.get(f"/v1/receipts/{code}").json()
    assert 'data-status="committed"' in committed.text
    assert "refresh" not in committed.headers
    assert by_testid(committed.text, "batch-root") == receipt["batch_root"]
    assert f'href="/tx/{receipt["tx_hash"]}"' in committed.text
    assert f'data-bundle-url="/v1/receipts/{code}/proof"' in committed.text
    assert f'src="/v1/receipts/{code}/qr.svg"' in committed.text
    for bad in ("lp1" + "a" * 52, "nope", "x" * 80, "lp1" + "q" * 200):
        refused = client.get(f"/r/{bad}", headers={"Accept-Language": "en"})
        assert refused.status_code == 404
        assert "No receipt has this code." in refused.text
    for handle in ("nobody", "@" + "x" * 100):
        refused = client.get(f"/a/{handle}", headers={"Accept-Language": "en"})
        assert refused.status_code == 404
        assert "No anchor has this handle." in refused.text


def test_refund_receipt_links_to_its_sale(client: TestClient, keys: Keys, world: World) -> None:
    open_room_and_session(client, keys, world)
    sale = post_order(client, keys, world, "a")
    refund = client.post(
        "/v1/refunds",
        json={"receipt_code": sale, "quantity": 1},
        headers={**keys.ingest, "Idempotency-Key": "r"},
    ).json()["receipt_code"]
    page = client.get(f"/r/{refund}", headers={"Accept-Language": "en"})
    assert f'href="/r/{sale}"' in page.text


def test_markup_and_script_written_by_participants_stay_text(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
) -> None:
    body = claim_body(
        w3,
        deployment,
        accounts.brand,
        world.product_id,
        claim_type="<script>alert(1)</script>",
        uri="javascript:alert(2)",
    )
    r = client.post("/v1/claims", json=body, headers=keys.brand)
    assert r.status_code == 201, r.text
    page = client.get(f"/01/{world.gtin}")
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'href="javascript:' not in page.text
    assert "javascript:alert(2)" in page.text  # shown, as text
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP
    assert "unsafe-inline" not in CSP


def endorsement_states(profile: str) -> dict[str, str]:
    """An anchor profile's endorsements: state -> room."""
    found = re.findall(
        r'data-testid="anchor-endorsement" data-state="(\w+)".*?(room-[a-z]+)', profile, re.S
    )
    return dict(found)


def test_revoked_expired_and_not_yet_valid_states_on_the_product_and_anchor_pages(
    client: TestClient,
    keys: Keys,
    world: World,
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_certifier(client, keys, accounts.certifier.address)
    origin, batch = (
        client.post(
            "/v1/claims",
            json=claim_body(w3, deployment, accounts.brand, world.product_id, claim_type=kind),
            headers=keys.brand,
        ).json()
        for kind in ("origin", "batch")
    )
    attestation = client.post(
        "/v1/attestations",
        json=attestation_body(
            w3, deployment, accounts.certifier.address, origin["claim_id"], accounts.certifier
        ),
        headers=keys.certifier,
    ).json()
    pulled = client.post(
        f"/v1/attestations/{attestation['attestation_id']}/revocation",
        json=revocation_body(
            w3,
            deployment,
            accounts.certifier,
            eip712.revoke_attestation,
            "ProvenanceRegistry",
            attestation["attestation_id"],
        ),
        headers=keys.certifier,
    ).json()
    withdrawn = client.post(
        f"/v1/claims/{batch['claim_id']}/revocation",
        json=revocation_body(
            w3,
            deployment,
            accounts.brand,
            eip712.revoke_claim,
            "ProvenanceRegistry",
            batch["claim_id"],
        ),
        headers=keys.brand,
    ).json()
    now = chain_time(w3)
    revoked, later, current = (
        client.post(
            "/v1/endorsements",
            json=endorsement_body(
                w3, deployment, accounts.anchor, world.product_id, room_id=room, **window
            ),
        ).json()
        for room, window in (
            ("room-revoked", {}),
            ("room-later", {"valid_from": now + 86_400, "valid_until": now + 3 * 86_400}),
            ("room-now", {"valid_from": now - 60, "valid_until": now + 86_400}),
        )
    )
    url = f"/v1/endorsements/{revoked['endorsement_id']}/revocation"
    r = client.post(
        url, json=revocation(w3, deployment, accounts.anchor, revoked["endorsement_id"])
    )
    assert r.status_code == 200, r.text
    revoked_tx = r.json()["revoked_tx"]

    page = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "en"}).text
    states = dict(re.findall(r'data-testid="claim" data-state="(\w+)">\s*<h3>(\w+)', page))
    assert states == {"valid": "origin", "revoked": "batch"}
    assert f'href="/tx/{withdrawn["revoked_tx"]}"' in page
    assert 'data-testid="attestation" data-state="revoked"' in page
    assert f'href="/tx/{pulled["revoked_tx"]}"' in page
    # Endorsing it now: neither the revoked one nor the one not valid yet.
    assert re.findall(r'<dd class="mono">(room-[a-z]+)</dd>', page) == ["room-now"]

    profile = client.get("/a/@tea-master-li", headers={"Accept-Language": "en"}).text
    by_state = dict(
        re.findall(
            r'data-testid="anchor-endorsement" data-state="(\w+)".*?(room-[a-z]+)', profile, re.S
        )
    )
    assert by_state == {"revoked": "room-revoked", "pending": "room-later", "active": "room-now"}
    assert f'href="/tx/{revoked_tx}"' in profile
    assert "Not yet valid" in profile

    # Two days on (the pages' clock, not the chain's): the current one has expired, the later
    # one is in force.
    monkeypatch.setattr(facts_module, "time", SimpleNamespace(time=lambda: now + 2 * 86_400))
    profile = client.get("/a/@tea-master-li", headers={"Accept-Language": "en"}).text
    by_state = dict(
        re.findall(
            r'data-testid="anchor-endorsement" data-state="(\w+)".*?(room-[a-z]+)', profile, re.S
        )
    )
    assert by_state == {"revoked": "room-revoked", "active": "room-later", "expired": "room-now"}
    page = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "en"}).text
    assert re.findall(r'<dd class="mono">(room-[a-z]+)</dd>', page) == ["room-later"]
    assert current["endorsement_id"] != later["endorsement_id"]


def test_pending_refunds_and_sales_are_shown_apart_never_as_a_negative_count(
    client: TestClient, keys: Keys, world: World, committer: Committer
) -> None:
    open_room_and_session(client, keys, world)
    sale = post_order(client, keys, world, "a", quantity=2)
    committer.run_once()
    refund = client.post(
        "/v1/refunds",
        json={"receipt_code": sale, "quantity": 1},
        headers={**keys.ingest, "Idempotency-Key": "r"},
    )
    assert refund.status_code == 201, refund.text
    page = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "en"}).text
    assert by_testid(page, "net") == "2"
    assert by_testid(page, "pending") == f"pending: refunded {MINUS}1"
    assert "+-" not in page
    post_order(client, keys, world, "b", quantity=3)
    page = client.get(f"/01/{world.gtin}", headers={"Accept-Language": "zh-CN"}).text
    assert by_testid(page, "pending") == f"待上链: 售出 +3 · 退款 {MINUS}1"
    profile = client.get("/a/@tea-master-li", headers={"Accept-Language": "en"}).text
    assert "+-" not in profile
    assert f"refunded {MINUS}1" in profile


def test_claim_states(world: World) -> None:
    from api.models import Claim

    claim = Claim(
        claim_id="0x" + "01" * 32,
        product_id=world.product_id,
        issuer=world.anchor,
        claim_type="origin",
        content_hash="0x" + "02" * 32,
        uri="",
        valid_until=1_000,
        tx_hash="0x" + "03" * 32,
        block_number=1,
    )
    assert claim_state(claim, now=999) == "valid"
    assert claim_state(claim, now=1_001) == "expired"
    claim.revoked_tx = "0x" + "04" * 32
    assert claim_state(claim, now=999) == "revoked"


def test_tx_page_and_explorer_template(
    client: TestClient, world: World, settings: Settings, w3: Web3
) -> None:
    product = client.get(f"/v1/products/{world.gtin}").json()
    page = client.get(f"/tx/{product['tx_hash']}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "ProvenanceRegistry.ProductRegistered" in page.text
    assert client.get("/tx/0x" + "00" * 32).status_code == 404
    assert client.get("/tx/nothex").status_code == 404
    with pytest.raises(ValueError, match=r"\{tx\}"):
        Settings(explorer_tx_url="https://explorer.example/tx/")
    from api.app import create_app

    explorer = settings.model_copy(update={"explorer_tx_url": "https://scan.example/tx/{tx}"})
    with TestClient(create_app(explorer)) as other:
        page = other.get(f"/01/{world.gtin}")
    assert f'href="https://scan.example/tx/{product["tx_hash"]}"' in page.text


def test_static_assets_and_keccak_library(client: TestClient) -> None:
    script = client.get("/static/vendor/sha3.min.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "keccak" in script.text
    assert client.get("/static/verify.js").status_code == 200
    assert client.get("/static/liveproof.css").status_code == 200
    assert client.get("/static/nope.js").status_code == 404


def test_every_message_is_translated_and_used() -> None:
    sources = "".join(p.read_text() for p in TEMPLATES.glob("*.html"))
    used = set(re.findall(r"""\bt\(\s*["']([a-z_]+)["']\s*\)""", sources))
    assert used <= set(i18n.MESSAGES), used - set(i18n.MESSAGES)
    # State badges and error pages pick their keys by name.
    dynamic = {k for k in i18n.MESSAGES if k.startswith(("state_", "not_found_"))} | {"bad_link"}
    assert set(i18n.MESSAGES) - used - dynamic == set()
    for key, (en, zh) in i18n.MESSAGES.items():
        assert en.strip(), key
        assert zh.strip(), key


def test_pages_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/01/", "/r/", "/a/", "/sign", "/tx", "/verify"))]
