from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain import Bar
from core.marketdata import simulated
from core.marketdata.bars import aggregate, timeframe_minutes
from core.marketdata.calendar import ManualClock, SessionClock, default_calendar
from core.marketdata.simulated import DEFAULT_UNIVERSE, SimulatedMarket, SymbolSpec
from core.ports import MarketData, UnknownSymbol

CAL = default_calendar()
#: Friday 2026-11-20, 11:00 ET: mid-session on a regular day.
MIDDAY = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
#: Monday 2026-11-30 before the open: the Thanksgiving week is complete.
AFTER_THANKSGIVING = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPECS = {spec.symbol: spec for spec in DEFAULT_UNIVERSE}


def make(at: datetime = MIDDAY, seed: int = 7, **kwargs: Any) -> SimulatedMarket:
    return SimulatedMarket(ManualClock(at), CAL, seed=seed, **kwargs)


def session_minutes(market: SimulatedMarket, symbol: str, day: date) -> list[Bar]:
    return market.bars_sync(symbol, "1Min", start=CAL.session_open(day), end=CAL.session_close(day))


def assert_consistent(bars: list[Bar]) -> None:
    for bar in bars:
        assert bar.low > 0, bar
        assert bar.low <= bar.open <= bar.high, bar
        assert bar.low <= bar.close <= bar.high, bar
        assert bar.volume >= 0, bar
        assert bar.start < bar.end, bar
        for price in (bar.open, bar.high, bar.low, bar.close):
            assert price == price.quantize(Decimal("0.01")), bar


# -- the port --------------------------------------------------------------------------------


def test_implements_the_market_data_port() -> None:
    market = make()
    assert isinstance(market, MarketData)
    assert market.symbols() == frozenset(SPECS)
    assert len(DEFAULT_UNIVERSE) >= 20
    assert asyncio.run(market.quote("AAPL")).symbol == "AAPL"
    assert asyncio.run(market.bars("AAPL", "5Min", limit=3))
    assert asyncio.run(market.average_daily_volume("AAPL")) > 0


def test_leveraged_etfs_are_more_volatile_than_their_underlying() -> None:
    assert SPECS["TQQQ"].volatility >= 2.5 * SPECS["QQQ"].volatility
    assert SPECS["SPXL"].volatility >= 2.5 * SPECS["SPY"].volatility
    assert SPECS["SQQQ"].drift < 0 and SPECS["UVXY"].drift < 0


def test_unknown_symbol_and_timeframe_are_refused() -> None:
    market = make()
    with pytest.raises(UnknownSymbol, match="ZZZZ"):
        market.quote_sync("ZZZZ")
    with pytest.raises(UnknownSymbol):
        market.bars_sync("ZZZZ")
    with pytest.raises(UnknownSymbol):
        market.average_daily_volume_sync("ZZZZ")
    with pytest.raises(ValueError, match="unknown timeframe '2Min'"):
        market.bars_sync("AAPL", "2Min")
    with pytest.raises(ValueError, match="limit"):
        market.bars_sync("AAPL", limit=-1)


def test_symbol_spec_validates() -> None:
    with pytest.raises(ValueError, match="start_price"):
        SymbolSpec("X", Decimal(0), 0.2)
    with pytest.raises(ValueError, match="volatility"):
        SymbolSpec("X", Decimal(10), -0.1)
    with pytest.raises(ValueError, match="adv"):
        SymbolSpec("X", Decimal(10), 0.2, adv=0)
    spec = SymbolSpec("X", "12.5", 0.2, spread_bps="3")  # type: ignore[arg-type]
    assert spec.start_price == Decimal("12.5") and spec.spread_bps == Decimal(3)


# -- determinism -----------------------------------------------------------------------------


def snapshot(market: SimulatedMarket, symbols: tuple[str, ...]) -> list[object]:
    out: list[object] = []
    for symbol in symbols:
        out.append(market.bars_sync(symbol, "1Min", limit=900))
        out.append(market.bars_sync(symbol, "1Day", limit=80))
        out.append(market.quote_sync(symbol))
        out.append(market.average_daily_volume_sync(symbol))
    return out


def test_same_seed_gives_identical_data_and_another_seed_does_not() -> None:
    symbols = ("AAPL", "TQQQ", "UVXY")
    first = snapshot(make(seed=11), symbols)
    assert snapshot(make(seed=11), symbols) == first
    assert snapshot(make(seed=12), symbols) != first


