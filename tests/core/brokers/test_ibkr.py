"""The IBKR adapters on the real ib_insync, against the loopback TWS emulator (version 157).

Every test runs ib_insync's framing, decoder and wrapper for real. ib_insync logs and drops a
message it cannot decode, so :class:`IbLogGuard` (autouse) fails a test on any decoder record,
any "Error handling fields" / "Error for" record, any exception logged by an event handler and
any ERROR a test did not declare as expected (TWS rejects, the dropped socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.brokers.ibkr import (
    LIVE_GATEWAY_PORT,
    LIVE_TWS_PORT,
    PAPER_GATEWAY_PORT,
    PAPER_TWS_PORT,
    IBKRBroker,
    describe_ib_error,
    is_notice,
)
from core.domain import (
    AccountState,
    BrokerEvent,
    EventKind,
    InstrumentType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    bracket_leg_ids,
)
from core.marketdata.calendar import ManualClock, default_calendar
from core.marketdata.ibkr import IBKRMarketData, duration_for
from core.ports import BrokerUnavailable, OrderRejected, UnknownOrder, UnknownSymbol
from tests.core.brokers.ib_logs import IbLogGuard, guard_ib_logs
from tests.core.brokers.waiting import events_until, until
from tests.emulators.tws import SERVER_VERSION, STARTUP_NOTICES, TwsEmulator

T = TypeVar("T")
D = Decimal
CLIENT_ID = 7
ROOT = Path(__file__).resolve().parents[3]

#: ERROR records ib_insync writes for expected situations.
PEER_CLOSED = r"^Peer closed connection"
CONNECT_FAILED = r"^API connection failed"
PORT_CLOSED = r"^Make sure API port"


def api_error(code: int) -> str:
    return rf"^Error {code}, reqId -?\d+"


# ---------------------------------------------------------------------------------------------
# Strict ib_insync logging
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def ib_logs() -> Iterator[IbLogGuard]:
    with guard_ib_logs() as guard:
        yield guard


# ---------------------------------------------------------------------------------------------
# Emulator and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def make_tws() -> Iterator[Callable[..., TwsEmulator]]:
    """Start emulators on background threads; each is stopped (and checked) afterwards."""
    started: list[TwsEmulator] = []

    def make(**kwargs: Any) -> TwsEmulator:
        emulator = TwsEmulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        errors = emulator.errors
        emulator.stop()
        assert errors == [], f"the emulator failed on requests: {errors}"
    assert not [t for t in threading.enumerate() if t.name == "tws-emulator"]


@pytest.fixture
def tws(make_tws: Callable[..., TwsEmulator]) -> TwsEmulator:
    return make_tws(positions={"MSFT": (10, "400.00")})


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run a scenario in a fresh event loop (closed afterwards)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def connected(tws: TwsEmulator, **kwargs: Any) -> AsyncIterator[IBKRBroker]:
    options: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "ack_timeout": 2.0,
        "reconnect_delay": 0.05,
        "max_reconnect_delay": 0.2,
    }
    options.update(kwargs)
    broker = IBKRBroker("127.0.0.1", tws.port, **options)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()
        await until(lambda: tws.client_count == 0, "the client to disconnect")
        assert not broker.reconnecting


async def quiet_updates(broker: IBKRBroker, settle: float = 0.1) -> list[BrokerEvent]:
    """Events arriving within ``settle`` seconds (used to show nothing more comes)."""
    await asyncio.sleep(settle)
    return await broker.updates()


def fills(events: list[BrokerEvent]) -> list[BrokerEvent]:
    return [e for e in events if e.kind is EventKind.FILL]


def market(
    coid: str, qty: int | str = 100, side: Side = Side.BUY, symbol: str = "AAPL"
) -> OrderRequest:
    return OrderRequest(coid, symbol, side, D(qty))


def limit(coid: str, price: str, qty: int = 10, side: Side = Side.BUY, **kw: Any) -> OrderRequest:
    return OrderRequest(coid, "AAPL", side, D(qty), OrderType.LIMIT, limit_price=D(price), **kw)


# ---------------------------------------------------------------------------------------------
# Connection, account, positions
# ---------------------------------------------------------------------------------------------


def test_connect_runs_the_startup_sync_at_server_version_157(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with connected(tws) as broker:
            assert loop.time() - started < 1.0  # no startup request waited for its timeout
            assert broker.connected
            assert broker.ib.client.serverVersion() == SERVER_VERSION
            assert broker.ib.managedAccounts() == ["DU123456"]
            assert broker.last_error is None  # the farm notices are not errors
            assert await broker.updates() == []

    run(scenario())
    start_api = tws.requests(71)
    assert start_api == [(None, ["71", "2", str(CLIENT_ID), ""])]
    sent = [fields[0] for cid, fields in tws.requests() if cid == CLIENT_ID]
    for request in ("61", "5", "99", "6", "76", "7"):  # positions .. executions
        assert request in sent
    assert sent.count("7") >= 2 and sent.count("5") >= 2  # re-requested after the sync
    assert {code for code, _ in STARTUP_NOTICES} == {2104, 2106, 2158}


def test_account_values_become_account_state(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            account = await broker.get_account()
            # cash 100,000 plus MSFT 10 x 410: gross 4,100, margin 25%, buying power 4x
            assert account.equity == D("104100.00")
            assert account.cash == D("100000.00")
            assert account.buying_power == D("412300.00")
            assert account.margin_used == D("1025.00")
            assert account.day_trades_remaining == 3
            assert account.long_market_value == D("4100.00")
            assert account.short_market_value == 0
            assert account.daily_pnl == 0
            assert account.at is not None and account.at.tzinfo is not None

            await broker.submit_order(market("acct-1", 100))
            await events_until(broker, lambda ev: len(fills(ev)) == 1)
            # the account stream follows the fill: 100 x 190.01 bought, 1.00 commission
            await until(
                lambda: _cash(broker) == D("80998.00") and len(broker.ib.portfolio()) == 2,
                "the account and portfolio updates",
            )
            account = await broker.get_account()
            assert account.cash == D("80998.00")
            assert account.long_market_value == D("23100.00")

            # without streamed values (another account, or not yet sent) the summary is asked
            broker.ib.wrapper.accountValues.clear()
            assert not tws.requests(62)
            assert (await broker.get_account()).cash == D("80998.00")
            assert len(tws.requests(62)) == 1

    run(scenario())


def _cash(broker: IBKRBroker) -> Decimal | None:
    for value in broker.ib.accountValues():
        if value.tag == "TotalCashValue" and value.currency == "USD":
            return Decimal(value.value)
    return None


def test_positions_become_positions(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            assert await broker.get_positions() == [
                Position("MSFT", D(10), D("400.00"), D("410.00"), InstrumentType.STOCK)
            ]
            await broker.submit_order(market("pos-1", 25))
            await events_until(broker, lambda ev: len(fills(ev)) == 1)
            await until(lambda: len(broker.ib.positions()) == 2, "the position update")
            by_symbol = {p.symbol: p for p in await broker.get_positions()}
            assert by_symbol["AAPL"].qty == 25
            assert by_symbol["AAPL"].avg_entry_price == D("190.01")

    run(scenario())


def test_connect_failures_and_calls_while_disconnected(
    make_tws: Callable[..., TwsEmulator], ib_logs: IbLogGuard
) -> None:
    ib_logs.allow(CONNECT_FAILED, PORT_CLOSED, PEER_CLOSED, api_error(326))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    tws = make_tws()

    async def scenario() -> None:
        nobody = IBKRBroker("127.0.0.1", free_port, CLIENT_ID, reconnect_delay=0.01)
        with pytest.raises(BrokerUnavailable, match="not connected"):
            await nobody.get_account()
        with pytest.raises(BrokerUnavailable, match=re.escape(f"127.0.0.1:{free_port}")):
            await nobody.connect()
        await asyncio.sleep(0.05)
        assert nobody.reconnect_attempts == 0  # never connected: nothing to resume
        assert not nobody.connected
        with pytest.raises(BrokerUnavailable):
            await nobody.submit_order(market("x-1"))

        async with connected(tws):
            twin = IBKRBroker("127.0.0.1", tws.port, CLIENT_ID)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(BrokerUnavailable, match="IB 326"):
                await twin.connect()
            assert loop.time() - started < 1.0  # not the 4 s connect timeout
            await twin.close()

    run(scenario())


def test_named_ports() -> None:
    assert (PAPER_TWS_PORT, PAPER_GATEWAY_PORT, LIVE_TWS_PORT, LIVE_GATEWAY_PORT) == (
        7497,
        4002,
        7496,
        4001,
    )
    assert IBKRBroker.paper().port == 7497
    assert IBKRBroker.paper(gateway=True).port == 4002
    assert IBKRBroker.live(client_id=3).port == 7496
    assert IBKRBroker.live(gateway=True).client_id == 1
    assert IBKRBroker.live(gateway=True).port == 4001


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def test_market_order_fills_with_commission(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            ack = await broker.submit_order(market("mkt-1", 1000))
            assert ack.status is OrderStatus.ACCEPTED
            assert ack.client_order_id == "mkt-1" and ack.filled_qty == 0
            placed = tws.order_by_ref("mkt-1")
            assert placed is not None
            assert (placed.order_type, placed.action, placed.qty) == ("MKT", "BUY", D(1000))
            assert (placed.tif, placed.transmit, placed.parent_id) == ("DAY", True, 0)
            assert ack.broker_order_id == str(placed.perm_id)

            events = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert len(events) == 1
            (event,) = events
            execution = tws.executions()[-1]
            fill = event.fill
            assert fill is not None
            assert event.status is OrderStatus.FILLED
            assert fill.fill_id == execution.exec_id
            assert (fill.client_order_id, fill.symbol, fill.side) == ("mkt-1", "AAPL", Side.BUY)
            assert fill.qty == 1000 and fill.price == D("190.01")  # the ask
            assert fill.commission == D("5.00")  # 1,000 x 0.005
            assert fill.broker == "ibkr" and fill.broker_order_id == ack.broker_order_id
            assert fill.at.tzinfo is not None and fill.at.utcoffset() == timedelta(0)

            order = await broker.get_order("mkt-1")
            assert order is not None
            assert order.status is OrderStatus.FILLED
            assert (order.filled_qty, order.avg_fill_price) == (1000, D("190.01"))
            assert await broker.get_fills("mkt-1") == [fill]
            assert await broker.get_fills("other") == []

    run(scenario())


def test_partial_fills_report_progress(make_tws: Callable[..., TwsEmulator]) -> None:
    tws = make_tws(fill_chunk=40)

    async def scenario() -> None:
        async with connected(tws) as broker:
            await broker.submit_order(market("part-1", 100))
            events = await events_until(broker, lambda ev: len(fills(ev)) == 3)
            assert [e.status for e in events] == [
                OrderStatus.PARTIALLY_FILLED,
                OrderStatus.PARTIALLY_FILLED,
                OrderStatus.FILLED,
            ]
            assert [e.fill.qty for e in events if e.fill] == [40, 40, 20]
            assert [e.fill.commission for e in events if e.fill] == [D("1.00")] * 3
            assert len({e.fill.fill_id for e in events if e.fill}) == 3

    run(scenario())


def test_fill_without_commission_report_is_reported_after_the_wait(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws, commission_wait=0.1) as broker:
            tws.withhold_commission_reports()
            await broker.submit_order(market("nocom-1", 10))
            assert await broker.updates() == []  # waiting for the commission report
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.fill is not None and event.fill.commission == 0
            assert event.status is OrderStatus.FILLED

            tws.withhold_commission_reports(False)  # the replay now carries it
            (fill,) = await broker.get_fills("nocom-1")
            assert fill.fill_id == event.fill.fill_id and fill.commission == D("1.00")
            assert await quiet_updates(broker, 0.05) == []  # reported once

    run(scenario())


def test_limit_and_stop_orders_rest_then_fill(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            ack = await broker.submit_order(limit("lmt-1", "185.00", 50))
            assert ack.status is OrderStatus.ACCEPTED
            await broker.submit_order(
                OrderRequest("stp-1", "MSFT", Side.SELL, D(5), OrderType.STOP, stop_price=D(400))
            )
            assert await quiet_updates(broker) == []
            placed = tws.order_by_ref("lmt-1")
            assert placed is not None and (placed.order_type, placed.lmt_price) == ("LMT", 185)
            stop = tws.order_by_ref("stp-1")
            assert stop is not None and (stop.order_type, stop.aux_price) == ("STP", 400)
            assert (await broker.get_order("lmt-1")).status is OrderStatus.ACCEPTED

            tws.set_price("AAPL", "184.50")
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.client_order_id == "lmt-1" and event.status is OrderStatus.FILLED
            assert event.fill is not None
            assert (event.fill.price, event.fill.commission) == (D("184.51"), D("1.00"))
            assert event.fill.expected_price == D("185.00")

            tws.set_price("MSFT", "399.50")
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.client_order_id == "stp-1"
            assert event.fill is not None and event.fill.price == D("399.49")  # the bid
            assert event.fill.side is Side.SELL

    run(scenario())


def test_other_order_types_map_onto_ib_orders(tws: TwsEmulator) -> None:
    requests = [
        OrderRequest(
            "sl-1",
            "AAPL",
            Side.BUY,
            D(3),
            OrderType.STOP_LIMIT,
            limit_price=D("195.50"),
            stop_price=D("195.00"),
            time_in_force=TimeInForce.GTC,
        ),
        OrderRequest(
            "trp-1", "MSFT", Side.SELL, D(2), OrderType.TRAILING_STOP, trail_percent=D("2")
        ),
        OrderRequest(
            "tra-1", "MSFT", Side.SELL, D(1), OrderType.TRAILING_STOP, trail_price=D("1.50")
        ),
        OrderRequest(
            "moc-1", "AAPL", Side.BUY, D(4), OrderType.MARKET_ON_CLOSE, time_in_force="cls"
        ),
        limit("loc-1", "200.00", 6, time_in_force=TimeInForce.CLS),
    ]

    async def scenario() -> None:
        async with connected(tws) as broker:
            for request in requests:
                ack = await broker.submit_order(request)
                assert ack.status is OrderStatus.ACCEPTED
                assert ack.order_type is request.order_type
            by_ref = {o.order_ref: o for o in tws.orders()}
            assert (by_ref["sl-1"].order_type, by_ref["sl-1"].tif) == ("STP LMT", "GTC")
            assert (by_ref["sl-1"].lmt_price, by_ref["sl-1"].aux_price) == (D("195.5"), 195)
            assert by_ref["trp-1"].order_type == "TRAIL"
            assert (by_ref["trp-1"].trailing_percent, by_ref["trp-1"].aux_price) == (2, None)
            assert (by_ref["tra-1"].aux_price, by_ref["tra-1"].trailing_percent) == (
                D("1.5"),
                None,
            )
            assert (by_ref["moc-1"].order_type, by_ref["moc-1"].tif) == ("MOC", "DAY")
            assert (by_ref["loc-1"].order_type, by_ref["loc-1"].lmt_price) == ("LOC", 200)
            assert all(o.status == "Submitted" for o in by_ref.values())

            # trailing stops follow the high (410 -> 420) and trigger on the way down
            tws.set_price("MSFT", "420.00")
            assert fills(await quiet_updates(broker, 0.05)) == []
            tws.set_price("MSFT", "418.40")  # below 420 - 1.50, above 420 x 0.98
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.client_order_id == "tra-1"
            tws.set_price("MSFT", "411.50")  # below 420 x 0.98 = 411.60
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.client_order_id == "trp-1"

            tws.run_closing_auction("AAPL")
            events = await events_until(broker, lambda ev: len(fills(ev)) == 2)
            assert {e.client_order_id for e in events} == {"moc-1", "loc-1"}
            assert all(e.fill and e.fill.price == D("190.00") for e in events)  # the close

    run(scenario())


def test_bracket_transmits_as_one_group_and_children_work_after_the_entry(
    tws: TwsEmulator,
) -> None:
    request = OrderRequest(
        "brk-1",
        "AAPL",
        Side.BUY,
        D(10),
        OrderType.BRACKET,
        limit_price=D("189.00"),
        take_profit_price=D("200.00"),
        stop_loss_price=D("180.00"),
    )
    tp_id, sl_id = bracket_leg_ids("brk-1")

    async def scenario() -> None:
        async with connected(tws) as broker:
            ack = await broker.submit_order(request)
            assert ack.status is OrderStatus.ACCEPTED and ack.order_type is OrderType.BRACKET
            placed = [f for cid, f in tws.requests(3) if cid == CLIENT_ID]
            assert [f[26] for f in placed] == ["brk-1", tp_id, sl_id]  # orderRef
            assert [f[27] for f in placed] == ["0", "0", "1"]  # transmit: the last child
            parent_id = placed[0][1]
            assert [f[28] for f in placed] == ["0", parent_id, parent_id]  # parentId
            assert [f[18] for f in placed] == ["LMT", "LMT", "STP"]
            assert [f[16] for f in placed] == ["BUY", "SELL", "SELL"]
            by_ref = {o.order_ref: o for o in tws.orders()}
            assert by_ref["brk-1"].status == "Submitted"
            assert by_ref[tp_id].status == by_ref[sl_id].status == "PreSubmitted"
            assert await quiet_updates(broker) == []

            tws.set_price("AAPL", "188.50")  # the entry fills; the children start working
            events = await events_until(broker, lambda ev: len(ev) == 3)
            assert [(e.kind, e.client_order_id) for e in events] == [
                (EventKind.FILL, "brk-1"),
                (EventKind.ACCEPTED, tp_id),
                (EventKind.ACCEPTED, sl_id),
            ]
            assert events[0].status is OrderStatus.FILLED
            assert events[0].fill is not None and events[0].fill.commission == D("1.00")

            tws.set_price("AAPL", "201.00")  # take profit fills, stop loss is cancelled
            events = await events_until(broker, lambda ev: len(ev) == 2)
            assert [(e.kind, e.client_order_id) for e in events] == [
                (EventKind.FILL, tp_id),
                (EventKind.CANCELLED, sl_id),
            ]
            assert events[0].fill is not None and events[0].fill.price == D("200.99")
            assert events[0].fill.side is Side.SELL
            assert events[1].reason is not None and "OCA" in events[1].reason
            stop_loss = await broker.get_order(sl_id)
            assert stop_loss is not None and stop_loss.status is OrderStatus.CANCELLED
            assert tws.position("AAPL") == (0, 0)

    run(scenario())


def test_cancel_cancel_again_unknown_and_cancel_all(tws: TwsEmulator, ib_logs: IbLogGuard) -> None:
    ib_logs.allow(api_error(10147))

    async def scenario() -> None:
        async with connected(tws) as broker:
            await broker.submit_order(limit("can-1", "150.00"))
            assert await broker.cancel_order("can-1") is True
            (event,) = await events_until(broker, lambda ev: len(ev) == 1)
            assert (event.kind, event.client_order_id) == (EventKind.CANCELLED, "can-1")
            assert event.reason == "cancelled by request"
            order = await broker.get_order("can-1")
            assert order is not None and order.status is OrderStatus.CANCELLED
            assert await broker.cancel_order("can-1") is False
            with pytest.raises(UnknownOrder):
                await broker.cancel_order("never-sent")

            # an order TWS has forgotten (restart): 10147 is UnknownOrder
            await broker.submit_order(limit("gone-1", "150.00"))
            tws.purge_orders()
            with pytest.raises(UnknownOrder, match="10147"):
                await broker.cancel_order("gone-1")
            (event,) = await events_until(broker, lambda ev: len(ev) == 1)
            assert event.kind is EventKind.CANCELLED and event.client_order_id == "gone-1"

            await broker.submit_order(limit("all-1", "150.00"))
            await broker.submit_order(limit("all-2", "250.00", side=Side.SELL, qty=1))
            await broker.submit_order(
                OrderRequest(
                    "all-3",
                    "AAPL",
                    Side.BUY,
                    D(5),
                    OrderType.BRACKET,
                    limit_price=D("150.00"),
                    take_profit_price=D("160.00"),
                    stop_loss_price=D("140.00"),
                )
            )
            cancels_before = len(tws.requests(4))
            assert await broker.cancel_all() == 5
            events = await events_until(broker, lambda ev: len(ev) == 5)
            assert {e.client_order_id for e in events} == {
                "all-1",
                "all-2",
                "all-3",
                *bracket_leg_ids("all-3"),
            }
            assert all(e.kind is EventKind.CANCELLED for e in events)
            assert len(tws.requests(4)) - cancels_before == 3  # legs go with their entry
            assert await broker.get_orders("open") == []
            assert await broker.cancel_all() == 0

    run(scenario())


def test_rejects_raise_order_rejected(tws: TwsEmulator, ib_logs: IbLogGuard) -> None:
    ib_logs.allow(api_error(201), api_error(200))

    async def scenario() -> None:
        async with connected(tws) as broker:
            tws.reject_next_order("YOUR ORDER IS NOT ACCEPTED: insufficient equity")
            with pytest.raises(OrderRejected) as rejected:
                await broker.submit_order(market("rej-1"))
            assert rejected.value.code == "201"
            assert rejected.value.reason.startswith("order rejected (IB 201)")
            assert "insufficient equity" in rejected.value.reason
            order = await broker.get_order("rej-1")
            assert order is not None and order.status is OrderStatus.REJECTED
            assert order.reason == rejected.value.reason

            tws.reject_next_order("bracket refused")
            with pytest.raises(OrderRejected, match="bracket refused") as rejected:
                await broker.submit_order(
                    OrderRequest(
                        "rej-2",
                        "AAPL",
                        Side.BUY,
                        D(5),
                        OrderType.BRACKET,
                        take_profit_price=D("200.00"),
                        stop_loss_price=D("180.00"),
                    )
                )
            assert rejected.value.code == "201"
            for leg in bracket_leg_ids("rej-2"):
                leg_order = await broker.get_order(leg)
                assert leg_order is not None and leg_order.status is OrderStatus.REJECTED

            with pytest.raises(OrderRejected, match="tick") as rejected:
                await broker.submit_order(limit("tick-1", "190.005"))
            assert rejected.value.code == "110"

            assert await quiet_updates(broker) == []  # rejections raised, not reported
            ack = await broker.submit_order(market("rej-1", 1))  # a rejected id may come again
            assert ack.status is OrderStatus.ACCEPTED
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.client_order_id == "rej-1"

            placed = len(tws.requests(3))
            with pytest.raises(OrderRejected) as rejected:
                await broker.submit_order(market("rej-1"))
            assert rejected.value.code == "duplicate"
            with pytest.raises(OrderRejected) as rejected:
                await broker.submit_order(market("sym-1", symbol="ZZZZ"))
            assert rejected.value.code == "unknown_symbol"
            assert len(tws.requests(3)) == placed  # neither reached TWS

    run(scenario())


def test_slow_acknowledgement_is_ambiguous_and_found_by_client_order_id(
    tws: TwsEmulator,
) -> None:
    async def scenario() -> None:
        async with connected(tws, ack_timeout=0.05) as broker:
            tws.set_delay(0.3, [3])
            with pytest.raises(BrokerUnavailable, match="look it up by client order id"):
                await broker.submit_order(market("slow-1", 10))
            in_flight = await broker.get_order("slow-1")
            assert in_flight is not None and in_flight.status is OrderStatus.PENDING_SUBMIT
            (event,) = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            assert event.client_order_id == "slow-1" and event.status is OrderStatus.FILLED
            order = await broker.get_order("slow-1")
            assert order is not None and order.status is OrderStatus.FILLED
            assert len(tws.requests(3)) == 1  # never sent twice

    run(scenario())


def test_notices_are_not_errors_and_connectivity_loss_is_unavailability(
    tws: TwsEmulator, ib_logs: IbLogGuard
) -> None:
    ib_logs.allow(api_error(1100), api_error(1102), api_error(10182))

    async def scenario() -> None:
        async with connected(tws) as broker:
            for code in (2104, 2106, 2158, 2108):
                tws.send_error(-1, code, "Market data farm connection is OK:usfarm")
            tws.send_error(-1, 1100, "Connectivity between IB and TWS has been lost.")
            await until(lambda: broker.last_error is not None, "the 1100 error")
            assert broker.last_error is not None and broker.last_error[0] == 1100
            with pytest.raises(BrokerUnavailable, match="1100"):
                await broker.get_account()
            tws.send_error(
                -1, 1102, "Connectivity between IB and TWS has been restored - data maintained."
            )
            assert (await account_when_available(broker)).equity == D("104100.00")
            tws.send_error(-1, 10182, "Failed to request live updates (disconnected).")
            await until(
                lambda: broker.last_error is not None and broker.last_error[0] == 10182,
                "the 10182 error",
            )
            assert await broker.updates() == []

    run(scenario())


async def account_when_available(broker: IBKRBroker, timeout: float = 3.0) -> AccountState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await broker.get_account()
        except BrokerUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.005)


def test_error_codes_have_clear_reasons() -> None:
    for code in (2104, 2106, 2158, 2100, 2199, 399, 1102):
        assert is_notice(code)
    for code in (110, 200, 201, 202, 1100, 10147, 10148):
        assert not is_notice(code)
    assert describe_ib_error(201, "Order rejected - reason:margin") == (
        "order rejected (IB 201): Order rejected - reason:margin"
    )
    assert "tick size" in describe_ib_error(110, "The price does not conform")
    assert describe_ib_error(202, "") == "order cancelled (IB 202)"
    assert describe_ib_error(99999, "odd") == "IB error (IB 99999): odd"


# ---------------------------------------------------------------------------------------------
# Disconnects
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delivered", [0, 1, 3], ids=["nothing", "exec-only", "no-commission"])
def test_fill_during_disconnect_is_recovered_exactly_once(
    tws: TwsEmulator, ib_logs: IbLogGuard, delivered: int
) -> None:
    """TWS drops the socket in the middle of a fill (after ``delivered`` of its messages:
    execDetails, orderStatus, openOrder, commissionReport) and refuses reconnects for a while;
    the fill is recovered through reqExecutions, with its commission, exactly once."""
    ib_logs.allow(PEER_CLOSED, CONNECT_FAILED, PORT_CLOSED)

    async def scenario() -> None:
        async with connected(tws) as broker:
            await broker.submit_order(limit("gap-1", "189.00", 10))
            executions_before = len(tws.requests(7))
            tws.pause_listening()
            tws.drop_next_fill(after_messages=delivered)
            tws.set_price("AAPL", "188.50")
            await until(lambda: not broker.connected, "the disconnect")
            (execution,) = tws.executions()  # the fill happened at TWS
            with pytest.raises(BrokerUnavailable, match="reconnecting"):
                await broker.get_account()
            with pytest.raises(BrokerUnavailable):
                await broker.updates()
            with pytest.raises(BrokerUnavailable):
                await broker.submit_order(market("gap-2"))
            await until(lambda: broker.reconnect_attempts >= 2, "refused reconnect attempts")

            tws.resume_listening()
            await until(lambda: broker.connected, "the reconnect")
            assert broker.reconnects == 1
            assert len(tws.requests(7)) >= executions_before + 2  # startup + recovery

            events = await events_until(broker, lambda ev: len(fills(ev)) >= 1)
            events += await quiet_updates(broker)
            assert [(e.kind, e.client_order_id) for e in events] == [(EventKind.FILL, "gap-1")]
            fill = events[0].fill
            assert fill is not None
            assert fill.fill_id == execution.exec_id
            assert fill.commission == D("1.00") and fill.price == D("188.51")
            assert events[0].status is OrderStatus.FILLED

            tws.disconnect_clients()  # another gap: the replayed execution is not reported
            await until(lambda: broker.reconnects == 2 and broker.connected, "a 2nd reconnect")
            assert await quiet_updates(broker) == []
            assert await broker.get_fills("gap-1") == [fill]
            order = await broker.get_order("gap-1")
            assert order is not None and order.status is OrderStatus.FILLED

    run(scenario())


def test_orders_cancelled_or_lost_while_disconnected(tws: TwsEmulator, ib_logs: IbLogGuard) -> None:
    """While the client is away one order is cancelled in the TWS window and TWS forgets
    another; after the reconnect the first becomes a cancelled event and the second is no
    longer found."""
    ib_logs.allow(PEER_CLOSED, CONNECT_FAILED, PORT_CLOSED)

    async def scenario() -> None:
        async with connected(tws) as broker:
            await broker.submit_order(limit("gap-c", "150.00"))
            await broker.submit_order(limit("gap-p", "151.00"))
            tws.pause_listening()
            tws.disconnect_clients()
            await until(lambda: not broker.connected, "the disconnect")
            tws.cancel_orders("gap-c")
            tws.purge_orders()
            tws.resume_listening()
            await until(lambda: broker.connected, "the reconnect")
            (event,) = await events_until(broker, lambda ev: len(ev) == 1)
            assert (event.kind, event.client_order_id) == (EventKind.CANCELLED, "gap-c")
            assert event.reason == "cancelled by IB"
            assert await quiet_updates(broker) == []
            cancelled = await broker.get_order("gap-c")
            assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
            assert await broker.get_order("gap-p") is None

    run(scenario())


def test_close_then_connect_again_reports_what_happened_meanwhile(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        broker = IBKRBroker("127.0.0.1", tws.port, CLIENT_ID, reconnect_delay=0.01)
        await broker.connect()
        try:
            await broker.submit_order(limit("away-1", "189.00"))
            await broker.close()
            await until(lambda: tws.client_count == 0, "the disconnect")
            tws.set_price("AAPL", "188.00")  # fills while the adapter is closed
            await asyncio.sleep(0.05)
            assert broker.reconnect_attempts == 0 and not broker.connected
            with pytest.raises(BrokerUnavailable):
                await broker.updates()
            await broker.connect()
            events = await events_until(broker, lambda ev: len(fills(ev)) == 1)
            events += await quiet_updates(broker, 0.05)
            assert [(e.kind, e.client_order_id, e.status) for e in events] == [
                (EventKind.FILL, "away-1", OrderStatus.FILLED)
            ]
            assert events[0].fill is not None and events[0].fill.commission == D("1.00")
            order = await broker.get_order("away-1")
            assert order is not None and order.status is OrderStatus.FILLED
        finally:
            await broker.close()

    run(scenario())


def test_a_new_session_finds_orders_by_order_ref(tws: TwsEmulator) -> None:
    """After a restart (a new adapter on the same client id) orders are found through open
    orders (adopted) and completed orders, and fills through executions."""

    async def scenario() -> None:
        async with connected(tws) as first:
            await first.submit_order(market("old-1", 100))
            await first.submit_order(limit("old-2", "150.00"))
            (event,) = await events_until(first, lambda ev: len(fills(ev)) == 1)
            old_fill = event.fill
        async with connected(tws) as second:
            filled = await second.get_order("old-1")
            assert filled is not None and filled.status is OrderStatus.FILLED
            assert filled.filled_qty == 100 and filled.avg_fill_price == D("190.01")
            assert filled.broker_order_id == str(tws.order_by_ref("old-1").perm_id)
            assert await second.get_fills("old-1") == [old_fill]
            resting = await second.get_order("old-2")
            assert resting is not None and resting.status is OrderStatus.ACCEPTED
            assert [o.client_order_id for o in await second.get_orders("open")] == ["old-2"]
            closed = await second.get_orders("closed")
            assert [o.client_order_id for o in closed] == ["old-1"]
            assert {o.client_order_id for o in await second.get_orders("all")} == {
                "old-1",
                "old-2",
            }
            assert await second.get_order("never") is None
            with pytest.raises(ValueError):
                await second.get_orders("pending")
            assert await second.cancel_order("old-2") is True
            events = await events_until(
                second, lambda ev: any(e.kind is EventKind.CANCELLED for e in ev)
            )
            assert [e.client_order_id for e in events if e.kind is EventKind.CANCELLED] == ["old-2"]

    run(scenario())


def test_log_guard_catches_decoder_errors(tws: TwsEmulator, ib_logs: IbLogGuard) -> None:
    """The strict logging check itself: a malformed message (a commissionReport with too few
    fields, a tickPrice with one too many) is logged by ib_insync's decoder and caught."""

    async def scenario() -> None:
        async with connected(tws) as broker:
            tws.send_raw([59, 1, "0000e0d5.00000001.01.01"])
            tws.send_raw([1, 6, 1, 1, "190.00", 100, 0, "extra"])
            await until(lambda: len(ib_logs.problems()) >= 2, "the decoder errors")
            assert broker.connected

    run(scenario())
    problems = ib_logs.problems()
    assert len(problems) == 2
    assert all("Error handling fields" in p for p in problems)
    ib_logs.records.clear()  # seen: let the fixture pass


