"""The Settings page's parts: the executor (status and this process's thread), market data and
broker, the paper broker's fill settings, reconciliation and the command audit.

Views only read (``SettingsQueries``, the status queries); changes go out as commands the
executor applies, except starting and stopping this process's own executor thread, which is a
process control checked against the stored user's role right before it runs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, get_args

import pandas as pd
import streamlit as st

from app.components.common import age, confirm_dialog, confirmation, send_command
from app.runtime import Runtime
from app.settings import AxionSettings
from core.brokers.paper_config import (
    COMMISSION_KEY,
    IMPACT_KEY,
    LATENCY_KEY,
    PAPER_FILL_KEYS,
    PARTICIPATION_KEY,
    PaperConfig,
)
from core.domain import CommandStatus, CommandType, ValidationError
from core.user_admin import UserAdmin
from core.users import Action, User, require
from db.queries.settings import SettingsQueries

STATUS_REFRESH_S = 2.0
AUDIT_REFRESH_S = 3.0
EASTERN = "America/New_York"

STOP_KEY = "settings_executor_stop"
ADOPT_KEY = "settings_adopt"
ORPHAN_KEY = "settings_orphan"

LIVE_BROKERS = {"alpaca": "Alpaca", "ibkr": "Interactive Brokers"}
COMMISSION_KINDS = {
    "zero": "Commission-free",
    "per_share": "Per share (with minimum and cap)",
    "percent": "Percent of notional (with minimum)",
}
KNOB_LABELS = {
    PARTICIPATION_KEY: "Participation (share of each 1-minute bar's volume)",
    IMPACT_KEY: "Impact (bps per 1 % of average daily volume)",
    LATENCY_KEY: "Latency (ms before an order may fill)",
    COMMISSION_KEY: "Commission",
}


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


def _when(column: str) -> Any:
    return st.column_config.DatetimeColumn(column, format="YYYY-MM-DD HH:mm:ss z")


def setting_columns() -> dict[str, Any]:
    return {
        "key": st.column_config.TextColumn("Setting"),
        "value": st.column_config.TextColumn("Value"),
        "version": st.column_config.NumberColumn("Version"),
        "updated_by": st.column_config.TextColumn("By"),
        "updated_at": _when("Changed"),
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
            "configuration (`AXION_BROKER`, with keys stored encrypted), not from this page."
        )
    if missing:
        parts.append(
            f"{' and '.join(missing)}: the engine has adapters, but this build starts "
            f"{' or '.join(f'`{c}`' for c in choices)} only."
        )
    parts.append(
        "Choosing a broker, entering keys and going live are not available from the dashboard yet."
    )
    return " ".join(parts)


# ---------------------------------------------------------------------------------- paper fills
def paper_config(runtime: Runtime) -> PaperConfig | None:
    """The paper broker's config as the executor applies it: the configured one with the
    stored fill settings; None when this process's broker does not take them."""
    config = getattr(runtime.broker, "config", None)
    if not isinstance(config, PaperConfig) or not hasattr(runtime.broker, "apply_fill_settings"):
        return None
    stored = settings_queries(runtime).current(PAPER_FILL_KEYS)
    try:
        return config.with_fill_settings({k: s.value for k, s in stored.items()})
    except ValidationError:
        return config


def describe_commission(value: dict[str, Any]) -> str:
    kind = value.get("kind", "zero")
    minimum = Decimal(str(value.get("minimum") or "0"))
    floor = f", at least ${minimum} per order" if minimum else ""
    if kind == "per_share":
        cap = value.get("max_pct")
        capped = f", at most {cap} % of notional" if cap else ""
        return f"${value.get('rate')} per share{floor}{capped}"
    if kind == "percent":
        return f"{value.get('pct')} % of notional{floor}"
    return "commission-free"


def describe_knob(key: str, value: Any) -> str:
    if key == PARTICIPATION_KEY:
        return f"{Decimal(str(value)) * 100:g} % of each bar's volume"
    if key == IMPACT_KEY:
        return f"{value} bps per 1 % of ADV"
    if key == LATENCY_KEY:
        return f"{value} ms"
    if key == COMMISSION_KEY:
        return describe_commission(value)
    return str(value)


def knobs_frame(runtime: Runtime, config: PaperConfig) -> pd.DataFrame:
    stored = settings_queries(runtime).current(PAPER_FILL_KEYS)
    rows = []
    for key, value in config.fill_settings().items():
        setting = stored.get(key)
        if setting is None:
            source = "start-up default"
        else:
            when = pd.Timestamp(setting.updated_at).tz_convert(EASTERN)
            source = f"version {setting.version} by {setting.updated_by}, {when:%Y-%m-%d %H:%M %Z}"
        rows.append(
            {
                "setting": KNOB_LABELS[key],
                "value": describe_knob(key, value),
                "key": key,
                "source": source,
            }
        )
    return pd.DataFrame(rows)


def _dec(value: float, places: int = 6) -> str:
    return str(Decimal(str(round(value, places))).normalize())


