"""The Risk Dashboard's data shaping and figure builders, without Streamlit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import plotly.graph_objects as go
import pytest

from app.components.risk import (
    build_drawdown_figure,
    build_exposure_figure,
    build_gauge_figure,
    build_pnl_figure,
)
from app.components.risk_data import (
    daily_curve,
    daily_loss,
    drawdown,
    exposure_by_sector,
    intraday_curve,
    summarize,
)
from db.queries.risk import (
    DAILY_PNL_COLUMNS,
    EXPOSURE_COLUMNS,
    REALIZED_DAY_COLUMNS,
    REALIZED_MINUTE_COLUMNS,
)

D = Decimal
START = datetime(2024, 5, 6, tzinfo=UTC)


def _exposure(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "symbol": symbol,
                "sector": sector,
                "instrument_type": "stock",
                "qty": D(1),
                "avg_entry_price": D(value),
                "price": D(value),
                "market_value": D(value),
                "gross_value": D(value),
                "unrealized_pnl": D(0),
            }
            for symbol, sector, value in rows
        ],
        columns=EXPOSURE_COLUMNS,
    )


def _trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    (found,) = [t for t in fig.data if t.name == name]
    return found


def _shapes(fig: go.Figure) -> dict[str, go.layout.Shape]:
    return {s.name: s for s in fig.layout.shapes}


def _annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


# ---------------------------------------------------------------------------------- exposure
def test_exposure_by_sector_adds_gross_values_largest_first() -> None:
    frame = exposure_by_sector(
        _exposure(
            ("NVDA", "semiconductors", "2000"),
            ("AAPL", "technology", "1500.50"),
            ("MSFT", "technology", "1000.25"),
            ("SPXL", "unclassified", "300"),
        )
    )
    assert list(frame["sector"]) == ["technology", "semiconductors", "unclassified"]
    assert list(frame["gross_value"]) == [D("2500.75"), D("2000"), D("300")]
    assert frame["symbols"].iloc[0] == "AAPL, MSFT"
    assert exposure_by_sector(_exposure()).empty


def test_exposure_figure_shows_shares_of_equity_against_both_limits() -> None:
    exposure = _exposure(
        ("NVDA", "semiconductors", "20000"),
        ("AAPL", "technology", "12000"),
        ("MSFT", "technology", "10000"),
        ("SPXL", "unclassified", "5000"),
    )
    fig = build_exposure_figure(exposure, D("100000"), D("0.15"), D("0.30"))
    symbols = _trace(fig, "Symbol exposure")
    assert list(symbols.x) == ["NVDA", "AAPL", "MSFT", "SPXL"]
    assert list(symbols.y) == pytest.approx([20.0, 12.0, 10.0, 5.0])
    assert symbols.marker.color[0] != symbols.marker.color[1]  # NVDA is above 15 %
    sectors = _trace(fig, "Sector exposure")
    assert list(sectors.x) == ["technology", "semiconductors", "unclassified"]
    assert list(sectors.y) == pytest.approx([22.0, 20.0, 5.0])
    shapes = _shapes(fig)
    assert shapes["single-name limit"].y0 == pytest.approx(15.0)
    assert shapes["single-name limit"].yref == "y"
    assert shapes["sector limit"].y0 == pytest.approx(30.0)
    assert shapes["sector limit"].yref == "y2"
    assert any("15%" in a for a in _annotations(fig))


def test_exposure_figure_without_equity_shows_dollars_and_says_why_no_limits() -> None:
    fig = build_exposure_figure(_exposure(("AAPL", "technology", "1200.50")), None, 0.15, 0.3)
    assert list(_trace(fig, "Symbol exposure").y) == [1200.5]
    assert _shapes(fig) == {}
    assert any("Equity unknown" in a for a in _annotations(fig))


def test_exposure_figure_of_no_positions_says_so() -> None:
    fig = build_exposure_figure(_exposure(), D("100000"), D("0.15"), D("0.30"))
    assert len(fig.data) == 0
    assert "No open positions: nothing is exposed." in _annotations(fig)


# ---------------------------------------------------------------------------------- P&L curves
def test_intraday_curve_accumulates_and_adds_unrealized_at_now() -> None:
    by_minute = pd.DataFrame(
        {
            "at": [START + timedelta(hours=14), START + timedelta(hours=15)],
            "realized": [D("120.5"), D("-20.25")],
        }
    )
    now = START + timedelta(hours=16)
    curve = intraday_curve(by_minute, START, now, D("35"))
    assert list(curve["at"]) == [START, *by_minute["at"], now]
    assert list(curve["realized"]) == [D(0), D("120.5"), D("100.25"), D("100.25")]
    assert list(curve["total"]) == [D(0), D("120.5"), D("100.25"), D("135.25")]
    empty = intraday_curve(pd.DataFrame(columns=["at", "realized"]), START, now)
    assert list(empty["total"]) == [D(0), D(0)]


def test_daily_curve_prefers_the_recorded_equity_change() -> None:
    realized = pd.DataFrame(
        [
            {"day": date(2024, 5, 6), "trades": 2, "wins": 1, "losses": 1, "realized": D("100")},
            {"day": date(2024, 5, 7), "trades": 1, "wins": 0, "losses": 1, "realized": D("-40")},
        ],
        columns=REALIZED_DAY_COLUMNS,
    )
    rows = pd.DataFrame(
        [
            {
                "day": date(2024, 5, 7),
                "starting_equity": D("100100"),
                "ending_equity": D("100000"),
                "realized": D("-40"),
                "unrealized": D("-60"),
                "equity_change": D("-100"),
                "trades": 1,
                "max_drawdown": D("0.001"),
                "kill_switch_triggered": False,
            },
            {
                "day": date(2024, 5, 8),
                "starting_equity": D("100000"),
                "ending_equity": D("100250"),
                "realized": D("0"),
                "unrealized": D("190"),
                "equity_change": D("250"),
                "trades": 0,
                "max_drawdown": D("0"),
                "kill_switch_triggered": False,
            },
        ],
        columns=DAILY_PNL_COLUMNS,
    )
    curve = daily_curve(realized, rows)
    assert list(curve["day"]) == [date(2024, 5, 6), date(2024, 5, 7), date(2024, 5, 8)]
    assert list(curve["pnl"]) == [D("100"), D("-100"), D("250")]
    assert list(curve["cum_pnl"]) == [D("100"), D("0"), D("250")]
    assert list(curve["source"]) == ["realized", "equity", "equity"]
    assert daily_curve(realized.iloc[0:0], rows.iloc[0:0]).empty


def test_pnl_figure_draws_today_and_the_daily_curve() -> None:
    by_minute = pd.DataFrame({"at": [START + timedelta(hours=14)], "realized": [D("50")]})
    now = START + timedelta(hours=15)
    intraday = intraday_curve(by_minute, START, now, D("-80"))
    daily = pd.DataFrame({"day": [date(2024, 5, 3), date(2024, 5, 6)], "pnl": [D("200"), D("-30")]})
    daily["cum_pnl"] = [D("200"), D("170")]
    fig = build_pnl_figure(intraday, daily)
    assert [t.name for t in fig.data] == [
        "Realized today",
        "Incl. unrealized (now)",
        "Day P&L",
        "Cumulative",
    ]
    assert list(_trace(fig, "Realized today").y) == [0.0, 50.0, 50.0]
    assert list(_trace(fig, "Incl. unrealized (now)").y) == [50.0, -30.0]
    assert list(_trace(fig, "Day P&L").y) == [200.0, -30.0]
    assert list(_trace(fig, "Cumulative").y) == [200.0, 170.0]
    bars = _trace(fig, "Day P&L").marker.color
    assert bars[0] != bars[1]  # gains and losses in different colors


def test_pnl_figure_with_no_history_says_so() -> None:
    intraday = intraday_curve(pd.DataFrame(columns=["at", "realized"]), START, START)
    fig = build_pnl_figure(intraday, pd.DataFrame(columns=["day", "pnl", "cum_pnl"]))
    assert "Day P&L" not in [t.name for t in fig.data]
    assert any("No closed trades yet" in a for a in _annotations(fig))
    fig = build_pnl_figure(intraday.iloc[0:0], pd.DataFrame(columns=["day", "pnl", "cum_pnl"]))
    assert len(fig.data) == 0
    assert "No P&L today yet." in _annotations(fig)


# ---------------------------------------------------------------------------------- drawdown
def test_drawdown_is_the_distance_below_the_running_peak() -> None:
    cum = pd.Series([D("-50"), D("100"), D("40"), D("160"), D("90")])
    assert list(drawdown(cum)) == [-50.0, 0.0, -60.0, 0.0, -70.0]


def test_drawdown_figure_draws_the_limit_line() -> None:
    daily = pd.DataFrame({"day": [date(2024, 5, 6), date(2024, 5, 7), date(2024, 5, 8)]})
    daily["cum_pnl"] = [D("100"), D("-400"), D("-250")]
    fig = build_drawdown_figure(daily, D("20000"))
    assert list(_trace(fig, "Drawdown").y) == [0.0, -500.0, -350.0]
    assert _shapes(fig)["drawdown limit"].y0 == pytest.approx(-20000.0)
    assert "drawdown limit" not in _shapes(build_drawdown_figure(daily))


def test_drawdown_figure_without_history_says_so() -> None:
    fig = build_drawdown_figure(pd.DataFrame(columns=["day", "cum_pnl"]), D("1000"))
    assert len(fig.data) == 0
    assert "No P&L history yet: no drawdown to show." in _annotations(fig)


# ---------------------------------------------------------------------------------- gauges
def test_gauges_show_loss_and_positions_against_their_limits() -> None:
    fig = build_gauge_figure(D("2500"), D("10000"), 4, 10)
    loss, positions = fig.data
    assert loss.name == "Daily loss" and loss.value == 2500.0
    assert loss.gauge.threshold.value == 10000.0
    assert "25%" in loss.number.suffix
    assert positions.name == "Concurrent positions" and positions.value == 4
    assert positions.gauge.threshold.value == 10
    assert positions.gauge.axis.range == (0, 10)


def test_gauges_past_the_limits_stretch_their_axis() -> None:
    loss, positions = build_gauge_figure(12000, 10000, 12, 10).data
    assert loss.gauge.axis.range[1] >= 12000
    assert positions.gauge.axis.range == (0, 12)


def test_a_day_in_profit_uses_none_of_the_limit_and_an_unknown_limit_is_said() -> None:
    loss, _ = build_gauge_figure(D("-500"), None, 0, 10).data
    assert loss.value == 0.0
    assert loss.gauge.threshold.value is None
    assert "limit unknown" in loss.title.text


# ---------------------------------------------------------------------------------- daily loss
def test_daily_loss_measures_from_the_sessions_starting_equity() -> None:
    loss = daily_loss(
        D("0.10"),
        equity=D("97000"),
        starting_equity=D("100000"),
        broker_daily_pnl=D("-1"),
        fallback_pnl=D("0"),
    )
    assert loss.pnl == D("-3000") and loss.loss == D("3000")
    assert loss.limit == D("10000.00") and loss.used == D("0.3")


def test_daily_loss_falls_back_to_the_broker_then_to_the_journal() -> None:
    broker = daily_loss(
        D("0.05"),
        equity=D("50500"),
        starting_equity=None,
        broker_daily_pnl=D("500"),
        fallback_pnl=D("-9"),
    )
    assert broker.starting_equity == D("50000") and broker.pnl == D("500")
    assert broker.loss == 0 and broker.used == 0
    journal = daily_loss(
        D("0.05"), equity=None, starting_equity=None, broker_daily_pnl=None, fallback_pnl=D("-9")
    )
    assert journal.pnl == D("-9") and journal.limit is None and journal.used is None


# ---------------------------------------------------------------------------------- summary
def _daily_row(day: date, start: str, end: str) -> dict:
    return {
        "day": day,
        "starting_equity": D(start),
        "ending_equity": D(end),
        "realized": D(0),
        "unrealized": D(0),
        "equity_change": D(end) - D(start),
        "trades": 0,
        "max_drawdown": D(0),
        "kill_switch_triggered": False,
    }


def _summary(**kw: object):
    now = START + timedelta(hours=15)
    exposure = _exposure(("NVDA", "semiconductors", "2000"), ("AAPL", "technology", "1000"))
    exposure["unrealized_pnl"] = [D("150"), D("-50")]
    fields: dict = {
        "now": now,
        "start": START,
        "exposure": exposure,
        "by_day": pd.DataFrame(
            [{"day": START.date(), "trades": 1, "wins": 0, "losses": 1, "realized": D("-300")}],
            columns=REALIZED_DAY_COLUMNS,
        ),
        "by_minute": pd.DataFrame(
            [{"at": START + timedelta(hours=14), "trades": 1, "realized": D("-300")}],
            columns=REALIZED_MINUTE_COLUMNS,
        ),
        "daily_rows": pd.DataFrame(columns=DAILY_PNL_COLUMNS),
        "daily_loss_limit": D("0.10"),
    }
    fields.update(kw)
    return summarize(**fields)


def test_summary_with_an_account_measures_from_the_days_starting_equity() -> None:
    rows = pd.DataFrame(
        [_daily_row(date(2024, 5, 3), "99000", "100000"), _daily_row(START.date(), "100000", "0")],
        columns=DAILY_PNL_COLUMNS,
    )
    view = _summary(daily_rows=rows, account_equity=D("98500"), account_daily_pnl=D("-7"))
    assert view.equity == D("98500")
    assert view.loss.pnl == D("-1500") and view.loss.limit == D("10000.00")
    assert view.gross == D("3000") and view.unrealized == D("100")
    assert list(view.intraday["total"]) == [D(0), D("-300"), D("-200")]
    assert list(view.daily["pnl"]) == [D("1000"), D("-100000")]
    assert view.has_pnl


def test_summary_without_an_account_uses_the_journal() -> None:
    view = _summary()
    assert view.equity is None
    assert view.loss.pnl == D("-200")  # realized today plus unrealized
    assert view.loss.limit is None and view.loss.used is None
    rows = pd.DataFrame([_daily_row(START.date(), "50000", "49000")], columns=DAILY_PNL_COLUMNS)
    recorded = _summary(daily_rows=rows)
    assert recorded.equity == D("49000")
    assert recorded.loss.pnl == D("-1000") and recorded.loss.limit == D("5000.00")


def test_summary_of_an_empty_store_has_nothing_to_draw() -> None:
    view = _summary(
        exposure=_exposure(),
        by_day=pd.DataFrame(columns=REALIZED_DAY_COLUMNS),
        by_minute=pd.DataFrame(columns=REALIZED_MINUTE_COLUMNS),
    )
    assert not view.has_pnl
    assert view.gross == 0 and view.loss.pnl == 0 and view.loss.loss == 0
