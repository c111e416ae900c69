"""The Trade Journal's read views: filtered trades page by page, their totals, the
signal → decision → order → fill chain of one trade, the analytics (win rate by strategy,
sector and regime, holding periods, slippage, commission impact, turnover;
:mod:`db.queries.journal_analytics`) and CSV export.

Filtering, counting and every aggregate run in SQL; only the page of rows on screen (or, for
an export the user asked for, the filtered trades) is fetched. Nothing loads the journal into
memory, so the views stay fast with 100k trades. Money stays exact (see
:mod:`db.queries.journal_sql`, which also holds the filter, the dialect differences and the
result cache).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select

from db.queries.contracts import contract_from_notes, expiry_kind, option_contract
from db.queries.journal_analytics import HOLDING_BUCKETS, WIN_RATE_KEYS, JournalAnalytics
from db.queries.journal_sql import (
    CACHE_TTL_S,
    JournalFilter,
    as_frame,
    count_if,
    rate,
    trade_where,
)
from db.tables import DECISIONS, FILLS, ORDER_HISTORY, ORDERS, SIGNALS, TRADES

#: The trade columns shown in the journal table, in order.
TRADE_COLUMNS = (
    "id",
    "entry_time",
    "exit_time",
    "ticker",
    "direction",
    "shares",
    "entry_price",
    "exit_price",
    "pnl",
    "pnl_pct",
    "status",
    "exit_reason",
    "trigger",
    "strategy",
    "sector",
    "regime",
    "instrument_type",
    "signal_id",
    "order_id",
)
#: What :meth:`JournalQueries.trades` adds to :data:`TRADE_COLUMNS` for option trades (``None``
#: for other trades): the contract (``SPY 2026-11-20 600 C``) and how far its expiry was at the
#: entry (``0DTE``, ``1DTE``).
OPTION_COLUMNS = ("contract", "expiry_kind")
#: The columns of a CSV export (the table's, plus the rest of the trade's scalar fields).
EXPORT_COLUMNS = (
    *TRADE_COLUMNS,
    "trade_type",
    "original_ticker",
    "leverage",
    "stop_loss",
    "target_price",
    "conviction",
    "broker",
    "portfolio_value",
    "notes",
)


def _sort_key(value: str | None) -> tuple[bool, str]:
    return (value is None, value or "")


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class JournalChoices:
    """What the filters offer: the distinct values stored (``None`` for "no value") and the
    span of entry dates."""

    symbols: tuple[str, ...]
    strategies: tuple[str | None, ...]
    triggers: tuple[str | None, ...]
    exit_reasons: tuple[str | None, ...]
    instrument_types: tuple[str, ...]
    first_entry: datetime | None
    last_entry: datetime | None

    @property
    def empty(self) -> bool:
        """No trade has been journaled yet."""
        return self.first_entry is None


@dataclass(frozen=True, slots=True)
class JournalSummary:
    """Totals of the filtered trades. Wins, losses and P&L count closed trades only."""

    trades: int
    open: int
    closed: int
    wins: int
    losses: int
    realized_pnl: Decimal

    @property
    def win_rate(self) -> Decimal | None:
        """Winning closed trades over closed trades (``None`` without closed trades)."""
        return rate(self.wins, self.closed)

    @property
    def average_pnl(self) -> Decimal | None:
        return self.realized_pnl / self.closed if self.closed else None


@dataclass(frozen=True, slots=True)
class TradeChain:
    """One trade and how it came about, each part as stored (plain column mappings): its
    signal, the pipeline's decisions on that signal, the orders (the signal's, the trade's
    entry and exit orders, their bracket legs and sibling slices), their status changes and
    their fills, each oldest first."""

    trade: dict[str, Any]
    signal: dict[str, Any] | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------- queries
class JournalQueries(JournalAnalytics):
    """The Trade Journal page's reads; each call is one read-only unit of work.

    The aggregates (choices, summary and the analytics but turnover, which follows the daily
    equity) are cached per filter while the journal's version is unchanged.
    """

    # ------------------------------------------------------------------ filters and rows
    def choices(self) -> JournalChoices:
        """The values the filters offer (SQL ``DISTINCT``) and the first and last entry."""
        return self._cached("choices", None, self._choices)

    def _choices(self, conn: Any) -> JournalChoices:
        c = TRADES.c
        span = select(
            select(func.min(c.entry_time)).scalar_subquery(),
            select(func.max(c.entry_time)).scalar_subquery(),
        )
        symbols = conn.execute(select(c.ticker).distinct()).scalars()
        # One pass for the four small columns (their combinations are few).
        combos = conn.execute(
            select(c.strategy, c.trigger, c.exit_reason, c.instrument_type).distinct()
        ).all()
        first, last = conn.execute(span).one()
        strategies, triggers, reasons, types = (
            tuple(sorted({row[i] for row in combos}, key=_sort_key)) for i in range(4)
        )
        return JournalChoices(
            symbols=tuple(sorted(symbols)),
            strategies=strategies,
            triggers=triggers,
            exit_reasons=reasons,
            instrument_types=tuple(t for t in types if t is not None),
            first_entry=first,
            last_entry=last,
        )

    def summary(self, f: JournalFilter) -> JournalSummary:
        """Counts and realized P&L of the trades matching ``f``."""
        return self._cached("summary", f, lambda conn: self._summary(conn, f))

    def _summary(self, conn: Any, f: JournalFilter) -> JournalSummary:
        sql, c = self._sql, TRADES.c
        closed, pnl = c.status == "closed", sql.realized()
        stmt = select(
            func.count(),
            count_if(closed),
            count_if(and_(closed, pnl > 0)),
            count_if(and_(closed, pnl < 0)),
            sql.money_sum(case((closed, pnl), else_=None)),
            count_if(c.status == "open"),
        ).where(*trade_where(f))
        total, n_closed, wins, losses, realized, n_open = conn.execute(stmt).one()
        return JournalSummary(
            trades=int(total),
            open=int(n_open or 0),
            closed=int(n_closed or 0),
            wins=int(wins or 0),
            losses=int(losses or 0),
            realized_pnl=sql.money(realized),
        )

    def trades(self, f: JournalFilter, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        """One page of the matching trades, newest entry first (columns
        :data:`TRADE_COLUMNS` then :data:`OPTION_COLUMNS`; money and quantities as Decimals,
        an option's P&L in dollars as the journal stores it)."""
        columns = (*TRADE_COLUMNS, "metadata_json")
        stmt = self._trades_select(f, columns).limit(limit).offset(max(0, offset))
        with self.store.unit_of_work(read_only=True) as uow:
            rows = uow.connection.execute(stmt).all()
        frame = as_frame([row[:-1] for row in rows], TRADE_COLUMNS, ints=("id",))
        options = [option_details(row._mapping) for row in rows]
        for i, name in enumerate(OPTION_COLUMNS):
            frame[name] = pd.Series([o[i] for o in options], index=frame.index, dtype=object)
        return frame

    def export_csv(self, f: JournalFilter) -> str:
        """Every trade matching ``f`` as CSV (header :data:`EXPORT_COLUMNS`, newest first):
        money exact as stored, times ISO 8601 UTC, empty cells for missing values."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        stmt = self._trades_select(f, EXPORT_COLUMNS)
        with self.store.unit_of_work(read_only=True) as uow:
            for row in uow.connection.execute(stmt.execution_options(yield_per=2_000)):
                writer.writerow(_csv_cell(v) for v in row)
        return out.getvalue()

    @staticmethod
    def _trades_select(f: JournalFilter, columns: Iterable[str]) -> Select[Any]:
        c = TRADES.c
        return (
            select(*(c[name] for name in columns))
            .where(*trade_where(f))
            .order_by(c.entry_time.desc(), c.id.desc())
        )

    # ------------------------------------------------------------------ one trade's chain
    def chain(self, trade_id: int) -> TradeChain | None:
        """Trade ``trade_id`` with its signal, decisions, orders, status history and fills
        (``None`` when there is no such trade)."""
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            row = conn.execute(select(TRADES).where(TRADES.c.id == trade_id)).first()
            if row is None:
                return None
            trade = dict(row._mapping)
            signal_id = trade["signal_id"]
            signal = decisions = None
            if signal_id is not None:
                found = conn.execute(select(SIGNALS).where(SIGNALS.c.id == signal_id)).first()
                signal = None if found is None else dict(found._mapping)
                decisions = conn.execute(
                    select(DECISIONS)
                    .where(DECISIONS.c.signal_id == signal_id)
                    .order_by(DECISIONS.c.at, DECISIONS.c.id)
                ).all()
            orders = self._chain_orders(conn, trade)
            ids = [o["client_order_id"] for o in orders]
            history = fills = []
            if ids:
                history = conn.execute(
                    select(ORDER_HISTORY)
                    .where(ORDER_HISTORY.c.client_order_id.in_(ids))
                    .order_by(ORDER_HISTORY.c.at, ORDER_HISTORY.c.id)
                ).all()
                fills = conn.execute(
                    select(FILLS)
                    .where(FILLS.c.client_order_id.in_(ids))
                    .order_by(FILLS.c.at, FILLS.c.id)
                ).all()
        return TradeChain(
            trade=trade,
            signal=signal,
            decisions=[dict(r._mapping) for r in decisions or ()],
            orders=orders,
            history=[dict(r._mapping) for r in history],
            fills=[dict(r._mapping) for r in fills],
        )

    @staticmethod
    def _chain_orders(conn: Any, trade: dict[str, Any]) -> list[dict[str, Any]]:
        o = ORDERS.c
        ids = {trade["order_id"]} if trade["order_id"] else set()
        exits = (trade.get("metadata_json") or {}).get("exits") or []
        ids.update(str(e["order"]) for e in exits if isinstance(e, dict) and e.get("order"))
        roots: list[ColumnElement[bool]] = []
        if ids:
            roots.append(o.client_order_id.in_(sorted(ids)))
        if trade["signal_id"] is not None:
            roots.append(o.signal_id == trade["signal_id"])
        if not roots:
            return []
        found = {r.client_order_id: r for r in conn.execute(select(ORDERS).where(or_(*roots)))}
        # Bracket legs hang off their entry; router slices share their parent's id.
        parents = set(found) | {r.parent_id for r in found.values() if r.parent_id}
        for r in conn.execute(select(ORDERS).where(o.parent_id.in_(sorted(parents)))):
            found.setdefault(r.client_order_id, r)
        ordered = sorted(found.values(), key=lambda r: (r.created_at, r.client_order_id))
        return [dict(r._mapping) for r in ordered]


def option_details(trade: Any) -> tuple[str | None, str | None]:
    """(contract, expiry kind) of a trade row or mapping: the contract its OCC ticker names
    (else the one its metadata describes, for an option trade) and ``0DTE``/``1DTE``...;
    ``(None, None)`` for a stock or ETF trade."""
    notes = trade.get("metadata_json") or {}
    contract = option_contract(trade.get("ticker"))
    if contract is None and trade.get("instrument_type") == "option":
        contract = contract_from_notes(notes)
    if contract is None:
        return None, None
    return str(contract), expiry_kind(contract, trade.get("entry_time"), notes)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


__all__ = [
    "CACHE_TTL_S",
    "EXPORT_COLUMNS",
    "HOLDING_BUCKETS",
    "OPTION_COLUMNS",
    "TRADE_COLUMNS",
    "WIN_RATE_KEYS",
    "JournalChoices",
    "JournalFilter",
    "JournalQueries",
    "JournalSummary",
    "TradeChain",
    "option_details",
]
