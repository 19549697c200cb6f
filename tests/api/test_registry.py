"""Brands, certifiers, products, claims and attestations through the API, against anvil.

Every signed action is checked before the relayer spends gas: a refused request must leave
no database row, no chain state and the relayer's nonce and balance as they were."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session
from web3 import Web3

from api.auth import create_key
from api.config import Settings
from api.db import make_engine
from api.models import Role
from chain import eip712
from chain.actions import AttestationInput, ClaimInput, ProductInput, label_hash
from chain.artifacts import load_artifact
from chain.clients.base import relayer_for
from chain.deploy import Deployment
from chain.keys import ANVIL_DEV_KEYS, account_from_key
from tests.api.conftest import Keys
from tests.conftest import Accounts

GTIN = "06901234567892"
GTIN2 = "04006381333931"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PROBLEM = "urn:liveproof:problem:"

# --------------------------------------------------------------------------------- helpers


def problem(response: Response, status: int, slug: str) -> dict[str, Any]:
    """Assert ``response`` is the problem ``slug`` with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + slug, body
    return body


def hx(value: bytes) -> str:
    return "0x" + value.hex()


def chain_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def domain(w3: Web3, deployment: Deployment, contract: str, chain_id: int | None = None) -> Any:
    """The registry's EIP-712 domain (optionally on another chain id, for forged signatures)."""
    return eip712.Domain.of(contract, chain_id or w3.eth.chain_id, deployment.address(contract))


def high_s(signature: bytes) -> bytes:
    """The malleated twin of a valid signature: s -> n - s, v flipped; ECDSA accepts it, the
    contracts (and the API) must not."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


@dataclass(frozen=True)
class RelayerSnapshot:
    """The relayer's transaction count and balance: unchanged means no gas was spent."""

    nonce: int
    balance: int

    @classmethod
    def take(cls, w3: Web3, accounts: Accounts) -> RelayerSnapshot:
        address = accounts.relayer.address
        return cls(w3.eth.get_transaction_count(address), w3.eth.get_balance(address))


def register_brand(client: TestClient, keys: Keys, address: str, name: str = "Tea Co.") -> None:
    r = client.post("/v1/brands", json={"address": address, "name": name}, headers=keys.admin)
    assert r.status_code == 201, r.text


def register_certifier(client: TestClient, keys: Keys, address: str) -> None:
    body = {"address": address, "name": "Tea Lab"}
    r = client.post("/v1/certifiers", json=body, headers=keys.admin)
    assert r.status_code == 201, r.text


def product_body(
    w3: Web3,
    deployment: Deployment,
    signer: LocalAccount,
    *,
    brand: str | None = None,
    gtin: str = GTIN,
    nonce: int = 0,
    deadline: int | None = None,
    chain_id: int | None = None,
    tamper: Callable[[bytes], bytes] = lambda s: s,
) -> dict[str, Any]:
    """A ``POST /v1/products`` body signed by ``signer`` (for ``brand``, default the signer)."""
    brand = brand or signer.address
    deadline = deadline if deadline is not None else chain_time(w3) + 3600
    meta = label_hash("meta")
    product = ProductInput(int(gtin), "Longjing tea 250 g", "https://tea.example/p", meta)
    dom = domain(w3, deployment, "ProvenanceRegistry", chain_id)
    typed = eip712.register_product(dom, brand, product, nonce, deadline)
    return {
        "brand": brand,
        "gtin": gtin,
        "name": product.name,
        "uri": product.uri,
        "metadata_hash": hx(meta),
        "nonce": nonce,
        "deadline": deadline,
        "signature": hx(tamper(eip712.sign(signer, typed))),
    }