def test_query_order_and_frequency_do_not_matter() -> None:
    a, b = make(), make()
    expected = {s: session_minutes(a, s, date(2026, 11, 18)) for s in ("MSFT", "SOXL")}
    expected_daily = a.bars_sync("MSFT", "1Day", limit=60)
    expected_quote = a.quote_sync("SOXL")

    # b goes the other way round: newest data first, many small queries, other timeframes.
    assert b.quote_sync("SOXL") == expected_quote
    for _ in range(3):
        b.bars_sync("SOXL", "15Min", limit=7)
    assert b.bars_sync("MSFT", "1Day", limit=60) == expected_daily
    for symbol in ("SOXL", "MSFT"):
        pieces = [
            b.bars_sync(symbol, "1Min", start=t, end=t + timedelta(minutes=30))
            for t in reversed(
                [
                    CAL.session_open(date(2026, 11, 18)) + timedelta(minutes=30 * k)
                    for k in range(13)
                ]
            )
        ]
        assert [bar for piece in reversed(pieces) for bar in piece] == expected[symbol]


def test_regenerating_an_evicted_session_gives_the_same_bars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = make().bars_sync("NVDA", "1Min", limit=2000)
    monkeypatch.setattr(simulated, "_MINUTE_CACHE_SIZE", 1)
    monkeypatch.setattr(simulated, "_BAR_CACHE_SIZE", 1)
    market = make()
    market.bars_sync("AAPL", "1Day")  # churns the caches
    assert market.bars_sync("NVDA", "1Min", limit=2000) == expected


def test_stepping_the_clock_equals_jumping_there() -> None:
    stepped = make()
    clock = stepped.clock
    assert isinstance(clock, ManualClock)
    for _ in range(90):
        clock.advance(timedelta(minutes=1))
        stepped.quote_sync("SPY")
    jumped = make()
    jumped_clock = jumped.clock
    assert isinstance(jumped_clock, ManualClock)
    jumped_clock.set(clock.now())
    assert jumped.quote_sync("SPY") == stepped.quote_sync("SPY")
    assert jumped.bars_sync("SPY", "5Min", limit=50) == stepped.bars_sync("SPY", "5Min", limit=50)


def test_start_price_is_the_anchor_sessions_open() -> None:
    market = make()
    for symbol in ("AAPL", "SQQQ", "SPY"):
        first = session_minutes(market, symbol, date(2026, 11, 20))[0]
        assert first.open == SPECS[symbol].start_price


# -- bar shape -------------------------------------------------------------------------------


def test_ohlc_is_consistent_positive_and_in_cents_for_the_whole_universe() -> None:
    market = make(AFTER_THANKSGIVING)
    for symbol in market.symbols():
        minutes = market.bars_sync(symbol, "1Min", start=CAL.session_open(date(2026, 11, 20)))
        assert len(minutes) == 4 * 390 + 210  # the day after Thanksgiving closes at 13:00
        assert_consistent(minutes)
        assert_consistent(market.bars_sync(symbol, "1Day"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    symbol=st.sampled_from(sorted(SPECS)),
    days_back=st.integers(min_value=0, max_value=60),
    timeframe=st.sampled_from(["1Min", "5Min", "10Min", "15Min", "1Hour", "1Day"]),
)
def test_property_bars_are_consistent(
    seed: int, symbol: str, days_back: int, timeframe: str
) -> None:
    market = make(MIDDAY, seed=seed, intraday_history_sessions=60)
    end = MIDDAY - timedelta(days=days_back)
    bars = market.bars_sync(symbol, timeframe, end=end, limit=400)
    assert bars
    assert_consistent(bars)
    assert all(b.end <= end for b in bars)
    assert [b.start for b in bars] == sorted(b.start for b in bars)
    for prev, bar in pairwise(bars):
        assert prev.end <= bar.start


def test_volume_profile_is_u_shaped() -> None:
    market = make(AFTER_THANKSGIVING)
    sessions = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)]
    for symbol in ("AAPL", "SPY", "DIA", "SOXS"):
        for day in sessions:
            vols = [float(b.volume) for b in session_minutes(market, symbol, day)]
            assert len(vols) == 390
            open_rate = sum(vols[:30]) / 30
            close_rate = sum(vols[-30:]) / 30
            midday_rate = sum(vols[150:240]) / 90
            assert open_rate > midday_rate * 1.3
            assert close_rate > midday_rate * 1.3