# ---------------------------------------------------------------------------------------------
# Market data
# ---------------------------------------------------------------------------------------------

NOON_ET = datetime(2024, 8, 21, 16, 0, tzinfo=UTC)  # a Wednesday, 12:00 in New York (EDT)


@pytest.fixture
def market_tws(make_tws: Callable[..., TwsEmulator]) -> TwsEmulator:
    return make_tws(now=lambda: NOON_ET)


def test_snapshot_quotes(market_tws: TwsEmulator, ib_logs: IbLogGuard) -> None:
    ib_logs.allow(api_error(200))
    clock = ManualClock(NOON_ET)

    async def scenario() -> None:
        data = IBKRMarketData(port=market_tws.port, client_id=9, clock=clock, symbols=["AAPL"])
        try:
            quote = await data.quote("AAPL")
            assert (quote.bid, quote.ask, quote.last) == (D("189.99"), D("190.01"), D("190.00"))
            assert quote.at == NOON_ET and quote.symbol == "AAPL"
            market_tws.set_price("AAPL", "191.25")
            assert (await data.quote("AAPL")).last == D("191.25")
            with pytest.raises(UnknownSymbol):
                await data.quote("ZZZZ")
            assert data.symbols() == frozenset({"AAPL"})
            assert (await data.quote("MSFT")).ask == D("410.01")
            assert data.symbols() == frozenset({"AAPL", "MSFT"})
        finally:
            await data.close()
        requests = market_tws.requests(1)
        assert requests and all(fields[17] == "1" for _, fields in requests)  # snapshots

    run(scenario())