def register_product(
    client: TestClient, keys: Keys, w3: Web3, deployment: Deployment, brand: LocalAccount
) -> dict[str, Any]:
    """Register GTIN via the API as ``brand`` (whose key is ``keys.brand``); the product."""
    nonce = deployment.provenance(w3).nonce(brand.address)
    body = product_body(w3, deployment, brand, nonce=nonce)
    r = client.post("/v1/products", json=body, headers=keys.brand)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def claim_body(
    w3: Web3,
    deployment: Deployment,
    signer: LocalAccount,
    product_id: str,
    *,
    issuer: str | None = None,
    nonce: int | None = None,
    claim_type: str = "origin",
    uri: str = "https://tea.example/origin.pdf",
    valid_until: int | None = None,
) -> dict[str, Any]:
    """A ``POST /v1/claims`` body signed by ``signer``."""
    issuer = issuer or signer.address
    nonce = nonce if nonce is not None else deployment.provenance(w3).nonce(issuer)
    now = chain_time(w3)
    claim = ClaimInput(
        bytes.fromhex(product_id[2:]),
        label_hash(claim_type),
        label_hash("West Lake, Hangzhou"),
        uri,
        valid_until if valid_until is not None else now + 365 * 86400,
    )
    dom = domain(w3, deployment, "ProvenanceRegistry")
    typed = eip712.product_claim(dom, issuer, claim, nonce, now + 3600)
    return {
        "issuer": issuer,
        "product_id": product_id,
        "claim_type": claim_type,
        "content_hash": hx(claim.content_hash),
        "uri": claim.uri,
        "valid_until": claim.valid_until,
        "nonce": nonce,
        "deadline": now + 3600,
        "signature": hx(eip712.sign(signer, typed)),
    }


def attestation_body(
    w3: Web3,
    deployment: Deployment,
    certifier: str,
    claim_id: str,
    signer: LocalAccount,
    *,
    nonce: int | None = None,
    report: str = "report-17",
) -> dict[str, Any]:
    """A ``POST /v1/attestations`` body for ``certifier`` on ``claim_id``, signed by ``signer``
    (the certifier's own key, or another to forge it); ``nonce`` default: the next one."""
    if nonce is None:
        nonce = deployment.provenance(w3).nonce(certifier)
    deadline = chain_time(w3) + 3600
    attestation = AttestationInput(
        bytes.fromhex(claim_id[2:]), label_hash(report), "https://lab.example/r17"
    )
    typed = eip712.attestation(
        domain(w3, deployment, "ProvenanceRegistry"), certifier, attestation, nonce, deadline
    )
    return {
        "certifier": certifier,
        "claim_id": claim_id,
        "report_hash": hx(attestation.report_hash),
        "uri": attestation.uri,
        "nonce": nonce,
        "deadline": deadline,
        "signature": hx(eip712.sign(signer, typed)),
    }


def revocation_body(
    w3: Web3,
    deployment: Deployment,
    signer: LocalAccount,
    build: Callable[..., dict[str, Any]],
    contract: str,
    object_id: str,
    *,
    nonce: int | None = None,
) -> dict[str, Any]:
    """A signed revocation body; ``build`` is the eip712 builder (revoke_claim, ...);
    ``nonce`` default: the signer's next one."""
    if nonce is None:
        client = deployment.provenance(w3) if contract == "ProvenanceRegistry" else None
        nonce = (client or deployment.anchors(w3)).nonce(signer.address)
    deadline = chain_time(w3) + 3600
    typed = build(
        domain(w3, deployment, contract),
        signer.address,
        bytes.fromhex(object_id[2:]),
        nonce,
        deadline,
    )
    return {
        "signer": signer.address,
        "nonce": nonce,
        "deadline": deadline,
        "signature": hx(eip712.sign(signer, typed)),
    }


# ----------------------------------------------------------------------- brands, certifiers


