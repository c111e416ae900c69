"""The Settings page's executor, market data and broker, and command audit sections, and what
the page's other sections share (:mod:`app.components.paper_fills`,
:mod:`app.components.reconciliation`): the settings queries, the role check, US/Eastern times and
the setting table's columns.

Views only read (``SettingsQueries``, the status queries); changes go out as commands the
executor applies, except starting and stopping this process's own executor thread, which is a
process control checked against the stored user's role right before it runs.
"""

from __future__ import annotations

from typing import Any, get_args

import pandas as pd
import streamlit as st

from app.components.common import age, confirm_dialog, confirmation
from app.runtime import Runtime
from app.settings import AxionSettings
from core.domain import CommandStatus, CommandType, ValidationError
from core.user_admin import UserAdmin
from core.users import Action, User, require
from db.queries.settings import SettingsQueries

STATUS_REFRESH_S = 2.0
AUDIT_REFRESH_S = 3.0
EASTERN = "America/New_York"

STOP_KEY = "settings_executor_stop"

LIVE_BROKERS = {"alpaca": "Alpaca", "ibkr": "Interactive Brokers"}


def settings_queries(runtime: Runtime) -> SettingsQueries:
    return runtime.queries.settings


def allowed(runtime: Runtime, user: User, action: Action) -> bool:
    """Check ``action`` against the user as stored now (not as the session remembers it);
    shows the reason and returns False when it is not allowed."""
    try:
        require(UserAdmin(runtime.store, runtime.market.clock).get(user.username), action)
    except ValidationError as exc:
        st.error(str(exc))
        return False
    return True


