"""The executor behind the order router (primary and fallback paper brokers whose connectivity
the tests break): each order records the broker that took it, a restart remembers it, an order
in doubt at an unreachable broker does not stop trading on the other, and the kill switch trips
only after 60 s without any broker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.brokers.router import OrderRouter
from core.config import ExecutorConfig
from core.domain import CommandStatus, OrderStatus, SignalStatus
from core.executor import TradeExecutor
from core.kill_switch_monitor import KillSwitchMonitor
from core.marketdata.calendar import ManualClock
from tests.core.brokers.test_router import Flaky
from tests.core.test_executor import OPEN, Rig, run

D = Decimal


class FailoverRig(Rig):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        config = PaperConfig(impact_bps_per_pct_adv=D(0))
        self.primary = Flaky(
            PaperBroker(self.market, self.store.paper_ledger("a"), config, "alpaca")
        )
        self.fallback = Flaky(
            PaperBroker(self.market, self.store.paper_ledger("b"), config, "ibkr")
        )
        self.executor = self.start("first")

    def start(self, holder: str) -> TradeExecutor:
        router = OrderRouter(self.primary, self.fallback, clock=self.clock)  # type: ignore[arg-type]
        ex = TradeExecutor(
            self.store,
            router,
            self.market,
            ExecutorConfig(account="test", reconcile_every_ticks=1000),
            clock=self.clock,
            wall_clock=ManualClock(OPEN),
            holder_id=holder,
        )
        ex.kill_monitor = KillSwitchMonitor(ex)
        self.router = router
        return ex

    def restart(self, holder: str) -> None:
        run(self.executor.shutdown())
        self.executor = self.start(holder)


@pytest.fixture
def rig(tmp_path):
    r = FailoverRig(f"sqlite:///{tmp_path / 'axion.db'}")
    yield r
    r.store.engine.dispose()


def resting_buy(rig: Rig, symbol: str = "AAA") -> int:
    """A limit buy far under the market: it rests at the broker."""
    return rig.command(
        "manual_order",
        {"symbol": symbol, "side": "buy", "qty": "5", "order_type": "limit", "limit_price": "50"},
    )


def only_order(rig: Rig, cid: int):
    coid = f"ax-c{cid}-manual"
    order = rig.order(coid)
    assert order is not None, coid
    return order


def test_each_order_records_the_broker_that_took_it_and_a_restart_remembers(rig: FailoverRig):
    first = rig.signal("AAA")
    rig.tick(2)
    assert rig.order(f"ax-s{first}-entry").broker == "alpaca"

    # refused at submit: written ahead as the primary's, taken by the fallback
    rig.primary.submit_fault = "refused"
    refused = rig.signal("AAA", qty=D(4))
    rig.tick(2)
    moved = rig.order(f"ax-s{refused}-entry")
    assert moved.broker == "ibkr" and moved.status is OrderStatus.FILLED
    rig.primary.submit_fault = None

    rig.primary.down = True
    second = rig.signal("BBB")
    resting = resting_buy(rig, "BBB")
    rig.tick(2)
    entry = rig.order(f"ax-s{second}-entry")
    assert entry.broker == "ibkr" and entry.status is OrderStatus.FILLED
    assert rig.get_command(resting).status is CommandStatus.APPLIED
    working = only_order(rig, resting)
    assert working.broker == "ibkr" and working.status is OrderStatus.ACCEPTED
    assert rig.fallback.has(working.client_order_id) and not rig.primary.has(
        working.client_order_id
    )

    # the primary is back; a restarted executor knows where the resting order is without
    # asking every broker, and cancels it there
    rig.primary.down = False
    rig.restart("second")
    rig.tick()
    assert rig.router.broker_for(working.client_order_id) == "ibkr"
    calls_before = len(rig.primary.calls)
    cancel = rig.command("cancel_order", {"client_order_id": working.client_order_id})
    rig.tick(2)
    assert rig.get_command(cancel).status is CommandStatus.APPLIED
    assert rig.order(working.client_order_id).status is OrderStatus.CANCELLED
    assert "get_order" not in rig.primary.calls[calls_before:]
    third = rig.signal("AAA", qty=D(3))
    rig.tick(2)
    assert rig.order(f"ax-s{third}-entry").broker == "alpaca"


def test_an_order_in_doubt_at_an_unreachable_broker_does_not_stop_the_other(rig: FailoverRig):
    # the primary takes the order, the answer is lost, and then it cannot be reached
    rig.primary.submit_fault = "lost_ack"
    rig.primary.lookup_fails = True
    doubtful = rig.signal("AAA")
    rig.tick()
    coid = f"ax-s{doubtful}-entry"
    assert coid in rig.executor.in_doubt
    assert rig.order(coid).broker == "alpaca"
    rig.primary.submit_fault = None
    rig.primary.down = True

    # new orders go to the fallback while the doubtful one waits for its own broker
    later = rig.signal("BBB")
    rig.tick(3)
    assert rig.get_signal(later).status is SignalStatus.ROUTED
    assert rig.order(f"ax-s{later}-entry").status is OrderStatus.FILLED
    assert rig.order(f"ax-s{later}-entry").broker == "ibkr"
    assert coid in rig.executor.in_doubt
    assert not rig.fallback.has(coid)  # never sent to another broker

    # the primary answers again: the order is found there and its fill recovered
    rig.primary.down = False
    rig.primary.lookup_fails = False
    rig.clock.advance(timedelta(seconds=10))
    rig.tick(3)
    assert coid not in rig.executor.in_doubt
    order = rig.order(coid)
    assert order.status is OrderStatus.FILLED and order.broker == "alpaca"
    assert rig.positions()["AAA"].qty == D(10)


def test_the_kill_switch_trips_after_60_s_without_any_broker(rig: FailoverRig):
    rig.tick()
    rig.primary.down = True
    for _ in range(4):  # the fallback is up: an outage of the primary alone never trips it
        rig.tick(advance=timedelta(seconds=30))
    assert not rig.executor.kill_switch.active

    rig.fallback.down = True
    rig.tick(advance=timedelta(seconds=1))
    rig.tick(advance=timedelta(seconds=30))
    assert not rig.executor.kill_switch.active
    rig.tick(advance=timedelta(seconds=31))
    state = rig.executor.kill_switch
    assert state.active and "broker" in (state.reason or "")
