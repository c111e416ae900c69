"""Settings: the executor and this process's thread, market data and broker (with the broker
keys for admins and the order-rate limit), live trading, the paper broker's fill settings,
reconciliation with the broker, users, and the command audit.

Everyone sees the views; controls appear for the roles that may use them, and every action is
checked again on the server side (commands by the service, user changes by ``UserAdmin``).
"""

from __future__ import annotations

import streamlit as st

from app.components.broker_keys import render_broker_keys
from app.components.live_trading import render_live_trading
from app.components.paper_fills import render_paper_fills
from app.components.rate_limit import render_rate_limit
from app.components.reconciliation import render_reconciliation
from app.components.settings import (
    render_command_audit,
    render_executor_controls,
    render_executor_status,
    render_market_and_broker,
    render_settings_overview,
)
from app.components.users import render_users
from app.state import current_user, dashboard_runtime

runtime = dashboard_runtime()
user = current_user()

st.title("Settings")
executor_tab, live_tab, fills_tab, reconcile_tab, users_tab, audit_tab = st.tabs(
    ["Executor & broker", "Live trading", "Paper fills", "Reconciliation", "Users", "Audit"]
)

with executor_tab:
    st.subheader("Executor")
    render_executor_status(runtime)
    render_executor_controls(runtime, user)
    st.subheader("Market data and broker")
    render_market_and_broker(runtime)
    render_broker_keys(runtime, user)  # admins only
    st.subheader("Order-rate limit")
    render_rate_limit(runtime, user)

with live_tab:
    st.subheader("Live trading")
    render_live_trading(runtime, user)

with fills_tab:
    st.subheader("Paper fill realism")
    render_paper_fills(runtime, user)

with reconcile_tab:
    st.subheader("Store and broker differences")
    st.caption(
        "The executor compares positions and open orders with the broker at start and every "
        "few minutes; differences are recorded here, never overwritten silently."
    )
    render_reconciliation(runtime, user)

with users_tab:
    st.subheader("Users")
    render_users(runtime, user)

with audit_tab:
    st.subheader("Command audit")
    st.caption("Every action given from a front end, with who gave it and what came of it.")
    render_command_audit(runtime)
    with st.expander("Stored run-time settings"):
        render_settings_overview(runtime)
