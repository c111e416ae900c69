"""The Alpaca market-data adapter, driving the real alpaca-py data client against the emulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D
from typing import Any, TypeVar

import pytest

from core.marketdata.alpaca import AlpacaMarketData, MarketDataUnavailable
from core.marketdata.calendar import EASTERN, ExchangeCalendar, default_calendar
from core.ports import MarketData, UnknownSymbol
from tests.emulators.alpaca import AlpacaEmulator

T = TypeVar("T")

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]

VOLUME = 1_234_567


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def emu() -> Iterator[AlpacaEmulator]:
    before = set(threading.enumerate())
    with AlpacaEmulator(daily_volume=VOLUME) as emulator:
        yield emulator
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


@pytest.fixture
def market(emu: AlpacaEmulator) -> AlpacaMarketData:
    return AlpacaMarketData(
        emu.api_key,
        emu.secret_key,
        ["AAPL", "MSFT", "DELISTED"],
        base_url=emu.base_url,
        retry_wait=0.01,
    )


def last_closed_session(calendar: ExchangeCalendar, now: datetime) -> date:
    session = calendar.previous_session(now)
    if calendar.session_close(session) > now:
        session = calendar.previous_session_of(session)
    return session


def test_implements_the_market_data_port(market: AlpacaMarketData) -> None:
    assert isinstance(market, MarketData)
    assert market.symbols() == frozenset({"AAPL", "MSFT", "DELISTED"})
    assert market.clock.now().tzinfo is not None


def test_quote_from_the_latest_quote_and_trade(
    emu: AlpacaEmulator, market: AlpacaMarketData
) -> None:
    quote = run(market.quote("AAPL"))
    assert (quote.bid, quote.ask, quote.last) == (D("189.99"), D("190.01"), D("190"))
    assert quote.at.tzinfo is not None
    emu.set_quote("AAPL", "191.25", "191.27", "191.26")
    quote = run(market.quote("AAPL"))
    assert (quote.bid, quote.ask, quote.last) == (D("191.25"), D("191.27"), D("191.26"))
    assert quote.mid == D("191.26")


def test_unknown_symbols(market: AlpacaMarketData) -> None:
    with pytest.raises(UnknownSymbol):
        run(market.quote("ZZZZ"))  # not in the universe
    with pytest.raises(UnknownSymbol):
        run(market.quote("DELISTED"))  # in the universe, but Alpaca has no quote
    with pytest.raises(UnknownSymbol):
        run(market.bars("ZZZZ", "1Day"))


def test_daily_bars_end_at_the_session_close(market: AlpacaMarketData) -> None:
    calendar = default_calendar()
    now = market.clock.now()
    bars = run(market.bars("AAPL", "1Day", limit=5))
    assert len(bars) == 5
    expected = [last_closed_session(calendar, now)]
    while len(expected) < 5:
        expected.append(calendar.previous_session_of(expected[-1]))
    expected.reverse()
    assert [b.start.astimezone(EASTERN).date() for b in bars] == expected
    for bar, session in zip(bars, expected, strict=True):
        assert bar.start == datetime.combine(session, time(0), EASTERN).astimezone(UTC)
        assert bar.end == calendar.session_close(session)
        assert bar.volume == D(VOLUME)
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert all(isinstance(v, D) for v in (bar.open, bar.high, bar.low, bar.close))


def test_intraday_bars_between_start_and_end(market: AlpacaMarketData) -> None:
    calendar = default_calendar()
    session = last_closed_session(calendar, market.clock.now())
    opens = calendar.session_open(session)
    start, end = opens + timedelta(minutes=30), opens + timedelta(minutes=60)
    bars = run(market.bars("AAPL", "5Min", start=start, end=end))
    assert [b.end for b in bars] == [start + timedelta(minutes=5 * i) for i in range(1, 7)]
    assert all(b.end - b.start == timedelta(minutes=5) for b in bars)
    assert all(b.symbol == "AAPL" and b.volume > 0 for b in bars)


def test_hourly_bars_are_clock_aligned_and_clipped_to_the_session(
    market: AlpacaMarketData,
) -> None:
    calendar = default_calendar()
    session = last_closed_session(calendar, market.clock.now())
    opens, closes = calendar.session_open(session), calendar.session_close(session)
    bars = run(market.bars("AAPL", "1Hour", start=opens, end=closes))
    assert bars[0].end == opens + timedelta(minutes=30)  # 09:30-10:00 ET
    assert bars[-1].end == closes
    assert all(b.start.minute == 0 for b in bars)


def test_limit_keeps_the_most_recent_completed_bars(market: AlpacaMarketData) -> None:
    now = market.clock.now()
    bars = run(market.bars("AAPL", "1Min", limit=3))
    assert len(bars) == 3
    assert all(b.end <= now for b in bars)
    assert [b.end - b.start for b in bars] == [timedelta(minutes=1)] * 3
    assert bars[0].start < bars[1].start < bars[2].start
    assert run(market.bars("AAPL", "1Min", limit=0)) == []
    with pytest.raises(ValueError, match="timeframe"):
        run(market.bars("AAPL", "2Min"))


def test_average_daily_volume_from_daily_bars(market: AlpacaMarketData) -> None:
    assert run(market.average_daily_volume("AAPL")) == D(VOLUME)


def test_transient_errors_are_retried_then_reported(
    emu: AlpacaEmulator, market: AlpacaMarketData
) -> None:
    emu.fail_next(2, 503, method="GET", path="/v2/stocks/quotes/latest")
    assert run(market.quote("MSFT")).bid == D("409.99")
    emu.fail_next(3, 500, method="GET", path="/v2/stocks/bars")
    with pytest.raises(MarketDataUnavailable, match="HTTP 500"):
        run(market.bars("AAPL", "1Day", limit=1))
    assert emu.count_requests("GET", "/v2/stocks/bars") == 3
