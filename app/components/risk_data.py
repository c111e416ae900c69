"""The Risk Dashboard's data shaping: exposure by sector, the intraday and daily P&L curves,
today's loss against the daily loss limit, the dashboard's summary and the drawdown series.

Pure functions: they take DataFrames from :class:`db.queries.risk.RiskQueries` (money as
Decimal) and plain values, and return DataFrames, Series or small dataclasses; nothing here calls
Streamlit. Money stays Decimal; the figure builders in :mod:`app.components.risk` turn it into
floats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

ZERO = Decimal(0)

INTRADAY_COLUMNS = ["at", "realized", "total"]
DAILY_CURVE_COLUMNS = ["day", "pnl", "cum_pnl", "source"]
SECTOR_COLUMNS = ["sector", "gross_value", "symbols"]


def decimal_sum(values: Iterable[Any]) -> Decimal:
    """Sum of Decimal values (None and NaN count as zero)."""
    total = ZERO
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            continue
        total += Decimal(str(v)) if not isinstance(v, Decimal) else v
    return total


def exposure_by_sector(exposure: pd.DataFrame) -> pd.DataFrame:
    """Gross value per sector, largest first (:data:`SECTOR_COLUMNS`; Decimal values)."""
    if exposure.empty:
        return pd.DataFrame(columns=SECTOR_COLUMNS)
    rows = []
    for sector, group in exposure.groupby("sector", sort=False):
        rows.append(
            {
                "sector": sector,
                "gross_value": decimal_sum(group["gross_value"]),
                "symbols": ", ".join(sorted(group["symbol"])),
            }
        )
    rows.sort(key=lambda r: (-r["gross_value"], r["sector"]))
    return pd.DataFrame(rows, columns=SECTOR_COLUMNS)


def intraday_curve(
    by_minute: pd.DataFrame, start: datetime, now: datetime, unrealized: Decimal = ZERO
) -> pd.DataFrame:
    """Today's cumulative P&L (:data:`INTRADAY_COLUMNS`): zero at ``start``, realized P&L
    accumulated minute by minute, and a last point at ``now`` that adds the open positions'
    unrealized P&L (``total``; equal to ``realized`` at every other point)."""
    rows: list[dict[str, Any]] = [{"at": start, "realized": ZERO, "total": ZERO}]
    running = ZERO
    for at, realized in zip(by_minute.get("at", []), by_minute.get("realized", []), strict=True):
        running += realized
        rows.append({"at": at, "realized": running, "total": running})
    last = rows[-1]["at"]
    rows.append({"at": max(now, last), "realized": running, "total": running + unrealized})
    return pd.DataFrame(rows, columns=INTRADAY_COLUMNS)


def daily_curve(realized_by_day: pd.DataFrame, daily_rows: pd.DataFrame) -> pd.DataFrame:
    """P&L per UTC day and its running total (:data:`DAILY_CURVE_COLUMNS`), oldest first.

    A day the executor recorded (a ``daily_pnl`` row) counts its equity change, unrealized moves
    included (``source`` "equity"); any other day counts the realized P&L of the trades that
    closed on it ("realized").
    """
    days: dict[date, tuple[Decimal, str]] = {}
    for day, realized in zip(
        realized_by_day.get("day", []), realized_by_day.get("realized", []), strict=True
    ):
        days[day] = (realized, "realized")
    for day, change in zip(
        daily_rows.get("day", []), daily_rows.get("equity_change", []), strict=True
    ):
        days[day] = (change, "equity")
    rows = []
    running = ZERO
    for day in sorted(days):
        pnl, source = days[day]
        running += pnl
        rows.append({"day": day, "pnl": pnl, "cum_pnl": running, "source": source})
    return pd.DataFrame(rows, columns=DAILY_CURVE_COLUMNS)


@dataclass(frozen=True, slots=True)
class DailyLoss:
    """Today's P&L against the daily loss limit, as the kill switch measures it: equity now
    minus the session's starting equity."""

    pnl: Decimal
    starting_equity: Decimal | None
    #: The limit in dollars (``daily_loss_limit`` x starting equity); None when that is unknown.
    limit: Decimal | None

    @property
    def loss(self) -> Decimal:
        return max(-self.pnl, ZERO)

    @property
    def used(self) -> Decimal | None:
        """Share of the limit used (1 = reached), None without a limit."""
        return None if self.limit is None else self.loss / self.limit


