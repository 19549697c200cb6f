"""``liveproof demo``: a realistic live-commerce scenario, seeded into a running service.

Everything goes through the service's HTTP API, the way a platform drives it: the admin key
registers a brand, a certifier and two anchors; the brand signs its products and claims; the
certifier signs attestations; the anchors sign endorsements; an ingest key runs a live room with
a few hundred orders and some refunds. Only the API keys are made directly in the service's
database (``api.auth.create_key``, as ``liveproof keys create`` does).

Participants sign with anvil's published dev keys, so the demo refuses any chain that is not a
local devnet. Products, claims, attestations and anchors have fixed contents: a second run (or a
fresh database on the same chain) finds and reuses them; rooms, sessions, endorsements and
orders are new on every run.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from web3 import Web3

from api.auth import create_key
from api.config import Settings
from api.db import make_engine
from api.models import Role
from chain import eip712
from chain.actions import (
    AttestationInput,
    ClaimInput,
    EndorsementTerms,
    ProductInput,
    claims_digest,
    currency_code,
    gtin_is_valid,
    label_hash,
    product_id_of,
)
from chain.clients import AnchorRegistryClient, ProvenanceRegistryClient
from chain.clients.signed import SignedActionsClient
from chain.connect import connect, require_connection
from chain.deploy import load_deployment
from chain.errors import ConfigurationError, LiveProofError, RpcUnavailableError
from chain.hashing import keccak256
from chain.keys import ANVIL_DEV_KEYS, account_from_key, is_local_chain

#: Dev key indexes of the participants. 0 is the devnet's deployer and relayer; 1 and 3 are
#: what ``api.seed`` registers for benchmarks; 6 is the test suite's relayer.
BRAND_KEY, CERTIFIER_KEY, HOST_KEY, GUEST_KEY = 4, 5, 7, 8

BRAND_NAME = "西湖龙井茶业 / West Lake Longjing Tea Co."
CERTIFIER_NAME = "杭州茶叶质量检测中心 / Hangzhou Tea Quality Inspection Center"
HOST_HANDLE = "@longjing-xiaomei"
GUEST_HANDLE = "@tea-critic-wang"
ROOM_ID = "westlake-longjing-live"
ROOM_NAME = "西湖龙井官方直播间 / West Lake Longjing official live room"
CURRENCY = "CNY"
#: Fixed, so that a re-run recomputes the same claim ids and adopts the records on chain.
CLAIMS_VALID_UNTIL = 1_893_456_000  # 2030-01-01
SIGNATURE_TTL = 3_600
ENDORSEMENT_SECONDS = 7 * 86_400
#: The live room's coupon: a few buyers pay less than the promised price.
COUPON = 1_000


def with_check_digit(body: str) -> str:
    """The 14-digit GTIN of a 12-digit GTIN-13 body followed by its GS1 check digit."""
    for digit in "0123456789":
        if gtin_is_valid(body + digit):
            return (body + digit).zfill(14)
    raise ConfigurationError(f"no check digit fits {body!r}")  # pragma: no cover


@dataclass(frozen=True)
class DemoProduct:
    """A product of the demo brand, with the claims the brand makes about it."""

    gtin: str
    name: str
    slug: str
    price: int
    claims: dict[str, dict[str, str]]


_ORIGIN = {
    "region": "西湖龙井茶一级产区 / West Lake Longjing first-grade protected zone",
    "place": "龙井村, 西湖区, 杭州, 浙江 / Longjing village, Xihu district, Hangzhou, Zhejiang",
    "geographical_indication": "GB/T 18650-2008",
}
PRODUCTS = (
    DemoProduct(
        gtin=with_check_digit("693725100001"),
        name="西湖龙井 明前特级 250 g / West Lake Longjing, pre-Qingming special grade, 250 g",
        slug="mingqian-special-250g",
        price=12_800,
        claims={
            "origin": _ORIGIN,
            "batch": {
                "batch": "LJ-2026-MQ-017",
                "picked": "2026-03-28",
                "pan_fired": "2026-03-29",
                "tea_master": "陈师傅 / Master Chen",
            },
            "organic-certification": {
                "standard": "GB/T 19630-2019 有机产品 / organic products",
                "certificate": "OC-330106-2026-0042",
                "valid_until": "2029-12-31",
            },
        },
    ),
    DemoProduct(
        gtin=with_check_digit("693725100002"),
        name="西湖龙井 雨前一级 500 g / West Lake Longjing, pre-Grain-Rain first grade, 500 g",
        slug="yuqian-first-500g",
        price=19_800,
        claims={
            "origin": _ORIGIN,
            "batch": {"batch": "LJ-2026-YQ-031", "picked": "2026-04-12"},
        },
    ),
    DemoProduct(
        gtin=with_check_digit("693725100003"),
        name="龙井礼盒 青瓷罐 2 x 125 g / Longjing gift set, two celadon tins of 125 g",
        slug="gift-set-celadon",
        price=16_800,
        claims={"origin": _ORIGIN},
    ),
)
#: The certifier attests these claims of the first product.
ATTESTED = ("organic-certification", "origin")


class DemoError(LiveProofError):
    """The service refused a step of the demo, or did not commit its receipts in time."""


def _hash_document(document: dict[str, Any]) -> bytes:
    """keccak256 of a document's canonical JSON: what a claim's content hash commits to."""
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return keccak256(text.encode("utf-8"))


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


# ------------------------------------------------------------------------------- the API


class DemoApi:
    """The service's HTTP API; refused requests become :class:`DemoError`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=120)

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send a request; reads and idempotent POSTs are retried after a dropped connection,
        and any request refused by the rate limit (429) after its ``Retry-After``."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        retryable = method == "GET" or idempotency_key is not None
        for attempt in range(6):
            try:
                response = self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                if not retryable or attempt >= 2:
                    raise DemoError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
                time.sleep(0.5)
                continue
            if response.status_code != 429 or attempt == 5:
                return response
            # Refused by the rate limit before any work: safe to send again, later.
            time.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def expect(self, response: httpx.Response, *statuses: int) -> Any:
        """The JSON body when the status is one of ``statuses``, else :class:`DemoError`."""
        if response.status_code in statuses:
            return response.json()
        try:
            problem = response.json()
            why = f"{problem.get('title')}: {problem.get('detail')}"
        except ValueError:
            why = response.text[:200]
        request = response.request
        raise DemoError(
            f"{request.method} {request.url.path} answered {response.status_code}: {why}"
        )

    def get(self, path: str) -> Any:
        """GET a public resource (200 expected)."""
        return self.expect(self.request("GET", path), 200)

    def ensure(
        self, path: str, existing: str, token: str | None, body: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """The resource at ``existing`` if there is one, else POST ``body()`` to ``path``.

        Returns the resource and whether this call created it. ``body`` is only built (and
        signed) when it is needed, so a re-run spends no nonces."""
        found = self.request("GET", existing)
        if found.status_code == 200:
            return found.json(), False
        self.expect(found, 404)
        created = self.request("POST", path, token=token, body=body())
        if created.status_code == 409:  # made meanwhile by someone else: take it
            return self.get(existing), False
        return self.expect(created, 201), True

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def check_service(api: DemoApi) -> None:
    """Raise unless the API answers ``/readyz`` with ready (exit 2: unreachable input)."""
    try:
        ready = api.http.get("/readyz")
    except httpx.TransportError as exc:
        raise RpcUnavailableError(f"no LiveProof API answers at {api.base_url}: {exc}") from None
    if ready.status_code != 200:
        detail = ready.json().get("detail", ready.text) if ready.content else ready.status_code
        raise ConfigurationError(f"the API at {api.base_url} is not ready: {detail}")


# ----------------------------------------------------------------------------- the chain


@dataclass(frozen=True)
class DemoChain:
    """Read access to the devnet: EIP-712 domains, nonces and the chain's clock."""

    w3: Web3
    chain_id: int
    provenance: ProvenanceRegistryClient
    anchors: AnchorRegistryClient
    ledger: str

    def now(self) -> int:
        """The later of wall clock and chain head: what the next block will at least carry."""
        return max(int(self.w3.eth.get_block("latest")["timestamp"]), int(time.time()))

    def signed(
        self,
        registry: SignedActionsClient,
        signer: LocalAccount,
        typed: Callable[[eip712.Domain, int, int], dict[str, Any]],
    ) -> dict[str, Any]:
        """The envelope of a signed action: ``signer``'s next nonce, a deadline, the signature."""
        nonce = registry.nonce(signer.address)
        deadline = self.now() + SIGNATURE_TTL
        signature = eip712.sign(signer, typed(registry.domain(), nonce, deadline))
        return {"nonce": nonce, "deadline": deadline, "signature": _hex(signature)}


def connect_devnet(settings: Settings) -> DemoChain:
    """Connect to ``LIVEPROOF_RPC_URL``; refuse a chain that is not a local devnet."""
    w3 = connect(settings.rpc_url)
    chain_id = require_connection(w3)
    if not is_local_chain(chain_id):
        raise ConfigurationError(
            f"refusing to run the demo on chain {chain_id}: its participants sign with anvil's "
            "published dev keys, so it runs on a local devnet only (chain id 31337 or 1337)"
        )
    deployment = load_deployment(chain_id, settings.deployments_dir)
    return DemoChain(
        w3=w3,
        chain_id=chain_id,
        provenance=deployment.provenance(w3),
        anchors=deployment.anchors(w3),
        ledger=deployment.address("SaleLedger"),
    )


def check_same_chain(api: DemoApi, chain: DemoChain) -> None:
    """Refuse when the service's committed batches are on another chain or ledger than ours."""
    for batch in api.get("/v1/batches?limit=50"):
        if batch.get("chain_id") is None:
            continue
        theirs = (int(batch["chain_id"]), str(batch["ledger"]).lower())
        if theirs != (chain.chain_id, chain.ledger.lower()):
            raise ConfigurationError(
                f"the API at {api.base_url} commits to chain {theirs[0]} ledger {theirs[1]}, "
                f"but LIVEPROOF_RPC_URL is chain {chain.chain_id} with ledger {chain.ledger}: "
                "run the demo with the service's LIVEPROOF_* settings"
            )
        return


# --------------------------------------------------------------------------- the results


@dataclass
class SessionSummary:
    """One live session of the demo."""

    session_id: str
    host: str
    orders: int = 0
    units: int = 0
    refunds: int = 0
    displayed_sales: int = 0


@dataclass
class ShownReceipt:
    """A receipt the demo points a shopper at."""

    code: str
    note: str
    batch_root: str | None = None


@dataclass
class DemoResult:
    """What the demo made, and where a shopper looks at it."""

    api_url: str
    chain_id: int
    room_id: str
    gtins: list[str]
    endorsements: dict[str, str]
    sessions: list[SessionSummary]
    receipts: list[ShownReceipt]

    @property
    def orders(self) -> int:
        """Sale receipts written."""
        return sum(s.orders for s in self.sessions)

    @property
    def refunds(self) -> int:
        """Refund receipts written."""
        return sum(s.refunds for s in self.sessions)

    def shopper_urls(self) -> list[tuple[str, str]]:
        """(what, URL) pairs a shopper, anchor or auditor would open."""
        base = self.api_url
        urls = [("product page", f"{base}/01/{g}") for g in self.gtins[:1]]
        urls += [("anchor page", f"{base}/a/{h}") for h in (HOST_HANDLE, GUEST_HANDLE)]
        urls += [("product", f"{base}/v1/products/{g}") for g in self.gtins[:1]]
        urls.append(("claims", f"{base}/v1/products/{self.gtins[0]}/claims"))
        for receipt in self.receipts:
            urls.append((f"receipt page ({receipt.note})", f"{base}/r/{receipt.code}"))
            urls.append((f"receipt ({receipt.note})", f"{base}/v1/receipts/{receipt.code}"))
            urls.append(("proof bundle", f"{base}/v1/receipts/{receipt.code}/proof"))
        roots = dict.fromkeys(r.batch_root for r in self.receipts if r.batch_root)
        urls += [("batch manifest", f"{base}/v1/batches/{root}") for root in roots]
        for what, endorsement_id in self.endorsements.items():
            urls.append((f"endorsement ({what})", f"{base}/v1/endorsements/{endorsement_id}"))
        urls += [("live session", f"{base}/v1/sessions/{s.session_id}") for s in self.sessions]
        return urls


# ------------------------------------------------------------------------------ the steps


@dataclass(frozen=True)
class Cast:
    """The participants' dev accounts and API keys."""

    brand: LocalAccount
    certifier: LocalAccount
    host: LocalAccount
    guest: LocalAccount
    admin_token: str
    ingest_token: str
    brand_token: str
    certifier_token: str


def create_cast(database_url: str) -> Cast:
    """The participants, with fresh API keys made in the service's database."""
    brand, certifier, host, guest = (
        account_from_key(ANVIL_DEV_KEYS[i]) for i in (BRAND_KEY, CERTIFIER_KEY, HOST_KEY, GUEST_KEY)
    )
    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            tokens = [
                create_key(session, role=role, subject=subject, label="liveproof demo")[1]
                for role, subject in (
                    (Role.ADMIN, None),
                    (Role.INGEST, None),
                    (Role.BRAND, brand.address),
                    (Role.CERTIFIER, certifier.address),
                )
            ]
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"cannot create API keys in LIVEPROOF_DATABASE_URL ({type(exc).__name__}): "
            "point it at the service's database, migrated with `liveproof db upgrade`"
        ) from None
    finally:
        engine.dispose()
    return Cast(brand, certifier, host, guest, *tokens)


