"""Order Book: working orders, recent fills, order history with filters, one order's status
history, and the smart order router's parents with their progress.

Every view filters and limits in SQL (the history is newest first, 500 rows unless asked
otherwise) and keeps money exact: prices, quantities and commissions are Decimals.

Orders and fills carry a ``contract`` column after the symbol: ``SPY 2026-11-20 600 C`` for an
option (read from its OCC symbol; prices are per share of premium), ``None`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Select, case, select

from core.domain import OrderStatus
from core.execution.parent import ParentStatus
from db.queries.contracts import contract_label
from db.queries.positions import OPEN_ORDER_STATUSES
from db.tables import ALGO_ORDERS, FILLS, ORDER_HISTORY, ORDERS

if TYPE_CHECKING:
    from db.store import SqlStore

HISTORY_LIMIT = 500
FILLS_LIMIT = 50
OPEN_LIMIT = 500
PARENTS_LIMIT = 20

#: Every order status, in life-cycle order (the status filter's choices).
ORDER_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus)

_ORDER_COLUMNS = (
    ORDERS.c.client_order_id,
    ORDERS.c.created_at,
    ORDERS.c.symbol,
    ORDERS.c.side,
    ORDERS.c.qty,
    ORDERS.c.filled_qty,
    ORDERS.c.order_type,
    ORDERS.c.limit_price,
    ORDERS.c.stop_price,
    ORDERS.c.time_in_force,
    ORDERS.c.status,
    ORDERS.c.avg_fill_price,
    ORDERS.c.broker,
    ORDERS.c.broker_order_id,
    ORDERS.c.parent_id,
    ORDERS.c.reduce_only,
    ORDERS.c.instrument_type,
    ORDERS.c.reason,
    ORDERS.c.updated_at,
)
_NEWEST_FIRST = (ORDERS.c.created_at.desc(), ORDERS.c.client_order_id.desc())

_FILL_COLUMNS = (
    FILLS.c.id,
    FILLS.c.at,
    FILLS.c.symbol,
    FILLS.c.side,
    FILLS.c.qty,
    FILLS.c.price,
    FILLS.c.expected_price,
    FILLS.c.slippage_bps,
    FILLS.c.commission,
    FILLS.c.client_order_id,
    FILLS.c.broker,
    FILLS.c.fill_id,
)

_HISTORY_COLUMNS = (
    ORDER_HISTORY.c.seq,
    ORDER_HISTORY.c.from_status,
    ORDER_HISTORY.c.to_status,
    ORDER_HISTORY.c.at,
    ORDER_HISTORY.c.reason,
)

_PARENT_COLUMNS = (
    ALGO_ORDERS.c.parent_id,
    ALGO_ORDERS.c.symbol,
    ALGO_ORDERS.c.side,
    ALGO_ORDERS.c.algorithm,
    ALGO_ORDERS.c.status,
    ALGO_ORDERS.c.qty,
    ALGO_ORDERS.c.filled_qty,
    ALGO_ORDERS.c.slices_done,
    ALGO_ORDERS.c.slices_sent,
    ALGO_ORDERS.c.slices_total,
    ALGO_ORDERS.c.arrival_price,
    ALGO_ORDERS.c.avg_price,
    ALGO_ORDERS.c.limit_price,
    ALGO_ORDERS.c.slippage_bps,
    ALGO_ORDERS.c.commission,
    ALGO_ORDERS.c.strategy,
    ALGO_ORDERS.c.plan_id,
    ALGO_ORDERS.c.reason,
    ALGO_ORDERS.c.created_at,
    ALGO_ORDERS.c.updated_at,
)


@dataclass(frozen=True, slots=True)
class OrderFilterOptions:
    """The choices the history filters offer: what the store actually holds."""

    symbols: tuple[str, ...]
    brokers: tuple[str, ...]
    statuses: tuple[str, ...] = ORDER_STATUSES


def _values(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if v]


def _instant(value: date | datetime, *, end: bool) -> datetime:
    """A date means the whole UTC day: from its midnight, or up to the next midnight."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time.min, tzinfo=UTC)


def _frame(stmt: Select[Any], conn: Any, columns: Sequence[Any]) -> pd.DataFrame:
    names = [c.name for c in columns]
    return pd.DataFrame.from_records(list(conn.execute(stmt)), columns=names)


