"""EMA-cloud signal engine (seed 001): long/short setups from the fast (5/12), pullback (8/9) and
macro (34/50) clouds on the scalp, day and swing timeframes.

The setup (long; short is the mirror image)
-------------------------------------------
Evaluated on the last completed bar ``t`` of one timeframe (cloud maths in
:mod:`core.signals.clouds`):

1. **Trend**: the macro cloud is bullish and ``close[t]`` is above its top.
2. **Momentum**: the fast cloud is bullish (whether it just turned or already was).
3. **Pullback that holds**: the pullback cloud is bullish; at least one of the last
   ``pullback_lookback`` bars (``t`` included) traded into it (``low <= pullback top``); from the
   first such bar through ``t`` no bar closed below the pullback cloud's bottom; and ``close[t]``
   is back above the pullback top and above ``close[t-1]`` (price is turning up off the cloud).
4. **Fresh**: rules 1-3 did not already hold on bar ``t - 1``, so one setup gives one signal
   rather than one per bar while it lasts.

For a short: macro bearish with the close below its bottom, fast and pullback clouds bearish,
a bar with ``high >= pullback bottom`` in the window, no close above the pullback top since,
``close[t]`` below the pullback bottom and below ``close[t-1]``, and fresh.

A timeframe needs at least ``min_bars`` bars (the EMAs are seeded with the first close, so this
is their warm-up) or it produces nothing.

Prices
------
``entry`` is the last close; ``stop`` is the macro cloud's far edge on bar ``t`` (bottom for a
long, top for a short) and ``target = entry +/- reward_to_risk * |entry - stop|``, all Decimals
rounded to cents. A stop that rounds onto or past the entry gives no signal.

Conviction (0-100)
------------------
* ``setup_points`` (40) for the setup itself on the signal's timeframe;
* up to ``alignment_points`` (30) for agreement of the *other* configured timeframes: each other
  timeframe has two votes, its fast cloud's colour and its macro cloud's colour, and the points are
  ``30 * agreeing votes / all votes``. A timeframe with fewer than ``alignment_min_bars`` bars
  votes against (unknown is not agreement); with a single timeframe configured there is no
  alignment and these points are 0;
* volume: the last bar's volume over the average of the ``volume_lookback`` (20) bars before it;
  ``>= volume_strong_ratio`` (1.5) gives ``volume_strong_points`` (30), ``>= volume_confirm_ratio``
  (1.0) gives ``volume_confirm_points`` (15), otherwise 0 (also when the average is 0).

The total is rounded half up. Without volume confirmation the maximum is 70, so a conviction of
75 or more always means volume confirmed, which is the seed's "Immediate Market" rule: such
signals are market orders, the rest limit orders (``market_conviction``). Setups scoring below
``min_conviction`` (50, the seed's lowest sizing band) are not emitted.

Emission
--------
:meth:`EmaCloudEngine.evaluate` is pure. :meth:`EmaCloudEngine.scan` fetches bars, skips bars too
old to act on (older than ``max_bar_age_bars`` bar lengths; a daily bar up to
``daily_max_age``), and never emits a second signal for the same (symbol, timeframe) unless it
comes from a later bar than the last one emitted. :class:`EmaCloudSource` runs the scan on a
schedule and writes the signals through :func:`core.signals.intake.submit_signals`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core.domain import CENT, Bar, Direction, OrderType, Signal, TradeType, ValidationError, utc
from core.marketdata.bars import timeframe_minutes
from core.ports import MarketData, Store
from core.signals.clouds import CloudState, Seed, cloud_series, to_cents
from core.signals.intake import submit_signals

SOURCE = "ema_cloud"


@dataclass(frozen=True, slots=True)
class EmaCloudConfig:
    """Periods, timeframes and thresholds of the EMA-cloud engine (seed 001 defaults)."""

    fast: tuple[int, int] = (5, 12)
    pullback: tuple[int, int] = (8, 9)
    macro: tuple[int, int] = (34, 50)
    ema_seed: Seed = "first"
    #: Timeframe per trade type; None leaves that trade type out. Swing may be "1Day".
    scalp_timeframe: str | None = "1Min"
    day_timeframe: str | None = "10Min"
    swing_timeframe: str | None = "1Hour"
    #: Bars fetched per timeframe, and the fewest a timeframe needs to produce a signal.
    history_bars: int = 200
    min_bars: int = 50
    #: The fewest bars another timeframe needs to vote in the alignment score.
    alignment_min_bars: int = 20
    pullback_lookback: int = 3
    reward_to_risk: Decimal = Decimal("2.0")
    volume_lookback: int = 20
    volume_confirm_ratio: float = 1.0
    volume_strong_ratio: float = 1.5
    setup_points: int = 40
    alignment_points: int = 30
    volume_confirm_points: int = 15
    volume_strong_points: int = 30
    market_conviction: int = 75
    min_conviction: int = 50
    max_bar_age_bars: int = 2
    daily_max_age: timedelta = timedelta(days=4)

    def __post_init__(self) -> None:
        for name in ("fast", "pullback", "macro"):
            pair = getattr(self, name)
            if (
                len(pair) != 2
                or not all(isinstance(p, int) and not isinstance(p, bool) for p in pair)
                or not 1 <= pair[0] < pair[1]
            ):
                raise ValidationError(f"{name} periods must be two integers 1 <= fast < slow")
        if self.ema_seed not in ("first", "sma"):
            raise ValidationError("ema_seed must be 'first' or 'sma'")
        frames = [tf for tf, _ in self.timeframes]
        if not frames:
            raise ValidationError("at least one timeframe is needed")
        if len(set(frames)) != len(frames):
            raise ValidationError("each trade type needs its own timeframe")
        for tf in frames:
            try:
                timeframe_minutes(tf)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        if self.min_bars < max(self.macro[1], self.volume_lookback + 1, self.pullback_lookback + 2):
            raise ValidationError(
                "min_bars must cover the macro slow period and the volume lookback"
            )
        if self.history_bars < self.min_bars:
            raise ValidationError("history_bars must be at least min_bars")
        if self.alignment_min_bars < 2 or self.pullback_lookback < 1 or self.volume_lookback < 1:
            raise ValidationError("lookbacks must be positive")
        object.__setattr__(self, "reward_to_risk", Decimal(str(self.reward_to_risk)))
        if self.reward_to_risk <= 0:
            raise ValidationError("reward_to_risk must be positive")
        if not 0 < self.volume_confirm_ratio <= self.volume_strong_ratio:
            raise ValidationError("need 0 < volume_confirm_ratio <= volume_strong_ratio")
        total = self.setup_points + self.alignment_points + self.volume_strong_points
        if min(self.setup_points, self.alignment_points, self.volume_confirm_points) < 0 or (
            total > 100 or self.volume_confirm_points > self.volume_strong_points
        ):
            raise ValidationError("conviction points must be non-negative and add up to <= 100")
        if not 0 <= self.min_conviction <= 100 or not 0 <= self.market_conviction <= 100:
            raise ValidationError("conviction thresholds must be between 0 and 100")
        if self.max_bar_age_bars < 1:
            raise ValidationError("max_bar_age_bars must be at least 1")

    @property
    def timeframes(self) -> tuple[tuple[str, TradeType], ...]:
        pairs = (
            (self.scalp_timeframe, TradeType.SCALP),
            (self.day_timeframe, TradeType.DAY),
            (self.swing_timeframe, TradeType.SWING),
        )
        return tuple((tf, tt) for tf, tt in pairs if tf is not None)

    def trade_type_for(self, timeframe: str) -> TradeType:
        for tf, tt in self.timeframes:
            if tf == timeframe:
                return tt
        raise ValueError(f"timeframe {timeframe!r} is not configured")

    def max_bar_age(self, timeframe: str) -> timedelta:
        minutes = timeframe_minutes(timeframe)
        if minutes is None:
            return self.daily_max_age
        return timedelta(minutes=minutes * self.max_bar_age_bars)


@dataclass(frozen=True, slots=True)
class _Clouds:
    """The three clouds over one bar series, and the series' prices as floats."""

    closes: list[float]
    highs: list[float]
    lows: list[float]
    volumes: list[float]
    fast: list[CloudState | None]
    pullback: list[CloudState | None]
    macro: list[CloudState | None]