def register_catalogue(
    api: DemoApi, chain: DemoChain, cast: Cast, say: Callable[[str], None]
) -> dict[str, list[str]]:
    """Brand, certifier, anchors, products, claims and attestations; returns each product's
    claim ids by GTIN. Existing records are reused."""

    def noted(what: str, made: bool) -> None:
        say(f"  {what}" + ("" if made else " (already registered)"))

    brand = cast.brand.address
    _, made = api.ensure(
        "/v1/brands", f"/v1/brands/{brand}", cast.admin_token,
        lambda: {"address": brand, "name": BRAND_NAME},
    )  # fmt: skip
    noted(f"brand     {BRAND_NAME} {brand}", made)
    certifier = cast.certifier.address
    _, made = api.ensure(
        "/v1/certifiers", f"/v1/certifiers/{certifier}", cast.admin_token,
        lambda: {"address": certifier, "name": CERTIFIER_NAME},
    )  # fmt: skip
    noted(f"certifier {CERTIFIER_NAME} {certifier}", made)
    for account, handle in ((cast.host, HOST_HANDLE), (cast.guest, GUEST_HANDLE)):
        noted(f"anchor    {handle} {account.address}", _anchor(api, cast, account, handle))
    claims: dict[str, list[str]] = {}
    for product in PRODUCTS:
        claims[product.gtin] = _product_with_claims(api, chain, cast, product, noted)
    organic_claims = claims[PRODUCTS[0].gtin]
    for claim_type in ATTESTED:
        claim_id = organic_claims[list(PRODUCTS[0].claims).index(claim_type)]
        _attest(api, chain, cast, claim_type, claim_id, noted)
    return claims


