"""Active Positions: the live book (P&L, entry, stop, target, time in trade), the P&L chart,
and closing one position or all of them (reduce-only market orders sent as commands)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.common import confirm_dialog, confirmation, money, send_command
from app.runtime import Runtime
from core.domain import CommandType
from core.users import Action, User
from db.queries.positions import PositionTotals, mark_positions

POSITIONS_REFRESH_S = 2.0
QUOTE_TIMEOUT_S = 1.0
CLOSE_ONE_KEY = "positions_close_one"
CLOSE_ALL_KEY = "positions_close_all"


# ---------------------------------------------------------------------------------- pure functions
def held_for(delta: timedelta | None) -> str:
    """A time in trade: ``45s``, ``12m``, ``3h 05m``, ``2d 4h``."""
    if delta is None or pd.isna(delta):
        return "n/a"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def close_payload(symbol: str, qty: Decimal) -> dict[str, Any]:
    """The manual-order payload that flattens a position of signed ``qty``."""
    return {
        "symbol": symbol,
        "side": "sell" if qty > 0 else "buy",
        "qty": format(abs(qty), "f"),
        "reduce_only": True,
    }


def closable(frame: pd.DataFrame) -> pd.DataFrame:
    """Positions with no close already working for their whole quantity."""
    if frame.empty:
        return frame
    keep = [abs(q) > c for q, c in zip(frame["qty"], frame["closing_qty"], strict=True)]
    return frame[keep]


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: exact values, with the time in trade as text."""
    shown = frame.drop(columns=["updated_at"]).copy()
    shown["time_in_trade"] = [held_for(d) for d in frame["time_in_trade"]]
    return shown


def build_pnl_figure(frame: pd.DataFrame) -> go.Figure:
    """Unrealized P&L per position (green gains, red losses); unmarked positions are left out."""
    marked = frame[frame["unrealized_pnl"].notna()] if not frame.empty else frame
    symbols = list(marked["symbol"]) if not marked.empty else []
    pnl = [float(v) for v in marked["unrealized_pnl"]] if not marked.empty else []
    figure = go.Figure(
        go.Bar(
            x=symbols,
            y=pnl,
            marker_color=["#2e7d32" if v >= 0 else "#c62828" for v in pnl],
            hovertemplate="%{x}: %{y:$,.2f}<extra></extra>",
        )
    )
    figure.update_layout(
        height=220,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Unrealized P&L", "font": {"size": 14}},
        yaxis={"tickprefix": "$", "zeroline": True},
        showlegend=False,
    )
    return figure