def test_session_volume_is_about_the_adv() -> None:
    market = make(AFTER_THANKSGIVING)
    for symbol in ("AAPL", "NVDA", "IWM", "UVXY"):
        adv = SPECS[symbol].adv
        daily = market.bars_sync(symbol, "1Day", limit=60)
        full = [b for b in daily if b.end - b.start == timedelta(hours=6, minutes=30)]
        assert len(full) >= 55
        for bar in full:
            assert Decimal("0.4") * adv < bar.volume < 2 * adv
        mean = sum((b.volume for b in full), Decimal(0)) / len(full)
        assert abs(mean / adv - 1) < Decimal("0.15")


def test_average_daily_volume_is_the_mean_of_the_last_20_sessions() -> None:
    market = make(AFTER_THANKSGIVING)
    daily = market.bars_sync("JPM", "1Day", limit=20)
    expected = (sum((b.volume for b in daily), Decimal(0)) / 20).quantize(Decimal(1))
    assert market.average_daily_volume_sync("JPM") == expected


# -- calendar --------------------------------------------------------------------------------


def test_no_bars_on_thanksgiving_or_the_weekend() -> None:
    market = make(AFTER_THANKSGIVING)
    minutes = market.bars_sync("AAPL", "1Min", start=datetime(2026, 11, 20, 21, 0, tzinfo=UTC))
    days = {b.start.date() for b in minutes}
    assert days == {date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)}
    daily = market.bars_sync("AAPL", "1Day", limit=5)
    assert [b.start.date() for b in daily] == [
        date(2026, 11, 20),
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
        date(2026, 11, 27),
    ]
    thanksgiving = market.bars_sync(
        "AAPL",
        "1Min",
        start=datetime(2026, 11, 26, 0, 0, tzinfo=UTC),
        end=datetime(2026, 11, 27, 0, 0, tzinfo=UTC),
    )
    assert thanksgiving == []


def test_bars_stop_at_the_early_close() -> None:
    market = make(AFTER_THANKSGIVING)
    black_friday = date(2026, 11, 27)
    minutes = session_minutes(market, "QQQ", black_friday)
    assert len(minutes) == 210
    assert minutes[0].start == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    assert minutes[-1].end == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    hourly = market.bars_sync(
        "QQQ", "1Hour", start=CAL.session_open(black_friday), end=CAL.session_close(black_friday)
    )
    assert hourly[-1].end == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    daily = market.bars_sync("QQQ", "1Day", limit=1)[0]
    assert (daily.start, daily.end) == (
        CAL.session_open(black_friday),
        CAL.session_close(black_friday),
    )
    # volume in proportion to the shorter session
    assert daily.volume < Decimal(SPECS["QQQ"].adv)


def test_history_is_there_for_indicators() -> None:
    start = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # Monday's open
    market = make(start)
    assert len(market.bars_sync("AAPL", "1Day")) >= 60
    minute_days = {b.start.date() for b in market.bars_sync("AAPL", "1Min")}
    assert len(minute_days) >= 5


def test_default_is_the_default_universe_on_a_given_clock() -> None:
    market = SimulatedMarket.default(ManualClock(MIDDAY), seed=7)
    assert market.symbols() == frozenset(SPECS)
    assert market.quote_sync("MSFT") == make().quote_sync("MSFT")


def test_demo_runs_on_a_session_clock() -> None:
    market = SimulatedMarket.demo(speed=120.0, seed=3)
    assert isinstance(market.clock, SessionClock)
    assert market.symbols() == frozenset(SPECS)
    assert CAL.is_open(market.clock.now())
    quote = market.quote_sync("SPY")
    assert quote.bid < quote.last < quote.ask


# -- aggregation and the completed-bars rule -------------------------------------------------


def combine(parts: list[Bar]) -> tuple[Decimal, ...]:
    return (
        parts[0].open,
        max(b.high for b in parts),
        min(b.low for b in parts),
        parts[-1].close,
        sum((b.volume for b in parts), Decimal(0)),
    )


def ohlcv(bar: Bar) -> tuple[Decimal, ...]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


def test_ten_minute_bar_is_its_ten_minute_bars() -> None:
    market = make(AFTER_THANKSGIVING)
    day = date(2026, 11, 24)
    minutes = session_minutes(market, "META", day)
    tens = market.bars_sync(
        "META", "10Min", start=CAL.session_open(day), end=CAL.session_close(day)
    )
    assert len(tens) == 39
    for k, bar in enumerate(tens):
        parts = minutes[10 * k : 10 * k + 10]
        assert (bar.start, bar.end) == (parts[0].start, parts[-1].end)
        assert ohlcv(bar) == combine(parts)


