"""The seed 001 pipeline in the executor: signal → instrument router → sizer → risk gate →
order → fill, with every stage's decision stored (SQLite store, paper broker, fixed market)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import Direction, OrderStatus, Signal, SignalStatus, TradeType
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import ManualClock
from core.stages import use_full_pipeline
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars

D = Decimal
OPEN = at(20, 14, 30)


@pytest.fixture
def world(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    clock = ManualClock(OPEN + timedelta(minutes=45))
    prices = {"QQQ": "500", "TQQQ": "80", "SQQQ": "20", "AAPL": "200", "ZZZT": "10"}
    market = FixedMarket(
        clock,
        {s: session_bars(s, OPEN.date(), price=p, volume=2_000_000) for s, p in prices.items()},
        adv={s: 5_000_000 for s in prices},
        spread="0.02",
    )
    broker = PaperBroker(market, store.paper_ledger("t"), PaperConfig())
    ex = TradeExecutor(
        store,
        broker,
        market,
        ExecutorConfig(account="t"),
        clock=clock,
        wall_clock=ManualClock(OPEN),
        holder_id="x",
    )
    yield store, ex, clock
    store.engine.dispose()


def add(store, clock, symbol, direction, entry, stop, trade_type=TradeType.DAY, conviction=80):
    s = Signal(
        symbol,
        direction,
        D(entry),
        D(stop),
        clock.now(),
        conviction=conviction,
        trade_type=trade_type,
    )
    with store.unit_of_work() as uow:
        sid = uow.signals.add(s)
        uow.commit()
    return sid


def trail(store, sid):
    with store.unit_of_work(read_only=True) as uow:
        return (
            uow.signals.get(sid),
            uow.decisions.for_signal(sid),
            uow.orders.get(f"ax-s{sid}-entry"),
        )


def test_leveraged_etf_mode_buys_the_bull_or_inverse_fund_sized_and_gated(world):
    store, ex, clock = world
    use_full_pipeline(ex, InstrumentMode.LEVERAGED_ETF)
    long_ = add(store, clock, "QQQ", Direction.LONG, "500", "495")
    short = add(store, clock, "QQQ", Direction.SHORT, "500", "505")
    asyncio.run(ex.tick())
    asyncio.run(ex.tick())
    s, decisions, order = trail(store, long_)
    assert s.status is SignalStatus.ROUTED
    assert [d.stage for d in decisions] == [
        "validate",
        "kill_switch",
        "instrument",
        "sizing",
        "entry",
        "risk",
    ]
    assert order.symbol == "TQQQ" and order.request.side.value == "buy"
    assert order.status is OrderStatus.FILLED
    # ETF sizing: 5% of 100,000 at risk; QQQ stop 1% away -> TQQQ stop 3% away at 80 -> 2083 shares,
    # capped at 15% of equity in notional: 15,000 / 80 = 187 shares; half goes in first (market,
    # conviction 80), the other 94 wait for the first pullback that holds
    assert decisions[3].details["qty"] == "187"
    assert decisions[4].details["entry_type"] == "market"
    assert decisions[4].details["scale_in_remaining"] == "94"
    assert order.request.qty == D(93)
    s2, d2, o2 = trail(store, short)
    # the inverse fund is bought for a short signal; the gate sees the TQQQ long already working
    assert d2[2].details["ticker"] == "SQQQ"
    assert s2.status in (SignalStatus.ROUTED, SignalStatus.REJECTED)
    if o2 is not None:
        assert o2.symbol == "SQQQ" and o2.request.side.value == "buy"


def test_options_without_option_chains_are_rejected_with_a_stored_reason(world):
    store, ex, clock = world
    use_full_pipeline(ex, InstrumentMode.OPTIONS)
    sid = add(store, clock, "QQQ", Direction.LONG, "500", "495", trade_type=TradeType.SCALP)
    asyncio.run(ex.tick())
    s, decisions, order = trail(store, sid)
    assert s.status is SignalStatus.REJECTED and order is None
    assert "gives no option chains" in s.reason  # this market quotes no options
    assert decisions[-2].stage == "instrument" and decisions[-2].approved
    assert decisions[-2].details["instrument"] == "option"
    assert decisions[-1].stage == "options" and not decisions[-1].approved


def test_stock_routing_and_risk_rejections_are_traced(world):
    store, ex, clock = world
    use_full_pipeline(ex, InstrumentMode.OPTIONS)  # day signals trade the stock in options mode
    first = add(store, clock, "AAPL", Direction.LONG, "200", "198")
    asyncio.run(ex.tick())
    _, _, order = trail(store, first)
    # 5% of 100,000 = 5,000 at risk over 2.00 -> 2,500 shares, capped at 15% / 200.01 -> 74,
    # of which 37 go in first
    assert order.symbol == "AAPL" and order.request.qty == D(37)
    again = add(store, clock, "AAPL", Direction.SHORT, "200", "202")
    low = add(store, clock, "AAPL", Direction.LONG, "200", "198", conviction=40)
    asyncio.run(ex.tick())
    s, decisions, _ = trail(store, again)
    assert s.status is SignalStatus.REJECTED and decisions[-1].stage == "risk"
    assert "AAPL" in s.reason
    s, decisions, _ = trail(store, low)
    assert s.status is SignalStatus.REJECTED and decisions[-1].stage == "sizing"
    assert "conviction 40" in s.reason


def test_a_fund_counts_toward_the_sector_it_tracks():
    from core.instruments.config import InstrumentConfig
    from core.instruments.router import InstrumentRouter
    from core.stages import sector_lookup

    sector = sector_lookup(InstrumentRouter(InstrumentConfig()))
    assert sector("TECL") == sector("AAPL") == sector("MSFT") is not None
    assert sector("SOXL") == sector("NVDA") is not None
    assert sector("ZZZT") is None


def test_a_signal_on_a_fund_itself_keeps_its_own_stop(world):
    store, ex, clock = world
    use_full_pipeline(ex, InstrumentMode.OPTIONS)  # day trades trade the signal's own ticker
    sid = add(store, clock, "TQQQ", Direction.SHORT, "80", "82")
    asyncio.run(ex.tick())
    s, decisions, order = trail(store, sid)
    sizing = next(d for d in decisions if d.stage == "sizing")
    # the stop is a TQQQ price already: not leveraged again, and above the entry for a short
    assert sizing.details["stop"] == "82"
    assert s.status is SignalStatus.ROUTED and order.symbol == "TQQQ"
    assert order.request.instrument_type.value == "leveraged_etf"