def test_historical_bars_and_average_daily_volume(market_tws: TwsEmulator) -> None:
    clock = ManualClock(NOON_ET)
    calendar = default_calendar()

    async def scenario() -> None:
        data = IBKRMarketData(port=market_tws.port, client_id=9, clock=clock, calendar=calendar)
        try:
            daily = await data.bars("AAPL", "1Day", limit=5)
            days = [date(2024, 8, d) for d in (14, 15, 16, 19, 20)]  # today is not complete
            assert [b.start for b in daily] == [calendar.session_open(d) for d in days]
            assert [b.end for b in daily] == [calendar.session_close(d) for d in days]
            assert daily[-1].volume == D(55_000_000) * D("0.9")  # a Tuesday in the emulator
            assert all(b.low <= min(b.open, b.close) <= b.high for b in daily)

            five = await data.bars(
                "AAPL",
                "5Min",
                start=datetime(2024, 8, 21, 13, 30, tzinfo=UTC),
                end=datetime(2024, 8, 21, 14, 0, tzinfo=UTC),
            )
            assert [b.start.strftime("%H:%M") for b in five] == [
                "13:30", "13:35", "13:40", "13:45", "13:50", "13:55"
            ]  # fmt: skip
            assert all(b.end - b.start == timedelta(minutes=5) for b in five)

            hourly = await data.bars("AAPL", "1Hour", limit=3)
            assert [(b.start.hour, b.start.minute, b.end.hour) for b in hourly] == [
                (13, 30, 14),  # 09:30-10:00 New York: the session's first, short, hour
                (14, 0, 15),
                (15, 0, 16),
            ]
            assert await data.bars("AAPL", "1Min", limit=0) == []

            # 20 sessions: four of each weekday, so the mean is exactly the emulator's ADV
            assert await data.average_daily_volume("AAPL") == D(55_000_000)
            with pytest.raises(ValueError):
                await data.bars("AAPL", "2Min")
        finally:
            await data.close()

    run(scenario())


