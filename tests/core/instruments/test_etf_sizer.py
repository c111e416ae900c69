"""TestLeveragedETFSizer: leverage-adjusted sizing, holding limits, caps and zero reasons."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.domain import AccountState, ValidationError
from core.instruments.catalog import LEVERAGED_ETF_CATALOG
from core.instruments.config import InstrumentConfig
from core.instruments.etf_sizer import EtfSize, LeveragedETFSizer, default_conviction_multiplier
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentRouter
from tests.core.instruments.support import all_liquid, signal


def account(equity: str | int = 100_000) -> AccountState:
    return AccountState(equity=D(equity), cash=D(equity), buying_power=D(equity))


def qqq_long(conviction: int = 80, stop: str = "475"):
    return signal("QQQ", "long", "day", conviction, entry="500", stop=stop)


@pytest.fixture
def tqqq():
    return InstrumentRouter().select_etf("QQQ", "long", "day", all_liquid(LEVERAGED_ETF_CATALOG))


class TestLeveragedETFSizer:
    def test_formula_worked_example(self, tqqq) -> None:
        # equity 100k, 5% risk = $5,000; QQQ stop 5% below entry -> 15% on the 3x TQQQ at $80:
        # shares = 5000 / (80 * 0.15) = 416.67 -> 416 (cap raised so it does not bind)
        sizer = LeveragedETFSizer(max_single_etf_exposure=D("0.5"))
        size = sizer.calculate(qqq_long(), tqqq, account(), D(80))
        assert isinstance(size, EtfSize)
        assert size.ticker == "TQQQ"
        assert size.shares == D(416)
        assert size.notional == D(33_280)
        assert size.leverage == D(3)
        assert size.risk_amount == D(5000)
        assert size.etf_stop_distance == D("0.15")
        assert size.etf_stop_price == D("68.0000")
        assert size.max_hold_days == 5
        assert size.conviction_multiplier == D(1)
        assert not size.capped_by_exposure and size.reason is None
        assert size.underlying_exposure == D(99_840)
        assert size.max_loss_at_stop == D("4992.00")

    def test_dollar_risk_matches_the_unlevered_trade(self) -> None:
        sizer = LeveragedETFSizer(max_single_etf_exposure=1)
        sig = qqq_long(stop="450")  # 10% stop; equity 1M, risk $50,000
        unlevered = D(50_000) / (D(500) * D("0.10"))  # 1,000 shares of QQQ, $500,000
        funds = [("bull_qqq_3x", "80"), ("bull_energy_2x", "40"), ("bull_vix_1.5x", "25")]
        for key, price in funds:
            entry = LEVERAGED_ETF_CATALOG[key]
            fund = _fund(entry.ticker, entry.leverage)
            size = sizer.calculate(sig, fund, account(1_000_000), D(price))
            assert not size.capped_by_exposure
            assert size.max_loss_at_stop <= size.risk_amount
            assert size.risk_amount - size.max_loss_at_stop < D(price) * size.etf_stop_distance
            # the fund position is 1/leverage of the unlevered one, within one share
            target = unlevered * D(500) / entry.leverage
            assert abs(size.notional - target) <= D(price)

    def test_three_x_needs_a_third_of_the_exposure(self) -> None:
        sizer = LeveragedETFSizer(max_single_etf_exposure=1)
        wide = qqq_long(stop="450")  # 10% stop, risk $50,000
        one = sizer.calculate(wide, _fund("X1", 1), account(1_000_000), D(100))
        three = sizer.calculate(wide, _fund("X3", 3), account(1_000_000), D(100))
        assert one.shares == D(5000) and three.shares == D(1666)
        assert one.max_loss_at_stop == D(50_000) >= three.max_loss_at_stop

    def test_conviction_multiplier(self, tqqq) -> None:
        sizer = LeveragedETFSizer(max_single_etf_exposure=D("0.5"))
        half = sizer.calculate(qqq_long(conviction=60), tqqq, account(), D(80))
        assert half.conviction_multiplier == D("0.5") and half.shares == D(208)
        none = sizer.calculate(qqq_long(conviction=49), tqqq, account(), D(80))
        assert none.shares == 0 and "conviction 49 is too low" in none.reason
        assert [default_conviction_multiplier(c) for c in (100, 75, 74, 50, 49, 0)] == [
            1,
            1,
            D("0.5"),
            D("0.5"),
            0,
            0,
        ]
        custom = LeveragedETFSizer(
            max_single_etf_exposure=D("0.5"), conviction_multiplier=lambda c: D("0.25")
        )
        assert custom.calculate(qqq_long(), tqqq, account(), D(80)).shares == D(104)

    def test_exposure_cap(self, tqqq) -> None:
        size = LeveragedETFSizer().calculate(qqq_long(stop="495"), tqqq, account(), D(80))
        # raw 5000 / (80 * 0.03) = 2083 shares; 15% of 100k = $15,000 -> 187 shares
        assert size.shares == D(187) and size.capped_by_exposure
        assert size.notional == D(14_960) <= D(15_000)

    def test_short_signal_on_inverse_fund(self) -> None:
        router = InstrumentRouter()
        sqqq = router.select_etf("QQQ", "short", "day", all_liquid(LEVERAGED_ETF_CATALOG))
        sig = signal("QQQ", "short", "day", 80, entry="500", stop="505")
        size = LeveragedETFSizer().calculate(sig, sqqq, account(), D(20))
        assert size.ticker == "SQQQ"
        assert size.etf_stop_price == D("19.4000") < D(20)  # the fund position is long
        assert size.shares == D(750)  # 15% cap: 15,000 / 20

    def test_accepts_a_router_decision(self) -> None:
        d = InstrumentRouter().route(
            qqq_long(), InstrumentMode.LEVERAGED_ETF, all_liquid(LEVERAGED_ETF_CATALOG)
        )
        size = LeveragedETFSizer(max_single_etf_exposure=D("0.5")).calculate(
            qqq_long(), d, account(), D(80)
        )
        assert size.shares == D(416)

    def test_shares_are_whole_and_rounded_down(self, tqqq) -> None:
        sizer = LeveragedETFSizer(max_single_etf_exposure=1)
        for price in ("79.99", "80.01", "33.33", "101.7"):
            size = sizer.calculate(qqq_long(), tqqq, account(), D(price))
            exact = D(5000) / (D(price) * D("0.15"))
            assert size.shares == int(exact) and size.shares <= exact
            assert size.shares == size.shares.to_integral_value()

    def test_stop_too_wide_for_the_leverage(self, tqqq) -> None:
        size = LeveragedETFSizer().calculate(qqq_long(stop="300"), tqqq, account(), D(80))
        assert size.shares == 0 and size.notional == 0
        assert "40.00% stop on QQQ is 120.00% on the 3x fund TQQQ" in size.reason

    def test_zero_reasons(self, tqqq) -> None:
        sizer = LeveragedETFSizer()
        broke = sizer.calculate(qqq_long(), tqqq, account(0), D(80))
        assert broke.shares == 0 and "equity 0 is not positive" in broke.reason
        tiny = sizer.calculate(qqq_long(), tqqq, account(300), D(80))
        assert tiny.shares == 0
        assert "15% exposure cap buys less than one share of TQQQ at 80" in tiny.reason
        risk_bound = LeveragedETFSizer(max_single_etf_exposure=1, max_risk_per_trade=D("0.001"))
        small = risk_bound.calculate(qqq_long(), tqqq, account(10_000), D(80))
        assert small.shares == 0 and "risk budget of $10.00" in small.reason

    def test_bad_input_raises(self, tqqq) -> None:
        sizer = LeveragedETFSizer()
        with pytest.raises(ValidationError):
            sizer.calculate(qqq_long(), tqqq, account(), D(0))
        with pytest.raises(ValidationError):
            sizer.calculate(qqq_long(stop="500"), tqqq, account(), D(80))
        with pytest.raises(ValidationError):
            LeveragedETFSizer(max_risk_per_trade=D("1.5"))
        with pytest.raises(ValidationError):
            LeveragedETFSizer(max_single_etf_exposure=0)

    # -- holding limits (decay risk) -----------------------------------------------------------

    @pytest.mark.parametrize(
        ("leverage", "days"),
        [("3", 5), ("2", 10), ("1.5", 15), ("2.5", 5), ("1.75", 10), ("1", 15), ("0.5", 15)],
    )
    def test_max_hold_days(self, leverage: str, days: int) -> None:
        assert LeveragedETFSizer().max_hold_days(D(leverage)) == days

    def test_max_hold_days_from_config(self, tqqq) -> None:
        config = InstrumentConfig(max_etf_hold_days_3x=2, max_etf_hold_days_2x=4)
        sizer = LeveragedETFSizer(config)
        assert [sizer.max_hold_days(x) for x in (3, 2, D("1.5"))] == [2, 4, 15]
        assert sizer.calculate(qqq_long(), tqqq, account(), D(80)).max_hold_days == 2
        with pytest.raises(ValidationError):
            sizer.max_hold_days(0)

    def test_every_catalog_fund_has_a_holding_limit(self) -> None:
        sizer = LeveragedETFSizer()
        for entry in LEVERAGED_ETF_CATALOG.values():
            expected = {D(3): 5, D(2): 10, D("1.5"): 15}[entry.leverage]
            assert sizer.max_hold_days(entry.leverage) == expected


class _fund:
    """A minimal fund for the sizer: a ticker and a leverage."""

    def __init__(self, ticker: str, leverage: int | D) -> None:
        self.ticker = ticker
        self.leverage = D(leverage)
