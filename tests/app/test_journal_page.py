"""The Trade Journal page under AppTest: empty states, trades made by the executor, filters,
paging, one trade's chain, the analytics tabs and the CSV export of the filtered trades."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from streamlit.elements.widgets import button as button_module

from core.options.occ import OptionContract, Right
from db.queries.journal import EXPORT_COLUMNS
from db.tables import TRADES
from tests.app.conftest import texts
from tests.db.test_queries_journal import add, trade

TABS = ("Win rate", "Holding period", "Slippage", "Commissions", "Turnover")


def _journal_rows(dashboard, n: int = 4) -> None:
    """Closed trades with strategies, sectors and regimes, entered a day apart."""
    t0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    add(
        dashboard.store,
        TRADES,
        *(
            trade(
                ticker=("AAPL", "MSFT")[i % 2],
                pnl=Decimal(("25.50", "-10.25")[i % 2]),
                exit_reason=("target", "stop_loss")[i % 2],
                strategy=("momentum", "breakout")[i % 2],
                sector="tech",
                regime="bull",
                entry_time=t0 + timedelta(days=i),
                exit_time=t0 + timedelta(days=i, hours=3),
            )
            for i in range(n)
        ),
    )


def _table(at) -> Any:
    return at.dataframe[0].value


def test_an_empty_journal_says_there_are_no_trades_yet(dashboard):
    at = dashboard.app("journal").run()
    assert not at.exception
    assert "No trades yet" in texts(at)
    assert not at.dataframe and not at.get("download_button")


def test_trades_made_by_the_executor_are_listed_newest_first(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("journal").run()
    assert not at.exception
    shown = texts(at)
    assert "Trades 3" in shown and "Open 3" in shown and "Win rate n/a" in shown
    assert "Trades 1 to 3 of 3, newest entry first." in shown
    table = _table(at)
    assert set(table["ticker"]) == {"SPY", "QQQ", "NVDA"}
    assert list(table["id"]) == sorted(table["id"], reverse=True)
    assert set(table["trigger"]) == {"manual"}
    [download] = at.get("download_button")
    assert download.label == "Download 3 trades (CSV)"


def test_filters_change_the_table_and_the_totals(dashboard):
    dashboard.seed_trading()
    _journal_rows(dashboard)
    at = dashboard.app("journal").run()
    assert "Trades 7" in texts(at)
    at.multiselect(key="journal_symbols").select("SPY").run()
    assert list(_table(at)["ticker"]) == ["SPY"] and "Trades 1" in texts(at)
    at.multiselect(key="journal_symbols").set_value([]).run()
    at.multiselect(key="journal_strategies").select("momentum").run()
    table = _table(at)
    assert set(table["strategy"]) == {"momentum"} and len(table) == 2
    shown = texts(at)
    assert "Win rate 100.0%" in shown and "Realized P&L $51.00" in shown
    at.multiselect(key="journal_strategies").set_value([None]).run()
    assert set(_table(at)["ticker"]) == {"SPY", "QQQ", "NVDA"}


def test_filters_that_match_nothing_say_so(dashboard):
    _journal_rows(dashboard)
    at = dashboard.app("journal").run()
    at.multiselect(key="journal_symbols").select("AAPL").run()
    at.multiselect(key="journal_exit_reasons").select("stop_loss").run()
    assert not at.exception
    assert "No trades match these filters" in texts(at)
    assert "Trades 0" in texts(at) and not at.dataframe


def test_the_date_range_filters_by_entry_date(dashboard):
    _journal_rows(dashboard)
    at = dashboard.app("journal").run()
    first = datetime(2026, 1, 6).date()
    at.date_input(key="journal_dates").set_value((first, first)).run()
    assert list(_table(at)["ticker"]) == ["MSFT"]


def test_a_long_journal_is_paged(dashboard):
    _journal_rows(dashboard, n=105)
    at = dashboard.app("journal").run()
    assert len(_table(at)) == 100 and "Trades 1 to 100 of 105" in texts(at)
    newest = _table(at)["id"].iloc[0]
    [pages] = at.get("pagination")
    pages.select(2).run()
    assert len(_table(at)) == 5 and "Trades 101 to 105 of 105" in texts(at)
    assert newest not in set(_table(at)["id"])


def test_a_trade_is_followed_from_its_order_to_its_fills(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("journal").run()
    picker = at.selectbox(key="journal_chain_trade")
    assert picker.value is None and "Choose a trade on this page" in picker.placeholder
    spy = next(o for o in picker.options if "SPY" in o)
    trade_id = int(spy.split(" ")[0].lstrip("#"))
    picker.set_value(trade_id).run()
    assert not at.exception
    assert "No signal: this trade started from a manual or rebalance order." in texts(at)
    timeline = at.dataframe[1].value
    assert list(timeline["step"])[:1] == ["order"]
    assert {"order", "status", "fill", "entry"} <= set(timeline["step"])
    fill = timeline[timeline["step"] == "fill"].iloc[0]
    assert fill["detail"].startswith("buy 10 @ ")


def test_option_trades_show_their_contract_in_the_table_and_the_detail(dashboard):
    dashboard.seed_trading()
    contract, entry, _ = dashboard.seed_option(contracts="2")
    with dashboard.store.unit_of_work(read_only=True) as uow:
        held = uow.journal.open_trade_for(contract.symbol)
    assert held is not None and held.id is not None
    kind = held.metadata["expiry_kind"]  # as the options stage recorded it, e.g. "3DTE"
    # a closed 0DTE put: its P&L is stored in dollars, x 100 per contract
    put = OptionContract("QQQ", datetime(2026, 1, 5).date(), Decimal("500"), Right.PUT)
    add(
        dashboard.store,
        TRADES,
        trade(
            ticker=put.symbol,
            instrument_type="option",
            original_ticker="QQQ",
            entry_price=Decimal("2.00"),
            exit_price=Decimal("2.55"),
            shares=Decimal("4"),
            pnl=Decimal("220.00"),  # (2.55 - 2.00) x 4 x 100
            exit_reason="target",
            entry_time=datetime(2026, 1, 5, 15, 0, tzinfo=UTC),
            exit_time=datetime(2026, 1, 5, 16, 30, tzinfo=UTC),
            metadata_json={
                "underlying": "QQQ",
                "expiry": "2026-01-05",
                "strike": "500",
                "right": "put",
                "expiry_kind": "0DTE",
            },
        ),
    )
    at = dashboard.app("journal").run()
    assert not at.exception
    table = _table(at)
    assert list(table.columns[4:7]) == ["ticker", "contract", "expiry_kind"]
    rows = table.set_index("ticker")
    assert rows.loc[contract.symbol, "contract"] == str(contract)
    assert rows.loc[contract.symbol, "expiry_kind"] == kind
    assert rows.loc[contract.symbol, "instrument_type"] == "option"
    assert rows.loc[contract.symbol, "entry_price"] == entry  # per share of premium
    assert rows.loc[put.symbol, "contract"] == "QQQ 2026-01-05 500 P"
    assert rows.loc[put.symbol, "expiry_kind"] == "0DTE"
    assert rows.loc[put.symbol, "pnl"] == Decimal("220.00")
    assert pd.isna(rows.loc["SPY", "contract"]) and pd.isna(rows.loc["SPY", "expiry_kind"])

    types = at.multiselect(key="journal_types")
    assert "option" in types.options
    assert f"{put.symbol} · {put}" in at.multiselect(key="journal_symbols").options
    types.select("option").run()
    assert set(_table(at)["ticker"]) == {contract.symbol, put.symbol}
    shown = texts(at)
    assert "Trades 2" in shown and "Open 1" in shown and "Realized P&L $220.00" in shown

    at.selectbox(key="journal_chain_trade").set_value(held.id).run()
    assert not at.exception
    shown = texts(at)
    assert f"**Option** {contract} · {kind} · IV " in shown
    assert "100 shares per contract" in shown and "premium at risk $" in shown
    timeline = at.dataframe[1].value
    (entered,) = timeline[timeline["step"] == "entry"]["detail"]
    assert entered == f"long 2 {contract.symbol} ({contract}) @ {entry}"
    assert "ax-opt-entry" in set(timeline["ref"])


def test_each_analytics_tab_renders_its_chart_only_while_open(dashboard):
    dashboard.seed_trading()
    _journal_rows(dashboard)
    at = dashboard.app("journal").run()
    assert not at.get("plotly_chart")  # the Trades tab is open: no analytics query ran
    for tab in TABS:
        at.session_state["journal_tab"] = tab
        at.run()
        assert not at.exception, tab
        assert len(at.get("plotly_chart")) == 1, tab
        assert not at.get("selectbox"), tab  # the Trades tab's content is not rendered


def test_analytics_tabs_show_the_figures(dashboard):
    _journal_rows(dashboard)
    at = dashboard.app("journal").run()
    at.session_state["journal_tab"] = "Win rate"
    at.run()
    groups = at.dataframe[0].value
    momentum = groups[(groups["key"] == "strategy") & (groups["group"] == "momentum")].iloc[0]
    assert momentum["win_rate"] == "100.0%" and momentum["total_pnl"] == "$51.00"
    at.session_state["journal_tab"] = "Holding period"
    at.run()
    assert "Average holding period 3h 0m" in texts(at)


def _capture_downloads(monkeypatch) -> list[Callable[[], Any]]:
    """The data callables the page hands to st.download_button (AppTest has no media store
    to run them)."""
    captured: list[Callable[[], Any]] = []
    original = button_module.marshall_file

    def spy(coordinates: str, data: Any, *args: Any, **kwargs: Any) -> None:
        captured.append(data)
        original(coordinates, data, *args, **kwargs)

    monkeypatch.setattr(button_module, "marshall_file", spy)
    return captured


def test_csv_export_holds_the_filtered_trades_and_is_built_only_on_download(dashboard, monkeypatch):
    dashboard.seed_trading()
    _journal_rows(dashboard)
    calls: list[object] = []
    from db.queries.journal import JournalQueries

    export = JournalQueries.export_csv
    monkeypatch.setattr(
        JournalQueries, "export_csv", lambda self, f: calls.append(f) or export(self, f)
    )
    downloads = _capture_downloads(monkeypatch)
    at = dashboard.app("journal").run()
    at.multiselect(key="journal_strategies").select("breakout").run()
    assert calls == []  # rendering never builds the file
    assert at.get("download_button")[0].label == "Download 2 trades (CSV)"
    text = downloads[-1]()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert [r["ticker"] for r in rows] == ["MSFT", "MSFT"]
    assert {r["pnl"] for r in rows} == {"-10.25"} and {r["strategy"] for r in rows} == {"breakout"}
    assert rows[0]["entry_time"] > rows[1]["entry_time"]
