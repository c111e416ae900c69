"""``BrokerNotReached`` from the Alpaca and IBKR adapters: raised only when a request certainly
never left this process (no connection could be made, or the adapter refused before sending),
so the order router may send a new order to its fallback; anything that may have reached the
broker stays a plain, ambiguous ``BrokerUnavailable``.

The adapters run for real against the loopback Alpaca and TWS emulators."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any, TypeVar

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from core.brokers.alpaca import AlpacaBroker, never_connected
from core.brokers.ibkr import IBKRBroker
from core.brokers.router import BrokerNotReached, OrderRouter, never_sent
from core.domain import EventKind, OrderRequest, OrderStatus, OrderType, Side
from core.ports import BrokerUnavailable
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.tws import TwsEmulator

T = TypeVar("T")

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]

CLIENT_ID = 11


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 20, 15, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def order(coid: str, qty: str = "10", symbol: str = "AAPL", **kw: Any) -> OrderRequest:
    return OrderRequest(coid, symbol, Side.BUY, D(qty), **kw)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_ambiguous(exc: BaseException) -> None:
    assert isinstance(exc, BrokerUnavailable)
    assert not isinstance(exc, BrokerNotReached)
    assert not never_sent(exc)


# ---------------------------------------------------------------------------------------------
# Alpaca
# ---------------------------------------------------------------------------------------------


def alpaca_on(emu: AlpacaEmulator, **options: Any) -> AlpacaBroker:
    settings: dict[str, Any] = {
        "base_url": emu.base_url,
        "stream_url": emu.stream_url,
        "reconnect_backoff": (0.05, 0.2),
        "retry_wait": 0.01,
        "poll_interval": 60.0,
        **options,
    }
    broker = AlpacaBroker(emu.api_key, emu.secret_key, **settings)
    broker.trading_client._retry_wait = 0  # the SDK's own 429/504 pause
    return broker


@pytest.fixture
def alpaca(no_thread_leaks: None) -> Iterator[tuple[AlpacaEmulator, AlpacaBroker]]:
    with AlpacaEmulator(fill_delay=0.005) as emu:
        broker = alpaca_on(emu)
        run(broker.connect())
        try:
            yield emu, broker
        finally:
            run(broker.close())


def test_alpaca_submit_with_the_server_down_is_not_reached(no_thread_leaks: None) -> None:
    emu = AlpacaEmulator(fill_delay=0.005).start()
    broker = alpaca_on(emu)
    try:
        run(broker.connect())
        emu.stop()  # nothing listens on the port any more
        started = time.monotonic()
        with pytest.raises(BrokerNotReached, match="was not sent") as info:
            run(broker.submit_order(order("down-1")))
        assert time.monotonic() - started < 2.0
        assert never_sent(info.value)
        # a refused connection: the adapter reports itself down (cached stream events do not
        # make it look reachable) until connect() reaches the server again
        assert not broker.connected
        with pytest.raises(BrokerNotReached, match=r"not connected|could not be reached"):
            run(broker.updates())
        with pytest.raises(BrokerNotReached, match="connection failed"):
            run(broker.connect())
    finally:
        run(broker.close())
        emu.stop()
    assert emu.count_requests("POST", "/v2/orders") == 0
    assert emu.count_requests("GET", "/v2/orders:by_client_order_id") == 0  # no lookup needed
    assert emu.all_orders() == []


def test_alpaca_connect_refused_and_calls_before_connect_are_not_reached(
    no_thread_leaks: None,
) -> None:
    with AlpacaEmulator() as emu:
        url = emu.base_url
    broker = AlpacaBroker("key-id-0001", "secret-0001", base_url=url, retry_wait=0.01)
    with pytest.raises(BrokerNotReached, match="connection failed"):
        run(broker.connect())
    assert not broker.connected
    with pytest.raises(BrokerNotReached, match="not connected"):
        run(broker.submit_order(order("early-1")))
    with pytest.raises(BrokerNotReached, match="not connected"):
        run(broker.get_account())


def test_alpaca_lost_response_with_a_failing_lookup_stays_ambiguous(
    alpaca: tuple[AlpacaEmulator, AlpacaBroker],
) -> None:
    emu, broker = alpaca
    emu.lose_next_response()  # the order is created, the connection reset before the answer
    emu.fail_next(3, 503, method="GET", path="/v2/orders:by_client_order_id")
    with pytest.raises(BrokerUnavailable, match="look it up before sending it again") as info:
        run(broker.submit_order(order("reset-1")))
    assert_ambiguous(info.value)
    assert len(emu.all_orders()) == 1  # it did reach Alpaca


def test_alpaca_lost_response_is_resolved_by_the_lookup(
    alpaca: tuple[AlpacaEmulator, AlpacaBroker],
) -> None:
    emu, broker = alpaca
    emu.lose_next_response()
    ack = run(broker.submit_order(order("reset-2")))
    assert ack.client_order_id == "reset-2" and ack.broker_order_id
    assert emu.count_requests("POST", "/v2/orders") == 1


def test_alpaca_read_timeout_is_ambiguous_resolved_by_lookup_or_left_in_doubt(
    no_thread_leaks: None,
) -> None:
    with AlpacaEmulator(fill_delay=0.005) as emu:
        broker = alpaca_on(emu, request_timeout=0.3)
        run(broker.connect())
        try:
            emu.delay_next(1, 1.0, method="POST", path="/v2/orders")
            ack = run(broker.submit_order(order("slow-1")))
            assert ack.client_order_id == "slow-1"  # found by client order id

            emu.delay_next(1, 1.0, method="POST", path="/v2/orders")
            emu.delay_next(3, 1.0, method="GET", path="/v2/orders:by_client_order_id")
            with pytest.raises(BrokerUnavailable) as info:
                run(broker.submit_order(order("slow-2")))
            assert_ambiguous(info.value)
            assert emu.count_requests("POST", "/v2/orders") == 2  # never re-sent
        finally:
            run(broker.close())


def _refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.ConnectionError(MaxRetryError(None, "/v2/orders", reason))  # type: ignore[arg-type]


def _dns_failure() -> requests.ConnectionError:
    reason = NameResolutionError("paper-api.alpaca.markets", None, socket.gaierror(-2, "no name"))  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/v2/orders", reason))  # type: ignore[arg-type]


def _reset() -> requests.ConnectionError:
    reason = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    return requests.ConnectionError(MaxRetryError(None, "/v2/orders", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "reached"),
    [
        (lambda: requests.ConnectTimeout("connect timed out"), False),
        (_refused, False),
        (_dns_failure, False),
        (lambda: requests.ReadTimeout("read timed out"), True),
        (_reset, True),
        (lambda: requests.ConnectionError("Connection aborted."), True),
        (lambda: requests.exceptions.SSLError("handshake"), True),
        (lambda: requests.exceptions.ProxyError("proxy"), True),
    ],
    ids=[
        "connect-timeout",
        "refused",
        "dns",
        "read-timeout",
        "reset",
        "aborted",
        "tls",
        "proxy",
    ],
)
def test_alpaca_submit_failures_are_not_reached_only_when_no_connection_was_made(
    alpaca: tuple[AlpacaEmulator, AlpacaBroker],
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[], BaseException],
    reached: bool,
) -> None:
    emu, broker = alpaca
    assert never_connected(failure()) is not reached

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise failure()

    monkeypatch.setattr(broker.trading_client, "submit_order", fail)
    with pytest.raises(BrokerUnavailable) as info:
        run(broker.submit_order(order("classified")))
    lookups = emu.count_requests("GET", "/v2/orders:by_client_order_id")
    if reached:
        assert_ambiguous(info.value)
        assert lookups == 1  # looked up before anything else (Alpaca does not have it)
    else:
        assert isinstance(info.value, BrokerNotReached)
        assert never_sent(info.value)
        assert lookups == 0


# ---------------------------------------------------------------------------------------------
# IBKR
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tws() -> Iterator[TwsEmulator]:
    emulator = TwsEmulator().start()
    try:
        yield emulator
    finally:
        errors = emulator.errors
        emulator.stop()
        assert errors == []


def ibkr_on(port: int, **options: Any) -> IBKRBroker:
    settings: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "ack_timeout": 2.0,
        "reconnect_delay": 0.05,
        "max_reconnect_delay": 0.2,
        **options,
    }
    return IBKRBroker("127.0.0.1", port, **settings)


@contextlib.asynccontextmanager
async def ibkr_connected(tws: TwsEmulator, **options: Any) -> AsyncIterator[IBKRBroker]:
    broker = ibkr_on(tws.port, **options)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


async def until(condition: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def test_ibkr_never_connected_submit_and_failed_connect_are_not_reached() -> None:
    async def scenario() -> None:
        broker = ibkr_on(free_port())
        with pytest.raises(BrokerNotReached, match="not connected"):
            await broker.submit_order(order("ib-nc-1"))
        with pytest.raises(BrokerNotReached, match="cannot connect"):
            await broker.connect()
        with pytest.raises(BrokerNotReached, match="not connected"):
            await broker.submit_order(order("ib-nc-2"))
        await broker.close()

    run(scenario())


def test_ibkr_submit_while_disconnected_or_reconnecting_is_not_reached(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with ibkr_connected(tws) as broker:
            tws.pause_listening()
            tws.disconnect_clients()
            await until(lambda: not broker.connected, "the disconnect")
            await until(lambda: broker.reconnect_attempts >= 1, "a refused reconnect attempt")
            with pytest.raises(BrokerNotReached, match="reconnecting") as info:
                await broker.submit_order(order("ib-gap-1"))
            assert never_sent(info.value)
            tws.resume_listening()
            await until(lambda: broker.connected, "the reconnect")
            ack = await broker.submit_order(order("ib-gap-1"))  # the id is still free
            assert ack.status is OrderStatus.ACCEPTED
        assert tws.order_by_ref("ib-gap-1") is not None
        assert len(tws.requests(3)) == 1  # placed once, after the reconnect

    run(scenario())


def test_ibkr_submit_while_tws_has_lost_ib_is_not_reached_and_nothing_is_sent(
    tws: TwsEmulator,
) -> None:
    async def scenario() -> None:
        async with ibkr_connected(tws) as broker:
            tws.send_error(-1, 1100, "Connectivity between IB and TWS has been lost.")
            await until(lambda: broker.last_error is not None, "the 1100 notice")
            with pytest.raises(BrokerNotReached, match="1100"):
                await broker.submit_order(order("ib-1100"))
            assert tws.requests(3) == []

    run(scenario())


def test_ibkr_contract_lookup_failure_is_not_reached(tws: TwsEmulator) -> None:
    async def scenario() -> None:
        async with ibkr_connected(tws, request_timeout=0.1) as broker:
            tws.set_delay(0.5, [9])  # contract details answer late
            with pytest.raises(BrokerNotReached, match="contract lookup"):
                await broker.submit_order(order("ib-contract"))
            assert tws.requests(3) == []
            tws.set_delay(0.0)

    run(scenario())


def test_ibkr_closed_socket_at_the_first_order_is_not_reached_later_legs_are_ambiguous(
    tws: TwsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with ibkr_connected(tws) as broker:
            real_place = broker.ib.placeOrder
            calls: list[str] = []
            fail_at = {"call": 1}  # which placeOrder call finds the socket closed

            def place(contract: Any, ib_order: Any) -> Any:
                calls.append(ib_order.orderRef)
                if len(calls) == fail_at["call"]:
                    raise ConnectionError("Not connected")  # ib_insync's send() refusing
                return real_place(contract, ib_order)

            monkeypatch.setattr(broker.ib, "placeOrder", place)
            with pytest.raises(BrokerNotReached, match="was not sent"):
                await broker.submit_order(order("ib-sock-1"))
            assert await broker.get_order("ib-sock-1") is None  # no record of an unsent order
            assert tws.requests(3) == []
            fail_at["call"] = 0
            ack = await broker.submit_order(order("ib-sock-1"))  # the id was never used
            assert ack.status is OrderStatus.ACCEPTED

            calls.clear()
            fail_at["call"] = 2  # the bracket entry went out (untransmitted), its take-profit not
            bracket = order(
                "ib-sock-2",
                order_type=OrderType.BRACKET,
                take_profit_price=D("200"),
                stop_loss_price=D("180"),
            )
            with pytest.raises(BrokerUnavailable, match="look it up") as info:
                await broker.submit_order(bracket)
            assert_ambiguous(info.value)

    run(scenario())


# ---------------------------------------------------------------------------------------------
# The router over both adapters
# ---------------------------------------------------------------------------------------------


def test_router_sends_a_new_order_to_ibkr_when_alpacas_server_is_down(
    tws: TwsEmulator, no_thread_leaks: None
) -> None:
    emu = AlpacaEmulator(fill_delay=0.005).start()
    alpaca = alpaca_on(emu)
    ibkr = ibkr_on(tws.port)
    assert (alpaca.name, ibkr.name) == ("alpaca", "ibkr")

    async def scenario() -> None:
        router = OrderRouter(alpaca, ibkr, clock=FixedClock(), reconnect_every=None)
        await router.connect()
        try:
            assert router.name == "alpaca"
            await asyncio.to_thread(emu.stop)  # Alpaca's server goes away: connections refused
            ack = await router.submit_order(order("route-1", "5"))
            assert ack.client_order_id == "route-1"
            assert router.broker_for("route-1") == "ibkr"
            assert router.name == "ibkr"  # new orders go to IBKR until Alpaca answers again
            status = {b["name"]: b for b in router.status()["brokers"]}
            assert status["alpaca"]["up"] is False and status["ibkr"]["up"] is True

            events: list[Any] = []
            deadline = time.monotonic() + 3
            while not any(e.kind is EventKind.FILL for e in events):
                assert time.monotonic() < deadline, f"no fill at IBKR; events: {events}"
                events.extend(await ibkr.updates())
                await asyncio.sleep(0.01)
            found = await router.get_order("route-1")
            assert found is not None and found.status is OrderStatus.FILLED
        finally:
            await router.close()

    try:
        run(scenario())
    finally:
        emu.stop()
    assert tws.order_by_ref("route-1") is not None
    assert emu.count_requests("POST", "/v2/orders") == 0
    assert emu.all_orders() == []


def test_router_with_alpaca_down_from_the_start_sends_new_orders_to_ibkr(
    tws: TwsEmulator, no_thread_leaks: None
) -> None:
    with AlpacaEmulator() as emu:
        url = emu.base_url  # after the block its port refuses connections
    broker = AlpacaBroker("key-id-0001", "secret-0001", base_url=url, retry_wait=0.01)
    ibkr = ibkr_on(tws.port)

    async def scenario() -> None:
        router = OrderRouter(broker, ibkr, clock=FixedClock(), reconnect_every=None)
        await router.connect()  # Alpaca cannot be connected; IBKR can
        try:
            assert not broker.connected and router.name == "ibkr"
            await router.submit_order(order("route-2", "3"))
            assert router.broker_for("route-2") == "ibkr"
        finally:
            await router.close()

    run(scenario())
    assert tws.order_by_ref("route-2") is not None