def _product_with_claims(
    api: DemoApi,
    chain: DemoChain,
    cast: Cast,
    product: DemoProduct,
    noted: Callable[[str, bool], None],
) -> list[str]:
    brand = cast.brand
    uri = f"https://longjing.example/p/{product.slug}"
    metadata = _hash_document({"gtin": product.gtin, "name": product.name, "uri": uri})
    entry = ProductInput(int(product.gtin), product.name, uri, metadata)
    row, made = api.ensure(
        "/v1/products", f"/v1/products/{product.gtin}", cast.brand_token,
        lambda: {
            "brand": brand.address, "gtin": product.gtin, "name": product.name, "uri": uri,
            "metadata_hash": _hex(metadata),
            **chain.signed(
                chain.provenance, brand,
                lambda d, n, dl: eip712.register_product(d, brand.address, entry, n, dl),
            ),
        },
    )  # fmt: skip
    if row["brand"] != brand.address:
        raise DemoError(f"GTIN {product.gtin} is registered to {row['brand']}, not the demo brand")
    noted(f"product   {product.gtin} {product.name}", made)
    claim_ids = []
    for claim_type, document in product.claims.items():
        claim_id, made = _claim(api, chain, cast, product, claim_type, document)
        noted(f"claim     {claim_type} of {product.gtin}", made)
        claim_ids.append(claim_id)
    return claim_ids