def fill_form_values(config: PaperConfig) -> dict[str, Any] | None:
    """The fill settings form; the values it gives when submitted, else None."""
    commission = config.commission
    with st.form("settings_fills_form"):
        cols = st.columns(3)
        participation = cols[0].number_input(
            "Participation (fraction of a bar's volume)",
            min_value=0.0001,
            max_value=1.0,
            value=float(config.participation_rate),
            step=0.01,
            format="%.4f",
            key="settings_fills_participation",
        )
        impact = cols[1].number_input(
            "Impact (bps per 1 % of ADV)",
            min_value=0.0,
            max_value=1000.0,
            value=float(config.impact_bps_per_pct_adv),
            step=1.0,
            key="settings_fills_impact",
        )
        latency = cols[2].number_input(
            "Latency (ms)",
            min_value=0,
            max_value=600_000,
            value=int(config.fill_settings()[LATENCY_KEY]),
            step=50,
            key="settings_fills_latency",
        )
        kinds = list(COMMISSION_KINDS)
        kind = st.selectbox(
            "Commission",
            kinds,
            index=kinds.index(commission.kind),
            format_func=COMMISSION_KINDS.__getitem__,
            key="settings_fills_commission_kind",
        )
        cols = st.columns(4)
        rate = cols[0].number_input(
            "Per share ($)",
            min_value=0.0,
            value=float(commission.rate),
            step=0.001,
            format="%.4f",
            key="settings_fills_rate",
        )
        pct = cols[1].number_input(
            "Percent of notional (%)",
            min_value=0.0,
            value=float(commission.pct),
            step=0.01,
            format="%.4f",
            key="settings_fills_pct",
        )
        minimum = cols[2].number_input(
            "Minimum per order ($)",
            min_value=0.0,
            value=float(commission.minimum),
            step=0.5,
            key="settings_fills_minimum",
        )
        cap = cols[3].number_input(
            "Cap (% of notional, 0 = none)",
            min_value=0.0,
            value=float(commission.max_pct or 0),
            step=0.1,
            key="settings_fills_cap",
        )
        submitted = st.form_submit_button("Save fill settings", type="primary")
    if not submitted:
        return None
    schedule: dict[str, Any] = {"kind": kind}
    if kind == "per_share":
        schedule.update(rate=_dec(rate), minimum=_dec(minimum), max_pct=_dec(cap) if cap else None)
    elif kind == "percent":
        schedule.update(pct=_dec(pct), minimum=_dec(minimum))
    return {
        PARTICIPATION_KEY: _dec(participation),
        IMPACT_KEY: _dec(impact),
        LATENCY_KEY: int(latency),
        COMMISSION_KEY: schedule,
    }


def changed_knobs(config: PaperConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The knobs in ``values`` that would change ``config`` (a bad value counts as a change,
    so the executor rejects it with the reason)."""
    changed = {}
    for key, value in values.items():
        try:
            same = config.with_fill_settings({key: value}) == config
        except ValidationError:
            same = False
        if not same:
            changed[key] = value
    return changed


def send_fill_settings(runtime: Runtime, user: User, changes: dict[str, Any]) -> list[int]:
    sent = []
    for key, value in changes.items():
        name = KNOB_LABELS[key].split(" (")[0].lower()
        label = f"Paper fills: {name} {describe_knob(key, value)}"
        cid = send_command(
            runtime, user, CommandType.UPDATE_SETTING, {"key": key, "value": value}, label
        )
        if cid is not None:
            sent.append(cid)
    return sent


@st.fragment(run_every=STATUS_REFRESH_S)
def render_fill_knobs(runtime: Runtime) -> None:
    """The fill settings in force (live: a change shows once the executor applied it)."""
    config = paper_config(runtime)
    if config is None:
        return
    st.dataframe(
        knobs_frame(runtime, config),
        hide_index=True,
        column_config={
            "setting": st.column_config.TextColumn("Setting"),
            "value": st.column_config.TextColumn("In force"),
            "key": st.column_config.TextColumn("Stored as"),
            "source": st.column_config.TextColumn("Set by"),
        },
    )


def render_paper_fills(runtime: Runtime, user: User) -> None:
    """The paper broker's fill realism: current values, a form for those who may change
    settings, and the change history."""
    config = paper_config(runtime)
    if config is None:
        st.info(
            f"Fill settings apply to the paper broker only; this process trades on "
            f"`{runtime.broker.name}`."
        )
        return
    st.caption(
        "How the paper broker fills: market impact grows with the order's share of average "
        "daily volume; latency holds an order back before it may fill; participation caps each "
        "1-minute bar's fill, so large orders fill partially over several bars. The executor "
        "applies a change to the running paper broker on its next tick."
    )
    render_fill_knobs(runtime)
    if user.can(Action.CHANGE_SETTINGS):
        values = fill_form_values(config)
        if values is not None:
            changes = changed_knobs(config, values)
            if not changes:
                st.info("Nothing changed.")
            else:
                send_fill_settings(runtime, user, changes)
    else:
        st.caption("Changing fill settings needs the trader role.")
    history = settings_queries(runtime).history(PAPER_FILL_KEYS, limit=50)
    with st.expander(f"Change history ({len(history)})"):
        if history.empty:
            st.caption("No fill setting has been changed yet: the start-up defaults apply.")
        else:
            st.dataframe(
                eastern(history, "updated_at"),
                hide_index=True,
                column_config=setting_columns(),
            )


# ---------------------------------------------------------------------------------- reconciliation
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
                "at": _when("When"),
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
            "created_at": _when("Given"),
            "created_by": st.column_config.TextColumn("By"),
            "type": st.column_config.TextColumn("Command"),
            "status": st.column_config.TextColumn("Status"),
            "result": st.column_config.TextColumn("Result", width="large"),
            "payload": st.column_config.TextColumn("Details"),
            "applied_at": _when("Done"),
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
    "allowed",
    "changed_knobs",
    "confirmation",
    "describe_knob",
    "paper_config",
    "render_command_audit",
    "render_executor_controls",
    "render_executor_status",
    "render_market_and_broker",
    "render_paper_fills",
    "render_reconciliation",
    "render_settings_overview",
    "settings_queries",
]
