"""The Instrument Mode page's parts: the mode picker with the routing table (seed 001), the risk
profile form (seed 000 / 001 profiles), the autonomous-trading opt-in and the watchlist.

Every change is an ``update_setting`` command the executor validates, stores as a new version
(who and when) and applies; the tables here are built by pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from app.components.common import confirm_dialog, send_command
from app.runtime import Runtime
from core.config import validate_setting
from core.domain import CommandType, InstrumentType, TradeType, ValidationError
from core.instruments.config import InstrumentConfig
from core.instruments.modes import InstrumentMode, route_kind
from core.ports import SettingValue
from core.rebalance.runner import AUTONOMOUS_KEY
from core.risk.config import PROFILES, RiskProfile, validate_profile_setting
from core.signals.demo import WATCHLIST_KEY
from core.signals.ema_cloud import EmaCloudConfig
from core.users import Action, User

MODE_KEY = "executor.instrument_mode"
PROFILE_KEY = "risk.profile"
#: Session key: the autonomous opt-in's confirmation waiting to open.
AUTONOMOUS_DIALOG = "axion_autonomous_confirm"
#: The settings this page shows, and how often it looks for new versions of them.
WATCHED = (MODE_KEY, PROFILE_KEY, AUTONOMOUS_KEY, WATCHLIST_KEY)
WATCH_REFRESH_S = 2.0

MODE_LABELS = {
    InstrumentMode.OPTIONS: "Options",
    InstrumentMode.LEVERAGED_ETF: "Leveraged ETF",
    InstrumentMode.BOTH: "Both",
}
OPTIONS_NOTE = (
    "Options are not traded yet: a signal the table routes to options is rejected, with that "
    "reason stored on the signal, until options trading is supported."
)

#: What each risk-profile parameter means (the form's help and the viewer's table).
PROFILE_HELP: dict[str, str] = {
    "max_risk_per_trade": "loss at the stop a position is sized for, share of equity",
    "max_concurrent_positions": "distinct symbols held or with a working entry",
    "daily_loss_limit": "no new risk once the day's loss reaches this share of equity",
    "max_single_exposure": "largest position in one symbol, share of equity",
    "max_sector_exposure": "largest exposure to one sector, share of equity",
    "min_account_equity": "no new risk below this equity (dollars)",
    "slippage_buffer": "added to the price when estimating an order's cost",
    "min_position_value": "orders worth less than this are rejected (dollars)",
    "cash_buffer": "share of equity always left unspent",
    "leverage_limit": "gross positions may reach this multiple of equity",
    "max_drawdown": "no new risk once equity is this far below its peak",
    "duplicate_window": "the same order is refused again within this many seconds",
    "pdt_max_day_trades": "day trades in five sessions while under the PDT threshold",
    "pdt_equity_threshold": "equity under which the pattern-day-trader limit applies",
    "reject_outside_hours": "reject entries outside regular hours (else warn)",
    "allow_add_to_winner": "allow a second entry in a symbol already held in profit",
}


# ------------------------------------------------------------------------------ pure helpers
def when(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _timeframe(tf: str) -> str:
    """``1Min`` -> ``1-min``, ``1Hour`` -> ``1-hour``, ``1Day`` -> ``daily``."""
    if tf == "1Day":
        return "daily"
    for unit in ("Min", "Hour"):
        if tf.endswith(unit):
            return f"{tf[: -len(unit)]}-{unit.lower()}"
    return tf


def _kind_label(kind: InstrumentType, trade_type: TradeType, config: InstrumentConfig) -> str:
    if kind is InstrumentType.OPTION:
        return "0DTE/1DTE options (rejected: not supported yet)"
    if kind is InstrumentType.STOCK:
        return "stock"
    if trade_type is not TradeType.SWING and config.prefer_3x_for_day_trades:
        return "3x leveraged ETF"
    return "2x leveraged ETF (3x where no 2x fund exists)"


def routing_table(
    config: InstrumentConfig | None = None,
    timeframes: Sequence[tuple[str, TradeType]] | None = None,
) -> pd.DataFrame:
    """Seed 001's mode table, computed from the router's rules (:func:`route_kind`): what each
    mode trades for scalp, day and swing signals."""
    config = config or InstrumentConfig()
    frames = dict((tt, tf) for tf, tt in (timeframes or EmaCloudConfig().timeframes))
    threshold = config.both_mode_etf_min_conviction
    rows = []
    for mode in InstrumentMode:
        row: dict[str, str] = {"Mode": MODE_LABELS[mode]}
        for trade_type in TradeType:
            high = route_kind(mode, trade_type, 100, etf_min_conviction=threshold)
            low = route_kind(mode, trade_type, 0, etf_min_conviction=threshold)
            text = _kind_label(high, trade_type, config)
            if low is not high:
                text = (
                    f"{text} if conviction ≥ {threshold}, "
                    f"else {_kind_label(low, trade_type, config)}"
                )
            tf = frames.get(trade_type)
            when_seen = f" ({_timeframe(tf)})" if tf else ""
            row[f"{trade_type.value.title()} signals{when_seen}"] = text
        rows.append(row)
    return pd.DataFrame(rows)


def setting_frame(
    history: Sequence[SettingValue], show: Callable[[Any], str] = str
) -> pd.DataFrame:
    """A setting's versions, newest first: version, value, by, at."""
    rows = [
        {"Version": h.version, "Value": show(h.value), "By": h.updated_by, "At": when(h.updated_at)}
        for h in reversed(history)
    ]
    return pd.DataFrame(rows, columns=["Version", "Value", "By", "At"])