def test_brands_and_certifiers_are_registered_on_chain_by_the_admin(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    provenance = deployment.provenance(w3)
    brand = accounts.brand.address
    r = client.post(
        "/v1/brands", json={"address": brand.lower(), "name": "Tea Co."}, headers=keys.admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["address"] == brand
    assert provenance.is_brand(brand)
    assert w3.eth.get_transaction_receipt(r.json()["tx_hash"])["status"] == 1
    assert client.get(f"/v1/brands/{brand.lower()}").json()["name"] == "Tea Co."
    assert [b["address"] for b in client.get("/v1/brands").json()] == [brand]
    again = client.post("/v1/brands", json={"address": brand, "name": "x"}, headers=keys.admin)
    problem(again, 409, "brand-exists")

    register_certifier(client, keys, accounts.certifier.address)
    assert provenance.is_certifier(accounts.certifier.address)
    assert client.get(f"/v1/certifiers/{accounts.certifier.address}").status_code == 200
    problem(client.get(f"/v1/certifiers/{accounts.stranger.address}"), 404, "certifier-not-found")

    body = {"address": accounts.stranger.address, "name": "Other"}
    problem(client.post("/v1/brands", json=body, headers=keys.brand), 403, "forbidden")
    problem(client.post("/v1/certifiers", json=body, headers=keys.certifier), 403, "forbidden")
    problem(client.post("/v1/brands", json=body), 401, "unauthenticated")
    extra = {**body, "role": "admin"}
    problem(client.post("/v1/brands", json=extra, headers=keys.admin), 422, "validation-failed")
    assert not provenance.is_brand(accounts.stranger.address)


def test_a_brand_already_on_chain_is_adopted_without_a_second_write(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    sent = deployment.provenance(w3, relayer_for(w3, accounts.relayer)).register_brand(
        accounts.brand.address, "Tea Co."
    )
    before = RelayerSnapshot.take(w3, accounts)
    register_brand(client, keys, accounts.brand.address, "Tea Co.")
    assert client.get(f"/v1/brands/{accounts.brand.address}").json()["tx_hash"] == sent.tx_hash
    assert RelayerSnapshot.take(w3, accounts) == before


# --------------------------------------------------------------------------------- products


def test_a_brand_registers_a_signed_product(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    register_brand(client, keys, accounts.brand.address)
    provenance = deployment.provenance(w3)
    product = register_product(client, keys, w3, deployment, accounts.brand)
    assert product["gtin"] == GTIN
    assert product["product_id"] == hx(provenance.product_id_of(int(GTIN)))
    assert provenance.brand_of(bytes.fromhex(product["product_id"][2:])) == accounts.brand.address
    assert provenance.nonce(accounts.brand.address) == 1
    # GTIN-13 and GTIN-14 forms name the same product.
    assert client.get(f"/v1/products/{GTIN.lstrip('0')}").json() == product
    assert client.get(f"/v1/products?brand={accounts.brand.address}").json() == [product]
    assert client.get(f"/v1/products?brand={accounts.stranger.address}").json() == []
    problem(client.get("/v1/products/06901234567890"), 404, "product-not-found")
    problem(client.get("/v1/products/123"), 422, "validation-failed")
    # The same GTIN again: already registered here.
    body = product_body(w3, deployment, accounts.brand, nonce=1)
    problem(client.post("/v1/products", json=body, headers=keys.brand), 409, "product-exists")


SignatureCase = Callable[[Web3, Deployment, Accounts], dict[str, Any]]

SIGNATURE_CASES: dict[str, tuple[SignatureCase, str]] = {
    "forged-by-another-key": (
        lambda w3, d, a: product_body(
            w3, d, a.stranger, brand=a.brand.address, gtin=GTIN2, nonce=1
        ),
        "invalid-signature",
    ),
    "replayed-nonce": (
        lambda w3, d, a: product_body(w3, d, a.brand, gtin=GTIN2, nonce=0),
        "invalid-nonce",
    ),
    "expired-deadline": (
        lambda w3, d, a: product_body(
            w3, d, a.brand, gtin=GTIN2, nonce=1, deadline=chain_time(w3) - 1
        ),
        "signature-expired",
    ),
    "another-chain-id": (
        lambda w3, d, a: product_body(w3, d, a.brand, gtin=GTIN2, nonce=1, chain_id=1),
        "invalid-signature",
    ),
    "high-s-malleated": (
        lambda w3, d, a: product_body(w3, d, a.brand, gtin=GTIN2, nonce=1, tamper=high_s),
        "invalid-signature",
    ),
    # Found by the fuzzer: no public key recovers from it, which was a 500.
    "unrecoverable": (
        lambda w3, d, a: product_body(
            w3, d, a.brand, gtin=GTIN2, nonce=1, tamper=lambda s: bytes(len(s))
        ),
        "invalid-signature",
    ),
}


@pytest.mark.parametrize("case", list(SIGNATURE_CASES))
def test_a_bad_product_signature_is_refused_before_any_gas_is_spent(
    case: str,
    client: TestClient,
    keys: Keys,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    register_brand(client, keys, accounts.brand.address)
    register_product(client, keys, w3, deployment, accounts.brand)  # uses nonce 0
    provenance = deployment.provenance(w3)
    build, slug = SIGNATURE_CASES[case]
    body = build(w3, deployment, accounts)
    before = RelayerSnapshot.take(w3, accounts)

    problem(client.post("/v1/products", json=body, headers=keys.brand), 422, slug)

    assert RelayerSnapshot.take(w3, accounts) == before
    assert provenance.brand_of(provenance.product_id_of(int(GTIN2))) is None
    assert provenance.nonce(accounts.brand.address) == 1
    problem(client.get(f"/v1/products/{GTIN2}"), 404, "product-not-found")


def test_product_prechecks_and_object_level_rules(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    body = product_body(w3, deployment, accounts.brand)
    # The brand is not registered yet.
    problem(client.post("/v1/products", json=body, headers=keys.brand), 422, "unknown-brand")
    register_brand(client, keys, accounts.brand.address)
    register_brand(client, keys, accounts.stranger.address, "Other Co.")
    before = RelayerSnapshot.take(w3, accounts)

    bad_gtin = product_body(w3, deployment, accounts.brand, gtin="06901234567890")
    problem(client.post("/v1/products", json=bad_gtin, headers=keys.brand), 422, "invalid-gtin")
    ahead = product_body(w3, deployment, accounts.brand, nonce=5)
    refused = problem(
        client.post("/v1/products", json=ahead, headers=keys.brand), 422, "invalid-nonce"
    )
    assert refused["expected_nonce"] == 0
    # brand2's key cannot register for the brand, even with the brand's own signature.
    problem(client.post("/v1/products", json=body, headers=keys.brand2), 403, "forbidden")
    problem(client.post("/v1/products", json=body, headers=keys.certifier), 403, "forbidden")
    problem(client.post("/v1/products", json=body), 401, "unauthenticated")
    extra = {**body, "owner": accounts.stranger.address}
    problem(client.post("/v1/products", json=extra, headers=keys.brand), 422, "validation-failed")

    assert RelayerSnapshot.take(w3, accounts) == before
    assert client.get("/v1/products").json() == []
    # The untouched signature still works.
    assert client.post("/v1/products", json=body, headers=keys.brand).status_code == 201


def test_a_product_written_by_a_lost_attempt_is_adopted_once(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    register_brand(client, keys, accounts.brand.address)
    body = product_body(w3, deployment, accounts.brand)
    # The chain write happens, the answer (and the database row) is lost.
    sent = deployment.provenance(w3, relayer_for(w3, accounts.relayer)).register_product_by_sig(
        body["brand"],
        ProductInput(
            int(GTIN), body["name"], body["uri"], bytes.fromhex(body["metadata_hash"][2:])
        ),
        body["nonce"],
        body["deadline"],
        bytes.fromhex(body["signature"][2:]),
    )
    before = RelayerSnapshot.take(w3, accounts)
    different = {**body, "name": "Something else"}
    problem(client.post("/v1/products", json=different, headers=keys.brand), 409, "product-exists")
    retry = client.post("/v1/products", json=body, headers=keys.brand)
    assert retry.status_code == 201, retry.text
    assert retry.json()["tx_hash"] == sent.tx_hash
    assert retry.json()["block_number"] == sent.block_number
    assert RelayerSnapshot.take(w3, accounts) == before
    problem(client.post("/v1/products", json=body, headers=keys.brand), 409, "product-exists")


def test_a_contract_wallet_brand_is_checked_by_the_contract(
    client: TestClient,
    keys: Keys,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
    settings: Settings,
) -> None:
    owner = account_from_key(ANVIL_DEV_KEYS[7])
    artifact = load_artifact("MockERC1271Wallet")
    owner_relayer = relayer_for(w3, owner)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = owner_relayer.transact(factory.constructor(owner.address))
    assert receipt["contractAddress"] is not None
    wallet = Web3.to_checksum_address(receipt["contractAddress"])
    contract = w3.eth.contract(address=wallet, abi=artifact["abi"])
    register_brand(client, keys, wallet, "Wallet Tea")
    # A key acting for the wallet; the wallet's owner key signs.
    engine = make_engine(settings.database_url, pool_size=1)
    with Session(engine) as session:
        _, token = create_key(session, role=Role.BRAND, subject=wallet)
    engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}

    body = product_body(w3, deployment, owner, brand=wallet)
    r = client.post("/v1/products", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert deployment.provenance(w3).brand_of(bytes.fromhex(r.json()["product_id"][2:])) == wallet

    owner_relayer.transact(contract.functions.setAccepting(False))
    body = product_body(w3, deployment, owner, brand=wallet, gtin=GTIN2, nonce=1)
    before = RelayerSnapshot.take(w3, accounts)
    problem(client.post("/v1/products", json=body, headers=headers), 422, "invalid-signature")
    assert RelayerSnapshot.take(w3, accounts) == before
    problem(client.get(f"/v1/products/{GTIN2}"), 404, "product-not-found")


# ----------------------------------------------------------------------------------- claims


def test_a_brand_adds_and_revokes_a_claim_about_its_product(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    register_brand(client, keys, accounts.brand.address)
    product = register_product(client, keys, w3, deployment, accounts.brand)
    provenance = deployment.provenance(w3)
    body = claim_body(w3, deployment, accounts.brand, product["product_id"])
    r = client.post("/v1/claims", json=body, headers=keys.brand)
    assert r.status_code == 201, r.text
    claim = r.json()
    claim_id = bytes.fromhex(claim["claim_id"][2:])
    state = provenance.claim(claim_id)
    assert (state.issuer, state.revoked) == (accounts.brand.address, False)
    assert (claim["claim_type"], claim["revoked_tx"]) == ("origin", None)
    assert client.get(f"/v1/claims/{claim['claim_id']}").json() == claim
    assert client.get(f"/v1/products/{GTIN}/claims").json() == [claim]
    problem(client.post("/v1/claims", json=body, headers=keys.brand), 409, "claim-exists")

    revocation = revocation_body(
        w3, deployment, accounts.brand, eip712.revoke_claim, "ProvenanceRegistry", claim["claim_id"]
    )
    r = client.post(
        f"/v1/claims/{claim['claim_id']}/revocation", json=revocation, headers=keys.brand
    )
    assert r.status_code == 200, r.text
    assert r.json()["revoked_tx"] is not None
    assert provenance.claim(claim_id).revoked
    again = client.post(
        f"/v1/claims/{claim['claim_id']}/revocation", json=revocation, headers=keys.brand
    )
    problem(again, 409, "claim-revoked")


def test_a_claim_valid_past_2038_is_stored(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    """``valid_until`` is a uint64 on chain; PostgreSQL's INTEGER column ended in January 2038.
    One no database column holds is refused before any gas is spent."""
    register_brand(client, keys, accounts.brand.address)
    product = register_product(client, keys, w3, deployment, accounts.brand)
    too_late = claim_body(w3, deployment, accounts.brand, product["product_id"], valid_until=2**63)
    before = RelayerSnapshot.take(w3, accounts)
    problem(client.post("/v1/claims", json=too_late, headers=keys.brand), 422, "validation-failed")
    assert RelayerSnapshot.take(w3, accounts) == before
    year_2106 = 2**32 + 1
    body = claim_body(w3, deployment, accounts.brand, product["product_id"], valid_until=year_2106)
    r = client.post("/v1/claims", json=body, headers=keys.brand)
    assert r.status_code == 201, r.text
    assert r.json()["valid_until"] == year_2106
    assert client.get(f"/v1/claims/{r.json()['claim_id']}").json() == r.json()


@pytest.mark.parametrize(
    "path", ["/v1/brands", "/v1/certifiers", "/v1/products", "/v1/anchors", "/v1/endorsements"]
)
def test_listing_offsets_past_64_bits_are_refused(client: TestClient, path: str) -> None:
    """Found by the fuzzer: an offset the database cannot take was a 500."""
    problem(client.get(path, params={"offset": 2**63}), 422, "validation-failed")
    r = client.get(path, params={"offset": 2**63 - 1})
    assert (r.status_code, r.json()) == (200, [])


def test_a_brand_key_cannot_touch_another_brands_product_or_claim(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    register_brand(client, keys, accounts.brand.address)
    register_brand(client, keys, accounts.stranger.address, "Other Co.")
    product = register_product(client, keys, w3, deployment, accounts.brand)
    claim = client.post(
        "/v1/claims",
        json=claim_body(w3, deployment, accounts.brand, product["product_id"]),
        headers=keys.brand,
    ).json()
    before = RelayerSnapshot.take(w3, accounts)

    # brand2 (the stranger) claims about the brand's product in its own name: as if unknown.
    own = claim_body(w3, deployment, accounts.stranger, product["product_id"], claim_type="batch")
    problem(client.post("/v1/claims", json=own, headers=keys.brand2), 404, "product-not-found")
    # ... or in the brand's name: not its key's brand.
    theirs = claim_body(w3, deployment, accounts.brand, product["product_id"], claim_type="batch")
    problem(client.post("/v1/claims", json=theirs, headers=keys.brand2), 403, "forbidden")
    problem(client.post("/v1/claims", json=theirs, headers=keys.certifier), 403, "forbidden")
    problem(client.post("/v1/claims", json=theirs), 401, "unauthenticated")
    # Revoking the brand's claim: unknown to brand2 with its own signature, forbidden otherwise.
    url = f"/v1/claims/{claim['claim_id']}/revocation"
    mine = revocation_body(
        w3,
        deployment,
        accounts.stranger,
        eip712.revoke_claim,
        "ProvenanceRegistry",
        claim["claim_id"],
    )
    problem(client.post(url, json=mine, headers=keys.brand2), 404, "claim-not-found")
    brands = revocation_body(
        w3, deployment, accounts.brand, eip712.revoke_claim, "ProvenanceRegistry", claim["claim_id"]
    )
    problem(client.post(url, json=brands, headers=keys.brand2), 403, "forbidden")
    # A claim signed by another key for the brand's own product.
    forged = claim_body(
        w3,
        deployment,
        accounts.stranger,
        product["product_id"],
        issuer=accounts.brand.address,
        claim_type="batch",
    )
    problem(client.post("/v1/claims", json=forged, headers=keys.brand), 422, "invalid-signature")

    assert RelayerSnapshot.take(w3, accounts) == before
    assert [c["claim_id"] for c in client.get(f"/v1/products/{GTIN}/claims").json()] == [
        claim["claim_id"]
    ]
    assert not deployment.provenance(w3).claim(bytes.fromhex(claim["claim_id"][2:])).revoked


def test_a_claim_written_by_a_lost_attempt_is_adopted(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    register_brand(client, keys, accounts.brand.address)
    product = register_product(client, keys, w3, deployment, accounts.brand)
    body = claim_body(w3, deployment, accounts.brand, product["product_id"])
    claim = ClaimInput(
        bytes.fromhex(body["product_id"][2:]),
        label_hash(body["claim_type"]),
        bytes.fromhex(body["content_hash"][2:]),
        body["uri"],
        body["valid_until"],
    )
    sent = deployment.provenance(w3, relayer_for(w3, accounts.relayer)).add_claim_by_sig(
        accounts.brand.address,
        claim,
        body["nonce"],
        body["deadline"],
        bytes.fromhex(body["signature"][2:]),
    )
    before = RelayerSnapshot.take(w3, accounts)
    r = client.post("/v1/claims", json=body, headers=keys.brand)
    assert r.status_code == 201, r.text
    assert r.json()["claim_id"] == hx(sent.value)
    assert (r.json()["tx_hash"], r.json()["block_number"]) == (sent.tx_hash, sent.block_number)
    assert RelayerSnapshot.take(w3, accounts) == before
    problem(client.post("/v1/claims", json=body, headers=keys.brand), 409, "claim-exists")


# ----------------------------------------------------------------------------- attestations


def test_a_certifier_attests_and_revokes(
    client: TestClient, keys: Keys, accounts: Accounts, w3: Web3, deployment: Deployment
) -> None:
    register_brand(client, keys, accounts.brand.address)
    register_certifier(client, keys, accounts.certifier.address)
    product = register_product(client, keys, w3, deployment, accounts.brand)
    claim = client.post(
        "/v1/claims",
        json=claim_body(w3, deployment, accounts.brand, product["product_id"]),
        headers=keys.brand,
    ).json()
    provenance = deployment.provenance(w3)
    certifier = accounts.certifier

    before = RelayerSnapshot.take(w3, accounts)
    forged = attestation_body(
        w3, deployment, certifier.address, claim["claim_id"], signer=accounts.stranger
    )
    problem(
        client.post("/v1/attestations", json=forged, headers=keys.certifier),
        422,
        "invalid-signature",
    )
    body = attestation_body(w3, deployment, certifier.address, claim["claim_id"], certifier)
    problem(client.post("/v1/attestations", json=body, headers=keys.brand), 403, "forbidden")
    problem(client.post("/v1/attestations", json=body), 401, "unauthenticated")
    assert RelayerSnapshot.take(w3, accounts) == before

    r = client.post("/v1/attestations", json=body, headers=keys.certifier)
    assert r.status_code == 201, r.text
    attestation = r.json()
    raw_id = bytes.fromhex(attestation["attestation_id"][2:])
    assert provenance.attestation(raw_id).certifier == certifier.address
    assert client.get(f"/v1/attestations/{attestation['attestation_id']}").json() == attestation
    assert client.get(f"/v1/attestations?claim_id={claim['claim_id']}").json() == [attestation]
    problem(
        client.post("/v1/attestations", json=body, headers=keys.certifier),
        409,
        "attestation-exists",
    )

    url = f"/v1/attestations/{attestation['attestation_id']}/revocation"
    revocation = revocation_body(
        w3,
        deployment,
        certifier,
        eip712.revoke_attestation,
        "ProvenanceRegistry",
        attestation["attestation_id"],
    )
    problem(client.post(url, json=revocation, headers=keys.brand), 403, "forbidden")
    r = client.post(url, json=revocation, headers=keys.certifier)
    assert r.status_code == 200, r.text
    assert r.json()["revoked_tx"] is not None
    assert provenance.attestation(raw_id).revoked
