"""The executor's whole pipeline through to the exit: signal → instrument router → sizer → entry →
risk gate → order → fill → position manager → exit monitor → exit order → fill → journal.

Real SQLite store, real paper broker, a hand-written market (``FixedMarket``) and manual clocks.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import (
    Command,
    CommandType,
    Direction,
    OrderStatus,
    OrderType,
    Signal,
    SignalStatus,
    TradeStatus,
    TradeType,
)
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import ManualClock, default_calendar
from core.ports import OrderRejected
from core.stages import use_full_pipeline
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars

D = Decimal
CAL = default_calendar()


def history(symbol: str, days: list[date], price: str, last_day_overrides=None) -> list:
    bars = []
    for i, day in enumerate(days):
        overrides = last_day_overrides if i == len(days) - 1 else None
        bars += session_bars(symbol, day, price=price, volume=2_000_000, overrides=overrides)
    return bars


def flat_rows(price: str) -> tuple:
    return (price, price, price, price, 2_000_000)


def build(tmp_path, clock, bars, *, mode=InstrumentMode.OPTIONS, cash="100000"):
    store = open_store(f"sqlite:///{tmp_path / 'pm.db'}")
    market = FixedMarket(clock, bars, adv={s: 5_000_000 for s in bars}, spread="0.02")
    broker = PaperBroker(market, store.paper_ledger("t"), PaperConfig(initial_cash=D(cash)))
    ex = TradeExecutor(
        store,
        broker,
        market,
        ExecutorConfig(account="t"),
        clock=clock,
        wall_clock=ManualClock(at(1, 0)),
        holder_id="x",
    )
    use_full_pipeline(ex, mode)
    return store, ex


def add_signal(store, clock, symbol, direction, entry, stop, target=None, **kw):
    signal = Signal(
        symbol,
        direction,
        D(entry),
        D(stop),
        clock.now(),
        target=None if target is None else D(target),
        **{"conviction": 80, "trade_type": TradeType.DAY, **kw},
    )
    with store.unit_of_work() as uow:
        sid = uow.signals.add(signal)
        uow.commit()
    return sid


def tick_at(ex, clock, when, times: int = 1) -> None:
    clock.set(when)
    for _ in range(times):
        asyncio.run(ex.tick())


def orders_of(store):
    with store.unit_of_work(read_only=True) as uow:
        return {o.client_order_id: o for o in uow.orders.recent(500)}


def trades_of(store):
    with store.unit_of_work(read_only=True) as uow:
        return uow.journal.trades(limit=100)


@pytest.fixture
def closers():
    stores = []
    yield stores
    for s in stores:
        s.engine.dispose()


DAYS = [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]


def test_signal_to_exit_at_the_target_full_lifecycle(tmp_path, closers):
    # AAPL at 200 for three sessions; on the 20th it trades at 205 from 10:25 ET (15:25 UTC)
    jump = {at(20, 15, 25) + timedelta(minutes=i): flat_rows("205") for i in range(200)}
    clock = ManualClock(at(20, 15, 15))
    store, ex = build(tmp_path, clock, {"AAPL": history("AAPL", DAYS, "200", jump)})
    closers.append(store)
    sid = add_signal(store, clock, "AAPL", Direction.LONG, "200", "198", "204")

    tick_at(ex, clock, at(20, 15, 15))  # routed, sized, gated, sent
    tick_at(ex, clock, at(20, 15, 16))  # the fill comes back: position and trade open
    with store.unit_of_work(read_only=True) as uow:
        signal = uow.signals.get(sid)
        stages = [d.stage for d in uow.decisions.for_signal(sid)]
        (trade,) = uow.journal.open_trades()
    assert signal.status is SignalStatus.ROUTED
    assert stages == ["validate", "kill_switch", "instrument", "sizing", "entry", "risk"]
    assert trade.ticker == "AAPL" and trade.stop_loss == D("198") and trade.target_price == D(204)
    assert ex.position_manager.watched["AAPL"].position is not None

    tick_at(ex, clock, at(20, 15, 20))  # still 200: nothing fires
    assert not [c for c in orders_of(store) if c.startswith("ax-x")]

    tick_at(ex, clock, at(20, 15, 27))  # 205 >= 204: the target exit is written and sent
    exits = [o for c, o in orders_of(store).items() if c.startswith("ax-x")]
    assert [o.client_order_id for o in exits] == [f"ax-x{trade.id}-target-1"]
    (exit_order,) = exits
    assert exit_order.request.reduce_only and exit_order.request.side.value == "sell"
    assert exit_order.request.qty == trade.shares
    tick_at(ex, clock, at(20, 15, 28), times=2)
    assert orders_of(store)[exit_order.client_order_id].status is OrderStatus.FILLED
    (closed,) = trades_of(store)
    assert closed.status is TradeStatus.CLOSED and closed.pnl > 0
    assert ex.journal.positions.get("AAPL") is None
    with store.unit_of_work(read_only=True) as uow:
        exit_decision = [d for d in uow.decisions.for_signal(sid) if d.stage == "exit"]
    assert exit_decision[0].details["reason"] == "target"
    assert exit_decision[0].details["client_order_id"] == exit_order.client_order_id
    # nothing more is sent for a closed trade
    tick_at(ex, clock, at(20, 15, 40), times=2)
    assert len([c for c in orders_of(store) if c.startswith("ax-x")]) == 1


def test_day_trade_closes_five_minutes_before_an_early_close(tmp_path, closers):
    # 2026-11-27 closes at 13:00 ET (18:00 UTC): the day trade is closed from 12:55 ET
    days = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]
    assert CAL.session_close(days[-1]) == at(27, 18, 0)
    clock = ManualClock(at(27, 16, 30))
    store, ex = build(tmp_path, clock, {"AAPL": history("AAPL", days, "200")})
    closers.append(store)
    add_signal(store, clock, "AAPL", Direction.LONG, "200", "198", "204")
    tick_at(ex, clock, at(27, 16, 30))
    tick_at(ex, clock, at(27, 16, 31))
    assert "AAPL" in ex.journal.positions
    tick_at(ex, clock, at(27, 17, 54))
    assert not [c for c in orders_of(store) if c.startswith("ax-x")]
    tick_at(ex, clock, at(27, 17, 55))
    (trade,) = trades_of(store)
    assert [c for c in orders_of(store) if c.startswith("ax-x")] == [f"ax-x{trade.id}-eod_close-1"]
    tick_at(ex, clock, at(27, 17, 56), times=2)
    assert ex.journal.positions.get("AAPL") is None
    (trade,) = trades_of(store)
    assert trade.status is TradeStatus.CLOSED


def test_leveraged_etf_trade_stops_out_on_the_etf_stop(tmp_path, closers):
    # QQQ stays at 500; TQQQ falls from 80 to 77 at 10:30 ET. The QQQ stop (495, 1%) never
    # trades, but the fund's own stop (3% below its entry) does.
    drop = {at(20, 15, 30) + timedelta(minutes=i): flat_rows("77") for i in range(100)}
    clock = ManualClock(at(20, 15, 15))
    bars = {
        "QQQ": history("QQQ", DAYS, "500"),
        "TQQQ": history("TQQQ", DAYS, "80", drop),
        "SQQQ": history("SQQQ", DAYS, "20"),
    }
    store, ex = build(tmp_path, clock, bars, mode=InstrumentMode.LEVERAGED_ETF)
    closers.append(store)
    sid = add_signal(store, clock, "QQQ", Direction.LONG, "500", "495", "510")
    tick_at(ex, clock, at(20, 15, 15))
    tick_at(ex, clock, at(20, 15, 16))
    with store.unit_of_work(read_only=True) as uow:
        sizing = next(d for d in uow.decisions.for_signal(sid) if d.stage == "sizing")
    etf_stop = D(sizing.details["stop"])
    assert D("77") < etf_stop < D("80")
    watched = ex.position_manager.watched["TQQQ"].position
    assert watched is not None and watched.leverage == D(3)
    tick_at(ex, clock, at(20, 15, 25))
    assert not [c for c in orders_of(store) if c.startswith("ax-x")]
    tick_at(ex, clock, at(20, 15, 31))
    exits = [c for c in orders_of(store) if c.startswith("ax-x")]
    assert len(exits) == 1 and "-stop_loss-" in exits[0]


def test_one_exit_at_a_time_and_exits_pass_the_kill_switch(tmp_path, closers):
    clock = ManualClock(at(20, 19, 0))  # 14:00 ET
    store, ex = build(tmp_path, clock, {"AAPL": history("AAPL", DAYS, "200")})
    closers.append(store)
    add_signal(store, clock, "AAPL", Direction.LONG, "200", "198", "204")
    tick_at(ex, clock, at(20, 19, 0))
    tick_at(ex, clock, at(20, 19, 1))
    assert "AAPL" in ex.journal.positions
    # a trader halts trading: entries stop, exits do not
    with store.unit_of_work() as uow:
        uow.commands.add(
            Command(CommandType.KILL_SWITCH_ON.value, {"reason": "news"}, "ana", clock.now())
        )
        uow.commit()
    clock.set(at(20, 20, 55))  # 15:55 ET: the day trade must go
    asyncio.run(ex.commands.apply_pending())
    assert ex.kill_switch.active
    # two checks before the broker reports anything: still one exit order
    asyncio.run(ex.manage_positions())
    asyncio.run(ex.manage_positions())
    exits = [c for c in orders_of(store) if c.startswith("ax-x")]
    assert len(exits) == 1 and "-eod_close-" in exits[0]
    tick_at(ex, clock, at(20, 20, 56), times=2)
    assert ex.journal.positions.get("AAPL") is None


def test_bracket_legs_are_cancelled_before_an_exit_closes_the_position(tmp_path, closers):
    clock = ManualClock(at(20, 19, 0))
    store, ex = build(tmp_path, clock, {"AAPL": history("AAPL", DAYS, "200")})
    closers.append(store)
    add_signal(
        store, clock, "AAPL", Direction.LONG, "200", "190", "220", order_type=OrderType.BRACKET
    )
    tick_at(ex, clock, at(20, 19, 0))
    tick_at(ex, clock, at(20, 19, 1))
    legs = [o for c, o in orders_of(store).items() if c.endswith(("-tp", "-sl"))]
    assert len(legs) == 2 and all(not o.status.is_terminal for o in legs)
    tick_at(ex, clock, at(20, 20, 55))  # EOD
    tick_at(ex, clock, at(20, 20, 56), times=2)
    orders = orders_of(store)
    assert all(orders[o.client_order_id].status is OrderStatus.CANCELLED for o in legs)
    (exit_id,) = [c for c in orders if c.startswith("ax-x")]
    assert orders[exit_id].status is OrderStatus.FILLED
    assert ex.journal.positions.get("AAPL") is None
    with store.unit_of_work(read_only=True) as uow:
        fills = [f for f in uow.fills.recent(100) if f.symbol == "AAPL"]
    bought = sum(f.qty for f in fills if f.side.value == "buy")
    sold = sum(f.qty for f in fills if f.side.value == "sell")
    assert bought == sold > 0  # closed once: the legs never filled on top of the exit


def test_scale_in_adds_the_rest_on_a_pullback_that_holds(tmp_path, closers):
    # AAPL at 200, then 203 from 10:00 ET; the entry is at 10:15 ET. The 10:10-10:20 ET bar stays
    # above the 8/9 cloud; the 10:20-10:30 ET bar dips into it and closes above it: the second
    # half goes in (the position is a winner at 203.50, so the gate allows the add)
    rows = {at(20, 15, 0) + timedelta(minutes=i): flat_rows("203") for i in range(20)}
    rows.update(
        {
            at(20, 15, 20) + timedelta(minutes=i): ("203", "204", "201", "203.5", 2_000_000)
            for i in range(10)
        }
    )
    rows.update({at(20, 15, 30) + timedelta(minutes=i): flat_rows("203.5") for i in range(300)})
    clock = ManualClock(at(20, 15, 15))
    store, ex = build(tmp_path, clock, {"AAPL": history("AAPL", DAYS, "200", rows)})
    closers.append(store)
    sid = add_signal(store, clock, "AAPL", Direction.LONG, "203", "201", "207")
    tick_at(ex, clock, at(20, 15, 15))
    tick_at(ex, clock, at(20, 15, 16))
    with store.unit_of_work(read_only=True) as uow:
        entry = uow.orders.get(f"ax-s{sid}-entry")
        entry_decision = next(d for d in uow.decisions.for_signal(sid) if d.stage == "entry")
    remaining = D(entry_decision.details["scale_in_remaining"])
    assert remaining > 0 and entry.status is OrderStatus.FILLED
    assert sid in ex.position_manager.plans
    tick_at(ex, clock, at(20, 15, 20))  # the 10:10-10:20 ET bar does not touch the cloud
    assert f"ax-s{sid}-add" not in orders_of(store)
    tick_at(ex, clock, at(20, 15, 30))
    tick_at(ex, clock, at(20, 15, 31), times=2)
    add = orders_of(store)[f"ax-s{sid}-add"]
    assert add.status is OrderStatus.FILLED and add.request.qty == remaining
    assert ex.journal.positions["AAPL"].qty == entry.request.qty + remaining
    with store.unit_of_work(read_only=True) as uow:
        scale = [d for d in uow.decisions.for_signal(sid) if d.stage == "scale_in"]
        (trade,) = uow.journal.open_trades()
    assert len(scale) == 1 and scale[0].approved
    assert "pullback cloud" in scale[0].reason
    assert trade.shares == entry.request.qty + remaining
    assert sid not in ex.position_manager.plans


def test_a_scale_in_plan_is_closed_with_its_reason_and_not_rebuilt_after_a_restart(
    tmp_path, closers
):
    # the price falls through the stop: the plan is cancelled (and the stop exit taken)
    fall = {at(20, 15, 20) + timedelta(minutes=i): flat_rows("197") for i in range(300)}
    clock = ManualClock(at(20, 15, 15))
    bars = {"AAPL": history("AAPL", DAYS, "200", fall)}
    store, ex = build(tmp_path, clock, bars)
    closers.append(store)
    sid = add_signal(store, clock, "AAPL", Direction.LONG, "200", "198", "206")
    tick_at(ex, clock, at(20, 15, 15))
    tick_at(ex, clock, at(20, 15, 16))
    assert sid in ex.position_manager.plans
    tick_at(ex, clock, at(20, 15, 30))
    tick_at(ex, clock, at(20, 15, 31), times=2)
    with store.unit_of_work(read_only=True) as uow:
        scale = [d for d in uow.decisions.for_signal(sid) if d.stage == "scale_in"]
    assert len(scale) == 1 and not scale[0].approved and scale[0].reason
    assert f"ax-s{sid}-add" not in orders_of(store)
    # a new executor on the same store does not bring the plan back
    asyncio.run(ex.shutdown())
    ex2 = TradeExecutor(
        store,
        PaperBroker(ex.market, store.paper_ledger("t"), PaperConfig()),
        ex.market,
        ExecutorConfig(account="t"),
        clock=clock,
        wall_clock=ManualClock(at(1, 0)),
        holder_id="y",
    )
    use_full_pipeline(ex2, InstrumentMode.OPTIONS)
    tick_at(ex2, clock, at(20, 15, 33))
    assert sid not in ex2.position_manager.plans


class RefusingExits:
    """The paper broker, except that it refuses every exit-monitor order."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def submit_order(self, request):
        if request.client_order_id.startswith("ax-x"):
            raise OrderRejected("exits refused for the test", "test")
        return await self._inner.submit_order(request)


