"""The building blocks of the Trade Journal's read views (:mod:`db.queries.journal`,
:mod:`db.queries.journal_analytics`): the filter and the SQL conditions it makes, the expressions
that differ between SQLite and PostgreSQL, the result cache, and the base class that runs a view
in a read-only unit of work and caches its result.

Money stays exact. PostgreSQL sums ``NUMERIC`` exactly. SQLite keeps money as text (see
:class:`db.types.ExactDecimal`) and only sums binary floats, so there each amount is rounded to
the micro-dollar (1e-6) and the integers are summed: the total is exact for amounts with up to
six decimal places (every price times quantity we record) and within 1e-6 per row otherwise.

Trade filters (:class:`JournalFilter`) apply to ``trade_executions``. Fills carry no strategy,
trigger or exit reason, so the execution figures (slippage, commissions, turnover) cover the
fills in the filter's date range, symbols and instrument types (:meth:`JournalFilter.execution`).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    case,
    cast,
    extract,
    func,
    or_,
    select,
)

from db.tables import FILLS, ORDERS, RECONCILIATION, TRADES

if TYPE_CHECKING:
    from db.store import SqlStore

T = TypeVar("T")
ZERO = Decimal(0)
_MICROS = 1_000_000


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


def time_bounds(column: Any, f: JournalFilter) -> list[ColumnElement[bool]]:
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


def trade_where(f: JournalFilter, *, dates: bool = True) -> list[ColumnElement[bool]]:
    c = TRADES.c
    where = time_bounds(c.entry_time, f) if dates else []
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


def fill_where(f: JournalFilter) -> list[ColumnElement[bool]]:
    """Fills in the filter's execution scope (joined to their orders)."""
    where = time_bounds(FILLS.c.at, f)
    if f.symbols:
        where.append(_matches(FILLS.c.symbol, f.symbols))
    if f.instrument_types:
        where.append(_matches(ORDERS.c.instrument_type, f.instrument_types))
    return where


FILLS_WITH_ORDERS = FILLS.join(ORDERS, ORDERS.c.client_order_id == FILLS.c.client_order_id)


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


def count_if(condition: ColumnElement[bool]) -> Any:
    """How many rows meet ``condition``."""
    return func.sum(case((condition, 1), else_=0))


def rate(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None


def as_frame(rows: Sequence[Any], columns: Sequence[str], ints: Sequence[str] = ()) -> pd.DataFrame:
    """Rows as a frame that keeps the values as they are (``None`` stays ``None``, Decimals
    stay Decimals); the ``ints`` columns become integer columns."""
    frame = pd.DataFrame(list(rows), columns=list(columns), dtype=object)
    return frame.astype(dict.fromkeys(ints, "int64")) if ints else frame


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


# ---------------------------------------------------------------------------------- base
class JournalQueriesBase:
    """A journal read view's store and dialect; each call is one read-only unit of work, and
    :meth:`_cached` reuses an aggregate per filter while the journal's version is unchanged.
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


__all__ = [
    "CACHE_TTL_S",
    "FILLS_WITH_ORDERS",
    "ZERO",
    "JournalFilter",
    "JournalQueriesBase",
    "as_frame",
    "count_if",
    "fill_where",
    "rate",
    "time_bounds",
    "trade_where",
]
