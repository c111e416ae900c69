"""Rebalance Preview (seed 000 R7.2): targets in, the proposed trades with their estimated costs,
current vs target allocation, edits, one-click approval with confirmation, live execution."""

from __future__ import annotations

import streamlit as st

from app.components import rebalance as rb
from app.components.rebalance_tables import plan_option, plans_frame, targets_rows
from app.state import current_user, dashboard_runtime
from core.users import Action

runtime = dashboard_runtime()
user = current_user()
service = runtime.service()
trader = user.can(Action.REBALANCE)

st.title("Rebalance")
if service.autonomous():
    st.warning(
        "**Autonomous trading is on**: the engine approves proposed plans itself and they "
        "execute without a person's approval (switch it off on the Instrument Mode page).",
        icon=":material/smart_toy:",
    )

# ---------------------------------------------------------------------------------- targets
if trader:
    with st.container(border=True):
        st.subheader("Targets")
        new_plan = rb.render_targets_input(runtime, user)
        if new_plan is not None:
            st.session_state[rb.SELECTED_PLAN] = new_plan
else:
    standing, stored_by = rb.stored_targets(runtime)
    st.subheader("Standing targets")
    if standing is None:
        st.info("No targets yet. A trader sets them here or through the service API.")
    else:
        st.caption(f"{standing.kind.value} · {stored_by}")
        st.dataframe(targets_rows(standing), hide_index=True)

# ---------------------------------------------------------------------------------- the plan
plans = service.plans(30)
if not plans:
    st.info(
        "No rebalance plans yet. Preview one from targets above: it is stored as proposed and "
        "waits for approval. The rebalancing triggers (calendar, drift, signals) propose plans "
        "here too."
    )
    st.stop()

by_id = {p.id: p for p in plans}
wanted = st.session_state.get(rb.SELECTED_PLAN)
if wanted not in by_id:
    wanted = plans[0].id
    st.session_state[rb.SELECTED_PLAN] = wanted
st.subheader("Plan")
plan_id = st.selectbox(
    "Plan",
    list(by_id),
    format_func=lambda pid: plan_option(by_id[pid]),
    key=rb.SELECTED_PLAN,
    label_visibility="collapsed",
)
plan, _ = service.plan(plan_id)
if plan is None or plan.id is None:
    st.warning(f"Plan #{plan_id} is gone.")
    st.stop()

rb.render_plan_summary(plan)
st.markdown("**Proposed trades**")
rb.render_trades(runtime, user, plan)
rb.render_plan_actions(runtime, user, plan)

st.subheader("Execution")
rb.render_progress(runtime, plan.id, plan.status)

st.subheader("Recent plans")
st.dataframe(
    plans_frame(plans),
    hide_index=True,
    column_config={"Est. cost": st.column_config.NumberColumn(format="$%.2f")},
)