COLUMNS = {
    "symbol": st.column_config.TextColumn("Symbol", pinned=True),
    "instrument_type": st.column_config.TextColumn("Instrument"),
    "side": st.column_config.TextColumn("Side"),
    "qty": st.column_config.NumberColumn("Qty"),
    "avg_entry_price": st.column_config.NumberColumn("Avg entry", format="dollar"),
    "mark": st.column_config.NumberColumn("Mark", format="dollar"),
    "market_value": st.column_config.NumberColumn("Market value", format="dollar"),
    "unrealized_pnl": st.column_config.NumberColumn("Unrealized P&L", format="dollar"),
    "unrealized_pnl_pct": st.column_config.NumberColumn("P&L %", format="percent"),
    "realized_pnl": st.column_config.NumberColumn("Realized P&L", format="dollar"),
    "entry_price": st.column_config.NumberColumn("Entry", format="dollar"),
    "stop_loss": st.column_config.NumberColumn("Stop", format="dollar"),
    "target_price": st.column_config.NumberColumn("Target", format="dollar"),
    "trade_type": st.column_config.TextColumn("Trade type"),
    "strategy": st.column_config.TextColumn("Strategy"),
    "entry_time": st.column_config.DatetimeColumn("Entered (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "time_in_trade": st.column_config.TextColumn("In trade"),
    "closing_qty": st.column_config.NumberColumn("Closing"),
}


# ---------------------------------------------------------------------------------- confirmations
# ---------------------------------------------------------------------------------- reading
def latest_marks(runtime: Runtime, symbols: Iterable[str]) -> dict[str, Decimal]:
    """Last prices from the market data for positions the executor has not marked yet."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}

    async def _quotes() -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for symbol in wanted:
            quote = await asyncio.wait_for(runtime.market.quote(symbol), QUOTE_TIMEOUT_S)
            out[symbol] = quote.last
        return out

    try:
        return asyncio.run(_quotes())
    except Exception:  # no quote is no mark: the row says "n/a" instead of failing the page
        return {}


def live_positions(runtime: Runtime) -> pd.DataFrame:
    """Open positions marked at the executor's last mark, or the market's last price."""
    frame = runtime.queries.positions.open_positions(runtime.market.clock.now())
    if frame.empty:
        return frame
    unmarked = frame.loc[frame["mark"].isna(), "symbol"]
    return mark_positions(frame, latest_marks(runtime, unmarked))


# ---------------------------------------------------------------------------------- rendering
def render_totals(totals: PositionTotals) -> None:
    cols = st.columns(4)
    cols[0].metric("Open positions", str(totals.count))
    cols[1].metric("Unrealized P&L", money(totals.unrealized_pnl))
    cols[2].metric("Market value", money(totals.market_value))
    cols[3].metric("Gross exposure", money(totals.gross_exposure))
    if totals.unmarked:
        st.caption(f"{totals.unmarked} position(s) have no price yet: their P&L shows n/a.")


@st.fragment(run_every=POSITIONS_REFRESH_S)
def render_positions_live(runtime: Runtime) -> None:
    """The book, refreshed every few seconds (reads only)."""
    frame = live_positions(runtime)
    if frame.empty:
        st.info(
            "**No open positions.** Positions appear here as soon as an order fills: from a "
            "signal, a rebalance or a manual order.",
            icon=":material/inventory_2:",
        )
        return
    render_totals(PositionTotals.of(frame))
    st.dataframe(
        display_frame(frame),
        column_config=COLUMNS,
        hide_index=True,
        width="stretch",
        key="positions_table",
    )
    working = frame[frame["closing_qty"] > 0]
    for symbol, qty in zip(working["symbol"], working["closing_qty"], strict=True):
        st.caption(f":material/hourglass_top: Closing {symbol}: {qty} on its way to the broker.")
    st.plotly_chart(build_pnl_figure(frame), width="stretch", key="positions_pnl_chart")


def send_close(runtime: Runtime, user: User, payload: dict[str, Any]) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.MANUAL_ORDER,
        payload,
        f"Close {payload['symbol']}",
        action=Action.CLOSE_POSITION,
    )


def send_close_all(runtime: Runtime, user: User, payloads: list[dict[str, Any]]) -> list[int]:
    sent = [send_close(runtime, user, p) for p in payloads]
    return [cid for cid in sent if cid is not None]


def _describe(payload: dict[str, Any]) -> str:
    return f"{payload['side']} {payload['qty']} {payload['symbol']}"


def render_close_actions(runtime: Runtime, user: User) -> None:
    """Close one position or all of them, each after a confirmation (traders and admins)."""
    if not user.can(Action.CLOSE_POSITION):
        return
    book = runtime.queries.positions.open_positions(runtime.market.clock.now())
    if book.empty:
        return  # the live view already says there is nothing open
    frame = closable(book)
    payloads = [close_payload(s, q) for s, q in zip(frame["symbol"], frame["qty"], strict=True)]
    by_symbol = {p["symbol"]: p for p in payloads}
    with st.container(border=True):
        st.markdown("**Close positions** · reduce-only market orders, sent to the executor")
        if not payloads:
            st.caption("Every open position already has a close working.")
        left, mid, right = st.columns([2, 1, 1], vertical_alignment="bottom")
        symbol = left.selectbox(
            "Position", list(by_symbol), key="positions_close_symbol", disabled=not payloads
        )
        one = mid.button(
            "Close position",
            key="positions_close",
            icon=":material/close:",
            disabled=symbol is None,
        )
        every = right.button(
            f"Close all ({len(payloads)})",
            key="positions_close_all_button",
            icon=":material/cancel:",
            type="primary",
            disabled=not payloads,
        )
    request = confirmation(CLOSE_ONE_KEY, by_symbol.get(symbol) if one and symbol else None)
    if request is not None:
        confirm_dialog(
            f"Close {request['symbol']}?",
            f"Send a reduce-only market order: **{_describe(request)}**.",
            "Close position",
            lambda _reason: send_close(runtime, user, request),
            key=CLOSE_ONE_KEY,
        )
    batch = confirmation(CLOSE_ALL_KEY, payloads if every and payloads else None)
    if batch:
        lines = "\n".join(f"- {_describe(p)}" for p in batch)
        confirm_dialog(
            "Close all positions?",
            f"Send {len(batch)} reduce-only market orders:\n\n{lines}",
            "Close all",
            lambda _reason: send_close_all(runtime, user, batch),
            key=CLOSE_ALL_KEY,
        )


__all__ = [
    "build_pnl_figure",
    "closable",
    "close_payload",
    "confirmation",
    "display_frame",
    "held_for",
    "latest_marks",
    "live_positions",
    "render_close_actions",
    "render_positions_live",
    "send_close",
    "send_close_all",
]
