"""The exit monitor: each exit firing and not firing at its boundary, the priority order, EOD on
normal and early-close days, session counting for leveraged ETFs, and the incremental path
against a from-scratch recomputation."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain import Bar, Direction, InstrumentType, Signal, TradeType, ValidationError
from core.exits import (
    PRIORITY,
    ExitConfig,
    ExitMonitor,
    ExitReason,
    TrackedPosition,
    facts_from_bars,
)
from core.marketdata.calendar import EASTERN, default_calendar
from tests.core.signals.builders import T0, bars_from_closes, trend

CAL = default_calendar()
CENT = Decimal("0.01")


def et(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=EASTERN).astimezone(UTC)


def position(**kw) -> TrackedPosition:
    base = dict(
        symbol="TEST",
        direction=Direction.LONG,
        entry_price=Decimal("100"),
        stop=Decimal("98"),
        target=None,
        qty=Decimal(10),
        entry_time=et(2026, 11, 20, 10, 0),
        trade_type=TradeType.DAY,
        timeframe="1Min",
    )
    base.update(kw)
    return TrackedPosition(**base)


@pytest.fixture
def monitor() -> ExitMonitor:
    return ExitMonitor(ExitConfig(), CAL)


def reasons(decisions) -> list[str]:
    return [d.reason.value for d in decisions]


def cents_floor(x: float) -> Decimal:
    return Decimal(x).quantize(CENT, ROUND_FLOOR)


def cents_ceil(x: float) -> Decimal:
    return Decimal(x).quantize(CENT, ROUND_CEILING)


# An uptrend of 100 one-minute bars: 100.00 .. 119.80, 09:30-11:10 ET on 2026-11-20.
UP = bars_from_closes(trend(100))
UP_END = UP[-1].end


def up_position(**kw) -> TrackedPosition:
    """A long opened at the uptrend's last close, stop far below (no hard stop in play)."""
    base = dict(entry_price=Decimal("119.80"), stop=Decimal("110"), entry_time=UP_END)
    base.update(kw)
    return position(**base)


def next_bar(close: Decimal | float, i: int = 0, prev: Decimal | None = None):
    """The bar after the uptrend (``i`` bars later) closing at ``close``."""
    start = UP_END + timedelta(minutes=i)
    close = Decimal(str(close))
    prev = prev if prev is not None else close
    return Bar(
        "TEST",
        start,
        start + timedelta(minutes=1),
        prev,
        max(prev, close),
        min(prev, close),
        close,
        Decimal(1000),
    )


def primed(monitor: ExitMonitor) -> ExitMonitor:
    assert monitor.on_bars("TEST", UP, "1Min") == len(UP)
    return monitor


# ---------------------------------------------------------------------------------------------
# Position and config
# ---------------------------------------------------------------------------------------------


def test_position_is_validated():
    with pytest.raises(ValidationError, match="below entry"):
        position(stop=Decimal("101"))
    with pytest.raises(ValidationError, match="above entry"):
        position(direction=Direction.SHORT, stop=Decimal("99"))
    with pytest.raises(ValidationError, match="target"):
        position(target=Decimal("99"))
    with pytest.raises(ValueError, match="naive"):
        position(entry_time=datetime(2026, 11, 20, 15, 0))
    p = position(direction="short", stop="102", trade_type="swing")
    assert p.direction is Direction.SHORT and p.trade_type is TradeType.SWING
    assert p.risk_per_share == Decimal(2)
    assert p == replace(p)  # the monitor's cache is not part of the value
    ExitMonitor(ExitConfig(), CAL).check(p, Decimal(101), p.entry_time)
    assert p._plan is not None
    copied = pickle.loads(pickle.dumps(p))
    assert copied == p and copied._plan is None


def test_from_signal():
    signal = Signal(
        "QQQ",
        Direction.LONG,
        Decimal("500"),
        Decimal("495"),
        T0,
        Decimal("510"),
        trade_type=TradeType.SCALP,
        timeframe="1Min",
        id=7,
    )
    p = TrackedPosition.from_signal(
        signal,
        entry_price=Decimal("500.10"),
        qty=Decimal(3),
        entry_time=T0,
        leverage=Decimal(3),
        instrument_type=InstrumentType.LEVERAGED_ETF,
        symbol="TQQQ",
    )
    assert (p.symbol, p.signal_id, p.stop, p.target, p.timeframe) == (
        "TQQQ",
        7,
        Decimal("495"),
        Decimal("510"),
        "1Min",
    )


