"""Order Book: working orders and TWAP/VWAP progress (live), recent fills, cancelling one order
or all of them, and the order history with filters and each order's status changes."""

from __future__ import annotations

import streamlit as st

from app.components.orders import render_order_actions, render_order_history, render_orders_live
from app.state import current_user, dashboard_runtime
from core.users import Action

runtime = dashboard_runtime()
user = current_user()

st.title("Order Book")
render_orders_live(runtime)
if user.can(Action.CANCEL_ORDER):
    render_order_actions(runtime, user)
else:
    st.caption(":material/visibility: Read-only: cancelling orders needs the trader role.")
st.divider()
render_order_history(runtime)
