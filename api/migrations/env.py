"""Alembic environment: LiveProof's tables from the SQLModel metadata."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import api.models  # noqa: F401  (registers every table on SQLModel.metadata)
from api.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    """Emit SQL without a connection (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations on a live connection."""
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        # SQLite alters tables by copying them (batch mode); harmless on PostgreSQL.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