def test_config_defaults_are_the_seeds():
    cfg = ExitConfig()
    assert cfg.reward_to_risk_target == 2
    assert cfg.time_stop_minutes == 120
    assert cfg.eod_lead_minutes == 5
    assert cfg.trailing_stop_cloud == "pullback"
    assert [cfg.max_hold_days(x) for x in (3, -3, 2, "1.5", 1)] == [5, 5, 10, 15, None]
    assert ExitConfig(eod_close_time="15:50").eod_lead_minutes == 10
    with pytest.raises(ValidationError):
        ExitConfig(eod_close_time="3pm")
    with pytest.raises(ValidationError):
        ExitConfig(trailing_stop_cloud="macro")
    assert [PRIORITY[r] for r in ExitReason] == list(range(1, 9))


# ---------------------------------------------------------------------------------------------
# 1. Stop loss
# ---------------------------------------------------------------------------------------------


def test_stop_loss_on_a_close_below_the_macro_cloud(monitor):
    primed(monitor)
    bottom = monitor.clouds("TEST")["macro"].bottom  # the level the next close is judged by
    p = up_position()
    assert monitor.check(p, Decimal("119.80"), UP_END) is None

    inside = ExitMonitor(ExitConfig(), CAL)
    primed(inside).on_bar("TEST", next_bar(cents_ceil(bottom)))
    assert inside.check_stop_loss(p, cents_ceil(bottom), UP_END + timedelta(minutes=1)) is None

    monitor.on_bar("TEST", next_bar(cents_floor(bottom)))
    d = monitor.check(p, cents_floor(bottom), UP_END + timedelta(minutes=1))
    assert d is not None and d.reason is ExitReason.STOP_LOSS
    assert "below the macro cloud bottom" in d.detail


def test_stop_loss_short_on_a_close_above_the_macro_cloud(monitor):
    down = bars_from_closes(trend(100, 200, -0.2))
    monitor.on_bars("TEST", down, "1Min")
    top = monitor.clouds("TEST")["macro"].top
    p = position(
        direction=Direction.SHORT,
        entry_price=Decimal("180.20"),
        stop=Decimal("190"),
        entry_time=down[-1].end,
    )
    start = down[-1].end

    def bar(close):
        return Bar(
            "TEST", start, start + timedelta(minutes=1), close, close, close, close, Decimal(1)
        )

    other = ExitMonitor(ExitConfig(), CAL)
    other.on_bars("TEST", [*down, bar(cents_floor(top))], "1Min")
    assert other.check_stop_loss(p, cents_floor(top), start + timedelta(minutes=1)) is None
    monitor.on_bar("TEST", bar(cents_ceil(top)))
    d = monitor.check_stop_loss(p, cents_ceil(top), start + timedelta(minutes=1))
    assert d is not None and "above the macro cloud top" in d.detail


def test_stop_loss_ignores_bars_closed_before_the_entry(monitor):
    primed(monitor).on_bar("TEST", next_bar(100))  # a crash bar, closed at UP_END + 1 min
    late = up_position(entry_time=UP_END + timedelta(minutes=1), stop=Decimal("90"))
    assert monitor.check(late, Decimal("100.50"), UP_END + timedelta(minutes=2)) is None


def test_hard_stop_at_the_positions_own_stop(monitor):
    p = position()  # long 100, stop 98
    now = et(2026, 11, 20, 10, 5)
    assert monitor.check(p, Decimal("98.01"), now) is None
    d = monitor.check(p, Decimal("98.00"), now)
    assert d is not None and d.reason is ExitReason.STOP_LOSS and "at or below the stop" in d.detail
    short = position(direction=Direction.SHORT, stop=Decimal("102"))
    assert monitor.check(short, Decimal("101.99"), now) is None
    assert monitor.check(short, Decimal("102"), now).reason is ExitReason.STOP_LOSS
    no_hard = ExitMonitor(ExitConfig(hard_stop=False), CAL)
    assert no_hard.check(p, Decimal("97"), now) is None


