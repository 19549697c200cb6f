"""The OpenAPI document is whole and says what the routes really send (tests/fuzz then checks
every generated response against it). Each test here is a mismatch the fuzzer found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.app import create_app
from api.config import Settings
from api.problems import PROBLEM_JSON

ERROR_STATUSES = {"401", "403", "404", "409", "413", "422", "503"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document ``/openapi.json`` serves (it does not depend on the database)."""
    return create_app(Settings(database_url="sqlite:///:memory:")).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``METHOD /path``, operation) for every operation."""
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def references(node: Any) -> Iterator[str]:
    """Every ``$ref`` under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    """The order and refund bodies pointed at component schemas nobody defined (FastAPI lists
    only the models of bodies it parses itself), so no client could tell what to send."""
    refs = set(references(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict), ref
            assert part in target, ref
            target = target[part]


@pytest.mark.parametrize(
    ("path", "required"),
    [
        ("/v1/orders", {"room_id", "session_id", "quantity", "unit_price", "currency"}),
        ("/v1/orders/bulk", {"orders"}),
        ("/v1/refunds", {"receipt_code", "quantity"}),
    ],
)
def test_bodies_parsed_by_hand_are_described(
    document: dict[str, Any], path: str, required: set[str]
) -> None:
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema["type"] == "object"
    assert set(schema["required"]) == required
    assert schema["additionalProperties"] is False


def test_an_order_names_exactly_one_product(document: dict[str, Any]) -> None:
    """The rule the model enforces (exactly one of gtin, product_id) is in the schema too."""
    schema = document["paths"]["/v1/orders"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert [branch["required"] for branch in schema["oneOf"]] == [["gtin"], ["product_id"]]
    bulk = document["paths"]["/v1/orders/bulk"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert bulk["properties"]["orders"]["items"]["oneOf"] == schema["oneOf"]


def test_every_error_is_a_problem_document(document: dict[str, Any]) -> None:
    """FastAPI documented 422 as ``application/json`` HTTPValidationError, and the other
    errors with no media type; every error is RFC 9457 ``application/problem+json``."""
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if status in ERROR_STATUSES:
                assert set(response.get("content", {})) == {PROBLEM_JSON}, (name, status)
                schema = response["content"][PROBLEM_JSON]["schema"]
                assert schema["required"] == ["type", "title", "status"], (name, status)


def test_errors_every_route_of_a_kind_can_answer_are_documented(
    document: dict[str, Any],
) -> None:
    """Routes taking a key must document 401 and 403 (POST /v1/rooms, GET /v1/rooms,
    POST /v1/sessions, POST /v1/orders/bulk, POST /v1/refunds did not), routes taking input
    422, routes with a path parameter 404."""
    for name, operation in operations(document):
        responses = operation["responses"]
        parameters = operation.get("parameters", [])
        keyed = "security" in operation or any(
            p["name"].lower() == "authorization" for p in parameters
        )
        if keyed:
            assert {"401", "403"} <= set(responses), name
        if parameters or "requestBody" in operation:
            assert "422" in responses, name
        if any(p["in"] == "path" for p in parameters):
            assert "404" in responses, name
        if "requestBody" in operation:
            assert "413" in responses, name
