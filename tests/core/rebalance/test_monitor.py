"""Triggers in the running executor: each one that fires stores a proposed plan with the
trigger recorded; just below its threshold nothing is proposed; an open plan from a trigger
stops it proposing another."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal
from pathlib import Path

import pytest

from core.domain import CommandStatus, Side
from core.rebalance.model import PlanStatus, RebalancePlan
from core.rebalance.monitor import TARGETS_KEY
from core.rebalance.runner import use_rebalancing
from tests.core.test_kill_switch_executor import World

D = Decimal


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, cash="100000")
    use_rebalancing(w.ex)
    w.tick()
    w.buy("AAA", 100)  # $10,000 at 100
    w.buy("BBB", 200)  # $10,000 at 50
    w.step()
    cid = w.command(
        "update_setting",
        {"key": TARGETS_KEY, "value": {"kind": "weights", "values": {"AAA": "0.1", "BBB": "0.1"}}},
    )
    w.step()
    with w.store.unit_of_work(read_only=True) as uow:
        command = uow.commands.get(cid)
        assert command is not None and command.status is CommandStatus.APPLIED, command
        assert uow.positions.get("AAA").qty == 100  # type: ignore[union-attr]
    return w


def plans(w: World) -> list[RebalancePlan]:
    with w.store.unit_of_work(read_only=True) as uow:
        return uow.rebalance.recent()


def test_no_trigger_while_on_target(world: World) -> None:
    world.step(3)
    assert plans(world) == []


def test_drift_fires_above_five_percent_and_stays_quiet_below(world: World) -> None:
    # AAA at 105: weight 10,500 / 100,500 = 10.45%, 4.5% from its 10% target: quiet
    world.price("AAA", "105")
    world.step(2)
    assert plans(world) == []
    # AAA at 106: 10,600 / 100,600 = 10.54%, 5.4% from target: a drift plan for AAA only
    world.price("AAA", "106")
    world.step(2)
    (plan,) = plans(world)
    assert plan.trigger == "drift"
    assert plan.status is PlanStatus.PROPOSED
    assert plan.created_by == "trigger"
    assert plan.trigger_detail["symbols"] == ["AAA"]
    assert "AAA" in plan.trigger_detail["message"]
    assert [(t.symbol, t.side) for t in plan.trades] == [("AAA", Side.SELL)]
    # back to 10% of 100,600 at 106: 94 shares, so 6 are sold
    assert plan.trades[0].qty == D(6)
    # still proposed: the drift trigger does not propose a second plan
    world.step(3)
    assert len(plans(world)) == 1


def test_stop_loss_closes_the_position_and_stays_quiet_at_fifteen_percent(world: World) -> None:
    with world.store.unit_of_work(read_only=True) as uow:
        entry = uow.positions.get("AAA").avg_entry_price  # type: ignore[union-attr]
    # just inside 15% down: no stop-loss plan (drift does fire)
    world.price("AAA", str((entry * D("0.85")).quantize(D("0.0001"), rounding=ROUND_UP)))
    world.step(2)
    assert [p.trigger for p in plans(world)] == ["drift"]
    world.price("AAA", str((entry * D("0.85") - D("0.01")).quantize(D("0.01"))))
    world.step(2)
    stop = [p for p in plans(world) if p.trigger == "stop_loss"]
    assert len(stop) == 1
    (trade,) = stop[0].trades
    assert (trade.symbol, trade.side, trade.qty, trade.closes_position) == (
        "AAA",
        Side.SELL,
        D(100),
        True,
    )
