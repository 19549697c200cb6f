"""``liveproof sign endorsement|revocation|claim``: sign with a keystore, submit to the API.

The participant's key never leaves this process: the command reads the chain's EIP-712
domains and the signer's nonce from the API (``/v1/chain``), signs locally with eth-account
and posts the signed action. The API checks the signature again and relays it on-chain.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from eth_account.signers.local import LocalAccount

from chain import eip712
from chain.actions import (
    ClaimInput,
    EndorsementTerms,
    claims_digest,
    currency_code,
    label_hash,
)
from chain.errors import ConfigurationError
from chain.hashing import keccak256
from chain.keys import KEYSTORE_PASSWORD_ENV, account_from_keystore
from scripts.output import EXIT_FAILED, EXIT_USAGE, console, die, fail, ok

sign_app = typer.Typer(
    help="Sign a participant action with a keystore file and submit it to the API.",
    no_args_is_help=True,
)

API_ENV = "LIVEPROOF_API_URL"
API_KEY_ENV = "LIVEPROOF_API_KEY"

Keystore = Annotated[
    Path, typer.Option("--keystore", help="The signer's eth-account JSON keystore file")
]
Api = Annotated[
    str | None, typer.Option("--api", help=f"The API's base URL (default: ${API_ENV} or :8000)")
]
DeadlineMinutes = Annotated[
    int, typer.Option("--deadline-minutes", min=1, help="The signature is void after this")
]


def _account(keystore: Path) -> LocalAccount:
    password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if password is None:
        password = typer.prompt(f"Password for {keystore}", hide_input=True)
    try:
        return account_from_keystore(keystore, password)
    except ConfigurationError as exc:
        die(str(exc), EXIT_USAGE)


def _client(api: str | None, api_key: str | None = None) -> httpx.Client:
    base = api or os.environ.get(API_ENV) or "http://127.0.0.1:8000"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=60)


def _get(client: httpx.Client, path: str) -> Any:
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        die(f"cannot reach the API at {client.base_url}: {exc}", EXIT_USAGE)
    if response.status_code != 200:
        _refused(response, f"GET {path}")
    return response.json()


def _refused(response: httpx.Response, what: str) -> None:
    try:
        problem = response.json()
        why = f"{problem.get('title', '')}: {problem.get('detail', '')} ({problem.get('type', '')})"
    except ValueError:
        why = response.text[:200]
    fail(what, f"{response.status_code} {why}")
    raise typer.Exit(EXIT_FAILED)


def _domain(client: httpx.Client, registry: str) -> eip712.Domain:
    info = _get(client, "/v1/chain")["domains"][registry]
    return eip712.Domain(
        info["name"], info["version"], int(info["chainId"]), info["verifyingContract"]
    )


def _nonce(client: httpx.Client, registry: str, address: str) -> int:
    return int(_get(client, f"/v1/chain/nonces/{address}")[registry])


def _submit(client: httpx.Client, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        response = client.post(path, json=body)
    except httpx.HTTPError as exc:
        die(f"cannot reach the API at {client.base_url}: {exc}", EXIT_USAGE)
    if response.status_code not in (200, 201):
        _refused(response, what)
    result: dict[str, Any] = response.json()
    return result


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _product_id(client: httpx.Client, gtin: str) -> str:
    return str(_get(client, f"/v1/products/{gtin}")["product_id"])


@sign_app.command("endorsement")
def sign_endorsement(
    keystore: Keystore,
    gtin: Annotated[str, typer.Option("--gtin", help="The product's GTIN")],
    room: Annotated[str, typer.Option("--room", help="The platform's room id")],
    price: Annotated[int, typer.Option("--price", min=0, help="Promised unit price, minor units")],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code")] = "CNY",
    sponsored: Annotated[
        bool, typer.Option("--sponsored/--not-sponsored", help="Paid promotion (shown as Ad)")
    ] = False,
    commission_bps: Annotated[
        int, typer.Option("--commission-bps", min=0, max=10_000, help="Commission, basis points")
    ] = 0,
    valid_days: Annotated[int, typer.Option("--valid-days", min=1)] = 7,
    api: Api = None,
    deadline_minutes: DeadlineMinutes = 60,
) -> None:
    """Endorse a product's current claims for a room, with disclosure and a promised price."""
    account = _account(keystore)
    with _client(api) as client:
        product_id = _product_id(client, gtin)
        claims = _get(client, f"/v1/products/{gtin}/claims")
        live = [bytes.fromhex(c["claim_id"][2:]) for c in claims if c.get("revoked_tx") is None]
        now = int(time.time())
        try:
            terms = EndorsementTerms(
                product_id=bytes.fromhex(product_id[2:]),
                claims_digest=claims_digest(live),
                room_id=label_hash(room),
                sponsored=sponsored,
                commission_bps=commission_bps,
                unit_price=price,
                currency=currency_code(currency),
                valid_from=now,
                valid_until=now + valid_days * 86_400,
            )
        except ConfigurationError as exc:
            die(str(exc), EXIT_USAGE)
        domain = _domain(client, "AnchorRegistry")
        nonce = _nonce(client, "AnchorRegistry", account.address)
        deadline = now + deadline_minutes * 60
        signature = eip712.sign(
            account, eip712.endorsement(domain, account.address, terms, nonce, deadline)
        )
        body = {
            "anchor": account.address,
            "product_id": product_id,
            "claims_digest": _hex(terms.claims_digest),
            "room_id": room,
            "sponsored": sponsored,
            "commission_bps": commission_bps,
            "unit_price": price,
            "currency": currency,
            "valid_from": terms.valid_from,
            "valid_until": terms.valid_until,
            "nonce": nonce,
            "deadline": deadline,
            "signature": _hex(signature),
        }
        recorded = _submit(client, "/v1/endorsements", body, "endorsement")
    ok(f"endorsement {recorded['endorsement_id']} recorded in tx {recorded['tx_hash']}")
    console.print(f"  anchor {account.address} endorses {gtin} in room {room}")


