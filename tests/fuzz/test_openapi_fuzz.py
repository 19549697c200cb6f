"""Schemathesis against the API's own OpenAPI document: every operation, generated requests (the
documented examples, boundary "coverage" cases and random ones, valid and invalid) sent to the
in-process app on the session's anvil. No response may be a 5xx, and every response must have a
documented status code and content type and match the documented schema.

To reach past authentication and "not found", most requests carry a key of the role the
operation needs (and an ``Idempotency-Key`` where one is required), and about half name things
the ``stage`` fixture created. Which requests get which is decided from the generated case
itself, so a run, and Hypothesis' replay of a failing case, are deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.config import Settings
from tests.api.conftest import Keys
from tests.api.test_route_matrix import DECLARED, PUBLIC, SIGNED
from tests.fuzz.conftest import HANDLE, ROOM_ID, SESSION_ID, Stage
from tests.fuzz.tally import fuzz_tally

pytestmark = pytest.mark.fuzz

#: Generated cases per operation in the random ("fuzzing") phase; the examples and coverage
#: phases add their own. Together they make well over 1,000 cases a run.
MAX_EXAMPLES = 25

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The document does not depend on the settings: build it once, at collection.
OPENAPI = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)

#: The role each key-protected operation needs (the route matrix's table, which is checked
#: against the app itself); every other operation is public or signed.
ROLES: dict[str, str] = {op: who for op, who in DECLARED.items() if who not in (PUBLIC, SIGNED)}
IDEMPOTENT = {"POST /v1/orders", "POST /v1/orders/bulk", "POST /v1/refunds"}
#: The body field naming what an operation creates: left as generated, or it would exist.
CREATED = {
    "POST /v1/rooms": "room_id",
    "POST /v1/sessions": "session_id",
    "POST /v1/brands": "address",
    "POST /v1/certifiers": "address",
    "POST /v1/anchors": "address",
}


def _digest(case: schemathesis.Case) -> int:
    """A stable number from the generated request, to make the choices below with."""
    body = None if isinstance(case.body, NotSet) else case.body
    text = repr((case.path_parameters, case.query, dict(case.headers or {}), body))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _known_values(stage: Stage, label: str) -> dict[str, Callable[[int], Any]]:
    """Field name -> a pick (by a number) among the staged things a request may name."""
    signer = {
        "POST /v1/claims/{claim_id}/revocation": stage.brand,
        "POST /v1/attestations/{attestation_id}/revocation": stage.certifier,
        "POST /v1/endorsements/{endorsement_id}/revocation": stage.anchor,
    }.get(label, stage.brand)
    address = (
        stage.certifier
        if "/certifiers" in label
        else stage.anchor
        if "/anchors" in label
        else stage.brand
    )

    def one(value: Any) -> Callable[[int], Any]:
        return lambda _n: value

    def among(*values: Any) -> Callable[[int], Any]:
        return lambda n: values[n % len(values)]

    return {
        "room_id": one(ROOM_ID),
        "session_id": one(SESSION_ID),
        "code": among(stage.committed_code, stage.pending_code),
        "receipt_code": among(stage.committed_code, stage.pending_code),
        "root": one(stage.batch_root),
        "fmt": among("png", "svg"),
        "gtin": one(stage.gtin),
        "product_id": one(stage.product_id),
        "claim_id": one(stage.claim_id),
        "attestation_id": one(stage.attestation_id),
        "endorsement_id": one(stage.endorsement_id),
        "handle": one(HANDLE),
        "address": one(address),
        "brand": one(stage.brand),
        "issuer": one(stage.brand),
        "certifier": one(stage.certifier),
        "anchor": one(stage.anchor),
        "signer": one(signer),
    }


def _aim(case: schemathesis.Case, stage: Stage, n: int) -> None:
    """Replace the generated ids in the path, the query and a JSON object body (one level, and
    each order of a bulk body) with staged ones. New containers, never edits: generated cases
    share them (the coverage cases built from one example share its body)."""
    label = case.operation.label
    known = _known_values(stage, label)

    def aimed(values: dict[str, Any], keep: str | None = None) -> dict[str, Any]:
        return {
            name: known[name](n) if name in known and name != keep else value
            for name, value in values.items()
        }

    case.path_parameters = aimed(case.path_parameters)
    case.query = aimed(case.query)
    if isinstance(case.body, dict):
        body = aimed(case.body, keep=CREATED.get(label))
        orders = body.get("orders")
        if isinstance(orders, list):
            body["orders"] = [aimed(o) if isinstance(o, dict) else o for o in orders]
        case.body = body


def _authorize(case: schemathesis.Case, keys: Keys, n: int) -> None:
    """Give a key-protected request the right key (6 in 8), another role's key (1 in 8), or
    leave the generated Authorization header, if any (1 in 8); likewise a fresh
    Idempotency-Key where one is required (7 in 8)."""
    label = case.operation.label
    role = ROLES.get(label)
    if role is None or n % 8 == 0:
        return
    key = keys.auditor if n % 8 == 1 else getattr(keys, role)
    headers = CaseInsensitiveDict(case.headers)
    headers["Authorization"] = key["Authorization"]
    if label in IDEMPOTENT:
        headers["Idempotency-Key"] = f"fuzz-{n:016x}"
    case.headers = headers


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        # One app and database per operation, shared by its generated cases, on purpose.
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_operation(
    case: schemathesis.Case,
    client: TestClient,
    keys: Keys,
    stage: Stage,
    request: pytest.FixtureRequest,
) -> None:
    """No 5xx, and the response is documented: status code, content type and schema."""
    n = _digest(case)
    _authorize(case, keys, n)
    if (n >> 3) % 2 == 0:
        _aim(case, stage, n >> 4)
    fuzz_tally(request.config).record_case(request.node.nodeid)
    # The app's lifespan belongs to the TestClient; this session only sends into it.
    session = ASGIClient(client.app)
    case.call_and_validate(base_url="http://testserver", session=session, checks=CHECKS)


def test_the_role_table_names_every_key_protected_operation() -> None:
    """An operation that takes an API key (an ``authorization`` header or a security
    requirement) must be in ROLES, so that the fuzzer sends it a key."""
    protected = {
        f"{method.upper()} {path}"
        for path, operations in OPENAPI["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
        or any(p["name"].lower() == "authorization" for p in operation.get("parameters", []))
    }
    assert protected == set(ROLES)
