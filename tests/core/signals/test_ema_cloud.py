"""The EMA-cloud engine: setups that must and must not signal, prices, conviction, de-duplication,
the replay sample, and the signal source writing through intake."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from core.domain import CENT, Direction, OrderType, SignalStatus, TradeType, ValidationError
from core.marketdata.calendar import ManualClock
from core.marketdata.replay import load_sample
from core.signals import ema_cloud
from core.signals.clouds import cloud_series, to_cents
from core.signals.ema_cloud import EmaCloudConfig, EmaCloudEngine, EmaCloudSource, signal_to_intake
from core.signals.intake import parse_signal
from tests.core.brokers.fixed_market import FixedMarket
from tests.core.signals.builders import (
    T0,
    bars_from_closes,
    long_setup_closes,
    short_setup_closes,
    trend,
)

ONE_TF = EmaCloudConfig(day_timeframe=None, swing_timeframe=None)


def engine(config: EmaCloudConfig = ONE_TF) -> EmaCloudEngine:
    return EmaCloudEngine(None, config)


def clouds(bars):
    closes = [float(b.close) for b in bars]
    return (
        cloud_series(closes, (5, 12)),
        cloud_series(closes, (8, 9)),
        cloud_series(closes, (34, 50)),
    )


# ---------------------------------------------------------------------------------------------
# Setups
# ---------------------------------------------------------------------------------------------


def test_long_setup_signals_long_with_macro_stop_and_2r_target():
    bars = bars_from_closes(long_setup_closes())
    fast, pull, macro = clouds(bars)
    t = len(bars) - 1
    # The construction really is the documented setup.
    assert macro[t].bullish and float(bars[t].close) > macro[t].top
    assert fast[t].bullish and pull[t].bullish
    assert any(float(bars[k].low) <= pull[k].top for k in range(t - 2, t + 1))
    assert float(bars[t].close) > pull[t].top and bars[t].close > bars[t - 1].close

    signal = engine().evaluate("TEST", {"1Min": bars})
    assert signal is not None
    assert signal.direction is Direction.LONG
    assert signal.entry == bars[t].close
    assert signal.stop == to_cents(macro[t].bottom)
    assert signal.stop < signal.entry
    assert signal.target == signal.entry + 2 * (signal.entry - signal.stop)
    for value in (signal.entry, signal.stop, signal.target):
        assert value == value.quantize(CENT)
    assert signal.trade_type is TradeType.SCALP
    assert signal.timeframe == "1Min"
    assert signal.source == "ema_cloud"
    assert signal.created_at == bars[t].end
    signal.validate()
    md = signal.metadata
    assert md["clouds"]["macro"]["bottom"] == str(signal.stop)
    assert md["clouds"]["fast"]["bullish"] is True
    assert md["cloud_edge"] == str(to_cents(pull[t].top))
    assert md["bar_end"] == bars[t].end.isoformat()


def test_short_setup_signals_short_with_macro_top_stop():
    bars = bars_from_closes(short_setup_closes())
    _, _, macro = clouds(bars)
    signal = engine().evaluate("TEST", {"1Min": bars})
    assert signal is not None
    assert signal.direction is Direction.SHORT
    assert signal.stop == to_cents(macro[-1].top) > signal.entry
    assert signal.target == signal.entry - 2 * (signal.stop - signal.entry)
    assert signal.metadata["clouds"]["macro"]["bullish"] is False
    signal.validate()


def test_setup_fires_once_not_on_every_bar_while_it_lasts():
    bars = bars_from_closes(long_setup_closes())
    e = engine()
    fired = [n for n in range(60, len(bars) + 1) if e.evaluate("TEST", {"1Min": bars[:n]})]
    assert fired == [len(bars)]
    # One more bar continuing up: the setup still holds but is not fresh.
    more = bars_from_closes([*long_setup_closes(), long_setup_closes()[-1] + 0.3])
    assert e.evaluate("TEST", {"1Min": more}) is None


def rally_after_downtrend(rally_bars: int) -> list[float]:
    """A fall, a rally of ``rally_bars`` and the long setup's dip-and-turn at the end."""
    closes = trend(70, 130, -0.3)
    closes += trend(rally_bars, closes[-1] + 0.3, 0.3)
    return closes + [closes[-1] + d for d in (-0.2, -0.5, -0.6, -0.1)]


