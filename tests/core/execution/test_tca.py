"""Transaction cost analysis: per-order numbers for buys and sells (positive bps is a cost),
notional-weighted groups by every key, and a sliced parent's progress."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import Side, ValidationError
from core.execution import (
    ExecutionRecord,
    FillRecord,
    OrderTca,
    ParentProgress,
    TcaGroup,
    aggregate_children,
    aggregate_tca,
    order_tca,
    signed_bps,
)

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def fill(qty: str, price: str, commission: str = "0", minutes: int = 0) -> FillRecord:
    return FillRecord(D(qty), D(price), D(commission), T0 + timedelta(minutes=minutes))


def record(**changes: object) -> ExecutionRecord:
    base = ExecutionRecord(
        order_id="ax-s1-entry",
        symbol="AAPL",
        side=Side.BUY,
        qty=D(100),
        arrival_price=D(50),
        limit_price=D("50.10"),
        algorithm="twap",
        strategy="ema_cloud",
        sector="tech",
        regime="bull",
        expected_cost_bps=D(7),
        fills=(fill("60", "50.02", "0.30"), fill("40", "50.07", "0.20", minutes=1)),
    )
    return replace(base, **changes)


# -- per order ----------------------------------------------------------------------------------


def test_buy_order_hand_worked() -> None:
    # 60 x 50.02 + 40 x 50.07 = 3001.20 + 2002.80 = 5004.00 -> VWAP 50.04
    # slippage (50.04 - 50) / 50 = 8 bps; against the limit (50.04 - 50.10) / 50.10 = -11.976
    # commission 0.50 / 5004 = 0.9992 bps -> 1.00; actual 8 + 1 = 9
    assert order_tca(record()) == OrderTca(
        order_id="ax-s1-entry",
        symbol="AAPL",
        side=Side.BUY,
        algorithm="twap",
        strategy="ema_cloud",
        sector="tech",
        regime="bull",
        qty=D(100),
        filled_qty=D(100),
        notional=D("5004.00"),
        arrival_price=D(50),
        fill_vwap=D("50.04"),
        slippage_bps=D("8.00"),
        limit_slippage_bps=D("-11.98"),
        commission=D("0.50"),
        commission_bps=D("1.00"),
        actual_cost_bps=D("9.00"),
        expected_cost_bps=D(7),
    )


def test_sell_order_hand_worked() -> None:
    # sold 200 at 19.97 against arrival 20.00: (20 - 19.97) / 20 = 15 bps of cost;
    # commission 1.00 / 3994 = 2.5038 bps -> 2.50; actual 17.50
    row = order_tca(
        record(
            side=Side.SELL,
            qty=D(200),
            arrival_price=D(20),
            limit_price=D("19.95"),
            fills=(fill("200", "19.97", "1.00"),),
        )
    )
    assert row.notional == D("3994.00")
    assert row.fill_vwap == D("19.97")
    assert row.slippage_bps == D("15.00")
    # sold 0.02 above the 19.95 limit: (19.95 - 19.97) / 19.95 = -10.025 bps (an improvement)
    assert row.limit_slippage_bps == D("-10.03")
    assert row.commission_bps == D("2.50")
    assert row.actual_cost_bps == D("17.50")


def test_price_improvement_is_negative_for_both_sides() -> None:
    buy = order_tca(record(fills=(fill("100", "49.95"),)))  # bought below arrival 50
    sell = order_tca(record(side=Side.SELL, fills=(fill("100", "50.05"),)))  # sold above
    assert buy.slippage_bps == D("-10.00")
    assert sell.slippage_bps == D("-10.00")
    assert buy.actual_cost_bps == D("-10.00")  # no commission


def test_unfilled_order_has_no_prices() -> None:
    row = order_tca(record(fills=()))
    assert (row.filled_qty, row.notional, row.commission) == (D(0), D(0), D(0))
    assert row.fill_vwap is None
    assert row.slippage_bps is None
    assert row.limit_slippage_bps is None
    assert row.commission_bps is None
    assert row.actual_cost_bps is None


def test_partial_fill_without_limit() -> None:
    row = order_tca(record(limit_price=None, fills=(fill("30", "50.015"),)))
    assert row.filled_qty == D(30)
    assert row.notional == D("1500.45")
    assert row.fill_vwap == D("50.015")
    assert row.slippage_bps == D("3.00")  # 0.015 / 50
    assert row.limit_slippage_bps is None


def test_vwap_is_rounded_but_bps_come_from_the_exact_vwap() -> None:
    # 1 @ 10.00 + 2 @ 10.01 -> VWAP 10.006666...; shown as 10.0067, slippage 6.666 -> 6.67 bps
    row = order_tca(
        record(
            qty=D(3),
            arrival_price=D(10),
            limit_price=None,
            fills=(fill("1", "10.00"), fill("2", "10.01")),
        )
    )
    assert row.fill_vwap == D("10.0067")
    assert row.slippage_bps == D("6.67")


def test_signed_bps() -> None:
    assert signed_bps(Side.BUY, D("100.25"), D(100)) == D(25)
    assert signed_bps(Side.SELL, D("100.25"), D(100)) == D(-25)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fills": (fill("101", "50"),)}, "fills of 101 exceed the order quantity 100"),
        ({"qty": D(0)}, "qty must be positive"),
        ({"arrival_price": D(0)}, "arrival_price must be positive"),
        ({"order_id": ""}, "order_id is required"),
        ({"fills": ("not a fill",)}, "fills must be FillRecord values"),
    ],
)
def test_bad_records_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        record(**changes)


def test_fill_validation() -> None:
    with pytest.raises(ValidationError, match="fill time must be timezone-aware"):
        FillRecord(D(1), D(10), D(0), datetime(2024, 3, 4, 15, 0))
    with pytest.raises(ValidationError, match="commission must not be negative"):
        FillRecord(D(1), D(10), D("-0.01"), T0)
    with pytest.raises(ValidationError, match="fill qty must be positive"):
        FillRecord(D(0), D(10), D(0), T0)


def test_missing_labels_become_unknown() -> None:
    rec = record(sector=None, regime="  ", fills=list(record().fills))  # type: ignore[arg-type]
    assert (rec.sector, rec.regime) == ("unknown", "unknown")
    assert isinstance(rec.fills, tuple)


# -- groups -------------------------------------------------------------------------------------


def _rows() -> list[OrderTca]:
    a = order_tca(record())  # ema_cloud/tech/bull/twap/AAPL: 5004.00, slip 8, actual 9, exp 7
    b = order_tca(  # ema_cloud/energy/bull/market/XOM: 3994.00, slip 15, actual 17.5, exp 10
        record(
            order_id="ax-s2-entry",
            symbol="XOM",
            side=Side.SELL,
            qty=D(200),
            arrival_price=D(20),
            limit_price=None,
            algorithm="market",
            sector="energy",
            expected_cost_bps=D(10),
            fills=(fill("200", "19.97", "1.00"),),
        )
    )
    c = order_tca(  # ema_cloud/tech/bear/limit/MSFT: never filled
        record(order_id="ax-s3-entry", symbol="MSFT", algorithm="limit", regime="bear", fills=())
    )
    d = order_tca(  # breakout/tech/bear/market/AAPL: 1000.00, slip -10, no estimate
        record(
            order_id="ax-s4-entry",
            qty=D(20),
            limit_price=None,
            algorithm="market",
            strategy="breakout",
            regime="bear",
            expected_cost_bps=None,
            fills=(fill("20", "49.95"),),
        )
    )
    return [a, b, c, d]


def test_group_by_strategy_hand_worked() -> None:
    groups = aggregate_tca(_rows(), "strategy")
    assert [g.key for g in groups] == ["breakout", "ema_cloud"]
    breakout, ema = groups
    # ema_cloud: a (5004.00) and b (3994.00) filled, c counted but not averaged; weight 8998
    # slippage (5004 x 8 + 3994 x 15) / 8998 = 99942 / 8998 = 11.107
    # expected (5004 x 7 + 3994 x 10) / 8998 = 74968 / 8998 = 8.3316
    # actual (5004 x 9 + 3994 x 17.5) / 8998 = 114931 / 8998 = 12.7729
    assert ema == TcaGroup(
        key="ema_cloud",
        orders=3,
        filled_notional=D("8998.00"),
        commission=D("1.50"),
        avg_slippage_bps=D("11.11"),
        expected_cost_bps=D("8.33"),
        actual_cost_bps=D("12.77"),
        filled_orders=2,
    )
    assert breakout == TcaGroup(
        key="breakout",
        orders=1,
        filled_notional=D("999.00"),
        commission=D(0),
        avg_slippage_bps=D("-10.00"),
        expected_cost_bps=None,  # no order carried an estimate
        actual_cost_bps=D("-10.00"),
        filled_orders=1,
    )


def test_group_by_sector() -> None:
    groups = {g.key: g for g in aggregate_tca(_rows(), "sector")}
    assert list(groups) == ["energy", "tech"]
    tech = groups["tech"]
    assert (tech.orders, tech.filled_orders) == (3, 2)
    # a (5004.00, slip 8) and d (999.00, slip -10): (40032 - 9990) / 6003 = 5.0045
    assert tech.avg_slippage_bps == D("5.00")
    assert tech.expected_cost_bps == D("7.00")  # only a has an estimate
    assert groups["energy"].avg_slippage_bps == D("15.00")


def test_group_by_regime() -> None:
    groups = {g.key: g for g in aggregate_tca(_rows(), "regime")}
    assert list(groups) == ["bear", "bull"]
    assert (groups["bear"].orders, groups["bear"].filled_orders) == (2, 1)
    assert groups["bear"].avg_slippage_bps == D("-10.00")
    assert groups["bull"].filled_notional == D("8998.00")


def test_group_by_algorithm() -> None:
    groups = {g.key: g for g in aggregate_tca(_rows(), "algorithm")}
    assert list(groups) == ["limit", "market", "twap"]
    limit = groups["limit"]
    assert (limit.orders, limit.filled_orders, limit.filled_notional) == (1, 0, D(0))
    assert limit.avg_slippage_bps is None
    assert limit.actual_cost_bps is None
    # market: b (3994.00, 15) and d (999.00, -10): (59910 - 9990) / 4993 = 9.998
    assert groups["market"].avg_slippage_bps == D("10.00")
    assert groups["twap"].actual_cost_bps == D("9.00")


def test_group_by_symbol() -> None:
    groups = {g.key: g for g in aggregate_tca(_rows(), "symbol")}
    assert list(groups) == ["AAPL", "MSFT", "XOM"]
    assert groups["AAPL"].orders == 2
    assert groups["AAPL"].filled_notional == D("6003.00")


def test_group_key_must_be_known() -> None:
    with pytest.raises(ValidationError, match="TCA can be grouped by strategy, sector"):
        aggregate_tca(_rows(), "trader")


def test_no_rows_no_groups() -> None:
    assert aggregate_tca([], "strategy") == []


# -- parent progress ----------------------------------------------------------------------------


def test_parent_progress_buy() -> None:
    # 300 @ 50.10 + 200 @ 50.00 = 15030 + 10000 = 25030 / 500 = 50.06; (50.06 - 50) / 50 = 12 bps
    progress = aggregate_children(
        Side.BUY, D(1_000), D(50), [(D(300), D("50.10")), (D(200), D(50)), (D(0), None)], 3, 10
    )
    assert progress == ParentProgress(
        qty=D(1_000),
        filled_qty=D(500),
        avg_price=D("50.06"),
        slices_done=3,
        slices_total=10,
        slippage_bps=D("12.00"),
    )
    assert progress.fraction == D("0.5")
    assert progress.remaining_qty == D(500)


def test_parent_progress_sell_sign() -> None:
    progress = aggregate_children(
        Side.SELL, D(1_000), D(50), [(D(300), D("50.10")), (D(200), D(50))], 2, 10
    )
    assert progress.slippage_bps == D("-12.00")  # sold above arrival: an improvement


def test_parent_progress_before_any_fill() -> None:
    progress = aggregate_children(Side.BUY, D(10), D(50), [(D(0), None)], 0, 5)
    assert (progress.filled_qty, progress.avg_price, progress.slippage_bps) == (D(0), None, None)
    assert progress.fraction == D(0)


@pytest.mark.parametrize(
    ("children", "done", "total", "message"),
    [
        ([(D(5), None)], 1, 2, "has no average price"),
        ([(D(8), D(50)), (D(3), D(50))], 2, 2, "children filled 11, more than the parent's 10"),
        ([(D(-1), D(50))], 1, 2, "must not be negative"),
        ([], 3, 2, "slices_done 3 exceeds slices_total 2"),
        ([], -1, 2, "slices_done must be a non-negative integer"),
    ],
)
def test_parent_progress_refuses_inconsistent_children(
    children: list, done: int, total: int, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        aggregate_children(Side.BUY, D(10), D(50), children, done, total)


@given(
    children=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=1_000).map(D),
            st.decimals(min_value=D(1), max_value=D(500), places=2),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_parent_average_lies_between_the_children(children: list[tuple[D, D]]) -> None:
    total = sum(q for q, _ in children)
    progress = aggregate_children(Side.BUY, total, D(100), children, len(children), len(children))
    prices = [p for _, p in children]
    assert progress.avg_price is not None
    assert min(prices) <= progress.avg_price <= max(prices)
    assert progress.fraction == 1
    assert progress.filled_qty == total
