"""Bar series built from closing prices, for the EMA-cloud and exit tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.domain import Bar

#: 2026-11-20 09:30 ET, the open of the replay sample's session.
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def price(x: float) -> Decimal:
    return Decimal(f"{x:.2f}")


def bars_from_closes(
    closes: Sequence[float],
    *,
    volumes: Sequence[float] | None = None,
    lows: dict[int, float] | None = None,
    highs: dict[int, float] | None = None,
    start: datetime = T0,
    minutes: int = 1,
    symbol: str = "TEST",
    wick: float = 0.05,
) -> list[Bar]:
    """One bar per close: open = previous close, high/low = the body +/- ``wick`` unless given."""
    out = []
    prev = closes[0]
    for i, c in enumerate(closes):
        lo = (lows or {}).get(i, min(prev, c) - wick)
        hi = (highs or {}).get(i, max(prev, c) + wick)
        begin = start + timedelta(minutes=minutes * i)
        out.append(
            Bar(
                symbol,
                begin,
                begin + timedelta(minutes=minutes),
                price(prev),
                price(hi),
                price(lo),
                price(c),
                Decimal(str(volumes[i] if volumes else 1000)),
            )
        )
        prev = c
    return out


def trend(n: int, start: float = 100.0, step: float = 0.2) -> list[float]:
    return [start + step * i for i in range(n)]


def long_setup_closes() -> list[float]:
    """100 rising closes, a three-bar dip into the 8/9 cloud that holds, and a bar turning up:
    the last close is a long setup."""
    closes = trend(100)
    return closes + [closes[-1] + d for d in (-0.2, -0.5, -0.6, -0.1)]


def short_setup_closes() -> list[float]:
    """The mirror image of :func:`long_setup_closes` (falling from 200)."""
    closes = trend(100, start=200.0, step=-0.2)
    return closes + [closes[-1] - d for d in (-0.2, -0.5, -0.6, -0.1)]
