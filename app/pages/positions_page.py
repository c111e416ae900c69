"""Active Positions: the live book with P&L, entry, stop, target and time in trade, and
closing one position or all of them (reduce-only market orders, confirmed first)."""

from __future__ import annotations

import streamlit as st

from app.components.positions import render_close_actions, render_positions_live
from app.state import current_user, dashboard_runtime
from core.users import Action

runtime = dashboard_runtime()
user = current_user()

st.title("Active Positions")
st.caption(
    "Marked at the executor's last price; entry, stop and target come from the open journal "
    "trade. Refreshes every few seconds."
)
render_positions_live(runtime)
if user.can(Action.CLOSE_POSITION):
    render_close_actions(runtime, user)
else:
    st.caption(":material/visibility: Read-only: closing positions needs the trader role.")
