"""Timeframes, bar aggregation, bar selection and quote pricing shared by the market adapters.

Intraday buckets are aligned to the clock (``:00``, ``:05``, ``:10`` ... for 5-minute bars, whole
hours for ``1Hour``) and clipped to the session, so they never span two sessions. US exchange
time is a whole number of hours from UTC, so the UTC grid and the New York grid coincide. With
the 09:30 open this means the first ``1Hour`` bar of a regular session covers 09:30-10:00 ET
(30 minutes) and the rest are full hours; 5, 10 and 15-minute buckets are all full, except the
last one before an unusual close.

A ``1Day`` bar runs from the session open to the session close.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from core.domain import BPS, CENT, Bar
from core.ports import MarketCalendar

#: Supported timeframes and their length in minutes (``None`` = one bar per session).
TIMEFRAMES: dict[str, int | None] = {
    "1Min": 1,
    "5Min": 5,
    "10Min": 10,
    "15Min": 15,
    "1Hour": 60,
    "1Day": None,
}

MINUTE = timedelta(minutes=1)
#: Sentinels for "no bound" in cached validity windows; comparisons stay plain datetimes.
FAR_PAST = datetime.min.replace(tzinfo=UTC)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
_TWO = Decimal(2)


def timeframe_minutes(timeframe: str) -> int | None:
    """Length of ``timeframe`` in minutes, ``None`` for ``1Day``; ``ValueError`` if unknown."""
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        known = ", ".join(TIMEFRAMES)
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of {known}") from None


def check_limit(limit: int | None) -> None:
    """Refuse a negative or non-integer ``limit`` (``0`` is allowed and returns nothing)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")


def cents(value: int) -> Decimal:
    """An integer number of cents as an exact two-place Decimal (``12345`` -> ``123.45``)."""
    return Decimal(value).scaleb(-2)


def quote_prices(last: Decimal, spread_bps: Decimal) -> tuple[Decimal, Decimal]:
    """Bid and ask around ``last``: ``last`` -/+ half of ``spread_bps``, on whole cents.

    The bid is always strictly below ``last`` and the ask strictly above it (so at least one
    cent apart even when the spread is narrower than a cent), and the bid is never below one
    cent, so a quote never offers a free or negative price.
    """
    half = last * spread_bps / BPS / _TWO
    bid = (last - half).quantize(CENT, ROUND_HALF_EVEN)
    ask = (last + half).quantize(CENT, ROUND_HALF_EVEN)
    # Rounding to cents must not close the spread onto (or through) the last price.
    bid = min(bid, last.quantize(CENT, ROUND_CEILING) - CENT)
    ask = max(ask, last.quantize(CENT, ROUND_FLOOR) + CENT)
    return max(bid, CENT), ask


def bucket_bounds(
    start: datetime, minutes: int, session_open: datetime | None, session_close: datetime | None
) -> tuple[datetime, datetime]:
    """The clock-aligned ``minutes`` bucket containing ``start``, clipped to the session."""
    epoch_minutes = int(start.timestamp()) // 60
    first = epoch_minutes - epoch_minutes % minutes
    lo = datetime.fromtimestamp(first * 60, UTC)
    hi = lo + timedelta(minutes=minutes)
    if session_open is not None and lo < session_open:
        lo = session_open
    if session_close is not None and hi > session_close:
        hi = session_close
    return lo, hi


def select(
    bars: Sequence[Bar],
    ends: Sequence[datetime],
    start: datetime | None,
    end: datetime,
    limit: int | None,
) -> list[Bar]:
    """Bars with ``start < bar.end <= end``, the last ``limit`` of them; ``ends`` is sorted."""
    lo = 0 if start is None else bisect_right(ends, start)
    hi = bisect_right(ends, end)
    if limit is not None:
        lo = max(lo, hi - limit)
    return list(bars[lo:hi]) if hi > lo else []


def aggregate(bars: Sequence[Bar], minutes: int | None, calendar: MarketCalendar) -> list[Bar]:
    """Combine one symbol's bars (sorted by start) into ``minutes`` buckets, or sessions if None.

    Intraday buckets of bars outside any session (extended hours) are clock-aligned but not
    clipped. Daily bars cover regular sessions only: extended-hours bars are left out of them,
    as a session's open, close and volume are conventionally the regular-hours figures.
    """
    session_of = _session_lookup(calendar)
    out: list[Bar] = []
    group: list[Bar] = []
    key: tuple[datetime, datetime] | None = None
    for bar in bars:
        s_open, s_close = session_of(bar.start)
        if minutes is None:
            if s_open is None or s_close is None:
                continue
            bounds = (s_open, s_close)
        else:
            bounds = bucket_bounds(bar.start, minutes, s_open, s_close)
        if bounds != key:
            if group and key is not None:
                out.append(_combine(group, *key))
            group, key = [], bounds
        group.append(bar)
    if group and key is not None:
        out.append(_combine(group, *key))
    return out


def _combine(group: Sequence[Bar], start: datetime, end: datetime) -> Bar:
    return Bar(
        symbol=group[0].symbol,
        start=start,
        end=end,
        open=group[0].open,
        high=max(b.high for b in group),
        low=min(b.low for b in group),
        close=group[-1].close,
        volume=sum((b.volume for b in group), Decimal(0)),
    )


def _session_lookup(
    calendar: MarketCalendar,
) -> Callable[[datetime], tuple[datetime, datetime] | tuple[None, None]]:
    """``ts -> (session open, session close)`` or ``(None, None)`` outside sessions, remembering
    the last session seen because consecutive bars almost always share it."""
    last: list[tuple[datetime, datetime]] = []

    def lookup(ts: datetime) -> tuple[datetime, datetime] | tuple[None, None]:
        if last and last[0][0] <= ts < last[0][1]:
            return last[0]
        session = calendar.session_date(ts)
        if session is None:
            return None, None
        entry = (calendar.session_open(session), calendar.session_close(session))
        last[:] = [entry]
        return entry

    return lookup
