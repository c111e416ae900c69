"""Order Book: working orders and router parents (live), recent fills, cancelling one order or
all of them (commands), and the order history with filters and each order's status history.

An option order is named by its OCC symbol; the tables add its contract (``SPY 2026-11-20 600
C``: underlying, expiry, strike, right) when they hold one. Its prices are per share of
premium."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from app.components.common import confirm_dialog, confirmation, send_command
from app.runtime import Runtime
from core.domain import CommandType
from core.users import Action, User
from db.queries.contracts import contract_label
from db.queries.orders import HISTORY_LIMIT, OrderFilterOptions

ORDERS_REFRESH_S = 2.0
CANCEL_ALL_KEY = "orders_cancel_all"

ORDER_COLUMNS = {
    "client_order_id": st.column_config.TextColumn("Order", pinned=True),
    "created_at": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "symbol": st.column_config.TextColumn("Symbol"),
    "contract": st.column_config.TextColumn(
        "Contract", help="Option: underlying, expiry, strike, right (C call, P put)"
    ),
    "side": st.column_config.TextColumn("Side"),
    "qty": st.column_config.NumberColumn("Qty"),
    "filled_qty": st.column_config.NumberColumn("Filled"),
    "order_type": st.column_config.TextColumn("Type"),
    "limit_price": st.column_config.NumberColumn("Limit", format="dollar"),
    "stop_price": st.column_config.NumberColumn("Stop", format="dollar"),
    "time_in_force": st.column_config.TextColumn("TIF"),
    "status": st.column_config.TextColumn("Status"),
    "avg_fill_price": st.column_config.NumberColumn("Avg fill", format="dollar"),
    "broker": st.column_config.TextColumn("Broker"),
    "parent_id": st.column_config.TextColumn("Parent"),
    "reduce_only": st.column_config.CheckboxColumn("Reduce only"),
    "reason": st.column_config.TextColumn("Reason"),
}
FILL_COLUMNS = {
    "at": st.column_config.DatetimeColumn("At (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "symbol": st.column_config.TextColumn("Symbol"),
    "contract": st.column_config.TextColumn(
        "Contract", help="Option: underlying, expiry, strike, right (C call, P put)"
    ),
    "side": st.column_config.TextColumn("Side"),
    "qty": st.column_config.NumberColumn("Qty"),
    "price": st.column_config.NumberColumn("Price", format="dollar"),
    "expected_price": st.column_config.NumberColumn("Expected", format="dollar"),
    "slippage_bps": st.column_config.NumberColumn("Slippage (bps)"),
    "commission": st.column_config.NumberColumn("Commission", format="dollar"),
    "client_order_id": st.column_config.TextColumn("Order"),
    "broker": st.column_config.TextColumn("Broker"),
}


# ---------------------------------------------------------------------------------- pure functions
def _given(value: Any) -> bool:
    """Not None and not a missing value (text columns hold NaN where the store has NULL)."""
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def describe_order(row: Any) -> str:
    """``SPY buy 1 limit @ 464.00 · accepted · filled 0`` for a row of an orders frame; an
    option's contract follows its symbol (``SPY261120C00600000 (SPY 2026-11-20 600 C) ...``)."""
    price = row["limit_price"] if _given(row["limit_price"]) else row["stop_price"]
    at = f" @ {price}" if _given(price) else ""
    contract = contract_label(row["symbol"])
    name = row["symbol"] if contract is None else f"{row['symbol']} ({contract})"
    return (
        f"{name} {row['side']} {row['qty']} {row['order_type']}{at} · "
        f"{row['status']} · filled {row['filled_qty']}"
    )


def symbol_label(symbol: str) -> str:
    """An order book symbol as offered by the filters: an option's with its contract."""
    contract = contract_label(symbol)
    return symbol if contract is None else f"{symbol} · {contract}"


def _fraction(done: Decimal | int, total: Decimal | int) -> float:
    if not total:
        return 0.0
    return max(0.0, min(1.0, float(done) / float(total)))


