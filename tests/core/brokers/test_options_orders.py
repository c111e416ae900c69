"""Options orders through the real SDKs: alpaca-py against the loopback Alpaca emulator and
ib_insync against the loopback TWS emulator (server version 157).

An option order is an ``OrderRequest`` with ``instrument_type`` option and the compact OCC symbol;
quantities are contracts, prices per share of premium, money moves by price x contracts x 100.
The contracts used expire a few weeks from today, so the tests do not age; the expired one is
long past.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from ib_insync import Option, Stock

with warnings.catch_warnings():
    # alpaca-py's trading package imports websockets.legacy, which warns on import.
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.enums import OrderClass, OrderSide
    from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLossRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )

from core.brokers.alpaca import AlpacaBroker
from core.brokers.alpaca import option_contract as alpaca_option_contract
from core.brokers.ibkr import IBKRBroker, contract_symbol
from core.brokers.ibkr import option_contract as ibkr_option_contract
from core.domain import (
    BrokerEvent,
    Direction,
    EventKind,
    InstrumentType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from core.options.occ import OptionContract, Right
from core.ports import OrderRejected
from tests.core.brokers.ib_logs import IbLogGuard, guard_ib_logs
from tests.core.brokers.test_alpaca import Env
from tests.core.brokers.waiting import events_until, until
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.tws import TwsEmulator, option_con_id

T = TypeVar("T")

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]


def _expiry(weeks: int) -> date:
    """A Friday about ``weeks`` weeks from today (New York)."""
    day = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(weeks=weeks)
    return day + timedelta(days=(4 - day.weekday()) % 7)


#: SPY calls and a put a few weeks out; an unlisted contract; one long expired.
CALL = OptionContract("SPY", _expiry(5), D("590"), Right.CALL).symbol
PUT = OptionContract("SPY", _expiry(5), D("550"), Right.PUT).symbol
UNLISTED = OptionContract("SPY", _expiry(5), D("777"), Right.CALL).symbol
EXPIRED = "SPY240119C00400000"


def option(coid: str, symbol: str = CALL, side: str = "buy", qty: str = "2", **kw: Any):
    return OrderRequest(
        coid, symbol, Side(side), D(qty), instrument_type=InstrumentType.OPTION, **kw
    )


@pytest.mark.parametrize("check", [alpaca_option_contract, ibkr_option_contract])
def test_option_orders_are_told_apart_by_symbol_and_instrument_type(
    check: Callable[..., Any],
) -> None:
    assert re.fullmatch(r"SPY\d{6}C00590000", CALL)
    assert check(option("x")) == OptionContract("SPY", _expiry(5), D("590"), Right.CALL)
    assert check(OrderRequest("s", "SPY", Side.BUY, D(1))) is None


# ---------------------------------------------------------------------------------------------
# Option rules both adapters apply before sending
# ---------------------------------------------------------------------------------------------

REFUSED = [
    pytest.param({"qty": "1.5"}, "bad_quantity", "whole contracts", id="fractional"),
    pytest.param({"notional": D("500")}, "bad_quantity", "notional", id="notional"),
    pytest.param(
        {"order_type": OrderType.STOP, "stop_price": D("4")},
        "bad_type",
        "market or limit",
        id="stop",
    ),
    pytest.param({"time_in_force": TimeInForce.GTC}, "bad_tif", "'day'", id="gtc"),
    pytest.param({"symbol": EXPIRED}, "unknown_symbol", "expired on 2024-01-19", id="expired"),
    pytest.param(
        {"symbol": "SPY   " + CALL[3:]}, "unknown_symbol", "compact OCC symbol", id="padded"
    ),
    pytest.param(
        {"instrument_type": InstrumentType.STOCK}, "bad_instrument", "instrument_type", id="stock"
    ),
]


@pytest.mark.parametrize(("changes", "code", "text"), REFUSED)
@pytest.mark.parametrize("check", [alpaca_option_contract, ibkr_option_contract])
def test_option_rules(
    check: Callable[[OrderRequest], Any], changes: dict[str, Any], code: str, text: str
) -> None:
    fields: dict[str, Any] = {"instrument_type": InstrumentType.OPTION, **changes}
    request = OrderRequest(
        "r", fields.pop("symbol", CALL), Side.BUY, D(fields.pop("qty", "2")), **fields
    )
    with pytest.raises(OrderRejected) as info:
        check(request)
    assert info.value.code == code
    assert text in info.value.reason


@pytest.mark.parametrize("check", [alpaca_option_contract, ibkr_option_contract])
def test_an_option_trades_through_its_expiry_date(check: Callable[..., Any]) -> None:
    expiry = _expiry(1)
    symbol = OptionContract("SPY", expiry, D("590"), Right.CALL).symbol
    assert check(option("d", symbol), today=expiry) is not None
    with pytest.raises(OrderRejected, match="expired"):
        check(option("d", symbol), today=expiry + timedelta(days=1))


# ---------------------------------------------------------------------------------------------
# Alpaca: alpaca-py against the emulator
# ---------------------------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class AlpacaEnv(Env):
    """The Alpaca test environment, counting the order POSTs the emulator saw."""

    def posts(self) -> int:
        return self.emu.count_requests("POST", "/v2/orders")


@pytest.fixture
def alpaca(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlpacaEnv]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    before = set(threading.enumerate())
    with AlpacaEmulator(fill_delay=0.005) as emu:
        emu.set_option_quote(CALL, "4.90", "5.10")
        emu.set_option_quote(PUT, "2.40", "2.60")
        broker = AlpacaBroker(
            emu.api_key,
            emu.secret_key,
            base_url=emu.base_url,
            stream_url=emu.stream_url,
            reconnect_backoff=(0.05, 0.2),
            retry_wait=0.01,
            poll_interval=60.0,
        )
        broker.trading_client._retry_wait = 0
        run(broker.connect())
        try:
            yield AlpacaEnv(emu, broker)
        finally:
            run(broker.close())
    wait_for(
        lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
        what="threads started by the test to end",
    )


def test_alpaca_market_buy_of_two_calls_then_a_limit_sell_closes_it(alpaca: AlpacaEnv) -> None:
    env = alpaca
    assert env.broker.stream_listening
    feed = ("GET", "/v2/account/activities/FILL")
    wait_for(lambda: env.emu.count_requests(*feed) == 1, what="the recovery on connecting")
    activity_reads = env.emu.count_requests(*feed)

    ack = env.submit(option("call-buy"))
    assert (ack.client_order_id, ack.symbol, ack.qty) == ("call-buy", CALL, D(2))
    assert ack.status is OrderStatus.ACCEPTED and ack.order_type is OrderType.MARKET
    wire = env.emu.order("call-buy")
    assert wire is not None
    assert (wire["symbol"], wire["asset_class"], wire["qty"]) == (CALL, "us_option", "2")
    assert (wire["type"], wire["time_in_force"], wire["position_intent"]) == ("market", "day", None)

    # the stream delivers the fill: no activity feed read was needed
    [event] = env.wait_event("call-buy", EventKind.FILL)
    assert env.emu.count_requests(*feed) == activity_reads
    fill = event.fill
    assert fill is not None and event.status is OrderStatus.FILLED
    assert (fill.symbol, fill.side, fill.qty, fill.price) == (CALL, Side.BUY, D(2), D("5.10"))
    assert fill.fill_id == f"{ack.broker_order_id}:2"

    [position] = run(env.broker.get_positions())
    assert position == Position(CALL, D(2), D("5.1"), D("5"), InstrumentType.OPTION)
    assert position.side is Direction.LONG
    raw = env.broker.trading_client.get_open_position(CALL)
    assert (raw.asset_class, raw.qty, raw.avg_entry_price) == ("us_option", "2", "5.1")
    assert (raw.market_value, raw.cost_basis, raw.unrealized_pl) == ("1000", "1020", "-20")

    account = run(env.broker.get_account())
    assert account.cash == D("100000") - D("5.10") * 200  # no option commission at Alpaca
    assert account.long_market_value == D("1000")
    assert account.equity == D("100000") - D("1020") + D("1000")

    filled = run(env.broker.get_order("call-buy"))
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert (filled.symbol, filled.filled_qty, filled.avg_fill_price) == (CALL, D(2), D("5.1"))
    [again] = run(env.broker.get_fills("call-buy"))
    assert (again.fill_id, again.symbol, again.qty, again.price) == (
        fill.fill_id,
        CALL,
        D(2),
        D("5.10"),
    )

    sell = option(
        "call-sell",
        side="sell",
        order_type=OrderType.LIMIT,
        limit_price=D("5.257"),
        reduce_only=True,
    )
    ack = env.submit(sell)
    wire = env.emu.order("call-sell")
    assert (wire["type"], wire["limit_price"], wire["position_intent"]) == (
        "limit",
        "5.26",  # on the cent, away from the market
        "sell_to_close",
    )
    # the bid 4.90 is below the limit: it rests
    assert [e.kind for e in env.settle()] == [EventKind.ACCEPTED]
    assert [o.client_order_id for o in run(env.broker.get_orders("open"))] == ["call-sell"]
    env.emu.set_option_quote(CALL, "5.30", "5.40")
    [event] = env.wait_event("call-sell", EventKind.FILL)
    assert event.fill is not None
    assert (event.fill.symbol, event.fill.side, event.fill.price) == (CALL, Side.SELL, D("5.30"))
    assert run(env.broker.get_positions()) == []
    account = run(env.broker.get_account())
    assert account.cash == D("100000") - D("1020") + D("1060")
    closed = {o.client_order_id: o for o in run(env.broker.get_orders("closed"))}
    assert {o.symbol for o in closed.values()} == {CALL}
    assert closed["call-sell"].order_type is OrderType.LIMIT


def test_alpaca_option_fill_missed_on_the_stream_is_recovered_with_its_symbol(
    alpaca: AlpacaEnv,
) -> None:
    env = alpaca
    env.emu.drop_stream_before_next("fill")
    env.submit(option("lost-fill", PUT, qty="3"))
    [event] = env.wait_event("lost-fill", EventKind.FILL)
    assert event.fill is not None
    assert (event.fill.symbol, event.fill.qty, event.fill.price) == (PUT, D(3), D("2.60"))
    assert env.settle() == []  # reported once
    [position] = run(env.broker.get_positions())
    assert (position.symbol, position.qty, position.instrument_type) == (
        PUT,
        D(3),
        InstrumentType.OPTION,
    )


def test_alpaca_refuses_fractional_and_notional_option_orders_before_sending(
    alpaca: AlpacaEnv,
) -> None:
    env = alpaca
    with pytest.raises(OrderRejected, match="whole contracts") as info:
        env.submit(option("frac", qty="1.5"))
    assert info.value.code == "bad_quantity"
    with pytest.raises(OrderRejected, match="notional") as info:
        env.submit(option("dollars", qty="1", notional=D("500")))
    assert info.value.code == "bad_quantity"
    assert env.posts() == 0


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        (
            {
                "order_type": OrderType.BRACKET,
                "take_profit_price": D("8"),
                "stop_loss_price": D("3"),
            },
            "bracket orders are not supported for options",
        ),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_percent": D("10")},
            "trailing stop orders are not supported for options",
        ),
    ],
)
def test_alpaca_refuses_brackets_and_trailing_stops_on_options(
    alpaca: AlpacaEnv, changes: dict[str, Any], text: str
) -> None:
    with pytest.raises(OrderRejected, match=text) as info:
        alpaca.submit(option("complex", **changes))
    assert info.value.code == "bad_type"
    assert alpaca.posts() == 0


def test_alpaca_unknown_and_expired_contracts_are_rejected_with_the_reason(
    alpaca: AlpacaEnv,
) -> None:
    env = alpaca
    with pytest.raises(OrderRejected) as info:
        env.submit(option("unlisted", UNLISTED))
    assert info.value.code == "unknown_symbol"
    assert f"asset {UNLISTED} not found" in info.value.reason  # Alpaca's own message
    assert env.posts() == 1
    with pytest.raises(OrderRejected, match="expired on 2024-01-19") as info:
        env.submit(option("expired", EXPIRED))
    assert info.value.code == "unknown_symbol"
    assert env.posts() == 1  # refused before sending
    assert env.emu.all_orders() == []


def test_alpaca_closing_and_uncovered_option_sells_are_refused(alpaca: AlpacaEnv) -> None:
    env = alpaca
    with pytest.raises(OrderRejected) as info:  # nothing to close
        env.submit(option("close", side="sell", qty="1", reduce_only=True))
    assert info.value.code == "insufficient_qty"
    assert "insufficient qty available" in info.value.reason
    with pytest.raises(OrderRejected) as info:  # a naked call: no SPY shares to cover it
        env.submit(option("naked", side="sell", qty="1"))
    assert info.value.code == "insufficient_qty"
    assert "covered call (required: 100, available: 0)" in info.value.reason

    env.submit(OrderRequest("shares", "SPY", Side.BUY, D(100)))
    env.wait_event("shares", EventKind.FILL)
    env.submit(option("covered", side="sell", qty="1"))
    [event] = env.wait_event("covered", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("4.90")
    short = {p.symbol: p for p in run(env.broker.get_positions())}[CALL]
    assert (short.qty, short.side, short.instrument_type) == (
        D(-1),
        Direction.SHORT,
        InstrumentType.OPTION,
    )


def test_alpaca_option_limit_prices_go_on_the_cent_and_cancel(alpaca: AlpacaEnv) -> None:
    env = alpaca
    env.submit(option("cheap", PUT, qty="1", order_type=OrderType.LIMIT, limit_price=D("0.4567")))
    assert env.emu.order("cheap")["limit_price"] == "0.45"  # a share's 0.0001 tick is not used
    assert run(env.broker.cancel_order("cheap")) is True
    [event] = env.wait_event("cheap", EventKind.CANCELLED)
    assert event.reason == "cancelled by request"


def test_alpaca_emulator_follows_alpacas_option_rules(alpaca: AlpacaEnv) -> None:
    """The emulator itself, driven by alpaca-py: what Alpaca refuses for options."""
    client = alpaca.broker.trading_client
    alpaca.emu.set_option_quote(EXPIRED, "1.00", "1.10")
    buy = {"symbol": CALL, "side": OrderSide.BUY, "time_in_force": AlpacaTimeInForce.DAY}
    refused = [
        (MarketOrderRequest(**{**buy, "symbol": EXPIRED}, qty=1), f"asset {EXPIRED} is not active"),
        (MarketOrderRequest(**buy, qty=1.5), "qty must be integer"),
        (MarketOrderRequest(**buy, notional=500), "notional is not supported for options"),
        (
            TrailingStopOrderRequest(**{**buy, "side": OrderSide.SELL}, qty=1, trail_percent=5),
            "trailing_stop orders are not supported for options",
        ),
        (
            MarketOrderRequest(
                **buy,
                qty=1,
                order_class=OrderClass.BRACKET,
                take_profit=TakeProfitRequest(limit_price=8),
                stop_loss=StopLossRequest(stop_price=3),
            ),
            "order_class bracket is not supported for options",
        ),
        (
            MarketOrderRequest(**{**buy, "time_in_force": AlpacaTimeInForce.IOC}, qty=1),
            "invalid option time_in_force ioc",
        ),
        (
            LimitOrderRequest(**buy, qty=1, limit_price=5.0, extended_hours=True),
            "extended hours are not supported for options",
        ),
        (LimitOrderRequest(**buy, qty=1, limit_price=0.555), "sub-penny"),
    ]
    for request, message in refused:
        with pytest.raises(APIError) as info:
            client.submit_order(request)
        assert info.value.status_code == 422, message
        assert message in info.value.message
    gtc = client.submit_order(
        LimitOrderRequest(**{**buy, "time_in_force": AlpacaTimeInForce.GTC}, qty=1, limit_price=4.5)
    )
    assert (str(gtc.asset_class.value), gtc.qty) == ("us_option", "1")
    assert alpaca.posts() == len(refused) + 1


# ---------------------------------------------------------------------------------------------
# IBKR: ib_insync against the TWS emulator
# ---------------------------------------------------------------------------------------------

CLIENT_ID = 7


def api_error(code: int) -> str:
    return rf"^Error {code}, reqId -?\d+"


@pytest.fixture
def ib_logs() -> Iterator[IbLogGuard]:
    with guard_ib_logs() as guard:
        yield guard


@pytest.fixture
def tws(ib_logs: IbLogGuard) -> Iterator[TwsEmulator]:
    emulator = TwsEmulator(options={CALL: "5.00", PUT: "2.50", EXPIRED: "1.00"}).start()
    try:
        yield emulator
    finally:
        errors = emulator.errors
        emulator.stop()
        assert errors == [], f"the emulator failed on requests: {errors}"


@contextlib.asynccontextmanager
async def connected(tws: TwsEmulator, **kwargs: Any) -> AsyncIterator[IBKRBroker]:
    options: dict[str, Any] = {"client_id": CLIENT_ID, "ack_timeout": 2.0, **kwargs}
    broker = IBKRBroker("127.0.0.1", tws.port, **options)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()
        await until(lambda: tws.client_count == 0, "the client to disconnect")


def fills(events: list[BrokerEvent]) -> list[BrokerEvent]:
    return [e for e in events if e.kind is EventKind.FILL]


def cash(broker: IBKRBroker) -> D:
    values = {v.tag: v.value for v in broker.ib.accountValues() if v.currency == "USD"}
    return D(values["TotalCashValue"])


def test_ibkr_contracts_map_to_our_symbols() -> None:
    assert contract_symbol(Stock("AAPL", "SMART", "USD")) == "AAPL"
    padded = Option(localSymbol="SPY   261218P00550500")
    assert contract_symbol(padded) == "SPY261218P00550500"
    by_fields = Option("SPY", "20261218", 550.5, "P", "SMART", multiplier="100")
    assert contract_symbol(by_fields) == "SPY261218P00550500"


def test_ibkr_option_contract_qualifies_from_the_occ_symbol(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            contract = await broker.qualify(CALL)
            expiry = f"20{CALL[3:9]}"
            assert (contract.secType, contract.symbol, contract.right) == ("OPT", "SPY", "C")
            assert (contract.lastTradeDateOrContractMonth, contract.strike) == (expiry, 590.0)
            assert contract.conId == option_con_id(CALL)
            assert contract.localSymbol == f"SPY   {CALL[3:]}"  # the padded OCC symbol
            assert (contract.multiplier, contract.tradingClass) == ("100", "SPY")
            assert (contract.exchange, contract.currency) == ("SMART", "USD")
            assert contract_symbol(contract) == CALL

            [details] = await broker.ib.reqContractDetailsAsync(
                Option("SPY", expiry, 590, "C", "SMART", multiplier="100", currency="USD")
            )
            assert details.contract.conId == contract.conId
            assert (details.minTick, details.underConId, details.underSymbol) == (
                0.01,
                756733,
                "SPY",
            )
            assert details.longName == "SPDR S&P 500 ETF TRUST"
            assert details.realExpirationDate == expiry

    run(scenario())
    qualifying, *_ = [fields for _, fields in tws.requests(9) if fields[5] == "OPT"]
    expiry = f"20{CALL[3:9]}"
    assert qualifying[3:12] == ["0", "SPY", "OPT", expiry, "590.0", "C", "100", "SMART", ""]


def test_ibkr_option_market_buy_fills_with_commission_then_a_limit_sell_closes_it(
    tws: TwsEmulator,
) -> None:
    tws.set_price(CALL, "5.00", bid="4.90", ask="5.10")

    async def scenario() -> None:
        async with connected(tws) as broker:
            cash_before = cash(broker)
            ack = await broker.submit_order(option("ib-call"))
            assert (ack.symbol, ack.qty, ack.status) == (CALL, D(2), OrderStatus.ACCEPTED)
            placed = tws.order_by_ref("ib-call")
            assert placed is not None
            assert (placed.symbol, placed.action, placed.qty, placed.order_type) == (
                CALL,
                "BUY",
                D(2),
                "MKT",
            )
            [(_, fields)] = [r for r in tws.requests(3) if r[1][26] == "ib-call"]
            assert fields[2:5] == [str(option_con_id(CALL)), "SPY", "OPT"]
            assert fields[12] == f"SPY   {CALL[3:]}"

            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            fill = event.fill
            assert fill is not None and event.status is OrderStatus.FILLED
            assert (fill.client_order_id, fill.symbol, fill.side) == ("ib-call", CALL, Side.BUY)
            assert (fill.qty, fill.price) == (D(2), D("5.10"))
            assert fill.commission == D("1.30")  # 2 contracts x 0.65
            assert fill.fill_id == tws.executions()[-1].exec_id

            await until(lambda: len(broker.ib.portfolio()) == 1, "the portfolio update")
            assert await broker.get_positions() == [
                Position(CALL, D(2), D("5.1"), D("5.0"), InstrumentType.OPTION)
            ]
            await until(lambda: cash(broker) != cash_before, "the account update")
            assert cash_before - cash(broker) == D("5.10") * 200 + D("1.30")
            account = await broker.get_account()
            assert account.long_market_value == D("1000")  # 2 x 5.00 x 100

            order = await broker.get_order("ib-call")
            assert order is not None and order.status is OrderStatus.FILLED
            assert (order.symbol, order.filled_qty, order.avg_fill_price) == (CALL, 2, D("5.1"))
            assert await broker.get_fills("ib-call") == [fill]

            sell = option(
                "ib-close", side="sell", order_type=OrderType.LIMIT, limit_price=D("5.25")
            )
            await broker.submit_order(sell)
            assert await broker.updates() == []  # the bid 4.90 is below the limit: it rests
            resting = await broker.get_orders("open")
            assert [(o.client_order_id, o.symbol) for o in resting] == [("ib-close", CALL)]
            tws.set_price(CALL, "5.30", bid="5.30", ask="5.40")
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.fill is not None and event.client_order_id == "ib-close"
            assert (event.fill.symbol, event.fill.side, event.fill.price) == (
                CALL,
                Side.SELL,
                D("5.30"),
            )
            assert event.fill.expected_price == D("5.25")
            await until(lambda: not broker.ib.positions(), "the position to close")
            assert await broker.get_positions() == []
            closed = await broker.get_orders("closed")
            assert {(o.client_order_id, o.symbol) for o in closed} == {
                ("ib-call", CALL),
                ("ib-close", CALL),
            }

    run(scenario())
    assert tws.position(CALL) == (0, 0)


def test_ibkr_resting_option_order_is_cancelled(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            await broker.submit_order(
                option("ib-rest", PUT, qty="3", order_type=OrderType.LIMIT, limit_price=D("1.00"))
            )
            placed = tws.order_by_ref("ib-rest")
            assert placed is not None and (placed.symbol, placed.status) == (PUT, "Submitted")
            assert await broker.cancel_order("ib-rest") is True
            (event,) = await events_until(broker, lambda ev: len(ev) == 1)
            assert (event.kind, event.client_order_id) == (EventKind.CANCELLED, "ib-rest")
            assert event.reason == "cancelled by request"
            order = await broker.get_order("ib-rest")
            assert order is not None and (order.status, order.symbol) == (
                OrderStatus.CANCELLED,
                PUT,
            )

    run(scenario())


def test_ibkr_unknown_and_expired_contracts_are_rejected_with_the_reason(
    tws: TwsEmulator, ib_logs: IbLogGuard
) -> None:
    ib_logs.allow(api_error(200))

    async def scenario() -> None:
        async with connected(tws) as broker:
            with pytest.raises(OrderRejected) as info:
                await broker.submit_order(option("ib-unknown", UNLISTED))
            assert info.value.code == "unknown_symbol"
            assert info.value.reason.startswith(f"unknown option contract {UNLISTED!r}")
            assert "(IB 200): No security definition has been found" in info.value.reason
            with pytest.raises(OrderRejected, match="expired on 2024-01-19") as info:
                await broker.submit_order(option("ib-expired", EXPIRED))
            assert info.value.code == "unknown_symbol"
            with pytest.raises(OrderRejected, match="whole contracts"):
                await broker.submit_order(option("ib-frac", qty="0.5"))
            # TWS itself does not know the expired contract either
            assert await broker.ib.qualifyContractsAsync(Option(localSymbol=EXPIRED)) == []
            assert await broker.updates() == []

    run(scenario())
    assert tws.requests(3) == []  # no order reached TWS


def test_ibkr_option_positions_from_a_new_session(ib_logs: IbLogGuard) -> None:
    emulator = TwsEmulator(options={CALL: "5.00"}, positions={CALL: (-3, "4.00")}).start()
    try:

        async def scenario() -> None:
            async with connected(emulator) as broker:
                [held] = broker.ib.positions()
                assert held.avgCost == 400.0  # TWS's average cost is per contract
                assert await broker.get_positions() == [
                    Position(CALL, D(-3), D("4"), D("5.0"), InstrumentType.OPTION)
                ]
                account = await broker.get_account()
                assert account.short_market_value == D("-1500")  # 3 x 5.00 x 100

        run(scenario())
        assert emulator.errors == []
    finally:
        emulator.stop()
