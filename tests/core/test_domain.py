from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import (
    ALLOWED_TRANSITIONS,
    Direction,
    Fill,
    IllegalTransition,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    TimeInForce,
    ValidationError,
    apply_fill_to_position,
    client_order_id_for,
    to_decimal,
)

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
D = Decimal


def req(**kw) -> OrderRequest:
    base = {"client_order_id": "c1", "symbol": "AAPL", "side": Side.BUY, "qty": D(10)}
    return OrderRequest(**{**base, **kw})


# --------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "NaN", "abc", True, None, [1]])
def test_to_decimal_refuses_non_finite_and_non_numbers(bad):
    with pytest.raises(ValidationError):
        to_decimal(bad)


def test_to_decimal_is_exact_for_floats_and_strings():
    assert to_decimal(0.1) == D("0.1")
    assert to_decimal("123.4500") == D("123.45")
    assert to_decimal(7) == D(7)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-1e9, max_value=1e9))
def test_decimal_round_trip_through_string_is_exact(x):
    assert to_decimal(str(x)) == x


# --------------------------------------------------------------------------- order requests
@pytest.mark.parametrize("qty", [D(0), D(-1), "NaN", float("nan"), "-5"])
def test_order_request_refuses_bad_quantity(qty):
    with pytest.raises(ValidationError, match="qty"):
        req(qty=qty)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"order_type": OrderType.LIMIT}, "limit_price"),
        ({"order_type": OrderType.STOP}, "stop_price"),
        ({"order_type": OrderType.STOP_LIMIT, "limit_price": D(1)}, "stop_price"),
        ({"order_type": OrderType.TRAILING_STOP}, "exactly one"),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_percent": D(1), "trail_price": D(1)},
            "exactly one",
        ),
        ({"order_type": OrderType.MARKET_ON_CLOSE}, "cls"),
        ({"order_type": OrderType.BRACKET, "take_profit_price": D(110)}, "stop_loss_price"),
        (
            {"order_type": OrderType.BRACKET, "take_profit_price": D(90), "stop_loss_price": D(95)},
            "below",
        ),
        ({"limit_price": D(-1), "order_type": OrderType.LIMIT}, "positive"),
        ({"time_in_force": TimeInForce.CLS}, "cls"),
    ],
)
def test_order_request_checks_prices_per_type(kw, message):
    with pytest.raises(ValidationError, match=message):
        req(**kw)


def test_every_order_type_and_tif_can_be_built():
    req(order_type=OrderType.MARKET)
    req(order_type=OrderType.LIMIT, limit_price=D("10.5"), time_in_force=TimeInForce.GTC)
    req(order_type=OrderType.STOP, stop_price=D(11), time_in_force=TimeInForce.IOC)
    req(order_type=OrderType.STOP_LIMIT, stop_price=D(11), limit_price=D("11.1"))
    req(order_type=OrderType.TRAILING_STOP, trail_percent=D(2), side=Side.SELL)
    req(order_type=OrderType.MARKET_ON_CLOSE, time_in_force=TimeInForce.CLS)
    b = req(order_type=OrderType.BRACKET, take_profit_price=D(110), stop_loss_price=D(95))
    assert b.take_profit_price == D(110)


def test_order_request_from_dict_validates_and_names_unknown_fields():
    r = OrderRequest.from_dict(
        {"client_order_id": "x", "symbol": "SPY", "side": "sell", "qty": "2.5"}
    )
    assert r.side is Side.SELL and r.qty == D("2.5")
    with pytest.raises(ValidationError, match="unknown order fields: colour"):
        OrderRequest.from_dict(
            {"client_order_id": "x", "symbol": "SPY", "side": "buy", "qty": 1, "colour": 1}
        )
    with pytest.raises(ValidationError):
        OrderRequest.from_dict({"client_order_id": "x", "symbol": "SPY", "side": "hold", "qty": 1})


