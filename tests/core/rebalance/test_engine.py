"""The trade list: sells before buys, the minimum trade filter, limit buffers, full exits,
whole and fractional shares, cost estimates, and plan staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.brokers.commission import CommissionSchedule
from core.domain import Position, Quote, Side, ValidationError
from core.execution.config import ExecutionConfig
from core.rebalance.config import RebalanceConfig
from core.rebalance.engine import GIVEN_WEIGHTS, RebalanceEngine, price_moves, staleness
from core.rebalance.targets import TargetKind, build_targets
from core.risk.config import CONSERVATIVE

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
D = Decimal
BIG_ADV = D(100_000_000)


def pos(symbol: str, qty: str, price: str) -> Position:
    return Position(symbol, D(qty), D(price))


def engine(**kw: object) -> RebalanceEngine:
    return RebalanceEngine(RebalanceConfig(**kw))  # type: ignore[arg-type]


def test_sells_first_then_buys_and_absent_position_fully_sold() -> None:
    plan = engine().build_plan(
        weights={"AAPL": D("0.30"), "MSFT": D("0.50")},
        positions={
            "AAPL": pos("AAPL", "300", "100"),  # $30,000 = 30%: no change
            "MSFT": pos("MSFT", "100", "200"),  # $20,000 -> 50% = $50,000: buy 150
            "XOM": pos("XOM", "37", "100"),  # not in the targets: sell all 37
            "GE": pos("GE", "50", "100"),  # $5,000 -> 0% weight via absence: sell all
        },
        quotes={"AAPL": D("100"), "MSFT": D("200"), "XOM": D("110"), "GE": D("100")},
        adv={"AAPL": BIG_ADV, "MSFT": BIG_ADV, "XOM": BIG_ADV, "GE": BIG_ADV},
        equity=D("100000"),
        now=NOW,
    )
    assert [(t.seq, t.symbol, t.side, t.qty) for t in plan.trades] == [
        (1, "GE", Side.SELL, D(50)),
        (2, "XOM", Side.SELL, D(37)),
        (3, "MSFT", Side.BUY, D(150)),
    ]
    assert plan.trades[1].closes_position and plan.trades[1].target_qty == 0
    assert plan.trades[2].target_qty == D(250)
    assert plan.current_weights["XOM"] == D("0.040700")  # 37 x 110 / 100,000
    assert plan.method == GIVEN_WEIGHTS
    assert plan.expires_at == NOW + timedelta(hours=4)
    # (5,000 + 4,070 + 30,000) / 100,000
    assert plan.turnover == D("0.3907")


def test_limit_prices_are_last_plus_or_minus_ten_bps_on_the_tick() -> None:
    plan = engine().build_plan(
        weights={"AAA": D("0.5")},
        positions={"BBB": pos("BBB", "10", "50")},
        quotes={"AAA": D("123.45"), "BBB": D("50.00")},
        adv={"AAA": BIG_ADV, "BBB": BIG_ADV},
        equity=D("10000"),
        now=NOW,
    )
    sell, buy = plan.trades
    assert (sell.symbol, sell.limit_price) == ("BBB", D("49.95"))  # 50 x 0.999
    # 123.45 x 1.001 = 123.57345, rounded up to the cent
    assert (buy.symbol, buy.limit_price) == ("AAA", D("123.58"))
    assert buy.qty == D(40)  # 5,000 / 123.45 = 40.50 -> 40 whole shares


def test_min_trade_filter_leaves_small_adjustments_but_not_full_exits() -> None:
    plan = engine(min_trade_value=D(500)).build_plan(
        weights={"AAA": D("0.104"), "BBB": D("0.2")},
        positions={
            "AAA": pos("AAA", "100", "100"),  # 10.0% -> 10.4%: buy 4 x $100 = $400 < $500
            "BBB": pos("BBB", "100", "100"),  # 10% -> 20%: buy 100 ($10,000)
            "CCC": pos("CCC", "2", "100"),  # $200 but closing: sold anyway
        },
        quotes={"AAA": D(100), "BBB": D(100), "CCC": D(100)},
        adv={"AAA": BIG_ADV, "BBB": BIG_ADV, "CCC": BIG_ADV},
        equity=D("100000"),
        now=NOW,
    )
    assert [(t.symbol, t.side, t.qty) for t in plan.trades] == [
        ("CCC", Side.SELL, D(2)),
        ("BBB", Side.BUY, D(100)),
    ]
    assert any(
        "AAA: a trade of $400.00 is below the minimum trade size $500" in n for n in plan.notes
    )


def test_fractional_shares_when_the_broker_supports_them() -> None:
    whole = engine().build_plan(
        weights={"AAA": D("0.1")},
        positions={},
        quotes={"AAA": D("300")},
        adv={"AAA": BIG_ADV},
        equity=D("10000"),
        now=NOW,
    )
    frac = engine(fractional=True).build_plan(
        weights={"AAA": D("0.1")},
        positions={},
        quotes={"AAA": D("300")},
        adv={"AAA": BIG_ADV},
        equity=D("10000"),
        now=NOW,
    )
    assert whole.trades[0].qty == D(3)  # 1,000 / 300 = 3.33 -> 3
    assert frac.trades[0].qty == D("3.333333")


def test_costs_and_algorithm_choice_per_trade() -> None:
    eng = RebalanceEngine(
        RebalanceConfig(),
        ExecutionConfig(),
        commission=CommissionSchedule.per_share(D("0.005"), D("1.00")),
    )
    plan = eng.build_plan(
        weights={"BIG": D("0.5"), "SMALL": D("0.4")},
        positions={},
        quotes={
            "BIG": Quote("BIG", D("99.99"), D("100.01"), D("100"), NOW),
            "SMALL": Quote("SMALL", D("49.95"), D("50.05"), D("50"), NOW),
        },
        adv={"BIG": D(10_000), "SMALL": D(1_000_000)},
        equity=D("100000"),
        now=NOW,
    )
    big, small = plan.trades
    # BIG: 500 shares of 10,000 ADV = 5% -> not above the 5% threshold; impact 50 bps -> passive
    assert big.algorithm == "limit"
    assert big.est_impact == D("250.00")  # 50 bps x $50,000
    assert big.est_spread == D("5.00")  # 1 bps half-spread x $50,000
    assert big.est_commission == D("2.50")  # 500 x 0.005
    # SMALL: 800 shares of 1,000,000 = 0.08% -> 0.8 bps impact + 10 bps half-spread -> limit
    assert small.algorithm == "limit"
    assert small.est_spread == D("40.00")
    assert small.est_impact == D("3.20")
    assert small.est_commission == D("4.00")
    assert plan.est_cost == D("304.70")


def test_scores_go_through_an_allocation_method_and_constraints() -> None:
    eng = RebalanceEngine()
    targets = build_targets({"AAA": 3, "BBB": 1, "CCC": 0}, kind=TargetKind.SCORES)
    label, weights, notes = eng.target_weights(targets, profile=CONSERVATIVE, equity=D(100000))
    assert label == "score"
    assert weights["CCC"] == 0
    # raw 0.75 / 0.25; conservative profile caps each name and keeps a cash buffer
    assert weights["AAA"] <= CONSERVATIVE.max_single_exposure
    assert notes  # the cap's effect is reported
    label, weights, _ = eng.target_weights(
        targets, profile=CONSERVATIVE, equity=D(100000), method="equal"
    )
    assert label == "equal" and weights["AAA"] == weights["BBB"]


def test_weights_targets_reject_an_allocation_method_and_missing_prices() -> None:
    eng = RebalanceEngine()
    targets = build_targets({"AAA": "0.1"}, kind=TargetKind.WEIGHTS)
    with pytest.raises(ValidationError, match="applies to scores"):
        eng.target_weights(targets, profile=CONSERVATIVE, equity=D(1000), method="equal")
    with pytest.raises(ValidationError, match="no price for AAA"):
        eng.build_plan(
            weights={"AAA": D("0.1")}, positions={}, quotes={}, adv={}, equity=D(1000), now=NOW
        )


def test_staleness_by_price_move_and_age() -> None:
    plan = engine(price_tolerance_bps=D(100)).build_plan(
        weights={"AAA": D("0.5")},
        positions={},
        quotes={"AAA": D("100")},
        adv={"AAA": BIG_ADV},
        equity=D("10000"),
        now=NOW,
    )
    assert staleness(plan, {"AAA": D("101.00")}, NOW) is None  # exactly 1%: still fresh
    assert price_moves(plan, {"AAA": D("101.01")}) == [("AAA", D("101.00"))]
    why = staleness(plan, {"AAA": D("98.5")}, NOW)
    assert why is not None and "AAA moved 1.50%" in why
    assert "no price" in (staleness(plan, {}, NOW) or "")
    old = staleness(plan, {"AAA": D("100")}, NOW + timedelta(hours=4))
    assert old is not None and "older than its limit" in old
