"""Interactive Brokers market data: :class:`IBKRMarketData` implements
:class:`core.ports.MarketData` on ib_insync.

* ``quote`` takes a snapshot (``reqTickers``: ``reqMktData`` with snapshot=1): bid, ask and
  last; a missing side falls back to the last price, a missing last to the previous close.
* ``bars`` requests historical ``TRADES`` bars (``reqHistoricalData``, regular trading hours,
  epoch-second dates) and converts them to :class:`core.domain.Bar` in UTC: a daily bar runs
  from its session's open to its close (from ``calendar``), an intraday bar from its start to
  the end of its clock-aligned bucket (clipped to the session). Only completed bars are
  returned (``bar.end <= end``, ``end`` capped at ``clock.now()``), ``bar.end > start``,
  oldest first, the last ``limit`` of them.
* ``average_daily_volume`` is the mean volume of the last ``adv_sessions`` (20) completed
  daily bars, in shares, cached per symbol and day (``volume_multiplier`` scales TWS volumes
  reported in round lots).

The adapter owns an ``ib_insync.IB`` on its own client id (connected read-only on first use,
``connect()``/``close()`` to manage it explicitly), or shares one passed as ``ib`` (for
example ``IBKRMarketData(ib=broker.ib)``), which its owner connects. ``UnknownSymbol`` is
raised for symbols IB cannot qualify or has no prices for; an unreachable TWS raises
:class:`core.ports.BrokerUnavailable`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from ib_insync import IB, Contract, Stock

from core.brokers.ibkr import PAPER_TWS_PORT, to_decimal
from core.domain import Bar, Quote, utc
from core.marketdata.bars import bucket_bounds, check_limit, timeframe_minutes
from core.marketdata.calendar import WallClock, default_calendar
from core.ports import BrokerUnavailable, Clock, MarketCalendar, UnknownSymbol

T = TypeVar("T")

#: IB bar size settings for our timeframes.
BAR_SIZES: dict[str, str] = {
    "1Min": "1 min",
    "5Min": "5 mins",
    "10Min": "10 mins",
    "15Min": "15 mins",
    "1Hour": "1 hour",
    "1Day": "1 day",
}
_SESSION_MINUTES = 390
_ONE = Decimal(1)


def duration_for(
    minutes: int | None, start: datetime | None, end: datetime, limit: int | None
) -> str:
    """The TWS duration string covering ``start..end`` or the last ``limit`` bars.

    Intraday spans up to a day use seconds (``"5400 S"``), longer ones calendar days; with
    only ``limit`` enough calendar days are asked for ``limit`` regular-session bars (weekends
    and a few holidays included). Daily requests above 365 days use years.
    """
    if start is not None:
        seconds = max(60, math.ceil((end - start).total_seconds()))
        if minutes is not None and seconds <= 86_400:
            return f"{seconds} S"
        days = math.ceil(seconds / 86_400) + (1 if minutes is None else 0)
    elif limit is not None:
        if minutes is None:
            days = math.ceil(limit * 7 / 5) + 7
        else:
            sessions = math.ceil(limit * minutes / _SESSION_MINUTES) + 1
            days = math.ceil(sessions * 7 / 5) + 4
    else:
        return "1 D" if minutes is not None else "1 Y"
    if days > 365:
        return f"{math.ceil(days / 365)} Y"
    return f"{days} D"


class IBKRMarketData:
    """Quotes, bars and liquidity from IB (see the module docstring).

    ``IBKRMarketData(host="127.0.0.1", port=PAPER_TWS_PORT, client_id=2, *, ib=None,
    symbols=(), clock=None, calendar=None, exchange="SMART", currency="USD", timeout=10.0,
    connect_timeout=4.0, adv_sessions=20, volume_multiplier=1)``
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = PAPER_TWS_PORT,
        client_id: int = 2,
        *,
        ib: IB | None = None,
        symbols: Iterable[str] = (),
        clock: Clock | None = None,
        calendar: MarketCalendar | None = None,
        exchange: str = "SMART",
        currency: str = "USD",
        timeout: float = 10.0,
        connect_timeout: float = 4.0,
        adv_sessions: int = 20,
        volume_multiplier: Decimal | int = 1,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self._owns_ib = ib is None
        self.ib = ib if ib is not None else IB()
        self._universe = frozenset(symbols)
        self.clock: Clock = clock if clock is not None else WallClock()
        self.calendar: MarketCalendar = calendar if calendar is not None else default_calendar()
        self.exchange = exchange
        self.currency = currency
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.adv_sessions = adv_sessions
        self.volume_multiplier = Decimal(volume_multiplier)
        self._contracts: dict[str, Contract] = {}
        self._adv: dict[str, tuple[date, Decimal]] = {}
        self._connect_lock: asyncio.Lock | None = None

    # -- connection ----------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect the adapter's own IB client (read-only); a shared one must be connected."""
        if self.ib.isConnected():
            return
        if not self._owns_ib:
            raise BrokerUnavailable("the shared IB connection is not connected")
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self.ib.isConnected():
                return
            try:
                await self.ib.connectAsync(
                    self.host,
                    self.port,
                    clientId=self.client_id,
                    timeout=self.connect_timeout,
                    readonly=True,
                )
            except Exception as exc:
                raise BrokerUnavailable(
                    f"market data: cannot connect to TWS/IB Gateway at {self.host}:{self.port} "
                    f"(client id {self.client_id}): {exc!r}"
                ) from exc

    async def close(self) -> None:
        """Disconnect the adapter's own IB client (a shared one is left alone)."""
        if self._owns_ib and self.ib.isConnected():
            conn = self.ib.client.conn
            self.ib.disconnect()
            for _ in range(100):
                if conn.transport is None:
                    break
                await asyncio.sleep(0.01)

    async def _request(self, start: Callable[[], Awaitable[T]]) -> T:
        """Send a request (``start`` sends it) and await the answer within ``timeout``."""
        try:
            return await asyncio.wait_for(start(), self.timeout)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise BrokerUnavailable(f"market data request to TWS failed: {exc!r}") from exc

    async def _contract(self, symbol: str) -> Contract:
        contract = self._contracts.get(symbol)
        if contract is not None:
            return contract
        await self.connect()
        candidate = Stock(symbol, self.exchange, self.currency)
        qualified = await self._request(lambda: self.ib.qualifyContractsAsync(candidate))
        if not qualified:
            raise UnknownSymbol(f"IB has no {self.currency} stock {symbol!r} on {self.exchange}")
        self._contracts[symbol] = qualified[0]
        return qualified[0]

    # -- MarketData port -----------------------------------------------------------------------
    def symbols(self) -> frozenset[str]:
        """The configured universe plus every symbol IB has qualified so far."""
        return self._universe | frozenset(self._contracts)

    async def quote(self, symbol: str) -> Quote:
        """A snapshot quote at ``clock.now()``; :class:`UnknownSymbol` without any price."""
        contract = await self._contract(symbol)
        tickers = await self._request(lambda: self.ib.reqTickersAsync(contract))
        ticker = tickers[0] if tickers else None

        def price(value: Any) -> Decimal | None:
            number = to_decimal(value)
            return number if number > 0 else None

        last = close = bid = ask = None
        if ticker is not None:
            last, close = price(ticker.last), price(ticker.close)
            bid, ask = price(ticker.bid), price(ticker.ask)
        last = last or close
        if last is None and bid is not None and ask is not None:
            last = (bid + ask) / 2
        if last is None:
            raise UnknownSymbol(f"IB sent no price for {symbol!r}")
        return Quote(symbol, bid or last, ask or last, last, utc(self.clock.now()))

    async def bars(
        self,
        symbol: str,
        timeframe: str = "1Min",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Completed bars with ``start < bar.end <= end``, oldest first (the last ``limit``)."""
        minutes = timeframe_minutes(timeframe)
        check_limit(limit)
        now = utc(self.clock.now())
        end = now if end is None else min(utc(end), now)
        start = None if start is None else utc(start)
        if limit == 0 or (start is not None and start >= end):
            return []
        contract = await self._contract(symbol)
        raw = await self._request(
            lambda: self.ib.reqHistoricalDataAsync(
                contract,
                endDateTime=end,
                durationStr=duration_for(minutes, start, end, limit),
                barSizeSetting=BAR_SIZES[timeframe],
                whatToShow="TRADES",
                useRTH=True,
                formatDate=2,
                timeout=self.timeout,
            )
        )
        bars = [self._bar(symbol, b, minutes) for b in raw]
        chosen = [b for b in bars if b.end <= end and (start is None or b.end > start)]
        chosen.sort(key=lambda b: b.start)
        return chosen[-limit:] if limit is not None else chosen

    def _bar(self, symbol: str, raw: Any, minutes: int | None) -> Bar:
        when = raw.date
        if minutes is None:
            day = when if not isinstance(when, datetime) else when.date()
            try:
                start = self.calendar.session_open(day)
                end = self.calendar.session_close(day)
            except (KeyError, ValueError):  # not a session of the calendar
                start = datetime.combine(day, time(), UTC)
                end = start + timedelta(days=1)
        else:
            if not isinstance(when, datetime):
                when = datetime.combine(when, time(), UTC)
            start = utc(when)
            session = self.calendar.session_date(start)
            s_open = s_close = None
            if session is not None:
                s_open = self.calendar.session_open(session)
                s_close = self.calendar.session_close(session)
            _, end = bucket_bounds(start, minutes, s_open, s_close)
        return Bar(
            symbol=symbol,
            start=start,
            end=end,
            open=to_decimal(raw.open),
            high=to_decimal(raw.high),
            low=to_decimal(raw.low),
            close=to_decimal(raw.close),
            volume=to_decimal(raw.volume) * self.volume_multiplier,
        )

    async def average_daily_volume(self, symbol: str) -> Decimal:
        """Mean volume of the last ``adv_sessions`` completed daily bars, in whole shares."""
        today = utc(self.clock.now()).date()
        cached = self._adv.get(symbol)
        if cached is not None and cached[0] == today:
            return cached[1]
        daily = await self.bars(symbol, "1Day", limit=self.adv_sessions)
        if not daily:
            raise UnknownSymbol(f"IB sent no daily bars for {symbol!r}")
        total = sum((b.volume for b in daily), Decimal(0))
        adv = (total / len(daily)).quantize(_ONE, ROUND_HALF_EVEN)
        self._adv[symbol] = (today, adv)
        return adv
