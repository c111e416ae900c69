"""Active Positions: the live book, closing one position or all of them after a confirmation,
and a viewer who may look but not close."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.components.common import money
from app.components.positions import (
    GREEK_COLUMNS,
    build_pnl_figure,
    close_payload,
    close_payloads,
    display_frame,
    held_for,
    live_positions,
    net_deltas,
    with_greeks,
)
from core.domain import CommandStatus, CommandType, InstrumentType, Position
from core.options.pricing import Greeks
from db.queries.positions import PositionTotals
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
    # a book without options shows no option columns
    assert not {"underlying", "expiry", "strike", "right", *GREEK_COLUMNS} & set(table.columns)


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


# ---------------------------------------------------------------------------------- options
def test_an_option_position_shows_its_contract_greeks_and_money_per_contract(dashboard):
    dashboard.seed_trading()
    contract, entry, mark = dashboard.seed_option(contracts="2")
    at = dashboard.app("positions").run()
    assert not at.exception
    table = _table(at).set_index("symbol")
    assert sorted(table.index) == sorted(["NVDA", "QQQ", "SPY", contract.symbol])
    row = table.loc[contract.symbol]
    assert row["instrument_type"] == "option"
    assert (row["underlying"], row["strike"], row["right"]) == ("SPY", contract.strike, "C")
    assert pd.Timestamp(row["expiry"]).date() == contract.expiry
    assert row["qty"] == Decimal("2") and row["avg_entry_price"] == entry
    assert row["mark"] == mark  # per share of premium
    assert row["market_value"] == mark * 2 * 100
    assert row["unrealized_pnl"] == Decimal("80.00")  # 0.40 a share x 2 contracts x 100
    assert row["closing_qty"] == Decimal("1")  # the working take-profit sell

    # the Greeks come from the simulated market's option quote, per share
    quote = dashboard.runtime.market.option_quote(contract.symbol)
    assert row["delta"] == pytest.approx(quote.greeks.delta, abs=0.05)
    assert 0.2 < row["delta"] < 0.8  # at the money
    assert row["gamma"] > 0 and row["theta"] < 0 and row["vega"] > 0
    assert row["iv"] == pytest.approx(quote.iv, abs=0.02)
    assert row["delta_shares"] == pytest.approx(row["delta"] * 2 * 100, abs=0.01)

    stock = table.loc["SPY"]
    assert pd.isna(stock["underlying"]) and pd.isna(stock["right"])
    assert all(pd.isna(stock[c]) for c in GREEK_COLUMNS)
    assert stock["market_value"] == stock["mark"] * stock["qty"]  # a stock counts once

    shown = texts(at)
    assert f"Net option delta, in shares of the underlying: SPY {row['delta_shares']:+,.1f}" in (
        shown
    )
    frame = dashboard.runtime.queries.positions.open_positions()
    totals = PositionTotals.of(frame)
    assert totals.count == 4 and Decimal("80.00") in set(frame["unrealized_pnl"])
    assert f"Market value {money(totals.market_value)}" in shown
    assert f"Unrealized P&L {money(totals.unrealized_pnl)}" in shown


def test_closing_an_option_position_sends_an_option_order(dashboard):
    contract, _, _ = dashboard.seed_option(contracts="2")
    at = dashboard.app("positions").run()
    picker = at.selectbox(key="positions_close_symbol")
    assert picker.value == contract.symbol
    assert picker.options == [f"{contract.symbol} · {contract}"]
    at.button(key="positions_close").click().run()
    assert not at.exception
    assert f"Close {contract.symbol}?" in str(at.get("dialog")[0].proto)
    assert f"sell 2 {contract.symbol} ({contract}, contracts of 100)" in texts(at)
    before = len(dashboard.commands())
    at.button(key="positions_close_one_confirm").click().run()
    assert not at.exception
    assert len(dashboard.commands()) == before + 1
    command = dashboard.last_command()
    assert command.type == CommandType.MANUAL_ORDER.value
    assert command.payload == {
        "symbol": contract.symbol,
        "side": "sell",
        "qty": "2",
        "reduce_only": True,
        "instrument_type": "option",
    }


class _NoOptionQuotes:
    """Market data that quotes the symbols but has no option quotes (no Greeks)."""

    def __init__(self, market) -> None:
        self.clock = market.clock
        self._market = market

    async def quote(self, symbol):
        return await self._market.quote(symbol)


def test_without_option_quotes_an_option_keeps_its_contract_and_no_greeks(dashboard):
    contract, _, mark = dashboard.seed_option(contracts="3")
    runtime = SimpleNamespace(
        queries=dashboard.runtime.queries, market=_NoOptionQuotes(dashboard.runtime.market)
    )
    frame = live_positions(runtime)
    (row,) = [r for _, r in frame.iterrows()]
    assert (row["underlying"], row["expiry"], row["right"]) == ("SPY", contract.expiry, "C")
    assert row["market_value"] == mark * 3 * 100
    assert all(pd.isna(row[c]) for c in GREEK_COLUMNS)
    assert net_deltas(frame) == {}
    shown = display_frame(frame)
    assert {"underlying", "expiry", "strike", "right", "delta"} <= set(shown.columns)


def test_option_close_payloads_and_position_delta():
    call, put = "SPY261120C00600000", "QQQ261120P00500000"
    assert close_payload(call, Decimal("-3"), "option") == {
        "symbol": call,
        "side": "buy",
        "qty": "3",
        "reduce_only": True,
        "instrument_type": "option",
    }
    assert close_payload(call, Decimal("2"), InstrumentType.OPTION)["instrument_type"] == "option"
    assert "instrument_type" not in close_payload("SPY", Decimal("2"), "stock")
    book = pd.DataFrame(
        {
            "symbol": ["AAPL", call, put],
            "instrument_type": ["stock", "option", "option"],
            "underlying": [None, "SPY", "QQQ"],
            "expiry": [None, date(2026, 11, 20), date(2026, 11, 20)],
            "qty": [Decimal("5"), Decimal("2"), Decimal("-1")],
            "unrealized_pnl_pct": [Decimal(0)] * 3,
        }
    )
    assert [p.get("instrument_type") for p in close_payloads(book)] == [None, "option", "option"]
    quotes = {
        call: SimpleNamespace(greeks=Greeks(0.55, 0.04, -0.30, 0.20, 0.05), iv=0.18),
        put: SimpleNamespace(greeks=Greeks(-0.40, 0.03, -0.25, 0.18, -0.04), iv=0.21),
    }
    greeks = with_greeks(book, quotes).set_index("symbol")
    assert list(greeks.columns[-len(GREEK_COLUMNS) :]) == list(GREEK_COLUMNS)
    assert greeks.loc[call, "delta_shares"] == pytest.approx(110.0)  # 0.55 x 2 x 100
    assert greeks.loc[put, "delta_shares"] == pytest.approx(40.0)  # short a put: long delta
    assert greeks.loc[put, "theta"] == pytest.approx(-0.25) and greeks.loc[put, "iv"] == 0.21
    assert greeks.loc["AAPL", GREEK_COLUMNS].isna().all()
    assert net_deltas(greeks.reset_index()) == {"SPY": 110.0, "QQQ": 40.0}
