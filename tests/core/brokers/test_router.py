"""The order router over two paper brokers whose connectivity the tests control."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from core.brokers.paper import MemoryPaperLedger, PaperBroker, PaperConfig
from core.brokers.router import BrokerNotReached, OrderRouter, merge_positions, never_sent
from core.domain import (
    AccountState,
    BrokerEvent,
    BrokerOrder,
    EventKind,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from core.marketdata.calendar import ManualClock
from core.ports import BrokerUnavailable, OrderRejected, UnknownOrder
from core.risk.kill_switch import KillSwitch, KillSwitchInputs, Trigger
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars
from tests.core.brokers.harness import run

START = at(20, 15)  # Friday 2026-11-20, 10:00 New York: in session
CONFIG = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(1_000_000))


class Flaky:
    """A paper broker behind a connection the test breaks in chosen ways.

    ``down``: disconnected, nothing reaches it. ``hang``: reports itself connected but every
    call times out. ``submit_fault``: ``"lost_ack"`` (the broker takes the order, the answer is
    lost), ``"timeout"`` (the broker never gets it, but the caller cannot know) or
    ``"refused"`` (no connection could be made: certainly not sent).
    """

    def __init__(self, inner: PaperBroker) -> None:
        self.inner = inner
        self.name = inner.name
        self.down = False
        self.hang = False
        self.submit_fault: str | None = None
        self.lookup_fails = False
        self.calls: list[str] = []

    @property
    def connected(self) -> bool:
        return self.inner.connected and not self.down

    def _gate(self, call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise BrokerNotReached(f"{self.name}: connection refused")
        if self.hang:
            raise BrokerUnavailable(f"{self.name}: read timed out")

    async def connect(self) -> None:
        self.calls.append("connect")
        if self.down:
            raise BrokerNotReached(f"{self.name}: connection refused")
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def get_account(self) -> AccountState:
        self._gate("get_account")
        return await self.inner.get_account()

    async def get_positions(self) -> list[Position]:
        self._gate("get_positions")
        return await self.inner.get_positions()

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        self._gate("get_orders")
        return await self.inner.get_orders(status)

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        self._gate("get_order")
        if self.lookup_fails:
            raise BrokerUnavailable(f"{self.name}: lookup timed out")
        return await self.inner.get_order(client_order_id)

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        self._gate("get_fills")
        return await self.inner.get_fills(client_order_id, since)

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        self._gate("submit_order")
        if self.submit_fault == "refused":
            raise BrokerNotReached(f"{self.name}: connection refused")
        if self.submit_fault == "timeout":
            raise BrokerUnavailable(f"{self.name}: read timed out")
        ack = await self.inner.submit_order(request)
        if self.submit_fault == "lost_ack":
            raise BrokerUnavailable(f"{self.name}: connection reset after the request was sent")
        return ack

    async def cancel_order(self, client_order_id: str) -> bool:
        self._gate("cancel_order")
        return await self.inner.cancel_order(client_order_id)

    async def cancel_all(self) -> int:
        self._gate("cancel_all")
        return await self.inner.cancel_all()

    async def updates(self) -> list[BrokerEvent]:
        self._gate("updates")
        return await self.inner.updates()

    def has(self, coid: str) -> bool:
        return run(self.inner.get_order(coid)) is not None


class Recorder:
    """A connectivity listener with the kill-switch monitor's shape."""

    def __init__(self) -> None:
        self.disconnected_since: datetime | None = None
        self.downs: list[datetime] = []

    def broker_down(self, now: datetime) -> None:
        self.downs.append(now)
        if self.disconnected_since is None:
            self.disconnected_since = now

    def broker_up(self) -> None:
        self.disconnected_since = None