@pytest.mark.parametrize(
    "closes",
    [
        pytest.param(trend(104), id="trend-without-pullback"),
        pytest.param([100.0] * 104, id="flat"),
        pytest.param(
            # The dip closes below the 8/9 cloud (bars 101 and 102): the pullback did not hold.
            trend(100) + [trend(100)[-1] + d for d in (-0.4, -1.2, -1.0, -0.7)],
            id="pullback-breaks-the-cloud",
        ),
        pytest.param(long_setup_closes()[:49], id="too-few-bars"),
        pytest.param(rally_after_downtrend(20), id="macro-cloud-still-bearish"),
    ],
)
def test_no_signal(closes):
    assert engine().evaluate("TEST", {"1Min": bars_from_closes(closes)}) is None


def test_macro_cloud_colour_decides():
    # 20 rally bars: fast and pullback clouds bullish, the dip held, the close even above the
    # macro cloud, but the macro cloud itself is still bearish. 30 bars: it has turned.
    for n, expected in ((20, False), (30, True)):
        bars = bars_from_closes(rally_after_downtrend(n))
        fast, pull, macro = clouds(bars)
        assert fast[-1].bullish and pull[-1].bullish
        assert float(bars[-1].close) > macro[-1].top
        assert macro[-1].bullish is expected
        assert (engine().evaluate("TEST", {"1Min": bars}) is not None) is expected


def test_stop_on_the_wrong_side_gives_no_signal(monkeypatch):
    bars = bars_from_closes(long_setup_closes())
    assert engine().evaluate("TEST", {"1Min": bars}) is not None
    # If the macro edge rounds onto the entry there is no risk to take: no signal.
    entry = bars[-1].close
    monkeypatch.setattr(ema_cloud, "to_cents", lambda value: entry)
    assert engine().evaluate("TEST", {"1Min": bars}) is None


def test_reward_to_risk_comes_from_config():
    bars = bars_from_closes(long_setup_closes())
    signal = engine(replace(ONE_TF, reward_to_risk=Decimal("3"))).evaluate("TEST", {"1Min": bars})
    assert signal is not None
    assert signal.target == signal.entry + 3 * (signal.entry - signal.stop)


# ---------------------------------------------------------------------------------------------
# Conviction
# ---------------------------------------------------------------------------------------------


def with_last_volume(closes, volume):
    return bars_from_closes(closes, volumes=[1000] * (len(closes) - 1) + [volume])


@pytest.mark.parametrize(
    ("last_volume", "conviction", "order_type"),
    [
        (1499, 55, OrderType.LIMIT),  # 40 setup + 15 (ratio >= 1.0)
        (1000, 55, OrderType.LIMIT),  # ratio exactly 1.0 confirms
        (1500, 70, OrderType.LIMIT),  # 40 + 30 (ratio >= 1.5)
        (999, None, None),  # 40: below the 50 minimum, no signal
    ],
)
def test_conviction_single_timeframe(last_volume, conviction, order_type):
    bars = with_last_volume(long_setup_closes(), last_volume)
    signal = engine().evaluate("TEST", {"1Min": bars})
    if conviction is None:
        assert signal is None
        return
    assert signal is not None
    assert (signal.conviction, signal.order_type) == (conviction, order_type)


def higher_timeframe(minutes: int, step: float, n: int = 60):
    return bars_from_closes(trend(n, 100, step), minutes=minutes, start=T0 - timedelta(days=20))


