"""The login gate: the first-administrator form, streamlit-authenticator's login with users
from the store, roles re-read on every run, and the inactivity timeout.

The cookie that lets a browser skip the login form for its lifetime is signed with a key kept
in a 0600 file outside the repository and the database (created at first start), or given as
``AXION_COOKIE_KEY``.
"""

from __future__ import annotations

import os
import time

import streamlit as st
import streamlit_authenticator as stauth

from app import state
from app.runtime import Runtime
from core.domain import ValidationError
from core.user_admin import UserAdmin
from core.users import User
from core.vault import encode_key, key_from_file

COOKIE_NAME = "axion_auth"
COOKIE_KEY_ENV = "AXION_COOKIE_KEY"


def cookie_key(runtime: Runtime) -> str:
    from_env = os.environ.get(COOKIE_KEY_ENV, "").strip()
    if from_env:
        return from_env
    return encode_key(key_from_file(runtime.settings.cookie_key_file))


def user_admin(runtime: Runtime) -> UserAdmin:
    return UserAdmin(runtime.store, runtime.market.clock)


def _credentials(runtime: Runtime) -> dict[str, dict[str, dict[str, object]]]:
    with runtime.store.unit_of_work(read_only=True) as uow:
        users = [u for u in uow.users.all() if not u.disabled]
    return {
        "usernames": {
            u.username: {
                "name": u.name,
                "email": u.email or f"{u.username}@localhost",
                "password": u.password_hash,
                "roles": [u.role.value],
            }
            for u in users
        }
    }


def authenticator(runtime: Runtime) -> stauth.Authenticate:
    timeout_days = runtime.settings.session_timeout_min / (24 * 60)
    return stauth.Authenticate(
        _credentials(runtime),
        cookie_name=COOKIE_NAME,
        cookie_key=cookie_key(runtime),
        cookie_expiry_days=timeout_days,
        auto_hash=False,
        login_sleep_time=0,  # the cookie is read from the request, nothing to wait for
    )


def first_admin_form(runtime: Runtime) -> None:
    st.title("Axion Executor")
    st.subheader("Create the first administrator")
    st.caption(
        "No user exists yet. The administrator manages users, brokers and keys; "
        "this form is shown only until the first user is created."
    )
    with st.form("first_admin"):
        username = st.text_input("Username", key="first_admin_username")
        name = st.text_input("Full name", key="first_admin_name")
        email = st.text_input("E-mail (optional)", key="first_admin_email")
        password = st.text_input("Password", type="password", key="first_admin_password")
        repeat = st.text_input("Repeat the password", type="password", key="first_admin_repeat")
        submitted = st.form_submit_button("Create administrator", type="primary")
    if submitted:
        if password != repeat:
            st.error("The two passwords differ.")
            return
        try:
            user = user_admin(runtime).create_first_admin(username, name, email, password)
        except ValidationError as exc:
            st.error(str(exc))
            return
        st.success(f"Administrator {user.username!r} created. Sign in below.")
        st.rerun()


def sign_out(auth: stauth.Authenticate, reason: str | None = None) -> None:
    """End the session (and delete its cookie); ``reason`` is shown above the login form."""
    if st.session_state.get("authentication_status"):
        auth.logout(location="unrendered")
    for key in (state.USER, state.LOGIN_RECORDED, state.LAST_SEEN, state.SENT, state.SHOWN):
        st.session_state.pop(key, None)
    if reason:
        st.session_state[state.SIGNED_OUT_REASON] = reason


def timed_out(runtime: Runtime, now: float | None = None) -> bool:
    last = st.session_state.get(state.LAST_SEEN)
    if last is None:
        return False
    limit = runtime.settings.session_timeout_min * 60
    return ((now or time.time()) - float(last)) > limit


def gate(runtime: Runtime) -> User:
    """The signed-in user, or render the first-admin / login form and stop the run."""
    admin = user_admin(runtime)
    if admin.needs_first_admin():
        first_admin_form(runtime)
        st.stop()
    auth = authenticator(runtime)  # once per run: it renders the cookie component
    if st.session_state.get(state.USER) is not None and timed_out(runtime):
        minutes = int(runtime.settings.session_timeout_min)
        sign_out(auth, f"Signed out after {minutes} minutes without activity.")
    if not st.session_state.get("authentication_status"):
        reason = st.session_state.get(state.SIGNED_OUT_REASON)
        if reason:
            st.info(reason)
        st.title("Axion Executor")
    was_signed_in = bool(st.session_state.get("authentication_status"))
    auth.login(
        location="main",
        key="login",
        fields={
            "Form name": "Sign in",
            "Username": "Username",
            "Password": "Password",
            "Login": "Sign in",
        },
    )
    status = st.session_state.get("authentication_status")
    if status and not was_signed_in:
        st.rerun()  # draw the app without the login form that was submitted
    if status is False:
        st.error("Username or password is incorrect.")
    if not status:
        st.stop()
    user = admin.get(str(st.session_state.get("username") or ""))
    if user is None or user.disabled:
        sign_out(auth, "This user is disabled or no longer exists.")
        st.rerun()
    assert user is not None
    st.session_state.pop(state.SIGNED_OUT_REASON, None)
    if not st.session_state.get(state.LOGIN_RECORDED):
        admin.record_login(user.username)
        st.session_state[state.LOGIN_RECORDED] = True
    st.session_state[state.USER] = user
    st.session_state[state.LAST_SEEN] = time.time()
    with st.sidebar:
        st.markdown(f"**{user.name}** · {user.role.value}")
        if st.button("Log out", key="axion_logout", icon=":material/logout:"):
            sign_out(auth)
            st.rerun()
    return user


__all__ = ["authenticator", "cookie_key", "gate", "sign_out", "timed_out", "user_admin"]