def daily_loss(
    limit_fraction: Decimal,
    *,
    equity: Decimal | None,
    starting_equity: Decimal | None,
    broker_daily_pnl: Decimal | None,
    fallback_pnl: Decimal,
) -> DailyLoss:
    """Today's loss and limit from what is known: the session's starting equity (today's
    ``daily_pnl`` row), else equity minus the broker's day P&L; without equity, ``fallback_pnl``
    (for example realized today plus unrealized) is the day's P&L and the limit is unknown."""
    start = starting_equity
    if start is None and equity is not None and broker_daily_pnl is not None:
        start = equity - broker_daily_pnl
    pnl = equity - start if equity is not None and start is not None else fallback_pnl
    limit = limit_fraction * start if start is not None and start > 0 else None
    return DailyLoss(pnl, start, limit)


@dataclass(frozen=True, slots=True)
class RiskSummary:
    """What the Risk Dashboard shows, derived from the read views (see :func:`summarize`)."""

    #: The account's equity, else the latest daily row's ending equity; None when neither exists.
    equity: Decimal | None
    loss: DailyLoss
    #: Sum of the open positions' absolute market values.
    gross: Decimal
    unrealized: Decimal
    intraday: pd.DataFrame  # :func:`intraday_curve`
    daily: pd.DataFrame  # :func:`daily_curve`

    @property
    def has_pnl(self) -> bool:
        """Anything closed or open to draw a P&L curve of."""
        return len(self.daily) > 0 or len(self.intraday) > 2 or self.unrealized != 0


def summarize(
    *,
    now: datetime,
    start: datetime,
    exposure: pd.DataFrame,
    by_day: pd.DataFrame,
    by_minute: pd.DataFrame,
    daily_rows: pd.DataFrame,
    daily_loss_limit: Decimal,
    account_equity: Decimal | None = None,
    account_daily_pnl: Decimal | None = None,
) -> RiskSummary:
    """Equity, today's loss against its limit, gross exposure and the P&L curves from
    :class:`~db.queries.risk.RiskQueries` frames and the executor's account snapshot (if any).
    ``start`` is the beginning of today (UTC); ``daily_rows`` are ``daily_pnl`` rows."""
    unrealized = decimal_sum(exposure["unrealized_pnl"])
    today = daily_rows[daily_rows["day"] == now.date()]
    equity = account_equity
    if equity is None and len(daily_rows) > 0:
        equity = daily_rows["ending_equity"].iloc[-1]
    if len(today) > 0:  # what the executor recorded for the day, unrealized moves included
        fallback = today["equity_change"].iloc[0]
    else:
        fallback = decimal_sum(by_minute["realized"]) + unrealized
    loss = daily_loss(
        daily_loss_limit,
        equity=account_equity,
        starting_equity=today["starting_equity"].iloc[0] if len(today) > 0 else None,
        broker_daily_pnl=account_daily_pnl,
        fallback_pnl=fallback,
    )
    return RiskSummary(
        equity=equity,
        loss=loss,
        gross=decimal_sum(exposure["gross_value"]),
        unrealized=unrealized,
        intraday=intraday_curve(by_minute, start, now, unrealized),
        daily=daily_curve(by_day, daily_rows),
    )


def drawdown(cumulative: pd.Series) -> pd.Series:
    """Distance below the running peak of a cumulative P&L series (zero or negative); the peak
    starts at zero, so losses from the first day count."""
    values = pd.Series([float(v) for v in cumulative], index=cumulative.index, dtype=float)
    peak = values.cummax().clip(lower=0.0)
    return values - peak


__all__ = [
    "DAILY_CURVE_COLUMNS",
    "INTRADAY_COLUMNS",
    "SECTOR_COLUMNS",
    "DailyLoss",
    "RiskSummary",
    "daily_curve",
    "daily_loss",
    "decimal_sum",
    "drawdown",
    "exposure_by_sector",
    "intraday_curve",
    "summarize",
]
