"""Typed ORM rows of the store. Money and quantities are exact, timestamps UTC.

Every change here needs an Alembic revision in ``db/migrations/versions``; a test compares this
metadata with the migrated database and fails on any difference.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.domain import utcnow
from db.types import ExactDecimal, JSONDoc, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SYMBOL = 32
ENUM = 32
ID = 128
NAME = 64


class Base(DeclarativeBase):
    """Declarative base with one naming convention, so constraint names match on every engine."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        Decimal: ExactDecimal(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDoc(),
    }


class SignalRow(Base):
    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL))
    # direction, entry and stop are empty only on signals rejected at intake because they were
    # missing or unreadable (the raw input is kept in metadata["raw"]).
    direction: Mapped[str | None] = mapped_column(String(ENUM))
    trade_type: Mapped[str] = mapped_column(String(ENUM))
    timeframe: Mapped[str] = mapped_column(String(16))
    entry: Mapped[Decimal | None]
    stop: Mapped[Decimal | None]
    target: Mapped[Decimal | None]
    qty: Mapped[Decimal | None]
    conviction: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(NAME))
    order_type: Mapped[str] = mapped_column(String(ENUM))
    status: Mapped[str] = mapped_column(String(ENUM))
    reason: Mapped[str | None] = mapped_column(Text)
    client_order_id: Mapped[str | None] = mapped_column(String(ID))
    # ``metadata`` is taken by the declarative class, hence the attribute name.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDoc())
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_status", "status"),
        Index("ix_orders_parent_id", "parent_id"),
        Index("ix_orders_created_at", "created_at"),
    )

    client_order_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    broker: Mapped[str | None] = mapped_column(String(NAME))
    broker_order_id: Mapped[str | None] = mapped_column(String(ID))
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"))
    parent_id: Mapped[str | None] = mapped_column(String(ID))
    symbol: Mapped[str] = mapped_column(String(SYMBOL))
    side: Mapped[str] = mapped_column(String(ENUM))
    qty: Mapped[Decimal]
    order_type: Mapped[str] = mapped_column(String(ENUM))
    time_in_force: Mapped[str] = mapped_column(String(ENUM))
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    trail_percent: Mapped[Decimal | None]
    trail_price: Mapped[Decimal | None]
    take_profit_price: Mapped[Decimal | None]
    stop_loss_price: Mapped[Decimal | None]
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    instrument_type: Mapped[str] = mapped_column(String(ENUM))
    status: Mapped[str] = mapped_column(String(ENUM))
    filled_qty: Mapped[Decimal]
    #: A notional order's dollar amount (``qty`` is then the estimate the broker refines).
    notional: Mapped[Decimal | None]
    avg_fill_price: Mapped[Decimal | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderStatusHistoryRow(Base):
    __tablename__ = "order_status_history"
    __table_args__ = (UniqueConstraint("client_order_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(ENUM))
    to_status: Mapped[str] = mapped_column(String(ENUM))
    at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("broker", "fill_id"),
        Index("ix_fills_client_order_id", "client_order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fill_id: Mapped[str] = mapped_column(String(ID))
    broker: Mapped[str] = mapped_column(String(NAME))
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"))
    broker_order_id: Mapped[str | None] = mapped_column(String(ID))
    symbol: Mapped[str] = mapped_column(String(SYMBOL))
    side: Mapped[str] = mapped_column(String(ENUM))
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    expected_price: Mapped[Decimal | None]
    slippage_bps: Mapped[Decimal | None]
    commission: Mapped[Decimal]
    at: Mapped[datetime]


class PositionRow(Base):
    __tablename__ = "positions"

    symbol: Mapped[str] = mapped_column(String(SYMBOL), primary_key=True)
    qty: Mapped[Decimal]
    avg_entry_price: Mapped[Decimal]
    current_price: Mapped[Decimal | None]
    instrument_type: Mapped[str] = mapped_column(String(ENUM))
    opened_at: Mapped[datetime | None]
    realized_pnl: Mapped[Decimal]
    updated_at: Mapped[datetime]


class TradeExecutionRow(Base):
    """Seed 001 ``trade_executions`` with exact money, UTC times and a JSON document."""

    __tablename__ = "trade_executions"
    __table_args__ = (
        Index("ix_trade_executions_signal_id", "signal_id"),
        Index("ix_trade_executions_ticker", "ticker"),
        Index("ix_trade_executions_entry_time", "entry_time"),
        Index("ix_trade_executions_status_ticker", "status", "ticker"),
        Index("ix_trade_executions_status_exit_time", "status", "exit_time", "pnl"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[int | None] = mapped_column(Integer)
    ticker: Mapped[str] = mapped_column(String(SYMBOL))
    instrument_type: Mapped[str] = mapped_column(String(20), default="stock")
    original_ticker: Mapped[str | None] = mapped_column(String(SYMBOL))
    leverage: Mapped[Decimal] = mapped_column(default=Decimal(1))
    direction: Mapped[str] = mapped_column(String(10))
    trade_type: Mapped[str] = mapped_column(String(10))
    entry_price: Mapped[Decimal]
    exit_price: Mapped[Decimal | None]
    shares: Mapped[Decimal]
    stop_loss: Mapped[Decimal | None]
    target_price: Mapped[Decimal | None]
    conviction: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")
    exit_reason: Mapped[str | None] = mapped_column(String(50))
    pnl: Mapped[Decimal | None]
    pnl_pct: Mapped[Decimal | None]
    broker: Mapped[str | None] = mapped_column(String(20))
    order_id: Mapped[str | None] = mapped_column(String(100))
    entry_time: Mapped[datetime]
    exit_time: Mapped[datetime | None]
    metadata_json: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # seed 000 R6.1 (revision 0002)
    trigger: Mapped[str | None] = mapped_column(String(NAME))
    strategy: Mapped[str | None] = mapped_column(String(NAME))
    sector: Mapped[str | None] = mapped_column(String(NAME))
    regime: Mapped[str | None] = mapped_column(String(NAME))
    factor_scores: Mapped[dict[str, Any] | None]
    portfolio_value: Mapped[Decimal | None]
    notes: Mapped[str | None] = mapped_column(Text)


class DailyPnlRow(Base):
    """Seed 001 ``daily_pnl``: one row per session date."""

    __tablename__ = "daily_pnl"
    __table_args__ = (UniqueConstraint("date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(Date)
    starting_equity: Mapped[Decimal]
    ending_equity: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    unrealized_pnl: Mapped[Decimal]
    total_trades: Mapped[int] = mapped_column(Integer)
    winning_trades: Mapped[int] = mapped_column(Integer)
    losing_trades: Mapped[int] = mapped_column(Integer)
    max_drawdown: Mapped[Decimal | None]
    kill_switch_triggered: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_json: Mapped[dict[str, Any] | None]


class CommandRow(Base):
    """The dashboard-to-executor inbox, kept as the audit trail of every human action."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(NAME))
    payload: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(ENUM))
    result: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[datetime | None]


class SettingRow(Base):
    """Versioned settings: each put adds a version, the highest version is current."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # JSON documents may be any JSON value here (numbers, lists, strings), not only objects.
    value: Mapped[Any] = mapped_column(JSONDoc())
    updated_by: Mapped[str] = mapped_column(String(NAME))
    updated_at: Mapped[datetime]


class ExecutorLeaseRow(Base):
    __tablename__ = "executor_lease"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    info: Mapped[dict[str, Any]]


class RiskDecisionRow(Base):
    """Each pipeline stage's decision on a signal (revision 0002)."""

    __tablename__ = "risk_decisions"
    __table_args__ = (Index("ix_risk_decisions_signal_id", "signal_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"))
    stage: Mapped[str] = mapped_column(String(NAME))
    approved: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class AlertRow(Base):
    """Alerts for the trader (revision 0003)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(NAME))
    level: Mapped[str] = mapped_column(String(NAME))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    at: Mapped[datetime]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]


class RebalancePlanRow(Base):
    """A rebalance plan and its life (revision 0004); its trades are ``rebalance_trades``."""

    __tablename__ = "rebalance_plans"
    __table_args__ = (Index("ix_rebalance_plans_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(ENUM))
    trigger: Mapped[str] = mapped_column(String(ENUM))
    trigger_detail: Mapped[dict[str, Any]]
    method: Mapped[str] = mapped_column(String(ENUM))
    equity: Mapped[Decimal]
    turnover: Mapped[Decimal]
    est_commission: Mapped[Decimal]
    est_spread: Mapped[Decimal]
    est_impact: Mapped[Decimal]
    price_tolerance_bps: Mapped[Decimal]
    current_weights: Mapped[dict[str, Any]]
    target_weights: Mapped[dict[str, Any]]
    notes: Mapped[dict[str, Any]]
    history: Mapped[dict[str, Any]]
    autonomous: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(NAME))
    approved_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)


class RebalanceTradeRow(Base):
    """One trade of a rebalance plan (revision 0004)."""

    __tablename__ = "rebalance_trades"

    plan_id: Mapped[int] = mapped_column(ForeignKey("rebalance_plans.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    symbol: Mapped[str] = mapped_column(String(SYMBOL))
    side: Mapped[str] = mapped_column(String(ENUM))
    qty: Mapped[Decimal]
    ref_price: Mapped[Decimal]
    limit_price: Mapped[Decimal]
    current_qty: Mapped[Decimal]
    target_qty: Mapped[Decimal]
    current_weight: Mapped[Decimal]
    target_weight: Mapped[Decimal]
    est_commission: Mapped[Decimal]
    est_spread: Mapped[Decimal]
    est_impact: Mapped[Decimal]
    algorithm: Mapped[str] = mapped_column(String(ENUM))
    sector: Mapped[str | None] = mapped_column(String(NAME))
    closes_position: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(ENUM))
    client_order_id: Mapped[str | None] = mapped_column(String(ID))
    filled_qty: Mapped[Decimal]
    avg_price: Mapped[Decimal | None]
    reason: Mapped[str | None] = mapped_column(Text)


class AlgoOrderRow(Base):
    """A smart-order-router parent (revision 0004): its child orders carry its id as
    ``orders.parent_id``; progress and the aggregated result are kept here."""

    __tablename__ = "algo_orders"
    __table_args__ = (
        Index("ix_algo_orders_status", "status"),
        Index("ix_algo_orders_plan_id", "plan_id"),
    )

    parent_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("rebalance_plans.id"))
    symbol: Mapped[str] = mapped_column(String(SYMBOL))
    side: Mapped[str] = mapped_column(String(ENUM))
    qty: Mapped[Decimal]
    algorithm: Mapped[str] = mapped_column(String(ENUM))
    status: Mapped[str] = mapped_column(String(ENUM))
    arrival_price: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    bound_price: Mapped[Decimal | None]
    expected_cost_bps: Mapped[Decimal | None]
    slices_total: Mapped[int] = mapped_column(Integer)
    slices_sent: Mapped[int] = mapped_column(Integer)
    slices_done: Mapped[int] = mapped_column(Integer)
    filled_qty: Mapped[Decimal]
    avg_price: Mapped[Decimal | None]
    slippage_bps: Mapped[Decimal | None]
    commission: Mapped[Decimal]
    schedule: Mapped[dict[str, Any]]
    strategy: Mapped[str] = mapped_column(String(NAME))
    sector: Mapped[str | None] = mapped_column(String(NAME))
    regime: Mapped[str | None] = mapped_column(String(NAME))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReconciliationDiffRow(Base):
    __tablename__ = "reconciliation_diffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(NAME))
    key: Mapped[str] = mapped_column(String(ID))
    ours: Mapped[str | None] = mapped_column(Text)
    theirs: Mapped[str | None] = mapped_column(Text)
    broker: Mapped[str] = mapped_column(String(NAME))
    at: Mapped[datetime]


class PaperAccountRow(Base):
    __tablename__ = "paper_accounts"

    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class PaperOrderRow(Base):
    __tablename__ = "paper_orders"

    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class PaperFillRow(Base):
    __tablename__ = "paper_fills"

    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    fill_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    data: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class UserRow(Base):
    """Dashboard users (revision 0005): bcrypt hashes only, never a password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(NAME), unique=True)
    name: Mapped[str] = mapped_column(String(NAME))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(ENUM))
    password_hash: Mapped[str] = mapped_column(String(128))
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class CredentialRow(Base):
    """Broker credentials, AES-256-GCM encrypted by ``core.vault`` (revision 0005)."""

    __tablename__ = "credentials"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(NAME))
    masked: Mapped[str] = mapped_column(String(NAME))
    updated_by: Mapped[str] = mapped_column(String(NAME))
    updated_at: Mapped[datetime]


# Core handles for the repositories' statements (the hot path avoids ORM object loading).
SIGNALS = cast(Table, SignalRow.__table__)
ORDERS = cast(Table, OrderRow.__table__)
ORDER_HISTORY = cast(Table, OrderStatusHistoryRow.__table__)
FILLS = cast(Table, FillRow.__table__)
POSITIONS = cast(Table, PositionRow.__table__)
TRADES = cast(Table, TradeExecutionRow.__table__)
DAILY_PNL = cast(Table, DailyPnlRow.__table__)
COMMANDS = cast(Table, CommandRow.__table__)
SETTINGS = cast(Table, SettingRow.__table__)
LEASES = cast(Table, ExecutorLeaseRow.__table__)
RECONCILIATION = cast(Table, ReconciliationDiffRow.__table__)
DECISIONS = cast(Table, RiskDecisionRow.__table__)
ALERTS = cast(Table, AlertRow.__table__)
REBALANCE_PLANS = cast(Table, RebalancePlanRow.__table__)
REBALANCE_TRADES = cast(Table, RebalanceTradeRow.__table__)
ALGO_ORDERS = cast(Table, AlgoOrderRow.__table__)
USERS = cast(Table, UserRow.__table__)
CREDENTIALS = cast(Table, CredentialRow.__table__)
PAPER_ACCOUNTS = cast(Table, PaperAccountRow.__table__)
PAPER_ORDERS = cast(Table, PaperOrderRow.__table__)
PAPER_FILLS = cast(Table, PaperFillRow.__table__)