def _anchor(api: DemoApi, cast: Cast, account: LocalAccount, handle: str) -> bool:
    row, made = api.ensure(
        "/v1/anchors", f"/v1/anchors/{handle}", cast.admin_token,
        lambda: {"address": account.address, "handle": handle},
    )  # fmt: skip
    if row["address"] != account.address or row.get("removed_tx"):
        raise DemoError(f"the handle {handle} is {row['address']}'s, not the demo anchor's")
    return made


def _claim(
    api: DemoApi,
    chain: DemoChain,
    cast: Cast,
    product: DemoProduct,
    claim_type: str,
    document: dict[str, str],
) -> tuple[str, bool]:
    brand = cast.brand
    content = _hash_document(document)
    uri = f"https://longjing.example/claims/{product.slug}/{claim_type}.json"
    product_id = product_id_of(int(product.gtin))
    claim = ClaimInput(product_id, label_hash(claim_type), content, uri, CLAIMS_VALID_UNTIL)
    claim_id = _hex(claim.claim_id())
    _, made = api.ensure(
        "/v1/claims", f"/v1/claims/{claim_id}", cast.brand_token,
        lambda: {
            "issuer": brand.address, "product_id": _hex(product_id), "claim_type": claim_type,
            "content_hash": _hex(content), "uri": uri, "valid_until": CLAIMS_VALID_UNTIL,
            **chain.signed(
                chain.provenance, brand,
                lambda d, n, dl: eip712.product_claim(d, brand.address, claim, n, dl),
            ),
        },
    )  # fmt: skip
    return claim_id, made


