"""The Settings page's order-rate limit section: the limit in force for everyone, and for
admins a form that sends a change as an ``update_setting`` command the executor applies."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.components.common import send_command
from app.components.settings import EASTERN, STATUS_REFRESH_S, settings_queries
from app.runtime import Runtime
from core.brokers.rate_limit import RateLimitConfig
from core.config import RATE_LIMIT_KEY
from core.domain import CommandType, ValidationError
from core.users import Action, User

FORM = "settings_rate_form"

EXPLANATION = (
    "The limit counts new-risk orders (entries and adds) per account over a sliding window. "
    "Exits, cancels and the kill switch's orders are never throttled and never use up the "
    "allowance. A signal that would exceed the limit is rejected with its reason (visible in "
    "the Trade Journal's decision chain), never queued; an algorithm's next slice waits until "
    "a slot opens."
)


def rate_limit(runtime: Runtime) -> RateLimitConfig:
    """The limit in force: the stored setting, else the configured one."""
    return runtime.service().order_rate_limit(runtime.config.order_rate)


def describe(config: RateLimitConfig) -> str:
    if config.enabled:
        return f"at most {config.describe()}"
    return f"off (when on: {config.describe()})"


def _seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def rate_form_values(config: RateLimitConfig) -> dict[str, Any] | None:
    """The form; the setting's value it gives when submitted, else None."""
    with st.form(FORM):
        cols = st.columns(3, vertical_alignment="bottom")
        max_orders = cols[0].number_input(
            "New-risk orders",
            min_value=1,
            max_value=10_000,
            value=config.max_orders,
            step=1,
            key="settings_rate_max_orders",
        )
        window = cols[1].number_input(
            "Per window (seconds)",
            min_value=1.0,
            max_value=86_400.0,
            value=float(config.window.total_seconds()),
            step=1.0,
            key="settings_rate_window",
        )
        enabled = cols[2].checkbox("Limit on", value=config.enabled, key="settings_rate_enabled")
        submitted = st.form_submit_button("Save rate limit", type="primary")
    if not submitted:
        return None
    return {
        "max_orders": int(max_orders),
        "window_seconds": _seconds(window),
        "enabled": bool(enabled),
    }


@st.fragment(run_every=STATUS_REFRESH_S)
def render_rate_in_force(runtime: Runtime) -> None:
    """The limit in force and who set it (live: a change shows once the executor applied it)."""
    stored = settings_queries(runtime).current([RATE_LIMIT_KEY]).get(RATE_LIMIT_KEY)
    if stored is None:
        source = "the configured default"
    else:
        when = pd.Timestamp(stored.updated_at).tz_convert(EASTERN)
        source = f"version {stored.version} by {stored.updated_by}, {when:%Y-%m-%d %H:%M %Z}"
    st.markdown(f"**In force**: {describe(rate_limit(runtime))} ({source}).")


def render_rate_limit(runtime: Runtime, user: User) -> None:
    """The order-rate limit in force, who set it, and the admins' form."""
    render_rate_in_force(runtime)
    st.caption(EXPLANATION)
    config = rate_limit(runtime)
    if not user.can(Action.MANAGE_BROKERS):
        st.caption("Changing the order-rate limit needs the admin role.")
        return
    value = rate_form_values(config)
    if value is None:
        return
    try:
        wanted: RateLimitConfig | None = RateLimitConfig.from_dict(value)
    except ValidationError:
        wanted = None  # sent as is: the executor rejects it with the reason
    if wanted == config:
        st.info("Nothing changed.")
        return
    label = "Order-rate limit" if wanted is None else f"Order-rate limit: {describe(wanted)}"
    send_command(
        runtime,
        user,
        CommandType.UPDATE_SETTING,
        {"key": RATE_LIMIT_KEY, "value": value},
        label,
        action=Action.MANAGE_BROKERS,
    )


__all__ = ["rate_limit", "render_rate_limit"]
