"""Signals, orders with status history, fills and positions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.domain import (
    Direction,
    Fill,
    InstrumentType,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    SignalStatus,
    StatusChange,
    TimeInForce,
    TradeType,
    bracket_leg_ids,
    client_order_id_for,
)
from db.errors import DuplicateKeyError, RowNotFoundError
from db.store import SqlStore
from db.tables import FILLS, SIGNALS

T0 = datetime(2024, 5, 6, 13, 30, tzinfo=UTC)


def _signal(symbol: str = "AAPL", **kw: object) -> Signal:
    fields: dict = {
        "symbol": symbol,
        "direction": Direction.LONG,
        "entry": Decimal("187.25"),
        "stop": Decimal("185.10"),
        "created_at": T0,
    }
    fields.update(kw)
    return Signal(**fields)


def _order(coid: str = "ax-s1-entry", **kw: object) -> Order:
    request = OrderRequest(coid, "AAPL", Side.BUY, Decimal("10"), **kw)  # type: ignore[arg-type]
    order = Order(request, broker="paper", created_at=T0, updated_at=T0)
    order.transition(OrderStatus.PENDING_SUBMIT, T0, "written ahead")
    return order


def _fill(fill_id: str = "f1", coid: str = "ax-s1-entry", **kw: object) -> Fill:
    fields: dict = {
        "fill_id": fill_id,
        "client_order_id": coid,
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": Decimal("4"),
        "price": Decimal("187.31"),
        "at": T0 + timedelta(seconds=1),
        "broker": "paper",
        "expected_price": Decimal("187.25"),
        "commission": Decimal("0.004"),
        "broker_order_id": "b-1",
    }
    fields.update(kw)
    return Fill(**fields)


# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------


def test_signal_round_trip(store: SqlStore) -> None:
    signal = _signal(
        target=Decimal("195.5"),
        qty=Decimal("12.5"),
        conviction=88,
        trade_type=TradeType.SWING,
        timeframe="1Hour",
        source="csv",
        order_type=OrderType.LIMIT,
        metadata={"cloud": "bullish", "n": 3},
    )
    with store.unit_of_work() as uow:
        signal_id = uow.signals.add(signal)
        uow.commit()
    with store.unit_of_work() as uow:
        stored = uow.signals.get(signal_id)
        assert uow.signals.get(signal_id + 1000) is None
    assert stored == replace(signal, id=signal_id)


def test_add_many_returns_ids_in_order_and_pending_is_oldest_first(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.signals.add_many([]) == []
        ids = uow.signals.add_many([_signal(f"S{i}") for i in range(5)])
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert [s.symbol for s in uow.signals.pending(3)] == ["S0", "S1", "S2"]
        assert [s.id for s in uow.signals.pending()] == ids
        uow.commit()


def test_mark_routed_and_rejected(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        a, b, c = uow.signals.add_many([_signal("A"), _signal("B"), _signal("C")])
        uow.signals.mark_routed(a, client_order_id_for(a), T0 + timedelta(seconds=1))
        uow.signals.mark_rejected(b, "stop above entry", T0 + timedelta(seconds=2))
        uow.commit()
    with store.unit_of_work() as uow:
        assert [s.id for s in uow.signals.pending()] == [c]
        routed, rejected = uow.signals.get(a), uow.signals.get(b)
        assert routed is not None and rejected is not None
        assert routed.status is SignalStatus.ROUTED
        assert rejected.status is SignalStatus.REJECTED
        assert rejected.reason == "stop above entry"
        assert [s.symbol for s in uow.signals.recent()] == ["C", "B", "A"]
        assert [s.symbol for s in uow.signals.recent(status="rejected")] == ["B"]
        assert [s.symbol for s in uow.signals.recent(status=SignalStatus.ROUTED)] == ["A"]
        with pytest.raises(RowNotFoundError):
            uow.signals.mark_routed(999_999, "x", T0)


def test_routed_signal_keeps_client_order_id_and_processed_at(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        signal_id = uow.signals.add(_signal())
        uow.signals.mark_routed(signal_id, "ax-s1-entry", T0 + timedelta(seconds=3))
        row = uow.connection.execute(select(SIGNALS).where(SIGNALS.c.id == signal_id)).one()
    assert row.client_order_id == "ax-s1-entry"
    assert row.processed_at == T0 + timedelta(seconds=3)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def test_order_round_trip_with_every_field(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        signal_id = uow.signals.add(_signal())
        request = OrderRequest(
            client_order_id=client_order_id_for(signal_id),
            symbol="TQQQ",
            side=Side.SELL,
            qty=Decimal("33.3333"),
            order_type=OrderType.BRACKET,
            time_in_force=TimeInForce.GTC,
            limit_price=Decimal("60.05"),
            take_profit_price=Decimal("55.5"),
            stop_loss_price=Decimal("62.125"),
            signal_id=signal_id,
            reduce_only=True,
            instrument_type=InstrumentType.LEVERAGED_ETF,
        )
        order = Order(request, broker="alpaca", created_at=T0, updated_at=T0, parent_id="p-1")
        order.transition(OrderStatus.PENDING_SUBMIT, T0)
        order.transition(OrderStatus.SUBMITTED, T0 + timedelta(seconds=1), "sent")
        order.broker_order_id = "alp-123"
        uow.orders.add(order)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.orders.get(order.client_order_id) == order
        assert uow.orders.get("nope") is None


def test_order_add_twice_raises_and_keeps_the_transaction_usable(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.orders.add(_order())
        with pytest.raises(DuplicateKeyError):
            uow.orders.add(_order())
        uow.orders.add(_order("ax-s2-entry"))  # still usable, also on PostgreSQL
        uow.commit()
    with store.unit_of_work() as uow:
        assert len(uow.orders.recent()) == 2
        assert len(uow.orders.get("ax-s1-entry").history) == 1  # type: ignore[union-attr]


def test_order_with_unknown_signal_violates_the_foreign_key(store: SqlStore) -> None:
    with store.unit_of_work() as uow, pytest.raises(IntegrityError):
        uow.orders.add(_order(signal_id=424242))


def test_order_update_appends_history_once(store: SqlStore) -> None:
    order = _order()
    with store.unit_of_work() as uow:
        uow.orders.add(order)
        uow.commit()
    order.transition(OrderStatus.ACCEPTED, T0 + timedelta(seconds=1))
    order.broker_order_id = "b-1"
    with store.unit_of_work() as uow:
        uow.orders.update(order)
        uow.orders.update(order)  # repeating changes nothing
        uow.commit()
    order.apply_fill(Decimal("4"), Decimal("187.31"))
    order.transition(OrderStatus.PARTIALLY_FILLED, T0 + timedelta(seconds=2))
    order.apply_fill(Decimal("6"), Decimal("187.30"))
    order.transition(OrderStatus.FILLED, T0 + timedelta(seconds=3), "done")
    with store.unit_of_work() as uow:
        uow.orders.update(order)
        uow.commit()
    with store.unit_of_work() as uow:
        stored = uow.orders.get(order.client_order_id)
    assert stored == order
    assert stored is not None
    assert [h.to_status for h in stored.history] == [
        OrderStatus.PENDING_SUBMIT,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    assert stored.history[0] == StatusChange(
        OrderStatus.NEW, OrderStatus.PENDING_SUBMIT, T0, "written ahead"
    )
    assert stored.filled_qty == Decimal("10")
    assert stored.avg_fill_price == (Decimal("4") * Decimal("187.31") + 6 * Decimal("187.30")) / 10


def test_order_update_of_unknown_order_raises(store: SqlStore) -> None:
    with store.unit_of_work() as uow, pytest.raises(RowNotFoundError):
        uow.orders.update(_order("never-added"))


def test_order_queries(store: SqlStore) -> None:
    parent = _order(
        "p",
        order_type=OrderType.BRACKET,
        take_profit_price=Decimal(200),
        stop_loss_price=Decimal(180),
    )
    tp_id, sl_id = bracket_leg_ids("p")
    tp = Order(
        OrderRequest(
            tp_id, "AAPL", Side.SELL, Decimal(10), OrderType.LIMIT, limit_price=Decimal(200)
        ),
        created_at=T0 + timedelta(seconds=1),
        updated_at=T0,
        parent_id="p",
    )
    sl = Order(
        OrderRequest(
            sl_id, "AAPL", Side.SELL, Decimal(10), OrderType.STOP, stop_price=Decimal(180)
        ),
        created_at=T0 + timedelta(seconds=2),
        updated_at=T0,
        parent_id="p",
    )
    done = _order("done")
    done.transition(OrderStatus.REJECTED, T0, "no buying power")
    with store.unit_of_work() as uow:
        for o in (parent, tp, sl, done):
            uow.orders.add(o)
        uow.commit()
    parent.transition(OrderStatus.ACCEPTED, T0)
    with store.unit_of_work() as uow:
        uow.orders.update(parent)
        assert [o.client_order_id for o in uow.orders.children("p")] == [tp_id, sl_id]
        assert [o.client_order_id for o in uow.orders.open_orders()] == ["p"]
        by_status = uow.orders.with_status([OrderStatus.NEW, OrderStatus.REJECTED])
        assert {o.client_order_id for o in by_status} == {tp_id, sl_id, "done"}
        assert uow.orders.with_status([]) == []
        recent = uow.orders.recent(2)
        assert [o.client_order_id for o in recent] == [sl_id, tp_id]
        rejected = uow.orders.get("done")
        assert rejected is not None and rejected.reason == "no buying power"
        assert len(uow.orders.recent()) == 4


def test_loading_many_orders_keeps_each_history_apart(store: SqlStore) -> None:
    orders = [_order(f"o{i:04d}") for i in range(1200)]  # more than one IN chunk
    for i, o in enumerate(orders):
        if i % 2:
            o.transition(OrderStatus.ACCEPTED, T0 + timedelta(seconds=i))
    with store.unit_of_work() as uow:
        for o in orders:
            uow.orders.add(o)
        loaded = {o.client_order_id: o for o in uow.orders.recent(5000)}
    assert len(loaded) == 1200
    assert all(loaded[o.client_order_id].history == o.history for o in orders)


# ---------------------------------------------------------------------------------------------
# Fills
# ---------------------------------------------------------------------------------------------


def test_fill_add_is_idempotent(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.orders.add(_order())
        assert uow.fills.add(_fill()) is True
        assert uow.fills.add(_fill()) is False
        # A different price under the same id is still the same fill: nothing changes.
        assert uow.fills.add(_fill(price=Decimal("1"))) is False
        # The same fill id at another broker is another fill.
        assert uow.fills.add(_fill(broker="alpaca")) is True
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.fills.count() == 2
        assert uow.fills.add(_fill()) is False
        fills = uow.fills.for_order("ax-s1-entry")
    assert [f.broker for f in fills] == ["paper", "alpaca"]
    assert fills[0] == _fill()


def test_fill_queries_and_slippage(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.orders.add(_order())
        uow.orders.add(_order("other"))
        uow.fills.add(_fill("f2", at=T0 + timedelta(seconds=5)))
        uow.fills.add(_fill("f1", at=T0 + timedelta(seconds=2), expected_price=None))
        uow.fills.add(_fill("g1", coid="other"))
        assert [f.fill_id for f in uow.fills.for_order("ax-s1-entry")] == ["f1", "f2"]
        assert [f.fill_id for f in uow.fills.recent(2)] == ["g1", "f1"]
        assert uow.fills.count() == 3
        slippage = dict(uow.connection.execute(select(FILLS.c.fill_id, FILLS.c.slippage_bps)).all())
    assert slippage == {"f2": _fill().slippage_bps, "f1": None, "g1": _fill().slippage_bps}
    assert slippage["f2"] is not None and slippage["f2"] > 0


def test_fill_for_an_unknown_order_violates_the_foreign_key(store: SqlStore) -> None:
    with store.unit_of_work() as uow, pytest.raises(IntegrityError):
        uow.fills.add(_fill(coid="unknown"))


# ---------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------


def test_position_upsert_get_all_and_delete_on_zero(store: SqlStore) -> None:
    long = Position("AAPL", Decimal("10"), Decimal("187.3"), Decimal("188"), opened_at=T0)
    short = Position(
        "TQQQ",
        Decimal("-5"),
        Decimal("61.2"),
        instrument_type=InstrumentType.LEVERAGED_ETF,
        realized_pnl=Decimal("-1.5"),
    )
    with store.unit_of_work() as uow:
        uow.positions.upsert(long)
        uow.positions.upsert(short)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.positions.get("AAPL") == long
        assert uow.positions.all() == [long, short]
        bigger = Position("AAPL", Decimal("15"), Decimal("187.5"), Decimal("189"), opened_at=T0)
        uow.positions.upsert(bigger)
        assert uow.positions.get("AAPL") == bigger
        uow.positions.upsert(Position("AAPL", Decimal("0"), Decimal("187.5")))
        assert uow.positions.get("AAPL") is None
        assert uow.positions.all() == [short]
        uow.positions.upsert(Position("MSFT", Decimal("0.000"), Decimal("1")))  # flat: no row
        assert uow.positions.get("MSFT") is None
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.positions.all() == [short]
