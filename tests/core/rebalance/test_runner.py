"""Rebalance plans on the executor, end to end: SQLite store, the real paper broker and a market
whose prices the test sets (``FixedMarket``), driven tick by tick on a manual clock.

Prices: AAA 100, BBB 50, CCC 20 (flat 1-minute bars of 100,000 shares, a 2-cent spread, ADV 5M
shares), 100,000 of cash, no commission. Positions are opened with resting limit orders at the
last price, so they fill at exactly that price and the account's equity stays 100,000.00.

Fill prices of the router's children (marketable limits, filled at submit by the paper broker at
the touch moved by its impact, ``qty / ADV * 100 * 10`` bps):

* sell 200 AAA: bid 99.99 less 0.04 bps = 99.98960004 -> 99.9896;
* buy 300 BBB: ask 50.01 plus 0.06 bps = 50.0103006 -> 50.0103;
* buy 500 CCC: ask 20.01 plus 0.10 bps = 20.0102001 -> 20.0102.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.brokers.paper import PaperConfig
from core.config import ExecutorConfig
from core.domain import CommandStatus, Order, OrderStatus, Side, TradeType
from core.execution.config import ExecutionConfig
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.tca import aggregate_tca
from core.executor import TradeExecutor
from core.marketdata.calendar import ManualClock
from core.rebalance.config import RebalanceConfig
from core.rebalance.model import LegStatus, PlanStatus, RebalancePlan, parent_order_id
from core.rebalance.runner import AUTONOMOUS, AUTONOMOUS_KEY, use_rebalancing
from core.service import RebalanceResult, TradingService
from db.engine import open_store
from tests.core.brokers.fixed_market import ONE_MINUTE, FixedMarket, at
from tests.core.test_kill_switch_executor import OPEN, PRICES, START, World, flat, run

D = Decimal
ACCOUNT = "k"


class Desk(World):
    """The kill-switch tests' world (store, fixed market, paper broker, command and read
    helpers) for rebalancing: an executor with the rebalance runner and the smart order router,
    the service facade over the same store, and average daily volumes set per symbol.

    The executor runs no signal pipeline (no signals here). Its wall clock is the market clock,
    so its heartbeat (which carries the account snapshot the service values the portfolio with)
    and the runner's review of proposed plans move with simulated time.
    """

    def __init__(
        self,
        path: Path,
        *,
        cash: str = "100000",
        adv: dict[str, int] | None = None,
        rebalance: RebalanceConfig | None = None,
        execution: ExecutionConfig | None = None,
    ) -> None:
        self.store = open_store(f"sqlite:///{path / 'r.db'}")
        self.clock = ManualClock(START)
        self.market = FixedMarket(
            self.clock,
            {s: flat(s, OPEN, p, 100_000) for s, p in PRICES.items()},
            adv={**{s: 5_000_000 for s in PRICES}, **(adv or {})},
            spread="0.02",
        )
        self.paper_config = PaperConfig(initial_cash=D(cash))
        self.paper = self.broker = self.new_paper_broker()
        self.rebalance = rebalance or RebalanceConfig()
        self.execution = execution or ExecutionConfig()
        self.ex = self.make_executor("first")
        self.service = TradingService(
            self.store,
            self.market,
            clock=self.clock,
            rebalance_config=self.rebalance,
            execution_config=self.execution,
            lease_name=ExecutorConfig(account=ACCOUNT).lease_name,
        )

    def make_executor(self, holder: str, broker: Any = None) -> TradeExecutor:
        ex = TradeExecutor(
            self.store,
            broker or self.broker,
            self.market,
            ExecutorConfig(account=ACCOUNT, reconcile_every_ticks=1000),
            clock=self.clock,
            wall_clock=self.clock,
            holder_id=holder,
        )
        use_rebalancing(ex, self.rebalance, self.execution)
        return ex

    # -- setting up ----------------------------------------------------------------------------
    def hold(self, **qty: int) -> None:
        """Open positions at exactly the last price: resting day limits at the last price fill
        on the next bar (its low touches them), without impact."""
        for symbol, n in qty.items():
            self.command(
                "manual_order",
                {
                    "symbol": symbol,
                    "side": "buy",
                    "qty": str(n),
                    "order_type": "limit",
                    "limit_price": PRICES[symbol],
                },
            )
        self.step(3)
        for symbol, n in qty.items():
            assert self.position_qty(symbol) == n

    def propose(self, weights: dict[str, str], by: str = "alice") -> RebalancePlan:
        plan = run(self.service.preview_rebalance({s: D(w) for s, w in weights.items()}))
        plan.created_by = by
        self.service.save_plan(plan)
        return plan

    # -- reading -------------------------------------------------------------------------------
    def plan(self, plan_id: int) -> RebalancePlan:
        plan, _ = self.service.plan(plan_id)
        assert plan is not None
        return plan

    def parents(self, plan_id: int) -> dict[str, ParentOrder]:
        _, parents = self.service.plan(plan_id)
        return {p.symbol: p for p in parents}

    def children(self, parent_id: str) -> list[Order]:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.orders.children(parent_id)


@pytest.fixture
def make_desk(tmp_path: Path) -> Iterator[Callable[..., Desk]]:
    made: list[Desk] = []

    def make(**kw: Any) -> Desk:
        d = Desk(tmp_path, **kw)
        d.tick()  # leader, first mark: 100,000 of equity
        d.step()  # the heartbeat publishes the account the service values the portfolio with
        made.append(d)
        return d

    yield make
    for d in made:
        d.store.engine.dispose()


@pytest.fixture
def desk(make_desk: Callable[..., Desk]) -> Desk:
    return make_desk()


def finish(d: Desk, plan_id: int, steps: int = 12) -> RebalancePlan:
    """Step minute by minute until the plan is over."""
    for _ in range(steps):
        plan = d.plan(plan_id)
        if plan.status.is_terminal:
            return plan
        d.step()
    raise AssertionError(f"plan {plan_id} still {d.plan(plan_id).status.value}")


def rebalance_orders(d: Desk) -> list[Order]:
    return sorted(
        (o for o in d.orders() if o.client_order_id.startswith("ax-r")),
        key=lambda o: o.client_order_id,
    )


TARGETS = {"AAA": "0.10", "BBB": "0.15", "CCC": "0.10"}


# ------------------------------------------------------------------------------- lifecycle
def test_a_plan_through_its_whole_life_on_the_paper_broker(desk: Desk):
    d = desk
    d.hold(AAA=300)  # 30,000 of AAA and 70,000 of cash
    assert run(d.service.calculate_nav()) == D(100_000)
    plan = d.propose(TARGETS)
    assert plan.id == 1
    # 10% of 100,000 at 100 is 100 AAA (sell 200), 15% at 50 is 300 BBB, 10% at 20 is 500 CCC;
    # limits 10 bps beyond the last price
    assert [(t.seq, t.symbol, t.side, t.qty, t.limit_price, t.algorithm) for t in plan.trades] == [
        (1, "AAA", Side.SELL, D(200), D("99.90"), "market"),
        (2, "BBB", Side.BUY, D(300), D("50.05"), "market"),
        (3, "CCC", Side.BUY, D(500), D("20.02"), "market"),
    ]
    # half-spreads of 1, 2 and 5 bps and impacts of 0.04, 0.06 and 0.10 bps on 20,000, 15,000
    # and 10,000
    assert [(t.est_spread, t.est_impact) for t in plan.trades] == [
        (D("2.00"), D("0.08")),
        (D("3.00"), D("0.09")),
        (D("5.00"), D("0.10")),
    ]
    stored = d.plan(1)
    assert stored.status is PlanStatus.PROPOSED and stored.turnover == D("0.45")
    d.step(2)
    assert d.plan(1).status is PlanStatus.PROPOSED  # nothing runs without an approval
    assert rebalance_orders(d) == []

    approve = d.service.approve_plan(1, "alice")
    d.step()  # the command is applied and execution starts in the same tick
    now = d.clock.now()
    command = d.get_command(approve)
    assert command.status is CommandStatus.APPLIED
    assert command.result == "plan 1 approved by alice: 3 trades"
    p = d.plan(1)
    assert p.status is PlanStatus.EXECUTING
    assert (p.approved_by, p.approved_at, p.started_at, p.autonomous) == ("alice", now, now, False)
    assert [(e.from_status, e.to_status, e.by, e.at) for e in p.history] == [
        (PlanStatus.PROPOSED, PlanStatus.APPROVED, "alice", now),
        (PlanStatus.APPROVED, PlanStatus.EXECUTING, "executor", now),
    ]
    # sells first: only the AAA sell is out
    assert [t.status for t in p.trades] == [LegStatus.WORKING, LegStatus.PENDING, LegStatus.PENDING]
    assert [o.client_order_id for o in rebalance_orders(d)] == ["ax-r1-1-1"]
    d.step()  # the sell's fill is in; its parent is done only once the router has seen it
    assert [o.symbol for o in rebalance_orders(d)] == ["AAA"]
    d.step()
    p = d.plan(1)
    assert [t.status for t in p.trades] == [LegStatus.FILLED, LegStatus.WORKING, LegStatus.WORKING]
    (sell_fill,) = d.fills("ax-r1-1-1")
    buys = [o for o in rebalance_orders(d) if o.request.side is Side.BUY]
    assert [o.client_order_id for o in buys] == ["ax-r1-2-1", "ax-r1-3-1"]
    assert all(o.created_at > sell_fill.at for o in buys)

    done = finish(d, 1)
    assert done.status is PlanStatus.COMPLETED and done.reason == "every trade filled"
    assert done.finished_at == d.clock.now()
    assert [(t.status, t.filled_qty, t.avg_price, t.client_order_id) for t in done.trades] == [
        (LegStatus.FILLED, D(200), D("99.9896"), "ax-r1-1"),
        (LegStatus.FILLED, D(300), D("50.0103"), "ax-r1-2"),
        (LegStatus.FILLED, D(500), D("20.0102"), "ax-r1-3"),
    ]
    assert [d.position_qty(s) for s in ("AAA", "BBB", "CCC")] == [D(100), D(300), D(500)]
    parents = d.parents(1)
    for trade in done.trades:
        parent = parents[trade.symbol]
        assert parent.parent_id == parent_order_id(1, trade.seq) == trade.client_order_id
        assert parent.plan_id == 1 and parent.algorithm == "market"
        assert parent.status is ParentStatus.FILLED
        assert (parent.filled_qty, parent.avg_price) == (trade.qty, trade.avg_price)
        assert (parent.slices_done, parent.slices_total) == (1, 1)
        (child,) = d.children(parent.parent_id)
        assert child.client_order_id == f"{parent.parent_id}-1"
        assert child.parent_id == parent.parent_id
        assert (child.status, child.request.qty) == (OrderStatus.FILLED, trade.qty)
        assert child.request.limit_price == trade.limit_price  # the prices have not moved
    # the sell reduces the position: reduce-only
    assert [o.request.reduce_only for o in rebalance_orders(d)] == [True, False, False]


def test_tca_of_the_executed_parents(desk: Desk):
    d = desk
    d.hold(AAA=300)
    plan = d.propose(TARGETS)
    d.service.approve_plan(plan.id, "alice")
    assert finish(d, plan.id).status is PlanStatus.COMPLETED
    rows = {r.symbol: r for r in d.service.tca()}
    assert set(rows) == {"AAA", "BBB", "CCC"}
    # slippage against arrival is positive when it costs: the sell got 99.9896 for a 100 arrival
    # (1.04 bps), the buys paid 50.0103 for 50 (2.06 bps) and 20.0102 for 20 (5.10 bps). Against
    # the limits (99.90, 50.05, 20.02) they did better: negative.
    expected = {
        "AAA": ("ax-r1-1", Side.SELL, D(100), D("99.9896"), D("1.04"), D("-8.97")),
        "BBB": ("ax-r1-2", Side.BUY, D(50), D("50.0103"), D("2.06"), D("-7.93")),
        "CCC": ("ax-r1-3", Side.BUY, D(20), D("20.0102"), D("5.10"), D("-4.90")),
    }
    for symbol, (order_id, side, arrival, vwap, slippage, vs_limit) in expected.items():
        row = rows[symbol]
        assert (row.order_id, row.side, row.arrival_price, row.fill_vwap) == (
            order_id,
            side,
            arrival,
            vwap,
        )
        assert (row.slippage_bps, row.limit_slippage_bps) == (slippage, vs_limit)
        assert row.commission == 0 and row.actual_cost_bps == slippage
        # the paper broker fills at the touch plus the same linear impact the model expects
        assert row.expected_cost_bps == slippage
        assert (row.algorithm, row.strategy) == ("market", "rebalance:manual")
    (group,) = aggregate_tca(list(rows.values()), "strategy")
    assert (group.key, group.orders, group.filled_orders) == ("rebalance:manual", 3, 3)
    # 19,997.92 + 15,003.09 + 10,005.10 of notional
    assert group.filled_notional == D("45006.11")


# ------------------------------------------------------------------------------- expiry
def test_a_proposed_plan_expires_when_a_price_moves_past_the_tolerance(desk: Desk):
    d = desk
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0.10", "BBB": "0.15"})
    d.price("BBB", "50.50")  # +1.00%: at the tolerance, not past it
    d.step(2)
    assert d.plan(plan.id).status is PlanStatus.PROPOSED
    d.price("BBB", "50.60")  # +1.20%
    d.step()
    p = d.plan(plan.id)
    assert p.status is PlanStatus.EXPIRED
    assert p.reason == (
        "prices moved past the tolerance of 1.00% since the plan was built: BBB moved 1.20%"
    )
    assert (p.history[-1].by, p.finished_at) == ("executor", d.clock.now())
    assert rebalance_orders(d) == []


def test_a_proposed_plan_expires_when_it_is_older_than_its_limit(make_desk):
    d = make_desk(rebalance=RebalanceConfig(max_plan_age=timedelta(minutes=30)))
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0.10", "BBB": "0.15"})
    assert plan.created_at == at(20, 15, 4)
    assert plan.expires_at == at(20, 15, 34)
    d.clock.set(at(20, 15, 33, 50))
    d.tick()
    assert d.plan(plan.id).status is PlanStatus.PROPOSED
    d.clock.set(at(20, 15, 34))
    d.tick()
    p = d.plan(plan.id)
    assert p.status is PlanStatus.EXPIRED
    assert p.reason == "the plan is older than its limit (built 2026-11-20 15:04 UTC)"
    # an approval cannot bring it back
    approve = d.service.approve_plan(plan.id, "alice")
    d.step()
    assert d.get_command(approve).status is CommandStatus.REJECTED
    assert rebalance_orders(d) == []


def test_approving_a_stale_plan_is_rejected_and_the_plan_expires(desk: Desk):
    d = desk
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0.10", "BBB": "0.15"})
    d.price("AAA", "98")  # -2%
    d.clock.advance(ONE_MINUTE)  # the 98 bar is complete: the quote is 98 now
    first = d.service.approve_plan(plan.id, "alice")
    d.tick()  # commands come before the runner's own review of proposed plans
    moved = "prices moved past the tolerance of 1.00% since the plan was built: AAA moved 2.00%"
    command = d.get_command(first)
    assert command.status is CommandStatus.REJECTED
    assert command.result == f"plan {plan.id} expired: {moved}"
    p = d.plan(plan.id)
    assert (p.status, p.reason, p.approved_by) == (PlanStatus.EXPIRED, moved, None)
    assert [(e.to_status, e.by) for e in p.history] == [(PlanStatus.EXPIRED, "alice")]

    d.price("AAA", "100")  # back where it was: the plan stays expired
    d.step(2)
    again = d.service.approve_plan(plan.id, "alice")
    d.step()
    command = d.get_command(again)
    assert command.status is CommandStatus.REJECTED
    assert command.result == (
        f"plan {plan.id} is expired: {moved}; only a proposed plan can be approved"
    )
    assert d.plan(plan.id).status is PlanStatus.EXPIRED
    assert rebalance_orders(d) == []


# ------------------------------------------------------------------------------- autonomy
def test_plans_execute_without_approval_only_with_the_autonomous_opt_in(desk: Desk):
    d = desk
    d.hold(AAA=300)
    assert d.service.autonomous() is False
    plan = d.propose(TARGETS)
    d.step(3)
    assert d.plan(plan.id).status is PlanStatus.PROPOSED
    off = d.command("update_setting", {"key": AUTONOMOUS_KEY, "value": False}, by="bob")
    d.step(3)
    assert d.get_command(off).status is CommandStatus.APPLIED
    assert d.plan(plan.id).status is PlanStatus.PROPOSED
    assert rebalance_orders(d) == []

    on = d.command("update_setting", {"key": AUTONOMOUS_KEY, "value": True}, by="bob")
    d.step()
    assert d.get_command(on).status is CommandStatus.APPLIED
    assert d.service.autonomous() is True
    p = d.plan(plan.id)
    assert p.status is PlanStatus.EXECUTING
    assert (p.approved_by, p.autonomous) == (AUTONOMOUS, True)
    assert [(e.to_status, e.by) for e in p.history] == [
        (PlanStatus.APPROVED, AUTONOMOUS),
        (PlanStatus.EXECUTING, "executor"),
    ]
    assert finish(d, plan.id).status is PlanStatus.COMPLETED
    # who switched it on is kept with the setting
    assert [(h.value, h.updated_by) for h in d.history(AUTONOMOUS_KEY)] == [
        (False, "bob"),
        (True, "bob"),
    ]


# ------------------------------------------------------------------------------- kill switch
def test_kill_switch_skips_pending_buys_while_sells_keep_working(make_desk):
    # AAA trades 10,000 shares a day: selling 200 (2%) costs an estimated 21 bps at market, so
    # the sell rests as a passive limit at the ask (100.01) and is chased toward the bid
    d = make_desk(adv={"AAA": 10_000})
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0.10", "BBB": "0.15"})
    assert [(t.symbol, t.algorithm) for t in plan.trades] == [("AAA", "limit"), ("BBB", "market")]
    d.service.approve_plan(plan.id, "alice")
    d.step()
    (resting,) = rebalance_orders(d)
    assert (resting.request.limit_price, resting.status) == (D("100.01"), OrderStatus.ACCEPTED)

    on = d.command("kill_switch_on", {"reason": "news"}, by="carol")
    d.step()
    assert d.get_command(on).status is CommandStatus.APPLIED
    assert d.order(resting.client_order_id).status is OrderStatus.ACCEPTED  # an exit: kept
    done = finish(d, plan.id)
    sell, buy = done.trades
    # the chase moved the sell to the bid (99.99), where it filled
    assert (sell.status, sell.filled_qty, sell.avg_price) == (LegStatus.FILLED, D(200), D("99.99"))
    assert [o.request.limit_price for o in d.children("ax-r1-1")] == [D("100.01"), D("99.99")]
    assert buy.status is LegStatus.SKIPPED
    assert buy.reason == "kill switch on (news): buy not started"
    assert done.status is PlanStatus.PARTIALLY_COMPLETED
    assert done.reason == "1 of 2 trades filled in full"
    assert (d.position_qty("AAA"), d.position_qty("BBB")) == (D(100), D(0))
    assert [o.symbol for o in rebalance_orders(d)] == ["AAA", "AAA"]


def test_kill_switch_stops_a_working_buy(make_desk):
    # BBB trades 10,000 shares a day: buying 300 (3%) rests as a passive limit at the bid
    d = make_desk(adv={"BBB": 10_000})
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0.10", "BBB": "0.15"})
    d.service.approve_plan(plan.id, "alice")
    d.step(3)  # the sell filled; the buy went out
    p = d.plan(plan.id)
    assert [t.status for t in p.trades] == [LegStatus.FILLED, LegStatus.WORKING]
    (buy_child,) = d.children("ax-r1-2")
    assert (buy_child.request.limit_price, buy_child.status) == (D("49.99"), OrderStatus.ACCEPTED)

    d.command("kill_switch_on", {"reason": "news"}, by="carol")
    done = finish(d, plan.id)
    assert d.order(buy_child.client_order_id).status is OrderStatus.CANCELLED
    assert d.parents(plan.id)["BBB"].status is ParentStatus.CANCELLED
    sell, buy = done.trades
    assert sell.status is LegStatus.FILLED
    assert (buy.status, buy.filled_qty, buy.reason) == (
        LegStatus.FAILED,
        D(0),
        "kill switch on: no new risk",
    )
    assert done.status is PlanStatus.PARTIALLY_COMPLETED
    assert len(d.children("ax-r1-2")) == 1  # nothing new went out
    assert d.position_qty("BBB") == 0


# ------------------------------------------------------------------------------- positions
def test_a_sell_never_sells_more_than_the_position_held_now(desk: Desk):
    d = desk
    d.hold(AAA=300, BBB=400)
    plan = d.propose({"BBB": "0.10"})  # AAA is not in the targets; BBB 400 -> 200
    assert [(t.symbol, t.qty, t.closes_position) for t in plan.trades] == [
        ("AAA", D(300), True),
        ("BBB", D(200), False),
    ]
    # a person sells part of both positions before the plan is approved
    d.sell_reducing("AAA", 120)
    d.sell_reducing("BBB", 250)
    d.step()
    assert (d.position_qty("AAA"), d.position_qty("BBB")) == (D(180), D(150))
    d.service.approve_plan(plan.id, "alice")
    done = finish(d, plan.id)
    aaa, bbb = done.trades
    assert (aaa.status, aaa.filled_qty) == (LegStatus.FILLED, D(180))
    assert aaa.reason == "sells the 180 shares held now (planned 300)"
    assert (bbb.status, bbb.filled_qty) == (LegStatus.FILLED, D(150))
    assert bbb.reason == "sells the 150 shares held now (planned 200)"
    assert done.status is PlanStatus.COMPLETED
    # flat, never short
    assert (d.position_qty("AAA"), d.position_qty("BBB")) == (D(0), D(0))
    assert [(o.request.qty, o.request.reduce_only) for o in rebalance_orders(d)] == [
        (D(180), True),
        (D(150), True),
    ]


def test_a_sell_with_no_position_left_is_skipped_and_the_plan_fails(desk: Desk):
    d = desk
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0"})
    d.sell_reducing("AAA", 300)
    d.step()
    d.service.approve_plan(plan.id, "alice")
    done = finish(d, plan.id)
    (trade,) = done.trades
    assert (trade.status, trade.reason) == (LegStatus.SKIPPED, "no AAA position left to sell")
    assert done.status is PlanStatus.FAILED
    assert done.reason == "no trade filled: no AAA position left to sell"
    assert rebalance_orders(d) == []


# ------------------------------------------------------------------------------- cancel
def test_cancel_a_proposed_plan_but_not_an_executing_one(desk: Desk):
    d = desk
    d.hold(AAA=300)
    first = d.propose(TARGETS)
    cancel = d.service.cancel_plan(first.id, "alice", "waiting for earnings")
    d.step()
    command = d.get_command(cancel)
    assert (command.status, command.result) == (CommandStatus.APPLIED, "plan 1 cancelled by alice")
    p = d.plan(first.id)
    assert (p.status, p.reason) == (PlanStatus.CANCELLED, "waiting for earnings")
    assert [(e.to_status, e.by) for e in p.history] == [(PlanStatus.CANCELLED, "alice")]
    approve = d.service.approve_plan(first.id, "bob")
    d.step()
    assert d.get_command(approve).result == (
        "plan 1 is cancelled: waiting for earnings; only a proposed plan can be approved"
    )

    second = d.propose(TARGETS)
    d.service.approve_plan(second.id, "alice")
    d.step()
    assert d.plan(second.id).status is PlanStatus.EXECUTING
    cancel = d.service.cancel_plan(second.id, "alice")
    d.step()
    command = d.get_command(cancel)
    assert command.status is CommandStatus.REJECTED
    assert command.result == (
        "plan 2 is executing and cannot be cancelled; cancel its working orders from the order book"
    )
    assert finish(d, second.id).status is PlanStatus.COMPLETED


# ------------------------------------------------------------------------------- endings
def test_a_buy_the_broker_rejects_fails_and_the_plan_completes_partially(desk: Desk):
    d = desk
    plan = d.propose({"BBB": "0.15", "CCC": "0.10"})  # buy 300 BBB and 500 CCC
    assert [(t.symbol, t.qty) for t in plan.trades] == [("BBB", D(300)), ("CCC", D(500))]
    # the cash goes elsewhere before the plan is approved: 850 AAA at market
    d.buy("AAA", 850)
    d.step()
    d.service.approve_plan(plan.id, "alice")
    done = finish(d, plan.id)
    bbb, ccc = done.trades
    assert (bbb.status, bbb.filled_qty) == (LegStatus.FAILED, D(0))
    assert bbb.reason is not None
    assert bbb.reason.startswith(
        "child ax-r1-1-1 rejected: insufficient buying power: buy 300 BBB needs 15,015.00"
    )
    assert d.order("ax-r1-1-1").status is OrderStatus.REJECTED
    assert d.parents(plan.id)["BBB"].status is ParentStatus.FAILED
    assert (ccc.status, ccc.filled_qty) == (LegStatus.FILLED, D(500))
    assert done.status is PlanStatus.PARTIALLY_COMPLETED
    assert done.reason == "1 of 2 trades filled in full"


def test_a_plan_whose_only_trade_is_rejected_fails(desk: Desk):
    d = desk
    plan = d.propose({"BBB": "0.15"})
    d.buy("CCC", 4_300)  # 86,000 of CCC before the approval
    d.step()
    d.service.approve_plan(plan.id, "alice")
    done = finish(d, plan.id)
    (trade,) = done.trades
    assert trade.status is LegStatus.FAILED
    assert done.status is PlanStatus.FAILED
    assert done.reason == f"no trade filled: {trade.reason}"
    assert (trade.reason or "").startswith("child ax-r1-1-1 rejected: insufficient buying power")


def test_a_symbol_without_average_volume_is_worked_as_a_passive_limit(make_desk):
    d = make_desk(adv={"CCC": 0})
    plan = d.propose({"CCC": "0.10"})
    (trade,) = plan.trades
    assert (trade.algorithm, trade.qty) == ("limit", D(500))
    d.service.approve_plan(plan.id, "alice")
    done = finish(d, plan.id)
    assert done.status is PlanStatus.COMPLETED
    parent = d.parents(plan.id)["CCC"]
    assert parent.algorithm == "limit"
    # rests at the bid (19.99), one chase step of 5 bps of 20 later at 20.00 it fills on the bar
    assert [o.request.limit_price for o in d.children(parent.parent_id)] == [
        D("19.99"),
        D("20.00"),
    ]
    assert (parent.filled_qty, parent.avg_price) == (D(500), D("20.00"))


# ------------------------------------------------------------------------------- the facade
def test_rebalance_portfolio_stores_a_proposed_plan_or_sends_its_approval(desk: Desk):
    d = desk
    d.hold(AAA=300)
    result = run(d.service.rebalance_portfolio(TARGETS))
    assert result == RebalanceResult(
        plan_id=1,
        status=PlanStatus.PROPOSED,
        trades=3,
        est_cost=D("10.27"),  # 2.08 + 3.09 + 5.10
        turnover=D("0.45"),
        approval_command_id=None,
        message="plan 1 stored; it waits for approval",
    )
    stored = d.plan(1)
    assert (stored.status, stored.created_by, len(stored.trades)) == (
        PlanStatus.PROPOSED,
        "api",
        3,
    )
    d.step(2)
    assert d.plan(1).status is PlanStatus.PROPOSED

    approved = run(d.service.rebalance_portfolio(TARGETS, by="alice", approve=True))
    assert approved.plan_id == 2 and approved.approval_command_id is not None
    assert approved.message == (
        f"plan 2 stored; approval by alice sent (command {approved.approval_command_id})"
    )
    command = d.get_command(approved.approval_command_id)
    assert (command.type, command.payload, command.created_by, command.status) == (
        "approve_rebalance",
        {"plan_id": 2},
        "alice",
        CommandStatus.PENDING,
    )
    done = finish(d, 2)
    assert (done.status, done.approved_by) == (PlanStatus.COMPLETED, "alice")
    assert d.plan(1).status is PlanStatus.PROPOSED


def test_a_trade_the_router_cannot_start_fails_without_stopping_the_executor(make_desk):
    # plans in fractional shares, a router in whole shares: 10.01% of 100,000 at 20 is 500.5
    # CCC, 50% of its ADV, which the router would slice into whole shares
    d = make_desk(adv={"CCC": 1_000})
    d.service = TradingService(
        d.store,
        d.market,
        clock=d.clock,
        rebalance_config=RebalanceConfig(fractional=True),
        execution_config=ExecutionConfig(fractional=True),
        lease_name=ExecutorConfig(account=ACCOUNT).lease_name,
    )
    plan = d.propose({"BBB": "0.15", "CCC": "0.1001"})
    assert [(t.symbol, t.qty) for t in plan.trades] == [("BBB", D(300)), ("CCC", D("500.5"))]
    d.service.approve_plan(plan.id, "alice")
    done = finish(d, plan.id)
    bbb, ccc = done.trades
    assert (bbb.status, bbb.filled_qty) == (LegStatus.FILLED, D(300))
    assert ccc.status is LegStatus.FAILED
    assert ccc.reason == (
        "could not be started: qty 500.500000 is not a whole number of shares and fractional "
        "shares are disabled"
    )
    assert done.status is PlanStatus.PARTIALLY_COMPLETED
    assert d.ex.stats.errors == 0


def test_a_sliced_sell_stops_at_the_position_when_it_shrinks_while_it_works(make_desk):
    # AAA trades 10,000 shares a day: closing 600 (6%) is sliced, TWAP 10 x 60 a minute apart
    d = make_desk(adv={"AAA": 10_000})
    d.hold(AAA=600)
    plan = d.propose({"BBB": "0.10"})
    assert [(t.symbol, t.side, t.qty, t.algorithm) for t in plan.trades] == [
        ("AAA", Side.SELL, D(600), "twap"),
        ("BBB", Side.BUY, D(200), "market"),
    ]
    d.service.approve_plan(plan.id, "alice")
    d.step(3)  # three slices of 60 sold (the third one's fill comes in with the next tick)
    d.sell_reducing("AAA", 400)  # a person sells most of what is left
    done = finish(d, plan.id)
    sell, buy = done.trades
    # 180 by the first three slices, 400 by the person: 20 left, which the fourth slice sells
    assert [o.request.qty for o in d.children("ax-r1-1")] == [D(60), D(60), D(60), D(20)]
    assert (sell.status, sell.filled_qty) == (LegStatus.PARTIALLY_FILLED, D(200))
    assert sell.reason == "no AAA position left to sell"
    assert d.position_qty("AAA") == 0  # flat, never short
    assert (buy.status, buy.filled_qty) == (LegStatus.FILLED, D(200))
    assert done.status is PlanStatus.PARTIALLY_COMPLETED


def test_the_preview_names_the_algorithm_the_router_uses(make_desk):
    # AAA trades 10,000 shares a day: selling 200 of 300 (2%) rests as a limit, buying 300 BBB
    # (6%) is sliced, following the volume profile
    d = make_desk(
        adv={"AAA": 10_000, "BBB": 5_000}, execution=ExecutionConfig(slice_algorithm="vwap")
    )
    d.hold(AAA=300)
    plan = d.propose({"AAA": "0.10", "BBB": "0.15", "CCC": "0.10"})
    assert [(t.symbol, t.algorithm) for t in plan.trades] == [
        ("AAA", "limit"),
        ("BBB", "vwap"),
        ("CCC", "market"),
    ]
    assert plan.trades[1].reason == (
        "order is 6% of ADV (threshold 5%): VWAP over 10 slices following the volume profile"
    )
    d.service.approve_plan(plan.id, "alice")
    d.step(6)
    parents = d.parents(plan.id)
    assert {s: p.algorithm for s, p in parents.items()} == {
        "AAA": "limit",
        "BBB": "vwap",
        "CCC": "market",
    }


def test_rebalance_fills_are_journaled_as_holdings_not_day_trades(desk: Desk):
    d = desk
    d.hold(AAA=300)
    plan = d.propose(TARGETS)
    d.service.approve_plan(plan.id, "alice")
    finish(d, plan.id)
    with d.store.unit_of_work(read_only=True) as uow:
        bbb = uow.journal.open_trade_for("BBB")
    assert bbb is not None
    # a holding: the kill switch's day-trade closes and the end-of-day exit leave it alone
    assert (bbb.trade_type, bbb.trigger, bbb.strategy) == (
        TradeType.SWING,
        "rebalance",
        "rebalance",
    )
    assert bbb.order_id == "ax-r1-2-1" and bbb.notes == "rebalance order ax-r1-2-1"