def test_market_data_can_share_the_broker_connection(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with connected(tws) as broker:
            data = IBKRMarketData(ib=broker.ib)
            assert (await data.quote("MSFT")).last == D("410.00")
            await data.close()  # leaves the shared connection alone
            assert broker.connected

    run(scenario())


def test_durations_cover_the_requested_bars() -> None:
    end = datetime(2024, 8, 21, 16, 0, tzinfo=UTC)
    assert duration_for(5, end - timedelta(minutes=30), end, None) == "1800 S"
    assert duration_for(5, end - timedelta(days=3), end, None) == "3 D"
    assert duration_for(None, end - timedelta(days=10), end, None) == "11 D"
    assert duration_for(None, None, end, 20) == "35 D"
    assert duration_for(None, None, end, 400) == "2 Y"
    assert duration_for(1, None, end, 390) == "7 D"
    assert duration_for(1, None, end, None) == "1 D"


# ---------------------------------------------------------------------------------------------
# Running the emulator by hand
# ---------------------------------------------------------------------------------------------


def test_emulator_runs_from_the_command_line() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.tws", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+) \(server version 157", line)
        assert match, line
        port = int(match[1])

        async def scenario() -> None:
            broker = IBKRBroker("127.0.0.1", port, CLIENT_ID)
            await broker.connect()
            try:
                assert (await broker.get_account()).equity == D("100000.00")
            finally:
                await broker.close()

        try:
            run(scenario())
        finally:
            process.terminate()
            process.wait(10)
