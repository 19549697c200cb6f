"""Every route's error responses in the OpenAPI document: ``application/problem+json``.

Routes name their own errors (``responses={404: {"description": ...}}``);
:func:`document_problems` then gives each error its real media type and schema, and adds the
errors every route of a kind can answer whether it says so or not: 422 for any route that takes
input, 401 and 403 for any route that takes an API key, 404 for any route with a path parameter
(one that holds a ``/`` names no route at all), 413 for any route with a body. Without it FastAPI
would document 422 as ``application/json`` ``HTTPValidationError``, which no route sends.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.deps import get_principal
from api.problems import PROBLEM_JSON, PROBLEM_SCHEMA

#: The errors added where a route does not describe them itself.
GENERIC_ERRORS = {
    401: "No or bad API key",
    403: "The API key's role may not do this",
    404: "Nothing at this path",
    413: "The body is larger than the server accepts",
    422: "Invalid request: the problem's `errors` name each fault",
}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _traits(route: APIRoute) -> tuple[bool, bool, bool, bool]:
    """(takes an API key, takes input, has a path parameter, has a body) for ``route``, from
    its dependencies and from what a hand-parsing route declares in ``openapi_extra``."""
    extra = route.openapi_extra or {}
    dependants = list(_dependants(route.dependant))
    keyed = bool(extra.get("security")) or any(d.call is get_principal for d in dependants)
    has_path = any(d.path_params for d in dependants)
    has_body = "requestBody" in extra or any(d.body_params for d in dependants)
    takes_input = (
        has_path
        or has_body
        or bool(extra.get("parameters"))
        or any(d.query_params or d.header_params or d.cookie_params for d in dependants)
    )
    return keyed, takes_input, has_path, has_body


def _status_number(status: int | str) -> int | None:
    """The status code of a ``responses`` key (None for ``default`` and ranges like ``4XX``)."""
    return int(status) if str(status).isdigit() else None


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": copy.deepcopy(PROBLEM_SCHEMA)}},
    }


def document_problems(router: APIRouter) -> None:
    """Declare the error responses of every route of ``router`` (its own routes, not those of
    routers included into it) as problem documents."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        keyed, takes_input, has_path, has_body = _traits(route)
        generic = {
            401: keyed,
            403: keyed,
            404: has_path,
            413: has_body,
            422: takes_input,
        }
        responses: dict[int | str, dict[str, Any]] = {}
        for status, response in route.responses.items():
            number = _status_number(status)
            if number is not None and number >= 400:
                description = response.get("description") or GENERIC_ERRORS.get(number, "")
                response = {**response, **_problem(description)}
            responses[status] = response
        declared = {_status_number(status) for status in responses}
        for status, applies in generic.items():
            if applies and status not in declared:
                responses[status] = _problem(GENERIC_ERRORS[status])
        route.responses = responses
