"""The Settings page's live trading section: the account's paper history against the live
gate's minimums, whether live trading is on, and the last switch on record, for everyone; for
admins, switching a live account to live trading (after typing LIVE) and back to paper, and the
gate's minimums. Each is a command: the executor checks the gate itself and records who
switched, when and on what history."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.components.common import confirm_dialog, confirmation, send_command
from app.components.settings import EASTERN, STATUS_REFRESH_S
from app.runtime import Runtime
from core.config import LIVE_GATE_KEY
from core.domain import CommandType
from core.live_gate import LiveGateConfig
from core.service import LiveGateView
from core.users import Action, User

GO_LIVE_KEY = "settings_go_live"
GO_PAPER_KEY = "settings_go_paper"
GATE_FORM = "settings_gate_form"
#: The word an admin types to confirm the switch to live trading.
LIVE_WORD = "LIVE"

PAPER_ACCOUNT = (
    "This process trades on a paper account: orders are simulated and no real money moves, so "
    "there is nothing to switch. Live trading needs a live account configured when the process "
    "starts: `AXION_BROKER=alpaca` with `AXION_ALPACA_LIVE=true`, or `AXION_BROKER=ibkr` with "
    "`AXION_IBKR_LIVE=true`. Such an account starts locked (only exits go out) until an admin "
    "switches live trading on here, once the paper history below meets the gate."
)


def _when(value: Any) -> str:
    if not value:
        return "?"
    try:
        at = pd.to_datetime(value, utc=True).tz_convert(EASTERN)
    except (ValueError, TypeError):
        return str(value)
    return f"{at:%Y-%m-%d %H:%M:%S %Z}"


def describe_record(record: dict[str, Any] | None) -> str:
    """The last switch on record, in a sentence."""
    if not record:
        return "No switch on record: live trading has never been switched on."
    by, at = record.get("by") or "?", _when(record.get("at"))
    if record.get("live") is True:
        gate = record.get("config") or {}
        needed = (
            f" (the gate asked for {gate.get('min_paper_sessions')} and "
            f"{gate.get('min_closed_trades')})"
            if gate
            else ""
        )
        return (
            f"Switched to **LIVE** by **{by}** on {at}, on {record.get('paper_sessions')} paper "
            f"sessions and {record.get('closed_paper_trades')} closed paper trades{needed}."
        )
    reason = record.get("reason") or "no reason given"
    return f"Switched back to **paper** by **{by}** on {at}: {reason}."


def render_mode(view: LiveGateView, live_account: bool) -> None:
    if not live_account:
        st.success("**Paper account**: orders are simulated, no real money.")
    elif view.live:
        st.error(
            "**LIVE trading is on**: orders on this account use real money.",
            icon=":material/warning:",
        )
    else:
        st.warning(
            "**Live account, locked**: new-risk orders are refused until an admin switches live "
            "trading on; exits still go out.",
            icon=":material/lock:",
        )


def render_history(view: LiveGateView) -> None:
    """The paper history against the gate's minimums."""
    history, config = view.history, view.config
    cols = st.columns(2)
    for col, label, have, need in (
        (cols[0], "Paper sessions", history.sessions, config.min_paper_sessions),
        (cols[1], "Closed paper trades", history.closed_trades, config.min_closed_trades),
    ):
        col.metric(label, f"{have} of {need}")
        col.progress(min(1.0, have / need))
    if view.decision.allowed:
        st.caption("The paper history meets the gate.")


@st.fragment(run_every=STATUS_REFRESH_S)
def render_live_state(runtime: Runtime, shown_live: bool) -> None:
    """Live or not, the paper history and the last switch (redraws the controls when the
    executor switched meanwhile)."""
    view = runtime.service().live_gate()
    if view.live != shown_live:
        st.rerun(scope="app")
    render_mode(view, runtime.live_account)
    render_history(view)
    st.markdown(describe_record(view.record))


# ---------------------------------------------------------------------------------- admins
def send_go_live(runtime: Runtime, user: User) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.GO_LIVE,
        {"confirm": True},
        "Switch to LIVE trading",
        action=Action.MANAGE_BROKERS,
    )


def send_go_paper(runtime: Runtime, user: User, reason: str) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.GO_PAPER,
        {"reason": reason},
        "Back to paper trading",
        action=Action.MANAGE_BROKERS,
    )