class EmaCloudEngine:
    """Turns bars into EMA-cloud signals (see the module docstring for the rules)."""

    def __init__(self, market: MarketData | None, config: EmaCloudConfig | None = None):
        self.market = market
        self.config = config or EmaCloudConfig()
        #: (symbol, timeframe) -> end of the last bar a signal was emitted for.
        self._last_emitted: dict[tuple[str, str], datetime] = {}

    # -- scanning --------------------------------------------------------------------------
    async def scan(self, symbols: Iterable[str], now: datetime) -> list[Signal]:
        """Fetch completed bars up to ``now`` and return the new signals, in symbol order then
        configured timeframe order. Each (symbol, timeframe, bar) is emitted at most once."""
        if self.market is None:
            raise RuntimeError("this engine has no market data to scan")
        now = utc(now)
        cfg = self.config
        out: list[Signal] = []
        for symbol in symbols:
            bars_by_tf: dict[str, list[Bar]] = {}
            for tf, _ in cfg.timeframes:
                bars_by_tf[tf] = await self.market.bars(symbol, tf, end=now, limit=cfg.history_bars)
            for tf, _ in cfg.timeframes:
                bars = bars_by_tf[tf]
                if not bars or bars[-1].end < now - cfg.max_bar_age(tf):
                    continue
                key = (symbol, tf)
                last = self._last_emitted.get(key)
                if last is not None and bars[-1].end <= last:
                    continue
                signal = self.evaluate(symbol, bars_by_tf, timeframe=tf)
                if signal is not None:
                    self._last_emitted[key] = bars[-1].end
                    out.append(signal)
        return out

    def last_emitted(self, symbol: str, timeframe: str) -> datetime | None:
        return self._last_emitted.get((symbol, timeframe))

    # -- pure evaluation -------------------------------------------------------------------
    def evaluate(
        self,
        symbol: str,
        bars_by_timeframe: Mapping[str, Sequence[Bar]],
        timeframe: str | None = None,
    ) -> Signal | None:
        """The signal on the last bar of ``timeframe``, or, without one, the highest-conviction
        signal over all configured timeframes (ties: the first in scalp, day, swing order).

        Pure: no state is read or changed. ``created_at`` is the end of the triggering bar."""
        if timeframe is not None:
            return self._evaluate_timeframe(symbol, timeframe, bars_by_timeframe)
        best: Signal | None = None
        for signal in self.evaluate_all(symbol, bars_by_timeframe):
            if best is None or signal.conviction > best.conviction:
                best = signal
        return best

    def evaluate_all(
        self, symbol: str, bars_by_timeframe: Mapping[str, Sequence[Bar]]
    ) -> list[Signal]:
        """Every configured timeframe's signal on its last bar (pure)."""
        out = []
        for tf, _ in self.config.timeframes:
            signal = self._evaluate_timeframe(symbol, tf, bars_by_timeframe)
            if signal is not None:
                out.append(signal)
        return out

    def _evaluate_timeframe(
        self, symbol: str, timeframe: str, bars_by_timeframe: Mapping[str, Sequence[Bar]]
    ) -> Signal | None:
        cfg = self.config
        trade_type = cfg.trade_type_for(timeframe)
        bars = list(bars_by_timeframe.get(timeframe) or ())
        if len(bars) < cfg.min_bars:
            return None
        clouds = self._clouds(bars)
        t = len(bars) - 1
        direction = self._setup(clouds, t)
        if direction is None or self._setup(clouds, t - 1) is direction:
            return None

        macro = clouds.macro[t]
        assert macro is not None
        long = direction is Direction.LONG
        entry = bars[t].close.quantize(CENT)
        stop = to_cents(macro.bottom if long else macro.top)
        if (long and stop >= entry) or (not long and stop <= entry) or stop <= 0:
            return None
        risk = abs(entry - stop)
        target = entry + risk * cfg.reward_to_risk if long else entry - risk * cfg.reward_to_risk
        target = target.quantize(CENT)
        if target <= 0:
            return None

        alignment, votes = self._alignment(timeframe, direction, bars_by_timeframe)
        ratio = _volume_ratio(clouds.volumes, cfg.volume_lookback)
        if ratio is not None and ratio >= cfg.volume_strong_ratio:
            volume_points = cfg.volume_strong_points
        elif ratio is not None and ratio >= cfg.volume_confirm_ratio:
            volume_points = cfg.volume_confirm_points
        else:
            volume_points = 0
        alignment_points = cfg.alignment_points * alignment
        conviction = int(cfg.setup_points + alignment_points + volume_points + 0.5)
        conviction = max(0, min(100, conviction))
        if conviction < cfg.min_conviction:
            return None

        fast, pull = clouds.fast[t], clouds.pullback[t]
        assert fast is not None and pull is not None
        metadata: dict[str, Any] = {
            "engine": SOURCE,
            "timeframe": timeframe,
            "bar_start": bars[t].start.isoformat(),
            "bar_end": bars[t].end.isoformat(),
            "clouds": {
                "fast": fast.to_dict(),
                "pullback": pull.to_dict(),
                "macro": macro.to_dict(),
            },
            "cloud_edge": str(to_cents(pull.top if long else pull.bottom)),
            "alignment": votes,
            "volume_ratio": None if ratio is None else round(ratio, 4),
            "conviction_parts": {
                "setup": cfg.setup_points,
                "alignment": round(alignment_points, 2),
                "volume": volume_points,
            },
        }
        return Signal(
            symbol=symbol,
            direction=direction,
            entry=entry,
            stop=stop,
            target=target,
            created_at=bars[t].end,
            conviction=conviction,
            trade_type=trade_type,
            timeframe=timeframe,
            source=SOURCE,
            order_type=OrderType.MARKET if conviction >= cfg.market_conviction else OrderType.LIMIT,
            metadata=metadata,
        )

    # -- rules -----------------------------------------------------------------------------
    def _clouds(self, bars: Sequence[Bar]) -> _Clouds:
        cfg = self.config
        closes = [float(b.close) for b in bars]
        return _Clouds(
            closes=closes,
            highs=[float(b.high) for b in bars],
            lows=[float(b.low) for b in bars],
            volumes=[float(b.volume) for b in bars],
            fast=cloud_series(closes, cfg.fast, cfg.ema_seed),
            pullback=cloud_series(closes, cfg.pullback, cfg.ema_seed),
            macro=cloud_series(closes, cfg.macro, cfg.ema_seed),
        )

    def _setup(self, c: _Clouds, t: int) -> Direction | None:
        """The direction whose setup rules 1-3 hold on bar ``t``, or None."""
        lookback = self.config.pullback_lookback
        if t < lookback:
            return None
        macro, fast, pull = c.macro[t], c.fast[t], c.pullback[t]
        if macro is None or fast is None or pull is None:
            return None
        close = c.closes[t]
        window = range(t - lookback + 1, t + 1)
        if macro.bullish and fast.bullish and pull.bullish and close > macro.top:
            touches = [k for k in window if _defined(c.pullback[k]) and c.lows[k] <= _top(c, k)]
            if (
                touches
                and all(c.closes[j] >= _bottom(c, j) for j in range(touches[0], t + 1))
                and close > pull.top
                and close > c.closes[t - 1]
            ):
                return Direction.LONG
            return None
        if not macro.bullish and not fast.bullish and not pull.bullish and close < macro.bottom:
            touches = [k for k in window if _defined(c.pullback[k]) and c.highs[k] >= _bottom(c, k)]
            if (
                touches
                and all(c.closes[j] <= _top(c, j) for j in range(touches[0], t + 1))
                and close < pull.bottom
                and close < c.closes[t - 1]
            ):
                return Direction.SHORT
        return None

    def _alignment(
        self,
        timeframe: str,
        direction: Direction,
        bars_by_timeframe: Mapping[str, Sequence[Bar]],
    ) -> tuple[float, dict[str, Any]]:
        """Fraction of agreeing cloud colours on the other timeframes, and the votes."""
        cfg = self.config
        want_bullish = direction is Direction.LONG
        agree = total = 0
        votes: dict[str, Any] = {}
        for tf, _ in cfg.timeframes:
            if tf == timeframe:
                continue
            total += 2
            bars = bars_by_timeframe.get(tf) or ()
            if len(bars) < cfg.alignment_min_bars:
                votes[tf] = {"fast": None, "macro": None, "bars": len(bars)}
                continue
            closes = [float(b.close) for b in bars]
            fast = cloud_series(closes, cfg.fast, cfg.ema_seed)[-1]
            macro = cloud_series(closes, cfg.macro, cfg.ema_seed)[-1]
            entry: dict[str, Any] = {"bars": len(bars)}
            for name, cloud in (("fast", fast), ("macro", macro)):
                if cloud is None:
                    entry[name] = None
                    continue
                entry[name] = cloud.colour
                agree += cloud.bullish == want_bullish
            votes[tf] = entry
        return (agree / total if total else 0.0), votes