def parent_progress(row: Any) -> tuple[float, float]:
    """(slices done / total, filled qty / qty) of a router parent, each 0 to 1."""
    return (
        _fraction(row["slices_done"], row["slices_total"]),
        _fraction(row["filled_qty"], row["qty"]),
    )


def parent_label(row: Any) -> str:
    avg = f" · avg {row['avg_price']}" if _given(row["avg_price"]) else ""
    return (
        f"**{str(row['algorithm']).upper()}** {row['side']} {row['qty']} {row['symbol']} · "
        f"{row['status']} · slices {row['slices_done']}/{row['slices_total']} · "
        f"filled {row['filled_qty']}/{row['qty']}{avg} · `{row['parent_id']}`"
    )


def transition_lines(history: pd.DataFrame) -> list[str]:
    """One line per status change: ``new → submitted · 2024-01-02 14:30:00 UTC · reason``."""
    lines = []
    for row in history.itertuples(index=False):
        start = row.from_status if _given(row.from_status) else "∅"
        at = row.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        reason = f" · {row.reason}" if _given(row.reason) and row.reason else ""
        lines.append(f"`{start}` → `{row.to_status}` · {at}{reason}")
    return lines


def _without_empty_contracts(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """``columns`` without ``contract`` when no row of ``frame`` is an option."""
    if "contract" in columns and not frame["contract"].notna().any():
        columns.remove("contract")
    return columns


def order_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The orders as shown; the contract column only when an option order is among them."""
    return frame[_without_empty_contracts(frame, [c for c in ORDER_COLUMNS if c in frame.columns])]


def fill_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The fills as shown; the contract column only when an option fill is among them."""
    return frame[_without_empty_contracts(frame, [c for c in FILL_COLUMNS if c in frame.columns])]


# ---------------------------------------------------------------------------------- live views
def render_parents(parents: pd.DataFrame) -> None:
    """TWAP/VWAP parents: slices done out of total, filled quantity out of quantity."""
    st.subheader("Algorithm orders")
    if parents.empty:
        st.caption("No TWAP/VWAP orders: rebalances worked by the smart order router show here.")
        return
    for _, row in parents.iterrows():
        slices, filled = parent_progress(row)
        st.markdown(parent_label(row))
        left, right = st.columns(2)
        left.progress(slices, text=f"Slices {row['slices_done']}/{row['slices_total']}")
        right.progress(filled, text=f"Filled {row['filled_qty']}/{row['qty']}")


@st.fragment(run_every=ORDERS_REFRESH_S)
def render_orders_live(runtime: Runtime) -> None:
    """Working orders, router parents and the latest fills, refreshed every few seconds."""
    queries = runtime.queries.orders
    working = queries.open_orders()
    st.subheader(f"Working orders ({len(working)})")
    if working.empty:
        st.info(
            "**No open orders.** Nothing is working at the broker; market orders usually fill "
            "at once, limit and stop orders wait here until they fill or are cancelled.",
            icon=":material/inbox:",
        )
    else:
        st.dataframe(
            order_table(working),
            column_config=ORDER_COLUMNS,
            hide_index=True,
            width="stretch",
            key="orders_working_table",
        )
    render_parents(queries.algo_parents())
    st.subheader("Recent fills")
    fills = queries.recent_fills()
    if fills.empty:
        st.caption("No fills yet: executions appear here as the broker reports them.")
    else:
        st.dataframe(
            fill_table(fills),
            column_config=FILL_COLUMNS,
            hide_index=True,
            width="stretch",
            key="orders_fills_table",
        )


# ---------------------------------------------------------------------------------- actions
def send_cancel(runtime: Runtime, user: User, client_order_id: str) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.CANCEL_ORDER,
        {"client_order_id": client_order_id},
        f"Cancel {client_order_id}",
        action=Action.CANCEL_ORDER,
    )


def send_cancel_all(runtime: Runtime, user: User) -> int | None:
    return send_command(
        runtime, user, CommandType.CANCEL_ALL, {}, "Cancel all orders", action=Action.CANCEL_ORDER
    )


