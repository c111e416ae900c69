"""The Trade Journal's figure builders and table helpers, without Streamlit: the values they
plot and what they show for empty input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import plotly.graph_objects as go
import pytest

from app.components.journal import chain_timeline, duration, option_summary, trades_table
from app.components.journal_charts import (
    NONE_LABEL,
    build_commission_figure,
    build_holding_period_figure,
    build_slippage_figure,
    build_turnover_figure,
    build_win_rate_figure,
)
from db.queries.journal import TradeChain

D = Decimal
T0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


def _message(fig: go.Figure) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_win_rate_figure_has_one_panel_per_key_with_rates_in_percent():
    df = pd.DataFrame(
        [
            ("strategy", "momentum", 4, 3, 1, D("0.75"), D("120.50")),
            ("strategy", None, 2, 0, 2, D(0), D("-10")),
            ("sector", "tech", 6, 3, 3, D("0.5"), D("110.50")),
            ("regime", "bull", 6, 3, 3, D("0.5"), D("110.50")),
        ],
        columns=["key", "group", "trades", "wins", "losses", "win_rate", "total_pnl"],
    )
    fig = build_win_rate_figure(df)
    assert [t.name for t in fig.data] == ["strategy", "sector", "regime"]
    strategy = fig.data[0]
    assert list(strategy.x) == ["momentum", NONE_LABEL]
    assert list(strategy.y) == [75.0, 0.0]
    assert list(strategy.text) == ["75% · 4", "0% · 2"]
    assert strategy.customdata[0][2] == pytest.approx(120.5)
    assert [a.text for a in fig.layout.annotations] == ["by strategy", "by sector", "by regime"]


def test_win_rate_figure_shows_only_the_keys_present():
    df = pd.DataFrame(
        [("sector", "energy", 1, 1, 0, D(1), D("5"))],
        columns=["key", "group", "trades", "wins", "losses", "win_rate", "total_pnl"],
    )
    fig = build_win_rate_figure(df)
    assert len(fig.data) == 1 and list(fig.data[0].y) == [100.0]


def test_holding_period_figure_stacks_won_lost_and_flat():
    df = pd.DataFrame(
        {
            "bucket": ["< 1h", "1-4h", "4h-1d"],
            "trades": [5, 2, 0],
            "wins": [3, 0, 0],
            "losses": [1, 2, 0],
        }
    )
    fig = build_holding_period_figure(df)
    assert fig.layout.barmode == "stack"
    bars = {t.name: list(t.y) for t in fig.data}
    assert bars == {"won": [3, 0, 0], "lost": [1, 2, 0], "flat": [1, 0, 0]}
    assert list(fig.data[0].x) == ["< 1h", "1-4h", "4h-1d"]


def test_slippage_figure_puts_expected_next_to_actual_with_bps():
    df = pd.DataFrame(
        [
            ("limit", "sell", 1, D("1100.50"), D("1100.00"), D("0.50"), D("4.54")),
            ("market", "buy", 1, D("1000.00"), D("1001.00"), D("1.00"), D("10.00")),
        ],
        columns=[
            "order_type",
            "side",
            "fills",
            "expected_notional",
            "actual_notional",
            "slippage_cost",
            "slippage_bps",
        ],
    )
    fig = build_slippage_figure(df)
    expected, actual, bps = fig.data
    assert list(expected.x) == ["limit sell", "market buy"]
    assert list(expected.y) == [1100.5, 1000.0] and list(actual.y) == [1100.0, 1001.0]
    assert list(bps.y) == [4.54, 10.0] and list(bps.text) == ["4.5", "10.0"]
    assert bps.yaxis == "y2"
    assert "limit-order target 5 bps" in _message(fig)


def test_commission_figure_subtracts_commissions_and_accumulates_net_pnl():
    df = pd.DataFrame(
        {
            "day": [date(2026, 1, 5), date(2026, 1, 6)],
            "gross_pnl": [D("100.50"), D("-20")],
            "commission": [D("2.00"), D("0.35")],
            "net_pnl": [D("98.50"), D("-20.35")],
        }
    )
    gross, fees, net = build_commission_figure(df).data
    assert list(gross.y) == [100.5, -20.0]
    assert list(fees.y) == [-2.0, -0.35]
    assert list(net.y) == pytest.approx([98.5, 78.15]) and net.yaxis == "y2"


def test_turnover_figure_plots_notional_and_turnover_where_equity_is_known():
    df = pd.DataFrame(
        {
            "day": [date(2026, 1, 5), date(2026, 1, 6)],
            "trades_opened": [1, 3],
            "fills": [2, 4],
            "notional": [D("2101"), D("1000")],
            "turnover": [D("0.2101"), None],
        }
    )
    notional, turnover = build_turnover_figure(df).data
    assert list(notional.y) == [2101.0, 1000.0]
    assert list(notional.customdata[1]) == [3, 4]
    assert list(turnover.y) == [pytest.approx(21.01), None]
    no_equity = df.assign(turnover=[None, None])
    assert len(build_turnover_figure(no_equity).data) == 1


@pytest.mark.parametrize(
    ("builder", "columns", "message"),
    [
        (build_win_rate_figure, ["key", "group", "trades"], "No closed trades"),
        (build_holding_period_figure, ["bucket", "trades", "wins", "losses"], "No closed"),
        (build_slippage_figure, ["order_type", "side"], "No fills"),
        (build_commission_figure, ["day", "gross_pnl"], "No closed trades or fills"),
        (build_turnover_figure, ["day", "notional"], "No trades or fills"),
    ],
)
def test_empty_input_gives_an_empty_figure_that_says_why(builder, columns, message):
    fig = builder(pd.DataFrame(columns=columns))
    assert len(fig.data) == 0
    assert message in _message(fig)


def test_holding_period_figure_with_only_empty_buckets_is_empty():
    df = pd.DataFrame({"bucket": ["< 1h"], "trades": [0], "wins": [0], "losses": [0]})
    assert len(build_holding_period_figure(df).data) == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (45, "45s"), (125, "2m 5s"), (7_500, "2h 5m"), (3 * 86_400 + 4 * 3_600, "3d 4h")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_trades_table_adds_the_holding_period():
    df = pd.DataFrame(
        {
            "id": [2, 1],
            "entry_time": [T0, T0],
            "exit_time": [None, datetime(2026, 1, 5, 16, 30, tzinfo=UTC)],
            "ticker": ["SPY", "QQQ"],
            "strategy": [None, "momentum"],
            "trigger": ["manual", "signal"],
            "sector": [None, None],
            "regime": [None, "bull"],
            "exit_reason": [None, "target"],
        },
        dtype=object,
    )
    table = trades_table(df)
    assert list(table["held"]) == ["", "2h 30m"]
    assert list(table.columns[:4]) == ["id", "entry_time", "exit_time", "held"]
    assert list(table["strategy"]) == [None, "momentum"]


def test_trades_table_shows_option_contracts_after_the_symbol_only_when_there_are_any():
    df = pd.DataFrame(
        {
            "id": [2, 1],
            "entry_time": [T0, T0],
            "exit_time": [None, None],
            "ticker": ["SPY261120C00600000", "SPY"],
            "pnl": [None, None],
            "contract": ["SPY 2026-11-20 600 C", None],
            "expiry_kind": ["0DTE", None],
        },
        dtype=object,
    )
    table = trades_table(df)
    assert list(table.columns) == [
        "id",
        "entry_time",
        "exit_time",
        "held",
        "ticker",
        "contract",
        "expiry_kind",
        "pnl",
    ]
    assert list(table["contract"]) == ["SPY 2026-11-20 600 C", None]
    stocks = trades_table(df.iloc[1:])
    assert "contract" not in stocks.columns and "expiry_kind" not in stocks.columns


def test_option_summary_names_the_contract_and_how_it_was_chosen():
    trade = {
        "ticker": "SPY261120P00590000",
        "instrument_type": "option",
        "entry_time": datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        "metadata_json": {
            "expiry_kind": "0DTE",
            "iv": "0.1825",
            "delta": "-0.4200",
            "premium_at_risk": "372.00",
        },
    }
    assert option_summary(trade) == (
        "**Option** SPY 2026-11-20 590 P · 0DTE · IV 18.2% · delta -0.420 · "
        "premium at risk $372.00 · 100 shares per contract, prices per share, P&L in dollars"
    )
    assert option_summary({**trade, "metadata_json": {}}).startswith(
        "**Option** SPY 2026-11-20 590 P · 0DTE · 100 shares"  # counted from the entry
    )
    assert option_summary({"ticker": "SPY", "instrument_type": "stock"}) is None


def test_chain_timeline_tells_the_trade_in_time_order():
    at = lambda m: datetime(2026, 1, 5, 13, m, tzinfo=UTC)  # noqa: E731
    chain = TradeChain(
        trade={
            "id": 7,
            "ticker": "SPY",
            "direction": "long",
            "shares": D("10"),
            "entry_price": D("100.10"),
            "entry_time": at(50),
            "exit_time": at(59),
            "exit_price": D("110"),
            "exit_reason": "target",
            "pnl": D("99.00"),
        },
        signal={
            "id": 3,
            "source": "momentum",
            "direction": "long",
            "symbol": "SPY",
            "entry": D("100"),
            "stop": D("95"),
            "target": None,
            "status": "executed",
            "reason": None,
            "created_at": at(40),
        },
        decisions=[
            {"stage": "risk", "approved": True, "reason": None, "at": at(41)},
            {"stage": "sizing", "approved": False, "reason": "too big", "at": at(42)},
        ],
        orders=[
            {
                "client_order_id": "ax-s3",
                "parent_id": None,
                "side": "buy",
                "qty": D("10"),
                "symbol": "SPY",
                "order_type": "limit",
                "limit_price": D("100.20"),
                "stop_price": None,
                "status": "filled",
                "filled_qty": D("10"),
                "avg_fill_price": D("100.10"),
                "created_at": at(45),
            }
        ],
        history=[
            {
                "client_order_id": "ax-s3",
                "from_status": "submitted",
                "to_status": "filled",
                "reason": None,
                "at": at(50),
            }
        ],
        fills=[
            {
                "client_order_id": "ax-s3",
                "side": "buy",
                "qty": D("10"),
                "price": D("100.10"),
                "expected_price": D("100.00"),
                "slippage_bps": D("10"),
                "commission": D("1"),
                "at": at(50),
            }
        ],
    )
    df = chain_timeline(chain)
    assert list(df["step"]) == [
        "signal",
        "decision",
        "decision",
        "order",
        "status",
        "fill",
        "entry",
        "exit",
    ]
    assert df["time"].is_monotonic_increasing
    details = list(df["detail"])
    assert details[0] == "momentum: long SPY (entry 100, stop 95); executed"
    assert details[2] == "rejected — too big"
    assert details[3] == "buy 10 SPY limit limit 100.20: filled, filled 10 @ 100.10"
    assert details[4] == "submitted → filled"
    assert details[5] == "buy 10 @ 100.10 (expected 100.00, slippage 10 bps, commission $1.00)"
    assert details[7] == "@ 110 (target), P&L $99.00"


def test_chain_timeline_of_a_trade_alone():
    chain = TradeChain(
        trade={
            "id": 1,
            "ticker": "QQQ",
            "direction": "short",
            "shares": D("5"),
            "entry_price": D("400"),
            "entry_time": T0,
            "exit_time": None,
        }
    )
    df = chain_timeline(chain)
    assert list(df["step"]) == ["entry"] and list(df["ref"]) == ["trade #1"]
