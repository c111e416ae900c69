"""The Trade Journal's pieces: the helpers that render filters, totals, the trades table, one
trade's chain and the analytics (their figures built by :mod:`app.components.journal_charts`).

Money arrives as Decimals; tables keep the exact values. An option trade is named by its OCC
symbol: the tables add its contract (underlying, expiry, strike, right) and how far the expiry
was at the entry (0DTE, 1DTE); its prices are per share of premium and its P&L is in dollars
(x 100 per contract, as journaled).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.common import money
from app.components.journal_charts import (
    build_commission_figure,
    build_holding_period_figure,
    build_slippage_figure,
    build_turnover_figure,
    build_win_rate_figure,
    is_missing,
    label,
)
from db.queries.contracts import contract_label
from db.queries.journal import (
    OPTION_COLUMNS,
    JournalChoices,
    JournalFilter,
    JournalSummary,
    TradeChain,
    option_details,
)


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``45s``; empty for ``None``."""
    if is_missing(seconds):
        return ""
    s = max(0, int(seconds))
    days, hours, minutes = s // 86_400, s % 86_400 // 3_600, s % 3_600 // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {s % 60}s" if minutes else f"{s}s"


# ---------------------------------------------------------------------------------- tables
def trades_table(df: pd.DataFrame) -> pd.DataFrame:
    """The page of trades as shown, with the holding period after the exit time and, when the
    page holds an option trade, its contract and days to expiry after the symbol."""
    out = df.copy()
    held = [
        None if is_missing(x) or x is pd.NaT else (x - e).total_seconds()
        for e, x in zip(out["entry_time"], out["exit_time"], strict=True)
    ]
    out.insert(3, "held", [duration(s) for s in held])
    options = [c for c in OPTION_COLUMNS if c in out.columns]
    if not options:
        return out
    moved = out[options]
    out = out.drop(columns=options)
    if "contract" in moved.columns and moved["contract"].notna().any():
        at = list(out.columns).index("ticker") + 1
        for i, name in enumerate(options):
            out.insert(at + i, name, moved[name])
    return out


def symbol_label(symbol: str) -> str:
    """A journal symbol as the filter offers it: an option's with its contract."""
    contract = contract_label(symbol)
    return symbol if contract is None else f"{symbol} · {contract}"


def option_summary(trade: dict[str, Any]) -> str | None:
    """One line on an option trade's contract and how it was chosen (days to expiry, implied
    volatility, delta, premium at risk, as its pipeline decision recorded them); ``None`` for
    a stock or ETF trade."""
    contract, kind = option_details(trade)
    if contract is None:
        return None
    notes = trade.get("metadata_json") or {}
    iv, delta, at_risk = (_note(notes, k) for k in ("iv", "delta", "premium_at_risk"))
    parts = [f"**Option** {contract}"]
    if kind:
        parts.append(kind)
    if iv is not None:
        parts.append(f"IV {float(iv) * 100:.1f}%")
    if delta is not None:
        parts.append(f"delta {float(delta):.3f}")
    if at_risk is not None:
        parts.append(f"premium at risk {money(at_risk)}")
    parts.append("100 shares per contract, prices per share, P&L in dollars")
    return " · ".join(parts)


def _note(notes: dict[str, Any], key: str) -> Decimal | None:
    """A number the trade's metadata recorded (as text), ``None`` when absent or unreadable."""
    value = notes.get(key)
    if is_missing(value):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


TRADE_COLUMN_CONFIG = {
    "id": st.column_config.NumberColumn("#", format="%d"),
    "ticker": "symbol",
    "contract": st.column_config.TextColumn(
        "contract", help="Option: underlying, expiry, strike, right (C call, P put)"
    ),
    "expiry_kind": st.column_config.TextColumn(
        "DTE", help="Option: days from the entry to the expiry (0DTE expires that session)"
    ),
    "direction": "side",
    "exit_reason": "exit reason",
    "instrument_type": "instrument",
    "order_id": "entry order",
    "entry_time": st.column_config.DatetimeColumn("entry (UTC)", format="YYYY-MM-DD HH:mm"),
    "exit_time": st.column_config.DatetimeColumn("exit (UTC)", format="YYYY-MM-DD HH:mm"),
    "entry_price": st.column_config.NumberColumn("entry $", format="%.4f"),
    "exit_price": st.column_config.NumberColumn("exit $", format="%.4f"),
    "pnl": st.column_config.NumberColumn("P&L", format="dollar"),
    "pnl_pct": st.column_config.NumberColumn("P&L %", format="percent"),
    "signal_id": st.column_config.NumberColumn("signal", format="%d"),
}