@pytest.mark.parametrize("timeframe", ["5Min", "15Min", "1Hour", "1Day"])
def test_every_timeframe_aggregates_the_minute_bars(timeframe: str) -> None:
    market = make(AFTER_THANKSGIVING)
    day = date(2026, 11, 27)
    minutes = session_minutes(market, "TSLA", day)
    expected = aggregate(minutes, timeframe_minutes(timeframe), CAL)
    got = market.bars_sync(
        "TSLA", timeframe, start=CAL.session_open(day), end=CAL.session_close(day)
    )
    assert got == expected


def test_only_completed_bars_are_returned() -> None:
    now = datetime(2026, 11, 20, 15, 7, 30, tzinfo=UTC)  # 10:07:30 ET
    market = make(now)
    minutes = market.bars_sync("AAPL", "1Min", limit=3)
    assert minutes[-1].end == datetime(2026, 11, 20, 15, 7, tzinfo=UTC)
    assert market.bars_sync("AAPL", "5Min", limit=1)[-1].end == datetime(
        2026, 11, 20, 15, 5, tzinfo=UTC
    )
    assert market.bars_sync("AAPL", "1Hour", limit=1)[-1].end == datetime(
        2026, 11, 20, 15, 0, tzinfo=UTC
    )
    assert market.bars_sync("AAPL", "1Day", limit=1)[-1].end < now
    # an end in the future is capped at now
    future = market.bars_sync("AAPL", "1Min", end=now + timedelta(days=3), limit=1)
    assert future == minutes[-1:]
    # start is exclusive of bars ending at it; limit keeps the newest
    window = market.bars_sync("AAPL", "1Min", start=datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
    assert [b.end.minute for b in window] == [1, 2, 3, 4, 5, 6, 7]
    assert market.bars_sync("AAPL", "1Min", limit=0) == []
    assert market.bars_sync("AAPL", "1Min", start=now, end=now - timedelta(hours=1)) == []


def test_daily_bars_equal_their_minute_bars() -> None:
    market = make(AFTER_THANKSGIVING)
    for bar in market.bars_sync("XOM", "1Day", limit=5):
        minutes = session_minutes(market, "XOM", bar.start.date())
        assert ohlcv(bar) == combine(minutes)


# -- quotes ----------------------------------------------------------------------------------


def check_quote(market: SimulatedMarket, symbol: str) -> None:
    quote = market.quote_sync(symbol)
    spec = SPECS[symbol]
    assert quote.at == market.clock.now()
    assert Decimal("0.01") <= quote.bid < quote.last < quote.ask
    assert quote.ask - quote.bid <= max(
        Decimal("0.02"), quote.last * spec.spread_bps / 10_000 + Decimal("0.02")
    )
    assert quote.bid == quote.bid.quantize(Decimal("0.01"))
    assert quote.ask == quote.ask.quantize(Decimal("0.01"))


def test_quote_tracks_the_latest_completed_minute() -> None:
    now = datetime(2026, 11, 20, 15, 7, 30, tzinfo=UTC)
    market = make(now)
    for symbol in market.symbols():
        check_quote(market, symbol)
        last_bar = market.bars_sync(symbol, "1Min", limit=1)[0]
        assert market.quote_sync(symbol).last == last_bar.close


def test_quote_around_session_boundaries() -> None:
    market = make(AFTER_THANKSGIVING)
    clock = market.clock
    assert isinstance(clock, ManualClock)
    friday_close = market.bars_sync("AAPL", "1Day", limit=1)[0].close
    # weekend / overnight and during the first minute: the previous close
    for ts in (
        datetime(2026, 11, 28, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 14, 30, tzinfo=UTC),
        datetime(2026, 11, 30, 14, 30, 59, tzinfo=UTC),
    ):
        clock.set(ts)
        assert market.quote_sync("AAPL").last == friday_close
        check_quote(market, "AAPL")
    clock.set(datetime(2026, 11, 30, 14, 31, tzinfo=UTC))
    first = market.bars_sync("AAPL", "1Min", limit=1)[0]
    assert first.start == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert market.quote_sync("AAPL").last == first.close
    # going back in time is answered from the right minute, not the cached one
    clock.set(datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    assert market.quote_sync("AAPL").last == friday_close


def test_quote_reuses_the_minute_but_reports_now() -> None:
    market = make()
    clock = market.clock
    assert isinstance(clock, ManualClock)
    first = market.quote_sync("AMZN")
    clock.advance(20)
    second = market.quote_sync("AMZN")
    assert (second.bid, second.ask, second.last) == (first.bid, first.ask, first.last)
    assert second.at == first.at + timedelta(seconds=20)
