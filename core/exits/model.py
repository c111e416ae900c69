"""Exit monitor values: its configuration, the positions it watches and the decisions it makes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.domain import (
    ONE,
    Direction,
    InstrumentType,
    Signal,
    TradeType,
    ValidationError,
    positive,
    to_decimal,
    utc,
)
from core.marketdata.bars import timeframe_minutes
from core.signals.clouds import Seed


class ExitReason(StrEnum):
    """Why a position is closed, in priority order (seed 001 "Exit Strategies", then the
    leveraged-ETF holding limit)."""

    STOP_LOSS = "stop_loss"
    MOMENTUM_EXHAUSTION = "momentum_exhaustion"
    CLOUD_FLIP = "cloud_flip"
    TARGET = "target"
    TIME_STOP = "time_stop"
    EOD_CLOSE = "eod_close"
    TRAILING_STOP = "trailing_stop"
    MAX_HOLD_DAYS = "max_hold_days"

    @property
    def priority(self) -> int:
        """1 is the highest."""
        return PRIORITY[self]


PRIORITY: dict[ExitReason, int] = {reason: i for i, reason in enumerate(ExitReason, start=1)}


@dataclass(frozen=True, slots=True)
class ExitDecision:
    """The exit to take: its reason, a sentence a trader can read, and the price and time
    it was decided at."""

    reason: ExitReason
    detail: str
    price: Decimal
    at: datetime

    @property
    def priority(self) -> int:
        return PRIORITY[self.reason]


def _clock_time(value: time | str, name: str) -> time:
    if isinstance(value, time):
        return value
    try:
        hours, minutes = str(value).strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValidationError(f"{name} must be HH:MM, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class ExitConfig:
    """Exit settings; defaults are seed 001's ``ExecutorConfig`` exit and ETF values."""

    reward_to_risk_target: Decimal = Decimal("2.0")
    time_stop_minutes: int = 120
    #: An option scalp's time stop: open this long without half the way (``time_stop_min_r``
    #: R, R = entry premium - premium stop) to its target, it is closed.
    option_time_stop_minutes: int = 30
    #: "No progress" for the time stop: unrealized gain below this many R (risk = |entry-stop|).
    time_stop_min_r: Decimal = Decimal("0.5")
    #: Day trades and scalps close at this New York time; on a session that closes before
    #: ``regular_close_time`` the cutoff moves earlier by the same amount (13:00 close -> 12:55).
    eod_close_time: time | str = time(15, 55)
    regular_close_time: time | str = time(16, 0)
    #: Cloud a swing trade trails: ``pullback`` (8/9, the seed) or ``fast`` (5/12).
    trailing_stop_cloud: str = "pullback"
    #: Momentum exhaustion: this many closes in a row outside the fast cloud.
    exhaustion_bars: int = 3
    #: Also stop out when the price trades at or through the position's own stop level.
    hard_stop: bool = True
    fast: tuple[int, int] = (5, 12)
    pullback: tuple[int, int] = (8, 9)
    macro: tuple[int, int] = (34, 50)
    ema_seed: Seed = "first"
    #: The bars each trade type's clouds are read from (a position may name its own).
    scalp_timeframe: str = "1Min"
    day_timeframe: str = "10Min"
    swing_timeframe: str = "1Hour"
    max_etf_hold_days_3x: int = 5
    max_etf_hold_days_2x: int = 10
    max_etf_hold_days_1_5x: int = 15

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "reward_to_risk_target", positive(self.reward_to_risk_target, "reward_to_risk")
        )
        object.__setattr__(
            self, "time_stop_min_r", to_decimal(self.time_stop_min_r, "time_stop_min_r")
        )
        eod = _clock_time(self.eod_close_time, "eod_close_time")
        regular = _clock_time(self.regular_close_time, "regular_close_time")
        if eod > regular:
            raise ValidationError("eod_close_time must not be after regular_close_time")
        object.__setattr__(self, "eod_close_time", eod)
        object.__setattr__(self, "regular_close_time", regular)
        if self.time_stop_minutes < 1:
            raise ValidationError("time_stop_minutes must be at least 1")
        if self.option_time_stop_minutes < 1:
            raise ValidationError("option_time_stop_minutes must be at least 1")
        if self.trailing_stop_cloud not in ("pullback", "fast"):
            raise ValidationError("trailing_stop_cloud must be 'pullback' or 'fast'")
        if self.exhaustion_bars < 1:
            raise ValidationError("exhaustion_bars must be at least 1")
        for name in ("fast", "pullback", "macro"):
            a, b = getattr(self, name)
            if not 1 <= a < b:
                raise ValidationError(f"{name} periods must be 1 <= fast < slow")
        if self.ema_seed not in ("first", "sma"):
            raise ValidationError("ema_seed must be 'first' or 'sma'")
        for tf in (self.scalp_timeframe, self.day_timeframe, self.swing_timeframe):
            try:
                timeframe_minutes(tf)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        if (
            min(self.max_etf_hold_days_3x, self.max_etf_hold_days_2x, self.max_etf_hold_days_1_5x)
            < 1
        ):
            raise ValidationError("max ETF hold days must be at least 1")

    @property
    def eod_lead_minutes(self) -> int:
        """Minutes between the EOD cutoff and the regular close (5 with the defaults)."""
        eod, regular = self.eod_close_time, self.regular_close_time
        assert isinstance(eod, time) and isinstance(regular, time)
        return (regular.hour * 60 + regular.minute) - (eod.hour * 60 + eod.minute)

    def timeframe_for(self, trade_type: TradeType) -> str:
        if trade_type is TradeType.SCALP:
            return self.scalp_timeframe
        if trade_type is TradeType.DAY:
            return self.day_timeframe
        return self.swing_timeframe

    def max_hold_days(self, leverage: Decimal | float | int) -> int | None:
        """Sessions a leveraged ETF may be held: |leverage| >= 3 -> 5, >= 2 -> 10, >= 1.5 -> 15;
        None below 1.5x (no limit)."""
        lev = abs(to_decimal(leverage, "leverage"))
        if lev >= 3:
            return self.max_etf_hold_days_3x
        if lev >= 2:
            return self.max_etf_hold_days_2x
        if lev >= Decimal("1.5"):
            return self.max_etf_hold_days_1_5x
        return None