def profile_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """``max_risk_per_trade 0.05 → 0.03, …`` between two stored profiles."""
    if before is None:
        return f"{after.get('name', '?')} (first version)"
    changed = [f"{k} {before.get(k)} → {v}" for k, v in after.items() if before.get(k) != v]
    return ", ".join(changed) or "no change"


def profile_history_frame(history: Sequence[SettingValue]) -> pd.DataFrame:
    rows = []
    previous: Mapping[str, Any] | None = None
    for h in history:
        value = h.value if isinstance(h.value, Mapping) else {}
        rows.append(
            {
                "Version": h.version,
                "Profile": value.get("name", "?"),
                "Changes": profile_changes(previous, value),
                "By": h.updated_by,
                "At": when(h.updated_at),
            }
        )
        previous = value
    return pd.DataFrame(rows[::-1], columns=["Version", "Profile", "Changes", "By", "At"])


def profile_form_values(profile: RiskProfile) -> dict[str, Any]:
    """The form's starting values: Decimals as text (exact), the window in seconds."""
    out: dict[str, Any] = {}
    for f in fields(RiskProfile):
        value = getattr(profile, f.name)
        if f.name == "name":
            continue
        if isinstance(value, Decimal):
            out[f.name] = str(value)
        elif isinstance(value, timedelta):
            out[f.name] = int(value.total_seconds())
        else:
            out[f.name] = value
    return out


