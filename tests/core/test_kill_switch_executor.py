"""The kill switch in the running executor (seed 001 "Kill Switch"), end to end on the SQLite
store, the paper broker and a hand-made market: each trigger latches the switch with its reason
and an alert, working entries are cancelled and day-trade positions closed once per activation,
the latch survives a restart, only a named person releases it, and exits keep working."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import (
    AlertLevel,
    Command,
    CommandStatus,
    Direction,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    SignalStatus,
    TradeExecution,
    TradeStatus,
    TradeType,
)
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.kill_switch_monitor import ACTIONS_KEY, close_client_order_id
from core.marketdata.calendar import ManualClock
from core.ports import BrokerUnavailable
from core.settings_keys import KILL_SWITCH_KEY
from core.stages import use_full_pipeline
from db.engine import open_store
from tests.core.brokers.fixed_market import ONE_MINUTE, FixedMarket, at, minute_bars

D = Decimal
OPEN = at(20, 14, 30)  # Friday 20 November 2026, 09:30 New York
START = OPEN + timedelta(minutes=30)
CLOSE = at(20, 21, 0)
PRICES = {"AAA": "100", "BBB": "50", "CCC": "20"}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class SwitchableBroker:
    """The paper broker behind a connection that can be cut: while ``down`` every call raises
    :class:`BrokerUnavailable`, as a broker API that stopped answering does."""

    def __init__(self, inner: PaperBroker):
        self.inner = inner
        self.name = inner.name
        self.down = False
        self.submitted: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise BrokerUnavailable("connection refused")

    @property
    def connected(self) -> bool:
        return not self.down and self.inner.connected

    async def connect(self) -> None:
        self._check()
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    def begin_batch(self) -> None:
        self.inner.begin_batch()

    async def flush(self) -> None:
        await self.inner.flush()

    async def get_account(self):
        self._check()
        return await self.inner.get_account()

    async def get_positions(self):
        self._check()
        return await self.inner.get_positions()

    async def get_orders(self, status: str = "open"):
        self._check()
        return await self.inner.get_orders(status)

    async def get_order(self, client_order_id: str):
        self._check()
        return await self.inner.get_order(client_order_id)

    async def get_fills(self, client_order_id: str | None = None, since: datetime | None = None):
        self._check()
        return await self.inner.get_fills(client_order_id, since)

    async def submit_order(self, request: OrderRequest):
        self._check()
        self.submitted.append(request.client_order_id)
        return await self.inner.submit_order(request)

    async def cancel_order(self, client_order_id: str) -> bool:
        self._check()
        return await self.inner.cancel_order(client_order_id)

    async def cancel_all(self) -> int:
        self._check()
        return await self.inner.cancel_all()

    async def updates(self):
        self._check()
        return await self.inner.updates()


class World:
    """SQLite store + fixed market + paper broker + executor with the seed 001 pipeline."""

    def __init__(self, path: Path, cash: str = "100000", switchable: bool = False):
        self.store = open_store(f"sqlite:///{path / 'k.db'}")
        self.clock = ManualClock(START)
        self.market = FixedMarket(
            self.clock,
            {s: flat(s, OPEN, p, 100_000) for s, p in PRICES.items()},
            adv={s: 5_000_000 for s in PRICES},
            spread="0.02",
        )
        self.paper_config = PaperConfig(initial_cash=D(cash))
        self.paper = self.new_paper_broker()
        self.broker: PaperBroker | SwitchableBroker = (
            SwitchableBroker(self.paper) if switchable else self.paper
        )
        self.ex = self.make_executor("first")

    def new_paper_broker(self) -> PaperBroker:
        return PaperBroker(self.market, self.store.paper_ledger("k"), self.paper_config)

    def make_executor(self, holder: str, broker: Any = None) -> TradeExecutor:
        ex = TradeExecutor(
            self.store,
            broker or self.broker,
            self.market,
            ExecutorConfig(account="k", reconcile_every_ticks=1000),
            clock=self.clock,
            wall_clock=ManualClock(OPEN),
            holder_id=holder,
        )
        use_full_pipeline(ex, InstrumentMode.BOTH)
        return ex

    # -- driving -------------------------------------------------------------------------------
    def tick(self) -> None:
        """One tick at the current market time."""
        run(self.ex.tick())

    def step(self, n: int = 1) -> None:
        """``n`` ticks, each one minute of market time after the previous."""
        for _ in range(n):
            self.clock.advance(ONE_MINUTE)
            run(self.ex.tick())

    def price(self, symbol: str, price: str, volume: int = 100_000) -> None:
        """From the minute now starting, ``symbol`` trades flat at ``price`` (seen by quotes
        once that minute's bar has completed)."""
        self.market.add_bars(symbol, flat(symbol, self.clock.now(), price, volume))

    def command(self, type_: str, payload: dict[str, Any] | None = None, by: str = "alice") -> int:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(Command(type_, payload or {}, by, created_at=self.clock.now()))
            uow.commit()
        return cid

    def buy(self, symbol: str, qty: int) -> str:
        cid = self.command("manual_order", {"symbol": symbol, "side": "buy", "qty": str(qty)})
        return f"ax-c{cid}-manual"

    def sell_reducing(self, symbol: str, qty: int) -> str:
        cid = self.command(
            "manual_order",
            {"symbol": symbol, "side": "sell", "qty": str(qty), "reduce_only": True},
        )
        return f"ax-c{cid}-manual"

    def resting_buy(self, symbol: str, qty: int, limit: str) -> str:
        cid = self.command(
            "manual_order",
            {
                "symbol": symbol,
                "side": "buy",
                "qty": str(qty),
                "order_type": "limit",
                "limit_price": limit,
                "time_in_force": "gtc",
            },
        )
        return f"ax-c{cid}-manual"

    def signal(self, symbol: str = "AAA", **kw: Any) -> int:
        entry = D(PRICES[symbol])
        fields: dict[str, Any] = {
            "entry": entry,
            "stop": entry * D("0.97"),
            "conviction": 80,
            "trade_type": TradeType.DAY,
            **kw,
        }
        s = Signal(symbol=symbol, direction=Direction.LONG, created_at=self.clock.now(), **fields)
        with self.store.unit_of_work() as uow:
            sid = uow.signals.add(s)
            uow.commit()
        return sid

    # -- reading -------------------------------------------------------------------------------
    def order(self, coid: str) -> Order | None:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.orders.get(coid)

    def orders(self) -> list[Order]:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.orders.recent(1000)

    def close_orders(self) -> list[Order]:
        """The kill switch's closing orders."""
        return [o for o in self.orders() if o.client_order_id.startswith("ax-k")]

    def get_signal(self, sid: int) -> Signal:
        with self.store.unit_of_work(read_only=True) as uow:
            s = uow.signals.get(sid)
        assert s is not None
        return s

    def get_command(self, cid: int) -> Command:
        with self.store.unit_of_work(read_only=True) as uow:
            c = uow.commands.get(cid)
        assert c is not None
        return c

    def fills(self, coid: str):
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.fills.for_order(coid)

    def position_qty(self, symbol: str) -> Decimal:
        with self.store.unit_of_work(read_only=True) as uow:
            pos = uow.positions.get(symbol)
        return D(0) if pos is None else pos.qty

    def trades(self, symbol: str) -> list[TradeExecution]:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.journal.trades(ticker=symbol)

    def history(self, key: str):
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.settings.history(key)

    def alerts(self):
        with self.store.unit_of_work(read_only=True) as uow:
            return [a for a in uow.alerts.recent() if a.kind == "kill_switch"]

    def stored_switch(self) -> dict[str, Any]:
        with self.store.unit_of_work(read_only=True) as uow:
            setting = uow.settings.get(KILL_SWITCH_KEY)
        assert setting is not None
        return setting.value


def command_id(coid: str) -> int:
    """The command behind a manual order id ``ax-c{id}-manual``."""
    return int(coid.removeprefix("ax-c").removesuffix("-manual"))


def flat(symbol: str, start: datetime, price: str, volume: int) -> list:
    """Flat 1-minute bars from ``start`` to the close of 20 November."""
    minutes = int((CLOSE - start) / ONE_MINUTE)
    return minute_bars(symbol, start, [(price, price, price, price, volume)] * minutes)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.engine.dispose()


# ------------------------------------------------------------------------------------ daily loss
def test_daily_loss_latches_cancels_entries_closes_day_trades_and_blocks_signals(world: World):
    w = world
    w.tick()  # the session's first mark: starting equity 100,000
    big = w.buy("AAA", 900)  # manual orders are not sized: 90,000 of AAA
    resting = w.resting_buy("BBB", 10, "40")
    w.step()
    assert w.order(big).status is OrderStatus.FILLED
    assert w.order(resting).status is OrderStatus.ACCEPTED
    (fill_price,) = {f.price for f in w.fills(big)}

    # 89.20: a loss of 900 x (fill - 89.20), just under 10 % of 100,000 -- not yet
    w.price("AAA", "89.20")
    w.step(2)
    assert 9_000 < 900 * (fill_price - D("89.20")) < 10_000
    assert not w.ex.kill_switch.active and w.alerts() == []

    w.price("AAA", "88.50")
    w.step()
    state = w.ex.kill_switch
    assert state.active and state.by == "system"
    loss = 900 * (fill_price - D("88.50"))
    assert state.reason == (
        f"daily loss {loss:,.2f} reached 10% of starting equity 100,000.00 (limit 10,000.00)"
    )
    assert w.stored_switch()["active"] is True
    assert w.stored_switch()["reason"] == state.reason
    (critical,) = [a for a in w.alerts() if a.level is AlertLevel.CRITICAL]
    assert critical.message == f"kill switch on: {state.reason}"
    assert critical.details["reason"] == state.reason

    close_id = close_client_order_id(state, "AAA")
    assert [o.client_order_id for o in w.close_orders()] == [close_id]
    w.step()
    assert w.order(resting).status is OrderStatus.CANCELLED
    close = w.order(close_id)
    assert close is not None and close.status is OrderStatus.FILLED
    assert close.request.reduce_only and close.request.side is Side.SELL
    assert close.request.qty == D(900)
    assert w.position_qty("AAA") == 0
    (trade,) = w.trades("AAA")
    assert trade.status is TradeStatus.CLOSED and trade.exit_reason == "kill_switch"
    assert trade.pnl is not None and trade.pnl < 0
    (actions,) = w.history(ACTIONS_KEY)
    assert actions.value["cancelled"] == 1 and actions.value["closing"] == ["AAA"]
    with w.store.unit_of_work(read_only=True) as uow:
        row = uow.journal.daily_pnl(OPEN.date())
    assert row is not None and row.kill_switch_triggered

    sid = w.signal("BBB")
    new_risk = w.buy("BBB", 1)
    w.step()
    s = w.get_signal(sid)
    assert s.status is SignalStatus.REJECTED
    assert s.reason == f"kill switch is on: {state.reason}"
    assert w.get_command(command_id(new_risk)).status is CommandStatus.REJECTED
    assert w.order(f"ax-s{sid}-entry") is None and w.order(new_risk) is None
    assert len(w.close_orders()) == 1  # actions ran once


# ------------------------------------------------------------------------------- minimum equity
@pytest.mark.parametrize(("cash", "latched"), [("20000", True), ("25000", False)])
def test_equity_below_the_minimum_latches_on_the_first_mark(tmp_path: Path, cash, latched):
    w = World(tmp_path, cash=cash)
    try:
        sid = w.signal("BBB")
        w.tick()
        assert w.ex.kill_switch.active is latched
        s = w.get_signal(sid)
        if latched:
            reason = w.ex.kill_switch.reason
            assert reason == "equity 20,000.00 fell below 25,000.00 (PDT)"
            assert s.status is SignalStatus.REJECTED
            assert s.reason == f"kill switch is on: {reason}"
            assert {a.level for a in w.alerts()} == {AlertLevel.CRITICAL, AlertLevel.WARNING}
        else:
            assert s.status is SignalStatus.ROUTED and w.alerts() == []
    finally:
        w.store.engine.dispose()


# ------------------------------------------------------------------------ consecutive losses
def _closed_trades(w: World, returns: list[str]) -> None:
    """Closed trades with the given returns, the last one closing last (inserted newest first,
    so the order comes from the exit times, not from the row ids)."""
    with w.store.unit_of_work() as uow:
        for i, r in reversed(list(enumerate(returns))):
            entry = START - timedelta(minutes=20 - i)
            trade = TradeExecution(
                ticker="AAA",
                direction=Direction.LONG,
                trade_type=TradeType.DAY,
                entry_price=D(100),
                shares=D(10),
                entry_time=entry,
            )
            trade.id = uow.journal.open_trade(trade)
            trade.status = TradeStatus.CLOSED
            trade.exit_time = entry + timedelta(seconds=30)
            trade.exit_price = D(100) * (1 + D(r))
            trade.pnl = D(1000) * D(r)
            trade.pnl_pct = D(r)
            trade.exit_reason = "signal"
            uow.journal.update_trade(trade)
        uow.commit()


@pytest.mark.parametrize(
    ("returns", "latched"),
    [
        (["-0.035", "-0.04", "-0.031"], True),
        (["0.05", "-0.035", "-0.04", "-0.031"], True),
        (["-0.05", "-0.04"], False),  # two losses only
        (["-0.05", "-0.02", "-0.04"], False),  # a 2 % loss breaks the run
        (["-0.05", "-0.04", "-0.03"], False),  # exactly 3 % is not more than 3 %
        (["-0.05", "-0.05", "-0.05", "0.01"], False),  # the latest trade won
    ],
)
def test_consecutive_losing_trades_latch_only_beyond_the_threshold(
    tmp_path: Path, returns, latched
):
    w = World(tmp_path)
    try:
        _closed_trades(w, returns)
        w.tick()
        assert w.ex.kill_switch.active is latched
        if latched:
            reason = w.ex.kill_switch.reason or ""
            assert reason.startswith("3 consecutive losing trades")
            assert "-3.5" in reason and "-3.1" in reason
            assert len(w.alerts()) >= 1
        else:
            assert w.alerts() == []
    finally:
        w.store.engine.dispose()


def test_three_losing_round_trips_latch_after_the_third_fill(world: World):
    w = world
    w.tick()
    for n in range(3):
        buy = w.buy("AAA", 100)
        w.step()
        assert w.order(buy).status is OrderStatus.FILLED
        assert not w.ex.kill_switch.active, f"latched after {n} losing trades"
        w.price("AAA", "96")  # -4 %
        w.step()
        w.sell_reducing("AAA", 100)
        w.step()
        w.price("AAA", "100")
    returns = [t.pnl_pct for t in w.trades("AAA")]
    assert len(returns) == 3 and all(r is not None and r < D("-0.03") for r in returns)
    reason = w.ex.kill_switch.reason or ""
    assert w.ex.kill_switch.active and reason.startswith("3 consecutive losing trades")


def test_a_release_after_consecutive_losses_is_not_undone_by_the_same_losses(world: World):
    w = world
    _closed_trades(w, ["-0.05", "-0.05", "-0.05"])
    w.tick()
    assert w.ex.kill_switch.active
    off = w.command("kill_switch_off", {"reason": "reviewed the three losses"}, by="bob")
    w.step(3)
    assert w.get_command(off).status is CommandStatus.APPLIED
    assert not w.ex.kill_switch.active
    sid = w.signal("BBB")
    w.step()
    assert w.get_signal(sid).status is SignalStatus.ROUTED
    # a further single loss is not three in a row since the release
    w.price("BBB", "48")
    w.step()
    w.sell_reducing("BBB", int(w.position_qty("BBB")))
    w.step(2)
    (trade,) = w.trades("BBB")
    assert trade.status is TradeStatus.CLOSED and trade.pnl_pct is not None
    assert trade.pnl_pct < D("-0.03")
    assert not w.ex.kill_switch.active


# -------------------------------------------------------------------------------- broker outage
def test_broker_outage_beyond_60_seconds_latches_and_actions_run_once_it_is_back(
    tmp_path: Path,
):
    w = World(tmp_path, switchable=True)
    broker = w.broker
    assert isinstance(broker, SwitchableBroker)
    try:
        w.tick()
        long_ = w.buy("AAA", 20)
        resting = w.resting_buy("BBB", 10, "40")
        w.step()
        assert w.position_qty("AAA") == 20

        broker.down = True
        outage = w.clock.now() + timedelta(seconds=1)
        w.clock.advance(timedelta(seconds=1))
        run(w.ex.tick())
        assert w.ex.kill_monitor is not None
        assert w.ex.kill_monitor.disconnected_since == outage
        for _ in range(4):  # 15, 30, 45, 60 s: not more than 60 s yet
            w.clock.advance(timedelta(seconds=15))
            run(w.ex.tick())
            assert not w.ex.kill_switch.active
        w.clock.advance(timedelta(seconds=1))
        run(w.ex.tick())
        state = w.ex.kill_switch
        assert state.active and state.reason == "broker connection lost for 61 s (limit 60 s)"
        assert w.stored_switch()["active"] is True
        assert [a.level for a in w.alerts()] == [AlertLevel.CRITICAL]

        # while the broker is down the actions wait
        w.clock.advance(timedelta(seconds=30))
        run(w.ex.tick())
        assert w.close_orders() == [] and w.history(ACTIONS_KEY) == []
        assert w.order(resting).status is OrderStatus.ACCEPTED

        broker.down = False
        w.step()
        close_id = close_client_order_id(state, "AAA")
        assert [o.client_order_id for o in w.close_orders()] == [close_id]
        w.step(3)
        assert w.order(resting).status is OrderStatus.CANCELLED
        assert w.order(close_id).status is OrderStatus.FILLED
        assert w.position_qty("AAA") == 0
        assert broker.submitted.count(close_id) == 1
        (actions,) = w.history(ACTIONS_KEY)
        assert actions.value["closing"] == ["AAA"] and actions.value["cancelled"] == 1
        assert w.ex.kill_monitor.disconnected_since is None
        assert w.ex.kill_switch == state  # still latched once the broker is back
        assert long_ in broker.submitted
    finally:
        w.store.engine.dispose()


def test_actions_left_waiting_by_an_outage_are_finished_once_after_a_restart(tmp_path: Path):
    w = World(tmp_path, switchable=True)
    broker = w.broker
    assert isinstance(broker, SwitchableBroker)
    try:
        w.tick()
        w.buy("AAA", 20)
        resting = w.resting_buy("BBB", 10, "40")
        w.step()
        broker.down = True
        for _ in range(3):
            w.clock.advance(timedelta(seconds=31))
            run(w.ex.tick())
        state = w.ex.kill_switch
        assert state.active and (state.reason or "").startswith("broker connection lost")
        assert w.close_orders() == [] and w.history(ACTIONS_KEY) == []

        # the process stops during the outage and starts again once the broker answers
        run(w.ex.shutdown())
        w.broker = SwitchableBroker(w.new_paper_broker())
        w.ex = w.make_executor("after-restart")
        w.step(3)
        assert w.ex.kill_switch == state
        close_id = close_client_order_id(state, "AAA")
        assert [o.client_order_id for o in w.close_orders()] == [close_id]
        assert w.broker.submitted == [close_id]
        assert w.order(close_id).status is OrderStatus.FILLED
        assert w.order(resting).status is OrderStatus.CANCELLED
        assert [h.value["for"] for h in w.history(ACTIONS_KEY)] == [
            close_id.removeprefix("ax-k").removesuffix("-close-AAA")
        ]
    finally:
        w.store.engine.dispose()


def test_short_outages_do_not_add_up(tmp_path: Path):
    w = World(tmp_path, switchable=True)
    broker = w.broker
    assert isinstance(broker, SwitchableBroker)
    try:
        w.tick()
        for _ in range(3):  # 50 s down, then a tick with the broker answering
            broker.down = True
            for _ in range(6):
                w.clock.advance(timedelta(seconds=10))
                run(w.ex.tick())
            broker.down = False
            w.clock.advance(timedelta(seconds=1))
            run(w.ex.tick())
        assert not w.ex.kill_switch.active and w.alerts() == []
    finally:
        w.store.engine.dispose()


# ------------------------------------------------------------------------- restart and release
def test_the_latch_survives_a_restart_without_repeating_its_actions(world: World):
    w = world
    w.tick()
    w.buy("AAA", 900)
    w.step()
    # the price falls in thin trading: the closing order fills 100 shares a minute
    w.price("AAA", "88", volume=1_000)
    w.step()
    state = w.ex.kill_switch
    assert state.active and (state.reason or "").startswith("daily loss")
    close_id = close_client_order_id(state, "AAA")
    w.step()
    assert w.order(close_id).status is OrderStatus.PARTIALLY_FILLED
    (actions,) = w.history(ACTIONS_KEY)
    alerts = w.alerts()

    # the process stops and starts again: new broker connection, new executor, same store
    run(w.ex.shutdown())
    left = w.position_qty("AAA")
    assert 0 < left < 900
    w.ex = w.make_executor("after-restart", broker=w.new_paper_broker())
    w.step()
    assert w.ex.kill_switch == state
    assert [o.client_order_id for o in w.close_orders()] == [close_id]
    assert w.history(ACTIONS_KEY) == [actions]
    assert w.alerts() == alerts
    w.step(2)
    # the one closing order keeps working down the position
    assert w.position_qty("AAA") < left
    assert [o.client_order_id for o in w.close_orders()] == [close_id]
    assert w.history(ACTIONS_KEY) == [actions]
    sid = w.signal("BBB")
    w.step()
    assert w.get_signal(sid).status is SignalStatus.REJECTED


def test_only_a_named_person_releases_the_switch_and_it_is_recorded(world: World):
    w = world
    w.tick()
    on = w.command("kill_switch_on", {"reason": "news pending"}, by="alice")
    w.step()
    assert w.get_command(on).status is CommandStatus.APPLIED
    state = w.ex.kill_switch
    assert state.active and state.reason == "news pending" and state.by == "alice"

    # a restart keeps it on
    run(w.ex.shutdown())
    w.ex = w.make_executor("after-restart", broker=w.new_paper_broker())
    w.step()
    assert w.ex.kill_switch == state
    blocked = w.signal("BBB")
    w.step()
    assert w.get_signal(blocked).status is SignalStatus.REJECTED

    off = w.command("kill_switch_off", {"reason": "news out, spreads normal"}, by="bob")
    w.step(2)
    assert w.get_command(off).status is CommandStatus.APPLIED
    assert "by bob" in (w.get_command(off).result or "")
    assert not w.ex.kill_switch.active
    history = w.history(KILL_SWITCH_KEY)
    assert [(h.value["active"], h.updated_by) for h in history] == [
        (True, "alice"),
        (False, "bob"),
    ]
    assert history[-1].value["by"] == "bob"
    assert history[-1].value["reason"] == "news out, spreads normal"
    routed = w.signal("BBB")
    w.step()
    assert w.get_signal(routed).status is SignalStatus.ROUTED


def test_the_engine_cannot_release_the_switch(world: World):
    w = world
    w.tick()
    w.command("kill_switch_on", {"reason": "news pending"}, by="alice")
    w.step()
    off = w.command("kill_switch_off", {"reason": "auto"}, by="system")
    w.step()
    assert w.get_command(off).status is CommandStatus.REJECTED
    assert w.ex.kill_switch.active
    assert [h.value["active"] for h in w.history(KILL_SWITCH_KEY)] == [True]


# ---------------------------------------------------------------------- exits while it is on
def test_exits_go_through_while_the_switch_is_on(world: World):
    w = world
    w.tick()
    swing = w.signal(
        "AAA",
        stop=D(97),
        target=D(110),
        trade_type=TradeType.SWING,
        order_type=OrderType.BRACKET,
    )
    held = w.signal("BBB", stop=D(45), trade_type=TradeType.SWING)
    day = w.buy("CCC", 50)
    w.step(2)
    entry = w.order(f"ax-s{swing}-entry")
    assert entry is not None and entry.status is OrderStatus.FILLED
    swing_qty = w.position_qty("AAA")
    bbb_qty = w.position_qty("BBB")
    assert swing_qty > 0 and bbb_qty > 2
    assert w.order(day).status is OrderStatus.FILLED

    on = w.command("kill_switch_on", {"reason": "stop for the day"}, by="alice")
    w.step(2)
    assert w.get_command(on).status is CommandStatus.APPLIED
    assert w.ex.kill_switch.active
    # swing positions stay open and keep their protective legs
    assert w.position_qty("AAA") == swing_qty
    for leg in (f"ax-s{swing}-entry-tp", f"ax-s{swing}-entry-sl"):
        order = w.order(leg)
        assert order is not None and not order.status.is_terminal
    assert w.order(f"ax-s{held}-entry") is not None
    # the day trade is closed
    close_id = close_client_order_id(w.ex.kill_switch, "CCC")
    assert [o.client_order_id for o in w.close_orders()] == [close_id]
    assert w.order(close_id).status is OrderStatus.FILLED and w.position_qty("CCC") == 0

    # a reduce-only manual order goes through
    partial = w.sell_reducing("BBB", 2)
    w.step()
    assert w.order(partial).status is OrderStatus.FILLED
    assert w.position_qty("BBB") == bbb_qty - 2

    # the stop-loss leg fills when the price falls through it
    w.price("AAA", "96")
    w.step(2)
    assert w.order(f"ax-s{swing}-entry-sl").status is OrderStatus.FILLED
    assert w.position_qty("AAA") == 0
    (trade,) = w.trades("AAA")
    assert trade.status is TradeStatus.CLOSED and trade.exit_reason == "stop_loss"
    assert w.ex.kill_switch.active