# ---------------------------------------------------------------------------------------------
# 2. Momentum exhaustion
# ---------------------------------------------------------------------------------------------


def test_momentum_exhaustion_after_three_closes_above_the_fast_cloud(monitor):
    primed(monitor)
    p = up_position()
    closes = [Decimal("120.00"), Decimal("120.20"), Decimal("120.40")]
    for i, c in enumerate(closes[:2]):
        monitor.on_bar("TEST", next_bar(c, i))
        now = UP_END + timedelta(minutes=i + 1)
        assert monitor.check(p, c, now) is None  # 1 and 2 closes: not yet
    monitor.on_bar("TEST", next_bar(closes[2], 2))
    d = monitor.check(p, closes[2], UP_END + timedelta(minutes=3))
    assert d is not None and d.reason is ExitReason.MOMENTUM_EXHAUSTION
    # The first bar's EMAs are equal (not bullish), so the run is 99 + 3 bars long.
    assert d.detail == "102 closes in a row above a bullish fast cloud (exhaustion from 3)"
    # The run was already long before the entry; only bars that closed after it count.
    late = up_position(entry_time=UP_END + timedelta(minutes=1, seconds=1))  # 2 bars after
    assert monitor.check_momentum_exhaustion(late, closes[2], UP_END + timedelta(minutes=3)) is None
    mid_bar = up_position(entry_time=UP_END + timedelta(seconds=30))  # the bar closed after it
    assert monitor.check_momentum_exhaustion(mid_bar, closes[2], UP_END + timedelta(minutes=3))


def test_momentum_exhaustion_needs_the_cloud_colour_of_the_position(monitor):
    down = bars_from_closes(trend(100, 200, -0.2))
    monitor.on_bars("TEST", down, "1Min")
    short = position(
        direction=Direction.SHORT,
        entry_price=Decimal("190"),
        stop=Decimal("210"),
        entry_time=down[-4].end,
    )
    long = position(entry_price=Decimal("180"), stop=Decimal("100"), entry_time=down[-4].end)
    now = down[-1].end
    d = monitor.check_momentum_exhaustion(short, Decimal("180.2"), now)
    assert d is not None and "below a bearish fast cloud" in d.detail
    assert monitor.check_momentum_exhaustion(long, Decimal("180.2"), now) is None


# ---------------------------------------------------------------------------------------------
# 3. Cloud flip
# ---------------------------------------------------------------------------------------------


def falling_after_up(n: int) -> list:
    closes = [119.8 - 0.25 * (i + 1) for i in range(n)]
    return [next_bar(round(c, 2), i) for i, c in enumerate(closes)]


def test_cloud_flip_when_the_fast_cloud_turns_against_the_long(monitor):
    primed(monitor)
    p = up_position()
    bars = falling_after_up(12)
    flipped_at = None
    for bar in bars:
        monitor.on_bar("TEST", bar)
        d = monitor.check_cloud_flip(p, bar.close, bar.end)
        if not monitor.clouds("TEST")["fast"].bullish:
            flipped_at = bar
            break
        assert d is None  # still bullish: no flip
    assert flipped_at is not None
    assert d is not None and d.reason is ExitReason.CLOUD_FLIP
    assert flipped_at.end.isoformat() in d.detail
    assert monitor.check(p, flipped_at.close, flipped_at.end).reason is ExitReason.CLOUD_FLIP
    # A short opened after the flip is with the cloud, not against it.
    short = position(
        direction=Direction.SHORT,
        entry_price=flipped_at.close,
        stop=Decimal(130),
        entry_time=flipped_at.end,
    )
    assert monitor.check_cloud_flip(short, flipped_at.close, flipped_at.end) is None


def test_cloud_flip_before_the_entry_does_not_count(monitor):
    primed(monitor)
    bars = falling_after_up(12)
    monitor.on_bars("TEST", bars, "1Min")
    assert not monitor.clouds("TEST")["fast"].bullish
    late_long = up_position(entry_price=Decimal("117"), entry_time=bars[-1].end)
    assert monitor.check_cloud_flip(late_long, Decimal("117"), bars[-1].end) is None


