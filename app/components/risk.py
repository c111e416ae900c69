"""The Risk Dashboard's charts: exposure against the limits, P&L, drawdown and the limit gauges.

Pure functions: they take DataFrames from :class:`db.queries.risk.RiskQueries` and
:mod:`app.components.risk_data` (money as Decimal) and plain values, and return plotly figures;
nothing here calls Streamlit. Money turns into floats only inside the figure builders. Every
builder handles empty input with a figure that says what is missing, so a page is never left with
a blank chart.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.components.risk_data import drawdown, exposure_by_sector
from db.queries.risk import UNCLASSIFIED

GREEN = "#2e9e5b"
RED = "#d64545"
GREY = "#9aa0a6"
BLUE = "#3b6fd8"
LIMIT = "#e5484d"
NEUTRAL = "#5b8def"  # a gauge's bar below its limit


# ---------------------------------------------------------------------------------- helpers
# Figures are built in one go from plain dicts: plotly validates a whole figure once, while
# make_subplots, add_trace and add_hline each copy and re-validate it (about 20x slower).


def _floats(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values]


# Long series go to plotly as numpy arrays: lists (of Timestamps above all) are deep-copied
# element by element when a figure is validated.
def _series(values: Iterable[Any]) -> np.ndarray:
    return np.asarray(_floats(values), dtype=float)


def _times(values: Iterable[Any]) -> np.ndarray:
    """Instants or dates as naive UTC ``datetime64`` (what plotly draws without shifting)."""
    stamps = pd.to_datetime(list(values), utc=True)
    return stamps.tz_convert(None).to_numpy()


def _pct(fraction: Decimal | float) -> float:
    return float(fraction) * 100


def _note(text: str, x: float = 0.5, y: float = 0.5, **where: Any) -> dict[str, Any]:
    """A text annotation (in paper coordinates unless ``where`` says otherwise); without a
    color it takes the theme's text color, readable on light and dark backgrounds."""
    font: dict[str, Any] = {"size": where.get("size", 13)}
    if where.get("color"):
        font["color"] = where["color"]
    return {
        "text": text,
        "showarrow": False,
        "xref": where.get("xref", "paper"),
        "yref": where.get("yref", "paper"),
        "x": x,
        "y": y,
        "font": font,
        "xanchor": where.get("xanchor", "center"),
        "yanchor": where.get("yanchor", "middle"),
    }