def chain_timeline(chain: TradeChain) -> pd.DataFrame:
    """The trade's story in time order: signal, decisions, orders, status changes, fills,
    entry and exit (columns ``time``, ``step``, ``ref``, ``detail``)."""
    events: list[tuple[datetime | None, int, str, str, str]] = []
    sig = chain.signal
    if sig is not None:
        levels = ", ".join(
            f"{k} {sig[k]}" for k in ("entry", "stop", "target") if sig.get(k) is not None
        )
        events.append(
            (
                sig["created_at"],
                0,
                "signal",
                f"#{sig['id']}",
                f"{sig['source']}: {sig['direction'] or '?'} {sig['symbol']} ({levels}); "
                f"{sig['status']}{' — ' + sig['reason'] if sig.get('reason') else ''}",
            )
        )
    for d in chain.decisions:
        verdict = "approved" if d["approved"] else "rejected"
        why = f" — {d['reason']}" if d.get("reason") else ""
        events.append((d["at"], 1, "decision", d["stage"], f"{verdict}{why}"))
    for o in chain.orders:
        price = "".join(
            f" {k.split('_')[0]} {o[k]}" for k in ("limit_price", "stop_price") if o.get(k)
        )
        parent = f", leg of {o['parent_id']}" if o.get("parent_id") else ""
        events.append(
            (
                o["created_at"],
                2,
                "order",
                o["client_order_id"],
                f"{o['side']} {o['qty']} {o['symbol']} {o['order_type']}{price}{parent}: "
                f"{o['status']}, filled {o['filled_qty']}"
                + (f" @ {o['avg_fill_price']}" if o.get("avg_fill_price") else ""),
            )
        )
    for h in chain.history:
        why = f" — {h['reason']}" if h.get("reason") else ""
        move = f"{h['from_status'] or 'new'} → {h['to_status']}{why}"
        events.append((h["at"], 3, "status", h["client_order_id"], move))
    for fl in chain.fills:
        extra = []
        if fl.get("expected_price") is not None:
            extra.append(f"expected {fl['expected_price']}")
        if fl.get("slippage_bps") is not None:
            extra.append(f"slippage {fl['slippage_bps']} bps")
        extra.append(f"commission {money(fl['commission'])}")
        detail = f"{fl['side']} {fl['qty']} @ {fl['price']} ({', '.join(extra)})"
        events.append((fl["at"], 4, "fill", fl["client_order_id"], detail))
    t = chain.trade
    contract, _ = option_details(t)
    named = t["ticker"] if contract is None else f"{t['ticker']} ({contract})"
    events.append(
        (
            t["entry_time"],
            5,
            "entry",
            f"trade #{t['id']}",
            f"{t['direction']} {t['shares']} {named} @ {t['entry_price']}",
        )
    )
    if t.get("exit_time") is not None:
        events.append(
            (
                t["exit_time"],
                6,
                "exit",
                f"trade #{t['id']}",
                f"@ {t['exit_price']} ({label(t['exit_reason'])}), P&L {money(t['pnl'])}",
            )
        )
    events.sort(key=lambda e: (e[0] is None, e[0] or datetime.min, e[1]))
    df = pd.DataFrame(
        [(e[0], e[2], e[3], e[4]) for e in events], columns=["time", "step", "ref", "detail"]
    )
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


# ---------------------------------------------------------------------------------- render
def _pick(
    column: Any, title: str, options: Sequence[Any], key: str, fmt: Callable[[Any], str] = label
) -> tuple[Any, ...]:
    return tuple(column.multiselect(title, options, format_func=fmt, key=key, placeholder="all"))


def render_filters(choices: JournalChoices) -> JournalFilter:
    """Filter widgets over the stored choices; returns the filter they describe."""
    assert choices.first_entry is not None and choices.last_entry is not None
    first, last = choices.first_entry.date(), choices.last_entry.date()
    top = st.columns([2, 2, 2])
    # Empty means every date, so a session left open keeps seeing new trades.
    picked = top[0].date_input(
        "Entry date (UTC)",
        value=(),
        min_value=first,
        format="YYYY-MM-DD",
        help=f"Empty: every date. Trades were entered from {first} to {last}.",
        key="journal_dates",
    )
    days = [d for d in (picked if isinstance(picked, tuple | list) else (picked,)) if d]
    start = days[0] if days else None
    end = days[1] if len(days) > 1 else None
    symbols = _pick(top[1], "Symbol", choices.symbols, "journal_symbols", symbol_label)
    strategies = _pick(top[2], "Strategy", choices.strategies, "journal_strategies")
    low = st.columns([2, 2, 2])
    triggers = _pick(low[0], "Trigger", choices.triggers, "journal_triggers")
    reasons = _pick(low[1], "Exit reason", choices.exit_reasons, "journal_exit_reasons")
    types = _pick(low[2], "Instrument type", choices.instrument_types, "journal_types", str)
    return JournalFilter(
        # A range over the whole span is no filter (and would only slow the scan down).
        start=None if start is None or start <= first else start,
        end=None if end is None or end >= last else end,
        symbols=symbols,
        strategies=strategies,
        triggers=triggers,
        exit_reasons=reasons,
        instrument_types=types,
    )


