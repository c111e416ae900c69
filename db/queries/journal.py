"""The Trade Journal's read views: filtered trades page by page, their totals, the
signal → decision → order → fill chain of one trade, the analytics (win rate by strategy,
sector and regime, holding periods, slippage, commission impact, turnover) and CSV export.

Filtering, counting and every aggregate run in SQL; only the page of rows on screen (or, for
an export the user asked for, the filtered trades) is fetched. Nothing loads the journal into
memory, so the views stay fast with 100k trades.

Money stays exact. PostgreSQL sums ``NUMERIC`` exactly. SQLite keeps money as text (see
:class:`db.types.ExactDecimal`) and only sums binary floats, so there each amount is rounded to
the micro-dollar (1e-6) and the integers are summed: the total is exact for amounts with up to
six decimal places (every price times quantity we record) and within 1e-6 per row otherwise.
Ratios and averages derived from these sums are Decimal divisions; bps and seconds that only
feed charts are floats.

Trade filters (:class:`JournalFilter`) apply to ``trade_executions``. Fills carry no strategy,
trigger or exit reason, so the execution figures (slippage, commissions, turnover) cover the
fills in the filter's date range, symbols and instrument types (:meth:`JournalFilter.execution`).
"""

from __future__ import annotations

import csv
import io
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    or_,
    select,
)

from db.tables import (
    DAILY_PNL,
    DECISIONS,
    FILLS,
    ORDER_HISTORY,
    ORDERS,
    RECONCILIATION,
    SIGNALS,
    TRADES,
)

if TYPE_CHECKING:
    from db.store import SqlStore

T = TypeVar("T")
ZERO = Decimal(0)
_MICROS = 1_000_000
_BPS = Decimal(10_000)
_BPS_QUANTUM = Decimal("0.01")

#: Holding-period buckets: (label, upper bound in seconds, exclusive); the last has none.
HOLDING_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 1h", 3_600),
    ("1-4h", 4 * 3_600),
    ("4h-1d", 86_400),
    ("1-2d", 2 * 86_400),
    ("2-5d", 5 * 86_400),
    ("5-10d", 10 * 86_400),
    ("10-20d", 20 * 86_400),
    ("20d+", None),
)
#: The keys :meth:`JournalQueries.win_rates` groups closed trades by.
WIN_RATE_KEYS = ("strategy", "sector", "regime")

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


