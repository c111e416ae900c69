"""A hand-checkable market for broker tests: explicit 1-minute bars per symbol, a manual clock,
the real exchange calendar, a fixed spread and explicit average daily volumes."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.domain import Bar, Quote, to_decimal
from core.marketdata.bars import aggregate, select, timeframe_minutes
from core.marketdata.calendar import ExchangeCalendar, ManualClock, default_calendar
from core.ports import Clock, MarketCalendar, UnknownSymbol

ONE_MINUTE = timedelta(minutes=1)
Row = Sequence[Any]  # (open, high, low, close, volume)


def minute_bars(symbol: str, start: datetime, rows: Iterable[Row]) -> list[Bar]:
    """Consecutive 1-minute bars from ``start``, one per ``(open, high, low, close, volume)``."""
    bars = []
    for i, (o, h, l, c, v) in enumerate(rows):  # noqa: E741
        begin = start + i * ONE_MINUTE
        bars.append(
            Bar(
                symbol,
                begin,
                begin + ONE_MINUTE,
                to_decimal(o),
                to_decimal(h),
                to_decimal(l),
                to_decimal(c),
                to_decimal(v),
            )
        )
    return bars


def session_bars(
    symbol: str,
    day: date,
    price: Any = "100",
    volume: Any = 100_000,
    overrides: Mapping[datetime, Row] | None = None,
    calendar: ExchangeCalendar | None = None,
) -> list[Bar]:
    """Flat bars (``open = high = low = close = price``) for every minute of ``day``'s session,
    with ``overrides`` keyed by bar start time."""
    cal = calendar or default_calendar()
    start, end = cal.session_open(day), cal.session_close(day)
    overrides = overrides or {}
    rows = []
    t = start
    while t < end:
        rows.append(overrides.get(t, (price, price, price, price, volume)))
        t += ONE_MINUTE
    return minute_bars(symbol, start, rows)


class FixedMarket:
    """Implements ``core.ports.MarketData`` over bars given up front.

    ``quote(symbol)`` is ``set_quote``'s values when set, else built from the close of the latest
    bar completed at ``clock.now()``: ``bid = close - spread / 2``, ``ask = close + spread / 2``,
    ``last = close``.
    """

    def __init__(
        self,
        clock: ManualClock,
        bars: dict[str, list[Bar]] | None = None,
        *,
        adv: dict[str, Any] | None = None,
        spread: Any = "0.02",
        calendar: ExchangeCalendar | None = None,
    ) -> None:
        self.clock: Clock = clock
        self.calendar: MarketCalendar = calendar or default_calendar()
        self.spread = to_decimal(spread)
        self._bars: dict[str, list[Bar]] = {}
        self._ends: dict[str, list[datetime]] = {}
        self._adv = {s: to_decimal(v) for s, v in (adv or {}).items()}
        self._quotes: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        self._combined: dict[tuple[str, str], tuple[list[Bar], list[datetime]]] = {}
        for symbol, rows in (bars or {}).items():
            self.add_bars(symbol, rows)

    def add_bars(self, symbol: str, bars: Iterable[Bar]) -> None:
        merged = {b.start: b for b in self._bars.get(symbol, [])}
        merged.update({b.start: b for b in bars})
        ordered = [merged[k] for k in sorted(merged)]
        self._bars[symbol] = ordered
        self._ends[symbol] = [b.end for b in ordered]
        for key in [k for k in self._combined if k[0] == symbol]:
            del self._combined[key]
        self._adv.setdefault(symbol, Decimal(1_000_000))

    def set_quote(self, symbol: str, bid: Any, ask: Any, last: Any | None = None) -> None:
        b, a = to_decimal(bid), to_decimal(ask)
        self._quotes[symbol] = (b, a, to_decimal(last) if last is not None else (b + a) / 2)

    def clear_quote(self, symbol: str) -> None:
        self._quotes.pop(symbol, None)

    # -- MarketData -------------------------------------------------------------------------
    def symbols(self) -> frozenset[str]:
        return frozenset(self._bars)

    async def quote(self, symbol: str) -> Quote:
        if symbol not in self._bars:
            raise UnknownSymbol(symbol)
        now = self.clock.now()
        if symbol in self._quotes:
            bid, ask, last = self._quotes[symbol]
            return Quote(symbol, bid, ask, last, now)
        i = bisect.bisect_right(self._ends[symbol], now)
        bars = self._bars[symbol]
        last = bars[i - 1].close if i > 0 else bars[0].open
        half = self.spread / 2
        return Quote(symbol, last - half, last + half, last, now)

    async def bars(
        self,
        symbol: str,
        timeframe: str = "1Min",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        if symbol not in self._bars:
            raise UnknownSymbol(symbol)
        upto = end if end is not None else self.clock.now()
        if timeframe != "1Min":
            # other timeframes are the 1-minute bars combined, as the replay market does
            key = (symbol, timeframe)
            if key not in self._combined:
                combined = aggregate(
                    self._bars[symbol], timeframe_minutes(timeframe), self.calendar
                )
                self._combined[key] = (combined, [b.end for b in combined])
            series, ends = self._combined[key]
            return select(series, ends, start, upto, limit)
        ends = self._ends[symbol]
        hi = bisect.bisect_right(ends, upto)
        lo = 0 if start is None else bisect.bisect_right(ends, start)
        if limit is not None:
            lo = max(lo, hi - limit)
        return self._bars[symbol][lo:hi] if lo < hi else []

    async def average_daily_volume(self, symbol: str) -> Decimal:
        if symbol not in self._bars:
            raise UnknownSymbol(symbol)
        return self._adv[symbol]


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    """A UTC time in 2026."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)