def edited_profile(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The profile to store (as the executor will validate it); :class:`ValidationError` names
    the field that is wrong."""
    return validate_profile_setting({"name": name, **values})


def profile_frame(profile: RiskProfile) -> pd.DataFrame:
    values = profile_form_values(profile)
    rows = [
        {"Parameter": k, "Value": str(v), "Meaning": PROFILE_HELP.get(k, "")}
        for k, v in values.items()
    ]
    return pd.DataFrame(rows, columns=["Parameter", "Value", "Meaning"])


# ------------------------------------------------------------------------------ reading settings
def setting(runtime: Runtime, key: str) -> tuple[SettingValue | None, list[SettingValue]]:
    """The stored value of ``key`` (None when never set) and all its versions, oldest first."""
    with runtime.store.unit_of_work(read_only=True) as uow:
        return uow.settings.get(key), uow.settings.history(key)


def setting_versions(runtime: Runtime) -> tuple[int, ...]:
    """The stored version of each watched setting (0: never stored)."""
    with runtime.store.unit_of_work(read_only=True) as uow:
        rows = [uow.settings.get(key) for key in WATCHED]
    return tuple(0 if row is None else row.version for row in rows)


@st.fragment(run_every=WATCH_REFRESH_S)
def follow_settings(runtime: Runtime, shown: tuple[int, ...]) -> None:
    """Draw the page again once a setting it shows has a new version (a change applied by the
    executor, sent from here or anywhere else); reads only."""
    if setting_versions(runtime) != shown:
        st.rerun(scope="app")


def _set_by(row: SettingValue | None, default: str) -> str:
    if row is None:
        return default
    return f"version {row.version}, set by {row.updated_by} {when(row.updated_at)}"


def _change(runtime: Runtime, user: User, key: str, value: Any, label: str) -> int | None:
    return send_command(
        runtime,
        user,
        CommandType.UPDATE_SETTING,
        {"key": key, "value": value},
        label,
        action=Action.CHANGE_SETTINGS,
    )


# ------------------------------------------------------------------------------ rendering
def render_mode(runtime: Runtime, user: User) -> None:
    row, history = setting(runtime, MODE_KEY)
    try:
        current = InstrumentMode(row.value) if row is not None else runtime.instrument_mode
    except ValueError:
        current = runtime.instrument_mode
    st.markdown(f"In force: **{MODE_LABELS[current]}** ({_set_by(row, 'as configured at start')})")
    if runtime.settings.pipeline != "full":
        st.warning(
            "The executor runs the pass-through pipeline: the instrument mode and risk profile "
            "apply only with the full pipeline (AXION_PIPELINE=full)."
        )
    if user.can(Action.CHANGE_SETTINGS):
        modes = list(InstrumentMode)
        picked = st.radio(
            "Instrument mode",
            modes,
            index=modes.index(current),
            format_func=lambda m: MODE_LABELS[m],
            horizontal=True,
            key=f"mode_pick_{row.version if row else 0}",
        )
        if st.button("Apply mode", type="primary", disabled=picked is current, key="mode_apply"):
            _change(runtime, user, MODE_KEY, picked.value, f"Mode: {MODE_LABELS[picked]}")
    table = routing_table(runtime.config.instruments)
    st.dataframe(
        table.style.apply(
            lambda r: ["font-weight: bold" if r["Mode"] == MODE_LABELS[current] else "" for _ in r],
            axis=1,
        ),
        hide_index=True,
    )
    st.caption(OPTIONS_NOTE)
    if history:
        with st.expander("Mode history"):
            st.dataframe(setting_frame(history), hide_index=True)


def render_risk_profile(runtime: Runtime, user: User) -> None:
    row, history = setting(runtime, PROFILE_KEY)
    current = runtime.current_profile()
    shipped = PROFILES.get(current.name)
    edited = "" if shipped is None or shipped == current else ", edited"
    st.markdown(f"In force: **{current.name}**{edited} ({_set_by(row, 'as configured at start')})")
    if not user.can(Action.CHANGE_SETTINGS):
        st.dataframe(profile_frame(current), hide_index=True)
    else:
        names = list(PROFILES) + ([current.name] if current.name not in PROFILES else [])
        name = st.selectbox(
            "Profile", names, index=names.index(current.name), key="risk_profile_name"
        )
        base = current if name == current.name else PROFILES[name]
        prefix = f"risk_{name}_{row.version if row else 0}"
        _profile_form(runtime, user, name, base, current, prefix)
    if history:
        st.caption("Versions")
        st.dataframe(profile_history_frame(history), hide_index=True)


def _profile_form(
    runtime: Runtime,
    user: User,
    name: str,
    base: RiskProfile,
    current: RiskProfile,
    prefix: str,
) -> None:
    values = profile_form_values(base)
    edits: dict[str, Any] = {}
    with st.form(f"{prefix}_form"):
        cols = st.columns(3)
        for i, (field, value) in enumerate(values.items()):
            label, helptext, key = (
                field.replace("_", " "),
                PROFILE_HELP.get(field),
                f"{prefix}_{field}",
            )
            col = cols[i % 3]
            if isinstance(value, bool):
                edits[field] = col.checkbox(label, value, help=helptext, key=key)
            elif isinstance(value, int):
                edits[field] = col.number_input(
                    label, min_value=0, value=value, step=1, help=helptext, key=key
                )
            else:
                edits[field] = col.text_input(label, value, help=helptext, key=key)
        submitted = st.form_submit_button("Save risk profile", type="primary")
    if not submitted:
        return
    try:
        stored = edited_profile(name, edits)
    except ValidationError as exc:
        st.error(f"The risk profile was not saved: {exc}", icon=":material/error:")
        return
    if stored == current.to_dict():
        st.info("Nothing changed: that is the profile in force.")
        return
    _change(runtime, user, PROFILE_KEY, stored, f"Risk profile: {name}")


def render_autonomous(runtime: Runtime, user: User) -> None:
    row, history = setting(runtime, AUTONOMOUS_KEY)
    on = runtime.service().autonomous()
    if on:
        st.warning(
            f"**On**: proposed rebalance plans execute without a person's approval "
            f"({_set_by(row, 'as configured at start')}).",
            icon=":material/smart_toy:",
        )
    else:
        st.markdown(
            f"**Off**: every rebalance plan waits for a person's approval "
            f"({_set_by(row, 'never switched on')})."
        )
    if user.can(Action.CHANGE_SETTINGS):
        if on:
            if st.button("Turn autonomous trading off", key="autonomous_off"):
                _change(runtime, user, AUTONOMOUS_KEY, False, "Autonomous trading: off")
        elif st.button("Turn autonomous trading on…", key="autonomous_on"):
            st.session_state[AUTONOMOUS_DIALOG] = True
        # A click sets a flag that this run takes, so each click opens the dialog once.
        if st.session_state.pop(AUTONOMOUS_DIALOG, None) and not on:
            confirm_dialog(
                "Turn autonomous trading on",
                "Rebalance plans will **execute without approval**: the engine approves every "
                "proposed plan itself (triggers included) and sends its orders. Your name and "
                "the time are recorded. Turn it off here at any time.",
                "Turn on",
                lambda _reason: _change(
                    runtime, user, AUTONOMOUS_KEY, True, "Autonomous trading: on"
                ),
                key="autonomous_confirm",
            )
    if history:
        with st.expander("Opt-in history"):
            st.dataframe(
                setting_frame(history, lambda v: "on" if v is True else "off"), hide_index=True
            )


def render_watchlist(runtime: Runtime, user: User) -> None:
    row, history = setting(runtime, WATCHLIST_KEY)
    current = list(row.value) if row is not None else runtime.settings.watchlist_symbols
    known = runtime.market.symbols()
    st.markdown(f"Scanning: **{', '.join(current)}** ({_set_by(row, 'as configured at start')})")
    unknown = [s for s in current if s not in known]
    if unknown:
        st.warning(f"The market has no data for {', '.join(unknown)}: the scan skips them.")
    if user.can(Action.CHANGE_SETTINGS):
        picked = st.multiselect(
            "Symbols",
            sorted(set(known) | set(current)),
            default=current,
            key=f"watchlist_{row.version if row else 0}",
        )
        if st.button("Save watchlist", key="watchlist_save"):
            try:
                value = validate_setting(WATCHLIST_KEY, picked)
            except ValidationError as exc:
                st.error(f"The watchlist was not saved: {exc}", icon=":material/error:")
            else:
                _change(runtime, user, WATCHLIST_KEY, value, f"Watchlist: {', '.join(value)}")
    st.caption("The EMA-cloud scan reads the watchlist before every scan.")
    if history:
        with st.expander("Watchlist history"):
            st.dataframe(setting_frame(history, lambda v: ", ".join(v)), hide_index=True)


__all__ = [
    "AUTONOMOUS_DIALOG",
    "MODE_LABELS",
    "edited_profile",
    "follow_settings",
    "profile_changes",
    "profile_form_values",
    "profile_history_frame",
    "render_autonomous",
    "render_mode",
    "render_risk_profile",
    "render_watchlist",
    "routing_table",
    "setting_frame",
    "setting_versions",
]
