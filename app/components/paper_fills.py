"""The Settings page's paper fills section: the paper broker's fill settings in force (impact,
latency, participation, commission), a form that sends changes as ``update_setting`` commands
for those who may change settings, and the change history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from app.components.common import send_command
from app.components.settings import (
    EASTERN,
    STATUS_REFRESH_S,
    eastern,
    setting_columns,
    settings_queries,
)
from app.runtime import Runtime
from core.brokers.paper_config import (
    COMMISSION_KEY,
    IMPACT_KEY,
    LATENCY_KEY,
    PAPER_FILL_KEYS,
    PARTICIPATION_KEY,
    PaperConfig,
)
from core.domain import CommandType, ValidationError
from core.users import Action, User

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
    stock = _describe_stock_commission(value)
    per_contract = value.get("per_contract")
    return f"{stock}; options ${per_contract} per contract" if per_contract else stock


def _describe_stock_commission(value: dict[str, Any]) -> str:
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
        per_contract = st.number_input(
            "Options: per contract ($, whatever the stock schedule)",
            min_value=0.0,
            value=float(commission.per_contract),
            step=0.05,
            key="settings_fills_per_contract",
        )
        submitted = st.form_submit_button("Save fill settings", type="primary")
    if not submitted:
        return None
    schedule: dict[str, Any] = {"kind": kind}
    if kind == "per_share":
        schedule.update(rate=_dec(rate), minimum=_dec(minimum), max_pct=_dec(cap) if cap else None)
    elif kind == "percent":
        schedule.update(pct=_dec(pct), minimum=_dec(minimum))
    if per_contract:
        schedule["per_contract"] = _dec(per_contract)
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


__all__ = [
    "changed_knobs",
    "describe_knob",
    "paper_config",
    "render_paper_fills",
]
