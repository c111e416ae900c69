"""The Trade Journal's read views on real stores (SQLite and PostgreSQL): filters, counts,
aggregates with exact money, one trade's chain, paging, CSV export and the result cache."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, update

from db.queries.journal import (
    EXPORT_COLUMNS,
    JournalFilter,
    JournalQueries,
)
from db.store import SqlStore
from db.tables import (
    DAILY_PNL,
    DECISIONS,
    FILLS,
    ORDER_HISTORY,
    ORDERS,
    RECONCILIATION,
    SIGNALS,
    TRADES,
)

D = Decimal
T0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


def at(day: int, hour: int = 14, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def trade(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "signal_id": None,
        "ticker": "SPY",
        "instrument_type": "stock",
        "leverage": D(1),
        "direction": "long",
        "trade_type": "day",
        "entry_price": D("100"),
        "exit_price": None,
        "shares": D("10"),
        "status": "closed",
        "exit_reason": None,
        "pnl": None,
        "order_id": None,
        "entry_time": T0,
        "exit_time": None,
        "metadata_json": {},
        "created_at": T0,
        "trigger": "signal",
        "strategy": None,
        "sector": None,
        "regime": None,
    }
    row.update(kw)
    return row


def order(coid: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "client_order_id": coid,
        "broker": "paper",
        "signal_id": None,
        "parent_id": None,
        "symbol": "SPY",
        "side": "buy",
        "qty": D("10"),
        "order_type": "market",
        "time_in_force": "day",
        "reduce_only": False,
        "instrument_type": "stock",
        "status": "filled",
        "filled_qty": D("10"),
        "avg_fill_price": None,
        "created_at": T0,
        "updated_at": T0,
    }
    row.update(kw)
    return row


def fill(fill_id: str, coid: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "fill_id": fill_id,
        "broker": "paper",
        "client_order_id": coid,
        "symbol": "SPY",
        "side": "buy",
        "qty": D("10"),
        "price": D("100"),
        "expected_price": None,
        "slippage_bps": None,
        "commission": D("0"),
        "at": T0,
    }
    row.update(kw)
    return row


def add(store: SqlStore, table: Any, *rows: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        for row in rows:  # one by one: rows may name different columns
            conn.execute(insert(table), row)


@pytest.fixture
def journal(store: SqlStore) -> JournalQueries:
    """A journal of six trades (one open), the first followed from signal to fills."""
    add(
        store,
        SIGNALS,
        {
            "id": 1,
            "symbol": "SPY",
            "direction": "long",
            "trade_type": "day",
            "timeframe": "10m",
            "entry": D("100"),
            "stop": D("95"),
            "target": D("110"),
            "conviction": 4,
            "source": "momentum",
            "order_type": "market",
            "status": "executed",
            "metadata": {},
            "created_at": at(5, 13, 55),
        },
        {
            "id": 2,
            "symbol": "QQQ",
            "direction": "long",
            "trade_type": "day",
            "timeframe": "10m",
            "conviction": 3,
            "source": "momentum",
            "order_type": "market",
            "status": "executed",
            "metadata": {},
            "created_at": at(6, 9, 55),
        },
    )
    add(
        store,
        DECISIONS,
        *(
            {"signal_id": 1, "stage": stage, "approved": True, "details": {}, "at": at(5, 13, 56)}
            for stage in ("instrument", "risk", "sizing")
        ),
        {"signal_id": 2, "stage": "risk", "approved": True, "details": {}, "at": at(6, 9, 56)},
    )
    add(
        store,
        ORDERS,
        order("ax-s1-entry", signal_id=1, created_at=at(5, 13, 57), avg_fill_price=D("100.10")),
        order(
            "ax-s1-entry-tp",
            parent_id="ax-s1-entry",
            side="sell",
            order_type="limit",
            limit_price=D("110.05"),
            created_at=at(5, 14, 1),
        ),
        order(
            "ax-s1-entry-sl",
            parent_id="ax-s1-entry",
            side="sell",
            order_type="stop",
            status="cancelled",
            filled_qty=D(0),
            created_at=at(5, 14, 1),
        ),
        order("ax-x1-stop_loss-1", side="sell", created_at=at(5, 15, 59)),
        order("ax-s2-entry", signal_id=2, symbol="QQQ", created_at=at(6, 9, 57)),
    )
    add(
        store,
        ORDER_HISTORY,
        {
            "client_order_id": "ax-s1-entry",
            "seq": 1,
            "from_status": None,
            "to_status": "submitted",
            "at": at(5, 13, 58),
        },
        {
            "client_order_id": "ax-s1-entry",
            "seq": 2,
            "from_status": "submitted",
            "to_status": "filled",
            "at": at(5, 14, 0),
        },
    )
    add(
        store,
        FILLS,
        fill(
            "f1",
            "ax-s1-entry",
            price=D("100.10"),
            expected_price=D("100.00"),
            commission=D("1.00"),
            at=at(5, 14, 0),
        ),
        fill(
            "f2",
            "ax-s1-entry-tp",
            side="sell",
            price=D("110.00"),
            expected_price=D("110.05"),
            commission=D("1.00"),
            at=at(5, 16, 0),
        ),
        fill("f3", "ax-s2-entry", symbol="QQQ", commission=D("0.35"), at=at(6, 10, 0)),
    )
    add(
        store,
        TRADES,
        trade(
            signal_id=1,
            ticker="SPY",
            pnl=D("100.50"),
            exit_price=D("110.00"),
            exit_reason="target",
            strategy="momentum",
            sector="tech",
            regime="bull",
            order_id="ax-s1-entry",
            entry_time=at(5, 14, 0),
            exit_time=at(5, 16, 0),
            metadata_json={"exits": [{"qty": "10", "order": "ax-x1-stop_loss-1"}]},
        ),
        trade(
            signal_id=2,
            ticker="QQQ",
            pnl=D("-40.25"),
            exit_reason="stop_loss",
            strategy="momentum",
            sector="tech",
            regime="bear",
            order_id="ax-s2-entry",
            entry_time=at(6, 10, 0),
            exit_time=at(8, 10, 0),
        ),
        trade(
            ticker="NVDA",
            direction="short",
            pnl=D("0"),
            exit_reason="manual",
            strategy="breakout",
            sector="tech",
            regime="bull",
            entry_time=at(7, 15, 0),
            exit_time=at(7, 15, 30),
        ),
        # Closed without a recorded P&L: valued from its prices, (55 - 50) * 10.
        trade(
            ticker="TQQQ",
            instrument_type="leveraged_etf",
            entry_price=D("50"),
            exit_price=D("55"),
            exit_reason="manual",
            trigger="manual",
            entry_time=at(9, 15, 0),
            exit_time=at(20, 15, 0),
        ),
        trade(
            ticker="SPY",
            status="open",
            trigger="rebalance",
            strategy="rebalance",
            entry_time=at(10, 15, 0),
        ),
        trade(
            ticker="XLE",
            pnl=D("12.345678"),
            exit_reason="target",
            strategy="breakout",
            sector="energy",
            entry_time=at(10, 9, 0),
            exit_time=at(10, 9, 20),
        ),
    )
    add(
        store,
        DAILY_PNL,
        *(
            {
                "date": date(2026, 1, day),
                "starting_equity": D("10000"),
                "ending_equity": D("10000"),
                "realized_pnl": D(0),
                "unrealized_pnl": D(0),
                "total_trades": 0,
                "winning_trades": 0,
                "losing_trades": 0,
                "kill_switch_triggered": False,
            }
            for day in (5, 6)
        ),
    )
    return JournalQueries(store)


# ---------------------------------------------------------------------------------- filters
def test_choices_are_the_distinct_stored_values_with_none_last(journal):
    choices = journal.choices()
    assert not choices.empty
    assert choices.symbols == ("NVDA", "QQQ", "SPY", "TQQQ", "XLE")
    assert choices.strategies == ("breakout", "momentum", "rebalance", None)
    assert choices.triggers == ("manual", "rebalance", "signal")
    assert choices.exit_reasons == ("manual", "stop_loss", "target", None)
    assert choices.instrument_types == ("leveraged_etf", "stock")
    assert choices.first_entry == at(5, 14, 0)
    assert choices.last_entry == at(10, 15, 0)


def test_an_empty_journal_has_no_choices_and_zero_totals(store):
    journal = JournalQueries(store)
    assert journal.choices().empty
    summary = journal.summary(JournalFilter())
    assert (summary.trades, summary.closed, summary.realized_pnl) == (0, 0, D(0))
    assert summary.win_rate is None and summary.average_pnl is None
    assert journal.trades(JournalFilter()).empty
    assert journal.win_rates(JournalFilter()).empty
    assert journal.holding_periods(JournalFilter())["trades"].sum() == 0
    assert journal.slippage(JournalFilter()).empty
    assert journal.commission_impact(JournalFilter()).empty
    assert journal.turnover(JournalFilter()).empty
    assert journal.export_csv(JournalFilter()).splitlines() == [",".join(EXPORT_COLUMNS)]


def test_summary_counts_and_realized_pnl_are_exact(journal):
    summary = journal.summary(JournalFilter())
    assert (summary.trades, summary.open, summary.closed) == (6, 1, 5)
    assert (summary.wins, summary.losses) == (3, 1)
    # 100.50 - 40.25 + 0 + 50 (valued from prices) + 12.345678
    assert summary.realized_pnl == D("122.595678")
    assert summary.win_rate == D("0.6")
    assert summary.average_pnl == D("24.5191356")


@pytest.mark.parametrize(
    ("f", "ids"),
    [
        (JournalFilter(symbols=("SPY",)), [5, 1]),
        (JournalFilter(strategies=(None,)), [4]),
        (JournalFilter(strategies=("momentum", None)), [4, 2, 1]),
        (JournalFilter(triggers=("manual", "rebalance")), [5, 4]),
        (JournalFilter(exit_reasons=(None,)), [5]),
        (JournalFilter(exit_reasons=("target",)), [6, 1]),
        (JournalFilter(instrument_types=("leveraged_etf",)), [4]),
        (JournalFilter(start=date(2026, 1, 7), end=date(2026, 1, 9)), [4, 3]),
        (JournalFilter(start=date(2026, 1, 10)), [5, 6]),
        (JournalFilter(end=date(2026, 1, 5)), [1]),
        (JournalFilter(symbols=("SPY",), exit_reasons=("stop_loss",)), []),
    ],
)
def test_filters_select_the_matching_trades_newest_entry_first(journal, f, ids):
    rows = journal.trades(f)
    assert list(rows["id"]) == ids
    assert journal.summary(f).trades == len(ids)


def test_trades_come_a_page_at_a_time_with_exact_money(journal):
    first = journal.trades(JournalFilter(), limit=4)
    second = journal.trades(JournalFilter(), limit=4, offset=4)
    assert list(first["id"]) == [5, 6, 4, 3] and list(second["id"]) == [2, 1]
    xle = first.set_index("id").loc[6]
    assert xle["pnl"] == D("12.345678") and isinstance(xle["pnl"], Decimal)
    assert xle["entry_time"] == at(10, 9, 0)


def test_option_trades_name_their_contract_and_days_to_expiry(store):
    call, put = "SPY260105C00600000", "QQQ260106P00500000"
    add(
        store,
        TRADES,
        trade(ticker="AAPL", entry_time=at(5, 14, 30)),
        # as the options stage journals it: the contract and how it was chosen
        trade(
            ticker=call,
            instrument_type="option",
            original_ticker="SPY",
            entry_price=D("1.25"),
            exit_price=D("1.75"),
            shares=D("3"),
            pnl=D("150.00"),  # (1.75 - 1.25) x 3 x 100, as the journal writer stores it
            entry_time=at(5, 15, 0),
            metadata_json={
                "underlying": "SPY",
                "expiry": "2026-01-05",
                "strike": "600",
                "right": "call",
                "expiry_kind": "0DTE",
                "iv": "0.1800",
                "delta": "0.5100",
                "premium_at_risk": "375.00",
            },
        ),
        # a manual option trade: no metadata, the days to expiry come from the entry
        trade(
            ticker=put,
            instrument_type="option",
            status="open",
            entry_price=D("2.10"),
            shares=D("1"),
            entry_time=at(5, 20, 30),  # 15:30 in New York: one day before the expiry
        ),
        # an option trade whose ticker is not an OCC symbol: its metadata names the contract
        trade(
            ticker="IWMOPT",
            instrument_type="option",
            entry_time=at(5, 14, 0),
            metadata_json={
                "underlying": "IWM",
                "expiry": "2026-01-09",
                "strike": "210.5",
                "right": "put",
            },
        ),
    )
    q = JournalQueries(store)
    page = q.trades(JournalFilter()).set_index("ticker")
    assert list(page.columns[-2:]) == ["contract", "expiry_kind"]
    assert page.loc[call, "contract"] == "SPY 2026-01-05 600 C"
    assert page.loc[call, "expiry_kind"] == "0DTE"
    assert page.loc[call, "pnl"] == D("150.00") and page.loc[call, "instrument_type"] == "option"
    assert page.loc[put, "contract"] == "QQQ 2026-01-06 500 P"
    assert page.loc[put, "expiry_kind"] == "1DTE"
    assert page.loc["IWMOPT", "contract"] == "IWM 2026-01-09 210.5 P"
    assert page.loc["IWMOPT", "expiry_kind"] == "4DTE"
    assert page.loc["AAPL", "contract"] is None and page.loc["AAPL", "expiry_kind"] is None

    assert q.choices().instrument_types == ("option", "stock")
    options = JournalFilter(instrument_types=("option",))
    assert set(q.trades(options)["ticker"]) == {call, put, "IWMOPT"}
    summary = q.summary(options)
    assert (summary.trades, summary.open, summary.realized_pnl) == (3, 1, D("150.00"))
    assert q.trades(JournalFilter(instrument_types=("stock",)))["contract"].isna().all()
    assert list(q.trades(JournalFilter(symbols=("NONE",))).columns[-2:]) == [
        "contract",
        "expiry_kind",
    ]


def test_csv_export_has_the_header_and_every_filtered_trade(journal):
    text = journal.export_csv(JournalFilter(strategies=("breakout",)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert [r["id"] for r in rows] == ["6", "3"]
    assert rows[0]["ticker"] == "XLE" and rows[0]["pnl"] == "12.345678"
    assert rows[0]["entry_time"] == "2026-01-10T09:00:00+00:00"
    assert rows[0]["regime"] == "" and rows[1]["direction"] == "short"


# ---------------------------------------------------------------------------------- chain
def test_chain_follows_signal_decisions_orders_legs_and_fills(journal):
    chain = journal.chain(1)
    assert chain is not None
    assert chain.trade["ticker"] == "SPY" and chain.signal is not None
    assert chain.signal["id"] == 1 and chain.signal["source"] == "momentum"
    assert [d["stage"] for d in chain.decisions] == ["instrument", "risk", "sizing"]
    assert [o["client_order_id"] for o in chain.orders] == [
        "ax-s1-entry",
        "ax-s1-entry-sl",
        "ax-s1-entry-tp",
        "ax-x1-stop_loss-1",
    ]
    assert [h["to_status"] for h in chain.history] == ["submitted", "filled"]
    assert [(f["fill_id"], f["at"]) for f in chain.fills] == [
        ("f1", at(5, 14, 0)),
        ("f2", at(5, 16, 0)),
    ]


def test_chain_of_a_trade_without_signal_or_orders_and_of_a_missing_trade(journal):
    chain = journal.chain(3)
    assert chain is not None and chain.signal is None
    assert chain.decisions == [] and chain.orders == [] and chain.fills == []
    assert journal.chain(999) is None


# ---------------------------------------------------------------------------------- analytics
def _groups(df, key):
    part = df[df["key"] == key]
    return {
        g: (n, w, lo, rate, total)
        for g, n, w, lo, rate, total in zip(
            part["group"],
            part["trades"],
            part["wins"],
            part["losses"],
            part["win_rate"],
            part["total_pnl"],
            strict=True,
        )
    }


def test_win_rates_by_strategy_sector_and_regime(journal):
    df = journal.win_rates(JournalFilter())
    assert list(df[df["key"] == "strategy"]["group"]) == ["breakout", "momentum", None]
    assert _groups(df, "strategy") == {
        "breakout": (2, 1, 0, D("0.5"), D("12.345678")),
        "momentum": (2, 1, 1, D("0.5"), D("60.25")),
        None: (1, 1, 0, D(1), D(50)),
    }
    assert _groups(df, "sector") == {
        "tech": (3, 1, 1, D(1) / D(3), D("60.25")),
        "energy": (1, 1, 0, D(1), D("12.345678")),
        None: (1, 1, 0, D(1), D(50)),
    }
    assert _groups(df, "regime") == {
        "bull": (2, 1, 0, D("0.5"), D("100.50")),
        None: (2, 2, 0, D(1), D("62.345678")),
        "bear": (1, 0, 1, D(0), D("-40.25")),
    }
    assert list(df[df["key"] == "regime"]["group"]) == ["bull", "bear", None]


def test_win_rates_follow_the_filter(journal):
    df = journal.win_rates(JournalFilter(symbols=("QQQ",)))
    assert _groups(df, "strategy") == {"momentum": (1, 0, 1, D(0), D("-40.25"))}


def test_holding_periods_fall_into_buckets(journal):
    df = journal.holding_periods(JournalFilter()).set_index("bucket")
    assert list(df.index) == ["< 1h", "1-4h", "4h-1d", "1-2d", "2-5d", "5-10d", "10-20d", "20d+"]
    assert list(df["trades"]) == [2, 1, 0, 0, 1, 0, 1, 0]
    assert (df.loc["< 1h", "wins"], df.loc["< 1h", "losses"]) == (1, 0)
    assert df.loc["< 1h", "total_pnl"] == D("12.345678")
    assert df.loc["< 1h", "average_seconds"] == pytest.approx(1500)
    assert df.loc["2-5d", "losses"] == 1 and df.loc["10-20d", "total_pnl"] == D(50)
    assert df.loc["4h-1d", "average_seconds"] is None


def test_slippage_compares_expected_and_actual_fill_prices(journal):
    df = journal.slippage(JournalFilter())
    rows = {(r.order_type, r.side): r for r in df.itertuples()}
    assert set(rows) == {("market", "buy"), ("limit", "sell")}
    buy = rows["market", "buy"]
    assert (buy.fills, buy.expected_notional, buy.actual_notional) == (1, D(1000), D("1001"))
    assert buy.slippage_cost == D("1") and buy.slippage_bps == D("10.00")
    sell = rows["limit", "sell"]
    assert (sell.expected_notional, sell.actual_notional) == (D("1100.5"), D("1100"))
    assert sell.slippage_cost == D("0.5") and sell.slippage_bps == D("4.54")
    assert sell.commission == D("1")
    assert journal.slippage(JournalFilter(symbols=("QQQ",))).empty


def test_commission_impact_per_day(journal):
    df = journal.commission_impact(JournalFilter()).set_index("day")
    jan = [date(2026, 1, d) for d in (5, 6, 7, 8, 10, 20)]
    assert list(df.index) == jan
    assert df.loc[date(2026, 1, 5), "gross_pnl"] == D("100.50")
    assert df.loc[date(2026, 1, 5), "commission"] == D("2.00")
    assert df.loc[date(2026, 1, 5), "net_pnl"] == D("98.50")
    assert df.loc[date(2026, 1, 5), "notional"] == D("2101.00")
    assert df.loc[date(2026, 1, 6), "commission"] == D("0.35")
    assert df.loc[date(2026, 1, 6), "net_pnl"] == D("-0.35")
    assert df.loc[date(2026, 1, 20), "gross_pnl"] == D(50)
    only_qqq = journal.commission_impact(JournalFilter(symbols=("QQQ",)))
    assert list(only_qqq["day"]) == [date(2026, 1, 6), date(2026, 1, 8)]


def test_turnover_per_day_against_the_days_equity(journal):
    df = journal.turnover(JournalFilter(end=date(2026, 1, 6))).set_index("day")
    assert list(df.index) == [date(2026, 1, 5), date(2026, 1, 6)]
    assert list(df["trades_opened"]) == [1, 1] and list(df["fills"]) == [2, 1]
    assert df.loc[date(2026, 1, 5), "notional"] == D("2101.00")
    assert df.loc[date(2026, 1, 5), "turnover"] == D("0.2101")
    assert df.loc[date(2026, 1, 6), "turnover"] == D("0.1")
    later = journal.turnover(JournalFilter(start=date(2026, 1, 7))).set_index("day")
    assert later["equity"].isna().all() and later["turnover"].isna().all()


# ---------------------------------------------------------------------------------- exactness
def test_money_sums_are_exact_where_floats_are_not(store):
    add(
        store,
        TRADES,
        *(
            trade(pnl=D(v), exit_time=T0 + timedelta(minutes=1), strategy="s")
            for v in ("0.1", "0.2", "0.000001")
        ),
    )
    journal = JournalQueries(store)
    assert journal.summary(JournalFilter()).realized_pnl == D("0.300001")
    groups = journal.win_rates(JournalFilter())
    assert set(groups["total_pnl"]) == {D("0.300001")}


def test_cached_aggregates_follow_new_trades_and_fills(journal, store):
    assert journal.summary(JournalFilter()).trades == 6
    assert journal.win_rates(JournalFilter())["trades"].sum() == 15
    add(store, TRADES, trade(ticker="IWM", pnl=D("-1"), exit_time=at(11), entry_time=at(11)))
    assert journal.summary(JournalFilter()).trades == 7
    assert journal.win_rates(JournalFilter())["trades"].sum() == 18
    assert "IWM" in journal.choices().symbols
    add(store, FILLS, fill("f4", "ax-s2-entry", symbol="QQQ", commission=D("2"), at=at(6, 11)))
    fees = journal.commission_impact(JournalFilter()).set_index("day")["commission"]
    assert fees[date(2026, 1, 6)] == D("2.35")
    # Reconciliation resizes trades without a fill; the diff it records moves the version.
    with store.engine.begin() as conn:
        conn.execute(update(TRADES).where(TRADES.c.id == 2).values(pnl=D("-20.25")))
    add(store, RECONCILIATION, {"kind": "position", "key": "QQQ", "broker": "paper", "at": at(12)})
    assert journal.summary(JournalFilter()).realized_pnl == D("141.595678")
