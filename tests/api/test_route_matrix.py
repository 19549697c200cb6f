"""Who may call what, read from the app itself: every route the app serves is listed with the
access it requires (a role's API key, an EIP-712 signature in the body, or nothing), the list is
compared with the declared table below, and every key-protected operation is then attacked with
no key, bad keys and every other role's key. Each refusal must be a problem document that leaks
no secret and no other object's data, and must leave every table and the relayer's nonce and
balance as they were. A new route fails here until someone decides, in ``DECLARED``, who may
call it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlmodel import Session
from starlette.routing import Mount
from web3 import Web3

from api.app import create_app
from api.auth import create_key
from api.config import Settings
from api.db import make_engine
from api.deps import dependants, get_principal, guard_roles
from api.models import Role
from api.models.registry import SignedAction
from chain import eip712
from chain.deploy import Deployment
from tests.api.conftest import Keys, World
from tests.api.test_endorsements import endorsement_body
from tests.api.test_ingest import PROBLEM_JSON, RECORDING, assert_problem
from tests.api.test_orders import order
from tests.api.test_registry import (
    GTIN2,
    RelayerSnapshot,
    attestation_body,
    claim_body,
    product_body,
    revocation_body,
)
from tests.conftest import Accounts

PUBLIC = "public"
SIGNED = "signed"

#: Every route the app serves and who may call it: a role (an API key of that role), SIGNED (no
#: key; the body carries the participant's EIP-712 signature) or PUBLIC. Derived from the app by
#: ``access_of`` and compared whole, so a new route must be added here, deliberately.
DECLARED: dict[str, str] = {
    # ingest: the platform's order feed
    "POST /v1/rooms": "ingest",
    "GET /v1/rooms": "ingest",
    "POST /v1/sessions": "ingest",
    "POST /v1/sessions/{session_id}/close": "ingest",
    "POST /v1/orders": "ingest",
    "POST /v1/orders/bulk": "ingest",
    "POST /v1/refunds": "ingest",
    # admin: registrations, written on chain
    "POST /v1/brands": "admin",
    "POST /v1/certifiers": "admin",
    "POST /v1/anchors": "admin",
    "DELETE /v1/anchors/{address}": "admin",
    # brands and certifiers: their own signed actions, under their own key
    "POST /v1/products": "brand",
    "POST /v1/claims": "brand",
    "POST /v1/claims/{claim_id}/revocation": "brand",
    "POST /v1/attestations": "certifier",
    "POST /v1/attestations/{attestation_id}/revocation": "certifier",
    # anchors: no key, their signature is the authentication
    "POST /v1/endorsements": SIGNED,
    "POST /v1/endorsements/{endorsement_id}/revocation": SIGNED,
    # public reads
    "GET /v1/rooms/{room_id}": PUBLIC,
    "GET /v1/sessions": PUBLIC,
    "GET /v1/sessions/{session_id}": PUBLIC,
    "GET /v1/receipts/{code}": PUBLIC,
    "GET /v1/receipts/{code}/proof": PUBLIC,
    "GET /v1/receipts/{code}/qr.{fmt}": PUBLIC,
    "GET /v1/batches": PUBLIC,
    "GET /v1/batches/{root}": PUBLIC,
    "GET /v1/brands": PUBLIC,
    "GET /v1/brands/{address}": PUBLIC,
    "GET /v1/certifiers": PUBLIC,
    "GET /v1/certifiers/{address}": PUBLIC,
    "GET /v1/chain": PUBLIC,
    "GET /v1/chain/nonces/{address}": PUBLIC,
    "GET /v1/products": PUBLIC,
    "GET /v1/products/{gtin}": PUBLIC,
    "GET /v1/products/{gtin}/qr.{fmt}": PUBLIC,
    "GET /v1/products/{gtin}/claims": PUBLIC,
    "GET /v1/claims/{claim_id}": PUBLIC,
    "GET /v1/attestations": PUBLIC,
    "GET /v1/attestations/{attestation_id}": PUBLIC,
    "GET /v1/anchors": PUBLIC,
    "GET /v1/anchors/{handle}": PUBLIC,
    "GET /v1/endorsements": PUBLIC,
    "GET /v1/endorsements/{endorsement_id}": PUBLIC,
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": PUBLIC,
    # shopper pages (HTML) and the static files they load
    "GET /": PUBLIC,
    "GET /01/{gtin}": PUBLIC,
    "GET /01/{gtin}/10/{lot}": PUBLIC,
    "GET /01/{gtin}/21/{serial}": PUBLIC,
    "GET /01/{gtin}/10/{lot}/21/{serial}": PUBLIC,
    "GET /r/{code}": PUBLIC,
    "GET /verify": PUBLIC,
    "GET /a/{handle}": PUBLIC,
    "GET /sign/endorsement": PUBLIC,
    "GET /tx/{tx_hash}": PUBLIC,
    "GET /static/vendor/sha3.min.js": PUBLIC,
    "GET /static/{path}": PUBLIC,
    # FastAPI's own documents
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
}

#: The keys of the ``keys`` fixture by role.
KEY_ROLES = {
    "admin": "admin",
    "ingest": "ingest",
    "ingest2": "ingest",
    "auditor": "auditor",
    "brand": "brand",
    "brand2": "brand",
    "certifier": "certifier",
}
#: Members of a refusal's problem document: nothing else may ride along.
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# ----------------------------------------------------------------------------- the route table


def access_of(route: APIRoute) -> str:
    """Who may call ``route``, from what the route itself says: the roles of its ``require``
    guards, or those its OpenAPI security requirement names (routes that check the key by hand);
    else SIGNED when its body is a signed action, else PUBLIC. A route that takes a key without
    naming a role answers ``any key``, which no table entry allows."""
    roles: set[str] = set()
    keyed = signed = False
    for dependant in dependants(route.dependant):
        admitted = guard_roles(dependant.call)
        if admitted is not None:
            roles |= {role.value for role in admitted}
        keyed = keyed or dependant.call is get_principal
        for param in dependant.body_params:
            annotation = param.field_info.annotation
            signed = signed or (
                isinstance(annotation, type) and issubclass(annotation, SignedAction)
            )
    for requirement in (route.openapi_extra or {}).get("security", []):
        for scopes in requirement.values():
            keyed = True
            roles |= set(scopes)
    if roles:
        return "|".join(sorted(roles))
    if keyed:
        return "any key"
    return SIGNED if signed else PUBLIC


def route_table(settings: Settings) -> dict[str, str]:
    """``METHOD /path`` -> access, for every route and mount the app serves."""
    app = create_app(settings)
    table: dict[str, str] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            table[f"GET {route.path}/{{path}}"] = PUBLIC
            continue
        methods = sorted((context.methods or set()) - {"HEAD"})
        assert methods, context.path
        access = access_of(route) if isinstance(route, APIRoute) else PUBLIC
        for method in methods:
            label = f"{method} {context.path_format}"
            assert label not in table, label
            table[label] = access
    return table


def test_the_route_table_is_read_from_the_app_and_matches_the_declared_one() -> None:
    table = route_table(Settings(database_url="sqlite:///:memory:"))
    missing = sorted(set(DECLARED) - set(table))
    new = sorted(set(table) - set(DECLARED))
    assert (missing, new) == ([], []), "declare who may call each new route in DECLARED"
    changed = {
        label: (DECLARED[label], table[label]) for label in table if table[label] != DECLARED[label]
    }
    assert changed == {}, "(declared, derived)"
    # Every write takes a key or a signature: none is open to anyone.
    open_writes = [
        label
        for label, access in table.items()
        if label.split()[0] in WRITE_METHODS and access == PUBLIC
    ]
    assert open_writes == []
    assert set(table.values()) <= {PUBLIC, SIGNED, *(role.value for role in Role)}


def test_the_openapi_document_says_which_operations_take_a_key() -> None:
    """Every key-protected operation declares the key (a security requirement or an
    Authorization parameter) and documents 401 and 403; no other operation does."""
    settings = Settings(database_url="sqlite:///:memory:")
    table = route_table(settings)
    document = create_app(settings).openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            keyed = bool(operation.get("security")) or any(
                p["name"].lower() == "authorization" for p in operation.get("parameters", [])
            )
            protected = table[label] not in {PUBLIC, SIGNED}
            assert keyed == protected, label
            if protected:
                assert {"401", "403"} <= set(operation["responses"]), label


# ----------------------------------------------------------------------------- nothing written


def database_rows(settings: Settings) -> dict[str, list[str]]:
    """Every row of every table (not only counts: a refused update must not land either)."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            # Table names come from the database's own catalogue, never from input.
            return {
                table: sorted(
                    repr(tuple(row))
                    for row in conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
                )
                for table in tables
            }
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Written:
    """All database rows and the relayer's nonce and balance: what a refusal must not change."""

    rows: dict[str, list[str]]
    relayer: RelayerSnapshot

    @classmethod
    def take(cls, settings: Settings, w3: Web3, accounts: Accounts) -> Written:
        rows = database_rows(settings)
        assert {"rooms", "receipts", "claims", "attestations", "api_keys"} <= set(rows)
        return cls(rows, RelayerSnapshot.take(w3, accounts))


