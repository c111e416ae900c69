"""The dashboard: ``streamlit run app/main.py`` from the repository root."""

from __future__ import annotations

import streamlit as st

from app.auth import gate
from app.components.common import render_command_feed, render_header
from app.navigation import pages_for
from app.state import dashboard_runtime

st.set_page_config(page_title="Axion Executor", page_icon=":material/monitoring:", layout="wide")

runtime = dashboard_runtime()
user = gate(runtime)
page = st.navigation(pages_for(user.role), position="top")
render_header(runtime)
with st.sidebar:
    render_command_feed(runtime)
page.run()
