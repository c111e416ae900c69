"""Active Positions: the live book (P&L, entry, stop, target, time in trade), the P&L chart,
and closing one position or all of them (reduce-only market orders sent as commands).

Options: when the book holds options, the table adds each contract's underlying, expiry, strike
and right and, where the market data quotes options, its Greeks per share (delta, gamma, theta
per day, vega per vol point, implied volatility) and the position's delta in shares of the
underlying (delta x quantity x 100). Stock and ETF rows leave those columns empty."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.common import confirm_dialog, confirmation, money, send_command
from app.runtime import Runtime
from core.domain import CommandType, InstrumentType
from core.users import Action, User
from db.queries.contracts import contract_label, multiplier
from db.queries.positions import CONTRACT_COLUMNS, PositionTotals, mark_positions

POSITIONS_REFRESH_S = 2.0
QUOTE_TIMEOUT_S = 1.0
CLOSE_ONE_KEY = "positions_close_one"
CLOSE_ALL_KEY = "positions_close_all"
#: The Greeks columns (per share, from the market's option quote) and the position's delta.
GREEK_COLUMNS = ("delta", "gamma", "theta", "vega", "iv", "delta_shares")
PER_SHARE = "Per share of the contract, as quoted (one contract is 100 shares)"


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


def close_payload(
    symbol: str, qty: Decimal, instrument_type: InstrumentType | str | None = None
) -> dict[str, Any]:
    """The manual-order payload that flattens a position of signed ``qty``. An option's (its
    instrument type says so, or its symbol is an OCC symbol) carries ``instrument_type``
    ``option``: brokers refuse an OCC symbol sent as a stock."""
    payload: dict[str, Any] = {
        "symbol": symbol,
        "side": "sell" if qty > 0 else "buy",
        "qty": format(abs(qty), "f"),
        "reduce_only": True,
    }
    if instrument_type == InstrumentType.OPTION.value or contract_label(symbol) is not None:
        payload["instrument_type"] = InstrumentType.OPTION.value
    return payload


def close_payloads(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One closing payload per position of a positions frame."""
    return [
        close_payload(s, q, t)
        for s, q, t in zip(frame["symbol"], frame["qty"], frame["instrument_type"], strict=True)
    ]


def has_options(frame: pd.DataFrame) -> bool:
    """Whether a positions frame holds an option contract."""
    return "underlying" in frame.columns and bool(frame["underlying"].notna().any())


def _greeks(quote: Any, qty: Decimal, instrument_type: Any) -> tuple[Any, ...]:
    g = getattr(quote, "greeks", None)
    iv = getattr(quote, "iv", None)
    if g is None:
        return (None, None, None, None, iv, None)
    shares = round(float(g.delta) * float(qty) * float(multiplier(instrument_type)), 2)
    return (g.delta, g.gamma, g.theta, g.vega, iv, shares)


def with_greeks(frame: pd.DataFrame, quotes: Mapping[str, Any]) -> pd.DataFrame:
    """A copy of a positions frame with the :data:`GREEK_COLUMNS` after the P&L %: each option
    quote's Greeks per share and the position's delta in shares (delta x qty x 100); empty
    for positions without a quote in ``quotes`` (stocks, or no option data)."""
    out = frame.copy()
    rows = [
        _greeks(quotes.get(s), q, t)
        for s, q, t in zip(out["symbol"], out["qty"], out["instrument_type"], strict=True)
    ]
    at = list(out.columns).index("unrealized_pnl_pct") + 1
    for i, name in enumerate(GREEK_COLUMNS):
        values = pd.Series([r[i] for r in rows], index=out.index, dtype="float64")
        out.insert(at + i, name, values)
    return out


def net_deltas(frame: pd.DataFrame) -> dict[str, float]:
    """Net option delta per underlying, in shares, of a frame :func:`with_greeks` made."""
    out: dict[str, float] = {}
    if "delta_shares" not in frame.columns:
        return out
    for underlying, shares in zip(frame["underlying"], frame["delta_shares"], strict=True):
        if isinstance(underlying, str) and not pd.isna(shares):
            out[underlying] = out.get(underlying, 0.0) + float(shares)
    return out


def position_label(symbol: str) -> str:
    """``SPY261120C00600000 · SPY 2026-11-20 600 C`` for an option, the symbol otherwise."""
    contract = contract_label(symbol)
    return symbol if contract is None else f"{symbol} · {contract}"


