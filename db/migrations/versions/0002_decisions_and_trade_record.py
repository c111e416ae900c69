"""Stage decisions per signal (risk_decisions) and seed 000 R6.1 trade record fields.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import ExactDecimal, JSONDoc, UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", JSONDoc(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_id"], ["signals.id"], name=op.f("fk_risk_decisions_signal_id_signals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
    )
    op.create_index("ix_risk_decisions_signal_id", "risk_decisions", ["signal_id"], unique=False)
    with op.batch_alter_table("trade_executions") as batch:
        batch.add_column(sa.Column("trigger", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("strategy", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sector", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("regime", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("factor_scores", JSONDoc(), nullable=True))
        batch.add_column(sa.Column("portfolio_value", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trade_executions") as batch:
        for name in (
            "notes",
            "portfolio_value",
            "factor_scores",
            "regime",
            "sector",
            "strategy",
            "trigger",
        ):
            batch.drop_column(name)
    op.drop_index("ix_risk_decisions_signal_id", table_name="risk_decisions")
    op.drop_table("risk_decisions")