def _defined(cloud: CloudState | None) -> bool:
    return cloud is not None


def _top(c: _Clouds, i: int) -> float:
    cloud = c.pullback[i]
    return cloud.top if cloud is not None else float("inf")


def _bottom(c: _Clouds, i: int) -> float:
    cloud = c.pullback[i]
    return cloud.bottom if cloud is not None else float("-inf")


def _volume_ratio(volumes: Sequence[float], lookback: int) -> float | None:
    """Last volume over the mean of the ``lookback`` volumes before it (None if unknown)."""
    if len(volumes) < lookback + 1:
        return None
    average = sum(volumes[-lookback - 1 : -1]) / lookback
    if average <= 0:
        return None
    return volumes[-1] / average


# ---------------------------------------------------------------------------------------------
# Intake
# ---------------------------------------------------------------------------------------------


def signal_to_intake(signal: Signal) -> dict[str, Any]:
    """The plain-data form :func:`core.signals.intake.submit_signals` reads."""
    raw: dict[str, Any] = {
        "symbol": signal.symbol,
        "direction": signal.direction.value,
        "entry": str(signal.entry),
        "stop": str(signal.stop),
        "conviction": signal.conviction,
        "trade_type": signal.trade_type.value,
        "timeframe": signal.timeframe,
        "order_type": signal.order_type.value,
        "metadata": dict(signal.metadata),
    }
    if signal.target is not None:
        raw["target"] = str(signal.target)
    if signal.qty is not None:
        raw["qty"] = str(signal.qty)
    return raw


