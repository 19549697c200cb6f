"""API keys: ``Authorization: Bearer lpk_<key id>_<secret>``, one role per key.

Keys are stored as a SHA-256 of the secret: the secret is 256 random bits, so a slow hash
would add nothing but latency. Verified keys are cached per process for a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models.keys import ApiKey, Role
from api.problems import ProblemError

TOKEN_PREFIX = "lpk"  # noqa: S105 - a prefix, not a secret
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's database id, role and (for brands, certifiers) subject."""

    key_pk: int
    key_id: str
    role: Role
    subject: str | None


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, *, role: Role, subject: str | None = None, label: str = ""
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the token, which is shown once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        key_id=key_id, secret_sha256=_sha256(secret), role=role, subject=subject, label=label
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, f"{TOKEN_PREFIX}_{key_id}_{secret}"


class KeyVerifier:
    """Checks bearer tokens against the database, with a short per-process cache."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header, or a 401 problem."""
        if not authorization:
            raise _unauthenticated("an API key is required: Authorization: Bearer <key>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthenticated("use Authorization: Bearer <key>")
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = self._lookup(token.strip())
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + _CACHE_SECONDS, principal)
        return principal

    def verified_id(self, token: str) -> str | None:
        """The key id of ``token`` if this process ever verified it (a dict lookup: the rate
        limit asks it on every request), else None. An expired entry still names its key: the
        route verifies again, and the request must keep counting against the key's own bucket,
        not the address's (which, behind a proxy, all shoppers share)."""
        cached = self._cache.get(token)
        return None if cached is None else cached[1].key_id

    def _lookup(self, token: str) -> Principal:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise _unauthenticated("malformed API key")
        _, key_id, secret = parts
        with Session(self._engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_id == key_id)).first()
        if row is None or row.revoked_at is not None or row.id is None:
            raise _unauthenticated("unknown or revoked API key")
        if not hmac.compare_digest(row.secret_sha256, _sha256(secret)):
            raise _unauthenticated("unknown or revoked API key")
        return Principal(row.id, row.key_id, Role(row.role), row.subject)


def _unauthenticated(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "unauthenticated",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="liveproof"'},
    )


def forbidden(detail: str) -> ProblemError:
    """A 403 problem."""
    return ProblemError(403, "forbidden", "Not allowed for this API key", detail)