@dataclass(frozen=True, slots=True)
class TrackedPosition:
    """An open position as the exit monitor sees it.

    ``stop`` is the stop the trade was taken with (it defines the risk R = |entry - stop|);
    ``target`` defaults to ``reward_to_risk_target`` R from the entry. ``timeframe`` is the bar
    timeframe whose clouds manage the trade (default: the config's timeframe for the trade type).
    """

    symbol: str
    direction: Direction
    entry_price: Decimal
    stop: Decimal
    target: Decimal | None
    qty: Decimal
    entry_time: datetime
    trade_type: TradeType = TradeType.DAY
    leverage: Decimal = ONE
    instrument_type: InstrumentType = InstrumentType.STOCK
    signal_id: int | None = None
    timeframe: str | None = None
    #: The monitor's precomputed thresholds for this position (not part of its value).
    _plan: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.symbol or not isinstance(self.symbol, str):
            raise ValidationError("position has no symbol")
        direction = Direction(self.direction)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "trade_type", TradeType(self.trade_type))
        object.__setattr__(self, "instrument_type", InstrumentType(self.instrument_type))
        entry = positive(self.entry_price, "entry_price")
        stop = positive(self.stop, "stop")
        object.__setattr__(self, "entry_price", entry)
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "qty", positive(self.qty, "qty"))
        object.__setattr__(self, "leverage", positive(self.leverage, "leverage"))
        object.__setattr__(self, "entry_time", utc(self.entry_time))
        long = direction is Direction.LONG
        if (long and stop >= entry) or (not long and stop <= entry):
            side = "below" if long else "above"
            raise ValidationError(f"stop {stop} must be {side} entry {entry} for a {direction}")
        if self.target is not None:
            target = positive(self.target, "target")
            if (long and target <= entry) or (not long and target >= entry):
                side = "above" if long else "below"
                raise ValidationError(f"target {target} must be {side} entry {entry}")
            object.__setattr__(self, "target", target)
        if self.timeframe is not None:
            timeframe_minutes(self.timeframe)

    def __reduce__(self) -> tuple[Any, ...]:
        # Copies and pickles carry the position's values, never the monitor's cache.
        return (type(self), tuple(getattr(self, name) for name in _POSITION_FIELDS))

    @property
    def risk_per_share(self) -> Decimal:
        return abs(self.entry_price - self.stop)

    @classmethod
    def from_signal(
        cls,
        signal: Signal,
        *,
        entry_price: Decimal,
        qty: Decimal,
        entry_time: datetime,
        leverage: Decimal = ONE,
        instrument_type: InstrumentType = InstrumentType.STOCK,
        symbol: str | None = None,
    ) -> TrackedPosition:
        """The position a filled signal opened (the fill price is the entry)."""
        return cls(
            symbol=symbol or signal.symbol,
            direction=signal.direction,
            entry_price=entry_price,
            stop=signal.stop,
            target=signal.target,
            qty=qty,
            entry_time=entry_time,
            trade_type=signal.trade_type,
            leverage=leverage,
            instrument_type=instrument_type,
            signal_id=signal.id,
            timeframe=signal.timeframe,
        )


_POSITION_FIELDS = tuple(f.name for f in fields(TrackedPosition) if f.init)
