"""Initial schema: signals, orders and their history, fills, positions, journal, commands,
settings, executor lease, reconciliation diffs and the paper broker's books.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import ExactDecimal, JSONDoc, UTCDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", JSONDoc(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("applied_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    op.create_index("ix_commands_status_id", "commands", ["status", "id"])
    op.create_table(
        "daily_pnl",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("starting_equity", ExactDecimal(), nullable=False),
        sa.Column("ending_equity", ExactDecimal(), nullable=False),
        sa.Column("realized_pnl", ExactDecimal(), nullable=False),
        sa.Column("unrealized_pnl", ExactDecimal(), nullable=False),
        sa.Column("total_trades", sa.Integer(), nullable=False),
        sa.Column("winning_trades", sa.Integer(), nullable=False),
        sa.Column("losing_trades", sa.Integer(), nullable=False),
        sa.Column("max_drawdown", ExactDecimal(), nullable=True),
        sa.Column("kill_switch_triggered", sa.Boolean(), nullable=False),
        sa.Column("metadata_json", JSONDoc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_pnl")),
        sa.UniqueConstraint("date", name=op.f("uq_daily_pnl_date")),
    )
    op.create_table(
        "executor_lease",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("info", JSONDoc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_executor_lease")),
    )
    op.create_table(
        "paper_accounts",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("state", JSONDoc(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_paper_accounts")),
    )
    op.create_table(
        "paper_fills",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("fill_id", sa.String(length=128), nullable=False),
        sa.Column("data", JSONDoc(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "fill_id", name=op.f("pk_paper_fills")),
    )
    op.create_table(
        "paper_orders",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("data", JSONDoc(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "client_order_id", name=op.f("pk_paper_orders")),
    )
    op.create_table(
        "positions",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("avg_entry_price", ExactDecimal(), nullable=False),
        sa.Column("current_price", ExactDecimal(), nullable=True),
        sa.Column("instrument_type", sa.String(length=32), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("realized_pnl", ExactDecimal(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_positions")),
    )
    op.create_table(
        "reconciliation_diffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("ours", sa.Text(), nullable=True),
        sa.Column("theirs", sa.Text(), nullable=True),
        sa.Column("broker", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_diffs")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", JSONDoc(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", "version", name=op.f("pk_settings")),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=True),
        sa.Column("trade_type", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("entry", ExactDecimal(), nullable=True),
        sa.Column("stop", ExactDecimal(), nullable=True),
        sa.Column("target", ExactDecimal(), nullable=True),
        sa.Column("qty", ExactDecimal(), nullable=True),
        sa.Column("conviction", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("order_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("metadata", JSONDoc(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
    )
    op.create_index("ix_signals_status_id", "signals", ["status", "id"])
    op.create_table(
        "trade_executions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=True),
        sa.Column("ticker", sa.String(length=32), nullable=False),
        sa.Column("instrument_type", sa.String(length=20), nullable=False),
        sa.Column("original_ticker", sa.String(length=32), nullable=True),
        sa.Column("leverage", ExactDecimal(), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("trade_type", sa.String(length=10), nullable=False),
        sa.Column("entry_price", ExactDecimal(), nullable=False),
        sa.Column("exit_price", ExactDecimal(), nullable=True),
        sa.Column("shares", ExactDecimal(), nullable=False),
        sa.Column("stop_loss", ExactDecimal(), nullable=True),
        sa.Column("target_price", ExactDecimal(), nullable=True),
        sa.Column("conviction", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("exit_reason", sa.String(length=50), nullable=True),
        sa.Column("pnl", ExactDecimal(), nullable=True),
        sa.Column("pnl_pct", ExactDecimal(), nullable=True),
        sa.Column("broker", sa.String(length=20), nullable=True),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("entry_time", UTCDateTime(), nullable=False),
        sa.Column("exit_time", UTCDateTime(), nullable=True),
        sa.Column("metadata_json", JSONDoc(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_executions")),
    )
    op.create_index("ix_trade_executions_signal_id", "trade_executions", ["signal_id"])
    op.create_index("ix_trade_executions_ticker", "trade_executions", ["ticker"])
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("broker", sa.String(length=64), nullable=True),
        sa.Column("broker_order_id", sa.String(length=128), nullable=True),
        sa.Column("signal_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=32), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("order_type", sa.String(length=32), nullable=False),
        sa.Column("time_in_force", sa.String(length=32), nullable=False),
        sa.Column("limit_price", ExactDecimal(), nullable=True),
        sa.Column("stop_price", ExactDecimal(), nullable=True),
        sa.Column("trail_percent", ExactDecimal(), nullable=True),
        sa.Column("trail_price", ExactDecimal(), nullable=True),
        sa.Column("take_profit_price", ExactDecimal(), nullable=True),
        sa.Column("stop_loss_price", ExactDecimal(), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("instrument_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("filled_qty", ExactDecimal(), nullable=False),
        sa.Column("avg_fill_price", ExactDecimal(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_id"], ["signals.id"], name=op.f("fk_orders_signal_id_signals")
        ),
        sa.PrimaryKeyConstraint("client_order_id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_parent_id", "orders", ["parent_id"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fill_id", sa.String(length=128), nullable=False),
        sa.Column("broker", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("broker_order_id", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=32), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("expected_price", ExactDecimal(), nullable=True),
        sa.Column("slippage_bps", ExactDecimal(), nullable=True),
        sa.Column("commission", ExactDecimal(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_fills_client_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("broker", "fill_id", name=op.f("uq_fills_broker_fill_id")),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    op.create_table(
        "order_status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_order_status_history_client_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_history")),
        sa.UniqueConstraint(
            "client_order_id", "seq", name=op.f("uq_order_status_history_client_order_id_seq")
        ),
    )


def downgrade() -> None:
    # Children before parents, so foreign keys never dangle.
    for table in (
        "order_status_history",
        "fills",
        "orders",
        "trade_executions",
        "signals",
        "settings",
        "reconciliation_diffs",
        "positions",
        "paper_orders",
        "paper_fills",
        "paper_accounts",
        "executor_lease",
        "daily_pnl",
        "commands",
    ):
        op.drop_table(table)
