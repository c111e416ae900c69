"""The Alpaca adapter, driving the real alpaca-py against the loopback Alpaca emulator: every
Broker method, every order type, the trade-update stream, error mapping and fault recovery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal as D
from typing import Any, TypeVar

import pytest
import requests

from core.brokers.alpaca import AlpacaBroker, PortfolioPoint, mask
from core.domain import (
    BrokerEvent,
    Direction,
    EventKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.ports import Broker, BrokerUnavailable, OrderRejected, UnknownOrder
from tests.emulators.alpaca import AlpacaEmulator

T = TypeVar("T")

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def order(coid: str, symbol: str = "AAPL", side: str = "buy", qty: str = "10", **kw: Any):
    return OrderRequest(coid, symbol, Side(side), D(qty), **kw)


class Env:
    """An emulator and a connected broker on it, with polling helpers."""

    def __init__(self, emu: AlpacaEmulator, broker: AlpacaBroker) -> None:
        self.emu = emu
        self.broker = broker
        self.events: list[BrokerEvent] = []

    def submit(self, request: OrderRequest):
        return run(self.broker.submit_order(request))

    def drain(self) -> list[BrokerEvent]:
        new = run(self.broker.updates())
        self.events.extend(new)
        return new

    def wait_event(
        self, coid: str, kind: EventKind, count: int = 1, timeout: float = 5.0
    ) -> list[BrokerEvent]:
        def seen() -> list[BrokerEvent]:
            return [e for e in self.events if e.client_order_id == coid and e.kind is kind]

        def ready() -> bool:
            self.drain()
            return len(seen()) >= count

        wait_for(ready, timeout, f"{count} {kind.value} event(s) for {coid}")
        return seen()

    def fills(self, coid: str | None = None) -> list:
        return [
            e.fill
            for e in self.events
            if e.kind is EventKind.FILL and (coid is None or e.client_order_id == coid)
        ]

    def settle(self, seconds: float = 0.3) -> list[BrokerEvent]:
        """Collect events for a short while (to show that nothing more arrives)."""
        new: list[BrokerEvent] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            new.extend(self.drain())
            time.sleep(0.02)
        return new


def make_env(
    no_thread_leaks: None, emulator_options: dict[str, Any], broker_options: dict[str, Any]
) -> Iterator[Env]:
    options = {"fill_delay": 0.005, **emulator_options}
    with AlpacaEmulator(**options) as emu:
        settings = {
            "base_url": emu.base_url,
            "stream_url": emu.stream_url,
            "reconnect_backoff": (0.05, 0.2),
            "retry_wait": 0.01,
            "poll_interval": 60.0,
            **broker_options,
        }
        broker = AlpacaBroker(emu.api_key, emu.secret_key, **settings)
        # The SDK waits 3 s between its own 429/504 retries; tests do not.
        broker.trading_client._retry_wait = 0
        run(broker.connect())
        try:
            yield Env(emu, broker)
        finally:
            run(broker.close())


@pytest.fixture
def env(no_thread_leaks: None, request: pytest.FixtureRequest) -> Iterator[Env]:
    param = getattr(request, "param", {})
    yield from make_env(no_thread_leaks, param.get("emulator", {}), param.get("broker", {}))


def configured(
    emulator: dict[str, Any] | None = None, broker: dict[str, Any] | None = None
) -> pytest.MarkDecorator:
    """Run a test on an emulator and a broker built with these options."""
    settings = {"emulator": emulator or {}, "broker": broker or {}}
    return pytest.mark.parametrize("env", [settings], indirect=True, ids=["configured"])


# --- connection and account ------------------------------------------------------------------


def test_implements_the_broker_port_and_connects_with_a_listening_stream(env: Env) -> None:
    broker: Broker = env.broker
    assert broker.connected
    assert env.broker.stream_listening
    wait_for(lambda: env.emu.stream_clients == 1, what="one listening stream client")
    assert repr(env.broker).count(env.emu.api_key) == 0


def test_methods_need_connect(no_thread_leaks: None) -> None:
    broker = AlpacaBroker("key-id-0001", "secret-0001", base_url="http://127.0.0.1:9")
    with pytest.raises(BrokerUnavailable, match="not connected"):
        run(broker.get_account())


@pytest.mark.parametrize(
    ("cash", "count", "pdt", "remaining"),
    [
        ("100000", 2, False, None),  # at or above $25k: unlimited
        ("10000", 0, False, 3),
        ("10000", 2, False, 1),
        ("10000", 5, False, 0),
        ("10000", 0, True, 0),  # flagged PDT below $25k: no day trades
        ("30000", 4, True, None),
    ],
)
def test_account_maps_balances_and_day_trades_remaining(
    env: Env, cash: str, count: int, pdt: bool, remaining: int | None
) -> None:
    env.emu.set_account(cash=cash, daytrade_count=count, pattern_day_trader=pdt, last_equity="9000")
    account = run(env.broker.get_account())
    assert account.equity == D(cash)
    assert account.cash == D(cash)
    assert account.buying_power == D(cash) * 2
    assert account.day_trade_count == count
    assert account.pattern_day_trader is pdt
    assert account.day_trades_remaining == remaining
    assert account.daily_pnl == D(cash) - D("9000")
    assert account.at is not None and account.at.tzinfo is not None


def test_account_after_trading_reports_market_values_and_margin(env: Env) -> None:
    env.submit(order("long", qty="500"))  # 500 x 190.01 ask
    env.wait_event("long", EventKind.FILL)
    env.submit(order("short", symbol="MSFT", side="sell", qty="100"))  # 100 x 409.99 bid
    env.wait_event("short", EventKind.FILL)
    account = run(env.broker.get_account())
    assert account.long_market_value == D("95000")  # 500 x last 190
    assert account.short_market_value == D("-41000")  # 100 x last 410
    assert account.cash == D("100000") - D("95005") + D("40999")
    assert account.equity == D("99994")
    assert account.margin_used == D("136000") - D("99994")  # gross beyond equity is borrowed
    assert account.buying_power == 2 * D("99994") - D("136000")


def test_positions_long_and_short_with_side_and_unrealized_pnl(env: Env) -> None:
    env.submit(order("buy-aapl", qty="10"))
    env.submit(order("sell-msft", symbol="MSFT", side="sell", qty="4"))
    env.wait_event("buy-aapl", EventKind.FILL)
    env.wait_event("sell-msft", EventKind.FILL)
    env.emu.set_price("AAPL", "195")
    env.emu.set_price("MSFT", "400")
    positions = {p.symbol: p for p in run(env.broker.get_positions())}
    aapl, msft = positions["AAPL"], positions["MSFT"]
    assert (aapl.qty, aapl.avg_entry_price, aapl.current_price) == (D(10), D("190.01"), D(195))
    assert aapl.side is Direction.LONG
    assert aapl.unrealized_pnl == D("49.90")
    assert (msft.qty, msft.avg_entry_price, msft.current_price) == (D(-4), D("409.99"), D(400))
    assert msft.side is Direction.SHORT
    assert msft.unrealized_pnl == D("39.96")


# --- orders of every type --------------------------------------------------------------------


def test_market_order_is_acknowledged_then_filled_over_the_stream(env: Env) -> None:
    ack = env.submit(order("m1", qty="10"))
    assert ack.client_order_id == "m1"
    assert ack.status is OrderStatus.ACCEPTED
    assert ack.order_type is OrderType.MARKET
    assert ack.filled_qty == 0 and ack.submitted_at is not None
    wire = env.emu.order("m1")
    assert wire is not None
    assert (wire["type"], wire["time_in_force"], wire["qty"]) == ("market", "day", "10")

    accepted = env.wait_event("m1", EventKind.ACCEPTED)
    [fill_event] = env.wait_event("m1", EventKind.FILL)
    assert accepted[0].broker_order_id == ack.broker_order_id
    fill = fill_event.fill
    assert fill is not None
    assert fill_event.status is OrderStatus.FILLED
    assert (fill.qty, fill.price, fill.side) == (D(10), D("190.01"), Side.BUY)
    assert fill.fill_id == f"{ack.broker_order_id}:10"
    assert fill.broker == "alpaca" and fill.at.tzinfo is not None
    assert env.events.index(accepted[0]) < env.events.index(fill_event)

    found = run(env.broker.get_order("m1"))
    assert found is not None and found.status is OrderStatus.FILLED
    assert (found.filled_qty, found.avg_fill_price) == (D(10), D("190.01"))
    [again] = run(env.broker.get_fills("m1"))
    assert (again.fill_id, again.qty, again.price) == (fill.fill_id, fill.qty, fill.price)


def test_fractional_quantity(env: Env) -> None:
    env.submit(order("frac", qty="0.5"))
    [event] = env.wait_event("frac", EventKind.FILL)
    assert event.fill is not None and event.fill.qty == D("0.5")
    assert env.emu.order("frac")["qty"] == "0.5"
    [position] = run(env.broker.get_positions())
    assert position.qty == D("0.5")


def test_limit_order_rests_until_marketable_and_prices_go_on_the_tick(env: Env) -> None:
    ack = env.submit(
        order("lim", order_type=OrderType.LIMIT, limit_price=D("189.5099"), time_in_force="gtc")
    )
    assert ack.order_type is OrderType.LIMIT
    wire = env.emu.order("lim")
    assert (wire["type"], wire["time_in_force"], wire["limit_price"]) == ("limit", "gtc", "189.5")
    env.settle(0.1)
    assert env.fills("lim") == []
    assert [o.client_order_id for o in run(env.broker.get_orders("open"))] == ["lim"]
    env.emu.set_quote("AAPL", "189.38", "189.40")
    [event] = env.wait_event("lim", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("189.40")
    assert run(env.broker.get_orders("open")) == []


def test_stop_order_triggers_on_the_last_price(env: Env) -> None:
    env.submit(order("stop", order_type=OrderType.STOP, stop_price=D("195")))
    assert env.emu.order("stop")["stop_price"] == "195"
    env.settle(0.1)
    assert env.fills("stop") == []
    env.emu.set_price("AAPL", "196")
    [event] = env.wait_event("stop", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("196.01")


def test_stop_limit_order_fills_only_within_its_limit(env: Env) -> None:
    env.submit(
        order("sl", order_type=OrderType.STOP_LIMIT, stop_price=D("195"), limit_price=D("195.5"))
    )
    wire = env.emu.order("sl")
    assert (wire["type"], wire["stop_price"], wire["limit_price"]) == ("stop_limit", "195", "195.5")
    env.emu.set_price("AAPL", "196")  # triggered, but the ask 196.01 is above the limit
    env.settle(0.1)
    assert env.fills("sl") == []
    env.emu.set_price("AAPL", "195.2")
    [event] = env.wait_event("sl", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("195.21")


@pytest.mark.parametrize(
    ("trail", "wire_field", "wire_value"),
    [
        ({"trail_percent": D("1")}, "trail_percent", "1"),
        ({"trail_price": D("2")}, "trail_price", "2"),
    ],
)
def test_trailing_stop_follows_the_high_water_mark(
    env: Env, trail: dict[str, D], wire_field: str, wire_value: str
) -> None:
    env.emu.set_price("AAPL", "200")
    env.submit(order("trail", side="sell", qty="5", order_type=OrderType.TRAILING_STOP, **trail))
    wire = env.emu.order("trail")
    assert (wire["type"], wire[wire_field]) == ("trailing_stop", wire_value)
    env.emu.set_price("AAPL", "198.5")  # the stop trails 200 at 198: not yet
    env.settle(0.1)
    assert env.fills("trail") == []
    env.emu.set_price("AAPL", "197.5")
    [event] = env.wait_event("trail", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("197.49")
    assert env.emu.order("trail")["hwm"] == "200"


def test_market_on_close_fills_at_the_close_and_day_orders_expire(env: Env) -> None:
    ack = env.submit(
        order("moc", order_type=OrderType.MARKET_ON_CLOSE, time_in_force=TimeInForce.CLS)
    )
    assert ack.order_type is OrderType.MARKET_ON_CLOSE
    env.submit(order("day-lim", order_type=OrderType.LIMIT, limit_price=D("150")))
    wire = env.emu.order("moc")
    assert (wire["type"], wire["time_in_force"]) == ("market", "cls")
    env.settle(0.1)
    assert env.fills() == []
    env.emu.end_of_day()
    [event] = env.wait_event("moc", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("190.01")
    [expired] = env.wait_event("day-lim", EventKind.EXPIRED)
    assert expired.status is OrderStatus.EXPIRED and "expired" in (expired.reason or "")


@pytest.mark.parametrize(
    ("exit_price", "winner", "loser"), [("201", "tp", "sl"), ("179", "sl", "tp")]
)
def test_bracket_order_legs_carry_our_ids(
    env: Env, exit_price: str, winner: str, loser: str
) -> None:
    request = order(
        "br",
        qty="5",
        order_type=OrderType.BRACKET,
        take_profit_price=D("200"),
        stop_loss_price=D("180"),
    )
    ack = env.submit(request)
    assert ack.order_type is OrderType.BRACKET
    wire = env.emu.order("br")
    assert wire["order_class"] == "bracket"
    legs = sorted(
        (leg["type"], leg["side"], leg["limit_price"] or leg["stop_price"]) for leg in wire["legs"]
    )
    assert legs == [("limit", "sell", "200"), ("stop", "sell", "180")]

    env.wait_event("br", EventKind.FILL)
    env.wait_event("br-tp", EventKind.ACCEPTED)
    env.emu.set_price("AAPL", exit_price)
    [won] = env.wait_event(f"br-{winner}", EventKind.FILL)
    [lost] = env.wait_event(f"br-{loser}", EventKind.CANCELLED)
    assert won.fill is not None and won.fill.side is Side.SELL and won.fill.qty == D(5)
    assert "bracket" in (lost.reason or "")
    rows = {o.client_order_id: o for o in run(env.broker.get_orders("closed"))}
    assert rows["br"].status is OrderStatus.FILLED
    assert rows[f"br-{winner}"].status is OrderStatus.FILLED
    assert rows[f"br-{loser}"].status is OrderStatus.CANCELLED
    [leg_fill] = run(env.broker.get_fills(f"br-{winner}"))
    assert leg_fill.client_order_id == f"br-{winner}"


def test_bracket_with_a_limit_entry(env: Env) -> None:
    env.submit(
        order(
            "brl",
            qty="3",
            order_type=OrderType.BRACKET,
            limit_price=D("185"),
            take_profit_price=D("200"),
            stop_loss_price=D("180"),
        )
    )
    wire = env.emu.order("brl")
    assert (wire["type"], wire["limit_price"], wire["order_class"]) == ("limit", "185", "bracket")
    env.settle(0.1)
    assert env.fills() == []
    held = run(env.broker.get_order("brl-tp"))  # held until the entry fills
    assert held is not None and held.status is OrderStatus.SUBMITTED
    assert (held.order_type, held.side, held.qty) == (OrderType.LIMIT, Side.SELL, D(3))
    stop = run(env.broker.get_order("brl-sl"))
    assert stop is not None and stop.order_type is OrderType.STOP
    assert [o.client_order_id for o in run(env.broker.get_orders("open"))] == [
        "brl",
        "brl-tp",
        "brl-sl",
    ]
    env.emu.set_quote("AAPL", "184.90", "184.95")
    [event] = env.wait_event("brl", EventKind.FILL)
    assert event.fill is not None and event.fill.price == D("184.95")


@configured(emulator={"fill_parts": 2})
def test_partial_fills_are_reported_per_execution(env: Env) -> None:
    ack = env.submit(order("parts", qty="10"))
    events = env.wait_event("parts", EventKind.FILL, count=2)
    assert [e.status for e in events] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert [e.fill.qty for e in events if e.fill] == [D(5), D(5)]
    ids = [e.fill.fill_id for e in events if e.fill]
    assert ids == [f"{ack.broker_order_id}:5", f"{ack.broker_order_id}:10"]
    assert [f.fill_id for f in run(env.broker.get_fills("parts"))] == ids
    assert [f.fill_id for f in run(env.broker.get_fills())] == ids


def test_asynchronous_rejection_arrives_as_an_event(env: Env) -> None:
    env.emu.reject_next_order()
    ack = env.submit(order("rej"))
    assert ack.status is OrderStatus.ACCEPTED
    [event] = env.wait_event("rej", EventKind.REJECTED)
    assert event.status is OrderStatus.REJECTED and event.reason
    found = run(env.broker.get_order("rej"))
    assert found is not None and found.status is OrderStatus.REJECTED


# --- reads, cancels, history ------------------------------------------------------------------


def test_get_orders_by_status_and_unknown_orders(env: Env) -> None:
    env.submit(order("done", qty="1"))
    env.wait_event("done", EventKind.FILL)
    env.submit(order("open", order_type=OrderType.LIMIT, limit_price=D("100")))
    assert [o.client_order_id for o in run(env.broker.get_orders("open"))] == ["open"]
    assert [o.client_order_id for o in run(env.broker.get_orders("closed"))] == ["done"]
    assert [o.client_order_id for o in run(env.broker.get_orders("all"))] == ["done", "open"]
    assert run(env.broker.get_order("never-sent")) is None
    assert run(env.broker.get_fills("never-sent")) == []
    with pytest.raises(ValueError, match="status"):
        run(env.broker.get_orders("pending"))


def test_cancel_order_cancel_again_and_unknown(env: Env) -> None:
    env.submit(order("c1", order_type=OrderType.LIMIT, limit_price=D("100")))
    assert run(env.broker.cancel_order("c1")) is True
    [event] = env.wait_event("c1", EventKind.CANCELLED)
    assert event.reason == "cancelled by request"
    assert run(env.broker.cancel_order("c1")) is False  # already final: 422 not cancelable
    with pytest.raises(UnknownOrder):
        run(env.broker.cancel_order("no-such-order"))


def test_cancel_all_counts_the_cancelled_orders(env: Env) -> None:
    env.submit(order("a", order_type=OrderType.LIMIT, limit_price=D("100")))
    env.submit(order("b", symbol="MSFT", order_type=OrderType.LIMIT, limit_price=D("300")))
    env.submit(order("filled", qty="1"))
    env.wait_event("filled", EventKind.FILL)
    assert run(env.broker.cancel_all()) == 2
    env.wait_event("a", EventKind.CANCELLED)
    env.wait_event("b", EventKind.CANCELLED)
    assert run(env.broker.cancel_all()) == 0


def test_cancelling_a_filled_bracket_cancels_its_working_legs(env: Env) -> None:
    env.submit(
        order(
            "bc",
            qty="2",
            order_type=OrderType.BRACKET,
            take_profit_price=D("200"),
            stop_loss_price=D("180"),
        )
    )
    env.wait_event("bc", EventKind.FILL)
    assert run(env.broker.cancel_order("bc")) is True
    [tp] = env.wait_event("bc-tp", EventKind.CANCELLED)
    [sl] = env.wait_event("bc-sl", EventKind.CANCELLED)
    assert tp.reason == sl.reason == "cancelled by request"


def test_portfolio_history(env: Env) -> None:
    env.submit(order("h", qty="10"))
    env.wait_event("h", EventKind.FILL)
    points = run(env.broker.get_portfolio_history("1W", "1D"))
    assert points and all(isinstance(p, PortfolioPoint) for p in points)
    assert all(p.at.tzinfo is not None for p in points)
    assert points == sorted(points, key=lambda p: p.at)
    last = points[-1]
    account = run(env.broker.get_account())
    assert last.equity == account.equity
    assert last.profit_loss == account.equity - D("100000")


# --- error mapping --------------------------------------------------------------------------


def test_403_is_insufficient_buying_power(env: Env) -> None:
    with pytest.raises(OrderRejected) as info:
        env.submit(order("big", qty="2000"))  # 2000 x 190.01 > 200k buying power
    assert info.value.code == "buying_power"
    assert info.value.reason.startswith("insufficient buying power")
    assert "380020" in info.value.reason  # what it needed
    assert env.emu.all_orders() == []


@configured(emulator={"shorting_enabled": False})
def test_403_selling_shares_not_held(env: Env) -> None:
    with pytest.raises(OrderRejected) as info:
        env.submit(order("naked", side="sell", qty="5"))
    assert info.value.code == "insufficient_qty"
    assert "not allowed to short" in info.value.reason


@pytest.mark.parametrize(
    ("request_kw", "code", "text"),
    [
        ({"qty": "0.5", "time_in_force": "gtc"}, "invalid", "fractional orders must be DAY"),
        ({"symbol": "NOPE"}, "unknown_symbol", "asset NOPE is not active"),
    ],
)
def test_422_is_an_invalid_order_with_alpacas_message(
    env: Env, request_kw: dict[str, Any], code: str, text: str
) -> None:
    with pytest.raises(OrderRejected) as info:
        env.submit(order("bad", **request_kw))
    assert info.value.code == code
    assert text in info.value.reason
    assert info.value.reason.startswith("invalid order")


def test_422_duplicate_client_order_id(env: Env) -> None:
    first = env.submit(order("dup", qty="1"))
    again = env.submit(order("dup", qty="1"))  # the same order: adopted, not placed twice
    assert again.broker_order_id == first.broker_order_id
    with pytest.raises(OrderRejected) as info:
        env.submit(order("dup", qty="7"))
    assert info.value.code == "duplicate"
    assert len(env.emu.all_orders()) == 1
    assert env.emu.count_requests("POST", "/v2/orders") == 3


def test_404_is_unknown_order(env: Env) -> None:
    with pytest.raises(UnknownOrder):
        run(env.broker.cancel_order("missing"))
    assert run(env.broker.get_order("missing")) is None


def test_429_on_submit_after_the_sdk_retries_is_throttled_and_nothing_is_placed(env: Env) -> None:
    env.emu.fail_next(10, 429, method="POST", path="/v2/orders")
    with pytest.raises(OrderRejected) as info:
        env.submit(order("thr"))
    assert info.value.code == "throttled"
    assert "throttled" in info.value.reason and "not placed" in info.value.reason
    assert env.emu.all_orders() == []
    log = env.emu.request_log()
    posts = [i for i, r in enumerate(log) if r == ("POST", "/v2/orders")]
    lookups = [i for i, r in enumerate(log) if r == ("GET", "/v2/orders:by_client_order_id")]
    assert len(posts) == 4  # the SDK's four attempts, never one of ours
    assert lookups and lookups[0] > posts[-1]


# --- ambiguous submits: look up by client order id, never re-send ---------------------------


def test_429_then_success_places_exactly_one_order(env: Env) -> None:
    env.emu.fail_next(2, 429, method="POST", path="/v2/orders")
    ack = env.submit(order("retry"))
    assert ack.status is OrderStatus.ACCEPTED
    assert len(env.emu.all_orders()) == 1
    assert env.emu.count_requests("POST", "/v2/orders") == 3


def test_5xx_before_the_order_exists_is_unavailable_after_the_lookup(env: Env) -> None:
    env.emu.fail_next(1, 500, method="POST", path="/v2/orders")
    with pytest.raises(BrokerUnavailable, match="not placed"):
        env.submit(order("five"))
    assert env.emu.all_orders() == []
    assert env.emu.count_requests("POST", "/v2/orders") == 1
    assert env.emu.count_requests("GET", "/v2/orders:by_client_order_id") == 1


def test_5xx_after_the_order_was_created_recovers_it_by_client_order_id(env: Env) -> None:
    env.emu.fail_next(1, 502, method="POST", path="/v2/orders", commit=True)
    ack = env.submit(order("five-commit"))
    assert ack.client_order_id == "five-commit" and ack.broker_order_id
    assert len(env.emu.all_orders()) == 1
    assert env.emu.count_requests("POST", "/v2/orders") == 1
    [event] = env.wait_event("five-commit", EventKind.FILL)
    assert event.broker_order_id == ack.broker_order_id


def test_lost_response_recovers_the_order_by_client_order_id(env: Env) -> None:
    env.emu.lose_next_response()
    ack = env.submit(order("lost"))
    assert ack.client_order_id == "lost"
    assert len(env.emu.all_orders()) == 1
    assert env.emu.count_requests("POST", "/v2/orders") == 1
    env.wait_event("lost", EventKind.FILL)


@configured(broker={"request_timeout": 0.3})
def test_slow_submit_times_out_then_recovers_by_client_order_id(env: Env) -> None:
    env.emu.delay_next(1, 1.0, method="POST", path="/v2/orders")
    started = time.monotonic()
    ack = env.submit(order("slow"))
    assert time.monotonic() - started < 1.0
    assert ack.client_order_id == "slow"
    assert len(env.emu.all_orders()) == 1
    assert env.emu.count_requests("POST", "/v2/orders") == 1


def test_ambiguous_submit_with_a_failing_lookup_stays_in_doubt(env: Env) -> None:
    env.emu.lose_next_response()
    env.emu.fail_next(3, 503, method="GET", path="/v2/orders:by_client_order_id")
    with pytest.raises(BrokerUnavailable, match="look it up before sending it again"):
        env.submit(order("doubt"))
    assert env.emu.count_requests("POST", "/v2/orders") == 1
    assert env.emu.count_requests("GET", "/v2/orders:by_client_order_id") == 3  # retried reads
    assert len(env.emu.all_orders()) == 1  # it did reach Alpaca; the executor finds it later
    found = run(env.broker.get_order("doubt"))
    assert found is not None and found.client_order_id == "doubt"


def test_reads_are_retried_on_transient_errors(env: Env) -> None:
    env.emu.fail_next(2, 503, method="GET", path="/v2/account")
    assert run(env.broker.get_account()).equity == D("100000")
    env.emu.fail_next(3, 500, method="GET", path="/v2/positions")
    before = env.emu.count_requests("GET", "/v2/positions")
    with pytest.raises(BrokerUnavailable, match="HTTP 500"):
        run(env.broker.get_positions())
    assert env.emu.count_requests("GET", "/v2/positions") - before == 3


def test_connection_refused_is_unavailable(no_thread_leaks: None) -> None:
    with AlpacaEmulator() as emu:
        url = emu.base_url
    broker = AlpacaBroker("key-id-0001", "secret-0001", base_url=url, retry_wait=0.01)
    with pytest.raises(BrokerUnavailable, match="connection failed"):
        run(broker.connect())
    assert not broker.connected


# --- the stream: drops, reconnects, recovery ----------------------------------------------------


def test_stream_dropped_mid_fill_recovers_the_fill_exactly_once(env: Env) -> None:
    env.emu.drop_stream_before_next("fill")
    ack = env.submit(order("gap", qty="10"))
    [event] = env.wait_event("gap", EventKind.FILL)
    assert event.fill is not None
    assert (event.fill.qty, event.fill.price) == (D(10), D("190.01"))
    assert event.fill.fill_id == f"{ack.broker_order_id}:10"
    # connect listed the working orders once; the recovery after the reconnect lists again
    wait_for(
        lambda: env.emu.count_requests("GET", "/v2/orders") >= 2,
        what="the recovery after the reconnect",
    )
    # another reconnect re-reads the same activities: nothing is reported twice
    listings = env.emu.count_requests("GET", "/v2/orders")
    env.emu.drop_stream()
    wait_for(
        lambda: env.emu.count_requests("GET", "/v2/orders") > listings,
        what="the recovery after the second reconnect",
    )
    env.settle()
    assert len(env.fills("gap")) == 1


@configured(emulator={"auto_fill": False})
def test_fills_and_cancels_during_an_outage_are_recovered_after_reconnect(env: Env) -> None:
    ack = env.submit(order("out", qty="10"))
    env.submit(order("gone", order_type=OrderType.LIMIT, limit_price=D("100")))
    env.wait_event("out", EventKind.ACCEPTED)
    env.emu.fill("out", "4", "190.00")
    [first] = env.wait_event("out", EventKind.FILL)
    assert first.fill is not None and first.fill.fill_id == f"{ack.broker_order_id}:4"
    assert first.status is OrderStatus.PARTIALLY_FILLED

    env.emu.pause_stream()
    wait_for(lambda: not env.broker.stream_listening, what="the stream to go down")
    env.emu.fill("out", "6", "191.00")
    requests.delete(
        f"{env.emu.base_url}/v2/orders/{env.emu.order('gone')['id']}",
        headers={
            "APCA-API-KEY-ID": env.emu.api_key,
            "APCA-API-SECRET-KEY": env.emu.secret_key,
        },
        timeout=5,
    ).raise_for_status()  # cancelled by someone else while we are not listening
    assert env.settle(0.2) == []
    env.emu.resume_stream()

    fills = env.wait_event("out", EventKind.FILL, count=2)
    second = fills[1].fill
    assert second is not None
    assert (second.qty, second.price) == (D(6), D("191.00"))
    assert second.fill_id == f"{ack.broker_order_id}:10"
    assert fills[1].status is OrderStatus.FILLED
    [cancelled] = env.wait_event("gone", EventKind.CANCELLED)
    assert cancelled.reason == "cancelled by Alpaca"
    env.settle()
    assert sum(f.qty for f in env.fills("out")) == D(10)
    assert len(env.fills("out")) == 2


@configured(emulator={"auto_fill": False})
def test_recovery_without_the_activity_feed_uses_the_orders_own_figures(env: Env) -> None:
    ack = env.submit(order("agg", qty="10"))
    env.emu.fill("agg", "4", "190.00")
    env.wait_event("agg", EventKind.FILL)
    env.emu.pause_stream()
    wait_for(lambda: not env.broker.stream_listening, what="the stream to go down")
    env.emu.fill("agg", "6", "191.00")
    env.emu.fail_next(50, 404, method="GET", path="/v2/account/activities/FILL")
    env.emu.resume_stream()
    fills = env.wait_event("agg", EventKind.FILL, count=2)
    second = fills[1].fill
    assert second is not None
    # from the order: 10 filled at an average of 190.60, 4 of them already reported at 190.00
    assert (second.qty, second.price) == (D(6), D("191.0000"))
    assert second.fill_id == f"{ack.broker_order_id}:10"
    env.settle()
    assert len(env.fills("agg")) == 2


@configured(emulator={"auto_fill": False}, broker={"poll_interval": 0.1})
def test_updates_poll_while_the_stream_stays_down(env: Env) -> None:
    env.submit(order("poll", qty="3"))
    env.wait_event("poll", EventKind.ACCEPTED)
    env.emu.pause_stream()
    wait_for(lambda: not env.broker.stream_listening, what="the stream to go down")
    env.emu.fill("poll")
    [event] = env.wait_event("poll", EventKind.FILL)
    assert event.fill is not None and event.fill.qty == D(3)
    assert not env.broker.stream_listening
    env.emu.resume_stream()


# --- credentials ----------------------------------------------------------------------------


def test_credentials_are_never_logged_nor_in_errors(
    no_thread_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    key, secret = "PKEMULATORKEY9876", "sEcReT-value-never-shown-4321"
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with AlpacaEmulator(api_key=key, secret_key=secret, fill_delay=0.005) as emu:
        wrong = AlpacaBroker(key, "wrong-secret-value-0000", base_url=emu.base_url)
        with pytest.raises(BrokerUnavailable) as info:
            run(wrong.connect())
        errors.append(str(info.value))
        assert "401" in str(info.value) and mask(key) in str(info.value)

        broker = AlpacaBroker(
            key,
            secret,
            base_url=emu.base_url,
            stream_url=emu.stream_url,
            reconnect_backoff=(0.05, 0.2),
            retry_wait=0.01,
        )
        broker.trading_client._retry_wait = 0
        run(broker.connect())
        try:
            emu.fail_next(1, 500, method="POST", path="/v2/orders")
            with pytest.raises(BrokerUnavailable) as unavailable:
                run(broker.submit_order(order("c1")))
            errors.append(str(unavailable.value))
            with pytest.raises(OrderRejected) as rejected:
                run(broker.submit_order(order("c2", qty="5000")))
            errors.append(str(rejected.value))
            emu.drop_stream()
            wait_for(lambda: emu.stream_clients == 1, what="the stream to reconnect")
            errors.append(repr(broker))
        finally:
            run(broker.close())
    text = caplog.text + "\n".join(errors)
    assert "trade-update stream disconnected" in caplog.text
    assert "authenticate" not in caplog.text  # frames are not logged
    for credential in (key, secret):  # no 8 characters of either, anywhere
        leaked = [credential[i : i + 8] for i in range(len(credential) - 7)]
        assert not [part for part in leaked if part in text]
    assert mask(secret) == "****4321" and mask("short") == "****"
