"""The Trade Journal's figure builders: a DataFrame from :mod:`db.queries.journal` in, a plotly
figure out, no Streamlit; and how a missing value is shown, which the tables in
:mod:`app.components.journal` share.

Money arrives as Decimals; the figures plot floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from db.queries.journal import WIN_RATE_KEYS

#: How a missing value (no strategy, no exit reason yet ...) is shown.
NONE_LABEL = "(none)"
#: Average slippage target for limit orders, in bps (seed 000 success metrics).
LIMIT_SLIPPAGE_TARGET_BPS = 5
WIN, LOSS, FLAT = "#2e7d32", "#c62828", "#9e9e9e"
EXPECTED, ACTUAL = "#90a4ae", "#1565c0"


def is_missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and pd.isna(value))


def label(value: Any) -> str:
    """A stored value as shown; missing ones (``None``, NaN, empty) as :data:`NONE_LABEL`."""
    return NONE_LABEL if is_missing(value) else str(value)


def _floats(values: Sequence[Any]) -> list[float | None]:
    return [None if is_missing(v) else float(v) for v in values]


def _layout(fig: go.Figure, height: int = 360, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.15},
        **kwargs,
    )
    return fig


def empty_figure(message: str) -> go.Figure:
    """A blank figure saying why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=200)


# ---------------------------------------------------------------------------------- figures
def build_win_rate_figure(df: pd.DataFrame) -> go.Figure:
    """Win rate (%) of closed trades by strategy, sector and regime, one panel each, from
    :meth:`JournalQueries.win_rates`; bars say how many trades they stand for."""
    if df.empty:
        return empty_figure("No closed trades match the filters.")
    keys = [k for k in WIN_RATE_KEYS if (df["key"] == k).any()]
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[f"by {k}" for k in keys])
    for col, key in enumerate(keys, start=1):
        part = df[df["key"] == key]
        rates = [None if r is None else float(r) * 100 for r in part["win_rate"]]
        fig.add_trace(
            go.Bar(
                x=[label(g) for g in part["group"]],
                y=rates,
                text=[f"{r:.0f}% · {n}" for r, n in zip(rates, part["trades"], strict=True)],
                textposition="auto",
                customdata=list(
                    zip(part["wins"], part["losses"], _floats(part["total_pnl"]), strict=True)
                ),
                hovertemplate="%{x}: %{y:.1f}% won<br>%{customdata[0]} won, "
                "%{customdata[1]} lost<br>P&L $%{customdata[2]:,.2f}<extra></extra>",
                marker_color=ACTUAL,
                name=key,
            ),
            row=1,
            col=col,
        )
    fig.update_yaxes(range=[0, 100], ticksuffix="%")
    return _layout(fig, showlegend=False)


def build_holding_period_figure(df: pd.DataFrame) -> go.Figure:
    """Closed trades per holding-period bucket, stacked as won, lost and flat, from
    :meth:`JournalQueries.holding_periods`."""
    if df.empty or int(df["trades"].sum()) == 0:
        return empty_figure("No closed trades match the filters.")
    flat = df["trades"] - df["wins"] - df["losses"]
    fig = go.Figure()
    for name, values, color in (
        ("won", df["wins"], WIN),
        ("lost", df["losses"], LOSS),
        ("flat", flat, FLAT),
    ):
        fig.add_trace(go.Bar(x=list(df["bucket"]), y=list(values), name=name, marker_color=color))
    fig.update_layout(barmode="stack", xaxis_title="held", yaxis_title="closed trades")
    return _layout(fig)


def build_slippage_figure(df: pd.DataFrame) -> go.Figure:
    """Expected versus actual fill notional by order type and side, with the slippage in bps
    (positive is a cost) on the right axis and the limit-order target; from
    :meth:`JournalQueries.slippage`."""
    if df.empty:
        return empty_figure("No fills with an expected price in the date range.")
    x = [f"{t} {s}" for t, s in zip(df["order_type"], df["side"], strict=True)]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=x, y=_floats(df["expected_notional"]), name="expected", marker_color=EXPECTED),
        secondary_y=False,
    )
    fig.add_trace(
        go.Bar(x=x, y=_floats(df["actual_notional"]), name="actual", marker_color=ACTUAL),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_floats(df["slippage_bps"]),
            name="slippage (bps)",
            mode="markers+text",
            text=[f"{v:.1f}" if v is not None else "" for v in _floats(df["slippage_bps"])],
            textposition="top center",
            marker={"size": 12, "color": LOSS},
        ),
        secondary_y=True,
    )
    fig.add_hline(
        y=LIMIT_SLIPPAGE_TARGET_BPS,
        line_dash="dot",
        secondary_y=True,
        annotation_text=f"limit-order target {LIMIT_SLIPPAGE_TARGET_BPS} bps",
        annotation_position="top left",
    )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="notional ($)", secondary_y=False)
    fig.update_yaxes(title_text="slippage (bps)", secondary_y=True)
    return _layout(fig)


def build_commission_figure(df: pd.DataFrame) -> go.Figure:
    """Per day: gross realized P&L and commissions (negative) as bars, and the cumulative
    net P&L on the right axis; from :meth:`JournalQueries.commission_impact`."""
    if df.empty:
        return empty_figure("No closed trades or fills in the date range.")
    days = list(df["day"])
    gross, fees = _floats(df["gross_pnl"]), _floats(df["commission"])
    net = pd.Series(_floats(df["net_pnl"]), dtype="float64").cumsum()
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=days, y=gross, name="gross P&L", marker_color=ACTUAL))
    fig.add_trace(
        go.Bar(x=days, y=[-(v or 0.0) for v in fees], name="commission", marker_color=LOSS)
    )
    fig.add_trace(
        go.Scatter(x=days, y=list(net), name="cumulative net P&L", mode="lines"),
        secondary_y=True,
    )
    fig.update_layout(barmode="relative")
    fig.update_yaxes(title_text="per day ($)", secondary_y=False)
    fig.update_yaxes(title_text="cumulative net ($)", secondary_y=True)
    return _layout(fig)


def build_turnover_figure(df: pd.DataFrame) -> go.Figure:
    """Per day: traded notional as bars and, where the day's equity is known, turnover
    (notional over equity, %) on the right axis; from :meth:`JournalQueries.turnover`."""
    if df.empty:
        return empty_figure("No trades or fills in the date range.")
    days = list(df["day"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=days,
            y=_floats(df["notional"]),
            name="notional traded",
            marker_color=ACTUAL,
            customdata=list(zip(df["trades_opened"], df["fills"], strict=True)),
            hovertemplate="%{x}: $%{y:,.0f}<br>%{customdata[0]} trades opened, "
            "%{customdata[1]} fills<extra></extra>",
        ),
        secondary_y=False,
    )
    turnover = [None if v is None else v * 100 for v in _floats(df["turnover"])]
    if any(v is not None for v in turnover):
        fig.add_trace(
            go.Scatter(x=days, y=turnover, name="turnover (% of equity)", mode="lines+markers"),
            secondary_y=True,
        )
    fig.update_yaxes(title_text="notional ($)", secondary_y=False)
    fig.update_yaxes(title_text="% of equity", secondary_y=True)
    return _layout(fig)


__all__ = [
    "LIMIT_SLIPPAGE_TARGET_BPS",
    "NONE_LABEL",
    "build_commission_figure",
    "build_holding_period_figure",
    "build_slippage_figure",
    "build_turnover_figure",
    "build_win_rate_figure",
    "empty_figure",
    "is_missing",
    "label",
]