# --------------------------------------------------------------------------- state machine
def test_happy_path_records_every_transition_with_time_and_reason():
    o = Order(req())
    path = [
        OrderStatus.PENDING_SUBMIT,
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    for i, status in enumerate(path):
        o.transition(status, T0 + timedelta(seconds=i), f"step {i}")
    assert [h.to_status for h in o.history] == path
    assert o.history[0].from_status is OrderStatus.NEW
    assert o.history[-1].at == T0 + timedelta(seconds=4)
    assert o.history[2].reason == "step 2"


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (OrderStatus.NEW, OrderStatus.FILLED),
        (OrderStatus.NEW, OrderStatus.ACCEPTED),
        (OrderStatus.ACCEPTED, OrderStatus.SUBMITTED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.ACCEPTED),
        (OrderStatus.FILLED, OrderStatus.CANCELLED),
        (OrderStatus.CANCELLED, OrderStatus.FILLED),
        (OrderStatus.REJECTED, OrderStatus.PENDING_SUBMIT),
        (OrderStatus.EXPIRED, OrderStatus.PARTIALLY_FILLED),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(start, to):
    o = Order(req(), status=start)
    with pytest.raises(IllegalTransition):
        o.transition(to, T0)
    assert o.status is start and o.history == []


def test_terminal_statuses_have_no_way_out():
    for status in (
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    ):
        assert ALLOWED_TRANSITIONS[status] == frozenset()
        assert status.is_terminal


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=12))
def test_state_machine_only_moves_forward(steps):
    rank = {s: i for i, s in enumerate(OrderStatus)}
    o = Order(req())
    for to in steps:
        before = o.status
        try:
            o.transition(to, T0)
        except IllegalTransition:
            assert o.status is before
            continue
        # never back to an earlier non-terminal stage
        assert rank[to] >= rank[before] or to.is_terminal


def test_naive_timestamps_are_refused():
    o = Order(req())
    with pytest.raises(ValueError, match="naive"):
        o.transition(OrderStatus.PENDING_SUBMIT, datetime(2026, 1, 1))


def test_apply_fill_tracks_vwap_and_refuses_overfill():
    o = Order(req(qty=D(10)))
    o.apply_fill(D(4), D("100.00"))
    o.apply_fill(D(6), D("101.00"))
    assert o.filled_qty == D(10)
    assert o.avg_fill_price == D("100.6")
    with pytest.raises(ValidationError, match="exceeds"):
        o.apply_fill(D(1), D(100))


# --------------------------------------------------------------------------- signals
def sig(**kw) -> Signal:
    base = {
        "symbol": "AAPL",
        "direction": Direction.LONG,
        "entry": D(100),
        "stop": D(98),
        "created_at": T0,
    }
    return Signal(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"stop": D(101)}, "below entry"),
        ({"direction": Direction.SHORT}, "above entry"),
        ({"entry": D("NaN")}, "finite"),
        ({"entry": D(-1)}, "positive"),
        ({"qty": D(-3)}, "qty"),
        ({"conviction": 150}, "between 0 and 100"),
        ({"target": D(99)}, "above entry"),
        ({"symbol": "ZZZZ"}, "unknown symbol"),
    ],
)
def test_signal_validation_gives_a_reason(kw, message):
    with pytest.raises(ValidationError, match=message):
        sig(**kw).validate(frozenset({"AAPL"}))


def test_client_order_id_is_deterministic():
    assert client_order_id_for(42) == client_order_id_for(42) == "ax-s42-entry"
    assert client_order_id_for(42, "tp") != client_order_id_for(42)


# --------------------------------------------------------------------------- positions
def fill(side: Side, qty: str, price: str, i: int = 0) -> Fill:
    return Fill(f"f{i}", "c", "AAPL", side, D(qty), D(price), T0, "paper")


def test_position_average_cost_and_realized_pnl_by_hand():
    ch = apply_fill_to_position(None, fill(Side.BUY, "10", "100"))
    assert ch.opened and ch.position.qty == 10
    ch = apply_fill_to_position(ch.position, fill(Side.BUY, "10", "110"))
    assert ch.position.avg_entry_price == D(105)
    ch = apply_fill_to_position(ch.position, fill(Side.SELL, "5", "120"))
    assert ch.realized_pnl == D(75) and ch.position.qty == 15 and not ch.closed
    ch = apply_fill_to_position(ch.position, fill(Side.SELL, "20", "100"))
    # closes 15 at -5 each (-75) and flips to 5 short at 100
    assert ch.realized_pnl == D(-75) and ch.closed and ch.opened
    assert ch.position.qty == D(-5) and ch.position.avg_entry_price == D(100)


def test_short_position_pnl_and_side():
    p = Position("TSLA", D(-10), D(200), D(190))
    assert p.side is Direction.SHORT
    assert p.unrealized_pnl == D(100)
    assert p.market_value == D(-1900)


def test_slippage_bps_is_adverse_positive():
    f = Fill("1", "c", "AAPL", Side.BUY, D(1), D("100.10"), T0, "paper", expected_price=D(100))
    assert f.slippage_bps == D("10.0000")
    f = Fill("2", "c", "AAPL", Side.SELL, D(1), D("99.90"), T0, "paper", expected_price=D(100))
    assert f.slippage_bps == D("10.0000")
