"""EMA and cloud maths against hand-worked values and a NumPy/pandas reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.signals.clouds import (
    CloudState,
    EmaState,
    Relation,
    alpha_for,
    cloud_series,
    consecutive_outside,
    ema,
    flips,
    is_flip,
    last_flip_index,
    relation,
    to_cents,
)

PRICES = st.lists(
    st.floats(min_value=1, max_value=1000, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=120,
)


def test_ema_by_hand():
    # alpha = 2 / (3 + 1) = 0.5: each value moves the average halfway.
    assert list(ema([10, 20, 30, 30], 3)) == [10.0, 15.0, 22.5, 26.25]
    assert alpha_for(5) == pytest.approx(1 / 3)


def test_ema_sma_seed_by_hand():
    out = ema([10, 20, 30, 30], 3, seed="sma")
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2] == 20.0  # (10 + 20 + 30) / 3
    assert out[3] == 25.0  # 20 + 0.5 * (30 - 20)
    assert np.isnan(ema([1, 2], 3, seed="sma")).all()


def test_ema_edge_cases():
    assert len(ema([], 5)) == 0
    with pytest.raises(ValueError, match="positive integer"):
        ema([1.0], 0)
    with pytest.raises(ValueError, match="seed"):
        ema([1.0], 3, seed="zero")  # type: ignore[arg-type]


@given(PRICES, st.integers(min_value=1, max_value=60))
def test_ema_matches_pandas_and_numpy_reference(values, period):
    ours = ema(values, period)
    theirs = pd.Series(values).ewm(span=period, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    # NumPy closed form: ema[i] = (1-a)^i x0 + sum_k a (1-a)^(i-k) x_k
    a = 2 / (period + 1)
    x = np.asarray(values)
    i = len(x) - 1
    weights = a * (1 - a) ** (i - np.arange(1, i + 1))
    closed = (1 - a) ** i * x[0] + float(np.sum(weights * x[1:]))
    assert ours[-1] == pytest.approx(closed, rel=1e-9)


@given(PRICES, st.integers(min_value=1, max_value=30), st.sampled_from(["first", "sma"]))
def test_incremental_ema_is_bit_identical(values, period, seed):
    state = EmaState(period, seed)
    arr = ema(values, period, seed)
    for i, v in enumerate(values):
        got = state.update(v)
        if math.isnan(arr[i]):
            assert got is None
        else:
            assert got == arr[i]


def test_cloud_state_edges_and_colour():
    bull = CloudState(fast=11.0, slow=10.0)
    assert (bull.top, bull.bottom, bull.bullish, bull.colour) == (11.0, 10.0, True, "bullish")
    bear = CloudState(fast=9.0, slow=10.0)
    assert (bear.top, bear.bottom, bear.bullish) == (10.0, 9.0, False)
    flat = CloudState(10.0, 10.0)
    assert not flat.bullish
    assert bull.to_dict() == {
        "fast_ema": "11.00",
        "slow_ema": "10.00",
        "top": "11.00",
        "bottom": "10.00",
        "bullish": True,
    }


def test_relation_boundaries():
    cloud = CloudState(11.0, 10.0)
    assert relation(11.01, cloud) is Relation.ABOVE
    assert relation(11.0, cloud) is Relation.INSIDE  # an edge is inside
    assert relation(10.5, cloud) is Relation.INSIDE
    assert relation(10.0, cloud) is Relation.INSIDE
    assert relation(9.99, cloud) is Relation.BELOW
    assert cloud.relation(12) is Relation.ABOVE


def test_flip_detection():
    closes = [10.0] * 5 + [11, 12, 13, 14, 15] + [14, 13, 12, 11, 10, 9, 8]
    states = cloud_series(closes, (2, 4))
    colours = [s.bullish for s in states]
    found = flips(states)
    assert found == [i for i in range(1, len(colours)) if colours[i] != colours[i - 1]]
    assert colours[4] is False and colours[5] is True  # turns bullish on the first up bar
    assert 5 in found
    assert last_flip_index(states) == found[-1]
    assert colours[found[-1]] is False  # the last flip is to bearish on the way down
    assert last_flip_index(cloud_series([10.0, 11.0], (2, 4))) == 1
    assert last_flip_index(cloud_series([10.0, 9.0, 8.0], (2, 4))) is None
    assert not is_flip(None, states[0])


def test_cloud_series_validates_periods():
    with pytest.raises(ValueError, match="fast < slow"):
        cloud_series([1.0, 2.0], (12, 5))
    assert cloud_series([1.0, 2.0], (2, 3), seed="sma")[0] is None


def test_consecutive_outside_counts_same_colour_runs():
    up = CloudState(11.0, 10.0)  # bullish, top 11
    down = CloudState(10.0, 11.0)  # bearish, bottom 10
    assert consecutive_outside([12, 12, 12], [up, up, up], Relation.ABOVE) == 3
    assert consecutive_outside([10.5, 12, 12], [up, up, up], Relation.ABOVE) == 2
    assert consecutive_outside([12, 12, 11], [up, up, up], Relation.ABOVE) == 0  # edge = inside
    # Above the cloud but the cloud is bearish: not the same colour, not counted.
    assert consecutive_outside([12, 12, 12], [up, down, up], Relation.ABOVE) == 1
    assert consecutive_outside([9, 9], [down, down], Relation.BELOW) == 2
    assert consecutive_outside([9, 9], [up, down], Relation.BELOW) == 1
    with pytest.raises(ValueError):
        consecutive_outside([1.0], [up], Relation.INSIDE)


def test_to_cents():
    assert str(to_cents(101.005)) == "101.00"  # 101.005 is 101.00499... in binary
    assert str(to_cents(1.235)) == "1.24"
    with pytest.raises(ValueError):
        to_cents(float("nan"))