# ---------------------------------------------------------------------------------------------
# 4. Profit target
# ---------------------------------------------------------------------------------------------


def test_profit_target_at_2r(monitor):
    p = position()  # entry 100, stop 98: 2R = 104
    now = et(2026, 11, 20, 10, 5)
    assert monitor.check(p, Decimal("103.99"), now) is None
    d = monitor.check(p, Decimal("104"), now)
    assert d is not None and d.reason is ExitReason.TARGET and "104" in d.detail
    short = position(direction=Direction.SHORT, stop=Decimal("101.5"))  # 2R = 97
    assert monitor.check(short, Decimal("97.01"), now) is None
    assert monitor.check(short, Decimal("97.00"), now).reason is ExitReason.TARGET


def test_profit_target_uses_the_positions_target_when_set(monitor):
    p = position(target=Decimal("103"))
    now = et(2026, 11, 20, 10, 5)
    assert monitor.check(p, Decimal("102.99"), now) is None
    assert monitor.check(p, Decimal("103"), now).reason is ExitReason.TARGET
    three_r = ExitMonitor(ExitConfig(reward_to_risk_target=Decimal(3)), CAL)
    assert three_r.check(position(), Decimal("105.99"), now) is None
    assert three_r.check(position(), Decimal("106"), now).reason is ExitReason.TARGET


# ---------------------------------------------------------------------------------------------
# 5. Time stop (day trades)
# ---------------------------------------------------------------------------------------------


def test_time_stop_after_two_hours_without_half_an_r(monitor):
    p = position()  # entry 100, R = 2; 0.5R = 101
    two_hours = p.entry_time + timedelta(minutes=120)
    assert monitor.check(p, Decimal("100.99"), two_hours) is None  # not more than 2 hours
    later = two_hours + timedelta(seconds=1)
    d = monitor.check(p, Decimal("100.99"), later)
    assert d is not None and d.reason is ExitReason.TIME_STOP
    assert "0.49R" in d.detail and "open 120 min" in d.detail
    assert monitor.check(p, Decimal("101.00"), later) is None  # 0.5R is progress
    short = position(direction=Direction.SHORT, stop=Decimal("102"))
    assert monitor.check(short, Decimal("99.01"), later).reason is ExitReason.TIME_STOP
    assert monitor.check(short, Decimal("99.00"), later) is None


@pytest.mark.parametrize("trade_type", [TradeType.SCALP, TradeType.SWING])
def test_time_stop_is_for_day_trades_only(monitor, trade_type):
    p = position(trade_type=trade_type)
    assert monitor.check_time_stop(p, Decimal(100), p.entry_time + timedelta(hours=3)) is None


# ---------------------------------------------------------------------------------------------
# 6. End of day
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trade_type", [TradeType.DAY, TradeType.SCALP])
def test_eod_close_at_1555_on_a_normal_day(monitor, trade_type):
    p = position(trade_type=trade_type, entry_time=et(2026, 11, 20, 14, 30))
    assert monitor.check(p, Decimal("101.50"), et(2026, 11, 20, 15, 54, 59)) is None
    d = monitor.check(p, Decimal("101.50"), et(2026, 11, 20, 15, 55))
    assert d is not None and d.reason is ExitReason.EOD_CLOSE
    assert "15:55 ET cutoff" in d.detail
    assert monitor.check(p, Decimal("101.50"), et(2026, 11, 20, 16, 30)).reason.value == "eod_close"


def test_eod_close_at_1255_on_the_early_close(monitor):
    assert CAL.session_close(datetime(2026, 11, 27).date()) == et(2026, 11, 27, 13, 0)
    p = position(entry_time=et(2026, 11, 27, 10, 0))
    assert monitor.eod_cutoff(datetime(2026, 11, 27).date()) == et(2026, 11, 27, 12, 55)
    assert monitor.check(p, Decimal("101.50"), et(2026, 11, 27, 12, 54, 59)) is None
    d = monitor.check(p, Decimal("101.50"), et(2026, 11, 27, 12, 55))
    assert d is not None and d.reason is ExitReason.EOD_CLOSE and "12:55 ET" in d.detail