@pytest.mark.parametrize(
    ("step", "last_volume", "conviction", "order_type"),
    [
        (0.5, 1500, 100, OrderType.MARKET),  # 40 + 30 aligned + 30 strong volume
        (0.5, 1000, 85, OrderType.MARKET),  # 40 + 30 + 15
        (0.5, 999, 70, OrderType.LIMIT),  # aligned but no volume: never a market order
        (-0.5, 1500, 70, OrderType.LIMIT),  # other timeframes against: 40 + 0 + 30
        (-0.5, 1000, 55, OrderType.LIMIT),
    ],
)
def test_conviction_bands_across_timeframes(step, last_volume, conviction, order_type):
    bars = {
        "1Min": with_last_volume(long_setup_closes(), last_volume),
        "10Min": higher_timeframe(10, step),
        "1Hour": higher_timeframe(60, step),
    }
    signal = engine(EmaCloudConfig()).evaluate("TEST", bars, timeframe="1Min")
    assert signal is not None
    assert (signal.conviction, signal.order_type) == (conviction, order_type)
    parts = signal.metadata["conviction_parts"]
    assert parts["setup"] + parts["alignment"] + parts["volume"] == conviction
    colour = "bullish" if step > 0 else "bearish"
    assert signal.metadata["alignment"]["10Min"] == {"bars": 60, "fast": colour, "macro": colour}


def test_timeframe_with_too_few_bars_does_not_vote():
    bars = {
        "1Min": with_last_volume(long_setup_closes(), 1000),
        "10Min": higher_timeframe(10, 0.5),
        "1Hour": higher_timeframe(60, 0.5, n=7),  # fewer than alignment_min_bars
    }
    signal = engine(EmaCloudConfig()).evaluate("TEST", bars)
    assert signal is not None
    assert signal.conviction == 40 + 15 + 15  # half of the alignment votes
    assert signal.metadata["alignment"]["1Hour"] == {"fast": None, "macro": None, "bars": 7}


def test_trade_type_follows_the_timeframe():
    bars = {
        "1Min": higher_timeframe(1, 0.5),
        "10Min": bars_from_closes(long_setup_closes(), minutes=10),
        "1Hour": bars_from_closes(short_setup_closes(), minutes=60),
    }
    e = engine(EmaCloudConfig())
    day = e.evaluate("TEST", bars, timeframe="10Min")
    swing = e.evaluate("TEST", bars, timeframe="1Hour")
    assert day is not None and (day.trade_type, day.direction) == (TradeType.DAY, Direction.LONG)
    assert swing is not None and swing.trade_type is TradeType.SWING
    assert [s.timeframe for s in e.evaluate_all("TEST", bars)] == ["10Min", "1Hour"]
    assert e.evaluate("TEST", bars).timeframe == "10Min"  # higher conviction (1Min agrees)
    daily = engine(EmaCloudConfig(swing_timeframe="1Day"))
    assert daily.config.trade_type_for("1Day") is TradeType.SWING


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fast": (12, 5)},
        {"min_bars": 10},
        {"swing_timeframe": "2Hour"},
        {"scalp_timeframe": None, "day_timeframe": None, "swing_timeframe": None},
        {"day_timeframe": "1Min"},
        {"setup_points": 60},
        {"reward_to_risk": 0},
    ],
)
def test_config_is_validated(kwargs):
    with pytest.raises(ValidationError):
        EmaCloudConfig(**kwargs)


# ---------------------------------------------------------------------------------------------
# Scanning: never the same signal twice
# ---------------------------------------------------------------------------------------------


def fixed_market(closes):
    bars = bars_from_closes(closes, symbol="AAPL")
    clock = ManualClock(bars[-1].end)
    return FixedMarket(clock, {"AAPL": bars}), bars