class Setup:
    def __init__(self, *, fallback: bool = True) -> None:
        self.clock = ManualClock(START)
        day = START.date()
        self.market = FixedMarket(
            self.clock, {"AAA": session_bars("AAA", day), "BBB": session_bars("BBB", day)}
        )
        self.primary = Flaky(PaperBroker(self.market, MemoryPaperLedger(), CONFIG, name="alpaca"))
        self.fallback = (
            Flaky(PaperBroker(self.market, MemoryPaperLedger(), CONFIG, name="ibkr"))
            if fallback
            else None
        )
        self.listener = Recorder()
        self.router = OrderRouter(
            self.primary,  # type: ignore[arg-type]
            self.fallback,  # type: ignore[arg-type]
            clock=self.clock,
            listeners=[self.listener],
        )
        run(self.router.connect())

    def submit(self, coid: str, side: str = "buy", qty: Any = 10, **kw: Any) -> BrokerOrder:
        kw.setdefault("symbol", "AAA")
        return run(self.router.submit_order(OrderRequest(coid, qty=qty, side=Side(side), **kw)))

    @property
    def fb(self) -> Flaky:
        assert self.fallback is not None
        return self.fallback


# --- routing new orders ----------------------------------------------------------------------


def test_new_orders_go_to_the_primary_while_it_is_up() -> None:
    s = Setup()
    ack = s.submit("o1")
    assert ack.client_order_id == "o1"
    assert s.router.broker_for("o1") == "alpaca"
    assert s.primary.has("o1") and not s.fb.has("o1")
    assert s.router.name == "alpaca" and s.router.connected


def test_primary_down_the_fallback_takes_new_orders() -> None:
    s = Setup()
    s.primary.down = True
    s.submit("o1")
    assert s.router.broker_for("o1") == "ibkr"
    assert s.fb.has("o1") and not s.primary.has("o1")
    assert s.router.name == "ibkr"
    assert "submit_order" not in s.primary.calls  # never sent to a broker that is down


def test_connection_refused_on_submit_fails_over() -> None:
    s = Setup()
    s.primary.submit_fault = "refused"
    s.submit("o1")
    assert s.router.broker_for("o1") == "ibkr"
    assert s.fb.has("o1") and not s.primary.has("o1")
    # the primary failed a call: the next order goes straight to the fallback
    s.primary.submit_fault = None
    s.submit("o2")
    assert s.router.broker_for("o2") == "ibkr"


def test_a_business_rejection_never_fails_over() -> None:
    s = Setup()
    with pytest.raises(OrderRejected) as info:
        s.submit("o1", "sell", 10, reduce_only=True)  # nothing to reduce at either broker
    assert "reduce-only" in info.value.reason
    assert not s.fb.has("o1")
    assert "submit_order" not in s.fb.calls
    with pytest.raises(OrderRejected):
        s.submit("o2", symbol="ZZZ")  # unknown symbol at the primary
    assert "submit_order" not in s.fb.calls
    assert s.router.broker_for("o2") == "alpaca"
    assert s.router.name == "alpaca"  # a rejection says nothing about connectivity


# --- ambiguous submits: never a duplicate ----------------------------------------------------


def test_lost_acknowledgement_is_recovered_from_the_primary() -> None:
    s = Setup()
    s.primary.submit_fault = "lost_ack"
    ack = s.submit("o1")
    assert ack.client_order_id == "o1" and ack.status is OrderStatus.FILLED  # as it is now
    assert len(run(s.primary.inner.get_orders("all"))) == 1
    assert s.router.broker_for("o1") == "alpaca"
    assert not s.fb.has("o1")
    assert "submit_order" not in s.fb.calls


def test_ambiguous_submit_the_primary_cannot_answer_stays_in_doubt() -> None:
    s = Setup()
    s.primary.submit_fault = "lost_ack"
    s.primary.lookup_fails = True
    with pytest.raises(BrokerUnavailable) as info:
        s.submit("o1")
    assert not never_sent(info.value)
    assert "in doubt" in str(info.value)
    assert s.primary.has("o1")  # it did arrive ...
    assert not s.fb.has("o1")  # ... and was not sent again elsewhere
    assert "submit_order" not in s.fb.calls
    assert s.router.broker_for("o1") == "alpaca"
    # looking it up goes to the primary only: the fallback's "never saw it" proves nothing
    with pytest.raises(BrokerUnavailable):
        run(s.router.get_order("o1"))
    assert "get_order" not in s.fb.calls
    s.primary.lookup_fails = False
    found = run(s.router.get_order("o1"))
    assert found is not None and found.client_order_id == "o1"