def test_no_eod_close_for_swings(monitor):
    p = position(trade_type=TradeType.SWING, entry_time=et(2026, 11, 20, 14, 30))
    assert monitor.check(p, Decimal("101.50"), et(2026, 11, 20, 15, 59)) is None
    assert monitor.check(p, Decimal("101.50"), et(2026, 11, 23, 10, 0)) is None


def test_day_trade_still_open_next_session_is_closed(monitor):
    p = position(entry_time=et(2026, 11, 20, 15, 0))
    d = monitor.check(p, Decimal("101.50"), et(2026, 11, 23, 9, 31))  # Monday
    assert d is not None and d.reason is ExitReason.EOD_CLOSE and "overnight" in d.detail
    assert monitor.check(p, Decimal("101.50"), et(2026, 11, 21, 12, 0)).reason.value == "eod_close"


# ---------------------------------------------------------------------------------------------
# 7. Trailing stop (swings)
# ---------------------------------------------------------------------------------------------


def test_trailing_stop_on_a_close_below_the_pullback_cloud(monitor):
    primed(monitor)
    bottom = monitor.clouds("TEST")["pullback"].bottom
    swing = up_position(trade_type=TradeType.SWING)
    day = up_position(trade_type=TradeType.DAY)
    after = UP_END + timedelta(minutes=1)

    held = primed(ExitMonitor(ExitConfig(), CAL))
    held.on_bar("TEST", next_bar(cents_ceil(bottom)))
    assert held.check(swing, cents_ceil(bottom), after) is None

    monitor.on_bar("TEST", next_bar(cents_floor(bottom)))
    d = monitor.check(swing, cents_floor(bottom), after)
    assert d is not None and d.reason is ExitReason.TRAILING_STOP
    assert "below the pullback cloud bottom" in d.detail
    assert monitor.check(day, cents_floor(bottom), after) is None  # trailing is for swings


def test_swing_reads_its_own_timeframe(monitor):
    hourly = bars_from_closes(trend(100), minutes=60, start=T0 - timedelta(days=30))
    monitor.on_bars("TEST", hourly, "1Hour")
    swing = up_position(trade_type=TradeType.SWING, timeframe=None, entry_time=hourly[-1].end)
    assert monitor.timeframe_of(swing) == "1Hour"
    bottom = monitor.clouds("TEST", "1Hour")["pullback"].bottom
    start = hourly[-1].end
    close = cents_floor(bottom)
    monitor.on_bar(
        "TEST",
        Bar("TEST", start, start + timedelta(hours=1), close, close, close, close, Decimal(1)),
        "1Hour",
    )
    d = monitor.check(swing, close, start + timedelta(hours=1))
    assert d is not None and d.reason is ExitReason.TRAILING_STOP


# ---------------------------------------------------------------------------------------------
# 8. Leveraged ETF holding period
# ---------------------------------------------------------------------------------------------


def etf(leverage, entry_time, instrument=InstrumentType.LEVERAGED_ETF):
    return position(
        trade_type=TradeType.SWING,
        leverage=Decimal(str(leverage)),
        instrument_type=instrument,
        entry_time=entry_time,
    )


def test_3x_etf_held_five_sessions_across_the_weekend_and_the_holiday(monitor):
    p = etf(3, et(2026, 11, 20, 11, 0))  # Friday; Thursday 26th is Thanksgiving
    # Five calendar days later (Wednesday 25th) it has been held 3 sessions.
    assert monitor.check(p, Decimal("100.5"), et(2026, 11, 25, 15, 0)) is None
    assert monitor.check(p, Decimal("100.5"), et(2026, 11, 27, 12, 0)) is None  # 4 sessions
    assert monitor.check(p, Decimal("100.5"), et(2026, 11, 30, 9, 29, 59)) is None
    d = monitor.check(p, Decimal("100.5"), et(2026, 11, 30, 9, 30))  # the 5th session
    assert d is not None and d.reason is ExitReason.MAX_HOLD_DAYS
    assert d.detail == "3x leveraged ETF held 5 sessions, its maximum"


