"""Rebalance plans (with trades and history) and algorithm parents, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import IllegalTransition, Side
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.schedule import Slice
from core.rebalance.model import LegStatus, PlannedTrade, PlanStatus, RebalancePlan
from db.errors import RowNotFoundError
from db.store import SqlStore

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def _trade(seq: int, symbol: str, side: Side, qty: str, price: str) -> PlannedTrade:
    return PlannedTrade(
        seq=seq,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        ref_price=Decimal(price),
        limit_price=Decimal(price),
        current_qty=Decimal("10"),
        target_qty=Decimal("5"),
        current_weight=Decimal("0.123456789"),
        target_weight=Decimal("0.1"),
        est_commission=Decimal("1.25"),
        est_spread=Decimal("0.333"),
        est_impact=Decimal("0.01"),
        algorithm="limit",
        sector="Technology",
    )


def _plan() -> RebalancePlan:
    return RebalancePlan(
        trigger="drift",
        method="equal",
        equity=Decimal("100000.00"),
        current_weights={"AAPL": Decimal("0.123456789"), "MSFT": Decimal("0")},
        target_weights={"AAPL": Decimal("0.1"), "MSFT": Decimal("0.05")},
        trades=[
            _trade(1, "AAPL", Side.SELL, "5", "190.12"),
            _trade(2, "MSFT", Side.BUY, "12.5", "401.005"),
        ],
        created_at=T0,
        created_by="alice",
        price_tolerance_bps=Decimal("100"),
        expires_at=T0 + timedelta(hours=6),
        trigger_detail={"symbols": ["AAPL"]},
        notes=["max_single: AAPL capped"],
    )


def test_plan_round_trip_keeps_exact_numbers_and_trades(store: SqlStore) -> None:
    plan = _plan()
    with store.unit_of_work() as uow:
        plan_id = uow.rebalance.add(plan)
        uow.commit()
    assert plan.id == plan_id
    with store.unit_of_work(read_only=True) as uow:
        got = uow.rebalance.get(plan_id)
    assert got is not None
    assert got.status is PlanStatus.PROPOSED
    assert got.current_weights["AAPL"] == Decimal("0.123456789")
    assert [t.symbol for t in got.trades] == ["AAPL", "MSFT"]
    assert got.trades[1].qty == Decimal("12.5")
    assert got.trades[1].ref_price == Decimal("401.005")
    assert got.est_spread == Decimal("0.666")
    assert got.turnover == plan.turnover == Decimal("0.0596")  # (950.60 + 5012.5625) / 100000
    assert got.notes == ["max_single: AAPL capped"]
    assert got.trigger_detail == {"symbols": ["AAPL"]}
    assert got.expires_at == T0 + timedelta(hours=6)


def test_lifecycle_history_and_active_lists(store: SqlStore) -> None:
    plan = _plan()
    with store.unit_of_work() as uow:
        uow.rebalance.add(plan)
        plan.transition(PlanStatus.APPROVED, T0 + timedelta(minutes=1), "bob", "looks right")
        plan.trades[0].status = LegStatus.WORKING
        plan.trades[0].client_order_id = "ax-r1-1"
        uow.rebalance.update(plan)
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        assert [p.id for p in uow.rebalance.active()] == [plan.id]
        assert uow.rebalance.proposed() == []
        got = uow.rebalance.get(plan.id or 0)
    assert got is not None
    assert got.approved_by == "bob"
    assert got.approved_at == T0 + timedelta(minutes=1)
    assert [(e.from_status, e.to_status, e.by) for e in got.history] == [
        (PlanStatus.PROPOSED, PlanStatus.APPROVED, "bob")
    ]
    assert got.trades[0].status is LegStatus.WORKING
    assert got.trades[0].client_order_id == "ax-r1-1"
    with pytest.raises(IllegalTransition):
        got.transition(PlanStatus.PROPOSED, T0, "bob")


def test_recent_by_status_and_missing_plan(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        first, second = _plan(), _plan()
        uow.rebalance.add(first)
        uow.rebalance.add(second)
        second.transition(PlanStatus.EXPIRED, T0, "executor", "AAPL moved 2%")
        uow.rebalance.update(second)
        uow.commit()
        assert [p.id for p in uow.rebalance.recent()] == [second.id, first.id]
        expired = uow.rebalance.recent(status=PlanStatus.EXPIRED)
        assert [p.reason for p in expired] == ["AAPL moved 2%"]
        ghost = _plan()
        ghost.id = 999
        with pytest.raises(RowNotFoundError):
            uow.rebalance.update(ghost)


def test_algo_parent_round_trip_and_working_list(store: SqlStore) -> None:
    parent = ParentOrder(
        parent_id="ax-r1-2",
        symbol="MSFT",
        side=Side.BUY,
        qty=Decimal("300"),
        algorithm="twap",
        arrival_price=Decimal("401.00"),
        created_at=T0,
        schedule=[Slice(i, T0 + timedelta(minutes=i), Decimal("100")) for i in range(3)],
        expected_cost_bps=Decimal("12.5"),
        sector="Technology",
    )
    with store.unit_of_work() as uow:
        uow.rebalance.add(_plan())
        parent.plan_id = 1
        uow.algos.add(parent)
        uow.commit()
    parent.slices_sent = parent.slices_done = 3
    parent.filled_qty = Decimal("300")
    parent.avg_price = Decimal("401.2")
    parent.status = ParentStatus.FILLED
    parent.chase_price = Decimal("401.10")
    with store.unit_of_work() as uow:
        assert [p.parent_id for p in uow.algos.working()] == ["ax-r1-2"]
        uow.algos.update(parent)
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        got = uow.algos.get("ax-r1-2")
        assert uow.algos.working() == []
        assert [p.parent_id for p in uow.algos.for_plan(1)] == ["ax-r1-2"]
    assert got is not None
    assert got.slices_total == 3
    assert got.schedule[2].at == T0 + timedelta(minutes=2)
    assert got.avg_price == Decimal("401.2")
    assert got.chase_price == Decimal("401.10")
    assert got.status is ParentStatus.FILLED
    assert got.progress == Decimal(1)