def test_ambiguous_submit_not_found_at_the_primary_is_not_sent_elsewhere() -> None:
    s = Setup()
    s.primary.submit_fault = "timeout"
    with pytest.raises(BrokerUnavailable) as info:
        s.submit("o1")
    assert "may still arrive" in str(info.value)
    assert not s.primary.has("o1") and not s.fb.has("o1")
    # submitting the same id again goes to the primary only (which would refuse a duplicate
    # there); the fallback never sees the id
    s.primary.submit_fault = None
    s.submit("o1")
    assert s.primary.has("o1") and not s.fb.has("o1")
    assert run(s.router.get_order("o1")) is not None
    assert "get_order" not in s.fb.calls


def test_resubmitting_an_id_the_primary_took_is_refused_there_not_duplicated() -> None:
    s = Setup()
    s.submit("o1")
    s.primary.down = True
    with pytest.raises(BrokerUnavailable):
        s.submit("o1")  # the fallback would happily take it: it must not get the chance
    assert not s.fb.has("o1")
    s.primary.down = False
    with pytest.raises(OrderRejected) as info:
        s.submit("o1")
    assert "duplicate" in info.value.reason


def test_no_broker_connected_raises_not_reached() -> None:
    s = Setup()
    s.primary.down = True
    s.fb.down = True
    with pytest.raises(BrokerNotReached):
        s.submit("o1")
    assert s.router.broker_for("o1") is None


def test_without_a_fallback_a_down_primary_is_simply_unavailable() -> None:
    s = Setup(fallback=False)
    s.submit("o1")
    s.primary.down = True
    with pytest.raises(BrokerUnavailable):
        s.submit("o2")
    assert s.router.broker_for("o2") is None


# --- orders after routing --------------------------------------------------------------------


def test_cancel_goes_to_the_broker_that_took_the_order() -> None:
    s = Setup()
    s.primary.down = True
    s.submit("o1", order_type=OrderType.LIMIT, limit_price="90")  # rests at the fallback
    s.primary.down = False
    run(s.router.updates())  # the primary answers again
    assert s.router.name == "alpaca"
    assert run(s.router.cancel_order("o1")) is True
    assert "cancel_order" not in s.primary.calls
    remote = run(s.fb.inner.get_order("o1"))
    assert remote is not None and remote.status is OrderStatus.CANCELLED
    with pytest.raises(UnknownOrder):
        run(s.router.cancel_order("nope"))


def test_cancel_of_an_order_at_an_unreachable_broker_is_not_tried_elsewhere() -> None:
    s = Setup()
    s.submit("o1", order_type=OrderType.LIMIT, limit_price="90")
    s.primary.hang = True
    with pytest.raises(BrokerUnavailable):
        run(s.router.cancel_order("o1"))
    assert "cancel_order" not in s.fb.calls


def test_a_recovered_primary_takes_new_orders_again() -> None:
    s = Setup()
    s.primary.hang = True
    run(s.router.updates())  # the health check sees the primary fail
    s.submit("o1")
    assert s.router.broker_for("o1") == "ibkr"
    assert "submit_order" not in s.primary.calls
    s.primary.hang = False
    run(s.router.updates())
    s.submit("o2")
    assert s.router.broker_for("o2") == "alpaca"


def test_updates_and_orders_are_merged_from_both_brokers() -> None:
    s = Setup()
    s.submit("p1", order_type=OrderType.LIMIT, limit_price="90")
    s.primary.down = True
    s.submit("f1", order_type=OrderType.LIMIT, limit_price="90")
    s.primary.down = False
    s.clock.advance(timedelta(minutes=2))
    open_ids = {o.client_order_id for o in run(s.router.get_orders("open"))}
    assert open_ids == {"p1", "f1"}
    run(s.router.updates())
    run(s.router.cancel_order("p1"))
    run(s.router.cancel_order("f1"))
    events = run(s.router.updates())
    assert {(e.client_order_id, e.kind) for e in events} == {
        ("p1", EventKind.CANCELLED),
        ("f1", EventKind.CANCELLED),
    }
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_unknown_order_lookup_needs_every_broker_to_answer() -> None:
    s = Setup()
    s.fb.down = True
    with pytest.raises(BrokerUnavailable):
        run(s.router.get_order("never-seen"))
    s.fb.down = False
    assert run(s.router.get_order("never-seen")) is None


