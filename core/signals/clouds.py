"""EMA cloud math shared by the signal engine and the exit monitor.

An *EMA cloud* is the band between two exponential moving averages of the close: a fast one and
a slow one. Three pairs are used (seed 001):

* the **fast** cloud, EMA 5 / EMA 12: short-term momentum and the cloud-flip exit;
* the **pullback** cloud, EMA 8 / EMA 9: where a trend pauses and resumes; the swing trailing stop;
* the **macro** cloud, EMA 34 / EMA 50: the trend; its far edge is the stop.

Conventions
-----------
EMA
    The standard recursive average ``ema[i] = ema[i-1] + alpha * (x[i] - ema[i-1])`` with
    ``alpha = 2 / (period + 1)``. By default (``seed="first"``) it is seeded with the first value
    (``ema[0] = x[0]``), so it is defined from the first bar and equals pandas'
    ``Series.ewm(span=period, adjust=False).mean()``; callers should give it a warm-up of a few
    periods before trusting it. With ``seed="sma"`` the first ``period - 1`` values are NaN and
    ``ema[period - 1]`` is the simple average of the first ``period`` values.
    The array function :func:`ema` and the incremental :class:`EmaState` use the same formula in
    the same order of operations, so they agree bit for bit (the exit monitor relies on this).
Colour
    A cloud is *bullish* when its fast EMA is strictly above its slow EMA, otherwise *bearish*
    (equal EMAs, which in practice only happens on the very first bar, count as bearish).
Position of a price
    ``above`` when strictly above the cloud's top, ``below`` when strictly below its bottom,
    otherwise ``inside`` (touching an edge is inside).
Flip
    A cloud flips on bar ``i`` when its colour on bar ``i`` differs from bar ``i - 1``.

EMAs are computed on floats; prices leave this module as floats and callers round them to cents
as :class:`~decimal.Decimal` (see :func:`to_cents`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Literal

import numpy as np

from core.domain import CENT

Seed = Literal["first", "sma"]

#: Seed 001 periods.
FAST = (5, 12)
PULLBACK = (8, 9)
MACRO = (34, 50)


def alpha_for(period: int) -> float:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"EMA period must be a positive integer, got {period!r}")
    return 2.0 / (period + 1)


def ema(values: Sequence[float] | np.ndarray, period: int, seed: Seed = "first") -> np.ndarray:
    """The EMA of ``values`` (see the module docstring for the seeding rules)."""
    alpha = alpha_for(period)
    xs = [float(v) for v in values]
    out = np.full(len(xs), np.nan)
    if not xs:
        return out
    if seed == "first":
        start, prev = 1, xs[0]
        out[0] = prev
    elif seed == "sma":
        if len(xs) < period:
            return out
        prev = math.fsum(xs[:period]) / period
        out[period - 1] = prev
        start = period
    else:
        raise ValueError(f"seed must be 'first' or 'sma', got {seed!r}")
    for i in range(start, len(xs)):
        prev = prev + alpha * (xs[i] - prev)
        out[i] = prev
    return out


class EmaState:
    """An EMA updated one value at a time; ``value`` is None until it is defined."""

    __slots__ = ("_alpha", "_buffer", "_seed", "period", "value")

    def __init__(self, period: int, seed: Seed = "first"):
        self._alpha = alpha_for(period)
        if seed not in ("first", "sma"):
            raise ValueError(f"seed must be 'first' or 'sma', got {seed!r}")
        self.period = period
        self._seed = seed
        self._buffer: list[float] = []
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        prev = self.value
        if prev is not None:
            prev = prev + self._alpha * (x - prev)
            self.value = prev
            return prev
        if self._seed == "first":
            self.value = x
            return x
        self._buffer.append(x)
        if len(self._buffer) == self.period:
            self.value = math.fsum(self._buffer) / self.period
            self._buffer = []
        return self.value


# ---------------------------------------------------------------------------------------------
# Clouds
# ---------------------------------------------------------------------------------------------


class Relation(StrEnum):
    """Where a price sits relative to a cloud."""

    ABOVE = "above"
    INSIDE = "inside"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class CloudState:
    """One cloud on one bar: its two EMAs (``fast`` is the shorter period)."""

    fast: float
    slow: float

    @property
    def top(self) -> float:
        return self.fast if self.fast >= self.slow else self.slow

    @property
    def bottom(self) -> float:
        return self.slow if self.fast >= self.slow else self.fast

    @property
    def bullish(self) -> bool:
        return self.fast > self.slow

    @property
    def colour(self) -> str:
        return "bullish" if self.fast > self.slow else "bearish"

    def relation(self, price: float) -> Relation:
        return relation(price, self)

    def to_dict(self) -> dict[str, str | bool]:
        """JSON-ready: the levels as cent strings, the colour as a flag."""
        return {
            "fast_ema": str(to_cents(self.fast)),
            "slow_ema": str(to_cents(self.slow)),
            "top": str(to_cents(self.top)),
            "bottom": str(to_cents(self.bottom)),
            "bullish": self.bullish,
        }


def cloud_series(
    closes: Sequence[float] | np.ndarray, periods: tuple[int, int], seed: Seed = "first"
) -> list[CloudState | None]:
    """The cloud of ``periods = (fast, slow)`` on every bar (None while an EMA is undefined)."""
    fast_p, slow_p = periods
    if fast_p >= slow_p:
        raise ValueError(f"cloud periods must be (fast, slow) with fast < slow, got {periods}")
    f = ema(closes, fast_p, seed)
    s = ema(closes, slow_p, seed)
    return [
        None if math.isnan(a) or math.isnan(b) else CloudState(float(a), float(b))
        for a, b in zip(f, s, strict=True)
    ]


def relation(price: float, cloud: CloudState) -> Relation:
    """``above``/``inside``/``below`` (strict outside, edges count as inside)."""
    if price > cloud.top:
        return Relation.ABOVE
    if price < cloud.bottom:
        return Relation.BELOW
    return Relation.INSIDE


def is_flip(previous: CloudState | None, current: CloudState | None) -> bool:
    """True when the cloud changed colour between two consecutive bars."""
    return previous is not None and current is not None and previous.bullish != current.bullish


def flips(states: Sequence[CloudState | None]) -> list[int]:
    """Indices of the bars on which the cloud flipped."""
    return [i for i in range(1, len(states)) if is_flip(states[i - 1], states[i])]


def last_flip_index(states: Sequence[CloudState | None]) -> int | None:
    """The index of the most recent flip, or None."""
    for i in range(len(states) - 1, 0, -1):
        if is_flip(states[i - 1], states[i]):
            return i
    return None


def consecutive_outside(
    closes: Sequence[float], states: Sequence[CloudState | None], side: Relation
) -> int:
    """How many of the latest closes in a row are outside the cloud on ``side`` while the cloud
    has the colour of that side (bullish for ``above``, bearish for ``below``).

    This is the momentum-exhaustion count: e.g. 3 closes in a row above a bullish fast cloud.
    """
    if side is Relation.INSIDE:
        raise ValueError("side must be above or below")
    want_bullish = side is Relation.ABOVE
    n = 0
    for i in range(len(closes) - 1, -1, -1):
        cloud = states[i]
        if cloud is None or cloud.bullish != want_bullish or relation(closes[i], cloud) is not side:
            break
        n += 1
    return n


def to_cents(value: float) -> Decimal:
    """A float price as a Decimal rounded half-even to whole cents."""
    if not math.isfinite(value):
        raise ValueError(f"price must be finite, got {value!r}")
    return Decimal(value).quantize(CENT, ROUND_HALF_EVEN)


__all__ = [
    "FAST",
    "MACRO",
    "PULLBACK",
    "CloudState",
    "EmaState",
    "Relation",
    "Seed",
    "alpha_for",
    "cloud_series",
    "consecutive_outside",
    "ema",
    "flips",
    "is_flip",
    "last_flip_index",
    "relation",
    "to_cents",
]
