"""Alpaca market data: :class:`AlpacaMarketData` implements :class:`core.ports.MarketData` with
alpaca-py's ``StockHistoricalDataClient`` (REST; the SDK is synchronous, so calls run in a
worker thread).

* ``quote``: the latest quote (bid/ask, ``at`` = the quote's time) and the latest trade's price
  as ``last`` (the mid when there is no trade).
* ``bars``: Alpaca's bars for the timeframe, stamped at their start; a bar's ``end`` is its
  start plus the timeframe, clipped to the session close (a ``1Day`` bar ends at the close).
  Only completed bars are returned (``end <= `` the requested end, at most now). Without
  ``start`` the lookback is ``default_lookback`` (intraday) or ``daily_lookback`` (``1Day``), or
  enough for ``limit`` bars.
* ``average_daily_volume``: the mean volume of the last ``adv_sessions`` daily bars, in whole
  shares.

Prices arrive as JSON numbers, which the SDK parses as floats; they become Decimals through
their shortest repr (``Decimal(str(x))``), exact for prices quoted to the cent. Symbols outside
the configured universe, or that Alpaca has no data for, raise :class:`UnknownSymbol`; failures
to reach Alpaca raise :class:`MarketDataUnavailable`. Idempotent requests are retried on
connection failures, timeouts and 500/502/503 (the SDK retries 429 and 504 itself), and every
request is bounded by ``request_timeout``.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

import pydantic
import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

with warnings.catch_warnings():
    # alpaca.data imports alpaca.trading, whose stream module imports websockets.legacy.
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.enums import Sort
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import (
        StockBarsRequest,
        StockLatestQuoteRequest,
        StockLatestTradeRequest,
    )
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from core.brokers.alpaca import bound_requests
from core.domain import ZERO, Bar, Quote, utc
from core.marketdata.bars import check_limit, timeframe_minutes
from core.marketdata.calendar import EASTERN, WallClock, default_calendar
from core.ports import Clock, MarketCalendar, UnknownSymbol

T = TypeVar("T")

__all__ = ["AlpacaMarketData", "MarketDataUnavailable"]

_TIMEFRAMES = {
    "1Min": TimeFrame(1, TimeFrameUnit.Minute),
    "5Min": TimeFrame(5, TimeFrameUnit.Minute),
    "10Min": TimeFrame(10, TimeFrameUnit.Minute),
    "15Min": TimeFrame(15, TimeFrameUnit.Minute),
    "1Hour": TimeFrame(1, TimeFrameUnit.Hour),
    "1Day": TimeFrame(1, TimeFrameUnit.Day),
}


class MarketDataUnavailable(ConnectionError):
    """Alpaca's market-data API could not be reached or answered with an error."""


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, APIError):
        return (exc.status_code or 0) in (500, 502, 503)
    return False