def assert_refused(
    response: httpx.Response, status: int, slug: str, secrets: Iterable[str], where: object = ""
) -> dict[str, Any]:
    """A bare problem (no member beyond RFC 9457's) that names none of ``secrets``."""
    assert response.status_code == status, (where, response.text)
    problem: dict[str, Any] = assert_problem(response, status, slug)
    assert set(problem) <= PROBLEM_MEMBERS, (where, problem)
    leaked = [secret for secret in secrets if secret in response.text]
    assert leaked == [], (where, response.text)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer "), where
    return problem


# ----------------------------------------------------------------------------- the scene


CANARY_ROOM = "Canary tea room 金丝雀"
CANARY_BUYER = "canary-buyer-77121"
CANARY_ORDER = "canary-SO-000123"


@dataclass(frozen=True)
class Call:
    """One key-protected operation with a real path and a body its role's key would get
    ``ok`` for, in an order in which each of them succeeds."""

    route: str
    path: str
    body: dict[str, Any] | None
    ok: int
    #: The same path with a parameter that fails validation (where the parameter has a format).
    bad_path: str | None = None

    @property
    def method(self) -> str:
        return self.route.split()[0]

    def send(
        self,
        client: TestClient,
        headers: dict[str, str],
        *,
        body: dict[str, Any] | None = None,
        path: str | None = None,
    ) -> httpx.Response:
        """Send with ``headers`` and a fresh Idempotency-Key."""
        all_headers = {"Idempotency-Key": f"m-{time.monotonic_ns()}", **headers}
        payload = self.body if body is None else body
        response: httpx.Response = client.request(
            self.method, path or self.path, json=payload, headers=all_headers
        )
        return response