def with_contracts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``contract`` column after ``symbol``: the option contract each OCC
    symbol names (``SPY 2026-11-20 600 C``), ``None`` for other symbols."""
    labels = [contract_label(s) for s in frame["symbol"]]
    at = list(frame.columns).index("symbol") + 1
    frame.insert(at, "contract", pd.Series(labels, index=frame.index, dtype=object))
    return frame


class OrderQueries:
    """Read views of the Order Book page."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def open_orders(self, limit: int = OPEN_LIMIT) -> pd.DataFrame:
        """Orders still working at the broker (submitted, accepted, partially filled),
        newest first."""
        stmt = (
            select(*_ORDER_COLUMNS)
            .where(ORDERS.c.status.in_(OPEN_ORDER_STATUSES))
            .order_by(*_NEWEST_FIRST)
            .limit(limit)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            return with_contracts(_frame(stmt, uow.connection, _ORDER_COLUMNS))

    def recent_fills(self, limit: int = FILLS_LIMIT, symbol: str | None = None) -> pd.DataFrame:
        """The latest executions, newest recorded first."""
        stmt = select(*_FILL_COLUMNS).order_by(FILLS.c.id.desc()).limit(limit)
        if symbol:
            stmt = stmt.where(FILLS.c.symbol == symbol)
        with self.store.unit_of_work(read_only=True) as uow:
            return with_contracts(_frame(stmt, uow.connection, _FILL_COLUMNS))

    def history(
        self,
        statuses: str | Sequence[str] | None = None,
        symbols: str | Sequence[str] | None = None,
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        brokers: str | Sequence[str] | None = None,
        limit: int = HISTORY_LIMIT,
    ) -> pd.DataFrame:
        """Orders of any status, newest first, at most ``limit``.

        Empty filters match everything. ``start``/``end`` bound the creation time: a date is
        a whole UTC day (``end`` included), a datetime an instant (``end`` excluded).
        """
        stmt = select(*_ORDER_COLUMNS).order_by(*_NEWEST_FIRST).limit(limit)
        if wanted := _values(statuses):
            stmt = stmt.where(ORDERS.c.status.in_(wanted))
        if wanted := _values(symbols):
            stmt = stmt.where(ORDERS.c.symbol.in_(wanted))
        if wanted := _values(brokers):
            stmt = stmt.where(ORDERS.c.broker.in_(wanted))
        if start is not None:
            stmt = stmt.where(ORDERS.c.created_at >= _instant(start, end=False))
        if end is not None:
            stmt = stmt.where(ORDERS.c.created_at < _instant(end, end=True))
        with self.store.unit_of_work(read_only=True) as uow:
            return with_contracts(_frame(stmt, uow.connection, _ORDER_COLUMNS))

    def status_history(self, client_order_id: str) -> pd.DataFrame:
        """One order's status changes in order: seq, from_status, to_status, at, reason."""
        stmt = (
            select(*_HISTORY_COLUMNS)
            .where(ORDER_HISTORY.c.client_order_id == client_order_id)
            .order_by(ORDER_HISTORY.c.seq)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            return _frame(stmt, uow.connection, _HISTORY_COLUMNS)

    def filter_options(self) -> OrderFilterOptions:
        """The symbols and brokers that occur in the order book."""
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            symbols = conn.scalars(
                select(ORDERS.c.symbol).distinct().order_by(ORDERS.c.symbol)
            ).all()
            brokers = conn.scalars(
                select(ORDERS.c.broker)
                .where(ORDERS.c.broker.is_not(None))
                .distinct()
                .order_by(ORDERS.c.broker)
            ).all()
        return OrderFilterOptions(tuple(symbols), tuple(brokers))

    def algo_parents(self, limit: int = PARENTS_LIMIT) -> pd.DataFrame:
        """TWAP/VWAP (and other router) parents: those still working first, then the most
        recent, with slices done out of total and filled quantity out of quantity."""
        working = case((ALGO_ORDERS.c.status == ParentStatus.WORKING.value, 0), else_=1)
        stmt = (
            select(*_PARENT_COLUMNS)
            .order_by(working, ALGO_ORDERS.c.created_at.desc(), ALGO_ORDERS.c.parent_id.desc())
            .limit(limit)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            return _frame(stmt, uow.connection, _PARENT_COLUMNS)


__all__ = ["ORDER_STATUSES", "OrderFilterOptions", "OrderQueries", "with_contracts"]
