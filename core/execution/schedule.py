"""Child-order schedules for sliced execution: TWAP (equal slices) and VWAP (slices following the
intraday volume profile), and the volume profile itself.

Rules every schedule keeps:

* The slices add up **exactly** to the parent quantity and no slice is zero. Whole-share
  schedules (``fractional=False``) need an integral parent quantity and give integral slices;
  fractional schedules work in steps of :data:`QTY_STEP` (1e-6 shares), and whatever the parent
  carries below that step rides on the last slice, so nothing is lost to rounding.
* TWAP: slice ``i`` goes at ``start + i * interval``. Whole shares are split so slices differ by
  at most one share, the earlier slices taking the extra shares (the order gets done sooner).
  Fractional slices are ``qty / n`` rounded *down* to the step, with the remainder on the last
  slice; rounding down keeps every slice positive. A quantity too small for ``n`` slices gets
  fewer slices (3 shares in 10 slices is 3 slices of 1).
* VWAP: slice ``i`` belongs to profile bucket ``i``, goes at ``start + i * interval`` and gets
  ``qty * weight_i / sum(weights)``, rounded by the largest-remainder method (floor every slice,
  then hand the units left over to the largest fractional parts, earlier buckets first on ties),
  so each slice is within one unit of its exact share. Buckets whose share rounds to zero are
  dropped, so ``Slice.index`` is the profile bucket and may skip numbers.

The apportioning is done in exact rational arithmetic (:class:`fractions.Fraction`), never in
floats, so the guarantees above hold for every input, not just typical ones.

Volume profiles (:func:`volume_profile`, :func:`volume_profile_from_bars`) turn past sessions
into one weight per time-of-day bucket. Each session is normalised on its own before the
sessions are averaged, so one unusually heavy day (an index rebalance, a news day) moves the
curve no more than any other day. Weights are rounded to :data:`WEIGHT_STEP` by largest
remainder and add up to exactly 1. :data:`DEFAULT_U_PROFILE` stands in when there is no history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any

from core.domain import Bar, ValidationError, positive, to_decimal, utc

#: Smallest fractional child quantity (fractional schedules).
QTY_STEP = Decimal("0.000001")
#: Resolution of volume-profile weights.
WEIGHT_STEP = Decimal("0.000001")
_WEIGHT_UNITS = 1_000_000  # 1 / WEIGHT_STEP

#: A stylised U-shaped profile of the US regular session (09:30-16:00 ET) in 13 half-hour
#: buckets: heavy at the open (overnight news, opening auction spill-over), a midday trough,
#: and the heaviest bucket into the close (index funds and MOC imbalances). It is a shape, not a
#: measurement; any symbol's own history (:func:`volume_profile_from_bars`) should replace it.
#: Its weights add up to exactly 1. Use a 30-minute ``interval`` with it to span the session.
DEFAULT_U_PROFILE: tuple[Decimal, ...] = tuple(
    Decimal(w)
    for w in (
        "0.130",  # 09:30
        "0.090",  # 10:00
        "0.075",  # 10:30
        "0.065",  # 11:00
        "0.055",  # 11:30
        "0.050",  # 12:00
        "0.050",  # 12:30
        "0.050",  # 13:00
        "0.055",  # 13:30
        "0.060",  # 14:00
        "0.070",  # 14:30
        "0.090",  # 15:00
        "0.160",  # 15:30
    )
)


@dataclass(frozen=True, slots=True)
class Slice:
    """One child order of a schedule: ``qty`` shares sent at ``at`` (UTC)."""

    index: int
    at: datetime
    qty: Decimal


# ---------------------------------------------------------------------------------------------
# TWAP
# ---------------------------------------------------------------------------------------------


def split_evenly(qty: Decimal, slices: int, *, fractional: bool) -> list[Decimal]:
    """The TWAP quantities of ``qty`` in at most ``slices`` parts (see the module docstring)."""
    qty = _parent_qty(qty, fractional)
    n = _count(slices, "slices")
    if not fractional:
        units = int(qty)
        n = min(n, units)
        base, extra = divmod(units, n)
        return [Decimal(base + 1 if i < extra else base) for i in range(n)]
    units = int((qty / QTY_STEP).to_integral_value(ROUND_FLOOR))
    n = max(1, min(n, units))
    if n == 1:
        return [qty]
    # n <= units, so qty / n >= QTY_STEP and the rounded-down part is never zero.
    base = (qty / n).quantize(QTY_STEP, rounding=ROUND_DOWN)
    return [base] * (n - 1) + [qty - base * (n - 1)]


def twap_schedule(
    qty: Decimal,
    start: datetime,
    *,
    slices: int,
    interval: timedelta,
    fractional: bool,
) -> list[Slice]:
    """Equal child orders of ``qty``, slice ``i`` at ``start + i * interval``.

    Raises :class:`~core.domain.ValidationError` for a non-positive quantity, a fractional
    quantity in whole-share mode, ``slices < 1``, a non-positive interval or a naive ``start``.
    """
    t0 = _start(start)
    step = _interval(interval)
    return [
        Slice(i, t0 + i * step, q)
        for i, q in enumerate(split_evenly(qty, slices, fractional=fractional))
    ]


# ---------------------------------------------------------------------------------------------
# VWAP
# ---------------------------------------------------------------------------------------------


def vwap_schedule(
    qty: Decimal,
    start: datetime,
    *,
    profile: Sequence[Decimal],
    interval: timedelta,
    fractional: bool,
) -> list[Slice]:
    """Child orders of ``qty`` in proportion to ``profile``, bucket ``i`` at
    ``start + i * interval``; zero-quantity buckets are left out.

    ``profile`` weights are used relative to their sum (a profile from :func:`volume_profile`
    already sums to 1). Raises :class:`~core.domain.ValidationError` on an empty profile, a
    negative weight, weights adding up to 0, or the quantity problems :func:`twap_schedule`
    refuses.
    """
    qty = _parent_qty(qty, fractional)
    t0 = _start(start)
    step = _interval(interval)
    weights = _weights(profile)
    if fractional:
        units = int((qty / QTY_STEP).to_integral_value(ROUND_FLOOR))
        unit = QTY_STEP
    else:
        units, unit = int(qty), Decimal(1)
    if units == 0:
        # Less than one step in all: the whole quantity goes in the heaviest bucket.
        heaviest = max(range(len(weights)), key=lambda i: (weights[i], -i))
        return [Slice(heaviest, t0 + heaviest * step, qty)]
    counts = _apportion(weights, units)
    quantities = [Decimal(c) * unit for c in counts]
    residual = qty - Decimal(units) * unit  # below QTY_STEP; zero for whole shares
    if residual:
        last = max(i for i, c in enumerate(counts) if c)
        quantities[last] += residual
    return [Slice(i, t0 + i * step, q) for i, q in enumerate(quantities) if q]


# ---------------------------------------------------------------------------------------------
# Volume profiles
# ---------------------------------------------------------------------------------------------


def volume_profile(
    buckets_by_day: Iterable[Iterable[tuple[int, Decimal]]], buckets: int
) -> list[Decimal]:
    """Normalised weights per time-of-day bucket from past sessions.

    ``buckets_by_day`` holds one sequence per session of ``(bucket, volume)`` pairs; a bucket may
    appear more than once in a session (several bars in one bucket) and its volumes are added.
    Each session with volume is normalised to 1, the sessions are averaged and the result is
    rounded to :data:`WEIGHT_STEP` so the weights add up to exactly 1. Sessions without volume
    are skipped. Raises :class:`~core.domain.ValidationError` for a bucket outside
    ``0..buckets-1``, a negative volume, or when no session has any volume (fall back to
    :data:`DEFAULT_U_PROFILE`).
    """
    n = _count(buckets, "buckets")
    sums = [Fraction(0)] * n
    sessions = 0
    for day in buckets_by_day:
        volumes = [Fraction(0)] * n
        for bucket, volume in day:
            if isinstance(bucket, bool) or not isinstance(bucket, int) or not 0 <= bucket < n:
                raise ValidationError(
                    f"bucket must be an integer from 0 to {n - 1}, got {bucket!r}"
                )
            v = to_decimal(volume, "volume")
            if v < 0:
                raise ValidationError(f"volume must not be negative, got {v}")
            volumes[bucket] += Fraction(v)
        total = sum(volumes, Fraction(0))
        if total == 0:
            continue
        sessions += 1
        sums = [s + v / total for s, v in zip(sums, volumes, strict=True)]
    if sessions == 0:
        raise ValidationError("no volume in the history: use DEFAULT_U_PROFILE instead")
    return _to_weights(sums)


def volume_profile_from_bars(
    bars: Iterable[Bar],
    *,
    bucket_minutes: int,
    buckets: int,
    session_open_of: Callable[[datetime], datetime],
) -> list[Decimal]:
    """:func:`volume_profile` from intraday bars of past sessions.

    ``session_open_of(bar.start)`` gives the open (timezone-aware) of the session a bar belongs
    to, e.g. from the exchange calendar; bars are grouped into sessions by that open and placed
    in bucket ``(bar.start - open) // bucket_minutes``. Bars before the open or past the last
    bucket (extended hours) are left out: the profile describes the regular session the
    schedules trade in.
    """
    width = timedelta(minutes=_count(bucket_minutes, "bucket_minutes"))
    n = _count(buckets, "buckets")
    by_session: dict[datetime, list[tuple[int, Decimal]]] = defaultdict(list)
    for bar in bars:
        start = utc(bar.start)
        opened = _start(session_open_of(start))
        if start < opened:
            continue
        bucket = (start - opened) // width
        if bucket < n:
            by_session[opened].append((bucket, bar.volume))
    return volume_profile((by_session[k] for k in sorted(by_session)), n)


def profile_window(profile: Sequence[Decimal], first: int, count: int) -> list[Decimal]:
    """Buckets ``first .. first+count-1`` of ``profile`` renormalised to add up to exactly 1:
    the profile of the part of the session still ahead (a VWAP started at 11:00 follows the
    11:00-16:00 shape, not the whole day's)."""
    weights = [to_decimal(w, "weight") for w in profile]
    n = _count(count, "count")
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ValidationError(f"first must be a non-negative integer, got {first!r}")
    if first + n > len(weights):
        raise ValidationError(
            f"window {first}..{first + n - 1} is outside a profile of {len(weights)} buckets"
        )
    return _to_weights(_weights(weights[first : first + n]))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _apportion(weights: Sequence[Fraction], units: int) -> list[int]:
    """Split ``units`` whole units in proportion to ``weights`` (largest remainder, ties to the
    earlier index). Every share is within one unit of ``units * w / sum(w)``."""
    total = sum(weights, Fraction(0))
    exact = [units * w / total for w in weights]
    counts = [int(e) for e in exact]  # floor: shares are non-negative
    left = units - sum(counts)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return counts


def _to_weights(shares: Sequence[Fraction]) -> list[Decimal]:
    # scaleb keeps the result exact: count * 1e-6 without a division.
    return [Decimal(c).scaleb(-6) for c in _apportion(shares, _WEIGHT_UNITS)]


def _weights(profile: Sequence[Any]) -> list[Fraction]:
    if not profile:
        raise ValidationError("a volume profile needs at least one bucket")
    out: list[Fraction] = []
    for w in profile:
        value = to_decimal(w, "profile weight")
        if value < 0:
            raise ValidationError(f"profile weights must not be negative, got {value}")
        out.append(Fraction(value))
    if sum(out, Fraction(0)) == 0:
        raise ValidationError("profile weights add up to 0: no bucket has any volume")
    return out


def _parent_qty(qty: Decimal, fractional: bool) -> Decimal:
    qty = positive(qty, "qty")
    if not fractional and qty != qty.to_integral_value():
        raise ValidationError(
            f"qty {qty} is not a whole number of shares and fractional shares are disabled"
        )
    return qty


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be an integer of at least 1, got {value!r}")
    return value


def _interval(interval: timedelta) -> timedelta:
    if not isinstance(interval, timedelta) or interval <= timedelta(0):
        raise ValidationError(f"interval must be a positive duration, got {interval!r}")
    return interval


def _start(start: datetime) -> datetime:
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        raise ValidationError(f"start must be a timezone-aware datetime, got {start!r}")
    return utc(start)
