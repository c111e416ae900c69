"""Order Book: working orders, router progress, fills, cancelling one order or all of them,
the history filters with each order's status changes, and a viewer who cannot cancel."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
from streamlit.testing.v1 import AppTest

from app.components.orders import describe_order, parent_progress, transition_lines
from core.domain import CommandStatus, CommandType, OrderStatus, Side
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.schedule import Slice
from tests.app.conftest import texts

CANCEL_KEYS = {"orders_cancel", "orders_cancel_all_button"}


def _resting(dashboard) -> str:
    """The seeded limit order that stays open."""
    with dashboard.store.unit_of_work(read_only=True) as uow:
        (order,) = uow.orders.open_orders()
    return order.client_order_id


def _status(dashboard, coid: str) -> OrderStatus:
    with dashboard.store.unit_of_work(read_only=True) as uow:
        order = uow.orders.get(coid)
    assert order is not None
    return order.status


def _order_tables(at: AppTest) -> list[pd.DataFrame]:
    """The tables of orders on the page, in page order: working orders (when there are any),
    then the history."""
    return [d.value for d in at.dataframe if "order_type" in d.value.columns]


def _fills_table(at: AppTest) -> pd.DataFrame:
    (fills,) = [d.value for d in at.dataframe if "price" in d.value.columns]
    return fills


def _history_ids(at: AppTest) -> list[str]:
    return list(_order_tables(at)[-1]["client_order_id"])


def test_an_empty_book_explains_each_section(dashboard):
    at = dashboard.app("orders").run()
    assert not at.exception
    shown = texts(at)
    assert "No open orders" in shown
    assert "No fills yet" in shown
    assert "No TWAP/VWAP orders" in shown
    assert "No orders yet." in shown
    assert not CANCEL_KEYS & {b.key for b in at.button}


def test_working_orders_fills_and_history_after_trading(dashboard):
    dashboard.seed_trading()
    resting = _resting(dashboard)
    at = dashboard.app("orders").run()
    assert not at.exception
    assert "Working orders (1)" in texts(at)
    working, history = _order_tables(at)
    assert list(working["client_order_id"]) == [resting]
    assert working["order_type"].iloc[0] == "limit" and working["qty"].iloc[0] == Decimal("1")
    assert len(history) == 4 and history["client_order_id"].iloc[0] == resting  # newest first
    fills = _fills_table(at)
    assert sorted(fills["symbol"]) == ["NVDA", "QQQ", "SPY"]
    # no option among them: no contract column
    assert "contract" not in working.columns and "contract" not in history.columns

    at.selectbox(key="orders_history_choice").select(resting).run()
    shown = texts(at)
    assert f"**{resting}**" in shown
    assert "`submitted` → `accepted`" in shown and "written ahead of submit" in shown


def test_history_filters_narrow_the_table(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("orders").run()
    at.multiselect(key="orders_f_status").select("filled").run()
    assert len(_history_ids(at)) == 3
    at.multiselect(key="orders_f_symbol").select("SPY").run()
    (spy,) = _history_ids(at)
    assert _status(dashboard, spy) is OrderStatus.FILLED
    at.multiselect(key="orders_f_status").unselect("filled").run()
    assert len(_history_ids(at)) == 2  # the filled SPY buy and the resting SPY limit
    at.multiselect(key="orders_f_broker").select("paper").run()
    assert len(_history_ids(at)) == 2
    at.date_input(key="orders_f_from").set_value(date.today() + timedelta(days=2)).run()
    assert not at.exception
    assert "No orders match these filters." in texts(at)


def test_cancelling_one_order_sends_the_command_and_the_order_ends_cancelled(dashboard):
    dashboard.seed_trading()
    resting = _resting(dashboard)
    at = dashboard.app("orders").run()
    assert at.selectbox(key="orders_cancel_choice").value == resting
    at.button(key="orders_cancel").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert command.type == CommandType.CANCEL_ORDER.value
    assert command.payload == {"client_order_id": resting}
    assert command.created_by == "trader"
    assert dashboard.apply().status is CommandStatus.APPLIED
    dashboard.tick()
    assert _status(dashboard, resting) is OrderStatus.CANCELLED
    at.run()
    assert "Working orders (0)" in texts(at) and "No open orders" in texts(at)
    assert not CANCEL_KEYS & {b.key for b in at.button}


def test_cancel_all_asks_first_and_cancels_every_working_order(dashboard):
    dashboard.seed_trading()
    resting = _resting(dashboard)
    at = dashboard.app("orders").run()
    before = len(dashboard.commands())
    at.button(key="orders_cancel_all_button").click().run()
    at.button(key="orders_cancel_all_cancel").click().run()
    assert len(dashboard.commands()) == before  # called off: nothing sent

    at.button(key="orders_cancel_all_button").click().run()
    assert "Cancel all open orders?" in str(at.get("dialog")[0].proto)
    assert len(dashboard.commands()) == before
    at.button(key="orders_cancel_all_confirm").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert (command.type, command.payload, command.created_by) == ("cancel_all", {}, "trader")
    applied = dashboard.apply()
    assert applied.status is CommandStatus.APPLIED and applied.result == "1 cancel requests sent"
    dashboard.tick()
    assert _status(dashboard, resting) is OrderStatus.CANCELLED


def test_option_orders_show_their_contract_in_working_orders_and_history(dashboard):
    dashboard.seed_trading()
    resting = _resting(dashboard)
    contract, entry, _ = dashboard.seed_option(contracts="2")
    label = str(contract)  # e.g. "SPY 2026-11-23 581 C"
    assert label.startswith(f"SPY {contract.expiry:%Y-%m-%d} ") and label.endswith(" C")
    at = dashboard.app("orders").run()
    assert not at.exception
    assert "Working orders (2)" in texts(at)
    working, history = _order_tables(at)
    assert list(working.columns[:4]) == ["client_order_id", "created_at", "symbol", "contract"]
    shown = working.set_index("client_order_id")
    tp = shown.loc["ax-opt-tp"]
    assert (tp["symbol"], tp["contract"], tp["side"], tp["qty"]) == (
        contract.symbol,
        label,
        "sell",
        Decimal("1"),
    )
    assert tp["limit_price"] == entry * 2 and bool(tp["reduce_only"])  # per share of premium
    assert pd.isna(shown.loc[resting, "contract"])  # a stock order names no contract

    past = history.set_index("client_order_id")
    assert past.loc["ax-opt-entry", "contract"] == label
    assert past.loc["ax-opt-entry", "status"] == "filled"
    assert past.loc["ax-opt-entry", "avg_fill_price"] == entry
    assert past["contract"].notna().sum() == 2

    cancel = at.selectbox(key="orders_cancel_choice")
    assert f"ax-opt-tp · {contract.symbol} ({label}) sell 1 limit" in " ".join(cancel.options)
    symbols = at.multiselect(key="orders_f_symbol")
    assert f"{contract.symbol} · {label}" in symbols.options
    symbols.select(contract.symbol).run()
    assert _history_ids(at) == ["ax-opt-tp", "ax-opt-entry"]
    assert set(_order_tables(at)[-1]["contract"]) == {label}


def _parent(pid: str, status: ParentStatus, done: int, filled: str) -> ParentOrder:
    at = datetime(2025, 3, 3, 15, tzinfo=UTC)
    return ParentOrder(
        parent_id=pid,
        symbol="SPY",
        side=Side.BUY,
        qty=Decimal("40"),
        algorithm="twap",
        arrival_price=Decimal("580"),
        created_at=at,
        schedule=[Slice(i, at + timedelta(minutes=5 * i), Decimal("10")) for i in range(4)],
        status=status,
        slices_sent=done,
        slices_done=done,
        filled_qty=Decimal(filled),
        avg_price=Decimal("580.10"),
    )


def test_algorithm_parents_show_their_progress(dashboard):
    with dashboard.store.unit_of_work() as uow:
        uow.algos.add(_parent("rb-1-SPY", ParentStatus.WORKING, 1, "10"))
        uow.commit()
    at = dashboard.app("orders").run()
    assert not at.exception
    assert "**TWAP** buy 40 SPY · working · slices 1/4 · filled 10/40" in texts(at)
    bars = [(p.proto.value, p.proto.text) for p in at.get("progress")]
    assert bars == [(25, "Slices 1/4"), (25, "Filled 10/40")]


def _cancel_as_viewer() -> None:
    from app.components.orders import send_cancel_all
    from app.state import dashboard_runtime
    from core.user_admin import UserAdmin

    rt = dashboard_runtime()
    send_cancel_all(rt, UserAdmin(rt.store, rt.market.clock).get("viewer"))


def test_a_viewer_sees_the_book_but_cannot_cancel(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("orders", user="viewer").run()
    assert not at.exception
    assert "Working orders (1)" in texts(at)
    assert not CANCEL_KEYS & {b.key for b in at.button}
    assert "needs the trader role" in texts(at)
    before = len(dashboard.commands())
    probe = AppTest.from_function(_cancel_as_viewer).run()
    assert "needs the trader role" in texts(probe)
    assert len(dashboard.commands()) == before


def test_order_descriptions_progress_and_transitions():
    row = {
        "symbol": "SPY",
        "side": "buy",
        "qty": Decimal("1"),
        "order_type": "limit",
        "limit_price": Decimal("464.00"),
        "stop_price": None,
        "status": "accepted",
        "filled_qty": Decimal("0"),
    }
    assert describe_order(row) == "SPY buy 1 limit @ 464.00 · accepted · filled 0"
    assert describe_order({**row, "limit_price": float("nan"), "order_type": "market"}) == (
        "SPY buy 1 market · accepted · filled 0"
    )
    parent = {"slices_done": 3, "slices_total": 4, "filled_qty": Decimal("45"), "qty": 40}
    assert parent_progress(parent) == (0.75, 1.0)  # an overfill still draws a full bar
    assert parent_progress({**parent, "slices_total": 0, "qty": 0}) == (0.0, 0.0)
    at = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
    history = pd.DataFrame(
        {
            "from_status": [None, "new"],
            "to_status": ["new", "rejected"],
            "at": [at, at],
            "reason": [None, "insufficient buying power"],
        }
    )
    assert transition_lines(history) == [
        "`∅` → `new` · 2025-03-03 14:30:00 UTC",
        "`new` → `rejected` · 2025-03-03 14:30:00 UTC · insufficient buying power",
    ]