def _attest(
    api: DemoApi,
    chain: DemoChain,
    cast: Cast,
    claim_type: str,
    claim_id: str,
    noted: Callable[[str, bool], None],
) -> None:
    certifier = cast.certifier
    report = _hash_document({"claim": claim_id, "report": f"HZTQ-2026-{claim_type}"})
    uri = f"https://lab.example/reports/HZTQ-2026-{claim_type}.pdf"
    attestation = AttestationInput(bytes.fromhex(claim_id[2:]), report, uri)
    attestation_id = _hex(attestation.attestation_id(certifier.address))
    _, made = api.ensure(
        "/v1/attestations", f"/v1/attestations/{attestation_id}", cast.certifier_token,
        lambda: {
            "certifier": certifier.address, "claim_id": claim_id, "report_hash": _hex(report),
            "uri": uri,
            **chain.signed(
                chain.provenance, certifier,
                lambda d, n, dl: eip712.attestation(d, certifier.address, attestation, n, dl),
            ),
        },
    )  # fmt: skip
    noted(f"attested  {claim_type} claim of {PRODUCTS[0].gtin} by the certifier", made)


def fresh_session_id(chain: DemoChain, base: str) -> str:
    """``base``, or ``base-2``, ``-3`` ...: the first id no session on chain has used (a
    database started afresh on the same chain would otherwise meet its old sessions)."""
    for n in range(1, 1_000):
        session_id = base if n == 1 else f"{base}-{n}"
        if chain.anchors.session(label_hash(session_id)).opened_at == 0:
            return session_id
    raise DemoError(f"every session id {base}-2 ... -999 is taken")  # pragma: no cover


def create_room(api: DemoApi, cast: Cast) -> str:
    """A new live room: ``westlake-longjing-live``, or ``...-2``, ``-3`` when taken."""
    for n in range(1, 1_000):
        room_id = ROOM_ID if n == 1 else f"{ROOM_ID}-{n}"
        created = api.request(
            "POST", "/v1/rooms", token=cast.ingest_token,
            body={"room_id": room_id, "name": ROOM_NAME},
        )  # fmt: skip
        if created.status_code != 409:
            api.expect(created, 201)
            return room_id
    raise DemoError(f"every room id {ROOM_ID}-2 ... -999 is taken")  # pragma: no cover


