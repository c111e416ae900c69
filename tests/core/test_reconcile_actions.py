"""Resolving reconciliation differences by command: ``adopt_broker_position`` takes the
broker's quantity as ours (store, journal, a ``position_adopted`` row, who and why kept with the
command) and ``cancel_orphan_order`` cancels an order the broker has and the store does not.
Differences are made behind the executor's back through the paper broker's own API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import (
    Command,
    CommandStatus,
    CommandType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    client_order_id_for_command,
)
from core.executor import TradeExecutor
from core.marketdata.calendar import ManualClock
from core.reconcile import ORPHAN_CANCELLED, POSITION_ADOPTED, RESOLVES
from core.service import COMMAND_ACTIONS
from core.users import Action
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars

D = Decimal
OPEN = at(20, 14, 30)


class Rig:
    def __init__(self, url: str) -> None:
        self.store = open_store(url)
        self.clock = ManualClock(OPEN + timedelta(minutes=30))
        self.market = FixedMarket(
            self.clock,
            {
                "AAA": session_bars("AAA", OPEN.date(), price="100"),
                "BBB": session_bars("BBB", OPEN.date(), price="50"),
            },
            adv={"AAA": 1_000_000, "BBB": 1_000_000},
            spread="0.02",
        )
        self.broker = PaperBroker(self.market, self.store.paper_ledger("t"), PaperConfig())
        self.executor = TradeExecutor(
            self.store,
            self.broker,
            self.market,
            ExecutorConfig(account="t", reconcile_every_ticks=1000),
            clock=self.clock,
            wall_clock=ManualClock(OPEN),
            holder_id="x",
        )
        self.loop = asyncio.new_event_loop()
        self.tick()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def tick(self) -> None:
        self.run(self.executor.tick())

    def command(self, kind: CommandType, payload: dict, by: str = "alice") -> Command:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(Command(kind, payload, by, self.clock.now()))
            uow.commit()
        self.tick()
        with self.store.unit_of_work(read_only=True) as uow:
            found = uow.commands.get(cid)
        assert found is not None
        return found

    def buy(self, symbol: str, qty: str) -> str:
        cmd = self.command(CommandType.MANUAL_ORDER, {"symbol": symbol, "side": "buy", "qty": qty})
        assert cmd.status is CommandStatus.APPLIED, cmd.result
        return client_order_id_for_command(cmd.id or 0)

    def behind_our_back(self, request: OrderRequest) -> None:
        """An order placed at the broker directly (another app, a person on the broker's site)."""
        self.run(self.broker.submit_order(request))

    def reconcile(self) -> int:
        return self.run(self.executor.reconciler.reconcile())

    def positions(self) -> dict[str, Decimal]:
        with self.store.unit_of_work(read_only=True) as uow:
            return {p.symbol: p.qty for p in uow.positions.all()}

    def diffs(self) -> list[tuple[str, str, str | None, str | None]]:
        with self.store.unit_of_work(read_only=True) as uow:
            return [(d.kind, d.key, d.ours, d.theirs) for d in uow.reconciliation.recent()]

    def close(self) -> None:
        self.loop.close()
        self.store.engine.dispose()


@pytest.fixture
def rig(pg_or_sqlite_url) -> Iterator[Rig]:
    r = Rig(pg_or_sqlite_url)
    yield r
    r.close()


def test_both_commands_need_the_reconcile_permission():
    assert COMMAND_ACTIONS[CommandType.ADOPT_BROKER_POSITION] is Action.RECONCILE
    assert COMMAND_ACTIONS[CommandType.CANCEL_ORPHAN_ORDER] is Action.RECONCILE
    assert RESOLVES == {
        POSITION_ADOPTED: "position_mismatch",
        ORPHAN_CANCELLED: "unknown_at_broker",
    }


def test_adopting_the_brokers_position_fixes_a_quantity_mismatch(rig: Rig):
    rig.buy("AAA", "10")
    rig.behind_our_back(OrderRequest("foreign-1", "AAA", Side.BUY, D(2)))
    rig.tick()  # its fill arrives as an event for an order we do not know
    assert rig.reconcile() >= 1
    assert ("position_mismatch", "AAA", "10", "12") in rig.diffs()
    assert rig.positions()["AAA"] == D(10)  # recorded, not overwritten

    cmd = rig.command(
        CommandType.ADOPT_BROKER_POSITION, {"symbol": "aaa", "reason": "filled on the phone"}
    )
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    assert cmd.result is not None
    assert "AAA: 10 -> 12" in cmd.result and "by alice: filled on the phone" in cmd.result
    assert rig.positions()["AAA"] == D(12)
    assert rig.executor.journal.positions["AAA"].qty == D(12)
    assert rig.diffs()[0] == (POSITION_ADOPTED, "AAA", "10", "12")
    with rig.store.unit_of_work(read_only=True) as uow:
        trade = uow.journal.open_trade_for("AAA")
    assert trade is not None and trade.shares == D(12)
    assert rig.reconcile() == 0  # store and broker agree now

    # a later difference of the same symbol is recorded again, even one seen before
    rig.behind_our_back(OrderRequest("foreign-2", "AAA", Side.SELL, D(2)))
    rig.tick()
    rig.reconcile()
    assert rig.diffs()[0] == ("position_mismatch", "AAA", "12", "10")


def test_adopting_a_position_the_broker_no_longer_holds_removes_ours(rig: Rig):
    rig.buy("BBB", "5")
    rig.behind_our_back(OrderRequest("foreign-3", "BBB", Side.SELL, D(5)))
    rig.tick()
    rig.reconcile()
    assert ("position_mismatch", "BBB", "5", None) in rig.diffs()
    cmd = rig.command(CommandType.ADOPT_BROKER_POSITION, {"symbol": "BBB", "reason": "closed"})
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    assert "BBB: 5 -> 0" in (cmd.result or "")
    assert "journal's open trade was left as it was" in (cmd.result or "")
    assert "BBB" not in rig.positions() and "BBB" not in rig.executor.journal.positions
    assert rig.reconcile() == 0


def test_adopting_when_already_in_agreement_changes_nothing(rig: Rig):
    rig.buy("AAA", "3")
    cmd = rig.command(CommandType.ADOPT_BROKER_POSITION, {"symbol": "AAA", "reason": "check"})
    assert cmd.status is CommandStatus.APPLIED
    assert "already holds the paper broker's 3" in (cmd.result or "")
    assert rig.positions()["AAA"] == D(3)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"reason": "x"}, "needs a symbol"),
        ({"symbol": "AAA"}, "needs a reason"),
        ({"symbol": "AAA", "reason": "  "}, "needs a reason"),
        ({"symbol": "ZZZ", "reason": "x"}, "neither the store nor the broker holds ZZZ"),
    ],
)
def test_adopt_rejects_bad_requests_with_the_reason(rig: Rig, payload, reason):
    cmd = rig.command(CommandType.ADOPT_BROKER_POSITION, payload)
    assert cmd.status is CommandStatus.REJECTED and reason in (cmd.result or "")


