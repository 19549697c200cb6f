"""FastAPI dependencies: ``StateDep``, ``SessionDep``, ``PrincipalDep`` and role guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.dependencies.models import Dependant
from sqlmodel import Session, SQLModel

from api.auth import Principal, forbidden
from api.models import Role
from api.problems import ProblemError
from api.state import AppState


async def get_state(request: Request) -> AppState:
    """The process's :class:`AppState`."""
    state: AppState = request.app.state.liveproof
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """A session for reading. Write with :func:`save` or a ``WriteSessionDep`` instead: a read
    transaction that later writes can fail on SQLite when another writer got in between."""
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


def get_write_session(state: StateDep) -> Iterator[Session]:
    """A session whose transaction takes SQLite's write lock at its first statement: for
    short read-then-write work only, never around a chain transaction."""
    with Session(state.write_engine, expire_on_commit=False) as session:
        yield session


#: Rows in one page of a listing.
Limit = Annotated[int, Query(ge=1, le=1_000, description="Rows in one page")]
#: Rows a listing skips. Bounded: SQLite and PostgreSQL take OFFSET as a signed 64-bit integer,
#: and a bigger one would fail in the driver instead of being refused as invalid.
Offset = Annotated[int, Query(ge=0, lt=2**63, description="Rows to skip")]

SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


def save(state: AppState, *rows: SQLModel) -> None:
    """Insert or update ``rows`` in one short write transaction."""
    with Session(state.write_engine, expire_on_commit=False) as session:
        for row in rows:
            session.merge(row)
        session.commit()


async def get_principal(
    state: StateDep,
    authorization: Annotated[
        str | None, Header(description="Bearer API key", examples=["Bearer lpk_..."])
    ] = None,
) -> Principal:
    """The caller's API key, verified (async: the hot path must not wait for a thread)."""
    return state.keys.verify(authorization)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


#: The roles each guard made by :func:`require` admits, so that who may call a route can be read
#: from the route itself (see :func:`guard_roles`) instead of from a hand-kept list.
_GUARD_ROLES: dict[object, frozenset[Role]] = {}


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only keys with one of ``roles``."""
    allowed = frozenset(roles)

    async def guard(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise _wrong_role(allowed, principal)
        return principal

    _GUARD_ROLES[guard] = allowed
    return guard


def _wrong_role(allowed: frozenset[Role], principal: Principal) -> ProblemError:
    names = ", ".join(sorted(r.value for r in allowed))
    return forbidden(f"this needs a key with role {names}, not {principal.role.value}")


def guard_roles(call: object) -> frozenset[Role] | None:
    """The roles ``call`` admits if it is a guard made by :func:`require`, else None."""
    return _GUARD_ROLES.get(call)


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """``dependant`` and every dependency under it, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


def route_roles(route: object) -> frozenset[Role] | None:
    """The roles a route's guard admits, from its dependencies; None when it has no guard."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    for current in dependants(dependant):
        roles = guard_roles(current.call)
        if roles is not None:
            return roles
    return None


def key_problem(request: Request) -> ProblemError | None:
    """For a request FastAPI refused before its dependencies ran (a body that does not parse):
    the problem its key has (401 none or bad, 403 another role) when the route needs one, so
    that a caller without the right key learns nothing past "authenticate first"; else None."""
    roles = route_roles(request.scope.get("route"))
    if roles is None:
        return None
    state: AppState = request.app.state.liveproof
    try:
        principal = state.keys.verify(request.headers.get("authorization"))
    except ProblemError as exc:
        return exc
    return None if principal.role in roles else _wrong_role(roles, principal)


AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
IngestDep = Annotated[Principal, Depends(require(Role.INGEST))]
BrandDep = Annotated[Principal, Depends(require(Role.BRAND))]
CertifierDep = Annotated[Principal, Depends(require(Role.CERTIFIER))]
AuditorDep = Annotated[Principal, Depends(require(Role.AUDITOR, Role.ADMIN))]
