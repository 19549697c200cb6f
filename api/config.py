"""Service settings: one pydantic-settings object read from ``LIVEPROOF_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain.connect import DEFAULT_RPC_URL
from chain.paths import state_dir


def _default_database_url() -> str:
    return f"sqlite:///{state_dir() / 'liveproof.db'}"


class Settings(BaseSettings):
    """Everything the API, the committer and the CLI read from the environment."""

    model_config = SettingsConfigDict(env_prefix="LIVEPROOF_", extra="ignore", frozen=True)

    database_url: str = Field(default_factory=_default_database_url)
    rpc_url: str = DEFAULT_RPC_URL
    #: The relayer's key: hex, a keystore path, or the name of a variable holding either.
    #: Unset on a local devnet: its first dev account is used (refused on other chains).
    relayer_key: SecretStr | None = None
    #: Seconds between committer runs.
    batch_interval: Annotated[float, Field(gt=0, le=3600)] = 1.0
    #: Receipts per Merkle batch at most.
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 1_024
    #: Blocks on top of a commit before it counts; None: 0 on local chains, 2 elsewhere.
    confirmations: Annotated[int | None, Field(ge=0, le=1_000)] = None
    #: Receipts waiting for a commit past which orders are refused with 503.
    max_pending: Annotated[int, Field(ge=1)] = 1_000_000
    #: Request bodies larger than this are refused with 413 before they are read.
    max_body_bytes: Annotated[int, Field(ge=1_024)] = 8 * 1024 * 1024
    #: Requests per second (and burst) each API key may send to one worker process; 0: no limit.
    rate_limit_keyed: Annotated[float, Field(ge=0)] = 5_000.0
    rate_burst_keyed: Annotated[int, Field(ge=1)] = 10_000
    #: Requests per second (and burst) each client address without a key may send; 0: none.
    rate_limit_anonymous: Annotated[float, Field(ge=0)] = 100.0
    rate_burst_anonymous: Annotated[int, Field(ge=1)] = 200
    #: Orders accepted in one bulk request.
    max_bulk_orders: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    #: Run the committer inside `serve` (one leader across all workers and servers).
    run_committer: bool = True
    #: Public base URL of the API, used in the links it hands out.
    public_url: str = "http://127.0.0.1:8000"
    #: Directory of ``<chainId>.json`` deployment files; default: ``deployments/`` in the checkout.
    deployments_dir: Path | None = None
    #: The chain RPC URL the pages' Verify button offers shoppers (they may change it);
    #: empty: ``rpc_url``. Set it when the service reaches its node at a private address.
    public_rpc_url: str = ""
    #: Explorer link template for transactions, with ``{tx}`` where the hash goes (e.g.
    #: ``https://sepolia.etherscan.io/tx/{tx}``); empty: the service's own ``/tx/<hash>`` page.
    explorer_tx_url: str = ""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("database URL must be sqlite:///PATH or postgresql://...")
        return value

    @field_validator("explorer_tx_url")
    @classmethod
    def _explorer_template(cls, value: str) -> str:
        if value and "{tx}" not in value:
            raise ValueError("the explorer URL template must contain {tx}")
        return value

    def __repr__(self) -> str:  # pragma: no cover - pydantic already masks SecretStr
        return f"Settings(database_url={self.database_url!r}, rpc_url={self.rpc_url!r})"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (read once)."""
    return Settings()