def endorse(
    api: DemoApi,
    chain: DemoChain,
    anchor: LocalAccount,
    product: DemoProduct,
    claim_ids: list[str],
    room_id: str,
    *,
    sponsored: bool,
    commission_bps: int,
) -> dict[str, Any]:
    """The anchor signs an endorsement of ``product`` in ``room_id`` at its demo price."""
    now = chain.now()
    terms = EndorsementTerms(
        product_id_of(int(product.gtin)),
        claims_digest([bytes.fromhex(c[2:]) for c in claim_ids]),
        label_hash(room_id),
        sponsored,
        commission_bps,
        product.price,
        currency_code(CURRENCY),
        now - 60,
        now + ENDORSEMENT_SECONDS,
    )
    body = {
        "anchor": anchor.address,
        "product_id": _hex(terms.product_id),
        "claims_digest": _hex(terms.claims_digest),
        "room_id": room_id,
        "sponsored": sponsored,
        "commission_bps": commission_bps,
        "unit_price": product.price,
        "currency": CURRENCY,
        "valid_from": terms.valid_from,
        "valid_until": terms.valid_until,
        **chain.signed(
            chain.anchors,
            anchor,
            lambda d, n, dl: eip712.endorsement(d, anchor.address, terms, n, dl),
        ),
    }
    created: dict[str, Any] = api.expect(api.request("POST", "/v1/endorsements", body=body), 201)
    return created


@dataclass(frozen=True)
class PlannedOrder:
    """One order of the demo: what, how many, at which price, under which endorsement."""

    product: DemoProduct
    quantity: int
    unit_price: int
    endorsement_id: str | None
    note: str


def plan_orders(
    count: int, rng: random.Random, lines: list[tuple[DemoProduct, str | None, int]]
) -> list[PlannedOrder]:
    """``count`` orders over ``lines`` (product, endorsement, weight): mostly one unit at the
    promised price, a few with the room's coupon."""
    weights = [w for _, _, w in lines]
    planned = []
    for _ in range(count):
        product, endorsement_id, _ = rng.choices(lines, weights)[0]
        quantity = rng.choices((1, 2, 3, 5), (70, 20, 8, 2))[0]
        coupon = rng.random() < 0.06
        price = product.price - COUPON if coupon else product.price
        note = "coupon price" if coupon else "at the promised price"
        if endorsement_id is None:
            note = "no endorsement, list price"
        planned.append(PlannedOrder(product, quantity, price, endorsement_id, note))
    return planned


def _order_body(room_id: str, session_id: str, index: int, order: PlannedOrder) -> dict[str, Any]:
    body: dict[str, Any] = {
        "room_id": room_id,
        "session_id": session_id,
        "gtin": order.product.gtin,
        "quantity": order.quantity,
        "unit_price": order.unit_price,
        "currency": CURRENCY,
        "buyer_ref": f"buyer-{index:05d}",
        "order_ref": f"SO-{session_id}-{index:05d}",
    }
    if order.endorsement_id is not None:
        body["endorsement_id"] = order.endorsement_id
    return body


