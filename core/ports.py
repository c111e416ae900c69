"""Ports: the small interfaces the engine depends on. Adapters live in ``core.brokers``,
``core.marketdata`` and the ``db`` package; only ``app/runtime.py`` (and tests) wire them together.

Method tables (R = required for every adapter, O = optional):

Broker            connect R, close R, get_account R, get_positions R, get_orders R, get_order R,
                  get_fills R, submit_order R, cancel_order R, cancel_all R, updates R
MarketData        symbols R, quote R, bars R, average_daily_volume R
Clock             now R
MarketCalendar    is_open R, session_date R, session_open R, session_close R, next_open R
Store             unit_of_work R, paper_ledger R
UnitOfWork        signals, orders, fills, positions, journal, commands, settings, lease,
                  reconciliation, decisions, alerts, rebalance, algos (repositories, all R);
                  commit R, rollback R
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from core.domain import (
    AccountState,
    Alert,
    Bar,
    BrokerEvent,
    BrokerOrder,
    Command,
    CommandStatus,
    DailyPnl,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
    ReconciliationDiff,
    Signal,
    StageDecision,
    TradeExecution,
)
from core.execution.parent import ParentOrder
from core.rebalance.model import PlanStatus, RebalancePlan
from core.users import Role, User

# ---------------------------------------------------------------------------------------------
# Errors adapters raise
# ---------------------------------------------------------------------------------------------


class BrokerError(Exception):
    """Base class for broker failures."""


class OrderRejected(BrokerError):
    """A business rejection: the broker received the order and refused it. Never fail over."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class BrokerUnavailable(BrokerError):
    """Connectivity failure or an ambiguous outcome (timeout, 5xx, dropped socket).

    After this from ``submit_order`` the order may or may not exist at the broker: look it up by
    client order id before doing anything else; never re-send blindly.
    """


class UnknownOrder(BrokerError):
    """The broker has no order with that id."""


class UnknownSymbol(ValueError):
    """Market data has no such symbol."""


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class MarketCalendar(Protocol):
    """Exchange sessions (XNYS by default): holidays and early closes included."""

    def is_open(self, ts: datetime) -> bool: ...

    def session_date(self, ts: datetime) -> date | None:
        """The session ``ts`` falls in (open <= ts < close), or None outside sessions."""
        ...

    def session_open(self, session: date) -> datetime: ...

    def session_close(self, session: date) -> datetime: ...

    def next_open(self, ts: datetime) -> datetime:
        """The first session open strictly after ``ts``."""
        ...

    def previous_session(self, ts: datetime) -> date:
        """The latest session whose open is at or before ``ts``."""
        ...


