"""A paper account survives a restart: a new broker on the same ledger resumes it exactly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal as D

from core.brokers.paper import PaperConfig
from core.domain import Bar, EventKind, OrderStatus
from tests.core.brokers.fixed_market import Row, at, session_bars
from tests.core.brokers.harness import Harness, run

FRI = date(2026, 11, 20)


def bars(price: str = "100", moves: Mapping[str, Row] | None = None) -> list[Bar]:
    keyed = {at(20, int(k[:2]), int(k[2:])): v for k, v in (moves or {}).items()}
    return session_bars("AAA", FRI, price, 100_000, keyed)


def test_restart_resumes_cash_positions_orders_fills_and_day_trades() -> None:
    data = bars(
        "101.50",
        moves={
            "1502": ("101.50", "102", "101.40", "101.80", 100_000),  # trailing mark -> 102
            "1510": ("101.20", "101.30", "100.80", "101.00", 100_000),  # stop 100.98: hit
            "1520": ("102.80", "103.20", "102.70", "103.10", 100_000),  # limit 103 hit
        },
    )
    config = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(50_000))
    h = Harness({"AAA": data}, config=config)
    h.submit("b1", "buy", 100)
    h.submit("s1", "sell", 50)  # a day trade
    h.submit("lim", "sell", 20, order_type="limit", limit_price="103", time_in_force="gtc")
    h.submit("trail", "sell", 10, order_type="trailing_stop", trail_percent="1")
    h.at(at(20, 15, 5))  # the trailing stop's mark moved to 102
    before = (h.account(), h.positions(), h.orders("all"), h.fills())

    h.restart()
    assert (h.account(), h.positions(), h.orders("all"), h.fills()) == before
    assert h.account().day_trade_count == 1
    assert [o.client_order_id for o in h.orders("open")] == ["lim", "trail"]

    # the restored trailing stop triggers at 102 * 0.99 = 100.98, the limit at 103
    events = h.at(at(20, 15, 30))
    fills = [(e.client_order_id, e.fill.price) for e in events if e.fill is not None]
    assert fills == [("trail", D("100.98")), ("lim", D("103"))]
    assert [f.fill_id for f in h.fills("lim")] == ["lim-1"]
    assert h.positions()["AAA"].qty == 20


def test_events_not_collected_before_a_crash_are_recovered_with_get_order_and_get_fills() -> None:
    data = bars(moves={"1505": ("99.90", "99.95", "99.40", "99.60", 100_000)})
    h = Harness({"AAA": data})
    h.submit("m1", "buy", 10)
    h.submit("l1", "buy", 10, order_type="limit", limit_price="99.50")
    h.clock.set(at(20, 15, 10))
    run(h.broker.cancel_order("l1"))  # walks the bars: l1 fills; events not collected
    h.restart()
    assert h.updates() == []
    order = h.order("l1")
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.avg_fill_price == D("99.50")
    assert [f.fill_id for f in h.fills()] == ["m1-1", "l1-1"]
    assert h.positions()["AAA"].qty == 20


def test_ledger_holds_json_data_saved_before_each_method_returns() -> None:
    h = Harness({"AAA": bars()}, config=PaperConfig(impact_bps_per_pct_adv=D(0)))
    saves = h.ledger.saves
    h.submit("o1", "buy", 10)
    assert h.ledger.saves == saves + 1
    snapshot = h.ledger.load()
    json.dumps(snapshot.account)
    json.dumps(snapshot.orders)
    json.dumps(snapshot.fills)
    assert snapshot.account is not None and snapshot.account["cash"] == "98999.9000"
    assert [o["client_order_id"] for o in snapshot.orders] == ["o1"]
    assert [f["fill_id"] for f in snapshot.fills] == ["o1-1"]
    h.submit("o2", "buy", 10, order_type="limit", limit_price="90", time_in_force="gtc")
    h.cancel("o2")
    statuses = {o["client_order_id"]: o["status"] for o in h.ledger.load().orders}
    assert statuses == {"o1": "filled", "o2": "cancelled"}


def test_bracket_legs_resume_after_a_restart() -> None:
    data = bars(moves={"1505": ("99.50", "99.60", "98.90", "99.10", 100_000)})
    h = Harness({"AAA": data}, config=PaperConfig(impact_bps_per_pct_adv=D(0)))
    h.submit("b1", "buy", 100, order_type="bracket", take_profit_price="101", stop_loss_price="99")
    h.updates()
    h.restart()
    events = h.at(at(20, 15, 10))
    assert [(e.client_order_id, e.kind) for e in events] == [
        ("b1-sl", EventKind.FILL),
        ("b1-tp", EventKind.CANCELLED),
    ]
    # broker order ids keep counting after the restart
    h.submit("o9", "buy", 1)
    order = h.order("o9")
    assert order is not None and order.broker_order_id == "paper-00000004"