def run_session(
    api: DemoApi,
    cast: Cast,
    room_id: str,
    session_id: str,
    host: LocalAccount,
    orders: list[PlannedOrder],
    *,
    singles: int,
    immediate: bool,
    refund_every: int | None,
    endorsement_note: str,
) -> tuple[SessionSummary, list[ShownReceipt], list[str]]:
    """Open a session, post its orders (some one by one, the rest in bulk), refund a few,
    close it with the net units sold (refunds taken off) as the displayed count. Returns the
    summary, receipts worth showing and every receipt code."""
    token = cast.ingest_token
    api.expect(
        api.request(
            "POST", "/v1/sessions", token=token,
            body={"session_id": session_id, "room_id": room_id, "anchor": host.address},
        ),
        201,
    )  # fmt: skip
    summary = SessionSummary(session_id=session_id, host=host.address)
    bodies = [_order_body(room_id, session_id, i + 1, o) for i, o in enumerate(orders)]
    if immediate and bodies:
        bodies[0]["immediate"] = True
    accepted: list[dict[str, Any]] = []
    for body in bodies[:singles]:
        # One Idempotency-Key per order: a retry after a dropped answer gets the same receipt.
        response = api.request(
            "POST", "/v1/orders", token=token, body=body, idempotency_key=str(uuid.uuid4())
        )
        accepted.append(api.expect(response, 201))
    for start in range(singles, len(bodies), 100):
        chunk = {"orders": bodies[start : start + 100]}
        response = api.request(
            "POST", "/v1/orders/bulk", token=token, body=chunk, idempotency_key=str(uuid.uuid4())
        )
        accepted += api.expect(response, 201)["receipts"]
    summary.orders = len(accepted)
    summary.units = sum(o.quantity for o in orders)
    shown: list[ShownReceipt] = []
    if immediate and accepted:
        shown.append(ShownReceipt(accepted[0]["receipt_code"], "sale recorded on its own, at once"))
    typical = next(
        (i for i, o in enumerate(orders) if i > 0 and o.note == "at the promised price"), None
    )
    if typical is not None:
        note = f"sale at the promised price, {endorsement_note}"
        shown.append(ShownReceipt(accepted[typical]["receipt_code"], note))
    codes = [a["receipt_code"] for a in accepted]
    every = refund_every or len(accepted) + 1
    refunded_units = 0
    for index in range(every - 1, len(accepted), every):
        order = orders[index]
        # Mostly whole refunds; a multi-unit order gets one unit back.
        quantity = 1 if order.quantity > 1 else order.quantity
        refund = api.expect(
            api.request(
                "POST", "/v1/refunds", token=token,
                body={"receipt_code": accepted[index]["receipt_code"], "quantity": quantity},
                idempotency_key=str(uuid.uuid4()),
            ),
            201,
        )  # fmt: skip
        codes.append(refund["receipt_code"])
        refunded_units += quantity
        if summary.refunds == 0:
            shown.append(
                ShownReceipt(
                    refund["receipt_code"],
                    f"refund of {quantity} unit{'s' if quantity > 1 else ''}",
                )
            )
        summary.refunds += 1
    summary.displayed_sales = summary.units - refunded_units
    recording = keccak256(f"recording of {session_id}".encode())
    closed = api.expect(
        api.request(
            "POST", f"/v1/sessions/{session_id}/close", token=token,
            body={"recording_hash": _hex(recording), "displayed_sales": summary.displayed_sales},
        ),
        200,
    )  # fmt: skip
    if closed.get("closed_at") is None:
        raise DemoError(f"session {session_id} did not close")
    return summary, shown, codes


def wait_committed(api: DemoApi, codes: list[str], timeout: float) -> None:
    """Block until every receipt in ``codes`` is committed on chain, or raise DemoError."""
    deadline = time.monotonic() + timeout
    remaining = list(codes)
    while remaining:
        # Batches are sealed in order of arrival: while the newest is pending, so are others.
        if api.get(f"/v1/receipts/{remaining[-1]}")["status"] == "committed":
            remaining = [
                c for c in remaining if api.get(f"/v1/receipts/{c}")["status"] != "committed"
            ]
        if not remaining:
            return
        if time.monotonic() > deadline:
            raise DemoError(
                f"{len(remaining)} of {len(codes)} receipts are not committed after {timeout:g} s; "
                "is the committer running (LIVEPROOF_RUN_COMMITTER) and the chain up?"
            )
        time.sleep(0.25)