@dataclass(frozen=True)
class Scene:
    """Objects of every kind, made by their rightful keys, and the calls to attack them."""

    calls: list[Call]
    sale: dict[str, Any]
    claim_id: str
    attestation_id: str
    #: Strings no refusal may contain: every key's token, the sale's code, salt and references.
    secrets: list[str]
    revoked: dict[str, dict[str, str]]


def _ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def revoked_keys(settings: Settings, accounts: Accounts) -> dict[str, dict[str, str]]:
    """A key per role, revoked before anything used it (so no cache remembers it)."""
    subjects = {
        Role.ADMIN: None,
        Role.INGEST: None,
        Role.BRAND: accounts.brand.address,
        Role.CERTIFIER: accounts.certifier.address,
    }
    engine = make_engine(settings.database_url, pool_size=1)
    tokens: dict[str, dict[str, str]] = {}
    try:
        with Session(engine) as session:
            for role, subject in subjects.items():
                row, token = create_key(session, role=role, subject=subject, label="revoked")
                row.revoked_at = time.time()
                session.add(row)
                session.commit()
                tokens[role.value] = {"Authorization": f"Bearer {token}"}
    finally:
        engine.dispose()
    return tokens


@pytest.fixture
def api(settings: Settings, w3: Web3) -> Iterator[TestClient]:
    """The app with its rate limits off: the matrix sends hundreds of anonymous requests, and a
    429 would hide what it checks (bursts have their own tests)."""
    unlimited = settings.model_copy(update={"rate_limit_anonymous": 0.0, "rate_limit_keyed": 0.0})
    with TestClient(create_app(unlimited)) as test_client:
        yield test_client


