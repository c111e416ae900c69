from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.domain import ValidationError
from core.marketdata.calendar import default_calendar
from core.options.occ import OptionContract, Right
from core.options.pricing import (
    DEFAULT_OPTION_MODEL,
    Greeks,
    OptionModelConfig,
    black_scholes,
    bs_greeks,
    implied_volatility,
    option_quote,
    realized_volatility,
    tick_size,
    time_to_expiry,
)

CAL = default_calendar()
CALL, PUT = Right.CALL, Right.PUT


# -- an independent price: the risk-neutral expectation integrated numerically ----------------


def integrated_price(s: float, k: float, t: float, r: float, vol: float, right: Right, q=0.0):
    """e^-rt E[payoff] under the lognormal law, by composite Simpson over the exercise region
    (where the payoff is smooth), with no use of the normal CDF."""
    sd = vol * math.sqrt(t)
    drift = (r - q - 0.5 * vol * vol) * t
    z_star = (math.log(k / s) - drift) / sd  # exercise boundary in standard normal units
    lo, hi = (z_star, 12.0) if right is CALL else (-12.0, z_star)
    lo, hi = max(lo, -12.0), min(hi, 12.0)
    if hi <= lo:
        return 0.0
    n = 20_000
    h = (hi - lo) / n

    def f(z: float) -> float:
        st_ = s * math.exp(drift + sd * z)
        payoff = st_ - k if right is CALL else k - st_
        return payoff * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    total = f(lo) + f(hi)
    total += 4 * math.fsum(f(lo + (2 * i - 1) * h) for i in range(1, n // 2 + 1))
    total += 2 * math.fsum(f(lo + 2 * i * h) for i in range(1, n // 2))
    return math.exp(-r * t) * total * h / 3


# -- textbook values (Hull, Options, Futures, and Other Derivatives) -----------------------


def test_hull_call_and_put_prices() -> None:
    # Hull: S=42, K=40, r=10 %, vol=20 %, T=0.5 -> call 4.76 (4.7594), put 0.81 (0.8086).
    assert black_scholes(42, 40, 0.5, 0.10, 0.20, CALL) == pytest.approx(4.7594, abs=1e-4)
    assert black_scholes(42, 40, 0.5, 0.10, 0.20, PUT) == pytest.approx(0.8086, abs=1e-4)
    assert black_scholes(42, 40, 0.5, 0.10, 0.20, CALL) == pytest.approx(
        integrated_price(42, 40, 0.5, 0.10, 0.20, CALL), abs=1e-9
    )
    assert black_scholes(42, 40, 0.5, 0.10, 0.20, PUT) == pytest.approx(
        integrated_price(42, 40, 0.5, 0.10, 0.20, PUT), abs=1e-9
    )


def test_hull_index_option_with_dividend_yield() -> None:
    # Hull: S=930, K=900, r=8 %, q=3 %, vol=20 %, T=2/12 -> call 51.83 (two decimals given).
    call = black_scholes(930, 900, 2 / 12, 0.08, 0.20, CALL, q=0.03)
    assert call == pytest.approx(51.83, abs=0.005)
    independent = integrated_price(930, 900, 2 / 12, 0.08, 0.20, CALL, 0.03)
    assert call == pytest.approx(independent, abs=1e-8)


def test_hull_greeks() -> None:
    # Hull: S=49, K=50, r=5 %, vol=20 %, T=20 weeks (0.3846): delta 0.522, gamma 0.066,
    # theta -4.31 a year (-0.0118 a day), vega 12.1 (0.121 a vol point), rho 8.91 (0.0891).
    g = bs_greeks(49, 50, 0.3846, 0.05, 0.20, CALL)
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)
    assert g.theta_annual == pytest.approx(-4.31, abs=5e-3)
    assert g.theta == pytest.approx(-4.31 / 365, abs=5e-5)
    assert g.vega == pytest.approx(0.121, abs=5e-4)
    assert g.rho == pytest.approx(0.0891, abs=5e-5)
    # The textbook rounds to three figures: check the rest against the integrated price.
    fd = finite_difference_greeks(integrated_price, 49, 50, 0.3846, 0.05, 0.20, CALL, 0.0)
    assert g.delta == pytest.approx(fd.delta, abs=1e-6)
    assert g.gamma == pytest.approx(fd.gamma, abs=1e-5)
    assert g.theta == pytest.approx(fd.theta, abs=1e-6)
    assert g.vega == pytest.approx(fd.vega, abs=1e-6)
    assert g.rho == pytest.approx(fd.rho, abs=1e-6)
    # and to 1e-4 at the figures they give
    assert (g.delta, g.gamma, g.vega, g.rho) == pytest.approx(
        (0.5216, 0.0655, 0.1211, 0.0891), abs=1e-4
    )
    assert g.theta_annual == pytest.approx(-4.3054, abs=1e-4)


def test_theta_units() -> None:
    g = bs_greeks(100, 100, 0.25, 0.03, 0.3, PUT)
    assert g.theta_annual == pytest.approx(g.theta * 365)
    one_day = black_scholes(100, 100, 0.25 - 1 / 365, 0.03, 0.3, PUT) - black_scholes(
        100, 100, 0.25, 0.03, 0.3, PUT
    )
    assert one_day == pytest.approx(g.theta, rel=1e-2)
    one_point = black_scholes(100, 100, 0.25, 0.03, 0.31, PUT) - black_scholes(
        100, 100, 0.25, 0.03, 0.30, PUT
    )
    assert one_point == pytest.approx(g.vega, rel=1e-2)


# -- edges --------------------------------------------------------------------------------


def test_expiry_and_zero_volatility() -> None:
    assert black_scholes(105, 100, 0, 0.05, 0.2, CALL) == 5
    assert black_scholes(95, 100, 0, 0.05, 0.2, CALL) == 0
    assert black_scholes(95, 100, -1, 0.05, 0.2, PUT) == 5
    assert black_scholes(Decimal("105.5"), Decimal(100), 0, 0.05, 0.2, "call") == 5.5
    # vol 0 and t > 0: the discounted forward's intrinsic value (parity still holds)
    assert black_scholes(105, 100, 1, 0.05, 0, CALL) == pytest.approx(105 - 100 * math.exp(-0.05))
    assert black_scholes(105, 100, 1, 0.05, 0, PUT) == 0
    assert black_scholes(100, 100, 1, 0.0, 0.0, CALL) == 0
    assert bs_greeks(105, 100, 0, 0.05, 0.2, CALL) == Greeks(1.0, 0.0, 0.0, 0.0, 0.0)
    assert bs_greeks(95, 100, 0, 0.05, 0.2, PUT) == Greeks(-1.0, 0.0, 0.0, 0.0, 0.0)
    assert bs_greeks(100, 100, 0, 0.05, 0.2, CALL).delta == 0
    g = bs_greeks(105, 100, 1, 0.05, 0, CALL)
    assert (g.delta, g.gamma, g.vega) == (1.0, 0.0, 0.0)
    assert g.theta_annual == pytest.approx(-0.05 * 100 * math.exp(-0.05))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValidationError, match="spot must be positive"):
        black_scholes(0, 100, 1, 0.05, 0.2, CALL)
    with pytest.raises(ValidationError, match="strike must be positive"):
        bs_greeks(100, -1, 1, 0.05, 0.2, CALL)
    with pytest.raises(ValidationError, match="finite"):
        black_scholes(100, 100, float("nan"), 0.05, 0.2, CALL)
    with pytest.raises(ValidationError, match="right"):
        black_scholes(100, 100, 1, 0.05, 0.2, "straddle")


def test_rights_are_read_from_words_and_letters() -> None:
    values = {black_scholes(100, 95, 1, 0.05, 0.2, r) for r in (CALL, "call", "C", "c", "CALL")}
    assert len(values) == 1


# -- properties -----------------------------------------------------------------------------

spots = st.floats(1.0, 5000.0)
moneyness = st.floats(0.2, 5.0)
times = st.floats(1e-4, 5.0)
vols = st.floats(0.01, 3.0)
rates = st.floats(-0.02, 0.15)
yields = st.floats(0.0, 0.10)


@settings(max_examples=400, deadline=None)
@given(spots, moneyness, times, vols, rates, yields)
def test_put_call_parity(s: float, m: float, t: float, vol: float, r: float, q: float) -> None:
    k = s * m
    call = black_scholes(s, k, t, r, vol, CALL, q)
    put = black_scholes(s, k, t, r, vol, PUT, q)
    forward = s * math.exp(-q * t) - k * math.exp(-r * t)
    assert abs((call - put) - forward) <= 1e-9 * max(s, k)
    assert call >= 0 and put >= 0


def finite_difference_greeks(price, s, k, t, r, vol, right, q) -> Greeks:
    """Central differences of ``price`` in the Greeks' units."""
    hs = s * 1e-3 * vol * math.sqrt(t)  # a small move against the distribution's width
    ht, hv, hr = min(1e-5, t / 4), 1e-5, 1e-5

    def p(**kw):
        args = {"s": s, "k": k, "t": t, "r": r, "vol": vol, "right": right, "q": q} | kw
        return price(args["s"], args["k"], args["t"], args["r"], args["vol"], right, args["q"])

    mid = p()
    up, down = p(s=s + hs), p(s=s - hs)
    return Greeks(
        delta=(up - down) / (2 * hs),
        gamma=(up - 2 * mid + down) / (hs * hs),
        theta=-(p(t=t + ht) - p(t=t - ht)) / (2 * ht) / 365,
        vega=(p(vol=vol + hv) - p(vol=vol - hv)) / (2 * hv) * 0.01,
        rho=(p(r=r + hr) - p(r=r - hr)) / (2 * hr) * 0.01,
    )


@settings(max_examples=200, deadline=None)
@given(
    st.floats(20.0, 1000.0),
    st.floats(0.7, 1.4),
    st.floats(0.02, 3.0),
    st.floats(0.05, 1.5),
    st.floats(-0.01, 0.1),
    st.floats(0.0, 0.06),
    st.sampled_from([CALL, PUT]),
)
def test_greeks_match_finite_differences(s, m, t, vol, r, q, right) -> None:
    k = s * m
    g = bs_greeks(s, k, t, r, vol, right, q)
    fd = finite_difference_greeks(black_scholes, s, k, t, r, vol, right, q)
    assert g.delta == pytest.approx(fd.delta, abs=1e-6)
    assert g.gamma == pytest.approx(fd.gamma, abs=1e-4 * max(1.0, g.gamma), rel=1e-3)
    assert g.theta == pytest.approx(fd.theta, abs=1e-7 * s)
    assert g.vega == pytest.approx(fd.vega, abs=1e-7 * s)
    assert g.rho == pytest.approx(fd.rho, abs=1e-7 * s)
    if right is CALL:
        assert 0 <= g.delta <= 1
    else:
        assert -1 <= g.delta <= 0
    assert g.gamma >= 0 and g.vega >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.floats(5.0, 2000.0),
    st.floats(0.5, 2.0),
    st.floats(1e-3, 3.0),
    st.floats(0.02, 2.5),
    st.floats(-0.01, 0.1),
    st.floats(0.0, 0.05),
    st.sampled_from([CALL, PUT]),
)
def test_implied_volatility_round_trips(s, m, t, vol, r, q, right) -> None:
    k = s * m
    price = black_scholes(s, k, t, r, vol, right, q)
    lower = black_scholes(s, k, t, r, 0.0, right, q)
    # Where the price is indistinguishable from its zero-vol value no vol can be recovered.
    assume(price - lower > 1e-9 * max(s, k))
    iv = implied_volatility(price, s, k, t, r, right, q)
    assert black_scholes(s, k, t, r, iv, right, q) == pytest.approx(price, abs=1e-10 * max(s, k))
    vega = bs_greeks(s, k, t, r, vol, right, q).vega
    if vega > 1e-4 * max(s, k) * 0.01:
        assert iv == pytest.approx(vol, abs=1e-6)


def test_implied_volatility_of_hull_prices() -> None:
    assert implied_volatility(4.7594, 42, 40, 0.5, 0.10, CALL) == pytest.approx(0.2, abs=1e-4)
    assert implied_volatility(Decimal("0.8086"), 42, 40, 0.5, 0.10, "P") == pytest.approx(
        0.2, abs=1e-4
    )


def test_implied_volatility_refuses_prices_no_vol_fits() -> None:
    with pytest.raises(ValidationError, match="no volatility fits"):
        implied_volatility(1.0, 42, 40, 0.5, 0.10, CALL)  # below the forward intrinsic 3.95
    with pytest.raises(ValidationError, match="no volatility fits"):
        implied_volatility(42.0, 42, 40, 0.5, 0.10, CALL)  # a call is worth less than the stock
    with pytest.raises(ValidationError, match="no volatility fits"):
        implied_volatility(40.0, 42, 40, 0.5, 0.10, PUT)  # a put less than the discounted strike
    with pytest.raises(ValidationError, match="no volatility fits"):
        implied_volatility(0.0, 42, 60, 0.5, 0.10, CALL)
    with pytest.raises(ValidationError, match="expiry"):
        implied_volatility(2.0, 42, 40, 0.0, 0.10, CALL)


# -- model inputs ---------------------------------------------------------------------------


def test_realized_volatility() -> None:
    steady = [Decimal(100) * Decimal("1.01") ** i for i in range(20)]
    assert realized_volatility(steady, 252) == pytest.approx(0.0, abs=1e-12)
    closes = [Decimal(100), Decimal(110), Decimal(100), Decimal(110)]
    returns = [math.log(1.1), math.log(1 / 1.1), math.log(1.1)]
    mean = sum(returns) / 3
    expected = math.sqrt(sum((x - mean) ** 2 for x in returns) / 2 * 252)
    assert realized_volatility(closes, 252) == pytest.approx(expected, rel=1e-12)
    assert realized_volatility(closes, 252 * 390) == pytest.approx(expected * math.sqrt(390))
    assert realized_volatility([Decimal(100), Decimal(101)], 252) is None
    assert realized_volatility([], 252) is None
    with pytest.raises(ValidationError, match="positive"):
        realized_volatility([Decimal(100), Decimal(0), Decimal(1)], 252)
    with pytest.raises(ValidationError, match="periods_per_year"):
        realized_volatility(closes, 0)


def test_time_to_expiry_runs_to_the_close_act_365() -> None:
    # Friday 2026-11-20 closes at 16:00 New York = 21:00 UTC.
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert time_to_expiry(now, date(2026, 11, 20), CAL) == pytest.approx(6 / (365 * 24))
    # Monday's expiry: 3 calendar days and 6 hours later.
    assert time_to_expiry(now, date(2026, 11, 23), CAL) == pytest.approx((3 * 24 + 6) / 8760)
    # Friday after Thanksgiving closes early, 13:00 New York = 18:00 UTC.
    early = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    assert time_to_expiry(early, date(2026, 11, 27), CAL) == pytest.approx(1 / 8760)
    assert time_to_expiry(datetime(2026, 11, 27, 18, 0, tzinfo=UTC), date(2026, 11, 27), CAL) == 0
    assert time_to_expiry(datetime(2026, 11, 27, 19, 0, tzinfo=UTC), date(2026, 11, 27), CAL) == 0
    with pytest.raises(ValidationError, match="not a XNYS session"):
        time_to_expiry(now, date(2026, 11, 26), CAL)
    with pytest.raises(ValueError, match="naive"):
        time_to_expiry(datetime(2026, 11, 20, 15, 0), date(2026, 11, 20), CAL)


# -- quote model ----------------------------------------------------------------------------


def test_option_model_config_validates() -> None:
    config = OptionModelConfig(rate=Decimal("0.05"), penny_underlyings=["spy"])
    assert config.rate == 0.05 and isinstance(config.rate, float)
    assert config.penny_underlyings == frozenset({"SPY"})
    assert DEFAULT_OPTION_MODEL.penny_underlyings == frozenset({"SPY", "QQQ", "IWM"})
    for bad in (
        {"vol_floor": 0},
        {"skew": -0.1},
        {"dividend_yield": -0.01},
        {"min_half_spread": Decimal("0.001")},
        {"spread_pct_of_premium": Decimal(-1)},
        {"rate": float("nan")},
        {"penny_underlyings": "SPY"},
    ):
        with pytest.raises(ValidationError):
            OptionModelConfig(**bad)


def test_implied_vol_of_the_model() -> None:
    config = OptionModelConfig(vol_floor=0.05, vol_premium=0.02, skew=0.10, fallback_vol=0.3)
    assert config.implied_vol(0.20, 100, 100) == pytest.approx(0.22)
    assert config.implied_vol(0.20, 100, 90) == pytest.approx(0.22 + 0.10 * math.log(100 / 90))
    assert config.implied_vol(0.20, 100, 110) == pytest.approx(0.22 + 0.10 * math.log(1.1))
    assert config.implied_vol(0.0, 100, 100) == pytest.approx(0.05)  # the floor
    assert config.implied_vol(None, 100, 100) == pytest.approx(0.32)  # the fallback


def test_tick_size() -> None:
    penny = DEFAULT_OPTION_MODEL.penny_underlyings
    assert tick_size("NVDA", Decimal("2.99"), penny) == Decimal("0.01")
    assert tick_size("NVDA", Decimal("3.00"), penny) == Decimal("0.05")
    assert tick_size("SPY", Decimal("30.00"), penny) == Decimal("0.01")


FRIDAY_11_ET = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


def _contract(underlying: str, strike: str, right: Right, expiry=date(2026, 11, 27)):
    return OptionContract(underlying, expiry, Decimal(strike), right)


def test_option_quote_fields_and_spread() -> None:
    q = option_quote(_contract("SPY", "580", CALL), Decimal("580.00"), FRIDAY_11_ET, 0.16, CAL)
    t = time_to_expiry(FRIDAY_11_ET, date(2026, 11, 27), CAL)
    theo = black_scholes(580, 580, t, 0.04, 0.16, CALL)
    assert q.theo == Decimal(repr(theo)).quantize(Decimal("0.0001"))
    assert q.iv == pytest.approx(0.16)
    assert q.greeks == bs_greeks(580, 580, t, 0.04, 0.16, CALL)
    assert q.bid < q.theo < q.ask
    half = max(Decimal("0.01"), Decimal("0.025") * q.theo / 2)
    assert q.bid == (q.theo - half).quantize(Decimal("0.01"), ROUND_FLOOR)
    assert q.ask == (q.theo + half).quantize(Decimal("0.01"), ROUND_CEILING)
    assert q.mid == (q.bid + q.ask) / 2 == q.last
    assert q.underlying_price == Decimal("580.00") and q.at == FRIDAY_11_ET
    assert q.symbol == "SPY261127C00580000"
    assert q.spread_pct == q.spread / q.mid
    assert q.open_interest is None and q.volume is None
    for value in (q.bid, q.ask, q.mid, q.theo):
        assert isinstance(value, Decimal)


def test_non_penny_underlyings_quote_in_nickels_from_three_dollars() -> None:
    q = option_quote(_contract("AAPL", "200", CALL), Decimal("230"), FRIDAY_11_ET, 0.28, CAL)
    assert q.theo > 3
    assert q.bid % Decimal("0.05") == 0 and q.ask % Decimal("0.05") == 0
    assert q.bid < q.theo < q.ask
    cheap = option_quote(_contract("AAPL", "240", CALL), Decimal("230"), FRIDAY_11_ET, 0.28, CAL)
    assert cheap.ask < 3 and cheap.bid % Decimal("0.01") == 0
    # SPY is quoted in pennies above $3 too
    spy = option_quote(_contract("SPY", "560", CALL), Decimal("580"), FRIDAY_11_ET, 0.16, CAL)
    assert spy.theo > 3
    half = Decimal("0.025") * spy.theo / 2
    assert spy.bid == (spy.theo - half).quantize(Decimal("0.01"), ROUND_FLOOR)
    assert spy.ask == (spy.theo + half).quantize(Decimal("0.01"), ROUND_CEILING)


def test_worthless_contract_is_bid_zero_offered_at_one_tick() -> None:
    q = option_quote(_contract("NVDA", "300", CALL), Decimal("140"), FRIDAY_11_ET, 0.5, CAL)
    assert q.theo == 0
    assert (q.bid, q.ask, q.mid) == (Decimal(0), Decimal("0.01"), Decimal("0.005"))
    # at the expiry close a contract is worth its intrinsic value
    close = CAL.session_close(date(2026, 11, 27))
    itm = option_quote(_contract("NVDA", "130", CALL), Decimal("140"), close, 0.5, CAL)
    assert itm.theo == 10 and itm.greeks.delta == 1
    assert itm.bid < 10 < itm.ask


def test_option_quote_refuses_bad_input() -> None:
    with pytest.raises(ValidationError, match="spot"):
        option_quote(_contract("SPY", "580", CALL), Decimal(0), FRIDAY_11_ET, 0.16, CAL)
    with pytest.raises(ValidationError, match="not a XNYS session"):
        holiday = _contract("SPY", "580", CALL, expiry=date(2026, 11, 26))
        option_quote(holiday, Decimal(580), FRIDAY_11_ET, 0.16, CAL)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["SPY", "NVDA", "AAPL"]),
    st.integers(50, 600),
    st.floats(0.5, 1.5),
    st.sampled_from([CALL, PUT]),
    st.floats(0.0, 1.2),
    st.integers(0, 6 * 24 * 60),
)
def test_quotes_are_on_ticks_and_ordered(underlying, spot, m, right, rv, minutes) -> None:
    strike = Decimal(round(spot * m))
    assume(strike > 0)
    now = FRIDAY_11_ET + timedelta(minutes=minutes)
    q = option_quote(_contract(underlying, str(strike), right), Decimal(spot), now, rv, CAL)
    assert 0 <= q.bid < q.ask
    assert q.ask >= Decimal("0.01")
    assert q.bid <= q.theo <= q.ask
    for price in (q.bid, q.ask):
        assert price % tick_size(underlying, price, DEFAULT_OPTION_MODEL.penny_underlyings) == 0