def run_demo(
    api_url: str,
    *,
    orders: int = 300,
    immediate: bool = True,
    timeout: float = 180,
    settings: Settings | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Seed the demo into the service at ``api_url`` and wait until its receipts are on chain.

    ``settings`` (default: the environment's) name the service's database, where the API keys
    are created, and the chain the participants sign for."""
    if orders < 10:
        raise ConfigurationError("the demo needs at least 10 orders")
    settings = settings or Settings()
    api = DemoApi(api_url)
    try:
        chain = connect_devnet(settings)
        check_service(api)
        check_same_chain(api, chain)
        say(f"LiveProof demo: {api.base_url} on chain {chain.chain_id}")
        cast = create_cast(settings.database_url)
        claims = register_catalogue(api, chain, cast, say)
        result = DemoResult(
            api_url=api.base_url,
            chain_id=chain.chain_id,
            room_id=create_room(api, cast),
            gtins=[p.gtin for p in PRODUCTS],
            endorsements={},
            sessions=[],
            receipts=[],
        )
        say(f"  room      {result.room_id}")
        codes = run_live_room(api, chain, cast, claims, result, orders, immediate, say)
        say(f"  waiting until all {len(codes)} receipts are committed on chain ...")
        wait_committed(api, codes, timeout)
        for receipt in result.receipts:
            receipt.batch_root = api.get(f"/v1/receipts/{receipt.code}")["batch_root"]
        return result
    finally:
        api.close()


def run_live_room(
    api: DemoApi,
    chain: DemoChain,
    cast: Cast,
    claims: dict[str, list[str]],
    result: DemoResult,
    orders: int,
    immediate: bool,
    say: Callable[[str], None],
) -> list[str]:
    """Both anchors endorse a product in the room, then each hosts a session: the host's
    (sponsored) takes most orders and some refunds, the guest's (not sponsored) the rest.
    Fills in ``result``; returns every receipt code written."""
    main, second, gift = PRODUCTS
    room_id = result.room_id
    sponsored = endorse(
        api, chain, cast.host, main, claims[main.gtin], room_id,
        sponsored=True, commission_bps=1_500,
    )["endorsement_id"]  # fmt: skip
    say(f"  endorsed  {main.gtin} by {HOST_HANDLE}: sponsored, 15% commission, "
        f"promised ¥{main.price / 100:.2f}")  # fmt: skip
    independent = endorse(
        api, chain, cast.guest, second, claims[second.gtin], room_id,
        sponsored=False, commission_bps=0,
    )["endorsement_id"]  # fmt: skip
    say(f"  endorsed  {second.gtin} by {GUEST_HANDLE}: not sponsored, "
        f"promised ¥{second.price / 100:.2f}")  # fmt: skip
    result.endorsements = {"sponsored": sponsored, "not sponsored": independent}
    rng = random.Random(room_id)
    guest_count = max(2, orders // 6)
    host_orders = plan_orders(orders - guest_count, rng, [(main, sponsored, 88), (gift, None, 12)])
    guest_orders = plan_orders(guest_count, rng, [(second, independent, 1)])
    # About one order in 35 comes back; at least a few in a small demo.
    host_refunds = max(3, min(35, len(host_orders) // 3))
    day = time.strftime("%Y%m%d", time.gmtime(chain.now()))
    codes: list[str] = []
    for part, host, planned, singles, refund_every, kind in (
        ("evening", cast.host, host_orders, 10, host_refunds, "sponsored endorsement"),
        ("guest", cast.guest, guest_orders, 2, None, "unsponsored endorsement"),
    ):
        session_id = fresh_session_id(chain, f"{room_id}-{day}-{part}")
        summary, receipts, made = run_session(
            api, cast, room_id, session_id, host, planned,
            singles=min(singles, len(planned)),
            immediate=immediate and host is cast.host,
            refund_every=refund_every,
            endorsement_note=kind,
        )  # fmt: skip
        say(f"  session   {session_id}: {summary.orders} orders, {summary.refunds} refunds, "
            f"closed showing {summary.displayed_sales} sold")  # fmt: skip
        result.sessions.append(summary)
        result.receipts += receipts
        codes += made
    return codes


def print_result(result: DemoResult, say: Callable[[str], None] = print) -> None:
    """The demo's closing summary: counts, then one URL per line."""
    say(
        f"committed {result.orders} orders and {result.refunds} refunds on chain "
        f"{result.chain_id}. Open:"
    )
    for what, url in result.shopper_urls():
        say(url_line(what, url))


def url_line(what: str, url: str) -> str:
    """One aligned line: label, URL, and the label's note in brackets after the URL."""
    label, _, note = what.partition(" (")
    return f"  {label:<16} {url}" + (f"  ({note}" if note else "")
