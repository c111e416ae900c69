"""Rebalance plans with their trades, and smart-order-router parents (algorithm orders).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import ExactDecimal, JSONDoc, UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rebalance_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("trigger_detail", JSONDoc(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("equity", ExactDecimal(), nullable=False),
        sa.Column("turnover", ExactDecimal(), nullable=False),
        sa.Column("est_commission", ExactDecimal(), nullable=False),
        sa.Column("est_spread", ExactDecimal(), nullable=False),
        sa.Column("est_impact", ExactDecimal(), nullable=False),
        sa.Column("price_tolerance_bps", ExactDecimal(), nullable=False),
        sa.Column("current_weights", JSONDoc(), nullable=False),
        sa.Column("target_weights", JSONDoc(), nullable=False),
        sa.Column("notes", JSONDoc(), nullable=False),
        sa.Column("history", JSONDoc(), nullable=False),
        sa.Column("autonomous", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebalance_plans")),
    )
    with op.batch_alter_table("rebalance_plans", schema=None) as batch_op:
        batch_op.create_index("ix_rebalance_plans_status", ["status"], unique=False)

    op.create_table(
        "algo_orders",
        sa.Column("parent_id", sa.String(length=128), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=32), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("arrival_price", ExactDecimal(), nullable=False),
        sa.Column("limit_price", ExactDecimal(), nullable=True),
        sa.Column("bound_price", ExactDecimal(), nullable=True),
        sa.Column("expected_cost_bps", ExactDecimal(), nullable=True),
        sa.Column("slices_total", sa.Integer(), nullable=False),
        sa.Column("slices_sent", sa.Integer(), nullable=False),
        sa.Column("slices_done", sa.Integer(), nullable=False),
        sa.Column("filled_qty", ExactDecimal(), nullable=False),
        sa.Column("avg_price", ExactDecimal(), nullable=True),
        sa.Column("slippage_bps", ExactDecimal(), nullable=True),
        sa.Column("commission", ExactDecimal(), nullable=False),
        sa.Column("schedule", JSONDoc(), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=True),
        sa.Column("regime", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["rebalance_plans.id"], name=op.f("fk_algo_orders_plan_id_rebalance_plans")
        ),
        sa.PrimaryKeyConstraint("parent_id", name=op.f("pk_algo_orders")),
    )
    with op.batch_alter_table("algo_orders", schema=None) as batch_op:
        batch_op.create_index("ix_algo_orders_plan_id", ["plan_id"], unique=False)
        batch_op.create_index("ix_algo_orders_status", ["status"], unique=False)

    op.create_table(
        "rebalance_trades",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=32), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("ref_price", ExactDecimal(), nullable=False),
        sa.Column("limit_price", ExactDecimal(), nullable=False),
        sa.Column("current_qty", ExactDecimal(), nullable=False),
        sa.Column("target_qty", ExactDecimal(), nullable=False),
        sa.Column("current_weight", ExactDecimal(), nullable=False),
        sa.Column("target_weight", ExactDecimal(), nullable=False),
        sa.Column("est_commission", ExactDecimal(), nullable=False),
        sa.Column("est_spread", ExactDecimal(), nullable=False),
        sa.Column("est_impact", ExactDecimal(), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=True),
        sa.Column("closes_position", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("filled_qty", ExactDecimal(), nullable=False),
        sa.Column("avg_price", ExactDecimal(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["rebalance_plans.id"],
            name=op.f("fk_rebalance_trades_plan_id_rebalance_plans"),
        ),
        sa.PrimaryKeyConstraint("plan_id", "seq", name=op.f("pk_rebalance_trades")),
    )


def downgrade() -> None:
    op.drop_table("rebalance_trades")
    with op.batch_alter_table("algo_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_algo_orders_status")
        batch_op.drop_index("ix_algo_orders_plan_id")

    op.drop_table("algo_orders")
    with op.batch_alter_table("rebalance_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_rebalance_plans_status")

    op.drop_table("rebalance_plans")
