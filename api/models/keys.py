"""API keys: one role each, stored as a SHA-256 of the secret (the secret is 256 random bits)."""

from __future__ import annotations

from enum import StrEnum

from sqlmodel import Field, SQLModel

from api.models.common import now


class Role(StrEnum):
    """What an API key may do."""

    ADMIN = "admin"
    BRAND = "brand"
    CERTIFIER = "certifier"
    INGEST = "ingest"
    AUDITOR = "auditor"


class ApiKeyBase(SQLModel):
    role: Role
    #: The participant a brand or certifier key acts for; None for other roles.
    subject: str | None = Field(default=None, max_length=42, index=True)
    label: str = Field(default="", max_length=200)


class ApiKey(ApiKeyBase, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=32, unique=True, index=True)
    secret_sha256: str = Field(max_length=64)
    created_at: float = Field(default_factory=now)
    revoked_at: float | None = None
