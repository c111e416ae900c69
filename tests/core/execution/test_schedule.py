"""TWAP and VWAP schedules add up exactly to the parent, never send a zero slice, and VWAP
follows its profile; volume profiles from past sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import Bar, ValidationError
from core.execution import (
    DEFAULT_U_PROFILE,
    QTY_STEP,
    Slice,
    profile_window,
    twap_schedule,
    volume_profile,
    volume_profile_from_bars,
    vwap_schedule,
)

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def qtys(slices: list[Slice]) -> list[D]:
    return [s.qty for s in slices]


# -- TWAP ---------------------------------------------------------------------------------------


def test_twap_whole_shares_earlier_slices_take_the_extra() -> None:
    sched = twap_schedule(D(10), T0, slices=3, interval=MIN, fractional=False)
    assert sched == [
        Slice(0, T0, D(4)),
        Slice(1, T0 + MIN, D(3)),
        Slice(2, T0 + 2 * MIN, D(3)),
    ]


def test_twap_fewer_slices_than_asked_when_qty_is_small() -> None:
    sched = twap_schedule(D(3), T0, slices=10, interval=MIN, fractional=False)
    assert qtys(sched) == [D(1), D(1), D(1)]


def test_twap_fractional_remainder_on_the_last_slice() -> None:
    sched = twap_schedule(D(10), T0, slices=3, interval=MIN, fractional=True)
    assert qtys(sched) == [D("3.333333"), D("3.333333"), D("3.333334")]


def test_twap_fractional_finer_than_the_step_rides_on_the_last_slice() -> None:
    # 1.0000005 / 2 = 0.50000025 -> 0.500000; the last slice carries 0.5000005
    sched = twap_schedule(D("1.0000005"), T0, slices=2, interval=MIN, fractional=True)
    assert qtys(sched) == [D("0.500000"), D("0.5000005")]


def test_twap_fractional_tiny_quantities() -> None:
    assert (
        qtys(twap_schedule(D("0.000003"), T0, slices=10, interval=MIN, fractional=True))
        == [QTY_STEP] * 3
    )
    assert qtys(twap_schedule(D("0.0000005"), T0, slices=10, interval=MIN, fractional=True)) == [
        D("0.0000005")
    ]


def test_twap_times_are_utc() -> None:
    eastern = datetime(2024, 3, 4, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    sched = twap_schedule(D(2), eastern, slices=2, interval=timedelta(seconds=30), fractional=False)
    assert [s.at for s in sched] == [T0, T0 + timedelta(seconds=30)]
    assert all(s.at.tzinfo is UTC for s in sched)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"qty": D("10.5")}, "not a whole number of shares"),
        ({"qty": D(0)}, "qty must be positive"),
        ({"slices": 0}, "slices must be an integer of at least 1"),
        ({"interval": timedelta(0)}, "interval must be a positive duration"),
        ({"start": datetime(2024, 3, 4, 15, 0)}, "start must be a timezone-aware datetime"),
    ],
)
def test_twap_refuses_bad_input(kwargs: dict, message: str) -> None:
    args = {"qty": D(10), "start": T0, "slices": 3, "interval": MIN, "fractional": False} | kwargs
    with pytest.raises(ValidationError, match=message):
        twap_schedule(**args)


@given(qty=st.integers(min_value=1, max_value=10**7), n=st.integers(min_value=1, max_value=60))
def test_twap_whole_shares_properties(qty: int, n: int) -> None:
    sched = twap_schedule(D(qty), T0, slices=n, interval=MIN, fractional=False)
    q = qtys(sched)
    assert sum(q) == qty
    assert len(q) == min(n, qty)
    assert all(x > 0 and x == x.to_integral_value() for x in q)
    assert max(q) - min(q) <= 1
    assert q == sorted(q, reverse=True)  # the extra shares go first
    assert [s.index for s in sched] == list(range(len(q)))
    assert [s.at for s in sched] == [T0 + i * MIN for i in range(len(q))]


@given(
    qty=st.decimals(min_value=D("1e-9"), max_value=D(10**6), places=9),
    n=st.integers(min_value=1, max_value=60),
)
def test_twap_fractional_properties(qty: D, n: int) -> None:
    q = qtys(twap_schedule(qty, T0, slices=n, interval=MIN, fractional=True))
    assert sum(q) == qty
    assert all(x > 0 for x in q)
    assert len(q) <= n
    head = q[:-1]
    assert len(set(head)) <= 1  # all but the last are equal ...
    assert all(x == x.quantize(QTY_STEP) for x in head)  # ... and on the 1e-6 grid
    if head:
        assert q[-1] >= head[0]
        assert q[-1] - head[0] < len(q) * QTY_STEP  # the remainder is rounding only


# -- VWAP ---------------------------------------------------------------------------------------


def test_vwap_hand_worked_largest_remainder() -> None:
    # 7 x (0.25, 0.25, 0.5) = 1.75, 1.75, 3.5 -> floors 1, 1, 3 leave 2 shares for the largest
    # remainders (0.75, 0.75) -> 2, 2, 3
    sched = vwap_schedule(
        D(7), T0, profile=[D("0.25"), D("0.25"), D("0.5")], interval=MIN, fractional=False
    )
    assert sched == [Slice(0, T0, D(2)), Slice(1, T0 + MIN, D(2)), Slice(2, T0 + 2 * MIN, D(3))]


def test_vwap_weights_are_relative_to_their_sum() -> None:
    sched = vwap_schedule(D(100), T0, profile=[D(2), D(3), D(5)], interval=MIN, fractional=False)
    assert qtys(sched) == [D(20), D(30), D(50)]


def test_vwap_drops_empty_buckets_and_keeps_their_times() -> None:
    sched = vwap_schedule(
        D(10), T0, profile=[D("0.5"), D(0), D("0.5")], interval=MIN, fractional=False
    )
    assert sched == [Slice(0, T0, D(5)), Slice(2, T0 + 2 * MIN, D(5))]


def test_vwap_drops_buckets_rounding_to_zero() -> None:
    # 3 x (0.9, 0.05, 0.05) = 2.7, 0.15, 0.15 -> floors 2, 0, 0; the last share goes to 0.7
    sched = vwap_schedule(
        D(3), T0, profile=[D("0.9"), D("0.05"), D("0.05")], interval=MIN, fractional=False
    )
    assert sched == [Slice(0, T0, D(3))]


def test_vwap_fractional_hand_worked() -> None:
    # 1 share in thirds: 333,333.33 micro-shares each -> the spare micro-share goes first
    sched = vwap_schedule(D(1), T0, profile=[D(1)] * 3, interval=MIN, fractional=True)
    assert qtys(sched) == [D("0.333334"), D("0.333333"), D("0.333333")]


def test_vwap_on_the_default_profile() -> None:
    half_hour = timedelta(minutes=30)
    sched = vwap_schedule(
        D(1_000), T0, profile=DEFAULT_U_PROFILE, interval=half_hour, fractional=False
    )
    assert qtys(sched) == [D(x) for x in (130, 90, 75, 65, 55, 50, 50, 50, 55, 60, 70, 90, 160)]
    assert sched[-1].at == T0 + 12 * half_hour


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ([], "at least one bucket"),
        ([D(1), D(-1)], "must not be negative"),
        ([D(0), D(0)], "add up to 0"),
    ],
)
def test_vwap_refuses_bad_profiles(profile: list[D], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        vwap_schedule(D(10), T0, profile=profile, interval=MIN, fractional=False)


profiles = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40).filter(
    lambda ws: sum(ws) > 0
)


@given(qty=st.integers(min_value=1, max_value=10**6), weights=profiles)
def test_vwap_whole_shares_follow_the_profile(qty: int, weights: list[int]) -> None:
    profile = [D(w) for w in weights]
    sched = vwap_schedule(D(qty), T0, profile=profile, interval=MIN, fractional=False)
    assert sum(s.qty for s in sched) == qty
    assert all(s.qty > 0 and s.qty == s.qty.to_integral_value() for s in sched)
    by_bucket = {s.index: s.qty for s in sched}
    total = sum(weights)
    for i, w in enumerate(weights):
        exact = Fraction(qty * w, total)
        assert abs(Fraction(by_bucket.get(i, D(0))) - exact) < 1  # within one share
        if w == 0:
            assert i not in by_bucket
    assert all(s.at == T0 + s.index * MIN for s in sched)


@given(qty=st.decimals(min_value=D("1e-9"), max_value=D(10**5), places=9), weights=profiles)
def test_vwap_fractional_follows_the_profile(qty: D, weights: list[int]) -> None:
    profile = [D(w) for w in weights]
    sched = vwap_schedule(qty, T0, profile=profile, interval=MIN, fractional=True)
    assert sum(s.qty for s in sched) == qty
    assert all(s.qty > 0 for s in sched)
    if qty >= QTY_STEP:
        by_bucket = {s.index: s.qty for s in sched}
        total = sum(weights)
        for i, w in enumerate(weights):
            exact = Fraction(qty) * w / total
            # one step of rounding, plus the sub-step residual on one slice
            assert abs(Fraction(by_bucket.get(i, D(0))) - exact) < 2 * Fraction(QTY_STEP)


# -- volume profiles ----------------------------------------------------------------------------


def test_default_profile_is_u_shaped_and_sums_to_one() -> None:
    assert len(DEFAULT_U_PROFILE) == 13
    assert sum(DEFAULT_U_PROFILE) == 1
    trough = min(DEFAULT_U_PROFILE)
    assert DEFAULT_U_PROFILE[0] > 2 * trough
    assert DEFAULT_U_PROFILE[-1] == max(DEFAULT_U_PROFILE)


def test_each_session_counts_the_same() -> None:
    # day 1 splits 50/50, day 2 (nine times heavier in the first bucket) 90/10: the profile is
    # their mean 70/30, not the pooled 1000/1200 = 83/17.
    days = [[(0, D(100)), (1, D(100))], [(0, D(900)), (1, D(100))]]
    assert volume_profile(days, 2) == [D("0.7"), D("0.3")]


def test_profile_adds_repeated_buckets_and_skips_empty_sessions() -> None:
    days = [[(0, D(10)), (0, D(20)), (2, D(30))], [], [(1, D(0))]]
    assert volume_profile(days, 3) == [D("0.5"), D(0), D("0.5")]


def test_profile_rounds_so_the_weights_sum_to_exactly_one() -> None:
    weights = volume_profile([[(0, D(1)), (1, D(1)), (2, D(1))]], 3)
    assert weights == [D("0.333334"), D("0.333333"), D("0.333333")]
    assert sum(weights) == 1


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ([[(3, D(1))]], "bucket must be an integer from 0 to 2"),
        ([[(-1, D(1))]], "bucket must be an integer from 0 to 2"),
        ([[(0, D(-5))]], "volume must not be negative"),
        ([[(0, D(0))], []], "no volume in the history"),
        ([], "no volume in the history"),
    ],
)
def test_profile_refuses_bad_history(days: list, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        volume_profile(days, 3)


@given(
    days=st.lists(
        st.lists(
            st.tuples(st.integers(0, 7), st.integers(0, 10**9).map(D)), min_size=1, max_size=30
        ),
        min_size=1,
        max_size=10,
    ).filter(lambda ds: any(v for d in ds for _, v in d))
)
def test_profile_weights_always_sum_to_one(days: list[list[tuple[int, D]]]) -> None:
    weights = volume_profile(days, 8)
    assert len(weights) == 8
    assert sum(weights) == 1
    assert all(w >= 0 for w in weights)


def _bar(start: datetime, volume: int) -> Bar:
    return Bar("XYZ", start, start + MIN, D(10), D(10), D(10), D(10), D(volume))


def _open_of(ts: datetime) -> datetime:
    return ts.replace(hour=14, minute=30, second=0, microsecond=0)


def test_profile_from_bars() -> None:
    day1 = datetime(2024, 3, 4, tzinfo=UTC)
    day2 = datetime(2024, 3, 5, tzinfo=UTC)
    bars = [
        _bar(day1.replace(hour=14, minute=0), 5_000),  # pre-market: left out
        _bar(day1.replace(hour=14, minute=30), 100),  # bucket 0
        _bar(day1.replace(hour=14, minute=59), 200),  # bucket 0
        _bar(day1.replace(hour=15, minute=0), 100),  # bucket 1
        _bar(day1.replace(hour=15, minute=30), 9_000),  # past the last bucket: left out
        _bar(day2.replace(hour=15, minute=10), 50),  # bucket 1
        _bar(day2.replace(hour=14, minute=45), 150),  # bucket 0
    ]
    # day 1: 300 / 100 -> 0.75 / 0.25; day 2: 150 / 50 -> 0.75 / 0.25
    weights = volume_profile_from_bars(bars, bucket_minutes=30, buckets=2, session_open_of=_open_of)
    assert weights == [D("0.75"), D("0.25")]


def test_profile_window_renormalises() -> None:
    # the last hour of the default profile: 0.09 and 0.16 of 0.25
    assert profile_window(DEFAULT_U_PROFILE, 11, 2) == [D("0.36"), D("0.64")]
    with pytest.raises(ValidationError, match="outside a profile of 13 buckets"):
        profile_window(DEFAULT_U_PROFILE, 12, 2)
    with pytest.raises(ValidationError, match="add up to 0"):
        profile_window([D(1), D(0)], 1, 1)