def _limit(y: float, axis: str, name: str, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dashed horizontal limit line across the plot of axis ``x{axis}``/``y{axis}``, and
    its label."""
    shape = {
        "type": "line",
        "name": name,
        "xref": f"x{axis} domain",
        "x0": 0,
        "x1": 1,
        "yref": f"y{axis}",
        "y0": y,
        "y1": y,
        "line": {"color": LIMIT, "dash": "dash", "width": 2},
    }
    note = _note(
        label,
        1.0,
        y,
        xref=f"x{axis} domain",
        yref=f"y{axis}",
        xanchor="right",
        yanchor="bottom",
        color=LIMIT,
        size=12,
    )
    note["bgcolor"] = "rgba(128,128,128,0.15)"
    return shape, note


def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        "hovermode": "x unified",
    }
    layout.update(extra)
    return layout


def _empty(title: str, height: int, message: str) -> go.Figure:
    hidden = {"visible": False}
    note = _note(message, color=GREY)
    layout = _layout(title, height, xaxis=hidden, yaxis=hidden, annotations=[note])
    return go.Figure(layout=layout)


# ---------------------------------------------------------------------------------- figures
def build_exposure_figure(
    exposure: pd.DataFrame,
    equity: Decimal | float | None,
    max_single: Decimal | float,
    max_sector: Decimal | float,
) -> go.Figure:
    """Gross exposure by symbol (left) and by sector (right) against the single-name and sector
    limits.

    ``exposure`` has ``symbol``, ``sector`` and ``gross_value`` columns (see
    :meth:`RiskQueries.exposure`). With a positive ``equity`` the bars are % of equity and the
    limits (fractions of equity) are dashed lines named "single-name limit" and "sector limit";
    without it the bars are dollars and the limits cannot be drawn. Bars above their limit are
    red; unclassified symbols are grey (no sector limit applies to them).
    """
    title = "Exposure against the limits"
    if exposure.empty:
        return _empty(title, 360, "No open positions: nothing is exposed.")
    base = float(equity) if equity is not None and float(equity) > 0 else None
    unit = "% of equity" if base is not None else "$"

    def scaled(values: Iterable[Any]) -> list[float]:
        out = _floats(values)
        return [v / base * 100 for v in out] if base is not None else out

    single = _pct(max_single) if base is not None else None
    sector_cap = _pct(max_sector) if base is not None else None
    symbol_y = scaled(exposure["gross_value"])
    sectors = exposure_by_sector(exposure)
    sector_y = scaled(sectors["gross_value"])
    sector_colors = [
        GREY if name == UNCLASSIFIED else RED if sector_cap is not None and y > sector_cap else BLUE
        for name, y in zip(sectors["sector"], sector_y, strict=True)
    ]
    data = [
        {
            "type": "bar",
            "name": "Symbol exposure",
            "x": list(exposure["symbol"]),
            "y": symbol_y,
            "marker": {
                "color": [RED if single is not None and y > single else BLUE for y in symbol_y]
            },
            "customdata": list(exposure["sector"]),
            "hovertemplate": f"%{{x}} (%{{customdata}}): %{{y:,.2f}} {unit}<extra></extra>",
        },
        {
            "type": "bar",
            "name": "Sector exposure",
            "x": list(sectors["sector"]),
            "y": sector_y,
            "xaxis": "x2",
            "yaxis": "y2",
            "marker": {"color": sector_colors},
            "customdata": list(sectors["symbols"]),
            "hovertemplate": f"%{{x}}: %{{y:,.2f}} {unit}<br>%{{customdata}}<extra></extra>",
        },
    ]
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for limit, axis, name in ((single, "", "single-name limit"), (sector_cap, "2", "sector limit")):
        if limit is not None:
            shape, note = _limit(limit, axis, name, f"{name} {limit:g}%")
            shapes.append(shape)
            notes.append(note)
    if base is None:
        unknown = "Equity unknown (no account snapshot yet): limits not drawn"
        notes.append(_note(unknown, 0.5, 1.1, color=GREY))
    top = max([*symbol_y, *sector_y, single or 0.0, sector_cap or 0.0]) * 1.15
    layout = _layout(
        title,
        360,
        showlegend=False,
        hovermode="closest",
        xaxis={"domain": [0, 0.56], "anchor": "y", "title": {"text": "By symbol"}},
        yaxis={"title": {"text": unit}, "anchor": "x", "range": [0, top]},
        xaxis2={"domain": [0.64, 1], "anchor": "y2", "title": {"text": "By sector"}},
        yaxis2={"anchor": "x2", "range": [0, top]},
        shapes=shapes,
        annotations=notes,
    )
    return go.Figure(data=data, layout=layout)


def build_pnl_figure(intraday: pd.DataFrame, daily: pd.DataFrame) -> go.Figure:
    """Today's cumulative P&L (top) and P&L by day with its running total (bottom).

    ``intraday`` comes from :func:`~app.components.risk_data.intraday_curve` (``at``,
    ``realized``, ``total``), ``daily`` from :func:`~app.components.risk_data.daily_curve`
    (``day``, ``pnl``, ``cum_pnl``).
    """
    data: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    if len(intraday) > 0:
        times = _times(intraday["at"])
        realized = _series(intraday["realized"])
        total = _series(intraday["total"])
        data.append(
            {
                "type": "scatter",
                "name": "Realized today",
                "x": times,
                "y": realized,
                "mode": "lines",
                "line": {"shape": "hv", "color": BLUE},
            }
        )
        data.append(
            {
                "type": "scatter",
                "name": "Incl. unrealized (now)",
                "x": times[-2:],
                "y": np.array([realized[-2], total[-1]]) if len(times) > 1 else total,
                "mode": "lines+markers",
                "line": {"dash": "dot", "color": GREEN if total[-1] >= 0 else RED},
            }
        )
    else:
        notes.append(_note("No P&L today yet.", xref="x domain", yref="y domain", color=GREY))
    if len(daily) > 0:
        days = _times(daily["day"])
        pnl = _series(daily["pnl"])
        data.append(
            {
                "type": "bar",
                "name": "Day P&L",
                "x": days,
                "y": pnl,
                "xaxis": "x2",
                "yaxis": "y2",
                "marker": {"color": np.where(pnl >= 0, GREEN, RED)},
            }
        )
        data.append(
            {
                "type": "scatter",
                "name": "Cumulative",
                "x": days,
                "y": _series(daily["cum_pnl"]),
                "xaxis": "x2",
                "yaxis": "y2",
                "mode": "lines+markers",
                "line": {"color": BLUE},
            }
        )
    else:
        notes.append(
            _note(
                "No closed trades yet: the daily curve starts with the first exit.",
                xref="x2 domain",
                yref="y2 domain",
                color=GREY,
            )
        )
    money_axis = {"tickprefix": "$", "zeroline": True}
    layout = _layout(
        "P&L",
        560,
        xaxis={"anchor": "y", "title": {"text": "Today (UTC)"}},
        yaxis={"domain": [0.6, 1.0], "anchor": "x", **money_axis},
        xaxis2={"anchor": "y2", "title": {"text": "By day"}},
        yaxis2={"domain": [0.0, 0.4], "anchor": "x2", **money_axis},
        annotations=notes,
    )
    return go.Figure(data=data, layout=layout)


def build_drawdown_figure(daily: pd.DataFrame, limit: Decimal | float | None = None) -> go.Figure:
    """Drawdown of the cumulative P&L (``daily["cum_pnl"]`` by ``daily["day"]``) below its running
    peak, in dollars; ``limit`` (dollars, positive) draws the maximum drawdown allowed as a
    dashed line named "drawdown limit"."""
    title = "Drawdown from peak"
    if len(daily) == 0:
        return _empty(title, 300, "No P&L history yet: no drawdown to show.")
    dd = drawdown(daily["cum_pnl"]).to_numpy()
    data = [
        {
            "type": "scatter",
            "name": "Drawdown",
            "x": _times(daily["day"]),
            "y": dd,
            "mode": "lines",
            "fill": "tozeroy",
            "line": {"color": RED},
        }
    ]
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    bottom = min(float(dd.min()), 0.0)
    if limit is not None and float(limit) > 0:
        cap = -float(limit)
        shape, note = _limit(cap, "", "drawdown limit", f"limit -${float(limit):,.0f}")
        shapes.append(shape)
        notes.append(note)
        bottom = min(bottom, cap)
    layout = _layout(
        title,
        300,
        yaxis={"tickprefix": "$", "range": [bottom * 1.1 - 1, max(-bottom * 0.05, 1.0)]},
        shapes=shapes,
        annotations=notes,
    )
    return go.Figure(data=data, layout=layout)


def _steps(top: float) -> list[dict[str, Any]]:
    return [
        {"range": [0, top * 0.5], "color": "rgba(46,158,91,0.25)"},
        {"range": [top * 0.5, top * 0.8], "color": "rgba(224,165,38,0.3)"},
        {"range": [top * 0.8, top], "color": "rgba(214,69,69,0.3)"},
    ]


def build_gauge_figure(
    daily_loss: Decimal | float,
    daily_loss_limit: Decimal | float | None,
    positions: int,
    max_positions: int,
) -> go.Figure:
    """Two gauges: today's loss (dollars, zero when the day is up) against the daily loss limit
    (dollars; None when the day's starting equity is unknown), and concurrent positions against
    the maximum. Each limit is its gauge's threshold line."""
    loss = max(float(daily_loss), 0.0)
    if daily_loss_limit is not None and float(daily_loss_limit) > 0:
        cap = float(daily_loss_limit)
        loss_gauge: dict[str, Any] = {
            "number": {"prefix": "$", "valueformat": ",.0f", "suffix": f" ({loss / cap:.0%})"},
            "title": {"text": f"Daily loss vs limit ${cap:,.0f}"},
            "gauge": {
                "axis": {"range": [0, max(cap, loss) * 1.1]},
                "bar": {"color": RED if loss >= cap else NEUTRAL},
                "steps": _steps(cap),
                "threshold": {"line": {"color": LIMIT, "width": 4}, "value": cap},
            },
        }
    else:
        loss_gauge = {
            "number": {"prefix": "$", "valueformat": ",.0f"},
            "title": {"text": "Daily loss (limit unknown: no starting equity yet)"},
            "gauge": {"axis": {"range": [0, max(loss * 1.5, 1.0)]}, "bar": {"color": NEUTRAL}},
        }
    top = max(max_positions, positions)
    data = [
        {
            "type": "indicator",
            "name": "Daily loss",
            "mode": "gauge+number",
            "value": loss,
            "domain": {"x": [0.0, 0.45], "y": [0, 1]},
            **loss_gauge,
        },
        {
            "type": "indicator",
            "name": "Concurrent positions",
            "mode": "gauge+number",
            "value": positions,
            "number": {"suffix": f" / {max_positions}"},
            "title": {"text": f"Concurrent positions vs max {max_positions}"},
            "domain": {"x": [0.55, 1.0], "y": [0, 1]},
            "gauge": {
                "axis": {"range": [0, top], "dtick": max(1, round(top / 10))},
                "bar": {"color": RED if positions >= max_positions else NEUTRAL},
                "steps": _steps(float(max_positions)),
                "threshold": {"line": {"color": LIMIT, "width": 4}, "value": max_positions},
            },
        },
    ]
    layout = {"height": 260, "margin": {"l": 30, "r": 30, "t": 60, "b": 10}}
    return go.Figure(data=data, layout=layout)


__all__ = [
    "UNCLASSIFIED",
    "build_drawdown_figure",
    "build_exposure_figure",
    "build_gauge_figure",
    "build_pnl_figure",
]
