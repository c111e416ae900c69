"""What every page shares: the header, sending commands and following them, confirmations
and number formatting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import streamlit as st

from app import state
from app.runtime import Runtime
from core.domain import CommandStatus, CommandType, ValidationError
from core.users import Action, User
from db.queries.status import ExecutorStatus

T = TypeVar("T")

HEADER_REFRESH_S = 2.0
FEED_REFRESH_S = 1.0


# ---------------------------------------------------------------------------------- formatting
def money(value: Decimal | float | int | None, places: int = 2) -> str:
    if value is None:
        return "n/a"
    d = Decimal(str(value))
    sign = "-" if d < 0 else ""
    return f"{sign}${abs(d):,.{places}f}"


def age(delta: timedelta | None) -> str:
    if delta is None:
        return "never"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s ago"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m ago"


# ---------------------------------------------------------------------------------- commands
def send_command(
    runtime: Runtime,
    user: User,
    kind: CommandType,
    payload: dict[str, Any],
    label: str,
    action: Action | None = None,
) -> int | None:
    """Write a command as ``user`` (the role is checked against the store) and follow it in
    the command feed; the error is shown, and None returned, when it cannot be sent."""
    try:
        command_id = runtime.service().send_command(user.username, kind, payload, action)
    except ValidationError as exc:  # PermissionDenied included
        st.error(f"{label}: {exc}")
        return None
    sent = st.session_state.setdefault(state.SENT, [])
    sent.append((command_id, label))
    del sent[:-20]
    runtime.wake()
    st.toast(f"{label}: sent (command {command_id}), waiting for the executor")
    return command_id


def status_badge(status: CommandStatus | str) -> str:
    value = CommandStatus(status)
    if value is CommandStatus.APPLIED:
        return ":green-badge[applied]"
    if value is CommandStatus.REJECTED:
        return ":red-badge[rejected]"
    return ":orange-badge[pending]"


@st.fragment(run_every=FEED_REFRESH_S)
def render_command_feed(runtime: Runtime) -> None:
    """This session's commands: pending → applied or rejected with the reason (toasts too)."""
    sent: list[tuple[int, str]] = st.session_state.get(state.SENT, [])
    if not sent:
        return
    shown: dict[int, str] = st.session_state.setdefault(state.SHOWN, {})
    labels = dict(sent)
    commands = runtime.queries.status.commands([cid for cid, _ in sent])
    with st.container(border=True):
        st.caption("Your commands")
        for command in reversed(commands):
            assert command.id is not None
            label = labels.get(command.id, command.type)
            result = f" — {command.result}" if command.result else ""
            st.markdown(f"{status_badge(command.status)} **{label}** (#{command.id}){result}")
            previous = shown.get(command.id)
            if previous != command.status.value:
                shown[command.id] = command.status.value
                if previous is not None and command.status is not CommandStatus.PENDING:
                    icon = "✅" if command.status is CommandStatus.APPLIED else "⛔"
                    st.toast(f"{label}: {command.status.value}{result}", icon=icon)


def confirmation(key: str, request: T | None) -> T | None:
    """The request waiting for confirmation under ``key`` (the ``confirm_dialog`` key).

    ``request`` when it was just made (it is kept for the dialog); else, during the run in
    which a button of that dialog was clicked, the kept request, so the dialog is drawn again
    and the click reaches it. In a browser such a click reruns only the dialog; where it reruns
    the whole script (AppTest) the dialog would otherwise be gone and the click lost.
    """
    kept = f"{key}_request"
    if request is not None:
        st.session_state[kept] = request
        return request
    if st.session_state.get(f"{key}_confirm") or st.session_state.get(f"{key}_cancel"):
        return st.session_state.get(kept)
    return None


def confirm_dialog(
    title: str,
    message: str,
    confirm_label: str,
    on_confirm: Callable[[str], object],
    *,
    ask_reason: bool = False,
    key: str,
) -> None:
    """Open a confirmation dialog; ``on_confirm(reason)`` runs only after the confirm click."""

    @st.dialog(title)
    def _dialog() -> None:
        st.markdown(message)
        reason = st.text_input("Reason", key=f"{key}_reason") if ask_reason else ""
        left, right = st.columns(2)
        confirmed = left.button(confirm_label, type="primary", key=f"{key}_confirm")
        if right.button("Cancel", key=f"{key}_cancel"):
            st.rerun()
        if confirmed:
            if ask_reason and not reason.strip():
                st.error("A reason is required.")
                return
            on_confirm(reason.strip())
            st.rerun()

    _dialog()