def closable(frame: pd.DataFrame) -> pd.DataFrame:
    """Positions with no close already working for their whole quantity."""
    if frame.empty:
        return frame
    keep = [abs(q) > c for q, c in zip(frame["qty"], frame["closing_qty"], strict=True)]
    return frame[keep]


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: exact values, with the time in trade as text. The option columns
    (contract and Greeks) show only when the book holds an option."""
    hidden = ["updated_at"]
    if not has_options(frame):
        hidden += [c for c in (*CONTRACT_COLUMNS, *GREEK_COLUMNS) if c in frame.columns]
    shown = frame.drop(columns=hidden).copy()
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
    "underlying": st.column_config.TextColumn("Underlying"),
    "expiry": st.column_config.DateColumn("Expiry", format="YYYY-MM-DD"),
    "strike": st.column_config.NumberColumn("Strike", format="dollar"),
    "right": st.column_config.TextColumn("Right", help="C call, P put"),
    "side": st.column_config.TextColumn("Side"),
    "qty": st.column_config.NumberColumn("Qty"),
    "avg_entry_price": st.column_config.NumberColumn("Avg entry", format="dollar"),
    "mark": st.column_config.NumberColumn("Mark", format="dollar"),
    "market_value": st.column_config.NumberColumn("Market value", format="dollar"),
    "unrealized_pnl": st.column_config.NumberColumn("Unrealized P&L", format="dollar"),
    "unrealized_pnl_pct": st.column_config.NumberColumn("P&L %", format="percent"),
    "delta": st.column_config.NumberColumn("Delta", format="%.3f", help=PER_SHARE),
    "gamma": st.column_config.NumberColumn("Gamma", format="%.4f", help=PER_SHARE),
    "theta": st.column_config.NumberColumn(
        "Theta/day", format="%.3f", help=f"{PER_SHARE}; per calendar day"
    ),
    "vega": st.column_config.NumberColumn(
        "Vega", format="%.3f", help=f"{PER_SHARE}; per vol point"
    ),
    "iv": st.column_config.NumberColumn("IV", format="percent", help="Implied volatility"),
    "delta_shares": st.column_config.NumberColumn(
        "Δ shares", format="%.1f", help="Position delta: delta x contracts x 100"
    ),
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
            try:
                quote = await asyncio.wait_for(runtime.market.quote(symbol), QUOTE_TIMEOUT_S)
            except Exception:  # e.g. a contract this market data does not quote
                continue
            out[symbol] = quote.last
        return out

    try:
        return asyncio.run(_quotes())
    except Exception:  # no quote is no mark: the row says "n/a" instead of failing the page
        return {}


def option_quotes(runtime: Runtime, symbols: Iterable[str]) -> dict[str, Any]:
    """The market's option quotes (bid/ask, iv, Greeks) of the OCC ``symbols``; empty when the
    market data does not quote options, and without the contracts it cannot quote."""
    quote = getattr(runtime.market, "option_quote", None)
    if quote is None:
        return {}

    async def _wait(pending: Any) -> Any:
        return await asyncio.wait_for(pending, QUOTE_TIMEOUT_S)

    out: dict[str, Any] = {}
    for symbol in sorted({s for s in symbols if contract_label(s) is not None}):
        try:
            found = quote(symbol)
            if inspect.isawaitable(found):
                found = asyncio.run(_wait(found))
        except Exception:  # an expired or unlisted contract: its Greeks show empty
            continue
        out[symbol] = found
    return out


def live_positions(runtime: Runtime) -> pd.DataFrame:
    """Open positions marked at the executor's last mark, or the market's last price; with
    the Greeks of the options among them when the market data quotes options."""
    frame = runtime.queries.positions.open_positions(runtime.market.clock.now())
    if frame.empty:
        return frame
    unmarked = frame.loc[frame["mark"].isna(), "symbol"]
    frame = mark_positions(frame, latest_marks(runtime, unmarked))
    if not has_options(frame):
        return frame
    options = frame.loc[frame["underlying"].notna(), "symbol"]
    return with_greeks(frame, option_quotes(runtime, options))


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
    if has_options(frame):
        render_option_notes(frame)
    working = frame[frame["closing_qty"] > 0]
    for symbol, qty in zip(working["symbol"], working["closing_qty"], strict=True):
        st.caption(
            f":material/hourglass_top: Closing {position_label(symbol)}: {qty} on its way to "
            "the broker."
        )
    st.plotly_chart(build_pnl_figure(frame), width="stretch", key="positions_pnl_chart")


def render_option_notes(frame: pd.DataFrame) -> None:
    """How to read the option rows, and the net delta per underlying."""
    deltas = net_deltas(frame)
    if deltas:
        net = " · ".join(f"{u} {v:+,.1f}" for u, v in sorted(deltas.items()))
        st.caption(
            "Options: prices are per share of premium; market value and P&L count 100 shares "
            f"per contract. Net option delta, in shares of the underlying: {net}."
        )
    else:
        st.caption(
            "Options: prices are per share of premium; market value and P&L count 100 shares "
            "per contract. No Greeks: the market data does not quote these contracts."
        )


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
    text = f"{payload['side']} {payload['qty']} {payload['symbol']}"
    contract = contract_label(payload["symbol"])
    if payload.get("instrument_type") == InstrumentType.OPTION.value and contract:
        text += f" ({contract}, contracts of 100)"
    return text


def render_close_actions(runtime: Runtime, user: User) -> None:
    """Close one position or all of them, each after a confirmation (traders and admins)."""
    if not user.can(Action.CLOSE_POSITION):
        return
    book = runtime.queries.positions.open_positions(runtime.market.clock.now())
    if book.empty:
        return  # the live view already says there is nothing open
    frame = closable(book)
    payloads = close_payloads(frame)
    by_symbol = {p["symbol"]: p for p in payloads}
    with st.container(border=True):
        st.markdown("**Close positions** · reduce-only market orders, sent to the executor")
        if not payloads:
            st.caption("Every open position already has a close working.")
        left, mid, right = st.columns([2, 1, 1], vertical_alignment="bottom")
        symbol = left.selectbox(
            "Position",
            list(by_symbol),
            format_func=position_label,
            key="positions_close_symbol",
            disabled=not payloads,
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
    "GREEK_COLUMNS",
    "build_pnl_figure",
    "closable",
    "close_payload",
    "close_payloads",
    "confirmation",
    "display_frame",
    "has_options",
    "held_for",
    "latest_marks",
    "live_positions",
    "net_deltas",
    "option_quotes",
    "position_label",
    "render_close_actions",
    "render_option_notes",
    "render_positions_live",
    "send_close",
    "send_close_all",
    "with_greeks",
]
