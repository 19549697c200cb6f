"""Anchors and their signed endorsements through the API, against anvil.

``POST /v1/endorsements`` takes no API key: the anchor's EIP-712 signature is checked before
the relayer spends gas, so every refusal must leave no row, no chain state and no gas spent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3 import Web3

from chain import eip712
from chain.actions import EndorsementTerms, currency_code, label_hash
from chain.clients.base import relayer_for
from chain.deploy import Deployment
from tests.api.conftest import Keys
from tests.api.test_registry import (
    RelayerSnapshot,
    chain_time,
    domain,
    high_s,
    hx,
    problem,
    register_brand,
    register_product,
)
from tests.conftest import Accounts

HANDLE = "@tea-master-li"


def register_anchor(
    client: TestClient, keys: Keys, address: str, handle: str = HANDLE
) -> dict[str, Any]:
    r = client.post("/v1/anchors", json={"address": address, "handle": handle}, headers=keys.admin)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def seed(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> str:
    """A registered brand, its product and an anchor, all through the API; the product id."""
    register_brand(client, keys, accounts.brand.address)
    product = register_product(client, keys, w3, deployment, accounts.brand)
    register_anchor(client, keys, accounts.anchor.address)
    product_id: str = product["product_id"]
    return product_id


def endorsement_body(
    w3: Web3,
    deployment: Deployment,
    signer: LocalAccount,
    product_id: str,
    *,
    anchor: str | None = None,
    nonce: int | None = None,
    deadline: int | None = None,
    chain_id: int | None = None,
    tamper: Callable[[bytes], bytes] = lambda s: s,
    **terms: Any,
) -> dict[str, Any]:
    """A ``POST /v1/endorsements`` body signed by ``signer`` (for ``anchor``, default signer)."""
    anchor = anchor or signer.address
    now = chain_time(w3)
    nonce = nonce if nonce is not None else deployment.anchors(w3).nonce(anchor)
    deadline = deadline if deadline is not None else now + 3600
    fields: dict[str, Any] = {
        "claims_digest": hx(label_hash("claims")),
        "room_id": "room-8848",
        "sponsored": True,
        "commission_bps": 1500,
        "unit_price": 12_800,
        "currency": "CNY",
        "valid_from": now,
        "valid_until": now + 7 * 86400,
        **terms,
    }
    signed = EndorsementTerms(
        bytes.fromhex(product_id[2:]),
        bytes.fromhex(fields["claims_digest"][2:]),
        label_hash(fields["room_id"]),
        fields["sponsored"],
        fields["commission_bps"],
        fields["unit_price"],
        currency_code(fields["currency"]),
        fields["valid_from"],
        fields["valid_until"],
    )
    dom = domain(w3, deployment, "AnchorRegistry", chain_id)
    typed = eip712.endorsement(dom, anchor, signed, nonce, deadline)
    return {
        "anchor": anchor,
        "product_id": product_id,
        **fields,
        "nonce": nonce,
        "deadline": deadline,
        "signature": hx(tamper(eip712.sign(signer, typed))),
    }


def revocation(
    w3: Web3, deployment: Deployment, signer: LocalAccount, endorsement_id: str, **override: Any
) -> dict[str, Any]:
    """A signed ``RevokeEndorsement`` body."""
    nonce = override.get("nonce", deployment.anchors(w3).nonce(signer.address))
    deadline = chain_time(w3) + 3600
    typed = eip712.revoke_endorsement(
        domain(w3, deployment, "AnchorRegistry"),
        override.get("anchor", signer.address),
        bytes.fromhex(endorsement_id[2:]),
        nonce,
        deadline,
    )
    return {
        "signer": override.get("anchor", signer.address),
        "nonce": nonce,
        "deadline": deadline,
        "signature": hx(eip712.sign(signer, typed)),
    }


# ------------------------------------------------------------------------------------ anchors


def test_anchors_are_registered_and_removed_by_the_admin(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    anchors = deployment.anchors(w3)
    address = accounts.anchor.address
    body = {"address": address, "handle": HANDLE}
    problem(client.post("/v1/anchors", json=body, headers=keys.brand), 403, "forbidden")
    problem(client.post("/v1/anchors", json=body), 401, "unauthenticated")
    extra = {**body, "verified": True}
    problem(client.post("/v1/anchors", json=extra, headers=keys.admin), 422, "validation-failed")

    anchor = register_anchor(client, keys, address)
    assert anchor["handle_hash"] == hx(label_hash(HANDLE))
    assert anchors.handle_of(address) == label_hash(HANDLE)
    assert client.get(f"/v1/anchors/{HANDLE}").json() == anchor
    assert client.get("/v1/anchors").json() == [anchor]
    problem(client.post("/v1/anchors", json=body, headers=keys.admin), 409, "anchor-exists")
    taken = {"address": accounts.anchor2.address, "handle": HANDLE}
    problem(client.post("/v1/anchors", json=taken, headers=keys.admin), 409, "handle-taken")
    assert anchors.handle_of(accounts.anchor2.address) is None

    problem(client.delete(f"/v1/anchors/{address}", headers=keys.brand), 403, "forbidden")
    r = client.delete(f"/v1/anchors/{address}", headers=keys.admin)
    assert r.status_code == 200, r.text
    assert r.json()["removed_tx"] is not None
    assert anchors.handle_of(address) is None
    problem(client.delete(f"/v1/anchors/{address}", headers=keys.admin), 409, "anchor-removed")
    assert client.get("/v1/anchors").json() == []
    assert client.get("/v1/anchors?include_removed=true").json()[0]["address"] == address

    # Registered again after removal: a fresh on-chain record.
    again = register_anchor(client, keys, address)
    assert again["removed_tx"] is None
    assert again["tx_hash"] != anchor["tx_hash"]
    assert anchors.handle_of(address) == label_hash(HANDLE)


def test_an_anchor_written_by_a_lost_attempt_is_adopted(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    sent = deployment.anchors(w3, relayer_for(w3, accounts.relayer)).register_anchor(
        accounts.anchor.address, HANDLE
    )
    before = RelayerSnapshot.take(w3, accounts)
    other = {"address": accounts.anchor.address, "handle": "@someone-else"}
    problem(client.post("/v1/anchors", json=other, headers=keys.admin), 409, "contract-rejected")
    anchor = register_anchor(client, keys, accounts.anchor.address)
    assert (anchor["tx_hash"], anchor["block_number"]) == (sent.tx_hash, sent.block_number)
    assert RelayerSnapshot.take(w3, accounts) == before


# ------------------------------------------------------------------------------- endorsements


def test_an_anchor_endorses_and_revokes_without_an_api_key(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    product_id = seed(client, keys, accounts, w3, deployment)
    anchors = deployment.anchors(w3)
    body = endorsement_body(w3, deployment, accounts.anchor, product_id)
    r = client.post("/v1/endorsements", json=body)
    assert r.status_code == 201, r.text
    record = r.json()
    raw_id = bytes.fromhex(record["endorsement_id"][2:])
    on_chain = anchors.endorsement(raw_id)
    assert (on_chain.anchor, on_chain.valid_until, on_chain.revoked) == (
        accounts.anchor.address,
        body["valid_until"],
        False,
    )
    assert record["room_hash"] == hx(label_hash("room-8848"))
    assert (record["nonce"], record["revoked_tx"]) == (0, None)
    assert anchors.nonce(accounts.anchor.address) == 1
    assert client.get(f"/v1/endorsements/{record['endorsement_id']}").json() == record
    assert client.get(f"/v1/endorsements?anchor={accounts.anchor.address}").json() == [record]
    assert client.get(f"/v1/endorsements?product_id={product_id}").json() == [record]
    assert client.get(f"/v1/endorsements?anchor={accounts.anchor2.address}").json() == []
    problem(client.post("/v1/endorsements", json=body), 409, "endorsement-exists")

    url = f"/v1/endorsements/{record['endorsement_id']}/revocation"
    before = RelayerSnapshot.take(w3, accounts)
    # Someone else cannot revoke it, nor sign in the anchor's name.
    other = revocation(w3, deployment, accounts.anchor2, record["endorsement_id"])
    problem(client.post(url, json=other), 403, "not-endorser")
    forged = revocation(
        w3,
        deployment,
        accounts.anchor2,
        record["endorsement_id"],
        anchor=accounts.anchor.address,
        nonce=1,
    )
    problem(client.post(url, json=forged), 422, "invalid-signature")
    assert RelayerSnapshot.take(w3, accounts) == before
    assert not anchors.endorsement(raw_id).revoked

    r = client.post(url, json=revocation(w3, deployment, accounts.anchor, record["endorsement_id"]))
    assert r.status_code == 200, r.text
    assert r.json()["revoked_tx"] is not None
    assert anchors.endorsement(raw_id).revoked
    assert client.get(f"/v1/endorsements/{record['endorsement_id']}").json()["revoked_tx"]
    again = revocation(w3, deployment, accounts.anchor, record["endorsement_id"])
    problem(client.post(url, json=again), 409, "endorsement-revoked")
    problem(
        client.post(f"/v1/endorsements/{'0x' + '00' * 32}/revocation", json=again),
        404,
        "endorsement-not-found",
    )


def test_an_endorsement_with_64_bit_terms_is_stored(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    """Prices and validity past 32 bits (2038 and on) fit the contract, so the database must
    keep them too (PostgreSQL's INTEGER columns did not); beyond 63 bits is refused unsent."""
    product_id = seed(client, keys, accounts, w3, deployment)
    now = chain_time(w3)
    before = RelayerSnapshot.take(w3, accounts)
    too_late = endorsement_body(w3, deployment, accounts.anchor, product_id, valid_until=2**63)
    problem(client.post("/v1/endorsements", json=too_late), 422, "validation-failed")
    assert RelayerSnapshot.take(w3, accounts) == before
    terms = {"unit_price": 2**40, "valid_from": now, "valid_until": 2**32 + 1}
    body = endorsement_body(w3, deployment, accounts.anchor, product_id, **terms)
    r = client.post("/v1/endorsements", json=body)
    assert r.status_code == 201, r.text
    record = r.json()
    assert {k: record[k] for k in terms} == terms
    assert client.get(f"/v1/endorsements/{record['endorsement_id']}").json() == record


SignatureCase = Callable[[Web3, Deployment, Accounts, str], dict[str, Any]]

SIGNATURE_CASES: dict[str, tuple[SignatureCase, str]] = {
    "forged-by-another-key": (
        lambda w3, d, a, p: endorsement_body(w3, d, a.anchor2, p, anchor=a.anchor.address),
        "invalid-signature",
    ),
    "replayed-nonce": (
        lambda w3, d, a, p: endorsement_body(w3, d, a.anchor, p, nonce=0, unit_price=9_900),
        "invalid-nonce",
    ),
    "expired-deadline": (
        lambda w3, d, a, p: endorsement_body(w3, d, a.anchor, p, deadline=chain_time(w3) - 1),
        "signature-expired",
    ),
    "another-chain-id": (
        lambda w3, d, a, p: endorsement_body(w3, d, a.anchor, p, chain_id=1),
        "invalid-signature",
    ),
    "high-s-malleated": (
        lambda w3, d, a, p: endorsement_body(w3, d, a.anchor, p, tamper=high_s),
        "invalid-signature",
    ),
}


@pytest.mark.parametrize("case", list(SIGNATURE_CASES))
def test_a_bad_endorsement_signature_is_refused_before_any_gas_is_spent(
    case: str,
    client: TestClient,
    keys: Keys,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    product_id = seed(client, keys, accounts, w3, deployment)
    first = endorsement_body(w3, deployment, accounts.anchor, product_id)
    assert client.post("/v1/endorsements", json=first).status_code == 201  # uses nonce 0
    build, slug = SIGNATURE_CASES[case]
    body = build(w3, deployment, accounts, product_id)
    before = RelayerSnapshot.take(w3, accounts)

    problem(client.post("/v1/endorsements", json=body), 422, slug)

    assert RelayerSnapshot.take(w3, accounts) == before
    assert deployment.anchors(w3).nonce(accounts.anchor.address) == 1
    assert len(client.get("/v1/endorsements").json()) == 1


def test_endorsement_prechecks_refuse_before_gas(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    product_id = seed(client, keys, accounts, w3, deployment)
    before = RelayerSnapshot.take(w3, accounts)
    now = chain_time(w3)
    anchor = accounts.anchor

    def refused(body: dict[str, Any], status: int, slug: str) -> None:
        problem(client.post("/v1/endorsements", json=body), status, slug)

    stranger = endorsement_body(w3, deployment, accounts.anchor2, product_id)
    refused(stranger, 422, "unknown-anchor")
    unknown = endorsement_body(w3, deployment, anchor, hx(label_hash("no such product")))
    refused(unknown, 422, "unknown-product")
    empty = endorsement_body(w3, deployment, anchor, product_id, valid_from=now, valid_until=now)
    refused(empty, 422, "invalid-validity-window")
    past = endorsement_body(
        w3, deployment, anchor, product_id, valid_from=now - 100, valid_until=now - 10
    )
    refused(past, 422, "endorsement-expired")
    refused(endorsement_body(w3, deployment, anchor, product_id, nonce=3), 422, "invalid-nonce")
    greedy = endorsement_body(w3, deployment, anchor, product_id, commission_bps=10_001)
    refused(greedy, 422, "validation-failed")
    extra = {**endorsement_body(w3, deployment, anchor, product_id), "bonus": 1}
    refused(extra, 422, "validation-failed")
    # Past uint256 the nonce cannot even be encoded for the contract's view call (was a 500).
    huge_nonce = {**endorsement_body(w3, deployment, anchor, product_id), "nonce": 2**256}
    refused(huge_nonce, 422, "validation-failed")

    assert RelayerSnapshot.take(w3, accounts) == before
    assert deployment.anchors(w3).nonce(anchor.address) == 0
    assert client.get("/v1/endorsements").json() == []


def test_a_removed_anchor_cannot_endorse_but_can_still_revoke(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    product_id = seed(client, keys, accounts, w3, deployment)
    record = client.post(
        "/v1/endorsements", json=endorsement_body(w3, deployment, accounts.anchor, product_id)
    ).json()
    r = client.delete(f"/v1/anchors/{accounts.anchor.address}", headers=keys.admin)
    assert r.status_code == 200, r.text
    before = RelayerSnapshot.take(w3, accounts)
    body = endorsement_body(w3, deployment, accounts.anchor, product_id, unit_price=9_900)
    problem(client.post("/v1/endorsements", json=body), 422, "unknown-anchor")
    assert RelayerSnapshot.take(w3, accounts) == before
    assert deployment.anchors(w3).nonce(accounts.anchor.address) == 1

    url = f"/v1/endorsements/{record['endorsement_id']}/revocation"
    r = client.post(url, json=revocation(w3, deployment, accounts.anchor, record["endorsement_id"]))
    assert r.status_code == 200, r.text
    assert deployment.anchors(w3).endorsement(bytes.fromhex(record["endorsement_id"][2:])).revoked


def test_an_endorsement_written_by_a_lost_attempt_is_adopted(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    product_id = seed(client, keys, accounts, w3, deployment)
    body = endorsement_body(w3, deployment, accounts.anchor, product_id)
    terms = EndorsementTerms(
        bytes.fromhex(product_id[2:]),
        bytes.fromhex(body["claims_digest"][2:]),
        label_hash(body["room_id"]),
        body["sponsored"],
        body["commission_bps"],
        body["unit_price"],
        currency_code(body["currency"]),
        body["valid_from"],
        body["valid_until"],
    )
    sent = deployment.anchors(w3, relayer_for(w3, accounts.relayer)).endorse_by_sig(
        accounts.anchor.address,
        terms,
        body["nonce"],
        body["deadline"],
        bytes.fromhex(body["signature"][2:]),
    )
    before = RelayerSnapshot.take(w3, accounts)
    r = client.post("/v1/endorsements", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["endorsement_id"] == hx(sent.value)
    assert (r.json()["tx_hash"], r.json()["block_number"]) == (sent.tx_hash, sent.block_number)
    assert RelayerSnapshot.take(w3, accounts) == before
    problem(client.post("/v1/endorsements", json=body), 409, "endorsement-exists")
