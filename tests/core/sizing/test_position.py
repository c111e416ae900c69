"""PositionSizer (seed 001 TestPositionSizer): hand-computed sizes for each conviction band and
the single-name cap, entry order types and the scale-in split."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import OrderType, ValidationError
from core.risk import AGGRESSIVE, CONSERVATIVE
from core.sizing import (
    PositionSizer,
    conviction_multiplier,
    entry_order_type,
    scale_in_split,
)

EQUITY = D(100_000)


class TestHandComputed:
    """Aggressive: risk 5 % of 100,000 = 5,000; single-name cap 15 % = 15,000."""

    def test_high_conviction_full_size(self):
        # stop 40 below entry 100: 5,000 / 40 = 125 shares; cap 15,000 / 100 = 150
        r = PositionSizer().size(D(100), D(60), 80, EQUITY, D(100))
        assert r.qty == D(125)
        assert r.notional == D(12_500)
        assert r.risk_amount == D(5_000)
        assert r.stop_distance == D("0.4")
        assert r.raw_qty == D(125)
        assert r.conviction_multiplier == D(1)
        assert (r.cap_qty, r.capped) == (D(150), False)
        assert r.risk_at_stop == D(5_000)
        assert r.reason == (
            "risk 5,000.00 (5% of equity 100,000.00) over a stop distance of 40.00 (40% of entry)"
            " = 125 shares; x1 for conviction 80 = 125; 125 shares"
        )

    def test_medium_conviction_half_size_rounded_down(self):
        r = PositionSizer().size(D(100), D(60), 60, EQUITY, D(100))
        assert r.qty == D(62)  # 62.5 rounded down
        assert r.conviction_multiplier == D("0.5")
        assert r.risk_at_stop == D(2_480)

    def test_fractional_shares_on_request(self):
        r = PositionSizer(fractional=True).size(D(100), D(60), 60, EQUITY, D(100))
        assert r.qty == D("62.5")

    @pytest.mark.parametrize(
        ("conviction", "qty", "multiplier"),
        [(100, 125, "1"), (75, 125, "1"), (74, 62, "0.5"), (50, 62, "0.5"), (49, 0, "0")],
    )
    def test_conviction_band_edges(self, conviction, qty, multiplier):
        r = PositionSizer().size(D(100), D(60), conviction, EQUITY)
        assert (r.qty, r.conviction_multiplier) == (D(qty), D(multiplier))

    def test_below_50_is_no_trade(self):
        r = PositionSizer().size(D(100), D(98), 49, EQUITY)
        assert r.qty == 0 and not r.tradeable
        assert r.reason == "conviction 49 is below 50: no trade"

    def test_tight_stop_is_capped_by_single_name_exposure(self):
        # stop 2 below entry: 5,000 / 2 = 2,500 shares, capped at 15,000 / 100 = 150
        r = PositionSizer().size(D(100), D(98), 90, EQUITY, D(100))
        assert (r.qty, r.raw_qty, r.cap_qty, r.capped) == (D(150), D(2_500), D(150), True)
        assert r.stop_distance == D("0.02")
        assert r.reason.endswith(
            "capped at 150 by the 15% single-name limit (15,000.00 at 100.00); 150 shares"
        )

    def test_cap_uses_the_current_price(self):
        r = PositionSizer().size(D(100), D(98), 90, EQUITY, price=D(120))
        assert r.qty == D(125)  # 15,000 / 120
        assert r.notional == D(15_000)

    def test_cap_rounds_down(self):
        r = PositionSizer().size(D(70), D(69), 90, EQUITY)  # 15,000 / 70 = 214.28
        assert r.qty == D(214)

    def test_short_sizes_like_a_long(self):
        long_ = PositionSizer().size(D(100), D(60), 80, EQUITY)
        short = PositionSizer().size(D(100), D(140), 80, EQUITY)
        assert short.qty == long_.qty == D(125)

    def test_conservative_profile(self):
        # 1 % of 100,000 = 1,000 at risk; stop 5 below: 200 shares; cap 15,000 / 50 = 300
        r = PositionSizer(CONSERVATIVE).size(D(50), D(45), 80, EQUITY)
        assert (r.qty, r.capped) == (D(200), False)

    def test_size_worth_less_than_the_minimum_is_no_trade(self):
        profile = replace(AGGRESSIVE, min_position_value=D(500))
        r = PositionSizer(profile).size(D(100), D(60), 80, D(1_000))  # 1 share = 100
        assert r.qty == 0
        assert r.reason.endswith("worth 100.00, below the minimum position value 500.00: no trade")

    def test_stop_at_entry_or_no_equity_is_no_trade(self):
        assert PositionSizer().size(D(100), D(100), 80, EQUITY).reason == (
            "stop equals entry: no distance to size on"
        )
        assert PositionSizer().size(D(100), D(90), 80, D(0)).qty == 0

    def test_no_float_rounding(self):
        # 1/3 distances: 5,000 / (3 - 2) = 5,000 exactly, capped at 15,000 / 3 = 5,000
        r = PositionSizer().size(D(3), D(2), 80, EQUITY)
        assert r.qty == D(5_000) and not r.capped

    @pytest.mark.parametrize(
        ("kw", "message"),
        [
            ({"conviction": 101}, "conviction must be an integer from 0 to 100"),
            ({"conviction": True}, "conviction must be an integer"),
            ({"entry": D(0)}, "entry must be positive"),
            ({"stop": D(-1)}, "stop must be positive"),
            ({"price": D(0)}, "price must be positive"),
        ],
    )
    def test_bad_input(self, kw, message):
        args = {"entry": D(100), "stop": D(90), "conviction": 80, "equity": EQUITY} | kw
        with pytest.raises(ValidationError, match=message):
            PositionSizer().size(**args)


class TestEntryStrategies:
    @pytest.mark.parametrize(
        ("conviction", "volume", "expected"),
        [
            (100, True, OrderType.MARKET),
            (75, True, OrderType.MARKET),
            (75, False, OrderType.LIMIT),
            (74, True, OrderType.LIMIT),
            (50, False, OrderType.LIMIT),
            (49, True, None),
        ],
    )
    def test_entry_order_type(self, conviction, volume, expected):
        assert entry_order_type(conviction, volume) is expected

    def test_multiplier(self):
        assert [conviction_multiplier(c) for c in (0, 49, 50, 74, 75, 100)] == [
            D(0),
            D(0),
            D("0.5"),
            D("0.5"),
            D(1),
            D(1),
        ]

    @pytest.mark.parametrize(
        ("qty", "pct", "expected"),
        [
            (125, "0.5", (62, 63)),
            (150, "0.5", (75, 75)),
            (10, "0.3", (3, 7)),
            (1, "0.5", (1, 0)),
            (0, "0.5", (0, 0)),
            (7, "1", (7, 0)),
        ],
    )
    def test_scale_in_split(self, qty, pct, expected):
        first, rest = scale_in_split(D(qty), D(pct))
        assert (first, rest) == (D(expected[0]), D(expected[1]))

    def test_fractional_split(self):
        assert PositionSizer(fractional=True).scale_in_split(D(125)) == (D("62.5"), D("62.5"))

    def test_bad_split(self):
        with pytest.raises(ValidationError, match="initial_pct"):
            scale_in_split(D(10), D(0))
        with pytest.raises(ValidationError, match="qty must not be negative"):
            scale_in_split(D(-1))


price = st.decimals(min_value=D("0.50"), max_value=D(2_000), places=2)


@settings(max_examples=300, deadline=None)
@given(
    equity=st.decimals(min_value=D(0), max_value=D(5_000_000), places=2),
    entry=price,
    stop=price,
    mark=price,
    conviction=st.integers(0, 100),
    fractional=st.booleans(),
)
def test_size_never_exceeds_the_risk_budget_or_the_cap(
    equity, entry, stop, mark, conviction, fractional
):
    sizer = PositionSizer(fractional=fractional)
    r = sizer.size(entry, stop, conviction, equity, mark)
    assert r.qty >= 0
    assert r.qty % sizer.step == 0
    assert r.qty * abs(entry - stop) <= equity * D("0.05") * r.conviction_multiplier
    assert r.qty * mark <= equity * D("0.15")
    if r.qty > 0:
        assert r.notional >= AGGRESSIVE.min_position_value
        bigger = r.qty + sizer.step  # the largest size that fits: one step more breaks a limit
        assert bigger * abs(entry - stop) > equity * D(
            "0.05"
        ) * r.conviction_multiplier or bigger * mark > equity * D("0.15")