def render_summary(summary: JournalSummary) -> None:
    cols = st.columns([1, 1, 1, 1.6, 1.4])
    cols[0].metric("Trades", f"{summary.trades:,}")
    cols[1].metric("Open", f"{summary.open:,}")
    rate = summary.win_rate
    cols[2].metric(
        "Win rate", "n/a" if rate is None else f"{rate * 100:.1f}%", help="closed trades only"
    )
    cols[3].metric("Realized P&L", money(summary.realized_pnl))
    cols[4].metric("Avg P&L / closed trade", money(summary.average_pnl))


def render_chain(chain: TradeChain) -> None:
    """One trade's signal → decision → order → fill chain, in time order."""
    t = chain.trade
    st.markdown(
        f"**Trade #{t['id']}** · {t['ticker']} {t['direction']} · {t['status']} · "
        f"trigger {label(t['trigger'])} · strategy {label(t['strategy'])}"
    )
    option = option_summary(t)
    if option is not None:
        st.markdown(option)
    if chain.signal is None:
        st.caption("No signal: this trade started from a manual or rebalance order.")
    if not chain.orders:
        st.caption("No order is recorded for this trade.")
    st.dataframe(
        chain_timeline(chain),
        hide_index=True,
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss")
        },
    )


def money_table(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` with the money ``columns`` as exact text to the cent (for small tables)."""
    out = df.copy()
    for column in columns:
        out[column] = [money(v) if isinstance(v, Decimal | int) else v for v in out[column]]
    return out


FILLS_SCOPE_NOTE = (
    "Fills carry no strategy, trigger or exit reason: these figures cover every fill in the "
    "date range, symbols and instrument types chosen."
)


def _chart(fig: go.Figure) -> None:
    st.plotly_chart(fig, config={"displaylogo": False})


def render_win_rates(df: pd.DataFrame) -> None:
    st.caption("Closed trades; a trade wins when its realized P&L is positive.")
    _chart(build_win_rate_figure(df))
    if not df.empty:
        table = money_table(df, ("total_pnl", "average_pnl"))
        table["group"] = [label(g) for g in table["group"]]
        table["win_rate"] = [f"{float(r) * 100:.1f}%" for r in df["win_rate"]]
        st.dataframe(table, hide_index=True)


def render_holding_periods(df: pd.DataFrame) -> None:
    closed = int(df["trades"].sum())
    seconds = sum(
        float(a) * n for a, n in zip(df["average_seconds"], df["trades"], strict=True) if n
    )
    st.metric("Average holding period", duration(seconds / closed) if closed else "n/a")
    _chart(build_holding_period_figure(df))


def render_slippage(df: pd.DataFrame, trade_only: bool) -> None:
    st.caption(
        "Slippage is the fill price against the expected (arrival) price, positive when it "
        "cost money." + (f" {FILLS_SCOPE_NOTE}" if trade_only else "")
    )
    _chart(build_slippage_figure(df))
    if not df.empty:
        columns = ("expected_notional", "actual_notional", "slippage_cost", "commission")
        st.dataframe(money_table(df, columns), hide_index=True)


def render_commissions(df: pd.DataFrame, trade_only: bool) -> None:
    gross = sum(df["gross_pnl"], Decimal(0))
    fees = sum(df["commission"], Decimal(0))
    notional = sum(df["notional"], Decimal(0))
    cols = st.columns(4)
    cols[0].metric("Gross realized P&L", money(gross))
    cols[1].metric("Commissions", money(fees))
    cols[2].metric("Net P&L", money(gross - fees))
    cols[3].metric(
        "Commissions / gross P&L",
        f"{fees / gross * 100:.1f}%" if gross > 0 else "n/a",
        help="n/a while the gross realized P&L is not positive",
    )
    if notional:
        st.caption(f"Commissions were {fees / notional * 10_000:.2f} bps of the notional traded.")
    if trade_only:
        st.caption(FILLS_SCOPE_NOTE)
    _chart(build_commission_figure(df))


def render_turnover(df: pd.DataFrame, trade_only: bool) -> None:
    days = len(df)
    notional = sum(df["notional"], Decimal(0))
    cols = st.columns(3)
    cols[0].metric("Notional traded", money(notional, 0))
    cols[1].metric(
        "Trades opened per active day", f"{df['trades_opened'].sum() / days:.1f}" if days else "n/a"
    )
    rates = [float(v) for v in df["turnover"] if v is not None] if days else []
    cols[2].metric(
        "Average daily turnover",
        f"{sum(rates) / len(rates) * 100:.1f}% of equity" if rates else "n/a",
    )
    if trade_only:
        st.caption(FILLS_SCOPE_NOTE)
    _chart(build_turnover_figure(df))


__all__ = [
    "TRADE_COLUMN_CONFIG",
    "chain_timeline",
    "duration",
    "money_table",
    "option_summary",
    "render_chain",
    "render_commissions",
    "render_filters",
    "render_holding_periods",
    "render_slippage",
    "render_summary",
    "render_turnover",
    "render_win_rates",
    "symbol_label",
    "trades_table",
]
