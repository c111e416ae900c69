"""Instrument Mode (seed 001): what signals trade, the risk profile they trade under, the
autonomous-trading opt-in (seed 000) and the watchlist the signal scan watches.

Every change is an ``update_setting`` command; the command feed follows it to applied or
rejected, and the executor keeps each version with who changed it and when."""

from __future__ import annotations

import streamlit as st

from app.components import mode
from app.state import current_user, dashboard_runtime
from core.users import Action

runtime = dashboard_runtime()
user = current_user()
mode.follow_settings(runtime, mode.setting_versions(runtime))

st.title("Instrument Mode")
if not user.can(Action.CHANGE_SETTINGS):
    st.caption("Read-only: changing these settings needs the trader role.")

with st.container(border=True):
    st.subheader("Instrument mode")
    st.caption(
        "Which instruments signals trade: scalps come from 1-minute clouds, day trades from "
        "10-minute clouds, swings from hourly clouds."
    )
    mode.render_mode(runtime, user)

with st.container(border=True):
    st.subheader("Risk profile")
    st.caption(
        "Aggressive (seed 001) or conservative (seed 000) limits for the risk gate, the sizer "
        "and the kill switch. Fractions are shares of equity (0.05 = 5%)."
    )
    mode.render_risk_profile(runtime, user)

with st.container(border=True):
    st.subheader("Autonomous trading")
    st.caption(
        "Off by default: rebalance plans then execute only after a person approves them "
        "(Rebalance page)."
    )
    mode.render_autonomous(runtime, user)

with st.container(border=True):
    st.subheader("Watchlist")
    mode.render_watchlist(runtime, user)
