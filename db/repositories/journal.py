"""The trade journal: round trips (``trade_executions``) and daily P&L (seed 001 "Data Models")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update

from core.domain import (
    DailyPnl,
    Direction,
    InstrumentType,
    TradeExecution,
    TradeStatus,
    TradeType,
)
from db.errors import RowNotFoundError
from db.prepared import PreparedStatement
from db.repositories._base import InsertBuilder, Repository, enum_value, for_dialect
from db.tables import DAILY_PNL, TRADES

_TRADE_FIELDS = (
    "signal_id",
    "ticker",
    "original_ticker",
    "leverage",
    "entry_price",
    "exit_price",
    "shares",
    "stop_loss",
    "target_price",
    "conviction",
    "exit_reason",
    "pnl",
    "pnl_pct",
    "broker",
    "order_id",
    "entry_time",
    "exit_time",
    "trigger",
    "strategy",
    "sector",
    "regime",
    "portfolio_value",
    "notes",
)
_DAILY_FIELDS = (
    "starting_equity",
    "ending_equity",
    "realized_pnl",
    "unrealized_pnl",
    "total_trades",
    "winning_trades",
    "losing_trades",
    "max_drawdown",
    "kill_switch_triggered",
)


_INSERT_TRADE = insert(TRADES)
_OPEN_TRADE_FOR = (
    select(TRADES)
    .where(TRADES.c.ticker == bindparam("b_ticker"), TRADES.c.status == TradeStatus.OPEN.value)
    .order_by(TRADES.c.id.desc())
    .limit(1)
)
_TRADED_SESSIONS = select(func.count()).select_from(DAILY_PNL).where(DAILY_PNL.c.total_trades > 0)
_CLOSED_TRADES = (
    select(func.count()).select_from(TRADES).where(TRADES.c.status == TradeStatus.CLOSED.value)
)
_OPEN_TRADES = select(TRADES).where(TRADES.c.status == TradeStatus.OPEN.value).order_by(TRADES.c.id)
_UPDATABLE = (
    *_TRADE_FIELDS,
    "instrument_type",
    "direction",
    "trade_type",
    "status",
    "metadata_json",
    "factor_scores",
)
# Bind names differ from column names: SQLAlchemy reserves the column names for SET values.
_UPDATE_TRADE = PreparedStatement(
    update(TRADES)
    .where(TRADES.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}", type_=TRADES.c[name].type) for name in _UPDATABLE})
)
_TRADES_SINCE = select(TRADES).where(TRADES.c.entry_time >= bindparam("b_since"))
_CLOSED_BETWEEN = (
    select(TRADES)
    .where(
        TRADES.c.status == TradeStatus.CLOSED.value,
        TRADES.c.exit_time >= bindparam("b_start"),
        TRADES.c.exit_time < bindparam("b_end"),
    )
    .order_by(TRADES.c.exit_time, TRADES.c.id)
)
_SELECT_DAILY = select(DAILY_PNL).where(DAILY_PNL.c.date == bindparam("b_date"))


def _trade_params(t: TradeExecution) -> dict[str, Any]:
    params = {name: getattr(t, name) for name in _TRADE_FIELDS}
    params.update(
        instrument_type=enum_value(t.instrument_type),
        direction=enum_value(t.direction),
        trade_type=enum_value(t.trade_type),
        status=enum_value(t.status),
        metadata_json=t.metadata or {},
        factor_scores=t.factor_scores or {},
    )
    return params


def _trade_from_row(r: Row[Any]) -> TradeExecution:
    m = r._mapping
    return TradeExecution(
        **{name: m[name] for name in _TRADE_FIELDS},
        instrument_type=InstrumentType(m["instrument_type"]),
        direction=Direction(m["direction"]),
        trade_type=TradeType(m["trade_type"]),
        status=TradeStatus(m["status"]),
        metadata=dict(m["metadata_json"] or {}),
        factor_scores=dict(m["factor_scores"] or {}),
        id=m["id"],
    )


def _daily_from_row(r: Row[Any]) -> DailyPnl:
    m = r._mapping
    return DailyPnl(
        date=m["date"],
        **{name: m[name] for name in _DAILY_FIELDS},
        metadata=dict(m["metadata_json"] or {}),
    )


def _upsert_daily(ins: InsertBuilder) -> Any:
    stmt = ins(DAILY_PNL)
    return stmt.on_conflict_do_update(
        index_elements=[DAILY_PNL.c.date],
        set_={name: stmt.excluded[name] for name in (*_DAILY_FIELDS, "metadata_json")},
    )


_UPSERT_DAILY = PreparedStatement(for_dialect(_upsert_daily))


class SqlJournalRepository(Repository):
    """Round-trip trades and one P&L summary per session date."""

    __slots__ = ()

    def open_trade(self, trade: TradeExecution) -> int:
        """Insert ``trade``; returns its id and sets ``trade.id``."""
        result = self._conn.execute(_INSERT_TRADE, _trade_params(trade))
        trade.id = int(result.inserted_primary_key[0])  # type: ignore[index]
        return trade.id

    def open_trade_for(self, ticker: str) -> TradeExecution | None:
        """The latest open trade in ``ticker``, if any."""
        row = self._conn.execute(_OPEN_TRADE_FOR, {"b_ticker": ticker}).first()
        return None if row is None else _trade_from_row(row)

    def open_trades(self) -> list[TradeExecution]:
        """Every open trade, oldest first."""
        return [_trade_from_row(r) for r in self._conn.execute(_OPEN_TRADES)]

    def update_trade(self, trade: TradeExecution) -> None:
        """Write every field of a stored trade (found by ``trade.id``)."""
        if trade.id is None:
            raise RowNotFoundError("trade has no id: open_trade it first")
        params = {f"b_{name}": value for name, value in _trade_params(trade).items()}
        params["b_id"] = trade.id
        if _UPDATE_TRADE.execute(self._conn, params) != 1:
            raise RowNotFoundError(f"trade {trade.id} is not stored")

    def trades(self, limit: int = 100, ticker: str | None = None) -> list[TradeExecution]:
        """Newest first, optionally for one ticker."""
        stmt = select(TRADES).order_by(TRADES.c.id.desc()).limit(limit)
        if ticker is not None:
            stmt = stmt.where(TRADES.c.ticker == ticker)
        return [_trade_from_row(r) for r in self._conn.execute(stmt)]

    def trades_since(self, since: datetime, ticker: str | None = None) -> list[TradeExecution]:
        """Trades entered at or after ``since``, optionally in one ticker; newest entry first."""
        stmt = _TRADES_SINCE
        if ticker is not None:
            stmt = stmt.where(TRADES.c.ticker == ticker)
        stmt = stmt.order_by(TRADES.c.entry_time.desc(), TRADES.c.id.desc())
        return [_trade_from_row(r) for r in self._conn.execute(stmt, {"b_since": since})]

    def closed_between(self, start: datetime, end: datetime) -> list[TradeExecution]:
        """Closed trades with ``start <= exit_time < end``, in exit order."""
        rows = self._conn.execute(_CLOSED_BETWEEN, {"b_start": start, "b_end": end})
        return [_trade_from_row(r) for r in rows]

    def upsert_daily_pnl(self, row: DailyPnl) -> None:
        """Insert or replace the summary for ``row.date``."""
        conn = self._conn
        params = {name: getattr(row, name) for name in _DAILY_FIELDS}
        params.update(date=row.date, metadata_json=row.metadata or {})
        _UPSERT_DAILY.execute(conn, params)

    def daily_pnl(self, day: date) -> DailyPnl | None:
        row = self._conn.execute(_SELECT_DAILY, {"b_date": day}).first()
        return None if row is None else _daily_from_row(row)

    def track_record(self) -> tuple[int, int]:
        """(sessions in which at least one trade closed, closed trades): the account's trading
        history, which the live gate compares with its minimums."""
        conn = self._conn
        sessions = conn.execute(_TRADED_SESSIONS).scalar_one()
        closed = conn.execute(_CLOSED_TRADES).scalar_one()
        return int(sessions or 0), int(closed or 0)