def test_3x_etf_across_a_plain_weekend(monitor):
    p = etf(3, et(2026, 11, 18, 15, 0))  # Wednesday: Thu, Fri, Mon, Tue, Wed
    assert monitor.check(p, Decimal("100.5"), et(2026, 11, 24, 15, 59)) is None
    assert monitor.check(p, Decimal("100.5"), et(2026, 11, 25, 9, 30)).reason.value == (
        "max_hold_days"
    )


@pytest.mark.parametrize(
    ("leverage", "last_quiet", "fires"),
    [
        (2, et(2026, 12, 4, 15, 0), et(2026, 12, 7, 9, 30)),  # 10 sessions
        ("1.5", et(2026, 12, 11, 15, 0), et(2026, 12, 14, 9, 30)),  # 15 sessions
    ],
)
def test_2x_and_1_5x_etfs(monitor, leverage, last_quiet, fires):
    p = etf(leverage, et(2026, 11, 20, 11, 0))
    assert monitor.check_max_hold_days(p, Decimal("100.5"), last_quiet) is None
    assert monitor.check_max_hold_days(p, Decimal("100.5"), fires) is not None


def test_no_holding_limit_for_stocks_or_1x(monitor):
    far = et(2027, 1, 20, 12, 0)
    assert (
        monitor.check(etf(3, et(2026, 11, 20, 11, 0), InstrumentType.STOCK), Decimal("100.5"), far)
        is None
    )
    assert monitor.check(etf(1, et(2026, 11, 20, 11, 0)), Decimal("100.5"), far) is None


def test_entry_outside_a_session_counts_from_the_next_session(monitor):
    p = etf(3, et(2026, 11, 21, 12, 0))  # Saturday: counts from Monday 23rd
    assert monitor.check(p, Decimal("100.5"), et(2026, 11, 30, 15, 0)) is None  # 4 sessions
    assert monitor.check(p, Decimal("100.5"), et(2026, 12, 1, 9, 30)) is not None


# ---------------------------------------------------------------------------------------------
# Priority
# ---------------------------------------------------------------------------------------------


def test_priority_when_several_fire(monitor):
    primed(monitor)
    # A day trade entered at the uptrend's end, three more closes up, then checked at 15:56
    # (after EOD and the time stop) at a price at its target.
    p = up_position(stop=Decimal("119.30"))  # R = 0.50, 2R target = 120.80
    for i, c in enumerate(("120.00", "120.20", "120.40")):
        monitor.on_bar("TEST", next_bar(Decimal(c), i))
    late = et(2026, 11, 20, 15, 56)
    all_fired = monitor.check_all(p, Decimal("120.80"), late)
    assert reasons(all_fired) == ["momentum_exhaustion", "target", "eod_close"]
    assert monitor.check(p, Decimal("120.80"), late).reason is ExitReason.MOMENTUM_EXHAUSTION
    # Below half an R at 15:56: exhaustion, then the time stop, then EOD.
    assert reasons(monitor.check_all(p, Decimal("119.50"), late)) == [
        "momentum_exhaustion",
        "time_stop",
        "eod_close",
    ]
    # At the hard stop: the stop loss comes first of all.
    assert reasons(monitor.check_all(p, Decimal("119.30"), late)) == [
        "stop_loss",
        "momentum_exhaustion",
        "time_stop",
        "eod_close",
    ]
    # The same for a swing: no time stop and no EOD.
    swing = replace(p, trade_type=TradeType.SWING)
    assert reasons(monitor.check_all(swing, Decimal("120.80"), late)) == [
        "momentum_exhaustion",
        "target",
    ]


def test_priority_flip_then_trailing_then_max_hold(monitor):
    primed(monitor)
    bars = falling_after_up(12)
    monitor.on_bars("TEST", bars, "1Min")
    swing_etf = up_position(
        trade_type=TradeType.SWING,
        leverage=Decimal(3),
        instrument_type=InstrumentType.LEVERAGED_ETF,
    )
    later = et(2026, 11, 30, 10, 0)
    close = bars[-1].close
    assert reasons(monitor.check_all(swing_etf, close, later)) == [
        "cloud_flip",
        "trailing_stop",
        "max_hold_days",
    ]


# ---------------------------------------------------------------------------------------------
# Incremental state and the from-scratch recomputation agree
# ---------------------------------------------------------------------------------------------