def test_scan_never_emits_the_same_signal_twice():
    market, bars = fixed_market(long_setup_closes())
    e = EmaCloudEngine(market, ONE_TF)
    now = bars[-1].end
    first = asyncio.run(e.scan(["AAPL"], now))
    assert [s.direction for s in first] == [Direction.LONG]
    assert e.last_emitted("AAPL", "1Min") == bars[-1].end
    # Same bar again, a few seconds later: nothing new.
    assert asyncio.run(e.scan(["AAPL"], now + timedelta(seconds=20))) == []
    assert asyncio.run(e.scan(["AAPL"], now)) == []


def test_scan_skips_stale_bars():
    market, bars = fixed_market(long_setup_closes())
    e = EmaCloudEngine(market, ONE_TF)
    assert asyncio.run(e.scan(["AAPL"], bars[-1].end + timedelta(minutes=3))) == []
    assert len(asyncio.run(e.scan(["AAPL"], bars[-1].end + timedelta(minutes=2)))) == 1


def replay_signals():
    market = load_sample()
    e = EmaCloudEngine(market)
    out = []
    while not market.exhausted:
        now = market.advance()
        out.extend(asyncio.run(e.scan(sorted(market.symbols()), now)))
    return out


def test_replay_sample_is_deterministic():
    first, second = replay_signals(), replay_signals()
    assert first, "the sample session should produce signals"
    assert first == second
    keys = [(s.symbol, s.timeframe, s.created_at) for s in first]
    assert len(keys) == len(set(keys))  # never the same (symbol, timeframe, bar) twice
    for s in first:
        s.validate()
        assert s.source == "ema_cloud"
        assert s.order_type is (OrderType.MARKET if s.conviction >= 75 else OrderType.LIMIT)
        assert 50 <= s.conviction <= 100
        risk = abs(s.entry - s.stop)
        assert abs(s.target - s.entry) == 2 * risk
    assert {s.direction for s in first} == {Direction.LONG, Direction.SHORT}


# ---------------------------------------------------------------------------------------------
# The signal source writes through intake
# ---------------------------------------------------------------------------------------------


def test_signal_dict_round_trips_through_intake():
    signal = engine().evaluate("TEST", {"1Min": bars_from_closes(long_setup_closes())})
    assert signal is not None
    parsed, problems = parse_signal(signal_to_intake(signal), "ema_cloud", signal.created_at)
    assert problems == []
    assert parsed == replace(signal)


@pytest.fixture
def store(tmp_path):
    from db.engine import open_store

    s = open_store(f"sqlite:///{tmp_path}/x.db")
    yield s
    s.engine.dispose()


def test_source_queues_signals_on_schedule(store):
    market, bars = fixed_market(long_setup_closes())
    source = EmaCloudSource(EmaCloudEngine(market, ONE_TF), ["AAPL"], every=timedelta(minutes=1))
    now = bars[-1].end
    assert asyncio.run(source.emit(store, now)) == 1
    assert asyncio.run(source.emit(store, now + timedelta(seconds=30))) == 0  # not due yet
    assert asyncio.run(source.emit(store, now + timedelta(minutes=1))) == 0  # same bar
    with store.unit_of_work(read_only=True) as uow:
        pending = uow.signals.pending()
    assert len(pending) == 1
    stored = pending[0]
    assert stored.source == "ema_cloud" and stored.status is SignalStatus.PENDING
    assert stored.direction is Direction.LONG
    assert stored.metadata["clouds"]["macro"]["bottom"] == str(stored.stop)
    assert source.queued == 1


def test_source_is_quiet_outside_sessions_and_checks_symbols(store):
    market, bars = fixed_market(long_setup_closes())
    source = EmaCloudSource(EmaCloudEngine(market, ONE_TF), ["AAPL"])
    saturday = bars[-1].end + timedelta(days=1)
    assert asyncio.run(source.emit(store, saturday)) == 0
    with pytest.raises(ValueError, match="MSFT"):
        EmaCloudSource(EmaCloudEngine(market, ONE_TF), ["AAPL", "MSFT"])
