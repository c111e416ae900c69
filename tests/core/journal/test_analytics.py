"""Journal analytics over hand-made trades, with numbers worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.domain import Direction, InstrumentType, TradeExecution, TradeStatus, TradeType
from core.journal.analytics import (
    ALL_TRADES,
    summary,
    trade_stats,
    win_loss_by,
)
from tests.core.journal.helpers import T0, D

STOCK, ETF = InstrumentType.STOCK, InstrumentType.LEVERAGED_ETF


def _trade(
    n: int,
    strategy: str | None,
    sector: str | None,
    regime: str | None,
    instrument: InstrumentType,
    pnl: str | None,
    held: timedelta | None,
    *,
    direction: Direction = Direction.LONG,
    entry: str = "50",
    exit_: str | None = None,
    shares: str = "10",
) -> TradeExecution:
    closed = held is not None
    return TradeExecution(
        ticker=f"T{n}",
        direction=direction,
        trade_type=TradeType.DAY,
        entry_price=D(entry),
        shares=D(shares),
        entry_time=T0,
        instrument_type=instrument,
        exit_price=D(exit_) if exit_ is not None else None,
        status=TradeStatus.CLOSED if closed else TradeStatus.OPEN,
        pnl=D(pnl) if pnl is not None else None,
        exit_time=T0 + held if held is not None else None,
        strategy=strategy,
        sector=sector,
        regime=regime,
        id=n,
    )


H = timedelta(hours=1)
TRADES = [
    _trade(1, "ema_cloud", "technology", "risk_on", STOCK, "100", H),
    _trade(2, "ema_cloud", "technology", "risk_on", ETF, "-40", 3 * H),
    _trade(3, "ema_cloud", "energy", "risk_off", STOCK, "0", H / 2),
    _trade(4, "api", "technology", None, STOCK, "25.50", timedelta(days=2)),
    _trade(5, "api", None, "risk_off", ETF, "10", None),  # open: partial exit only
    _trade(6, "ema_cloud", "financials", "risk_on", STOCK, None, H / 4, exit_="52"),  # +20
]


def _figures(group) -> tuple:
    return (
        group.trades,
        group.wins,
        group.losses,
        group.win_rate,
        group.total_pnl,
        group.average_pnl,
        group.average_holding,
    )


def test_trade_stats_pnl_return_and_holding() -> None:
    closed = trade_stats(TRADES[5])
    assert closed.closed and closed.is_win and not closed.is_loss
    assert closed.pnl == 20 and closed.pnl_pct == D("0.04")
    assert closed.holding == timedelta(minutes=15)
    still_open = trade_stats(TRADES[4])
    assert not still_open.closed and not still_open.is_win
    assert still_open.pnl == 10 and still_open.holding is None and still_open.pnl_pct is None
    short = trade_stats(
        _trade(7, None, None, None, STOCK, None, H, direction=Direction.SHORT, exit_="48")
    )
    assert short.pnl == 20 and short.is_win
    breakeven = trade_stats(TRADES[2])
    assert not breakeven.is_win and not breakeven.is_loss and breakeven.pnl_pct == 0


def test_win_loss_by_strategy() -> None:
    groups = win_loss_by(TRADES, "strategy")
    assert list(groups) == ["api", "ema_cloud"]
    assert _figures(groups["api"]) == (1, 1, 0, 1, D("25.50"), D("25.50"), timedelta(days=2))
    # 100 - 40 + 0 + 20 = 80 over 4; holding (1h + 3h + 30m + 15m) / 4 = 71m15s
    assert _figures(groups["ema_cloud"]) == (
        4,
        2,
        1,
        D("0.5"),
        D(80),
        D(20),
        timedelta(minutes=71, seconds=15),
    )
    assert groups["ema_cloud"].breakeven == 1 and groups["ema_cloud"].key == "ema_cloud"


def test_win_loss_by_sector() -> None:
    groups = win_loss_by(TRADES, "sector")
    assert list(groups) == ["energy", "financials", "technology"]  # the open trade has no sector
    tech = groups["technology"]
    assert _figures(tech) == (
        3,
        2,
        1,
        D(2) / D(3),
        D("85.50"),
        D("28.50"),
        timedelta(hours=52) / 3,
    )
    assert _figures(groups["energy"]) == (1, 0, 0, 0, 0, 0, H / 2)
    assert groups["financials"].total_pnl == 20


def test_win_loss_by_regime_puts_unknown_last() -> None:
    groups = win_loss_by(TRADES, "regime")
    assert list(groups) == ["risk_off", "risk_on", None]
    assert (groups["risk_on"].trades, groups["risk_on"].total_pnl) == (3, D(80))
    assert (groups["risk_off"].trades, groups["risk_off"].total_pnl) == (1, D(0))
    assert (groups[None].trades, groups[None].wins, groups[None].total_pnl) == (1, 1, D("25.50"))


def test_win_loss_by_instrument_type() -> None:
    groups = win_loss_by(TRADES, "instrument_type")
    assert list(groups) == ["leveraged_etf", "stock"]
    assert _figures(groups["leveraged_etf"]) == (1, 0, 1, 0, D(-40), D(-40), 3 * H)
    # 100 + 0 + 25.50 + 20 = 145.50 over 4
    stock = groups["stock"]
    assert (stock.trades, stock.wins, stock.losses, stock.win_rate) == (4, 3, 0, D("0.75"))
    assert (stock.total_pnl, stock.average_pnl) == (D("145.50"), D("36.375"))


def test_grouping_rejects_other_keys_and_handles_no_trades() -> None:
    with pytest.raises(ValueError, match="ticker"):
        win_loss_by(TRADES, "ticker")  # type: ignore[arg-type]
    assert win_loss_by([], "strategy") == {}
    assert win_loss_by([TRADES[4]], "strategy") == {}  # open trades are not counted


def test_summary() -> None:
    s = summary(TRADES)
    assert s.closed.key == ALL_TRADES and s.open_trades == 1
    # five closed: 100, -40, 0, 25.50, 20 -> 105.50; holding 52h45m / 5 = 10h33m
    assert _figures(s.closed) == (
        5,
        3,
        1,
        D("0.6"),
        D("105.50"),
        D("21.1"),
        timedelta(hours=10, minutes=33),
    )
    assert s.average_win == D("48.5") and s.average_loss == D(-40)
    assert s.profit_factor == D("3.6375")
    empty = summary([])
    assert (empty.closed.trades, empty.closed.win_rate, empty.closed.average_holding) == (
        0,
        0,
        None,
    )
    assert empty.average_win is None and empty.profit_factor is None


def test_sums_are_exact() -> None:
    tiny = [
        _trade(i, "s", None, None, STOCK, pnl, H)
        for i, pnl in enumerate(["1E+30", "0.000000000000000000000000001", "-1E+30"])
    ]
    assert win_loss_by(tiny, "strategy")["s"].total_pnl == Decimal("1E-27")