# ---------------------------------------------------------------------------------------------
# Market data
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class MarketData(Protocol):
    """Quotes, bars and liquidity for a set of symbols. Times are UTC."""

    clock: Clock
    calendar: MarketCalendar

    def symbols(self) -> frozenset[str]: ...

    async def quote(self, symbol: str) -> Quote:
        """Latest bid/ask/last at ``clock.now()``. Raises UnknownSymbol."""
        ...

    async def bars(
        self,
        symbol: str,
        timeframe: str = "1Min",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Completed bars (``bar.end <= end``, default now) with ``bar.end > start``, oldest first.

        ``timeframe`` is one of ``1Min``, ``5Min``, ``10Min``, ``15Min``, ``1Hour``, ``1Day``.
        ``limit`` keeps the most recent N.
        """
        ...

    async def average_daily_volume(self, symbol: str) -> Decimal:
        """Average daily volume in shares (Decimal)."""
        ...


# ---------------------------------------------------------------------------------------------
# Broker
# ---------------------------------------------------------------------------------------------


class Broker(Protocol):
    """An account at a broker. Only the executor thread calls it.

    ``submit_order`` acknowledges (status submitted/accepted) or raises OrderRejected /
    BrokerUnavailable; fills and terminal statuses arrive through ``updates``. Order ids passed
    in are our client order ids.
    """

    name: str

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def get_account(self) -> AccountState: ...

    async def get_positions(self) -> list[Position]: ...

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        """``status`` is ``open``, ``closed`` or ``all``."""
        ...

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """Look an order up by our client order id; None if the broker never saw it."""
        ...

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        """Executions, optionally for one order or since a time. Used to recover missed fills."""
        ...

    async def submit_order(self, request: OrderRequest) -> BrokerOrder: ...

    async def cancel_order(self, client_order_id: str) -> bool:
        """Request cancellation; False if the order is already final. Raises UnknownOrder."""
        ...

    async def cancel_all(self) -> int:
        """Request cancellation of every open order; returns how many."""
        ...

    async def updates(self) -> list[BrokerEvent]:
        """Events since the last call, oldest first (non-blocking)."""
        ...


# ---------------------------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    heartbeat_at: datetime
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SettingValue:
    key: str
    value: Any  # JSON-serialisable
    version: int
    updated_by: str
    updated_at: datetime


class SignalRepository(Protocol):
    def add(self, signal: Signal) -> int: ...

    def add_many(self, signals: Sequence[Signal]) -> list[int]: ...

    def get(self, signal_id: int) -> Signal | None: ...

    def pending(self, limit: int = 100) -> list[Signal]:
        """Pending signals, oldest (lowest id) first."""
        ...

    def mark_routed(self, signal_id: int, client_order_id: str, at: datetime) -> None: ...

    def mark_rejected(self, signal_id: int, reason: str, at: datetime) -> None: ...

    def recent(self, limit: int = 100, status: str | None = None) -> list[Signal]: ...


class OrderRepository(Protocol):
    def add(self, order: Order) -> None:
        """Insert the order and its status history. Duplicate client_order_id raises."""
        ...

    def update(self, order: Order) -> None:
        """Persist status, fill progress, broker ids and any history entries not yet stored."""
        ...

    def get(self, client_order_id: str) -> Order | None: ...

    def with_status(self, statuses: Sequence[OrderStatus]) -> list[Order]: ...

    def open_orders(self) -> list[Order]:
        """Orders that are neither new nor terminal."""
        ...

    def recent(self, limit: int = 100) -> list[Order]: ...

    def children(self, parent_id: str) -> list[Order]: ...


class FillRepository(Protocol):
    def add(self, fill: Fill) -> bool:
        """Record a fill; False (and no change) if its (broker, fill_id) is already stored."""
        ...

    def for_order(self, client_order_id: str) -> list[Fill]: ...

    def recent(self, limit: int = 100) -> list[Fill]: ...

    def count(self) -> int: ...


class PositionRepository(Protocol):
    def get(self, symbol: str) -> Position | None: ...

    def all(self) -> list[Position]:
        """Open positions (qty != 0)."""
        ...

    def upsert(self, position: Position) -> None:
        """Store the position; qty 0 removes it."""
        ...


class JournalRepository(Protocol):
    def open_trade(self, trade: TradeExecution) -> int: ...

    def open_trade_for(self, ticker: str) -> TradeExecution | None: ...

    def open_trades(self) -> list[TradeExecution]: ...

    def update_trade(self, trade: TradeExecution) -> None: ...

    def trades(self, limit: int = 100, ticker: str | None = None) -> list[TradeExecution]: ...

    def trades_since(self, since: datetime, ticker: str | None = None) -> list[TradeExecution]:
        """Trades entered at or after ``since`` (optionally in one ticker), newest first."""
        ...

    def closed_between(self, start: datetime, end: datetime) -> list[TradeExecution]:
        """Closed trades whose exit time lies in ``[start, end)``, in exit order."""
        ...

    def upsert_daily_pnl(self, row: DailyPnl) -> None: ...

    def daily_pnl(self, day: date) -> DailyPnl | None: ...

    def track_record(self) -> tuple[int, int]:
        """(sessions in which a trade closed, closed trades)."""
        ...


class CommandRepository(Protocol):
    def add(self, command: Command) -> int: ...

    def get(self, command_id: int) -> Command | None: ...

    def pending(self, limit: int = 100) -> list[Command]: ...

    def mark(self, command_id: int, status: CommandStatus, result: str, at: datetime) -> None: ...

    def recent(self, limit: int = 100) -> list[Command]: ...


class SettingsRepository(Protocol):
    def get(self, key: str) -> SettingValue | None: ...

    def put(self, key: str, value: Any, by: str, at: datetime) -> int:
        """Store a new version; returns its version number (1 for the first)."""
        ...

    def history(self, key: str) -> list[SettingValue]: ...


class LeaseRepository(Protocol):
    def try_acquire(
        self,
        name: str,
        holder: str,
        now: datetime,
        ttl: timedelta,
        info: dict[str, Any] | None = None,
    ) -> bool:
        """Take or renew the lease if it is free, expired or already ours. Also the heartbeat."""
        ...

    def release(self, name: str, holder: str) -> None: ...

    def get(self, name: str) -> LeaseInfo | None: ...


class ReconciliationRepository(Protocol):
    def add(self, diff: ReconciliationDiff) -> None: ...

    def recent(self, limit: int = 100) -> list[ReconciliationDiff]: ...


class DecisionRepository(Protocol):
    def add(self, decision: StageDecision) -> None: ...

    def add_many(self, decisions: list[StageDecision]) -> None: ...

    def for_signal(self, signal_id: int) -> list[StageDecision]: ...

    def recent(self, limit: int = 100) -> list[StageDecision]: ...


class AlertRepository(Protocol):
    def add(self, alert: Alert) -> int: ...

    def recent(self, limit: int = 100, unacknowledged: bool = False) -> list[Alert]: ...

    def acknowledge(self, alert_id: int, by: str, at: datetime) -> bool: ...


class RebalanceRepository(Protocol):
    def add(self, plan: RebalancePlan) -> int:
        """Insert the plan and its trades; sets and returns ``plan.id``."""
        ...

    def update(self, plan: RebalancePlan) -> None: ...

    def get(self, plan_id: int) -> RebalancePlan | None: ...

    def recent(self, limit: int = 50, status: PlanStatus | None = None) -> list[RebalancePlan]:
        """Newest first."""
        ...

    def active(self) -> list[RebalancePlan]:
        """Approved and executing plans, oldest first."""
        ...

    def proposed(self) -> list[RebalancePlan]: ...


class AlgoOrderRepository(Protocol):
    def add(self, parent: ParentOrder) -> None: ...

    def update(self, parent: ParentOrder) -> None: ...

    def get(self, parent_id: str) -> ParentOrder | None: ...

    def working(self) -> list[ParentOrder]: ...

    def for_plan(self, plan_id: int) -> list[ParentOrder]: ...

    def recent(self, limit: int = 100) -> list[ParentOrder]:
        """Newest first."""
        ...


class UserRepository(Protocol):
    """Dashboard users (``core.users.User``); hashes only."""

    def count(self) -> int: ...

    def active_admins(self) -> int: ...

    def add(self, user: User) -> int: ...

    def get(self, username: str) -> User | None: ...

    def all(self) -> list[User]: ...

    def set_role(self, username: str, role: Role) -> bool: ...

    def set_disabled(self, username: str, disabled: bool) -> bool: ...

    def set_password_hash(self, username: str, password_hash: str) -> bool: ...

    def record_login(self, username: str, at: datetime) -> bool: ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the ``with`` block without ``commit()`` rolls back."""

    signals: SignalRepository
    orders: OrderRepository
    fills: FillRepository
    positions: PositionRepository
    journal: JournalRepository
    commands: CommandRepository
    settings: SettingsRepository
    lease: LeaseRepository
    reconciliation: ReconciliationRepository
    decisions: DecisionRepository
    alerts: AlertRepository
    rebalance: RebalanceRepository
    algos: AlgoOrderRepository
    users: UserRepository

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@dataclass(slots=True)
class PaperSnapshot:
    """Everything a paper account has persisted, as plain JSON-able dicts."""

    account: dict[str, Any] | None
    orders: list[dict[str, Any]]
    fills: list[dict[str, Any]]


class PaperLedger(Protocol):
    """Durable storage for one paper account (the paper broker's own books, not the executor's)."""

    def load(self) -> PaperSnapshot: ...

    def save(
        self,
        account: dict[str, Any] | None = None,
        orders: Sequence[dict[str, Any]] = (),
        fills: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Atomically write the account state, upsert the given orders (keyed by their
        ``client_order_id``) and insert the given fills (keyed by ``fill_id``)."""
        ...


class Store(Protocol):
    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work; ``read_only`` ones never take the write lock."""
        ...

    def paper_ledger(self, account: str) -> PaperLedger: ...

    def checkpoint(self) -> None:
        """Housekeeping between ticks (SQLite: checkpoint the write-ahead log)."""
        ...
