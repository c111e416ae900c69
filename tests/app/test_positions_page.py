"""Active Positions: the live book, closing one position or all of them after a confirmation,
and a viewer who may look but not close."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pandas as pd
from streamlit.testing.v1 import AppTest

from app.components.positions import build_pnl_figure, close_payload, held_for
from core.domain import CommandStatus, CommandType, Position
from tests.app.conftest import texts

CLOSE_KEYS = {"positions_close", "positions_close_all_button"}


def _positions(dashboard) -> dict[str, Decimal]:
    with dashboard.store.unit_of_work(read_only=True) as uow:
        return {p.symbol: p.qty for p in uow.positions.all() if p.qty}


def _button_keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def _table(at: AppTest) -> pd.DataFrame:
    (table,) = [d for d in at.dataframe if "symbol" in d.value.columns]
    return table.value


def test_an_empty_book_says_so_and_offers_nothing_to_close(dashboard):
    at = dashboard.app("positions").run()
    assert not at.exception
    assert "No open positions" in texts(at)
    assert not CLOSE_KEYS & _button_keys(at)
    assert not at.dataframe


def test_the_book_shows_pnl_entry_and_time_in_trade(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("positions").run()
    assert not at.exception
    shown = texts(at)
    assert "Open positions 3" in shown and "Unrealized P&L" in shown
    table = _table(at).set_index("symbol")
    assert sorted(table.index) == ["NVDA", "QQQ", "SPY"]
    with dashboard.store.unit_of_work(read_only=True) as uow:
        stored = {p.symbol: p for p in uow.positions.all()}
        trade = uow.journal.open_trade_for("SPY")
    spy, pos = table.loc["SPY"], stored["SPY"]
    assert spy["qty"] == Decimal("10") and spy["side"] == "long"
    assert spy["mark"] == pos.current_price
    assert spy["unrealized_pnl"] == (pos.current_price - pos.avg_entry_price) * 10
    assert trade is not None and spy["entry_price"] == trade.entry_price
    assert spy["trade_type"] == "day" and spy["instrument_type"] == "stock"
    assert spy["time_in_trade"] != "n/a"
    assert at.get("plotly_chart")


def test_a_position_not_marked_yet_is_priced_from_the_market(dashboard):
    with dashboard.store.unit_of_work() as uow:
        uow.positions.upsert(Position("SPY", Decimal("10"), Decimal("500.00")))
        uow.commit()
    at = dashboard.app("positions").run()
    assert not at.exception
    spy = _table(at).set_index("symbol").loc["SPY"]
    assert spy["mark"] is not None and spy["mark"] > 0
    assert spy["unrealized_pnl"] == (spy["mark"] - Decimal("500.00")) * 10
    assert spy["entry_price"] is None and spy["time_in_trade"] == "n/a"


def test_closing_one_position_asks_first_then_sends_a_reduce_only_order(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("positions").run()
    before = len(dashboard.commands())
    at.selectbox(key="positions_close_symbol").select("QQQ").run()
    at.button(key="positions_close").click().run()
    assert not at.exception
    assert "positions_close_one_confirm" in _button_keys(at)
    assert len(dashboard.commands()) == before  # nothing is sent before the confirmation

    at.button(key="positions_close_one_confirm").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert command.type == CommandType.MANUAL_ORDER.value
    assert command.payload == {"symbol": "QQQ", "side": "sell", "qty": "5", "reduce_only": True}
    assert command.created_by == "trader"
    assert len(dashboard.commands()) == before + 1

    assert dashboard.apply().status is CommandStatus.APPLIED
    dashboard.tick(2)
    assert "QQQ" not in _positions(dashboard)
    at.run()
    assert sorted(_table(at)["symbol"]) == ["NVDA", "SPY"]


def test_close_all_can_be_called_off_or_sends_one_close_per_position(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("positions").run()
    before = len(dashboard.commands())
    at.button(key="positions_close_all_button").click().run()
    at.button(key="positions_close_all_cancel").click().run()  # changed my mind
    assert not at.exception
    assert len(dashboard.commands()) == before
    assert "positions_close_all_confirm" not in _button_keys(at)

    at.button(key="positions_close_all_button").click().run()
    assert "Close all positions?" in str(at.get("dialog")[0].proto)
    at.button(key="positions_close_all_confirm").click().run()
    assert not at.exception
    sent = dashboard.commands()[before:]
    assert sorted((c.type, c.created_by, c.payload["symbol"]) for c in sent) == [
        ("manual_order", "trader", "NVDA"),
        ("manual_order", "trader", "QQQ"),
        ("manual_order", "trader", "SPY"),
    ]
    assert {c.payload["symbol"]: c.payload["qty"] for c in sent} == {
        "NVDA": "20",
        "QQQ": "5",
        "SPY": "10",
    }
    assert all(c.payload["side"] == "sell" and c.payload["reduce_only"] is True for c in sent)

    dashboard.apply()
    dashboard.tick(2)
    assert all(c.status is CommandStatus.APPLIED for c in dashboard.commands()[before:])
    assert _positions(dashboard) == {}
    at.run()
    assert "No open positions" in texts(at)


def _close_as_viewer() -> None:
    from decimal import Decimal

    from app.components.positions import close_payload, send_close
    from app.state import dashboard_runtime
    from core.user_admin import UserAdmin

    rt = dashboard_runtime()
    viewer = UserAdmin(rt.store, rt.market.clock).get("viewer")
    send_close(rt, viewer, close_payload("SPY", Decimal("10")))


def test_a_viewer_sees_the_book_but_cannot_close(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("positions", user="viewer").run()
    assert not at.exception
    assert "Open positions 3" in texts(at)
    assert not CLOSE_KEYS & _button_keys(at)
    assert "needs the trader role" in texts(at)
    before = len(dashboard.commands())
    probe = AppTest.from_function(_close_as_viewer).run()
    assert "needs the trader role" in texts(probe)
    assert len(dashboard.commands()) == before


def test_close_payloads_times_in_trade_and_the_pnl_chart():
    assert close_payload("TSLA", Decimal("-7.5")) == {
        "symbol": "TSLA",
        "side": "buy",
        "qty": "7.5",
        "reduce_only": True,
    }
    assert close_payload("SPY", Decimal("1E+1"))["qty"] == "10"
    assert [held_for(timedelta(seconds=s)) for s in (42, 150, 3 * 3600 + 300, 2 * 86400)] == [
        "42s",
        "2m",
        "3h 05m",
        "2d 0h",
    ]
    assert held_for(None) == "n/a"
    frame = pd.DataFrame(
        {"symbol": ["SPY", "TSLA", "AAPL"], "unrealized_pnl": [Decimal("15"), Decimal("-4"), None]}
    )
    (bar,) = build_pnl_figure(frame).data
    assert list(bar.x) == ["SPY", "TSLA"] and list(bar.y) == [15.0, -4.0]
    assert list(bar.marker.color) == ["#2e7d32", "#c62828"]
    assert build_pnl_figure(frame.iloc[0:0]).data[0].x in (None, ())
