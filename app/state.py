"""The dashboard's per-process runtime and its declared session-state keys.

Everything heavy (store, market, broker, executor thread) is built once per process by
:func:`dashboard_runtime` (``st.cache_resource``); a session keeps only the keys below.
"""

from __future__ import annotations

import streamlit as st

from app.runtime import Runtime, build_runtime
from app.settings import AxionSettings
from core.users import User

#: ``core.users.User``: the signed-in user, re-read from the store on every full run.
USER = "axion_user"
#: Wall-clock seconds of the user's last click or key (a full run); fragments don't count.
LAST_SEEN = "axion_last_seen"
#: ``list[tuple[int, str]]``: (command id, label) of the commands this session sent.
SENT = "axion_sent"
#: ``dict[int, str]``: the last status shown for each sent command (toasts on changes).
SHOWN = "axion_shown"
#: Fill count and kill-switch state last seen by the header (toasts on changes).
SEEN_FILLS = "axion_seen_fills"
SEEN_KILL = "axion_seen_kill"
#: Set after a sign-in was recorded (last_login_at), so it is recorded once per sign-in.
LOGIN_RECORDED = "axion_login_recorded"
#: Why the last session ended ("timeout"), shown above the login form.
SIGNED_OUT_REASON = "axion_signed_out"


@st.cache_resource(show_spinner="Starting Axion Executor…")
def dashboard_runtime() -> Runtime:
    """Built once per process; a second browser session shares it (and its executor)."""
    settings = AxionSettings()
    runtime = build_runtime(settings, demo=settings.demo is not False)
    if settings.executor == "thread":
        runtime.start_executor()
    return runtime


def current_user() -> User:
    """The signed-in user (pages run only after the login gate let the session in)."""
    user = st.session_state.get(USER)
    if not isinstance(user, User):
        st.error("Not signed in.")
        st.stop()
    return user


__all__ = [
    "LAST_SEEN",
    "LOGIN_RECORDED",
    "SEEN_FILLS",
    "SEEN_KILL",
    "SENT",
    "SHOWN",
    "SIGNED_OUT_REASON",
    "USER",
    "current_user",
    "dashboard_runtime",
]