def eastern(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``columns`` (UTC timestamps) shown in US/Eastern, the market's time."""
    out = df.copy()
    for col in columns:
        out[col] = pd.to_datetime(out[col], utc=True).dt.tz_convert(EASTERN)
    return out


def when_column(column: str) -> Any:
    return st.column_config.DatetimeColumn(column, format="YYYY-MM-DD HH:mm:ss z")


def setting_columns() -> dict[str, Any]:
    return {
        "key": st.column_config.TextColumn("Setting"),
        "value": st.column_config.TextColumn("Value"),
        "version": st.column_config.NumberColumn("Version"),
        "updated_by": st.column_config.TextColumn("By"),
        "updated_at": when_column("Changed"),
    }


# ---------------------------------------------------------------------------------- executor
def this_process_thread(runtime: Runtime) -> tuple[bool, str]:
    """(runs a live executor thread, a sentence about it)."""
    thread = runtime.thread
    if thread is not None and thread.is_alive():
        executor = thread.executor
        if executor is None:
            return True, "This dashboard process runs an executor thread (starting)."
        role = "the leader" if executor.is_leader else "standing by (another executor leads)"
        return True, (
            f"This dashboard process runs an executor thread, `{executor.holder_id}`: {role}."
        )
    if runtime.settings.executor == "external":
        return False, (
            "This dashboard process runs no executor thread: it is configured to leave the "
            "executor to a worker process (`AXION_EXECUTOR=external`, `python -m app.worker`)."
        )
    return False, "This dashboard process runs no executor thread (it was stopped)."


@st.fragment(run_every=STATUS_REFRESH_S)
def render_executor_status(runtime: Runtime) -> None:
    """The lease holder, heartbeat, ticks and last error, and this process's thread."""
    status = runtime.queries.status.executor()
    state = "running" if status.running else "down"
    if status.holder is None:
        state = "never started"
    cols = st.columns(3)
    cols[0].metric("Executor", state)
    cols[1].metric("Heartbeat", age(status.heartbeat_age))
    cols[2].metric("Ticks", f"{status.ticks:,}")
    if status.holder is not None:
        connected = {True: "connected", False: "disconnected", None: "unknown"}[status.connected]
        if status.expires_at is not None and status.expires_at > status.now:
            expires = pd.Timestamp(status.expires_at).tz_convert(EASTERN)
            lease = f"holds the lease until {expires:%H:%M:%S %Z}"
        else:
            lease = "held the lease last (released or expired)"
        st.markdown(
            f"Leader `{status.holder}` {lease} · broker `{status.broker or 'n/a'}` ({connected})"
        )
    if status.last_error:
        st.warning(f"Last executor error: {status.last_error}", icon=":material/error:")
    else:
        st.caption("No executor error reported.")
    st.markdown(this_process_thread(runtime)[1])


def start_executor(runtime: Runtime, user: User) -> None:
    if allowed(runtime, user, Action.EXECUTOR_CONTROL):
        runtime.start_executor()
        st.toast("Executor thread started in this process", icon=":material/play_arrow:")


def stop_executor(runtime: Runtime, user: User) -> None:
    if allowed(runtime, user, Action.EXECUTOR_CONTROL):
        runtime.stop_executor()
        st.toast("Executor thread stopped in this process", icon=":material/stop:")


def render_executor_controls(runtime: Runtime, user: User) -> None:
    """Start or stop this process's executor thread (admins)."""
    if not user.can(Action.EXECUTOR_CONTROL):
        st.caption("Starting and stopping the executor needs the admin role.")
        return
    running, _ = this_process_thread(runtime)
    if not running:
        if st.button(
            "Start an executor thread in this process",
            key="settings_executor_start",
            icon=":material/play_arrow:",
        ):
            start_executor(runtime, user)
            st.rerun()
        st.caption(
            "Several processes may each run one: the store's lease makes exactly one of them "
            "the account's leader, the others stand by."
        )
        return
    clicked = st.button(
        "Stop this process's executor thread", key=f"{STOP_KEY}_open", icon=":material/stop:"
    )
    if confirmation(STOP_KEY, True if clicked else None):
        confirm_dialog(
            "Stop the executor thread?",
            "This process stops ticking: commands wait, no signals are routed and no orders are "
            "sent until an executor runs again. If it leads, it releases the lease so that an "
            "executor in another process (if any) takes over at once. Working orders stay at "
            "the broker.",
            "Stop executor",
            lambda _reason: stop_executor(runtime, user),
            key=STOP_KEY,
        )


# ---------------------------------------------------------------------------------- market, broker
def render_market_and_broker(runtime: Runtime) -> None:
    settings = runtime.settings
    left, right = st.columns(2)
    with left:
        st.markdown("**Market data**")
        if settings.market == "replay":
            st.markdown(
                f"Replay of `{settings.replay_file}` at {settings.market_speed:g}x "
                "(market seconds per real second)."
            )
        else:
            st.markdown(
                f"Simulated market at {settings.market_speed:g}x (market seconds per real "
                f"second), seed {settings.market_seed}."
            )
        st.caption("Set at start by `AXION_MARKET`, `AXION_MARKET_SPEED`, `AXION_MARKET_SEED`.")
    with right:
        st.markdown("**Broker**")
        paper = " (simulated fills, no real money)" if settings.broker == "paper" else ""
        st.markdown(f"`{runtime.broker.name}` broker{paper}, account `{settings.account}`.")
        st.info(broker_note(), icon=":material/info:")
    render_broker_routes(runtime)


def broker_choices() -> tuple[str, ...]:
    """The brokers this build's configuration accepts (``AXION_BROKER``)."""
    return tuple(get_args(AxionSettings.model_fields["broker"].annotation)) or ("paper",)


def broker_note() -> str:
    choices = broker_choices()
    live = [name for key, name in LIVE_BROKERS.items() if key in choices]
    missing = [name for key, name in LIVE_BROKERS.items() if key not in choices]
    parts = []
    if live:
        parts.append(
            f"{' and '.join(live)} {'is' if len(live) == 1 else 'are'} selected by the process "
            "configuration (`AXION_BROKER`), not from this page; `AXION_FALLBACK_BROKER` "
            "(`alpaca` or `ibkr`) adds a second broker that takes new orders while the first "
            "cannot be reached."
        )
    if missing:
        parts.append(
            f"{' and '.join(missing)}: the engine has adapters, but this build starts "
            f"{' or '.join(f'`{c}`' for c in choices)} only."
        )
    parts.append(
        "Broker keys are stored encrypted and managed by admins; a live account trades real "
        "money only once an admin switches live trading on (the Live trading tab)."
    )
    return " ".join(parts)


def routes_frame(routes: dict[str, Any]) -> pd.DataFrame:
    """One row per broker of a routed setup: its role, whether it takes new orders, up or
    down, since when it failed and its last error."""
    active = routes.get("active")
    rows = [
        {
            "name": b.get("name"),
            "role": b.get("role"),
            "active": b.get("name") == active,
            "state": "up" if b.get("up") else "down",
            "connected": b.get("connected"),
            "failed_at": b.get("failed_at"),
            "last_error": b.get("last_error") or "",
        }
        for b in routes.get("brokers") or []
        if isinstance(b, dict)
    ]
    columns = ["name", "role", "active", "state", "connected", "failed_at", "last_error"]
    return eastern(pd.DataFrame(rows, columns=columns), "failed_at")


@st.fragment(run_every=STATUS_REFRESH_S)
def render_broker_routes(runtime: Runtime) -> None:
    """With a fallback broker: which broker takes new orders and each broker's state, as the
    executor last published them."""
    routes = runtime.queries.status.executor().routes
    if not routes:
        return
    st.markdown(f"**Routing**: new orders go to `{routes.get('active') or 'n/a'}`.")
    down_since = routes.get("down_since")
    if down_since:
        since = pd.to_datetime(down_since, utc=True).tz_convert(EASTERN)
        st.warning(
            f"The primary broker has been unreachable since {since:%Y-%m-%d %H:%M:%S %Z}: new "
            "orders go to the fallback; each order stays with the broker that took it.",
            icon=":material/alt_route:",
        )
    st.dataframe(
        routes_frame(routes),
        hide_index=True,
        column_config={
            "name": st.column_config.TextColumn("Broker"),
            "role": st.column_config.TextColumn("Role"),
            "active": st.column_config.CheckboxColumn("Takes new orders"),
            "state": st.column_config.TextColumn("State"),
            "connected": st.column_config.CheckboxColumn("Connected"),
            "failed_at": when_column("Failed at"),
            "last_error": st.column_config.TextColumn("Last error", width="large"),
        },
    )


# ---------------------------------------------------------------------------------- audit
@st.fragment(run_every=AUDIT_REFRESH_S)
def render_command_audit(runtime: Runtime) -> None:
    """Recent commands: who, what, when, status and result (pending ones update live)."""
    queries = settings_queries(runtime)
    cols = st.columns([3, 2, 2, 1])
    types = cols[0].multiselect(
        "Command", [t.value for t in CommandType], key="settings_audit_types"
    )
    who = cols[1].selectbox(
        "Given by", queries.command_authors(), index=None, key="settings_audit_by"
    )
    status = cols[2].selectbox(
        "Status", [s.value for s in CommandStatus], index=None, key="settings_audit_status"
    )
    limit = cols[3].number_input(
        "Rows", min_value=10, max_value=1000, value=100, step=10, key="settings_audit_limit"
    )
    df = queries.commands(int(limit), types=types, created_by=who, status=status)
    if df.empty:
        st.caption("No command matches." if types or who or status else "No command yet.")
        return
    st.dataframe(
        eastern(df, "created_at", "applied_at"),
        hide_index=True,
        column_order=[
            "id",
            "created_at",
            "created_by",
            "type",
            "status",
            "result",
            "payload",
            "applied_at",
        ],
        column_config={
            "id": st.column_config.NumberColumn("#"),
            "created_at": when_column("Given"),
            "created_by": st.column_config.TextColumn("By"),
            "type": st.column_config.TextColumn("Command"),
            "status": st.column_config.TextColumn("Status"),
            "result": st.column_config.TextColumn("Result", width="large"),
            "payload": st.column_config.TextColumn("Details"),
            "applied_at": when_column("Done"),
        },
    )


def render_settings_overview(runtime: Runtime) -> None:
    """Every stored run-time setting, its version and who changed it last."""
    df = settings_queries(runtime).settings()
    if df.empty:
        st.caption("No run-time setting has been stored: the configured defaults apply.")
        return
    st.dataframe(
        eastern(df, "updated_at"),
        hide_index=True,
        column_config=setting_columns(),
    )


__all__ = [
    "EASTERN",
    "STATUS_REFRESH_S",
    "allowed",
    "confirmation",
    "eastern",
    "render_broker_routes",
    "render_command_audit",
    "render_executor_controls",
    "render_executor_status",
    "render_market_and_broker",
    "render_settings_overview",
    "routes_frame",
    "setting_columns",
    "settings_queries",
    "when_column",
]
