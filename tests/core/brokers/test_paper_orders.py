"""Time in force, brackets, cancels and rejections of the paper broker."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest

from core.brokers.paper import MemoryPaperLedger, PaperBroker, PaperConfig
from core.domain import Bar, EventKind, OrderRequest, OrderStatus, OrderType, Side, bracket_leg_ids
from core.ports import Broker, BrokerUnavailable, UnknownOrder
from tests.core.brokers.fixed_market import FixedMarket, Row, at, session_bars
from tests.core.brokers.harness import Harness, run

FRI = date(2026, 11, 20)
MON = date(2026, 11, 23)
NO_IMPACT = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(1_000_000))


def bars(
    day: date = FRI, volume: int = 100_000, moves: Mapping[str, Row] | None = None
) -> list[Bar]:
    """Flat 100.00 bars; ``moves`` replaces bars keyed ``"HHMM"`` (bar start, UTC, on ``day``)."""
    keyed = {at(day.day, int(k[:2]), int(k[2:])): v for k, v in (moves or {}).items()}
    return session_bars("AAA", day, "100", volume, keyed)


def kinds(events: list) -> list[tuple]:
    return [(e.client_order_id, e.kind, e.status) for e in events]


# --- time in force ---------------------------------------------------------------------------


def test_day_order_expires_at_the_session_close() -> None:
    h = Harness({"AAA": bars()})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="90")
    assert h.at(at(20, 20, 59)) == []
    events = h.at(at(20, 21))
    assert kinds(events) == [("o1", EventKind.EXPIRED, OrderStatus.EXPIRED)]
    assert events[0].at == at(20, 21) and events[0].reason
    order = h.order("o1")
    assert order is not None and order.status is OrderStatus.EXPIRED
    assert h.orders("open") == []


def test_day_order_expires_at_an_early_close() -> None:
    early = session_bars("AAA", date(2026, 11, 27))
    h = Harness({"AAA": early}, start=at(27, 15))
    h.submit("o1", "buy", 100, order_type="limit", limit_price="90")
    events = h.at(at(27, 18, 1))
    assert kinds(events) == [("o1", EventKind.EXPIRED, OrderStatus.EXPIRED)]
    assert events[0].at == at(27, 18)


def test_gtc_order_survives_the_close_and_fills_next_session() -> None:
    monday = session_bars(
        "AAA", MON, "100", 100_000, {at(23, 14, 35): ("99.10", "99.20", "98.90", "99.00", 100_000)}
    )
    h = Harness({"AAA": bars() + monday})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99", time_in_force="gtc")
    assert h.at(at(20, 21, 30)) == []
    assert [o.client_order_id for o in h.orders("open")] == ["o1"]
    fill = h.at(at(23, 15))[0].fill
    assert fill is not None
    assert (fill.price, fill.at) == (D("99"), at(23, 14, 36))


def test_day_limit_sent_while_closed_works_and_expires_in_the_next_session() -> None:
    h = Harness({"AAA": bars() + session_bars("AAA", MON)}, start=at(21, 12))  # Saturday
    h.submit("o1", "buy", 100, order_type="limit", limit_price="90")
    assert h.at(at(23, 20)) == []
    assert kinds(h.at(at(23, 21))) == [("o1", EventKind.EXPIRED, OrderStatus.EXPIRED)]


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    h = Harness({"AAA": bars(volume=10_000)}, config=NO_IMPACT)
    h.submit("o1", "buy", 2_500, time_in_force="ioc")
    events = h.updates()
    assert kinds(events) == [
        ("o1", EventKind.FILL, OrderStatus.PARTIALLY_FILLED),
        ("o1", EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]
    assert events[0].fill is not None and events[0].fill.qty == 1_000
    order = h.order("o1")
    assert order is not None
    assert (order.status, order.filled_qty) == (OrderStatus.CANCELLED, D(1_000))
    assert h.at(at(20, 15, 10)) == []


def test_ioc_limit_that_is_not_marketable_is_cancelled_unfilled() -> None:
    h = Harness({"AAA": bars()})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99", time_in_force="ioc")
    assert kinds(h.updates()) == [("o1", EventKind.CANCELLED, OrderStatus.CANCELLED)]
    assert h.fills() == []


def test_marketable_limit_fills_at_the_touch_immediately() -> None:
    h = Harness({"AAA": bars()}, config=NO_IMPACT)
    h.submit("o1", "buy", 100, order_type="limit", limit_price="100.50")
    fill = h.updates()[0].fill
    assert fill is not None and fill.price == D("100.01")


def test_market_closed_rejections() -> None:
    h = Harness({"AAA": bars()}, start=at(21, 12))  # Saturday
    assert h.reject("o1", "buy", 100) == "market closed for a day order"
    assert "market closed" in h.reject(
        "o2", "buy", 100, order_type="limit", limit_price="99", time_in_force="ioc"
    )
    assert h.reject(
        "o3", "buy", 100, order_type="bracket", take_profit_price="101", stop_loss_price="99"
    ) == ("market closed for a day order")
    h.clock.set(at(26, 16))  # Thanksgiving
    assert h.reject("o4", "buy", 100) == "market closed for a day order"
    ack = h.submit("o5", "buy", 100, order_type="limit", limit_price="99", time_in_force="gtc")
    assert ack.status is OrderStatus.ACCEPTED
    assert h.order("o1") is None  # rejected orders are not kept


# --- brackets --------------------------------------------------------------------------------


def bracket(h: Harness, coid: str = "b1", qty: int = 100, **kw: Any) -> None:
    h.submit(
        coid, "buy", qty, order_type="bracket", take_profit_price="101", stop_loss_price="99", **kw
    )


def test_bracket_take_profit_path_cancels_the_stop_loss() -> None:
    data = bars(moves={"1505": ("100.50", "101.20", "100.40", "101.10", 100_000)})
    h = Harness({"AAA": data}, config=NO_IMPACT)
    bracket(h)
    tp, sl = bracket_leg_ids("b1")
    events = h.updates()
    assert kinds(events) == [
        ("b1", EventKind.FILL, OrderStatus.FILLED),
        (tp, EventKind.ACCEPTED, OrderStatus.ACCEPTED),
        (sl, EventKind.ACCEPTED, OrderStatus.ACCEPTED),
    ]
    legs = {o.client_order_id: o for o in h.orders("open")}
    assert legs[tp].order_type is OrderType.LIMIT and legs[tp].side is Side.SELL
    assert legs[sl].order_type is OrderType.STOP and legs[sl].qty == 100
    events = h.at(at(20, 15, 10))
    assert kinds(events) == [
        (tp, EventKind.FILL, OrderStatus.FILLED),
        (sl, EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]
    assert events[0].fill is not None and events[0].fill.price == D("101")
    assert events[1].reason == "OCO"
    assert h.positions() == {}
    assert h.broker.realized_pnl == (D("101") - D("100.01")) * 100


def test_bracket_stop_loss_path_cancels_the_take_profit() -> None:
    data = bars(moves={"1505": ("99.50", "99.60", "98.90", "99.10", 100_000)})
    h = Harness({"AAA": data}, config=NO_IMPACT)
    bracket(h)
    tp, sl = bracket_leg_ids("b1")
    h.updates()
    events = h.at(at(20, 15, 10))
    assert kinds(events) == [
        (sl, EventKind.FILL, OrderStatus.FILLED),
        (tp, EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]
    assert events[0].fill is not None and events[0].fill.price == D("99")
    assert events[1].reason == "OCO"
    assert h.broker.realized_pnl == (D("99") - D("100.01")) * 100


def test_bracket_bar_reaching_both_legs_takes_the_stop_loss() -> None:
    data = bars(moves={"1505": ("100", "101.50", "98.50", "100", 100_000)})
    h = Harness({"AAA": data}, config=NO_IMPACT)
    bracket(h)
    tp, sl = bracket_leg_ids("b1")
    h.updates()
    assert kinds(h.at(at(20, 15, 10))) == [
        (sl, EventKind.FILL, OrderStatus.FILLED),
        (tp, EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]


def test_bracket_partial_leg_fill_shrinks_the_other_leg() -> None:
    data = bars(
        volume=10_000,
        moves={
            "1505": ("100.50", "101.20", "100.40", "101.10", 5_000),  # 10 % of 5,000 = 500
            "1506": ("101.00", "101.20", "100.90", "101.10", 10_000),
        },
    )
    h = Harness({"AAA": data}, config=NO_IMPACT)
    bracket(h, qty=1_000)
    tp, sl = bracket_leg_ids("b1")
    h.updates()
    events = h.at(at(20, 15, 6))
    assert kinds(events) == [(tp, EventKind.FILL, OrderStatus.PARTIALLY_FILLED)]
    sl_order = h.order(sl)
    assert sl_order is not None and sl_order.qty == 500
    events = h.at(at(20, 15, 7))
    assert kinds(events) == [
        (tp, EventKind.FILL, OrderStatus.FILLED),
        (sl, EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]
    assert h.positions() == {}


def test_bracket_legs_follow_a_partial_entry_and_cancel_with_the_parent() -> None:
    h = Harness({"AAA": bars(volume=10_000)}, config=NO_IMPACT)
    bracket(h, qty=2_500)
    tp, sl = bracket_leg_ids("b1")
    h.updates()
    tp_order = h.order(tp)
    assert tp_order is not None and tp_order.qty == 1_000  # sized to the filled entry
    h.at(at(20, 15, 2))  # bar 15:01 fills 1,000 more
    tp_order = h.order(tp)
    assert tp_order is not None and tp_order.qty == 2_000
    assert h.cancel("b1") is True
    events = h.updates()
    assert kinds(events) == [
        ("b1", EventKind.CANCELLED, OrderStatus.CANCELLED),
        (tp, EventKind.CANCELLED, OrderStatus.CANCELLED),
        (sl, EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]
    assert h.positions()["AAA"].qty == 2_000
    assert h.orders("open") == []


def test_bracket_with_unfilled_limit_entry_cancels_cleanly() -> None:
    h = Harness({"AAA": bars()})
    bracket(h, limit_price="99.50")
    assert h.updates() == []
    assert h.cancel("b1") is True
    assert kinds(h.updates()) == [("b1", EventKind.CANCELLED, OrderStatus.CANCELLED)]
    assert h.order(bracket_leg_ids("b1")[0]) is None


# --- cancels ---------------------------------------------------------------------------------


def test_cancel_semantics() -> None:
    h = Harness({"AAA": bars()})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99", time_in_force="gtc")
    assert h.cancel("o1") is True
    events = h.updates()
    assert kinds(events) == [("o1", EventKind.CANCELLED, OrderStatus.CANCELLED)]
    assert h.cancel("o1") is False
    assert h.updates() == []
    with pytest.raises(UnknownOrder):
        h.cancel("never-sent")
    h.submit("m1", "buy", 10)
    h.updates()
    assert h.cancel("m1") is False  # already filled


def test_cancel_does_not_undo_a_fill_the_price_path_already_made() -> None:
    data = bars(moves={"1505": ("99.90", "99.95", "99.40", "99.60", 100_000)})
    h = Harness({"AAA": data})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99.50")
    h.clock.set(at(20, 15, 10))
    assert h.cancel("o1") is False
    assert kinds(h.updates()) == [("o1", EventKind.FILL, OrderStatus.FILLED)]


def test_cancel_all_counts_what_it_cancelled() -> None:
    h = Harness({"AAA": bars()})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99")
    h.submit("o2", "sell", 100, order_type="limit", limit_price="101")
    h.submit("o3", "buy", 10)
    assert h.cancel_all() == 2
    assert h.cancel_all() == 0
    assert {o.client_order_id for o in h.orders("closed")} == {"o1", "o2", "o3"}
    assert len(h.orders("all")) == 3
    with pytest.raises(ValueError):
        h.orders("pending")


# --- rejections ------------------------------------------------------------------------------


def test_unknown_symbol_is_rejected() -> None:
    h = Harness({"AAA": bars()})
    assert h.reject("o1", "buy", 10, symbol="ZZZ") == "unknown symbol 'ZZZ'"


def test_duplicate_client_order_id_is_rejected() -> None:
    h = Harness({"AAA": bars()})
    h.submit("o1", "buy", 10)
    assert "duplicate client_order_id 'o1'" in h.reject("o1", "buy", 10)
    h.updates()
    assert "duplicate" in h.reject("o1", "sell", 10)
    bracket(h, coid="b1")
    assert "duplicate client_order_id 'b1-tp'" in h.reject("b1-tp", "sell", 10)


def test_bad_quantity_and_price_are_rejected() -> None:
    h = Harness({"AAA": bars()}, config=PaperConfig(fractional=False))
    assert "fractional" in h.reject("o1", "buy", "1.5")
    assert "bad price" in h.reject("o2", "buy", 1, order_type="limit", limit_price="100.123")
    assert "bad price" in h.reject("o3", "buy", 1, order_type="stop", stop_price="100.001")
    penny = Harness({"AAA": bars()})
    assert penny.submit("o4", "buy", "0.5").status is OrderStatus.ACCEPTED  # fractional allowed


def test_short_selling_can_be_disabled() -> None:
    h = Harness({"AAA": bars()}, config=PaperConfig(allow_short=False))
    reason = h.reject("o1", "sell", 10)
    assert reason.startswith("short selling is disabled")
    h.submit("o2", "buy", 10)
    assert h.submit("o3", "sell", 10).status is OrderStatus.ACCEPTED
    assert h.reject("o4", "sell", 1).startswith("short selling is disabled")


def test_reduce_only_and_type_checks() -> None:
    h = Harness({"AAA": bars()})
    assert "reduce-only" in h.reject("o1", "sell", 10, reduce_only=True)
    assert "ioc" in h.reject(
        "o2", "buy", 10, order_type="stop", stop_price="101", time_in_force="ioc"
    )


def test_methods_need_a_connection() -> None:
    h = Harness({"AAA": bars()})
    broker = PaperBroker(h.market, MemoryPaperLedger())
    assert broker.connected is False
    with pytest.raises(BrokerUnavailable):
        run(broker.submit_order(OrderRequest("x", "AAA", Side.BUY, D(1))))
    run(broker.connect())
    assert broker.connected
    run(broker.close())
    assert not broker.connected


def test_get_fills_filters() -> None:
    data = bars(moves={"1505": ("99.90", "99.95", "99.40", "99.60", 100_000)})
    h = Harness({"AAA": data})
    h.submit("m1", "buy", 10)
    h.submit("l1", "buy", 10, order_type="limit", limit_price="99.50")
    h.at(at(20, 15, 10))
    assert [f.fill_id for f in h.fills()] == ["m1-1", "l1-1"]
    assert [f.fill_id for f in h.fills("l1")] == ["l1-1"]
    assert [f.fill_id for f in h.fills(since=at(20, 15, 1))] == ["l1-1"]
    assert h.fills("nope") == []


def test_market_without_bars_yet_waits_for_volume() -> None:
    clock_start = at(20, 14, 30)
    h = Harness({"AAA": bars()}, start=clock_start)
    market: FixedMarket = h.market
    assert run(market.bars("AAA", end=clock_start)) == []
    h.submit("o1", "buy", 10)  # no completed bar: nothing to size the fill by yet
    assert h.updates() == []
    fill = h.at(at(20, 14, 31))[0].fill
    assert fill is not None and fill.at == at(20, 14, 31)


def test_gtc_market_order_sent_while_closed_fills_on_the_first_bar_of_the_next_session() -> None:
    monday = session_bars(
        "AAA", MON, "100", 100_000, {at(23, 14, 30): ("100.40", "100.60", "100.30", "100.49", 1)}
    )
    h = Harness({"AAA": bars() + monday}, config=NO_IMPACT, start=at(21, 12))
    h.submit("o1", "buy", 100, time_in_force="gtc")
    assert h.at(at(23, 14, 30)) == []
    # the 14:30 bar has volume 1: nothing fills; the 14:31 bar fills at close + half spread
    fill = h.at(at(23, 14, 32))[0].fill
    assert fill is not None
    assert (fill.price, fill.at) == (D("100.01"), at(23, 14, 32))


def test_ioc_with_latency_gets_one_bar_then_cancels() -> None:
    from datetime import timedelta

    config = PaperConfig(
        impact_bps_per_pct_adv=D(0), initial_cash=D(1_000_000), latency=timedelta(seconds=1)
    )
    h = Harness({"AAA": bars(volume=10_000)}, config=config)
    h.submit("o1", "buy", 2_500, time_in_force="ioc")
    assert h.updates() == []
    events = h.at(at(20, 15, 5))
    assert kinds(events) == [
        ("o1", EventKind.FILL, OrderStatus.PARTIALLY_FILLED),
        ("o1", EventKind.CANCELLED, OrderStatus.CANCELLED),
    ]
    assert events[0].at == at(20, 15, 2)  # the first bar starting after 15:00:01


def test_updates_are_in_time_order_across_symbols() -> None:
    aaa = bars(moves={"1505": ("99.90", "99.95", "99.40", "99.60", 100_000)})
    bbb = session_bars(
        "BBB", FRI, "50", 100_000, {at(20, 15, 2): ("49.90", "49.95", "49.40", "49.60", 100_000)}
    )
    h = Harness({"AAA": aaa, "BBB": bbb})
    h.submit("a", "buy", 10, order_type="limit", limit_price="99.50")
    h.submit("b", "buy", 10, symbol="BBB", order_type="limit", limit_price="49.50")
    events = h.at(at(20, 15, 10))
    assert [(e.client_order_id, e.at) for e in events] == [
        ("b", at(20, 15, 3)),
        ("a", at(20, 15, 6)),
    ]


def test_paper_broker_implements_the_broker_port() -> None:
    h = Harness({"AAA": bars()})
    port: Broker = h.broker  # checked by type checkers as well
    for name in (
        "connect",
        "close",
        "get_account",
        "get_positions",
        "get_orders",
        "get_order",
        "get_fills",
        "submit_order",
        "cancel_order",
        "cancel_all",
        "updates",
    ):
        assert callable(getattr(port, name))
    assert port.name == "paper" and port.connected