def go_live_dialog(runtime: Runtime, user: User) -> None:
    """The confirmation: real money, who switches is recorded, and the word typed."""

    @st.dialog("Switch to LIVE trading?")
    def _dialog() -> None:
        st.markdown(
            "From then on, new orders on this account **use real money**: signals, manual "
            "orders and rebalances all go to the live account. Your name, the time and the "
            "paper history are recorded with the switch, and a critical alert is raised. The "
            "executor checks the paper history again before it switches."
        )
        typed = st.text_input(f"Type {LIVE_WORD} to confirm", key=f"{GO_LIVE_KEY}_word")
        left, right = st.columns(2)
        confirmed = left.button(
            "Switch to LIVE", type="primary", key=f"{GO_LIVE_KEY}_confirm", icon=":material/bolt:"
        )
        if right.button("Cancel", key=f"{GO_LIVE_KEY}_cancel"):
            st.rerun()
        if confirmed:
            if typed.strip() != LIVE_WORD:
                st.error(f"Type {LIVE_WORD} (in capitals) to switch.")
                return
            send_go_live(runtime, user)
            st.rerun()

    _dialog()


def render_switch(runtime: Runtime, user: User, view: LiveGateView) -> None:
    """Switch to LIVE (behind the gate) or back to paper (with a reason)."""
    if view.live:
        clicked = st.button("Back to paper", key=f"{GO_PAPER_KEY}_open", icon=":material/shield:")
        if confirmation(GO_PAPER_KEY, True if clicked else None):
            confirm_dialog(
                "Back to paper trading?",
                "New-risk orders on this live account are refused again (exits and the kill "
                "switch's orders still go out). Your name and reason are recorded.",
                "Back to paper",
                lambda reason: send_go_paper(runtime, user, reason),
                ask_reason=True,
                key=GO_PAPER_KEY,
            )
        return
    allowed = view.decision.allowed
    clicked = st.button(
        "Switch to LIVE trading",
        type="primary",
        key=f"{GO_LIVE_KEY}_open",
        icon=":material/bolt:",
        disabled=not allowed,
    )
    if not allowed:
        st.warning(
            f"Switching needs more paper history: {', '.join(view.decision.reasons)}.",
            icon=":material/hourglass_empty:",
        )
    else:
        st.caption(
            "The executor checks the gate again when it applies the switch; if the history "
            "falls short it rejects the command with what is missing."
        )
    if confirmation(GO_LIVE_KEY, True if clicked and allowed else None):
        go_live_dialog(runtime, user)


def gate_form_values(config: LiveGateConfig) -> dict[str, int] | None:
    """The gate's minimums form; the setting's value when submitted, else None."""
    with st.form(GATE_FORM):
        st.markdown("**Live gate**: the paper history live trading needs")
        cols = st.columns(2)
        sessions = cols[0].number_input(
            "Minimum paper sessions",
            min_value=1,
            value=config.min_paper_sessions,
            step=1,
            key="settings_gate_sessions",
        )
        trades = cols[1].number_input(
            "Minimum closed paper trades",
            min_value=1,
            value=config.min_closed_trades,
            step=1,
            key="settings_gate_trades",
        )
        submitted = st.form_submit_button("Save the gate")
    if not submitted:
        return None
    return {"min_paper_sessions": int(sessions), "min_closed_trades": int(trades)}


def render_gate_editor(runtime: Runtime, user: User, config: LiveGateConfig) -> None:
    value = gate_form_values(config)
    if value is None:
        return
    if value == config.to_dict():
        st.info("Nothing changed.")
        return
    send_command(
        runtime,
        user,
        CommandType.UPDATE_SETTING,
        {"key": LIVE_GATE_KEY, "value": value},
        f"Live gate: {value['min_paper_sessions']} paper sessions, "
        f"{value['min_closed_trades']} closed paper trades",
        action=Action.MANAGE_BROKERS,
    )


def render_live_trading(runtime: Runtime, user: User) -> None:
    """The section: the state for everyone, the controls for admins."""
    view = runtime.service().live_gate()
    st.caption(
        "Paper before live: a live account trades real money only after an admin switches it "
        "on, and only once the paper history meets the gate's minimums. A paper session counts "
        "when at least one trade closed in it."
    )
    render_live_state(runtime, view.live)
    if not runtime.live_account:
        st.info(PAPER_ACCOUNT, icon=":material/info:")
    if not user.can(Action.MANAGE_BROKERS):
        st.caption("Switching live trading and changing the gate need the admin role.")
        return
    if runtime.live_account:
        render_switch(runtime, user, view)
    render_gate_editor(runtime, user, view.config)


__all__ = [
    "describe_record",
    "render_live_trading",
    "send_go_live",
    "send_go_paper",
]