def test_duplicate_and_old_bars_are_ignored(monitor):
    primed(monitor)
    before = monitor.clouds("TEST")
    assert monitor.on_bar("TEST", UP[-1]) is False
    assert monitor.on_bar("TEST", UP[10]) is False
    assert monitor.clouds("TEST") == before
    monitor.forget("TEST", "1Min")
    assert monitor.clouds("TEST") == {"fast": None, "pullback": None, "macro": None}


def test_evaluate_from_bars_matches_check(monitor):
    bars = [*UP, *falling_after_up(12)]
    monitor.on_bars("TEST", bars, "1Min")
    p = up_position()
    now = bars[-1].end
    assert monitor.evaluate(p, bars, now) == monitor.check(p, bars[-1].close, now)
    assert monitor.evaluate(p, bars, now).reason is ExitReason.CLOUD_FLIP
    with pytest.raises(ValueError):
        monitor.evaluate(p, [], now)


@st.composite
def scenario(draw):
    n = draw(st.integers(min_value=1, max_value=90))
    steps = draw(st.lists(st.integers(-40, 40), min_size=n, max_size=n))
    price = 10_000  # cents
    closes = []
    for s in steps:
        price = max(100, price + s)
        closes.append(price / 100)
    bars = bars_from_closes(closes, wick=0.0)
    entry_index = draw(st.integers(min_value=0, max_value=n - 1))
    direction = draw(st.sampled_from(list(Direction)))
    entry = bars[entry_index].close
    risk = Decimal(draw(st.integers(min_value=1, max_value=300))) / 100
    sign = 1 if direction is Direction.LONG else -1
    # A long's stop must stay above zero.
    stop = entry - sign * risk if direction is Direction.SHORT or entry > risk else entry / 2
    instrument = draw(st.sampled_from(list(InstrumentType)))
    p = TrackedPosition(
        symbol="TEST",
        direction=direction,
        entry_price=entry,
        stop=stop,
        target=None,
        qty=Decimal(1),
        entry_time=bars[entry_index].end - timedelta(seconds=draw(st.integers(0, 90))),
        trade_type=draw(st.sampled_from(list(TradeType))),
        leverage=Decimal(draw(st.sampled_from(["1", "1.5", "2", "3"]))),
        instrument_type=instrument,
        timeframe="1Min",
    )
    config = ExitConfig(
        exhaustion_bars=draw(st.integers(1, 4)),
        ema_seed=draw(st.sampled_from(["first", "sma"])),
        trailing_stop_cloud=draw(st.sampled_from(["pullback", "fast"])),
        hard_stop=draw(st.booleans()),
    )
    extra = [timedelta(minutes=draw(st.integers(0, 60 * 24 * 10))) for _ in range(3)]
    ticks = [Decimal(draw(st.integers(-300, 300))) / 100 for _ in range(3)]
    return bars, p, config, extra, ticks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_incremental_check_equals_from_scratch(case):
    bars, p, config, extra, ticks = case
    monitor = ExitMonitor(config, CAL)
    for k, bar in enumerate(bars):
        assert monitor.on_bar("TEST", bar, "1Min")
        history = bars[: k + 1]
        assert monitor.tracker("TEST", "1Min").facts == facts_from_bars(history, config)
        for dt, tick in zip(extra, ticks, strict=True):
            now = bar.end + dt
            price = max(Decimal("0.01"), bar.close + tick)
            incremental = monitor.check(p, price, now)
            assert incremental == monitor.evaluate(p, history, now, price)
            every = monitor.check_all(p, price, now)
            assert incremental == (every[0] if every else None)
            assert [d.priority for d in every] == sorted(d.priority for d in every)


def test_emas_in_facts_are_finite_for_the_sample():
    from core.marketdata.replay import load_sample

    market = load_sample()
    market.advance_to(datetime(2026, 11, 20, 21, 0, tzinfo=UTC))
    bars = market.bars_sync("AAPL", "1Min")
    facts = facts_from_bars(bars, ExitConfig())
    assert facts.end == bars[-1].end
    assert all(math.isfinite(x) for x in (*facts.macro_edge, *facts.trail_edge))