@pytest.fixture
def scene(
    api: TestClient,
    keys: Keys,
    world: World,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> Scene:
    client = api
    ingest = keys.ingest
    _ok(client.post("/v1/rooms", json={"room_id": "room-1", "name": CANARY_ROOM}, headers=ingest))
    _ok(
        client.post(
            "/v1/sessions",
            json={"session_id": "live-1", "room_id": "room-1", "anchor": world.anchor},
            headers=ingest,
        )
    )
    sale = _ok(
        client.post(
            "/v1/orders",
            json=order(world, buyer_ref=CANARY_BUYER, order_ref=CANARY_ORDER),
            headers={**ingest, "Idempotency-Key": "sale"},
        )
    )
    certifier = {"address": accounts.certifier.address, "name": "Tea Lab"}
    _ok(client.post("/v1/certifiers", json=certifier, headers=keys.admin))
    brand, lab = accounts.brand, accounts.certifier
    claim_a = _ok(
        client.post(
            "/v1/claims",
            json=claim_body(w3, deployment, brand, world.product_id),
            headers=keys.brand,
        )
    )["claim_id"]
    claim_b = _ok(
        client.post(
            "/v1/claims",
            json=claim_body(w3, deployment, brand, world.product_id, claim_type="batch"),
            headers=keys.brand,
        )
    )["claim_id"]
    provenance = deployment.provenance(w3)
    attestation_a = _ok(
        client.post(
            "/v1/attestations",
            json=attestation_body(w3, deployment, lab.address, claim_a, lab, report="r1"),
            headers=keys.certifier,
        )
    )["attestation_id"]

    n, m = provenance.nonce(brand.address), provenance.nonce(lab.address)
    anchor2 = accounts.anchor2.address
    calls = [
        Call("POST /v1/rooms", "/v1/rooms", {"room_id": "room-new", "name": "New"}, 201),
        Call("GET /v1/rooms", "/v1/rooms", None, 200),
        Call(
            "POST /v1/sessions",
            "/v1/sessions",
            {"session_id": "live-new", "room_id": "room-new", "anchor": world.anchor},
            201,
        ),
        Call("POST /v1/orders", "/v1/orders", order(world), 201),
        Call("POST /v1/orders/bulk", "/v1/orders/bulk", {"orders": [order(world)]}, 201),
        Call(
            "POST /v1/refunds",
            "/v1/refunds",
            {"receipt_code": sale["receipt_code"], "quantity": 1},
            201,
        ),
        Call(
            "POST /v1/sessions/{session_id}/close",
            "/v1/sessions/live-1/close",
            {"recording_hash": RECORDING, "displayed_sales": 5},
            200,
        ),
        Call(
            "POST /v1/brands",
            "/v1/brands",
            {"address": accounts.stranger.address, "name": "Other"},
            201,
        ),
        Call("POST /v1/certifiers", "/v1/certifiers", {"address": anchor2, "name": "Lab 2"}, 201),
        Call(
            "POST /v1/anchors", "/v1/anchors", {"address": anchor2, "handle": "@second-host"}, 201
        ),
        Call(
            "POST /v1/products",
            "/v1/products",
            product_body(w3, deployment, brand, gtin=GTIN2, nonce=n),
            201,
        ),
        Call(
            "POST /v1/claims",
            "/v1/claims",
            claim_body(w3, deployment, brand, world.product_id, claim_type="grade", nonce=n + 1),
            201,
        ),
        Call(
            "POST /v1/attestations",
            "/v1/attestations",
            attestation_body(w3, deployment, lab.address, claim_b, lab, nonce=m, report="r2"),
            201,
        ),
        Call(
            "POST /v1/attestations/{attestation_id}/revocation",
            f"/v1/attestations/{attestation_a}/revocation",
            revocation_body(
                w3,
                deployment,
                lab,
                eip712.revoke_attestation,
                "ProvenanceRegistry",
                attestation_a,
                nonce=m + 1,
            ),
            200,
            bad_path="/v1/attestations/0xzz/revocation",
        ),
        Call(
            "POST /v1/claims/{claim_id}/revocation",
            f"/v1/claims/{claim_a}/revocation",
            revocation_body(
                w3,
                deployment,
                brand,
                eip712.revoke_claim,
                "ProvenanceRegistry",
                claim_a,
                nonce=n + 2,
            ),
            200,
            bad_path="/v1/claims/0xzz/revocation",
        ),
        Call(
            "DELETE /v1/anchors/{address}",
            f"/v1/anchors/{world.anchor}",
            None,
            200,
            bad_path="/v1/anchors/0xnot-an-address",
        ),
    ]
    revoked = revoked_keys(settings, accounts)
    tokens = [
        h["Authorization"].removeprefix("Bearer ")
        for h in [*(getattr(keys, f.name) for f in fields(keys)), *revoked.values()]
    ]
    secrets = [
        *tokens,
        *(token.split("_", 2)[2] for token in tokens),
        sale["receipt_code"],
        sale["salt"],
        CANARY_BUYER,
        CANARY_ORDER,
        CANARY_ROOM,
    ]
    return Scene(calls, sale, claim_a, attestation_a, secrets, revoked)


# ----------------------------------------------------------------------------- the matrix


def bad_keys(keys: Keys, revoked: dict[str, str]) -> list[dict[str, str]]:
    """Authorization headers that name no usable key: malformed, unknown, a real key id with
    the wrong secret, and a revoked key of the very role the route wants."""
    _, key_id, _ = keys.admin["Authorization"].split("_", 2)
    return [
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Bearer lpk_{'0' * 12}_{'x' * 43}"},
        {"Authorization": f"Bearer lpk_{key_id}_{'x' * 43}"},
        revoked,
    ]


def test_every_key_protected_operation_refuses_every_wrong_caller(
    api: TestClient,
    keys: Keys,
    scene: Scene,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
) -> None:
    """(a) no key: 401; (b) a malformed, unknown, wrong-secret or revoked key: 401; (c) every
    key of another role: 403; also when the body or path is invalid too (the key is checked
    first). Nothing written, no gas spent, nothing leaked. Then each right key succeeds with
    the same request, so the refusals were the key's doing."""
    table = route_table(settings)
    protected = {label: access for label, access in table.items() if access not in {PUBLIC, SIGNED}}
    assert {call.route for call in scene.calls} == set(protected), "give every route a Call"
    before = Written.take(settings, w3, accounts)
    for call in scene.calls:
        role = protected[call.route]
        secrets, where = scene.secrets, call.route
        assert_refused(call.send(api, {}), 401, "unauthenticated", secrets, where)
        for headers in bad_keys(keys, scene.revoked[role]):
            r = call.send(api, headers)
            assert_refused(r, 401, "unauthenticated", secrets, (where, headers))
        wrong = [name for name, key_role in KEY_ROLES.items() if key_role != role]
        assert wrong
        for name in wrong:
            r = call.send(api, getattr(keys, name))
            problem = assert_refused(r, 403, "forbidden", secrets, (where, name))
            assert role in problem["detail"], (where, name)
        # Both the caller and the request are wrong: the caller is named first.
        if call.body is not None:
            invalid = {**call.body, "surprise": 1, "signature": "0x"}
            r = call.send(api, {}, body=invalid)
            assert_refused(r, 401, "unauthenticated", secrets, (where, "invalid body"))
            r = call.send(api, keys.auditor, body=invalid)
            assert_refused(r, 403, "forbidden", secrets, (where, "invalid body"))
        if call.bad_path is not None:
            r = call.send(api, {}, path=call.bad_path)
            assert_refused(r, 401, "unauthenticated", secrets, (where, call.bad_path))
            r = call.send(api, keys.auditor, path=call.bad_path)
            assert_refused(r, 403, "forbidden", secrets, (where, call.bad_path))
    assert Written.take(settings, w3, accounts) == before

    # The same requests from the right keys go through: the refusals above were about the key.
    rightful = {
        "ingest": keys.ingest,
        "admin": keys.admin,
        "brand": keys.brand,
        "certifier": keys.certifier,
    }
    for call in scene.calls:
        r = call.send(api, rightful[protected[call.route]])
        assert r.status_code == call.ok, (call.route, r.text)
    assert RelayerSnapshot.take(w3, accounts) != before.relayer


def test_malformed_json_without_a_key_is_refused_for_the_key(
    api: TestClient, scene: Scene, settings: Settings, accounts: Accounts, w3: Web3
) -> None:
    before = Written.take(settings, w3, accounts)
    statuses = {}
    for call in scene.calls:
        if call.body is None:
            continue
        r = api.request(
            call.method,
            call.path,
            content=b"{",
            headers={"content-type": "application/json", "Idempotency-Key": "x"},
        )
        statuses[call.route] = r.status_code
    assert Written.take(settings, w3, accounts) == before
    assert set(statuses.values()) == {401}, statuses


def fill(path: str, values: dict[str, str]) -> str:
    """``path`` with each ``{param}`` replaced by a real value."""
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", value)
    assert "{" not in path, f"give {path} a value for its parameters"
    return path


def test_public_and_signed_routes_need_no_key(
    api: TestClient,
    world: World,
    scene: Scene,
    settings: Settings,
    accounts: Accounts,
    w3: Web3,
    deployment: Deployment,
) -> None:
    """What the table calls public answers without a key (never 401 or 403), and the signed
    writes judge the signature, not a key: forged and unknown ones are refused with nothing
    written and no gas spent."""
    values = {
        "room_id": "room-1",
        "session_id": "live-1",
        "code": scene.sale["receipt_code"],
        "fmt": "svg",
        "root": "0x" + "00" * 32,
        "address": world.anchor,
        "gtin": world.gtin,
        "claim_id": scene.claim_id,
        "attestation_id": scene.attestation_id,
        "handle": "@tea-master-li",
        "endorsement_id": "0x" + "ee" * 32,
        "lot": "L1",
        "serial": "S1",
        "tx_hash": "0x" + "00" * 32,
        "path": "missing.css",
    }
    queries = {
        "GET /v1/sessions": {"room_id": "room-1"},
        "GET /v1/attestations": {"claim_id": scene.claim_id},
    }
    before = Written.take(settings, w3, accounts)
    table = route_table(settings)
    for label, access in table.items():
        if access != PUBLIC:
            continue
        method, path = label.split()
        r = api.request(method, fill(path, values), params=queries.get(label))
        assert r.status_code not in {401, 403}, (label, r.text)
        assert r.status_code < 500, (label, r.text)
        if path.startswith("/v1/"):  # pages answer a person, in HTML, even when not found
            assert r.status_code == 200 or r.headers["content-type"] == PROBLEM_JSON, label

    forged = endorsement_body(
        w3, deployment, accounts.stranger, world.product_id, anchor=world.anchor
    )
    signed = {
        "POST /v1/endorsements": ("/v1/endorsements", forged, 422, "invalid-signature"),
        "POST /v1/endorsements/{endorsement_id}/revocation": (
            fill("/v1/endorsements/{endorsement_id}/revocation", values),
            {"signer": world.anchor, "nonce": 0, "deadline": 2**40, "signature": "0x" + "11" * 65},
            404,
            "endorsement-not-found",
        ),
    }
    assert set(signed) == {label for label, access in table.items() if access == SIGNED}
    for label, (path, body, status, slug) in signed.items():
        assert_refused(api.post(path, json=body), status, slug, scene.secrets, label)
        # A bogus key changes nothing: the signature is what is judged.
        r = api.post(path, json=body, headers={"Authorization": "Bearer x"})
        assert_refused(r, status, slug, scene.secrets, label)
    assert Written.take(settings, w3, accounts) == before