def test_remembered_owner_after_a_restart() -> None:
    s = Setup()
    s.primary.down = True
    s.submit("o1")
    fresh = OrderRouter(s.primary, s.fallback, clock=s.clock)  # type: ignore[arg-type]
    run(fresh.connect())
    fresh.remember("o1", "ibkr")
    assert fresh.broker_for("o1") == "ibkr"
    assert run(fresh.get_order("o1")) is not None
    with pytest.raises(ValueError):
        fresh.remember("o2", "nobody")


# --- exits, account and positions ------------------------------------------------------------


def test_an_exit_goes_to_the_broker_holding_the_position() -> None:
    s = Setup()
    s.primary.down = True
    s.submit("entry", "buy", 10)  # fills at once at the fallback
    s.primary.down = False
    run(s.router.updates())
    assert s.router.name == "alpaca"
    s.submit("exit", "sell", 10, reduce_only=True)
    assert s.router.broker_for("exit") == "ibkr"
    assert s.primary.calls.count("submit_order") == 0
    assert run(s.fb.inner.get_positions()) == []


def test_an_exit_waits_when_the_holding_broker_cannot_be_asked() -> None:
    s = Setup()
    s.submit("entry", "buy", 10)  # at the primary
    s.primary.down = True
    with pytest.raises(BrokerUnavailable) as info:
        s.submit("exit", "sell", 10, reduce_only=True)
    assert "waits" in str(info.value)
    assert "submit_order" not in s.fb.calls
    assert s.router.broker_for("exit") is None


def test_account_is_the_primarys_while_up_and_positions_are_summed() -> None:
    s = Setup()
    s.submit("a1", "buy", 10)
    s.primary.down = True
    s.submit("b1", "buy", 5)
    s.submit("b2", "buy", 3, symbol="BBB")
    fallback_account = run(s.fb.inner.get_account())
    assert run(s.router.get_account()) == fallback_account
    s.primary.down = False
    run(s.router.updates())
    primary_account = run(s.primary.inner.get_account())
    assert run(s.router.get_account()) == primary_account
    positions = {p.symbol: p for p in run(s.router.get_positions())}
    assert positions["AAA"].qty == D(15) and positions["BBB"].qty == D(3)
    by_broker = run(s.router.positions_by_broker())
    assert {n: [p.qty for p in ps] for n, ps in by_broker.items()} == {
        "alpaca": [D(10)],
        "ibkr": [D(5), D(3)],
    }


def test_merge_positions_weights_the_entry_price() -> None:
    a = Position("AAA", D(10), D(100), D(101), realized_pnl=D(5))
    b = Position("AAA", D(30), D(104), D(101))
    merged = merge_positions([a, b])
    assert merged.qty == D(40)
    assert merged.avg_entry_price == D(103)
    assert merged.realized_pnl == D(5)
    short = merge_positions([a, Position("AAA", D(-30), D(110))])
    assert short.qty == D(-20) and short.avg_entry_price == D(110)


# --- connectivity timing and the kill switch -------------------------------------------------


def test_outage_is_timed_only_while_no_broker_is_up() -> None:
    s = Setup()
    s.primary.down = True
    run(s.router.updates())
    assert s.router.down_since is None  # the fallback is up
    assert s.listener.disconnected_since is None
    s.clock.advance(timedelta(seconds=30))
    t0 = s.clock.now()
    s.fb.down = True
    with pytest.raises(BrokerUnavailable):
        run(s.router.updates())
    assert s.router.down_since == t0
    assert s.listener.disconnected_since == t0
    assert not s.router.connected
    s.clock.advance(timedelta(seconds=61))
    with pytest.raises(BrokerUnavailable):
        run(s.router.get_account())
    assert s.router.down_since == t0  # the outage began when the last broker was lost
    assert s.router.outage(s.clock.now()) == timedelta(seconds=61)
    assert set(s.listener.downs) == {t0}
    s.fb.down = False
    s.clock.advance(timedelta(seconds=5))  # past the reconnect interval
    run(s.router.updates())
    assert s.router.down_since is None
    assert s.router.outage(s.clock.now()) == timedelta(0)
    assert s.listener.disconnected_since is None
    assert s.router.name == "ibkr"