def show_flash(key: str) -> None:
    """Show (once) the outcome an action stored under ``key`` before the page reran."""
    flash = st.session_state.pop(key, None)
    if not flash:
        return
    kind, message = flash
    if kind == "error":
        st.error(message)
    else:
        st.success(message, icon=":material/check_circle:")


# ---------------------------------------------------------------------------------- header
def _mode_badge(status: ExecutorStatus) -> str:
    if status.live:
        return ":red-background[**:material/warning: LIVE TRADING — REAL MONEY**]"
    if status.live_account:
        return ":orange-background[**LIVE ACCOUNT — LOCKED: only exits go out**]"
    return ":green-background[**PAPER**]"


LIVE_BANNER = "LIVE TRADING — orders on this account use real money"
LOCKED_BANNER = (
    "Live account, locked: new-risk orders are refused until an admin switches live trading "
    "on; exits still go out"
)


def _mode_banner(status: ExecutorStatus) -> None:
    """A full-width banner on every page while the account is a live one."""
    if status.live:
        st.error(LIVE_BANNER, icon=":material/warning:")
    elif status.live_account:
        st.warning(LOCKED_BANNER, icon=":material/lock:")


def _executor_line(status: ExecutorStatus) -> str:
    if status.holder is None:
        return "executor: never started"
    role = "leader" if status.running else "down"
    beat = age(status.heartbeat_age)
    return f"executor: {role} `{status.holder}` · heartbeat {beat} · broker {status.broker}"


def _toasts(status: ExecutorStatus, runtime: Runtime) -> None:
    fills = runtime.queries.status.last_fill_id()
    seen = st.session_state.get(state.SEEN_FILLS)
    if seen is not None and fills > seen:
        n = runtime.queries.status.fills_after(seen)
        st.toast(f"{n} new fill{'s' if n > 1 else ''}", icon="💰")
    st.session_state[state.SEEN_FILLS] = fills
    was = st.session_state.get(state.SEEN_KILL)
    if was is False and status.kill_switch.active:
        st.toast(f"Kill switch ON: {status.kill_switch.reason}", icon="🛑")
    st.session_state[state.SEEN_KILL] = status.kill_switch.active


@st.fragment(run_every=HEADER_REFRESH_S)
def render_header(runtime: Runtime) -> None:
    """Account summary, PAPER/LIVE, executor and kill-switch state, and banners."""
    last = st.session_state.get(state.LAST_SEEN)
    limit = runtime.settings.session_timeout_min * 60
    if last is not None and time.time() - float(last) > limit:
        st.rerun(scope="app")  # the login gate signs the session out
    status = runtime.queries.status.executor()
    _mode_banner(status)
    st.markdown(f"{_mode_badge(status)} &nbsp; {_executor_line(status)}")
    account = status.account
    if account is None:
        st.caption("No account snapshot yet: the executor publishes one with every heartbeat.")
    else:
        cols = st.columns(5)
        cols[0].metric("Equity", money(account.equity, 0), money(account.daily_pnl))
        cols[1].metric("Cash", money(account.cash, 0))
        cols[2].metric("Buying power", money(account.buying_power, 0))
        cols[3].metric("Margin used", money(account.margin_used, 0))
        left = account.day_trades_remaining
        cols[4].metric("Day trades left", "unlimited" if left is None else str(left))
    if status.kill_switch.active:
        ks = status.kill_switch
        when = ks.at.strftime("%Y-%m-%d %H:%M:%S UTC") if ks.at else "?"
        st.error(
            f"**Kill switch ON** since {when}: {ks.reason} (by {ks.by or 'the engine'}). "
            "No new entries are sent.",
            icon=":material/front_hand:",
        )
    if not status.running:
        why = "no executor has started" if status.holder is None else "its heartbeat stopped"
        st.warning(
            f"**Executor down**: {why}. Commands wait until one runs.", icon=":material/error:"
        )
    elif status.broker_down:
        st.warning(f"**Broker disconnected** ({status.broker}).", icon=":material/cloud_off:")
    if status.last_error and status.running:
        st.caption(f"Last executor error: {status.last_error}")
    _toasts(status, runtime)
