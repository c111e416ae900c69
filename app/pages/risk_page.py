"""Risk Dashboard: the kill switch, daily loss and concurrent positions against their limits,
exposure by symbol and sector, the intraday and daily P&L curve, and drawdown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from app.components import risk as charts
from app.components.common import confirm_dialog, money, send_command
from app.components.risk_data import summarize
from app.runtime import Runtime
from app.state import current_user, dashboard_runtime
from core.domain import CommandType
from core.users import Action, User

KILL_SWITCH_REFRESH_S = 2.0
RISK_REFRESH_S = 5.0
HISTORY_ROWS = 10
#: Days of the daily P&L curve and its drawdown.
DAILY_DAYS = 90

TIMES = {
    name: st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
    for name in ("at", "created_at")
}

runtime = dashboard_runtime()
user = current_user()


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "?"


@st.fragment(run_every=KILL_SWITCH_REFRESH_S)
def kill_switch_state(runtime: Runtime, shown_active: bool) -> None:
    """The latched state with its trigger, who and when, and the recent history."""
    ks = runtime.queries.status.executor().kill_switch
    if ks.active != shown_active:
        st.rerun(scope="app")  # the state changed: redraw the controls to match it
    if ks.active:
        st.error(
            f"**Kill switch ON** — trigger: {ks.reason}  \n"
            f"by {ks.by or 'the engine'} at {_when(ks.at)}. No new entries are sent.",
            icon=":material/front_hand:",
        )
    else:
        released = f"  \nLast released by {ks.by} at {_when(ks.at)}: {ks.reason}" if ks.at else ""
        st.success(f"**Kill switch off**: new entries are allowed.{released}")
    with st.expander("Kill switch history"):
        history = runtime.queries.risk.kill_switch_history(HISTORY_ROWS)
        if history.empty:
            st.caption("The kill switch has never been turned on.")
        else:
            history["state"] = history["active"].map({True: "ON", False: "off"})
            st.dataframe(
                history[["at", "state", "reason", "by"]], hide_index=True, column_config=TIMES
            )
        requests = runtime.queries.risk.kill_switch_commands(HISTORY_ROWS)
        if not requests.empty:
            st.caption("Requests from the dashboard (the audit trail)")
            cols = ["id", "type", "reason", "created_by", "created_at", "status", "result"]
            st.dataframe(requests[cols], hide_index=True, column_config=TIMES)


def _confirm(
    opened: bool, key: str, title: str, label: str, message: str, on_confirm: Callable
) -> None:
    """The confirmation dialog with a reason, opened by the ``opened`` click."""
    # A click inside the dialog reruns only the dialog in a browser, but the whole page under
    # AppTest: keep the dialog open on any run in which one of its own buttons was pressed.
    pressed = any(st.session_state.get(f"{key}_{name}") for name in ("confirm", "cancel"))
    if opened or pressed:
        confirm_dialog(title, message, label, on_confirm, ask_reason=True, key=key)


def kill_switch_controls(runtime: Runtime, user: User, active: bool) -> None:
    if not user.can(Action.KILL_SWITCH):
        st.caption("Turning the kill switch on or off needs the trader role.")
        return
    if active:
        opened = st.button("Release kill switch…", key="ks_off_open", icon=":material/play_arrow:")
        _confirm(
            opened,
            "ks_off",
            "Release the kill switch",
            "Release",
            "New entries will be allowed again. Say why it is safe to resume.",
            lambda reason: send_command(
                runtime, user, CommandType.KILL_SWITCH_OFF, {"reason": reason}, "Kill switch off"
            ),
        )
        return
    left, right = st.columns([1, 2])
    opened = left.button(
        "Activate kill switch…", type="primary", key="ks_on_open", icon=":material/front_hand:"
    )
    flatten = right.checkbox("Also close every position (flatten)", key="ks_flatten")
    payload: dict[str, object] = {"flatten": True} if flatten else {}
    closing = " Every open position is closed with a market order." if flatten else ""
    _confirm(
        opened,
        "ks_on",
        "Turn the kill switch on",
        "Turn on",
        "No new entries will be sent and working entry orders are cancelled; stops and targets "
        f"of open positions keep working.{closing} It stays on until a trader releases it.",
        lambda reason: send_command(
            runtime,
            user,
            CommandType.KILL_SWITCH_ON,
            {"reason": reason, **payload},
            "Kill switch on",
        ),
    )


@st.fragment(run_every=RISK_REFRESH_S)
def risk_panel(runtime: Runtime) -> None:
    """Limits, exposure and P&L, read on every refresh."""
    q = runtime.queries.risk
    account = runtime.queries.status.executor().account
    profile = runtime.current_profile()
    now = runtime.market.clock.now().astimezone(UTC)
    start = datetime.combine(now.date(), time.min, tzinfo=UTC)
    since = now.date() - timedelta(days=DAILY_DAYS - 1)
    exposure = q.exposure()
    held = q.concurrent_positions()
    realized = q.realized(since, minutes_from=start)
    rows = q.daily_pnl(days=DAILY_DAYS)
    view = summarize(
        now=now,
        start=start,
        exposure=exposure,
        by_day=realized.by_day,
        by_minute=realized.by_minute,
        daily_rows=rows[rows["day"] >= since],
        daily_loss_limit=profile.daily_loss_limit,
        account_equity=account.equity if account else None,
        account_daily_pnl=account.daily_pnl if account else None,
    )
    loss, equity = view.loss, view.equity

    cols = st.columns(5)
    cols[0].metric("Equity", money(equity, 0), help=None if account else "No account snapshot yet")
    cols[1].metric("Today's P&L", money(loss.pnl))
    used = "n/a" if loss.used is None else f"{loss.used:.0%}"
    limit_help = f"Limit: {profile.daily_loss_limit:.0%} of the day's starting equity"
    cols[2].metric("Daily loss used", used, help=limit_help)
    cols[3].metric("Positions", f"{held.count} / {profile.max_concurrent_positions}")
    cols[4].metric("Gross exposure", money(view.gross, 0))
    notes = []
    if equity:
        share = view.gross / equity
        notes.append(f"Gross exposure is {share:.0%} of equity (limit {profile.leverage_limit}x).")
    if held.pending:
        pending = ", ".join(held.pending)
        notes.append(f"Counted as positions for their working entry orders: {pending}.")
    if notes:
        st.caption(" ".join(notes))

    gauges = charts.build_gauge_figure(
        loss.loss, loss.limit, held.count, profile.max_concurrent_positions
    )
    st.plotly_chart(gauges, width="stretch", key="risk_gauges")
    if exposure.empty:
        st.info("No open positions: nothing is exposed.", icon=":material/inventory_2:")
    else:
        fig = charts.build_exposure_figure(
            exposure, equity, profile.max_single_exposure, profile.max_sector_exposure
        )
        st.plotly_chart(fig, width="stretch", key="risk_exposure")
    if not view.has_pnl:
        st.info(
            "No trades closed yet: the P&L curve starts with the first exit.",
            icon=":material/show_chart:",
        )
        return
    pnl = charts.build_pnl_figure(view.intraday, view.daily)
    st.plotly_chart(pnl, width="stretch", key="risk_pnl")
    drawdown_limit = profile.max_drawdown * equity if equity else None
    drawdown = charts.build_drawdown_figure(view.daily, drawdown_limit)
    st.plotly_chart(drawdown, width="stretch", key="risk_drawdown")


st.title("Risk Dashboard")
active = runtime.queries.status.executor().kill_switch.active
kill_switch_state(runtime, active)
kill_switch_controls(runtime, user, active)
st.divider()
risk_panel(runtime)