@sign_app.command("revocation")
def sign_revocation(
    keystore: Keystore,
    endorsement: Annotated[str, typer.Option("--endorsement", help="The endorsement id (0x…)")],
    api: Api = None,
    deadline_minutes: DeadlineMinutes = 60,
) -> None:
    """Revoke one of the signer's endorsements."""
    account = _account(keystore)
    try:
        endorsement_id = bytes.fromhex(endorsement.removeprefix("0x"))
    except ValueError:
        die("--endorsement must be a 0x-prefixed 32-byte hex id", EXIT_USAGE)
    if len(endorsement_id) != 32:
        die("--endorsement must be a 0x-prefixed 32-byte hex id", EXIT_USAGE)
    with _client(api) as client:
        domain = _domain(client, "AnchorRegistry")
        nonce = _nonce(client, "AnchorRegistry", account.address)
        deadline = int(time.time()) + deadline_minutes * 60
        signature = eip712.sign(
            account,
            eip712.revoke_endorsement(domain, account.address, endorsement_id, nonce, deadline),
        )
        body = {
            "signer": account.address,
            "nonce": nonce,
            "deadline": deadline,
            "signature": _hex(signature),
        }
        path = f"/v1/endorsements/{_hex(endorsement_id)}/revocation"
        recorded = _submit(client, path, body, "revocation")
    ok(f"endorsement {recorded['endorsement_id']} revoked in tx {recorded['revoked_tx']}")


@sign_app.command("claim")
def sign_claim(
    keystore: Keystore,
    gtin: Annotated[str, typer.Option("--gtin", help="The brand's product")],
    claim_type: Annotated[str, typer.Option("--type", help="e.g. origin, batch, certification")],
    content_file: Annotated[
        Path, typer.Option("--content-file", help="The claim's document; its keccak256 is signed")
    ],
    uri: Annotated[str, typer.Option("--uri", help="Where the document is published")] = "",
    valid_days: Annotated[int, typer.Option("--valid-days", min=1)] = 365,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help=f"The brand's API key (default: ${API_KEY_ENV})")
    ] = None,
    api: Api = None,
    deadline_minutes: DeadlineMinutes = 60,
) -> None:
    """Add a claim about one of the brand's products (needs the brand's API key too)."""
    account = _account(keystore)
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        die(f"a claim needs the brand's API key: --api-key or ${API_KEY_ENV}", EXIT_USAGE)
    try:
        content_hash = keccak256(content_file.read_bytes())
    except OSError as exc:
        die(f"cannot read {content_file}: {exc.strerror or exc}", EXIT_USAGE)
    with _client(api, key) as client:
        product_id = _product_id(client, gtin)
        now = int(time.time())
        claim = ClaimInput(
            product_id=bytes.fromhex(product_id[2:]),
            claim_type=label_hash(claim_type),
            content_hash=content_hash,
            uri=uri,
            valid_until=now + valid_days * 86_400,
        )
        domain = _domain(client, "ProvenanceRegistry")
        nonce = _nonce(client, "ProvenanceRegistry", account.address)
        deadline = now + deadline_minutes * 60
        signature = eip712.sign(
            account, eip712.product_claim(domain, account.address, claim, nonce, deadline)
        )
        body = {
            "issuer": account.address,
            "product_id": product_id,
            "claim_type": claim_type,
            "content_hash": _hex(content_hash),
            "uri": uri,
            "valid_until": claim.valid_until,
            "nonce": nonce,
            "deadline": deadline,
            "signature": _hex(signature),
        }
        recorded = _submit(client, "/v1/claims", body, "claim")
    ok(f"claim {recorded['claim_id']} recorded in tx {recorded['tx_hash']}")