def _resting_limit(coid: str) -> OrderRequest:
    return OrderRequest(
        coid,
        "AAA",
        Side.BUY,
        D(1),
        order_type=OrderType.LIMIT,
        limit_price=D(80),
        time_in_force=TimeInForce.GTC,
    )


def test_cancelling_an_orphan_order_by_client_order_id(rig: Rig):
    rig.behind_our_back(_resting_limit("orphan-1"))
    rig.tick()
    rig.reconcile()
    assert ("unknown_at_broker", "orphan-1", None, "accepted") in rig.diffs()
    cmd = rig.command(
        CommandType.CANCEL_ORPHAN_ORDER, {"client_order_id": "orphan-1", "reason": "not ours"}
    )
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    assert "orphan order orphan-1 cancelled at the broker (cancelled)" in (cmd.result or "")
    assert "by alice: not ours" in (cmd.result or "")
    remote = rig.run(rig.broker.get_order("orphan-1"))
    assert remote is not None and remote.status is OrderStatus.CANCELLED
    assert (ORPHAN_CANCELLED, "orphan-1", None, "cancelled") in rig.diffs()
    assert rig.reconcile() == 0


def test_cancelling_an_orphan_order_by_broker_order_id(rig: Rig):
    rig.behind_our_back(_resting_limit("orphan-2"))
    remote = rig.run(rig.broker.get_order("orphan-2"))
    assert remote is not None
    cmd = rig.command(
        CommandType.CANCEL_ORPHAN_ORDER,
        {"broker_order_id": remote.broker_order_id, "reason": "stray"},
    )
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    after = rig.run(rig.broker.get_order("orphan-2"))
    assert after is not None and after.status is OrderStatus.CANCELLED


def test_an_orphan_already_final_is_noted_not_cancelled(rig: Rig):
    rig.behind_our_back(OrderRequest("orphan-3", "AAA", Side.BUY, D(1)))  # fills at once
    cmd = rig.command(
        CommandType.CANCEL_ORPHAN_ORDER, {"client_order_id": "orphan-3", "reason": "x"}
    )
    assert cmd.status is CommandStatus.APPLIED
    assert "already filled at the broker; nothing to cancel" in (cmd.result or "")


def test_cancel_orphan_refuses_our_own_orders_and_unknown_ones(rig: Rig):
    ours = rig.buy("AAA", "1")
    cmd = rig.command(CommandType.CANCEL_ORPHAN_ORDER, {"client_order_id": ours, "reason": "x"})
    assert cmd.status is CommandStatus.REJECTED and "is ours" in (cmd.result or "")
    cmd = rig.command(CommandType.CANCEL_ORPHAN_ORDER, {"client_order_id": "nope", "reason": "x"})
    assert cmd.status is CommandStatus.REJECTED and "has no order nope" in (cmd.result or "")
    cmd = rig.command(CommandType.CANCEL_ORPHAN_ORDER, {"broker_order_id": "b-9", "reason": "x"})
    assert cmd.status is CommandStatus.REJECTED and "has no order b-9" in (cmd.result or "")
    cmd = rig.command(CommandType.CANCEL_ORPHAN_ORDER, {"reason": "x"})
    assert cmd.status is CommandStatus.REJECTED
    assert "needs client_order_id or broker_order_id" in (cmd.result or "")
    cmd = rig.command(CommandType.CANCEL_ORPHAN_ORDER, {"client_order_id": "nope"})
    assert cmd.status is CommandStatus.REJECTED and "needs a reason" in (cmd.result or "")
