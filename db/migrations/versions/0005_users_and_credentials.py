"""Dashboard users, encrypted broker credentials, and the journal's entry-time and open-trade
indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "credentials",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("masked", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_credentials")),
    )
    with op.batch_alter_table("trade_executions", schema=None) as batch_op:
        batch_op.create_index("ix_trade_executions_entry_time", ["entry_time"], unique=False)
        batch_op.create_index(
            "ix_trade_executions_status_ticker", ["status", "ticker"], unique=False
        )
        batch_op.create_index(
            "ix_trade_executions_status_exit_time", ["status", "exit_time", "pnl"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trade_executions", schema=None) as batch_op:
        batch_op.drop_index("ix_trade_executions_status_exit_time")
        batch_op.drop_index("ix_trade_executions_status_ticker")
        batch_op.drop_index("ix_trade_executions_entry_time")
    op.drop_table("credentials")
    op.drop_table("users")
