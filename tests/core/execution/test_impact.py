"""Pre-trade costs and the algorithm choice (seed 000 R2.2, R3.1): hand-worked numbers, and the
choice exactly at, just below and just above each threshold."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.brokers.commission import CommissionSchedule
from core.domain import Side, ValidationError
from core.execution import (
    AlgoChoice,
    Algorithm,
    CostEstimate,
    ExecutionConfig,
    choose_algorithm,
    estimate_cost,
    half_spread_bps,
    impact_bps,
    limit_price,
    participation_pct,
    passive_price,
    round_to_tick,
    tick_size,
)

CFG = ExecutionConfig()
ADV = D(100_000)
# A $50 stock quoted 49.99 / 50.01: half-spread 0.01 / 50.00 = 2 bps.
BID, ASK = D("49.99"), D("50.01")


# -- participation and impact -----------------------------------------------------------------


def test_participation_is_percent_of_adv() -> None:
    assert participation_pct(D(7_500), ADV) == D("7.5")
    assert participation_pct(D(1), D(400)) == D("0.25")


def test_impact_is_10_bps_per_percent_of_adv() -> None:
    assert impact_bps(D(1_000), ADV, CFG) == D(10)  # 1 % of ADV
    assert impact_bps(D(7_500), ADV, CFG) == D(75)  # 7.5 % of ADV
    steep = ExecutionConfig(impact_bps_per_pct_adv=D(15))
    assert impact_bps(D(2_000), ADV, steep) == D(30)  # 2 % x 15


@pytest.mark.parametrize("adv", [D(0), D(-5)])
def test_unknown_adv_is_refused(adv: D) -> None:
    with pytest.raises(ValidationError, match="average daily volume must be positive"):
        participation_pct(D(100), adv)
    with pytest.raises(ValidationError, match="average daily volume must be positive"):
        impact_bps(D(100), adv, CFG)


def test_quantity_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="qty must be positive"):
        participation_pct(D(0), ADV)


# -- half-spread --------------------------------------------------------------------------------


def test_half_spread_from_the_mid() -> None:
    assert half_spread_bps(BID, ASK, CFG) == D(2)
    # 99.95 / 100.05: (0.10 / 2) / 100.00 = 5 bps
    assert half_spread_bps(D("99.95"), D("100.05"), CFG) == D(5)


@pytest.mark.parametrize(
    ("bid", "ask"),
    [
        (None, D("50.01")),  # missing
        (D("49.99"), None),
        (None, None),
        (D(0), D("50.01")),  # zero
        (D("50.02"), D("50.01")),  # crossed
        (D("50.00"), D("50.00")),  # locked
    ],
)
def test_unusable_quote_uses_the_default(bid: D | None, ask: D | None) -> None:
    assert half_spread_bps(bid, ask, CFG) == D(2)
    assert half_spread_bps(bid, ask, ExecutionConfig(default_half_spread_bps=D(3))) == D(3)


# -- cost estimate ------------------------------------------------------------------------------


def test_cost_estimate_hand_worked() -> None:
    # 1,000 shares at $50 = $50,000; 1 % of ADV -> 10 bps impact = $50; 2 bps spread = $10;
    # $0.005 a share = $5. Total $65 = 13 bps.
    est = estimate_cost(
        D(1_000),
        D(50),
        ADV,
        bid=BID,
        ask=ASK,
        commission=CommissionSchedule.per_share("0.005", minimum="1"),
        config=CFG,
    )
    assert est == CostEstimate(
        notional=D("50000.00"), commission=D("5.00"), spread_cost=D("10.00"), impact_cost=D("50.00")
    )
    assert est.total == D("65.00")
    assert est.bps == D("13.00")


def test_cost_estimate_rounds_dollars_to_the_cent_half_up() -> None:
    # 3 x 33.333 = 99.999 -> $100.00; spread 2 bps (default) = 0.0199998 -> 0.02;
    # 3 shares of ADV 1,000 = 0.3 % -> 3 bps = 0.0299997 -> 0.03; total 0.05 = 5 bps.
    est = estimate_cost(D(3), D("33.333"), D(1_000), commission=None, config=CFG)
    assert (est.notional, est.spread_cost, est.impact_cost) == (D("100.00"), D("0.02"), D("0.03"))
    assert est.commission == D(0)
    assert est.bps == D("5.00")


def test_cost_estimate_applies_the_commission_minimum() -> None:
    # 100 x $50 = $5,000; 0.1 % = $5.00, below the $10 minimum for one order.
    est = estimate_cost(
        D(100),
        D(50),
        ADV,
        commission=CommissionSchedule.percent_of_notional("0.1", minimum="10"),
        config=CFG,
    )
    assert est.commission == D("10.00")
    # spread 2 bps = $1.00, impact 0.1 % ADV = 1 bp = $0.50
    assert (est.spread_cost, est.impact_cost) == (D("1.00"), D("0.50"))
    assert est.bps == D("23.00")  # 11.50 / 5,000


def test_zero_notional_costs_zero_bps() -> None:
    assert CostEstimate(D(0), D(0), D(0), D(0)).bps == D(0)


# -- the algorithm choice: ADV threshold --------------------------------------------------------


def test_exactly_at_the_adv_threshold_is_not_sliced() -> None:
    choice = choose_algorithm(D(5_000), D(50), ADV, config=CFG)  # exactly 5 % of ADV
    assert choice.algorithm is not Algorithm.TWAP
    assert choice.participation_pct == D(5)


def test_one_share_above_the_adv_threshold_is_sliced() -> None:
    choice = choose_algorithm(D(5_001), D(50), ADV, config=CFG)
    assert choice.algorithm is Algorithm.TWAP
    assert choice.participation_pct == D("5.001")
    assert choice.slices == 10


def test_twap_choice_hand_worked() -> None:
    # 7.5 % of ADV: 75 bps impact in one block, 7.5 bps when cut in ten; plus the 2 bps default.
    choice = choose_algorithm(D(7_500), D(50), ADV, config=CFG)
    assert choice == AlgoChoice(
        algorithm=Algorithm.TWAP,
        participation_pct=D("7.5"),
        expected_cost_bps=D("9.50"),
        reason="order is 7.5% of ADV (threshold 5%): TWAP over 10 slices every 60s",
        slices=10,
    )


def test_sliced_expected_cost_counts_a_commission_minimum_per_child() -> None:
    # Ten children of 750 at $50, $0.005 a share = $3.75 each, raised to the $5 minimum:
    # $50 on $375,000 = 1.3333 bps; 2 + 7.5 + 1.33 = 10.83.
    choice = choose_algorithm(
        D(7_500),
        D(50),
        ADV,
        config=CFG,
        commission=CommissionSchedule.per_share("0.005", minimum="5"),
    )
    assert choice.expected_cost_bps == D("10.83")


def test_lower_threshold_from_config() -> None:
    cfg = ExecutionConfig(adv_threshold_pct=D("2.5"))
    assert choose_algorithm(D(2_500), D(50), ADV, config=cfg).algorithm is Algorithm.LIMIT
    assert choose_algorithm(D(2_501), D(50), ADV, config=cfg).algorithm is Algorithm.TWAP


def test_vwap_when_configured_and_a_profile_exists() -> None:
    cfg = ExecutionConfig(slice_algorithm="vwap", slices=5)
    choice = choose_algorithm(D(6_000), D(50), ADV, config=cfg, volume_profile_available=True)
    assert choice.algorithm is Algorithm.VWAP
    assert choice.slices == 5
    assert choice.reason == (
        "order is 6% of ADV (threshold 5%): VWAP over 5 slices following the volume profile"
    )
    # 2 bps + 60 bps / 5 slices
    assert choice.expected_cost_bps == D("14.00")


def test_vwap_falls_back_to_twap_without_a_profile() -> None:
    cfg = ExecutionConfig(slice_algorithm="vwap")
    choice = choose_algorithm(D(6_000), D(50), ADV, config=cfg)
    assert choice.algorithm is Algorithm.TWAP
    assert choice.reason.endswith("TWAP over 10 slices every 60s (no volume profile for VWAP)")


def test_a_profile_alone_does_not_make_a_twap_config_use_vwap() -> None:
    choice = choose_algorithm(D(6_000), D(50), ADV, config=CFG, volume_profile_available=True)
    assert choice.algorithm is Algorithm.TWAP


def test_small_whole_share_order_gets_fewer_slices() -> None:
    # 3 shares of a 10-share ADV is 30 %: sliced, but only into three single shares.
    choice = choose_algorithm(D(3), D(50), D(10), config=CFG)
    assert (choice.algorithm, choice.slices) == (Algorithm.TWAP, 3)
    assert "over 3 slices" in choice.reason


# -- the algorithm choice: passive threshold ----------------------------------------------------


def test_cost_exactly_at_the_passive_threshold_goes_to_market() -> None:
    # 800 shares = 0.8 % of ADV = 8 bps impact, + 2 bps half-spread = 10 bps: not above 10.
    choice = choose_algorithm(D(800), D(50), ADV, bid=BID, ask=ASK, config=CFG)
    assert choice.algorithm is Algorithm.MARKET
    assert choice.expected_cost_bps == D("10.00")
    assert choice.reason == (
        "estimated cost 10 bps (half-spread 2 + impact 8) is within 10 bps: market order"
    )


def test_cost_just_below_the_passive_threshold_goes_to_market() -> None:
    choice = choose_algorithm(D(799), D(50), ADV, bid=BID, ask=ASK, config=CFG)
    assert choice.algorithm is Algorithm.MARKET
    assert choice.expected_cost_bps == D("9.99")


def test_cost_just_above_the_passive_threshold_goes_passive() -> None:
    # 801 shares: 8.01 + 2 = 10.01 bps > 10
    choice = choose_algorithm(D(801), D(50), ADV, bid=BID, ask=ASK, config=CFG)
    assert choice.algorithm is Algorithm.LIMIT
    assert choice.participation_pct == D("0.801")
    assert choice.reason == (
        "estimated cost 10.01 bps (half-spread 2 + impact 8.01) is above 10 bps: "
        "passive limit at the near touch"
    )
    # resting at the near touch pays neither spread nor impact
    assert choice.expected_cost_bps == D(0)


def test_a_wide_spread_alone_can_make_an_order_passive() -> None:
    # 99.90 / 100.10: half-spread 10 bps; 10 shares of ADV 100,000 = 0.1 bp impact.
    choice = choose_algorithm(D(10), D(100), ADV, bid=D("99.90"), ask=D("100.10"), config=CFG)
    assert choice.algorithm is Algorithm.LIMIT


def test_expected_cost_includes_commission_bps() -> None:
    fee = CommissionSchedule.per_share("0.005")
    # market: 800 x 0.005 = $4.00 on $40,000 = 1 bp; 10 + 1
    market = choose_algorithm(D(800), D(50), ADV, bid=BID, ask=ASK, config=CFG, commission=fee)
    assert market.expected_cost_bps == D("11.00")
    # passive: 801 x 0.005 = 4.005 -> $4.01 on $40,050 = 1.0012 bps
    passive = choose_algorithm(D(801), D(50), ADV, bid=BID, ask=ASK, config=CFG, commission=fee)
    assert passive.expected_cost_bps == D("1.00")


def test_choice_needs_a_positive_adv() -> None:
    with pytest.raises(ValidationError, match="average daily volume"):
        choose_algorithm(D(100), D(50), D(0), config=CFG)


# -- limit and passive prices -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "last", "buffer", "expected"),
    [
        (Side.BUY, D(100), D(10), D("100.10")),
        (Side.SELL, D(100), D(10), D("99.90")),
        (Side.BUY, D("50.03"), D(10), D("50.09")),  # 50.08003 rounds up
        (Side.SELL, D("50.03"), D(10), D("49.97")),  # 49.97997 rounds down
        (Side.BUY, D("0.5"), D(10), D("0.5005")),  # below $1 the tick is $0.0001
        (Side.SELL, D("0.51234"), D(10), D("0.5118")),  # 0.51182766 rounds down
        (Side.BUY, D("0.9995"), D(10), D("1.01")),  # 1.0004995 is on the cent grid
        (Side.BUY, D("42.17"), D(0), D("42.17")),
    ],
)
def test_limit_price_is_buffered_and_on_the_tick(
    side: Side, last: D, buffer: D, expected: D
) -> None:
    assert limit_price(side, last, buffer) == expected


def test_limit_price_refuses_bad_buffers() -> None:
    with pytest.raises(ValidationError, match="buffer_bps must not be negative"):
        limit_price(Side.BUY, D(100), D(-1))
    with pytest.raises(ValidationError, match="buffer_bps must be below 10000"):
        limit_price(Side.SELL, D(100), D(10_000))


@given(
    last=st.decimals(min_value=D("0.0001"), max_value=D(5_000), places=4),
    buffer=st.decimals(min_value=D(0), max_value=D(500), places=2),
    side=st.sampled_from(list(Side)),
)
def test_limit_price_properties(last: D, buffer: D, side: Side) -> None:
    price = limit_price(side, last, buffer)
    exact = last * (1 + side.sign * buffer / 10_000)
    assert price == price.quantize(tick_size(price))  # a price the brokers accept
    if side is Side.BUY:
        assert exact <= price < exact + tick_size(price)
    else:
        assert exact - tick_size(exact) < price <= exact or price == D("0.0001")


def test_round_to_tick() -> None:
    assert round_to_tick(D("12.341"), up=True) == D("12.35")
    assert round_to_tick(D("12.349"), up=False) == D("12.34")
    assert round_to_tick(D("0.12345"), up=False) == D("0.1234")
    assert round_to_tick(D("0.00001"), up=False) == D("0.0001")  # never below one tick


def test_passive_price_is_the_near_touch() -> None:
    assert passive_price(Side.BUY, BID, ASK, D(50)) == BID
    assert passive_price(Side.SELL, BID, ASK, D(50)) == ASK
    assert passive_price(Side.BUY, D(50), D(50), D("50.02")) == D(50)  # locked is still a touch


@pytest.mark.parametrize(
    ("bid", "ask"), [(None, None), (None, ASK), (BID, None), (D(0), ASK), (ASK, BID)]
)
def test_passive_price_without_a_usable_quote_is_last(bid: D | None, ask: D | None) -> None:
    assert passive_price(Side.BUY, bid, ask, D("50.02")) == D("50.02")
    assert passive_price(Side.SELL, bid, ask, D("50.02")) == D("50.02")
