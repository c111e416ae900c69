"""The Instrument Mode page's parts: the mode picker with the routing table (seed 001), the risk
profile form (seed 000 / 001 profiles), the autonomous-trading opt-in and the watchlist.

Every change is an ``update_setting`` command the executor validates, stores as a new version
(who and when) and applies; the tables are built by the pure functions of
:mod:`app.components.mode_tables`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.components.common import confirm_dialog, send_command
from app.components.mode_tables import (
    MODE_LABELS,
    PROFILE_HELP,
    edited_profile,
    profile_form_values,
    profile_frame,
    profile_history_frame,
    routing_table,
    setting_frame,
    when,
)
from app.runtime import Runtime
from core.config import validate_setting
from core.domain import CommandType, ValidationError
from core.instruments.modes import InstrumentMode
from core.ports import SettingValue
from core.rebalance.runner import AUTONOMOUS_KEY
from core.risk.config import PROFILES, RiskProfile
from core.signals.demo import WATCHLIST_KEY
from core.users import Action, User

MODE_KEY = "executor.instrument_mode"
PROFILE_KEY = "risk.profile"
#: Session key: the autonomous opt-in's confirmation waiting to open.
AUTONOMOUS_DIALOG = "axion_autonomous_confirm"
#: The settings this page shows, and how often it looks for new versions of them.
WATCHED = (MODE_KEY, PROFILE_KEY, AUTONOMOUS_KEY, WATCHLIST_KEY)
WATCH_REFRESH_S = 2.0

OPTIONS_NOTE = (
    "Options are not traded yet: a signal the table routes to options is rejected, with that "
    "reason stored on the signal, until options trading is supported."
)


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
    "follow_settings",
    "render_autonomous",
    "render_mode",
    "render_risk_profile",
    "render_watchlist",
    "setting_versions",
]