class AlpacaMarketData:
    """Quotes, bars and liquidity from Alpaca for a fixed universe of symbols.

    ``AlpacaMarketData(api_key, secret_key, symbols, *, base_url=None, feed="iex", clock=None,
    calendar=None, adv_sessions=20, request_timeout=10.0, read_attempts=3, retry_wait=0.2,
    default_lookback=timedelta(days=5), daily_lookback=timedelta(days=365))``; ``base_url``
    replaces ``https://data.alpaca.markets``.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        symbols: Iterable[str],
        *,
        base_url: str | None = None,
        feed: str = "iex",
        clock: Clock | None = None,
        calendar: MarketCalendar | None = None,
        adv_sessions: int = 20,
        request_timeout: float = 10.0,
        read_attempts: int = 3,
        retry_wait: float = 0.2,
        default_lookback: timedelta = timedelta(days=5),
        daily_lookback: timedelta = timedelta(days=365),
    ) -> None:
        if not api_key or not secret_key:
            raise ValueError("Alpaca needs an API key id and a secret key")
        if adv_sessions < 1:
            raise ValueError("adv_sessions must be at least 1")
        self.clock: Clock = clock or WallClock()
        self.calendar: MarketCalendar = calendar or default_calendar()
        self._symbols = frozenset(symbols)
        self._feed = DataFeed(feed)
        self._adv_sessions = adv_sessions
        self._read_attempts = read_attempts
        self._retry_wait = retry_wait
        self._timeout = request_timeout
        self._default_lookback = default_lookback
        self._daily_lookback = daily_lookback
        self._client = StockHistoricalDataClient(
            api_key, secret_key, url_override=base_url.rstrip("/") if base_url else None
        )
        bound_requests(self._client, request_timeout)

    def __repr__(self) -> str:
        return f"AlpacaMarketData(symbols={len(self._symbols)}, feed={self._feed.value!r})"

    @property
    def data_client(self) -> StockHistoricalDataClient:
        """The underlying alpaca-py client."""
        return self._client

    def symbols(self) -> frozenset[str]:
        return self._symbols

    def _check(self, symbol: str) -> None:
        if symbol not in self._symbols:
            raise UnknownSymbol(f"unknown symbol {symbol!r}")

    def _call_blocking(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential(multiplier=self._retry_wait, max=max(self._retry_wait, 2.0)),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return fn(*args)
        except APIError as err:
            try:
                message = err.message
            except (ValueError, KeyError, TypeError):
                message = str(err)[:200]
            raise MarketDataUnavailable(
                f"alpaca market data: {what} failed: HTTP {err.status_code}: {message}"
            ) from None
        except (requests.RequestException, OSError, pydantic.ValidationError, ValueError) as exc:
            detail = (
                f"no answer within {self._timeout:g}s"
                if isinstance(exc, requests.Timeout)
                else type(exc).__name__
            )
            raise MarketDataUnavailable(f"alpaca market data: {what} failed: {detail}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._call_blocking, what, fn, *args)

    async def quote(self, symbol: str) -> Quote:
        """The latest bid/ask and last trade price. Raises UnknownSymbol."""
        self._check(symbol)

        def fetch() -> tuple[Any, Any]:
            quotes = self._client.get_stock_latest_quote(
                StockLatestQuoteRequest(symbol_or_symbols=symbol, feed=self._feed)
            )
            trades = self._client.get_stock_latest_trade(
                StockLatestTradeRequest(symbol_or_symbols=symbol, feed=self._feed)
            )
            return quotes, trades

        quotes, trades = await self._call(f"latest quote of {symbol}", fetch)
        q = quotes.get(symbol) if isinstance(quotes, dict) else None
        if q is None:
            raise UnknownSymbol(f"Alpaca has no quote for {symbol!r}")
        bid, ask = _dec(q.bid_price), _dec(q.ask_price)
        trade = trades.get(symbol) if isinstance(trades, dict) else None
        last = _dec(trade.price) if trade is not None else (bid + ask) / 2
        at = utc(q.timestamp) if q.timestamp.tzinfo else self.clock.now()
        return Quote(symbol, bid, ask, last, at)

    def _bar_end(self, start: datetime, minutes: int | None) -> datetime:
        calendar = self.calendar
        if minutes is None:
            day = start.astimezone(EASTERN).date()
            try:
                return calendar.session_close(day)
            except (ValueError, KeyError):
                return start + timedelta(days=1)
        span = timedelta(minutes=minutes)
        end = start + span
        session = calendar.session_date(start) or calendar.session_date(
            end - timedelta(microseconds=1)
        )
        if session is not None:
            end = min(end, calendar.session_close(session))
        return end

    async def bars(
        self,
        symbol: str,
        timeframe: str = "1Min",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Completed bars with ``start < bar.end <= end`` (``end`` at most now), oldest first,
        the last ``limit`` of them."""
        self._check(symbol)
        minutes = timeframe_minutes(timeframe)
        check_limit(limit)
        if limit == 0:
            return []
        now = self.clock.now()
        end = now if end is None else min(utc(end), now)
        span = timedelta(minutes=minutes) if minutes is not None else timedelta(days=1)
        if start is not None:
            query_start = utc(start) - span
        elif limit is not None and minutes is not None:
            query_start = end - timedelta(minutes=minutes * limit * 3) - timedelta(days=7)
        elif limit is not None:
            query_start = end - timedelta(days=2 * limit + 10)
        else:
            lookback = self._default_lookback if minutes is not None else self._daily_lookback
            query_start = end - lookback
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=_TIMEFRAMES[timeframe],
            start=query_start,
            end=end,
            feed=self._feed,
            # newest first when only the last few are wanted, so paging stops early
            sort=Sort.DESC if limit is not None else Sort.ASC,
            limit=None if limit is None else limit + 2,
        )
        barset = await self._call(
            f"{timeframe} bars of {symbol}", self._client.get_stock_bars, request
        )
        raw = barset.data.get(symbol, []) if hasattr(barset, "data") else []
        out = []
        for b in raw:
            bar_start = utc(b.timestamp)
            bar_end = self._bar_end(bar_start, minutes)
            if bar_end > end or (start is not None and bar_end <= utc(start)):
                continue
            out.append(
                Bar(
                    symbol=symbol,
                    start=bar_start,
                    end=bar_end,
                    open=_dec(b.open),
                    high=_dec(b.high),
                    low=_dec(b.low),
                    close=_dec(b.close),
                    volume=_dec(b.volume),
                )
            )
        out.sort(key=lambda bar: bar.start)
        if limit is not None:
            out = out[-limit:]
        return out

    async def average_daily_volume(self, symbol: str) -> Decimal:
        """Mean volume of the last ``adv_sessions`` completed daily bars (whole shares); zero
        when Alpaca has none."""
        daily = await self.bars(symbol, "1Day", limit=self._adv_sessions)
        if not daily:
            return ZERO
        total = sum((b.volume for b in daily), ZERO)
        return (total / len(daily)).quantize(Decimal(1), ROUND_HALF_EVEN)
