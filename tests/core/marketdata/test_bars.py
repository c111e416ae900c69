from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import Bar
from core.marketdata.bars import (
    aggregate,
    bucket_bounds,
    cents,
    quote_prices,
    select,
    timeframe_minutes,
)
from core.marketdata.calendar import default_calendar

CAL = default_calendar()
CENT = Decimal("0.01")


def minute_bar(start: datetime, price: str = "10.00", volume: int = 100) -> Bar:
    p = Decimal(price)
    return Bar("X", start, start + timedelta(minutes=1), p, p, p, p, Decimal(volume))


def test_timeframes() -> None:
    assert timeframe_minutes("1Min") == 1
    assert timeframe_minutes("1Hour") == 60
    assert timeframe_minutes("1Day") is None
    with pytest.raises(ValueError, match="unknown timeframe '1min'; use one of 1Min, 5Min"):
        timeframe_minutes("1min")


def test_cents_are_exact() -> None:
    assert str(cents(12345)) == "123.45"
    assert str(cents(1)) == "0.01"


@given(
    last=st.decimals(min_value=Decimal("0.02"), max_value=Decimal(20_000), places=4),
    bps=st.decimals(min_value=Decimal(0), max_value=Decimal(200), places=2),
)
def test_property_quote_prices(last: Decimal, bps: Decimal) -> None:
    bid, ask = quote_prices(last, bps)
    assert CENT <= bid < last < ask
    assert bid == bid.quantize(CENT) and ask == ask.quantize(CENT)
    # never wider than the asked spread plus a cent of rounding on each side
    assert ask - bid <= last * bps / 10_000 + 2 * CENT


def test_quote_prices_examples() -> None:
    assert quote_prices(Decimal("100.00"), Decimal(10)) == (Decimal("99.95"), Decimal("100.05"))
    # narrower than a cent: one cent each side
    assert quote_prices(Decimal("7.13"), Decimal(1)) == (Decimal("7.12"), Decimal("7.14"))
    # a last price off the cent grid
    assert quote_prices(Decimal("7.134"), Decimal(0)) == (Decimal("7.13"), Decimal("7.14"))


def test_bucket_bounds_are_clock_aligned_and_clipped() -> None:
    s_open = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    s_close = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    at = datetime(2026, 11, 20, 14, 47, tzinfo=UTC)
    assert bucket_bounds(at, 15, s_open, s_close) == (
        datetime(2026, 11, 20, 14, 45, tzinfo=UTC),
        datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    )
    assert bucket_bounds(at, 60, s_open, s_close) == (
        s_open,
        datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    )
    assert bucket_bounds(at, 60, None, None)[0] == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def test_aggregate_keeps_sessions_apart_and_leaves_extended_hours_out_of_days() -> None:
    bars = [
        minute_bar(datetime(2026, 11, 20, 13, 0, tzinfo=UTC), "9.00", 5),  # 08:00 ET pre-market
        minute_bar(datetime(2026, 11, 20, 20, 59, tzinfo=UTC), "10.00"),
        minute_bar(datetime(2026, 11, 23, 14, 30, tzinfo=UTC), "11.00"),
    ]
    hourly = aggregate(bars, 60, CAL)
    assert [(b.start.hour, b.end.hour, b.close) for b in hourly] == [
        (13, 14, Decimal("9.00")),
        (20, 21, Decimal("10.00")),
        (14, 15, Decimal("11.00")),
    ]
    assert hourly[2].start == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    daily = aggregate(bars, None, CAL)
    assert [(b.start, b.volume) for b in daily] == [
        (CAL.session_open(datetime(2026, 11, 20).date()), Decimal(100)),
        (CAL.session_open(datetime(2026, 11, 23).date()), Decimal(100)),
    ]


def test_select() -> None:
    start = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    bars = [minute_bar(start + timedelta(minutes=k)) for k in range(10)]
    ends = [b.end for b in bars]
    assert select(bars, ends, None, ends[4], None) == bars[:5]
    assert select(bars, ends, ends[1], ends[4], None) == bars[2:5]
    assert select(bars, ends, None, ends[-1], 3) == bars[-3:]
    assert select(bars, ends, None, start, None) == []