def _kill_switch_trigger(disconnected_since: datetime | None, now: datetime) -> str | None:
    """The reason of the broker-disconnected trigger (kill-switch trigger 3), if it holds."""
    inputs = KillSwitchInputs(
        equity=D(1_000_000), starting_equity=D(1_000_000), disconnected_since=disconnected_since
    )
    found = dict(KillSwitch().triggers(inputs, now))
    return found.get(Trigger.BROKER_DISCONNECTED)


def test_kill_switch_trips_after_60_s_without_any_broker_not_with_the_fallback_up() -> None:
    s = Setup()
    s.primary.down = True
    run(s.router.updates())
    s.clock.advance(timedelta(seconds=120))
    run(s.router.updates())
    assert _kill_switch_trigger(s.listener.disconnected_since, s.clock.now()) is None

    s.fb.down = True
    with pytest.raises(BrokerUnavailable):
        run(s.router.updates())
    s.clock.advance(timedelta(seconds=60))
    assert _kill_switch_trigger(s.listener.disconnected_since, s.clock.now()) is None
    s.clock.advance(timedelta(seconds=1))
    reason = _kill_switch_trigger(s.listener.disconnected_since, s.clock.now())
    assert reason is not None and "broker connection lost for 61" in reason


def test_connecting_with_the_primary_down_is_no_outage() -> None:
    clock = ManualClock(START)
    market = FixedMarket(clock, {"AAA": session_bars("AAA", START.date())})
    primary = Flaky(PaperBroker(market, MemoryPaperLedger(), CONFIG, name="alpaca"))
    fallback = Flaky(PaperBroker(market, MemoryPaperLedger(), CONFIG, name="ibkr"))
    primary.down = True
    listener = Recorder()
    router = OrderRouter(primary, fallback, clock=clock, listeners=[listener])  # type: ignore[arg-type]
    run(router.connect())
    assert listener.downs == [] and router.down_since is None
    assert router.name == "ibkr"
    fallback.down = True
    with pytest.raises(BrokerNotReached):
        run(OrderRouter(primary, fallback, clock=clock).connect())  # type: ignore[arg-type]


def test_a_listener_added_late_is_brought_up_to_date() -> None:
    s = Setup()
    s.primary.down = True
    s.fb.down = True
    with pytest.raises(BrokerUnavailable):
        run(s.router.updates())
    late = Recorder()
    s.router.add_listener(late)
    assert late.disconnected_since == s.router.down_since is not None


def test_close_is_not_an_outage_and_names_must_differ() -> None:
    s = Setup()
    run(s.router.close())
    assert s.router.down_since is None
    assert s.router.outage(s.clock.now()) == timedelta(0)
    with pytest.raises(ValueError):
        OrderRouter(s.primary, s.primary, clock=s.clock)  # type: ignore[arg-type]


def test_status_reports_each_broker() -> None:
    s = Setup()
    s.primary.hang = True
    run(s.router.updates())
    status = s.router.status()
    assert status["active"] == "ibkr"
    assert [(b["name"], b["role"], b["up"]) for b in status["brokers"]] == [
        ("alpaca", "primary", False),
        ("ibkr", "fallback", True),
    ]
    assert "timed out" in status["brokers"][0]["last_error"]


def test_updates_reconnect_a_disconnected_broker_at_most_every_interval() -> None:
    s = Setup()
    s.primary.down = True
    run(s.router.updates())
    attempts = s.primary.calls.count("connect")
    run(s.router.updates())  # same instant: no new attempt
    assert s.primary.calls.count("connect") == attempts
    s.clock.advance(timedelta(seconds=5))
    run(s.router.updates())
    assert s.primary.calls.count("connect") == attempts + 1
    run(s.primary.inner.close())  # really disconnected now; the outage ends on the next attempt
    s.primary.down = False
    s.clock.advance(timedelta(seconds=5))
    run(s.router.updates())
    assert s.primary.inner.connected
    assert s.router.name == "alpaca"
