"""Notional (dollar amount) orders: the request's rules, Alpaca (against its emulator), the
refusal by Interactive Brokers, and the paper broker's fills for a dollar amount."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.brokers.alpaca import AlpacaBroker
from core.brokers.commission import CommissionSchedule
from core.brokers.ibkr import IBKRBroker
from core.brokers.paper import PaperBroker, PaperConfig
from core.domain import (
    BrokerEvent,
    EventKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    ValidationError,
)
from core.ports import OrderRejected
from db.engine import make_engine, migrate
from db.store import SqlStore
from tests.core.brokers.fixed_market import at, session_bars
from tests.core.brokers.harness import Harness, run
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.tws import TwsEmulator

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]


def notional(coid: str, amount: str, qty: str = "1", side: str = "buy", **kw: Any) -> OrderRequest:
    return OrderRequest(coid, kw.pop("symbol", "AAPL"), Side(side), D(qty), notional=amount, **kw)


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


def test_notional_request_is_exact_and_round_trips_as_plain_data() -> None:
    request = notional("n1", "1000.50", "5.2655")
    assert request.notional == D("1000.50") and isinstance(request.notional, D)
    assert request.order_type is OrderType.MARKET and request.time_in_force is TimeInForce.DAY
    data = request.to_dict()
    assert data["notional"] == "1000.50"
    assert OrderRequest.from_dict(data) == request
    plain = OrderRequest("q1", "AAPL", Side.BUY, D(3))
    assert plain.notional is None and plain.to_dict()["notional"] is None
    legacy = {k: v for k, v in plain.to_dict().items() if k != "notional"}  # stored before
    assert OrderRequest.from_dict(legacy) == plain
    assert notional("n2", 100).notional == D(100)  # ints are exact too


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"notional": "0"}, "notional must be positive"),
        ({"notional": "-5"}, "notional must be positive"),
        ({"notional": "10.005"}, "whole cents"),
        ({"notional": "nan"}, "notional must be a finite number"),
        ({"notional": "abc"}, "notional must be a number"),
        ({"notional": "1E+40"}, "too large"),
        ({"order_type": "limit", "limit_price": "100"}, "must be a market order, not limit"),
        (
            {"order_type": "bracket", "take_profit_price": "200", "stop_loss_price": "100"},
            "must be a market order, not bracket",
        ),
        ({"time_in_force": "gtc"}, "time in force 'day', not 'gtc'"),
        ({"time_in_force": "ioc"}, "time in force 'day', not 'ioc'"),
        ({"qty": "0"}, "qty must be positive"),
    ],
)
def test_notional_request_validation(changes: dict[str, Any], message: str) -> None:
    data = {
        "client_order_id": "bad",
        "symbol": "AAPL",
        "side": "buy",
        "qty": "2",
        "notional": "250.00",
        **changes,
    }
    with pytest.raises(ValidationError, match=message):
        OrderRequest.from_dict(data)


def test_an_order_of_a_notional_request_takes_fills_beyond_the_estimate() -> None:
    order = Order(notional("n3", "1000", "5"))
    order.apply_fill(D("5.2"), D("190"))
    assert order.filled_qty == D("5.2") and order.remaining_qty == 0
    by_qty = Order(OrderRequest("q2", "AAPL", Side.BUY, D(5)))
    with pytest.raises(ValidationError, match="exceeds remaining"):
        by_qty.apply_fill(D("5.2"), D("190"))


# ---------------------------------------------------------------------------------------------
# Alpaca
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def alpaca() -> Iterator[tuple[AlpacaEmulator, AlpacaBroker]]:
    before = set(threading.enumerate())
    with AlpacaEmulator(fill_delay=0.05) as emu:
        broker = AlpacaBroker(
            emu.api_key,
            emu.secret_key,
            base_url=emu.base_url,
            stream_url=emu.stream_url,
            reconnect_backoff=(0.05, 0.2),
            retry_wait=0.01,
            poll_interval=60.0,
        )
        run(broker.connect())
        try:
            yield emu, broker
        finally:
            run(broker.close())
    deadline = time.monotonic() + 5
    while [t for t in threading.enumerate() if t not in before and t.is_alive()]:
        assert time.monotonic() < deadline, "threads started by the test did not end"
        time.sleep(0.01)


def wait_events(
    broker: AlpacaBroker, done: Callable[[list[BrokerEvent]], bool], timeout: float = 5.0
) -> list[BrokerEvent]:
    events: list[BrokerEvent] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        assert time.monotonic() < deadline, f"timed out; events so far: {events}"
        events.extend(run(broker.updates()))
        time.sleep(0.01)
    return events


def test_alpaca_notional_buy_is_sent_as_a_dollar_amount_and_fills_a_fraction(
    alpaca: tuple[AlpacaEmulator, AlpacaBroker],
) -> None:
    emu, broker = alpaca
    ack = run(broker.submit_order(notional("dollars", "1000.50", "5.27")))
    assert ack.status is OrderStatus.ACCEPTED and ack.order_type is OrderType.MARKET
    assert ack.notional == D("1000.50")
    assert ack.qty == D("5.27")  # Alpaca has no quantity yet: the request's estimate
    wire = emu.order("dollars")
    assert wire is not None
    assert (wire["type"], wire["time_in_force"], wire["notional"]) == ("market", "day", "1000.5")

    events = wait_events(broker, lambda ev: any(e.kind is EventKind.FILL for e in ev))
    [fill_event] = [e for e in events if e.kind is EventKind.FILL]
    fill = fill_event.fill
    assert fill is not None and fill_event.status is OrderStatus.FILLED
    # 1000.50 / 190.01 (the ask), rounded down to 9 decimal places by Alpaca
    assert (fill.qty, fill.price, fill.side) == (D("5.265512341"), D("190.01"), Side.BUY)
    assert fill.qty * fill.price <= D("1000.50")
    assert fill.fill_id == f"{ack.broker_order_id}:5.265512341"

    found = run(broker.get_order("dollars"))
    assert found is not None and found.status is OrderStatus.FILLED
    assert (found.qty, found.filled_qty, found.notional) == (fill.qty, fill.qty, D("1000.50"))
    [again] = run(broker.get_fills("dollars"))
    assert (again.fill_id, again.qty, again.price) == (fill.fill_id, fill.qty, fill.price)
    [position] = run(broker.get_positions())
    assert position.qty == D("5.265512341")


def test_alpaca_notional_duplicate_and_lost_answer_are_matched_by_the_amount(
    alpaca: tuple[AlpacaEmulator, AlpacaBroker],
) -> None:
    emu, broker = alpaca
    emu.lose_next_response()
    ack = run(broker.submit_order(notional("lost-dollars", "250", "1.3")))
    assert (ack.client_order_id, ack.notional) == ("lost-dollars", D("250"))
    again = run(broker.submit_order(notional("lost-dollars", "250", "1.3")))
    assert again.broker_order_id == ack.broker_order_id  # the same order: adopted
    with pytest.raises(OrderRejected) as info:
        run(broker.submit_order(notional("lost-dollars", "300", "1.3")))
    assert info.value.code == "duplicate"
    assert len(emu.all_orders()) == 1


def test_alpaca_rejects_a_notional_order_of_a_non_fractionable_asset_by_amount() -> None:
    with AlpacaEmulator(non_fractionable=frozenset({"SPY"})) as emu:
        broker = AlpacaBroker(
            emu.api_key,
            emu.secret_key,
            base_url=emu.base_url,
            stream_url=emu.stream_url,
            poll_interval=60.0,
        )
        run(broker.connect())
        try:
            with pytest.raises(OrderRejected, match=r"buy \$50 of SPY.*not fractionable") as info:
                run(broker.submit_order(notional("spy", "50", symbol="SPY")))
            assert info.value.code == "invalid"
        finally:
            run(broker.close())


# ---------------------------------------------------------------------------------------------
# Interactive Brokers
# ---------------------------------------------------------------------------------------------

IB_REFUSAL = (
    "notional (dollar amount) orders are not supported by Interactive Brokers; send a quantity"
)


def test_ibkr_refuses_notional_orders_before_sending_anything() -> None:
    with TwsEmulator() as tws:

        async def scenario() -> None:
            broker = IBKRBroker("127.0.0.1", tws.port, 12, ack_timeout=2.0)
            with pytest.raises(OrderRejected) as info:  # refused even while not connected
                await broker.submit_order(notional("ib-dollars-0", "100"))
            assert (info.value.reason, info.value.code) == (IB_REFUSAL, "unsupported")
            await broker.connect()
            try:
                contract_requests = len(tws.requests(9))
                with pytest.raises(OrderRejected) as info:
                    await broker.submit_order(notional("ib-dollars", "100", "0.5"))
                assert (info.value.reason, info.value.code) == (IB_REFUSAL, "unsupported")
                assert len(tws.requests(9)) == contract_requests
                assert await broker.get_order("ib-dollars") is None
                ack = await broker.submit_order(OrderRequest("ib-dollars", "AAPL", Side.BUY, D(1)))
                assert ack.status is OrderStatus.ACCEPTED  # the id was never used
            finally:
                await broker.close()

        asyncio.run(asyncio.wait_for(scenario(), 20))
        placed = [fields for _, fields in tws.requests(3)]
        assert len(placed) == 1 and tws.order_by_ref("ib-dollars") is not None


# ---------------------------------------------------------------------------------------------
# Paper broker
# ---------------------------------------------------------------------------------------------

IBKR_FIXED = CommissionSchedule.per_share("0.005", minimum="1.00")
CONFIG = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(100_000), commission=IBKR_FIXED)
FRI = session_bars("AAA", at(20, 0).date())  # flat 100.00; quote 99.99 / 100.01


def test_paper_notional_buy_fills_the_dollar_amount_at_the_fill_price() -> None:
    h = Harness({"AAA": FRI}, config=CONFIG)
    ack = h.submit("pn1", "buy", "9", notional="1000")
    assert ack.notional == D("1000")
    assert ack.qty == D("9.999000099")  # sized at the ask
    [event] = h.updates()
    fill = event.fill
    assert fill is not None and event.status is OrderStatus.FILLED
    # 1000 / 100.01 = 9.99900009999..., rounded down to 9 decimal places
    assert (fill.qty, fill.price) == (D("9.999000099"), D("100.01"))
    assert fill.commission == D("1.00")  # 0.005 a share, 1.00 minimum
    order = h.order("pn1")
    assert order is not None and order.status is OrderStatus.FILLED
    assert (order.qty, order.filled_qty, order.notional) == (fill.qty, fill.qty, D("1000"))
    assert h.positions()["AAA"].qty == D("9.999000099")
    assert h.account().cash == D(100_000) - fill.qty * fill.price - D("1.00")
    assert h.orders("open") == []


def test_paper_notional_order_working_on_bars_fills_at_the_bar_price() -> None:
    moved = session_bars(
        "AAA", at(20, 0).date(), overrides={at(20, 15, 1): ("101", "101", "101", "101", 100_000)}
    )
    config = PaperConfig(
        impact_bps_per_pct_adv=D(0),
        initial_cash=D(100_000),
        commission=IBKR_FIXED,
        latency=timedelta(seconds=30),
    )
    h = Harness({"AAA": moved}, config=config)
    h.submit("pn2", "buy", "10", notional="1000")
    assert h.updates() == []
    [event] = h.at(at(20, 15, 3))
    fill = event.fill
    assert fill is not None and event.status is OrderStatus.FILLED
    # the 15:01 bar closed at 101.00; a buy pays half the 0.02 spread on top
    assert (fill.price, fill.qty, fill.at) == (D("101.01"), D("9.900009900"), at(20, 15, 2))
    assert fill.commission == D("1.00")
    assert h.updates() == []


def test_paper_notional_sell_and_the_checks_use_the_quantity_the_amount_buys() -> None:
    h = Harness({"AAA": FRI}, config=CONFIG)
    h.submit("pos", "buy", 5)
    h.updates()
    # $1,000 at the 99.99 bid is about 10 shares: more than the 5 held
    reason = h.reject("pn3", "sell", "5", notional="1000", reduce_only=True)
    assert "reduce-only" in reason and "10.001000100" in reason
    h.submit("pn4", "sell", "4", notional="400", reduce_only=True)
    [event] = h.updates()
    assert event.fill is not None
    assert (event.fill.qty, event.fill.price) == (D("4.000400040"), D("99.99"))
    assert h.positions()["AAA"].qty == D(5) - D("4.000400040")


def test_paper_notional_needs_buying_power_for_the_amount_and_fractional_shares() -> None:
    poor = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(1_000))
    h = Harness({"AAA": FRI}, config=poor)
    reason = h.reject("pn5", "buy", "1", notional="5000")  # the estimate would fit
    assert reason.startswith("insufficient buying power: buy $5000 of AAA")
    whole = PaperConfig(impact_bps_per_pct_adv=D(0), fractional=False)
    h = Harness({"AAA": FRI}, config=whole)
    with pytest.raises(OrderRejected) as info:
        h.submit("pn6", "buy", "1", notional="100")
    assert (
        info.value.code == "bad_quantity" and "fractional shares are disabled" in info.value.reason
    )


def test_paper_notional_order_survives_a_restart_on_a_sqlite_ledger(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'axion.db'}")
    try:
        migrate(engine)
        store = SqlStore(engine)
        config = PaperConfig(
            impact_bps_per_pct_adv=D(0), initial_cash=D(100_000), latency=timedelta(seconds=30)
        )
        h = Harness({"AAA": FRI}, config=config, ledger=store.paper_ledger("demo"))  # type: ignore[arg-type]
        h.submit("pn7", "buy", "2", notional="250.25")
        restarted = PaperBroker(h.market, store.paper_ledger("demo"), config)
        run(restarted.connect())
        h.broker = restarted
        working = h.order("pn7")
        assert working is not None and working.notional == D("250.25")
        assert working.status is OrderStatus.ACCEPTED
        [event] = h.at(at(20, 15, 3))
        assert event.fill is not None
        assert event.fill.qty == D("2.502249775")  # 250.25 / 100.01, rounded down
    finally:
        engine.dispose()