def test_an_exit_the_broker_keeps_refusing_is_tried_three_times_then_alerted(tmp_path, closers):
    clock = ManualClock(at(20, 19, 0))
    store, ex = build(tmp_path, clock, {"AAPL": history("AAPL", DAYS, "200")})
    closers.append(store)
    ex.broker = RefusingExits(ex.broker)
    add_signal(store, clock, "AAPL", Direction.LONG, "200", "198", "204")
    tick_at(ex, clock, at(20, 19, 0))
    tick_at(ex, clock, at(20, 19, 1))
    for minute in range(55, 60):  # EOD from 15:55 ET, one try per tick
        tick_at(ex, clock, at(20, 20, minute))
    exits = sorted(c for c in orders_of(store) if c.startswith("ax-x"))
    (trade,) = trades_of(store)
    assert exits == [f"ax-x{trade.id}-eod_close-{n}" for n in (1, 2, 3)]
    assert all(orders_of(store)[c].status is OrderStatus.REJECTED for c in exits)
    with store.unit_of_work(read_only=True) as uow:
        alerts = [a for a in uow.alerts.recent() if a.kind == "exit"]
    assert len(alerts) == 1 and "eod_close exit was refused 3 times" in alerts[0].message
    assert "AAPL" in ex.journal.positions
