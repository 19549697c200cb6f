"""64-bit columns for the contracts' wide integers

The contracts take validity times, session times and the displayed sales count as uint64, and
prices and nonces as uint256; PostgreSQL's INTEGER is 32-bit, so a claim valid past January
2038, or a sales count past 2**31, failed on writing, after its chain transaction. SQLite's
INTEGER is 64-bit already (batch mode rewrites its tables all the same).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 05:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> its columns that become BIGINT.
WIDENED = {
    "claims": ("valid_until",),
    "endorsements": ("unit_price", "valid_from", "valid_until", "nonce"),
    "live_sessions": ("opened_at", "closed_at", "displayed_sales"),
}
NULLABLE = {("live_sessions", "closed_at"), ("live_sessions", "displayed_sales")}


def _retype(old: type[sa.types.TypeEngine[int]], new: type[sa.types.TypeEngine[int]]) -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    existing_type=old(),
                    type_=new(),
                    existing_nullable=(table, column) in NULLABLE,
                )


def upgrade() -> None:
    """Apply this revision."""
    _retype(sa.Integer, sa.BigInteger)


def downgrade() -> None:
    """Revert this revision (fails if a stored value needs more than 32 bits)."""
    _retype(sa.BigInteger, sa.Integer)