def render_order_actions(runtime: Runtime, user: User) -> None:
    """Cancel one working order, or all of them after a confirmation (traders and admins)."""
    if not user.can(Action.CANCEL_ORDER):
        return
    working = runtime.queries.orders.open_orders()
    if working.empty:
        return
    labels = {row["client_order_id"]: describe_order(row) for _, row in working.iterrows()}
    with st.container(border=True):
        st.markdown("**Cancel orders** · the executor asks the broker to cancel")
        left, mid, right = st.columns([2, 1, 1], vertical_alignment="bottom")
        chosen = left.selectbox(
            "Working order",
            list(labels),
            format_func=lambda coid: f"{coid} · {labels.get(coid, '')}",
            key="orders_cancel_choice",
        )
        if mid.button("Cancel order", key="orders_cancel", icon=":material/close:") and chosen:
            send_cancel(runtime, user, chosen)
        every = right.button(
            f"Cancel all ({len(labels)})",
            key="orders_cancel_all_button",
            icon=":material/block:",
            type="primary",
        )
    count = confirmation(CANCEL_ALL_KEY, len(labels) if every else None)
    if count is not None:
        confirm_dialog(
            "Cancel all open orders?",
            f"The executor asks the broker to cancel every working order ({count} now), "
            "including exits and algorithm slices.",
            "Cancel all",
            lambda _reason: send_cancel_all(runtime, user),
            key=CANCEL_ALL_KEY,
        )


# ---------------------------------------------------------------------------------- history
def history_filters(options: OrderFilterOptions) -> dict[str, Any]:
    cols = st.columns([2, 2, 1, 1, 2])
    statuses = cols[0].multiselect("Status", list(options.statuses), key="orders_f_status")
    symbols = cols[1].multiselect(
        "Symbol", list(options.symbols), format_func=symbol_label, key="orders_f_symbol"
    )
    start = cols[2].date_input("From", value=None, key="orders_f_from")
    end = cols[3].date_input("To", value=None, key="orders_f_to")
    brokers = cols[4].multiselect("Broker", list(options.brokers), key="orders_f_broker")
    return {
        "statuses": statuses,
        "symbols": symbols,
        "start": start,
        "end": end,
        "brokers": brokers,
    }


def render_status_history(runtime: Runtime, orders: pd.DataFrame) -> None:
    ids = list(orders["client_order_id"])
    chosen = st.selectbox(
        "Status history of order",
        ids,
        index=None,
        placeholder="Pick an order to see each status change",
        key="orders_history_choice",
    )
    if chosen is None:
        return
    lines = transition_lines(runtime.queries.orders.status_history(chosen))
    if not lines:
        st.caption(f"No status change is recorded for {chosen}.")
        return
    with st.container(border=True):
        st.markdown(f"**{chosen}**")
        st.markdown("\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)))


@st.fragment
def render_order_history(runtime: Runtime) -> None:
    """Orders of any status, newest first, filtered in SQL; a filter change reruns only this."""
    st.subheader("Order history")
    queries = runtime.queries.orders
    filters = history_filters(queries.filter_options())
    orders = queries.history(**filters, limit=HISTORY_LIMIT)
    if orders.empty:
        filtered = any(v for v in filters.values())
        st.info(
            "No orders match these filters." if filtered else "No orders yet.",
            icon=":material/search_off:",
        )
        return
    if len(orders) >= HISTORY_LIMIT:
        st.caption(f"The newest {HISTORY_LIMIT} orders; narrow the filters to see older ones.")
    st.dataframe(
        order_table(orders),
        column_config=ORDER_COLUMNS,
        hide_index=True,
        width="stretch",
        key="orders_history_table",
    )
    render_status_history(runtime, orders)


__all__ = [
    "describe_order",
    "fill_table",
    "order_table",
    "parent_label",
    "parent_progress",
    "render_order_actions",
    "render_order_history",
    "render_orders_live",
    "send_cancel",
    "send_cancel_all",
    "symbol_label",
    "transition_lines",
]