class EmaCloudSource:
    """Runs :meth:`EmaCloudEngine.scan` every ``every`` of market time during sessions and
    queues what it finds (the executor's ``SignalSource``). ``emit`` returns how many signals
    were queued pending; any the intake refuses are stored rejected with the reason."""

    def __init__(
        self,
        engine: EmaCloudEngine,
        symbols: Sequence[str],
        every: timedelta = timedelta(minutes=1),
    ):
        if engine.market is None:
            raise ValueError("the engine needs market data")
        if not symbols:
            raise ValueError("the EMA-cloud source needs at least one symbol")
        unknown = sorted(set(symbols) - set(engine.market.symbols()))
        if unknown:
            raise ValueError(f"symbols the market does not know: {', '.join(unknown)}")
        if every <= timedelta(0):
            raise ValueError("every must be positive")
        self.engine = engine
        self.symbols = list(symbols)
        self.every = every
        self._next_at: datetime | None = None
        self.queued = 0
        self.rejected = 0

    async def emit(self, store: Store, now: datetime) -> int:
        market = self.engine.market
        assert market is not None
        if not market.calendar.is_open(now):
            return 0
        if self._next_at is not None and now < self._next_at:
            return 0
        self._next_at = now + self.every
        signals = await self.engine.scan(self.symbols, now)
        if not signals:
            return 0
        result = submit_signals(store, [signal_to_intake(s) for s in signals], SOURCE, now)
        self.queued += len(result.accepted)
        self.rejected += len(result.rejected)
        return len(result.accepted)


__all__ = [
    "SOURCE",
    "EmaCloudConfig",
    "EmaCloudEngine",
    "EmaCloudSource",
    "signal_to_intake",
]
