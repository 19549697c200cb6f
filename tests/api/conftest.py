"""API fixtures: a migrated database per test (SQLite, and PostgreSQL when
``LIVEPROOF_TEST_DATABASE_URL`` is set), the app wired to the session's anvil deployment,
and API keys by role."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session
from web3 import Web3

from api.app import create_app
from api.auth import create_key
from api.chain_gateway import ChainGateway
from api.committer import Committer
from api.config import Settings
from api.db import make_engine, writer
from api.migrate import upgrade
from api.models import Role
from api.seed import Catalogue, seed_catalogue
from chain.deploy import Deployment
from chain.devnet import DevnetInfo
from chain.keys import ANVIL_DEV_KEYS

PG_ENV = "LIVEPROOF_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating every time is slower)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this test process's own (dropped afterwards)."""
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(f"{PG_ENV} not set: PostgreSQL tests skipped")
    name = f"liveproof_t_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_pg(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """An empty, migrated database: SQLite, then PostgreSQL when configured."""
    if request.param == "sqlite":
        path = tmp_path / "liveproof.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(
    database_url: str, anvil: DevnetInfo, deployment: Deployment, deployments_dir: Path
) -> Settings:
    """Service settings for one test: its database, the session anvil and deployment."""
    return Settings(
        database_url=database_url,
        rpc_url=anvil.rpc_url,
        relayer_key=SecretStr(ANVIL_DEV_KEYS[6]),
        deployments_dir=deployments_dir,
        run_committer=False,
        batch_size=64,
        batch_interval=0.05,
        public_url="http://testserver",
    )


@dataclass(frozen=True)
class Keys:
    """Bearer tokens by role, ready for ``headers=``."""

    admin: dict[str, str]
    ingest: dict[str, str]
    ingest2: dict[str, str]
    auditor: dict[str, str]
    brand: dict[str, str]
    brand2: dict[str, str]
    certifier: dict[str, str]


@pytest.fixture
def keys(settings: Settings, accounts: object) -> Keys:
    """One API key per role (two ingest and two brand keys for object-level checks)."""
    from tests.conftest import Accounts

    assert isinstance(accounts, Accounts)
    engine = make_engine(settings.database_url, pool_size=1)
    tokens: dict[str, dict[str, str]] = {}
    with Session(engine) as session:
        for name, role, subject in (
            ("admin", Role.ADMIN, None),
            ("ingest", Role.INGEST, None),
            ("ingest2", Role.INGEST, None),
            ("auditor", Role.AUDITOR, None),
            ("brand", Role.BRAND, accounts.brand.address),
            ("brand2", Role.BRAND, accounts.stranger.address),
            ("certifier", Role.CERTIFIER, accounts.certifier.address),
        ):
            _, token = create_key(session, role=role, subject=subject, label=name)
            tokens[name] = {"Authorization": f"Bearer {token}"}
    engine.dispose()
    return Keys(**tokens)


@pytest.fixture
def client(settings: Settings, w3: Web3) -> Iterator[TestClient]:
    """The app under test (committer not running: tests drive it with ``committer``)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def committer(settings: Settings) -> Iterator[Committer]:
    """A committer on the test database, holding the leader lock."""
    engine = writer(make_engine(settings.database_url, pool_size=2))
    result = Committer(
        engine,
        ChainGateway(settings, engine),
        batch_size=settings.batch_size,
        interval=settings.batch_interval,
    )
    assert result.leader.try_acquire()
    yield result
    result.leader.release()
    engine.dispose()


World = Catalogue


@pytest.fixture
def world(settings: Settings, w3: Web3, deployment: Deployment, accounts: object) -> World:
    """A brand with one product and a registered anchor, on chain and in the database."""
    from tests.conftest import Accounts

    assert isinstance(accounts, Accounts)
    return seed_catalogue(
        settings.database_url,
        w3,
        deployment,
        registrar=accounts.relayer,
        brand=accounts.brand,
        anchor=accounts.anchor,
    )