# ---------------------------------------------------------------------------------- filters
@dataclass(frozen=True, slots=True)
class JournalFilter:
    """Which trades the journal shows. Empty tuples mean "any"; ``None`` inside a tuple
    matches trades without a value (a manual trade has no strategy, an open one no exit
    reason). ``start`` and ``end`` are UTC calendar dates of the entry, both inclusive."""

    start: date | None = None
    end: date | None = None
    symbols: tuple[str, ...] = ()
    strategies: tuple[str | None, ...] = ()
    triggers: tuple[str | None, ...] = ()
    exit_reasons: tuple[str | None, ...] = ()
    instrument_types: tuple[str, ...] = ()

    def execution(self) -> JournalFilter:
        """The part of this filter that applies to fills: dates, symbols, instrument types."""
        return replace(self, strategies=(), triggers=(), exit_reasons=())

    @property
    def trade_only(self) -> bool:
        """Whether a filter applies that fills cannot follow (strategy, trigger, exit reason)."""
        return bool(self.strategies or self.triggers or self.exit_reasons)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _time_bounds(column: Any, f: JournalFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if f.start is not None:
        found.append(column >= _day_start(f.start))
    if f.end is not None:
        found.append(column < _day_start(f.end + timedelta(days=1)))
    return found


def _matches(column: Any, values: Sequence[str | None]) -> ColumnElement[bool]:
    named = sorted({v for v in values if v is not None})
    parts: list[ColumnElement[bool]] = []
    if named:
        parts.append(column.in_(named))
    if None in values:
        parts.append(column.is_(None))
    return or_(*parts)


def _trade_where(f: JournalFilter, *, dates: bool = True) -> list[ColumnElement[bool]]:
    c = TRADES.c
    where = _time_bounds(c.entry_time, f) if dates else []
    if f.symbols:
        where.append(_matches(c.ticker, f.symbols))
    for column, values in (
        (c.strategy, f.strategies),
        (c.trigger, f.triggers),
        (c.exit_reason, f.exit_reasons),
        (c.instrument_type, f.instrument_types),
    ):
        if values:
            where.append(_matches(column, values))
    return where


def _fill_where(f: JournalFilter) -> list[ColumnElement[bool]]:
    """Fills in the filter's execution scope (joined to their orders)."""
    where = _time_bounds(FILLS.c.at, f)
    if f.symbols:
        where.append(_matches(FILLS.c.symbol, f.symbols))
    if f.instrument_types:
        where.append(_matches(ORDERS.c.instrument_type, f.instrument_types))
    return where


_FILLS_WITH_ORDERS = FILLS.join(ORDERS, ORDERS.c.client_order_id == FILLS.c.client_order_id)


# ---------------------------------------------------------------------------------- dialects
class _Sql:
    """The expressions that differ between SQLite (money as text, times as ISO text) and
    PostgreSQL (``NUMERIC`` and ``timestamptz``)."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def num(self, column: Any) -> Any:
        """A money or quantity column as a number SQL can compare and multiply."""
        return cast(column, Float) if self.sqlite else column

    def money_sum(self, value: Any) -> Any:
        """``SUM(value)``, exact (read it back with :meth:`money`)."""
        if self.sqlite:
            return func.sum(cast(func.round(value * _MICROS), Integer))
        return func.sum(value)

    def money(self, value: Any) -> Decimal:
        """A :meth:`money_sum` result as a Decimal (zero for an empty sum)."""
        if value is None:
            return ZERO
        if self.sqlite:
            return Decimal(int(value)).scaleb(-6)
        return value if isinstance(value, Decimal) else Decimal(str(value))

    def seconds(self, start: Any, end: Any) -> Any:
        """Seconds from ``start`` to ``end`` (timestamps)."""
        if self.sqlite:
            return (func.julianday(end) - func.julianday(start)) * 86_400.0
        return extract("epoch", end - start)

    def day(self, column: Any) -> Any:
        """The UTC calendar date of a timestamp (``YYYY-MM-DD`` text on SQLite)."""
        if self.sqlite:
            return func.substr(column, 1, 10)
        return cast(func.timezone("UTC", column), Date)

    @staticmethod
    def fenced(stmt: Select[Any]) -> Any:
        """``stmt`` as a subquery the planner keeps apart (``OFFSET 0``), so that the
        expressions it computes per row are computed once, not once per use outside."""
        return stmt.offset(0).subquery()

    def closed(self) -> ColumnElement[bool]:
        """``status = 'closed'`` as a filter that no index answers on SQLite. Nearly every
        trade is closed, so an index on status would have the planner, which keeps no
        statistics there, look the journal up row by row instead of scanning it; the indexes
        that do narrow the scan (entry time, ticker) stay usable."""
        status = TRADES.c.status
        return (status.concat("") if self.sqlite else status) == "closed"

    def realized(self) -> Any:
        """A closed trade's realized P&L: the recorded one, else valued from its entry and
        exit prices (as :func:`core.journal.analytics.trade_stats` does), else zero."""
        c = TRADES.c
        sign = case((c.direction == "short", -1), else_=1)
        valued = (self.num(c.exit_price) - self.num(c.entry_price)) * self.num(c.shares) * sign
        return func.coalesce(self.num(c.pnl), valued, 0)


def _count(condition: ColumnElement[bool]) -> Any:
    """How many rows meet ``condition``."""
    return func.sum(case((condition, 1), else_=0))


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _bps(cost: Decimal, notional: Decimal) -> Decimal | None:
    if not notional:
        return None
    return (cost / notional * _BPS).quantize(_BPS_QUANTUM)


def _rate(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None


def _frame(rows: Sequence[Any], columns: Sequence[str], ints: Sequence[str] = ()) -> pd.DataFrame:
    """Rows as a frame that keeps the values as they are (``None`` stays ``None``, Decimals
    stay Decimals); the ``ints`` columns become integer columns."""
    frame = pd.DataFrame(list(rows), columns=list(columns), dtype=object)
    return frame.astype(dict.fromkeys(ints, "int64")) if ints else frame


def _sort_key(value: str | None) -> tuple[bool, str]:
    return (value is None, value or "")


# ---------------------------------------------------------------------------------- cache
#: An aggregate is reused while the journal is unchanged, for at most this many seconds.
CACHE_TTL_S = 300.0
_CACHE_SIZE = 64
# Trades are opened and closed by fills (in the fill's transaction) and resized only by
# reconciliation, which records a diff: together the three ids change whenever a trade does.
_VERSION = select(
    select(func.max(TRADES.c.id)).scalar_subquery(),
    select(func.max(FILLS.c.id)).scalar_subquery(),
    select(func.max(RECONCILIATION.c.id)).scalar_subquery(),
)


class _ResultCache:
    """The aggregate views' latest results per engine, keyed by view and filter, each valid
    for the journal version it was computed at (and :data:`CACHE_TTL_S` at most): a page that
    reruns for a click reuses them instead of scanning 100k trades again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: weakref.WeakKeyDictionary[Any, OrderedDict[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, engine: Any, key: Any, version: Any) -> Any:
        with self._lock:
            entry = self._engines.get(engine, {}).get(key)
        if entry is None or entry[0] != version or monotonic() - entry[1] > CACHE_TTL_S:
            return None
        return entry[2]

    def put(self, engine: Any, key: Any, version: Any, value: Any) -> None:
        with self._lock:
            entries = self._engines.setdefault(engine, OrderedDict())
            entries[key] = (version, monotonic(), value)
            entries.move_to_end(key)
            while len(entries) > _CACHE_SIZE:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()


_CACHE = _ResultCache()


def _fresh(value: T) -> T:
    """A cached value as the caller may change it (frames are copied)."""
    return value.copy() if isinstance(value, pd.DataFrame) else value  # type: ignore[return-value]


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
        return _rate(self.wins, self.closed)

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
class JournalQueries:
    """The Trade Journal page's reads; each call is one read-only unit of work.

    The aggregates (choices, summary and the analytics but turnover, which follows the daily
    equity) are cached per filter while the journal's version is unchanged.
    """

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._sql = _Sql(store.engine.dialect.name)

    def _cached(self, view: str, f: JournalFilter | None, compute: Callable[[Any], T]) -> T:
        engine = self.store.engine
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            version = tuple(conn.execute(_VERSION).one())
            found = _CACHE.get(engine, (view, f), version)
            if found is None:
                found = compute(conn)
                _CACHE.put(engine, (view, f), version, found)
        return _fresh(found)

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
            _count(closed),
            _count(and_(closed, pnl > 0)),
            _count(and_(closed, pnl < 0)),
            sql.money_sum(case((closed, pnl), else_=None)),
            _count(c.status == "open"),
        ).where(*_trade_where(f))
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
        :data:`TRADE_COLUMNS`; money and quantities as Decimals)."""
        stmt = self._trades_select(f, TRADE_COLUMNS).limit(limit).offset(max(0, offset))
        with self.store.unit_of_work(read_only=True) as uow:
            rows = uow.connection.execute(stmt).all()
        return _frame(rows, TRADE_COLUMNS, ints=("id",))

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
            .where(*_trade_where(f))
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

    # ------------------------------------------------------------------ analytics
    def win_rates(self, f: JournalFilter) -> pd.DataFrame:
        """Closed trades matching ``f`` grouped by strategy, sector and regime.

        Columns: ``key`` (one of :data:`WIN_RATE_KEYS`), ``group`` (the value, ``None`` for
        trades without one), ``trades``, ``wins``, ``losses``, ``win_rate`` (Decimal, wins
        over trades), ``total_pnl`` and ``average_pnl`` (Decimal). Per key, the biggest
        groups first, trades without a value last.
        """
        return self._cached("win_rates", f, lambda conn: self._win_rates(conn, f))

    def _win_rates(self, conn: Any, f: JournalFilter) -> pd.DataFrame:
        sql, c = self._sql, TRADES.c
        keys, pnl = (c.strategy, c.sector, c.regime), sql.realized()
        # One pass grouped by all three keys; each key's groups are sums of these cells.
        stmt = (
            select(*keys, func.count(), _count(pnl > 0), _count(pnl < 0), sql.money_sum(pnl))
            .where(sql.closed(), *_trade_where(f))
            .group_by(*keys)
        )
        cells = conn.execute(stmt).all()
        rows: list[dict[str, Any]] = []
        for i, key in enumerate(WIN_RATE_KEYS):
            groups: dict[str | None, list[Any]] = {}
            for cell in cells:
                acc = groups.setdefault(cell[i], [0, 0, 0, ZERO])
                acc[0] += int(cell[3])
                acc[1] += int(cell[4] or 0)
                acc[2] += int(cell[5] or 0)
                acc[3] += sql.money(cell[6])
            order = sorted(groups, key=lambda g: (g is None, -groups[g][0], g or ""))
            for group in order:
                n, wins, losses, total = groups[group]
                rows.append(
                    {
                        "key": key,
                        "group": group,
                        "trades": n,
                        "wins": wins,
                        "losses": losses,
                        "win_rate": _rate(wins, n),
                        "total_pnl": total,
                        "average_pnl": total / n,
                    }
                )
        columns = ("key", "group", "trades", "wins", "losses", "win_rate", "total_pnl")
        return _frame(rows, [*columns, "average_pnl"], ints=("trades", "wins", "losses"))

    def holding_periods(self, f: JournalFilter) -> pd.DataFrame:
        """Closed trades matching ``f`` by holding period (:data:`HOLDING_BUCKETS`, every
        bucket present, shortest first). Columns: ``bucket`` (label), ``trades``, ``wins``,
        ``losses``, ``total_pnl`` (Decimal) and ``average_seconds`` (float, ``None`` for an
        empty bucket)."""
        return self._cached("holding", f, lambda conn: self._holding_periods(conn, f))

    def _holding_periods(self, conn: Any, f: JournalFilter) -> pd.DataFrame:
        sql, c = self._sql, TRADES.c
        rows = sql.fenced(
            select(
                sql.seconds(c.entry_time, c.exit_time).label("seconds"),
                sql.realized().label("pnl"),
            ).where(sql.closed(), c.exit_time.is_not(None), *_trade_where(f))
        )
        seconds, pnl = rows.c.seconds, rows.c.pnl
        bounds = [upper for _, upper in HOLDING_BUCKETS if upper is not None]
        bucket = case(
            *((seconds < upper, i) for i, upper in enumerate(bounds)), else_=len(bounds)
        ).label("bucket")
        stmt = select(
            bucket,
            func.count(),
            _count(pnl > 0),
            _count(pnl < 0),
            sql.money_sum(pnl),
            func.sum(seconds),
        ).group_by(bucket)
        found = {int(r[0]): r for r in conn.execute(stmt)}
        rows = []
        for i, (label, _) in enumerate(HOLDING_BUCKETS):
            r = found.get(i)
            n = int(r[1]) if r is not None else 0
            rows.append(
                {
                    "bucket": label,
                    "trades": n,
                    "wins": int(r[2] or 0) if r is not None else 0,
                    "losses": int(r[3] or 0) if r is not None else 0,
                    "total_pnl": sql.money(r[4]) if r is not None else ZERO,
                    "average_seconds": float(r[5]) / n if r is not None and n else None,
                }
            )
        columns = ("bucket", "trades", "wins", "losses", "total_pnl", "average_seconds")
        return _frame(rows, columns, ints=("trades", "wins", "losses"))

    def slippage(self, f: JournalFilter) -> pd.DataFrame:
        """Fills with an expected (arrival) price in the execution scope of ``f``, by order
        type and side: ``fills``, ``expected_notional`` and ``actual_notional`` (expected
        and actual price times quantity), ``slippage_cost`` (what filling away from the
        expected price cost, negative when it improved), ``slippage_bps`` (cost over
        expected notional, 0.01 bps) and ``commission``; money as Decimals."""
        return self._cached("slippage", f.execution(), lambda conn: self._slippage(conn, f))

    def _slippage(self, conn: Any, f: JournalFilter) -> pd.DataFrame:
        sql, fl = self._sql, FILLS.c
        qty, price, expected = sql.num(fl.qty), sql.num(fl.price), sql.num(fl.expected_price)
        sign = case((fl.side == "sell", -1), else_=1)
        stmt = (
            select(
                ORDERS.c.order_type,
                fl.side,
                func.count(),
                sql.money_sum(expected * qty),
                sql.money_sum(price * qty),
                sql.money_sum((price - expected) * qty * sign),
                sql.money_sum(sql.num(fl.commission)),
            )
            .select_from(_FILLS_WITH_ORDERS)
            .where(fl.expected_price.is_not(None), *_fill_where(f.execution()))
            .group_by(ORDERS.c.order_type, fl.side)
            .order_by(ORDERS.c.order_type, fl.side)
        )
        rows = []
        for order_type, side, n, exp, act, cost, fee in conn.execute(stmt):
            expected_notional, cost_value = sql.money(exp), sql.money(cost)
            rows.append(
                {
                    "order_type": order_type,
                    "side": side,
                    "fills": int(n),
                    "expected_notional": expected_notional,
                    "actual_notional": sql.money(act),
                    "slippage_cost": cost_value,
                    "slippage_bps": _bps(cost_value, expected_notional),
                    "commission": sql.money(fee),
                }
            )
        columns = ("order_type", "side", "fills", "expected_notional", "actual_notional")
        extra = ("slippage_cost", "slippage_bps", "commission")
        return _frame(rows, [*columns, *extra], ints=("fills",))

    def commission_impact(self, f: JournalFilter) -> pd.DataFrame:
        """Per UTC day of the execution scope of ``f``: ``gross_pnl`` realized by trades that
        closed that day, ``commission`` and ``notional`` of that day's fills, and
        ``net_pnl`` (gross less commission); money as Decimals, days in order."""
        scope = f.execution()
        return self._cached("commission", scope, lambda conn: self._commissions(conn, scope))

    def _commissions(self, conn: Any, scope: JournalFilter) -> pd.DataFrame:
        sql, c, fl = self._sql, TRADES.c, FILLS.c
        trade_day = sql.day(c.exit_time).label("day")
        pnl_stmt = (
            select(trade_day, func.count(), sql.money_sum(sql.realized()))
            .where(
                sql.closed(),
                c.exit_time.is_not(None),
                *_time_bounds(c.exit_time, scope),
                *_trade_where(scope, dates=False),
            )
            .group_by(trade_day)
        )
        fill_day = sql.day(fl.at).label("day")
        fill_stmt = (
            select(
                fill_day,
                func.count(),
                sql.money_sum(sql.num(fl.commission)),
                sql.money_sum(sql.num(fl.price) * sql.num(fl.qty)),
            )
            .select_from(_FILLS_WITH_ORDERS)
            .where(*_fill_where(scope))
            .group_by(fill_day)
        )
        pnl_rows = conn.execute(pnl_stmt).all()
        fill_rows = conn.execute(fill_stmt).all()
        days: dict[date, dict[str, Any]] = {}

        def day_row(value: Any) -> dict[str, Any]:
            day = _day(value)
            return days.setdefault(
                day,
                {
                    "day": day,
                    "closed_trades": 0,
                    "gross_pnl": ZERO,
                    "fills": 0,
                    "commission": ZERO,
                    "notional": ZERO,
                },
            )

        for value, n, gross in pnl_rows:
            row = day_row(value)
            row.update(closed_trades=int(n), gross_pnl=sql.money(gross))
        for value, n, fee, notional in fill_rows:
            row = day_row(value)
            row.update(fills=int(n), commission=sql.money(fee), notional=sql.money(notional))
        rows = [days[d] for d in sorted(days)]
        for row in rows:
            row["net_pnl"] = row["gross_pnl"] - row["commission"]
        columns = ("day", "closed_trades", "gross_pnl", "fills", "commission", "notional")
        return _frame(rows, [*columns, "net_pnl"], ints=("closed_trades", "fills"))

    def turnover(self, f: JournalFilter) -> pd.DataFrame:
        """Per UTC day of the execution scope of ``f``: ``trades_opened``, ``fills``, traded
        ``notional`` (Decimal), the day's starting ``equity`` from the daily P&L summary
        (Decimal, ``None`` when none was kept) and ``turnover`` (notional over equity,
        Decimal or ``None``); days in order."""
        sql, c, fl = self._sql, TRADES.c, FILLS.c
        scope = f.execution()
        entry_day = sql.day(c.entry_time).label("day")
        opened_stmt = (
            select(entry_day, func.count()).where(*_trade_where(scope)).group_by(entry_day)
        )
        fill_day = sql.day(fl.at).label("day")
        fill_stmt = (
            select(fill_day, func.count(), sql.money_sum(sql.num(fl.price) * sql.num(fl.qty)))
            .select_from(_FILLS_WITH_ORDERS)
            .where(*_fill_where(scope))
            .group_by(fill_day)
        )
        equity_stmt = select(DAILY_PNL.c.date, DAILY_PNL.c.starting_equity)
        if scope.start is not None:
            equity_stmt = equity_stmt.where(DAILY_PNL.c.date >= scope.start)
        if scope.end is not None:
            equity_stmt = equity_stmt.where(DAILY_PNL.c.date <= scope.end)
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            opened = {_day(d): int(n) for d, n in conn.execute(opened_stmt)}
            traded = {_day(d): (int(n), sql.money(v)) for d, n, v in conn.execute(fill_stmt)}
            equity = {_day(d): e for d, e in conn.execute(equity_stmt)}
        rows = []
        for day in sorted(set(opened) | set(traded)):
            fills, notional = traded.get(day, (0, ZERO))
            start = equity.get(day)
            rows.append(
                {
                    "day": day,
                    "trades_opened": opened.get(day, 0),
                    "fills": fills,
                    "notional": notional,
                    "equity": start,
                    "turnover": notional / start if start else None,
                }
            )
        columns = ("day", "trades_opened", "fills", "notional", "equity", "turnover")
        return _frame(rows, columns, ints=("trades_opened", "fills"))


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
    "TRADE_COLUMNS",
    "WIN_RATE_KEYS",
    "JournalChoices",
    "JournalFilter",
    "JournalQueries",
    "JournalSummary",
    "TradeChain",
]
