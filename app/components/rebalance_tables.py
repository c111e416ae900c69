"""The Rebalance Preview page's pure parts: the plan's allocation figure, its tables (allocation,
trades, legs, history, recent plans), the targets table and reading targets from it or from an
uploaded file, and the covariance the risk-based allocation methods need.

Nothing here calls Streamlit: :mod:`app.components.rebalance` lays these out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.components.common import money
from core.domain import ZERO, ValidationError
from core.execution.parent import ParentOrder
from core.rebalance.model import PlanStatus, RebalancePlan
from core.rebalance.targets import (
    TargetError,
    TargetKind,
    TargetPortfolio,
    build_targets,
    parse_targets,
)
from core.service import TradingService

TRADING_DAYS_PER_YEAR = 252

_PLAN_BADGE = {
    PlanStatus.PROPOSED: "orange",
    PlanStatus.APPROVED: "blue",
    PlanStatus.EXECUTING: "blue",
    PlanStatus.COMPLETED: "green",
    PlanStatus.PARTIALLY_COMPLETED: "orange",
    PlanStatus.FAILED: "red",
    PlanStatus.EXPIRED: "gray",
    PlanStatus.CANCELLED: "gray",
}


def when(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(value: Decimal | float | None, places: int = 2) -> str:
    return "—" if value is None else f"{float(value) * 100:.{places}f}%"


def plan_badge(status: PlanStatus) -> str:
    return f":{_PLAN_BADGE[status]}-badge[{status.value.replace('_', ' ')}]"


def _with_cash(weights: Mapping[str, Decimal]) -> dict[str, float]:
    out = {s: float(w) for s, w in sorted(weights.items())}
    out["Cash"] = 1.0 - sum(out.values())
    return out


def build_allocation_figure(
    current: Mapping[str, Decimal], target: Mapping[str, Decimal]
) -> go.Figure:
    """Current and target weights side by side, one pair of bars per symbol, cash last (what
    the weights leave of equity; below zero when the positions are leveraged)."""
    fig = go.Figure()
    if not current and not target:
        fig.add_annotation(text="No allocation yet", showarrow=False, x=0.5, y=0.5)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    now, goal = _with_cash(current), _with_cash(target)
    symbols = [*sorted(set(current) | set(target)), "Cash"]
    for name, weights, color in (("Current", now, "#9aa5b1"), ("Target", goal, "#2e7d32")):
        values = [weights.get(s, 0.0) for s in symbols]
        fig.add_bar(
            name=name,
            x=symbols,
            y=values,
            marker_color=color,
            text=[f"{v:.1%}" for v in values],
            textposition="outside",
            hovertemplate="%{x}: %{y:.2%}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        barmode="group",
        title="Current vs target allocation",
        yaxis={"tickformat": ".0%", "title": "share of equity"},
        legend={"orientation": "h", "y": -0.15},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def allocation_frame(plan: RebalancePlan) -> pd.DataFrame:
    symbols = sorted(set(plan.current_weights) | set(plan.target_weights))
    rows = []
    for s in symbols:
        cur, tgt = plan.current_weights.get(s, ZERO), plan.target_weights.get(s, ZERO)
        change = pct(tgt - cur)
        rows.append({"Symbol": s, "Current": pct(cur), "Target": pct(tgt), "Change": change})
    return pd.DataFrame(rows, columns=["Symbol", "Current", "Target", "Change"])


def trades_frame(plan: RebalancePlan) -> pd.DataFrame:
    """The proposed trades with their estimated costs (numbers as floats for the table)."""
    rows = [
        {
            "#": t.seq,
            "Symbol": t.symbol,
            "Side": t.side.value,
            "Qty": float(t.qty),
            "Ref price": float(t.ref_price),
            "Limit": float(t.limit_price),
            "Notional": float(t.notional),
            "Held": float(t.current_qty),
            "Target qty": float(t.target_qty),
            "Commission": float(t.est_commission),
            "Spread": float(t.est_spread),
            "Impact": float(t.est_impact),
            "Est. cost": float(t.est_cost),
            "Algorithm": t.algorithm,
            "Closes": t.closes_position,
            "Why": t.reason or "",
        }
        for t in plan.trades
    ]
    columns = ["#", "Symbol", "Side", "Qty", "Ref price", "Limit", "Notional", "Held"]
    columns += ["Target qty", "Commission", "Spread", "Impact", "Est. cost", "Algorithm"]
    return pd.DataFrame(rows, columns=[*columns, "Closes", "Why"])


def legs_frame(plan: RebalancePlan) -> pd.DataFrame:
    rows = [
        {
            "#": t.seq,
            "Symbol": t.symbol,
            "Side": t.side.value,
            "Qty": float(t.qty),
            "Filled": float(t.filled_qty),
            "Avg price": None if t.avg_price is None else float(t.avg_price),
            "Status": t.status.value.replace("_", " "),
            "Reason": t.reason or "",
        }
        for t in plan.trades
    ]
    cols = ["#", "Symbol", "Side", "Qty", "Filled", "Avg price", "Status", "Reason"]
    return pd.DataFrame(rows, columns=cols)


def parent_label(parent: ParentOrder) -> str:
    """``TWAP buy 100 SPY: 40 of 100 filled · slices 2/5 · working``."""
    slices = f" · slices {parent.slices_done}/{parent.slices_total}" if parent.slices_total else ""
    avg = f" @ {money(parent.avg_price)}" if parent.avg_price is not None else ""
    return (
        f"{parent.algorithm.upper()} {parent.side.value} {parent.qty} {parent.symbol}: "
        f"{parent.filled_qty} of {parent.qty} filled{avg}{slices} · {parent.status.value}"
    )


def history_frame(plan: RebalancePlan) -> pd.DataFrame:
    rows = [
        {
            "At": when(e.at),
            "From": "—" if e.from_status is None else e.from_status.value,
            "To": e.to_status.value,
            "By": e.by,
            "Reason": e.reason,
        }
        for e in plan.history
    ]
    return pd.DataFrame(rows, columns=["At", "From", "To", "By", "Reason"])


def plans_frame(plans: Sequence[RebalancePlan]) -> pd.DataFrame:
    rows = []
    for p in plans:
        done, total = p.progress
        rows.append(
            {
                "Plan": p.id,
                "Created": when(p.created_at),
                "By": p.created_by,
                "Trigger": p.trigger,
                "Method": p.method,
                "Status": p.status.value.replace("_", " "),
                "Trades": f"{done}/{total}",
                "Est. cost": float(p.est_cost),
                "Turnover": pct(p.turnover),
                "Approved by": p.approved_by or ("autonomous" if p.autonomous else ""),
            }
        )
    cols = ["Plan", "Created", "By", "Trigger", "Method", "Status", "Trades", "Est. cost"]
    return pd.DataFrame(rows, columns=[*cols, "Turnover", "Approved by"])


def plan_option(plan: RebalancePlan) -> str:
    return (
        f"#{plan.id} · {plan.status.value.replace('_', ' ')} · {when(plan.created_at)} · "
        f"{len(plan.trades)} trades"
    )


def editor_targets(rows: pd.DataFrame) -> list[tuple[Any, Any]]:
    """(symbol, value) pairs of the targets table; fully blank rows are skipped, half-filled ones
    are kept so the validation names what is missing."""
    pairs: list[tuple[Any, Any]] = []
    for symbol, value in zip(rows["symbol"], rows["value"], strict=True):
        blank_symbol = symbol is None or (isinstance(symbol, str) and not symbol.strip())
        blank_symbol = blank_symbol or (isinstance(symbol, float) and math.isnan(symbol))
        blank_value = value is None or (isinstance(value, float) and math.isnan(value))
        if blank_symbol and blank_value:
            continue
        pairs.append(("" if blank_symbol else symbol, None if blank_value else value))
    return pairs


def targets_rows(portfolio: TargetPortfolio | None) -> pd.DataFrame:
    values = {} if portfolio is None else portfolio.values
    return pd.DataFrame(
        {"symbol": list(values), "value": [float(v) for v in values.values()]},
        columns=["symbol", "value"],
    ).astype({"symbol": "object", "value": "float64"})


def annual_covariance(closes: Mapping[str, Sequence[Decimal]]) -> dict[str, dict[str, float]]:
    """Annualised covariance of daily returns from each symbol's closes (oldest first), over the
    days all of them have."""
    symbols = sorted(closes)
    n = min((len(closes[s]) for s in symbols), default=0)
    if n < 3:
        raise ValidationError("not enough daily closes to estimate the covariance")
    frame = pd.DataFrame({s: [float(c) for c in closes[s][-n:]] for s in symbols})
    cov = frame.pct_change().dropna().cov() * TRADING_DAYS_PER_YEAR
    return {a: {b: float(cov.loc[a, b]) for b in symbols} for a in symbols}


def read_targets(
    service: TradingService,
    kind: TargetKind,
    rows: pd.DataFrame | None,
    upload: Any | None,
) -> TargetPortfolio:
    """The targets from an uploaded CSV/JSON file, else from the table; :class:`TargetError`
    lists every problem."""
    if upload is not None:
        name = str(upload.name)
        fmt = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        try:
            text = upload.getvalue().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise TargetError([f"{name} is not UTF-8 text"]) from None
        return parse_targets(
            text,
            fmt,
            # a CSV header names its column; a plain JSON mapping takes the kind chosen here
            kind=None if fmt == "csv" else kind,
            known_symbols=frozenset(service.market.symbols()),
            leverage_limit=service.profile.leverage_limit,
            source=f"file:{name}",
        )
    pairs = editor_targets(rows if rows is not None else targets_rows(None))
    if not pairs:
        raise TargetError(["no targets given: add a symbol and a value, or upload a file"])
    # pairs rather than a mapping, so a symbol given twice is reported instead of collapsed
    return build_targets(
        pairs,
        kind=kind,
        known_symbols=frozenset(service.market.symbols()),
        leverage_limit=service.profile.leverage_limit,
        source="dashboard",
    )


__all__ = [
    "allocation_frame",
    "annual_covariance",
    "build_allocation_figure",
    "editor_targets",
    "history_frame",
    "legs_frame",
    "parent_label",
    "plan_badge",
    "plan_option",
    "plans_frame",
    "read_targets",
    "targets_rows",
    "trades_frame",
]
