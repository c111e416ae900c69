"""The executor end to end on a real store (SQLite, and PostgreSQL when configured), the real
paper broker and a hand-made market: signals to orders to fills to positions and journal,
commands, the kill switch, write-ahead, ambiguous submits, recovery and reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import (
    Command,
    CommandStatus,
    Direction,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    SignalStatus,
    TradeStatus,
)
from core.executor import TradeExecutor
from core.marketdata.calendar import ManualClock
from core.ports import BrokerUnavailable
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars

D = Decimal
OPEN = at(20, 14, 30)


def run(coro):
    return asyncio.run(coro)


class Rig:
    """Store + paper broker + fixed market + executor, with helpers."""

    def __init__(self, url: str, holder: str = "test-exec"):
        self.url = url
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
        self.ledger = self.store.paper_ledger("test")
        self.broker = PaperBroker(self.market, self.ledger, PaperConfig())
        self.executor = self.make_executor(holder)

    def make_executor(self, holder: str, broker=None) -> TradeExecutor:
        wall = ManualClock(OPEN)
        ex = TradeExecutor(
            self.store,
            broker or self.broker,
            self.market,
            ExecutorConfig(account="test", reconcile_every_ticks=1000),
            clock=self.clock,
            wall_clock=wall,
            holder_id=holder,
        )
        ex._test_wall = wall  # type: ignore[attr-defined]
        return ex

    def signal(self, symbol="AAA", direction=Direction.LONG, **kw) -> int:
        base = {
            "entry": D(100) if symbol == "AAA" else D(50),
            "stop": (D(98) if symbol == "AAA" else D(49))
            if direction is Direction.LONG
            else D(102),
            "qty": D(10),
        }
        s = Signal(
            symbol=symbol, direction=direction, created_at=self.clock.now(), **{**base, **kw}
        )
        with self.store.unit_of_work() as uow:
            sid = uow.signals.add(s)
            uow.commit()
        return sid

    def command(self, type_: str, payload: dict | None = None, by: str = "alice") -> int:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(Command(type_, payload or {}, by, created_at=self.clock.now()))
            uow.commit()
        return cid

    def tick(self, n: int = 1, advance: timedelta = timedelta(0)) -> None:
        for _ in range(n):
            if advance:
                self.clock.advance(advance)
            run(self.executor.tick())

    def get_signal(self, sid: int) -> Signal:
        with self.store.unit_of_work() as uow:
            s = uow.signals.get(sid)
        assert s is not None
        return s

    def get_command(self, cid: int) -> Command:
        with self.store.unit_of_work() as uow:
            c = uow.commands.get(cid)
        assert c is not None
        return c

    def order(self, coid: str):
        with self.store.unit_of_work() as uow:
            return uow.orders.get(coid)

    def positions(self):
        with self.store.unit_of_work() as uow:
            return {p.symbol: p for p in uow.positions.all()}


@pytest.fixture
def rig(pg_or_sqlite_url) -> Iterator[Rig]:
    r = Rig(pg_or_sqlite_url)
    yield r
    r.store.engine.dispose()


def test_signal_becomes_a_filled_order_a_position_and_a_journal_entry(rig: Rig):
    sid = rig.signal(target=D(104))
    rig.tick()  # routed and submitted (the paper broker fills at once, reported next tick)
    assert rig.get_signal(sid).status is SignalStatus.ROUTED
    rig.tick()
    order = rig.order(f"ax-s{sid}-entry")
    assert order.status is OrderStatus.FILLED
    assert [h.to_status for h in order.history] == [
        OrderStatus.PENDING_SUBMIT,
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.FILLED,
    ]
    # touch 100.01 + impact: 10 of 1,000,000 ADV = 0.001 % -> 0.01 bps -> 100.0101
    with rig.store.unit_of_work() as uow:
        (fill,) = uow.fills.for_order(order.client_order_id)
        trades = uow.journal.trades()
    assert fill.expected_price == D("100.01")
    assert fill.price == D("100.0101")
    assert rig.positions()["AAA"].qty == D(10)
    (trade,) = trades
    assert trade.status is TradeStatus.OPEN and trade.signal_id == sid
    assert trade.stop_loss == D(98) and trade.target_price == D(104)


def test_round_trip_closes_the_trade_with_pnl_and_reason(rig: Rig):
    rig.signal()
    rig.tick(2)
    cid = rig.command(
        "manual_order", {"symbol": "AAA", "side": "sell", "qty": "10", "reduce_only": True}
    )
    rig.clock.advance(timedelta(minutes=5))
    rig.tick(2)
    assert rig.get_command(cid).status is CommandStatus.APPLIED
    assert "AAA" not in rig.positions()
    with rig.store.unit_of_work() as uow:
        (trade,) = uow.journal.trades()
    assert trade.status is TradeStatus.CLOSED and trade.exit_reason == "manual"
    # bought at 100.0101, sold at the bid 99.99 less 0.01 bps impact -> 99.9899
    assert trade.exit_price == D("99.9899")
    assert trade.pnl == (D("99.9899") - D("100.0101")) * 10


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"qty": D(-5)}, "positive"),
        ({"symbol": "ZZZ"}, "unknown symbol"),
        ({"stop": D(101)}, "below entry"),
    ],
)
def test_bad_signals_are_rejected_with_a_stored_reason_and_the_loop_goes_on(rig: Rig, kw, reason):
    bad = rig.signal(**kw)
    good = rig.signal("BBB")
    rig.tick(2)
    s = rig.get_signal(bad)
    assert s.status is SignalStatus.REJECTED and reason in (s.reason or "")
    assert rig.get_signal(good).status is SignalStatus.ROUTED
    assert rig.order(f"ax-s{bad}-entry") is None
    with rig.store.unit_of_work(read_only=True) as uow:
        bad_trail = uow.decisions.for_signal(bad)
        good_trail = uow.decisions.for_signal(good)
    assert [(d.stage, d.approved) for d in bad_trail] == [("validate", False)]
    assert reason in (bad_trail[0].reason or "")
    assert [d.stage for d in good_trail] == ["validate", "kill_switch", "fixed_qty"]
    assert all(d.approved for d in good_trail)


def test_unknown_and_malformed_commands_are_rejected_with_reasons(rig: Rig):
    unknown = rig.command("launch_rockets")
    bad_setting = rig.command("update_setting", {"key": "nope", "value": 1})
    bad_order = rig.command("manual_order", {"symbol": "AAA", "side": "buy", "qty": "-1"})
    bad_cancel = rig.command("cancel_order", {"client_order_id": "nope"})
    rig.tick()
    assert "unknown command type 'launch_rockets'" in rig.get_command(unknown).result
    assert "unknown setting 'nope'" in rig.get_command(bad_setting).result
    assert "qty must be positive" in rig.get_command(bad_order).result
    assert "unknown order nope" in rig.get_command(bad_cancel).result
    for cid in (unknown, bad_setting, bad_order, bad_cancel):
        c = rig.get_command(cid)
        assert c.status is CommandStatus.REJECTED and c.applied_at is not None


def test_settings_change_is_versioned_and_applied(rig: Rig):
    rig.command("update_setting", {"key": "executor.default_qty", "value": "3"})
    rig.tick()
    sid = rig.signal(qty=None)
    rig.tick(2)
    assert rig.order(f"ax-s{sid}-entry").request.qty == D(3)
    with rig.store.unit_of_work() as uow:
        assert uow.settings.get("executor.default_qty").version == 1


def test_kill_switch_blocks_new_risk_but_exits_and_cancels_go_through(rig: Rig):
    rig.signal()
    rig.tick(2)
    resting = rig.command(
        "manual_order",
        {
            "symbol": "BBB",
            "side": "buy",
            "qty": "5",
            "order_type": "limit",
            "limit_price": "40",
            "time_in_force": "gtc",
        },
    )
    rig.tick()
    assert rig.order(f"ax-c{resting}-manual").status is OrderStatus.ACCEPTED
    on = rig.command("kill_switch_on", {"reason": "manual stop"})
    rig.tick(2)
    assert rig.get_command(on).status is CommandStatus.APPLIED
    # the resting entry order was cancelled by the kill switch
    assert rig.order(f"ax-c{resting}-manual").status is OrderStatus.CANCELLED
    blocked = rig.signal()
    new_risk = rig.command("manual_order", {"symbol": "BBB", "side": "buy", "qty": "1"})
    exit_ = rig.command(
        "manual_order", {"symbol": "AAA", "side": "sell", "qty": "10", "reduce_only": True}
    )
    rig.tick(2)
    assert rig.get_signal(blocked).status is SignalStatus.REJECTED
    assert "kill switch is on: manual stop" in rig.get_signal(blocked).reason
    assert rig.get_command(new_risk).status is CommandStatus.REJECTED
    assert rig.order(f"ax-c{exit_}-manual").status is OrderStatus.FILLED
    # latched: a new executor on the same store still sees it on
    fresh = rig.make_executor("other", broker=rig.broker)
    run(rig.executor.shutdown())
    run(fresh.tick())
    assert fresh.kill_switch.active and fresh.kill_switch.reason == "manual stop"
    off = rig.command("kill_switch_off", {"reason": "resolved"}, by="bob")
    run(fresh.tick())
    assert fresh.kill_switch.active is False
    assert "by bob" in rig.get_command(off).result


def test_cancel_and_cancel_all_commands(rig: Rig):
    ids = [
        rig.command(
            "manual_order",
            {
                "symbol": "AAA",
                "side": "buy",
                "qty": "1",
                "order_type": "limit",
                "limit_price": str(90 + i),
                "time_in_force": "gtc",
            },
        )
        for i in range(3)
    ]
    rig.tick()
    one = rig.command("cancel_order", {"client_order_id": f"ax-c{ids[0]}-manual"})
    rig.tick(2)
    assert rig.get_command(one).status is CommandStatus.APPLIED
    assert rig.order(f"ax-c{ids[0]}-manual").status is OrderStatus.CANCELLED
    again = rig.command("cancel_order", {"client_order_id": f"ax-c{ids[0]}-manual"})
    everything = rig.command("cancel_all")
    rig.tick(2)
    assert "already cancelled" in rig.get_command(again).result
    assert rig.get_command(everything).result == "2 cancel requests sent"
    assert all(rig.order(f"ax-c{i}-manual").status is OrderStatus.CANCELLED for i in ids)


class SpyBroker:
    """Wraps the paper broker; at submit time it checks, on its own connection, that the order
    row is already committed (write-ahead). It can also fail submits ambiguously."""

    def __init__(
        self,
        inner: PaperBroker,
        url: str,
        fail_after_send: bool = False,
        fail_before_send: bool = False,
    ):
        self.inner = inner
        self.name = inner.name
        self.engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.seen_committed: list[str] = []
        self.fail_after_send = fail_after_send
        self.fail_before_send = fail_before_send

    def __getattr__(self, item):
        return getattr(self.inner, item)

    @property
    def connected(self) -> bool:
        return self.inner.connected

    async def submit_order(self, request: OrderRequest):
        with self.engine.connect() as conn:
            status = conn.execute(
                sa.text("select status from orders where client_order_id = :c"),
                {"c": request.client_order_id},
            ).scalar()
        if status == "pending_submit":
            self.seen_committed.append(request.client_order_id)
        if self.fail_before_send:
            raise BrokerUnavailable("connection reset before the request was sent")
        ack = await self.inner.submit_order(request)
        if self.fail_after_send:
            raise BrokerUnavailable("timed out waiting for the response")
        return ack


def test_order_row_is_committed_before_the_broker_is_called(rig: Rig):
    spy = SpyBroker(rig.broker, rig.url)
    rig.executor = rig.make_executor("spy", broker=spy)
    sid = rig.signal()
    rig.tick()
    assert spy.seen_committed == [f"ax-s{sid}-entry"]
    spy.engine.dispose()


@pytest.mark.parametrize("after_send", [True, False])
def test_ambiguous_submit_is_resolved_by_lookup_never_resent(rig: Rig, after_send):
    spy = SpyBroker(
        rig.broker, rig.url, fail_after_send=after_send, fail_before_send=not after_send
    )
    rig.executor = rig.make_executor("spy", broker=spy)
    sid = rig.signal()
    rig.tick()
    coid = f"ax-s{sid}-entry"
    assert rig.order(coid).status is OrderStatus.PENDING_SUBMIT
    assert coid in rig.executor.in_doubt
    spy.fail_after_send = spy.fail_before_send = False
    rig.tick(2)
    order = rig.order(coid)
    if after_send:  # the broker had it: adopted, and its fill recorded
        assert order.status is OrderStatus.FILLED
        assert rig.positions()["AAA"].qty == D(10)
    else:  # never reached the broker: failed with the reason, not re-sent
        assert order.status is OrderStatus.REJECTED
        assert "not found at the broker" in order.reason
        assert run(rig.broker.get_order(coid)) is None
    assert len(spy.seen_committed) == 1
    spy.engine.dispose()


def test_restart_adopts_orders_and_recovers_fills_missed_in_a_crash(rig: Rig):
    # broker has the order and the fill, our store only the write-ahead row (as after a crash)
    sid = rig.signal()
    ex = rig.executor
    run(ex.tick())  # routes and submits
    with rig.store.unit_of_work() as uow:  # undo what the executor recorded after the call
        order = uow.orders.get(f"ax-s{sid}-entry")
    assert order.status is OrderStatus.ACCEPTED
    run(rig.broker.updates())  # the fill events are lost with the crashed process
    with rig.store.engine.begin() as conn:
        conn.execute(
            sa.text("update orders set status='pending_submit' where client_order_id=:c"),
            {"c": order.client_order_id},
        )
        conn.execute(
            sa.text("delete from order_status_history where client_order_id=:c and seq > 0"),
            {"c": order.client_order_id},
        )
    restarted_broker = PaperBroker(rig.market, rig.ledger, PaperConfig())
    fresh = rig.make_executor("after-crash", broker=restarted_broker)
    fresh._test_wall.advance(timedelta(seconds=30))  # the old lease has expired
    run(fresh.tick())
    order = rig.order(order.client_order_id)
    assert order.status is OrderStatus.FILLED
    assert any("adopted after restart" in (h.reason or "") for h in order.history)
    assert rig.positions()["AAA"].qty == D(10)
    with rig.store.unit_of_work() as uow:
        assert uow.fills.count() == 1


def test_reconciliation_records_differences_without_overwriting(rig: Rig):
    rig.signal()
    rig.tick(2)
    # an order placed at the broker behind our back, and a position we do not know of
    other = OrderRequest("foreign-1", "BBB", Side.BUY, D(2))
    run(rig.broker.submit_order(other))
    run(rig.broker.updates())
    recorded = run(rig.executor.reconciler.reconcile())
    with rig.store.unit_of_work() as uow:
        diffs = uow.reconciliation.recent()
    kinds = {(d.kind, d.key) for d in diffs}
    assert ("position_mismatch", "BBB") in kinds
    assert recorded >= 1
    assert "BBB" not in rig.positions()  # recorded, not silently adopted
    assert run(rig.executor.reconciler.reconcile()) == 0  # the same difference is not re-recorded


def test_second_executor_stands_by_until_the_lease_expires(rig: Rig):
    a = rig.executor
    b = rig.make_executor("b")
    assert run(a.tick()) is True
    assert run(b.tick()) is False
    sid = rig.signal()
    run(b.tick())
    assert rig.get_signal(sid).status is SignalStatus.PENDING  # the standby did nothing
    b._test_wall.advance(timedelta(seconds=11))  # a stopped renewing; its lease expired
    assert run(b.tick()) is True
    assert rig.get_signal(sid).status is SignalStatus.ROUTED
    # a comes back: it lost the lease and must not write orders
    a._test_wall.advance(timedelta(seconds=3))
    sid2 = rig.signal()
    assert run(a.tick()) is False
    assert a.is_leader is False
    assert rig.get_signal(sid2).status is SignalStatus.PENDING


def test_bracket_signal_writes_legs_and_closes_on_take_profit(rig: Rig):
    sid = rig.signal(target=D("100.50"), order_type=OrderType.BRACKET)
    rig.tick(2)
    parent = rig.order(f"ax-s{sid}-entry")
    assert parent.status is OrderStatus.FILLED
    tp = rig.order(f"ax-s{sid}-entry-tp")
    assert tp.parent_id == parent.client_order_id and tp.status in (
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
    )
    # the price rises through the take-profit
    bars = session_bars("AAA", OPEN.date(), price="101")
    rig.market.add_bars("AAA", [b for b in bars if b.start >= rig.clock.now()])
    rig.tick(2, advance=timedelta(minutes=3))
    assert rig.order(tp.client_order_id).status is OrderStatus.FILLED
    assert rig.order(f"ax-s{sid}-entry-sl").status is OrderStatus.CANCELLED
    with rig.store.unit_of_work() as uow:
        (trade,) = uow.journal.trades()
    assert trade.exit_reason == "target" and trade.pnl > 0


def test_a_leader_that_lost_its_lease_leaves_the_command_for_the_new_leader(rig: Rig):
    a = rig.executor
    run(a.tick())
    b = rig.make_executor("b")
    b._test_wall.advance(timedelta(seconds=11))  # b sees a's lease as expired
    assert run(b.tick()) is True
    cid = rig.command("manual_order", {"symbol": "AAA", "side": "buy", "qty": "1"})
    run(a.tick())  # a still believes it leads (renewal not due) until the fenced write fails
    assert a.is_leader is False
    assert rig.get_command(cid).status is CommandStatus.PENDING
    assert rig.order(f"ax-c{cid}-manual") is None
    run(b.tick())
    assert rig.get_command(cid).status is CommandStatus.APPLIED
    assert rig.order(f"ax-c{cid}-manual") is not None
