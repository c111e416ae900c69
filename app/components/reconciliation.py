"""The Settings page's reconciliation section: the differences recorded between the store and
the broker, and, for those who may reconcile, adopting the broker's position or cancelling an
orphan order (each a command, after a confirmation with a reason)."""

from __future__ import annotations

import streamlit as st

from app.components.common import confirm_dialog, confirmation, send_command
from app.components.settings import eastern, settings_queries, when_column
from app.runtime import Runtime
from core.domain import CommandType
from core.users import Action, User

ADOPT_KEY = "settings_adopt"
ORPHAN_KEY = "settings_orphan"


def send_adopt(runtime: Runtime, user: User, symbol: str, reason: str) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.ADOPT_BROKER_POSITION,
        {"symbol": symbol, "reason": reason},
        f"Adopt the broker's {symbol} position",
    )


def send_cancel_orphan(runtime: Runtime, user: User, coid: str, reason: str) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.CANCEL_ORPHAN_ORDER,
        {"client_order_id": coid, "reason": reason},
        f"Cancel orphan order {coid}",
    )


def _action(
    key: str,
    items: dict[str, str],
    button: str,
    icon: str,
) -> str | None:
    """A picker of ``items`` (key -> label) and its button; the key picked when clicked."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox(button, list(items), format_func=items.__getitem__, key=f"{key}_choice")
    clicked = right.button(button, key=f"{key}_open", icon=icon, disabled=chosen is None)
    return chosen if clicked and chosen else None


def render_reconciliation(runtime: Runtime, user: User) -> None:
    queries = settings_queries(runtime)
    diffs = queries.reconciliation(200)
    if diffs.empty:
        st.success(
            "No difference between the store and the broker has been recorded.",
            icon=":material/check_circle:",
        )
    else:
        open_count = int((diffs["status"] == "open").sum())
        st.markdown(f"**{open_count} open** of the last {len(diffs)} recorded rows.")
        st.dataframe(
            eastern(diffs, "at"),
            hide_index=True,
            column_order=["id", "at", "kind", "key", "ours", "theirs", "status", "resolved_by"],
            column_config={
                "id": st.column_config.NumberColumn("#"),
                "at": when_column("When"),
                "kind": st.column_config.TextColumn("Difference"),
                "key": st.column_config.TextColumn("Symbol or order"),
                "ours": st.column_config.TextColumn("Store"),
                "theirs": st.column_config.TextColumn("Broker"),
                "status": st.column_config.TextColumn("Status"),
                "resolved_by": st.column_config.NumberColumn("Resolved by #"),
            },
        )
    if not user.can(Action.RECONCILE):
        st.caption("Resolving differences needs the trader role.")
        return
    mismatches = {d.key: d.label for d in queries.open_position_mismatches()}
    orphans = {d.key: d.label for d in queries.open_orphan_orders()}
    if not mismatches and not orphans:
        st.caption("No position difference or orphan order to resolve.")
    if mismatches:
        symbol = confirmation(
            ADOPT_KEY,
            _action(ADOPT_KEY, mismatches, "Adopt the broker's position", ":material/sync:"),
        )
        if symbol is not None:
            _confirm_adopt(runtime, user, symbol)
    if orphans:
        coid = confirmation(
            ORPHAN_KEY,
            _action(ORPHAN_KEY, orphans, "Cancel orphan order", ":material/cancel:"),
        )
        if coid is not None:
            _confirm_cancel_orphan(runtime, user, coid)


def _confirm_adopt(runtime: Runtime, user: User, symbol: str) -> None:
    confirm_dialog(
        f"Adopt the broker's {symbol} position?",
        f"The executor reads the broker's **{symbol}** position again and records its quantity "
        "and average price as ours (a flat broker position removes ours). The journal's open "
        "trade follows the new quantity when the position stays on the same side. Your name "
        "and reason are kept with the command.",
        "Adopt position",
        lambda reason: send_adopt(runtime, user, symbol, reason),
        ask_reason=True,
        key=ADOPT_KEY,
    )


def _confirm_cancel_orphan(runtime: Runtime, user: User, coid: str) -> None:
    confirm_dialog(
        f"Cancel order {coid} at the broker?",
        f"The broker has order **{coid}** and our store does not. The executor asks the broker "
        "to cancel it (an order already final there is only noted). Your name and reason are "
        "kept with the command.",
        "Cancel order",
        lambda reason: send_cancel_orphan(runtime, user, coid, reason),
        ask_reason=True,
        key=ORPHAN_KEY,
    )


__all__ = [
    "render_reconciliation",
    "send_adopt",
    "send_cancel_orphan",
]
