"""User management on the Settings page: the user list, adding users, roles, disabling and
password resets for admins, and every user's own password.

Changes go through :class:`core.user_admin.UserAdmin`, which checks the acting user's stored
role and keeps at least one enabled administrator; its errors are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from app.components.common import confirm_dialog, confirmation, show_flash
from app.components.settings import EASTERN
from app.runtime import Runtime
from core.domain import ValidationError
from core.user_admin import UserAdmin
from core.users import Action, Role, User

#: A success message shown once after the rerun that redraws the list.
FLASH = "settings_users_flash"
TOGGLE_KEY = "settings_user_toggle"
USER_COLUMNS = ["username", "name", "email", "role", "disabled", "last_login", "created_by"]


def user_admin(runtime: Runtime) -> UserAdmin:
    return UserAdmin(runtime.store, runtime.market.clock)


def users_frame(users: list[User]) -> pd.DataFrame:
    rows = [
        {
            "username": u.username,
            "name": u.name,
            "email": u.email,
            "role": u.role.value,
            "disabled": u.disabled,
            "last_login": u.last_login_at,
            "created_by": u.created_by,
        }
        for u in users
    ]
    df = pd.DataFrame(rows, columns=USER_COLUMNS)
    df["last_login"] = pd.to_datetime(df["last_login"], utc=True).dt.tz_convert(EASTERN)
    return df


def attempt(change: Callable[[], Any], success: str, *, keep_error: bool = False) -> bool:
    """Run a user change. On success keep ``success`` for the next run and rerun (so the list
    shows the change); on failure show the reason, or with ``keep_error`` (from a dialog, which
    reruns after its button) keep it for the next run."""
    try:
        change()
    except ValidationError as exc:  # PermissionDenied and UserError included
        if not keep_error:
            st.error(str(exc))
            return False
        st.session_state[FLASH] = ("error", str(exc))
        st.rerun()
    st.session_state[FLASH] = ("success", success)
    st.rerun()
    return True  # pragma: no cover - st.rerun does not return


# ---------------------------------------------------------------------------------- admins
def render_add_user(runtime: Runtime, user: User) -> None:
    with st.form("settings_user_add", clear_on_submit=True):
        st.markdown("**Add a user**")
        cols = st.columns(3)
        username = cols[0].text_input("Username", key="settings_user_add_username")
        name = cols[1].text_input("Full name", key="settings_user_add_name")
        email = cols[2].text_input("E-mail (optional)", key="settings_user_add_email")
        cols = st.columns(3)
        role = cols[0].selectbox(
            "Role", [r.value for r in Role], index=0, key="settings_user_add_role"
        )
        password = cols[1].text_input("Password", type="password", key="settings_user_add_password")
        repeat = cols[2].text_input(
            "Repeat the password", type="password", key="settings_user_add_repeat"
        )
        submitted = st.form_submit_button("Add user", icon=":material/person_add:")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ.")
        return
    attempt(
        lambda: user_admin(runtime).add_user(user.username, username, name, email, role, password),
        f"User {username.strip().lower()!r} added as {role}.",
    )


def render_role_change(runtime: Runtime, user: User, users: list[User]) -> None:
    st.markdown("**Change a role**")
    names = [u.username for u in users]
    roles = {u.username: u.role.value for u in users}
    left, mid, right = st.columns([2, 2, 1], vertical_alignment="bottom")
    who = left.selectbox("User", names, key="settings_user_role_user")
    options = [r.value for r in Role]
    role = mid.selectbox(
        "New role",
        options,
        index=options.index(roles[who]) if who in roles else 0,
        key=f"settings_user_role_role_{who}",
    )
    if right.button("Change role", key="settings_user_role_apply") and who:
        if role == roles.get(who):
            st.info(f"{who!r} is already a {role}.")
            return
        attempt(
            lambda: user_admin(runtime).set_role(user.username, who, role),
            f"{who!r} is now a {role}.",
        )


def render_disable(runtime: Runtime, user: User, users: list[User]) -> None:
    st.markdown("**Disable or enable a user**")
    by_name = {u.username: u for u in users}
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    who = left.selectbox(
        "User",
        list(by_name),
        format_func=lambda n: f"{n} ({'disabled' if by_name[n].disabled else 'enabled'})",
        key="settings_user_toggle_user",
    )
    target = by_name.get(who) if who else None
    label = "Enable" if target is not None and target.disabled else "Disable"
    clicked = right.button(label, key=f"{TOGGLE_KEY}_open", disabled=target is None)
    request = confirmation(
        TOGGLE_KEY,
        {"username": who, "disable": not target.disabled} if clicked and target else None,
    )
    if request is None:
        return
    name, disable = request["username"], request["disable"]
    verb = "Disable" if disable else "Enable"
    message = (
        f"**{name}** can no longer sign in; a session already open is signed out on its next "
        "click. Commands already given stay as they are."
        if disable
        else f"**{name}** can sign in again with the current password."
    )
    confirm_dialog(
        f"{verb} {name}?",
        message,
        verb,
        lambda _reason: attempt(
            lambda: user_admin(runtime).set_disabled(user.username, name, disable),
            f"{name!r} {'disabled' if disable else 'enabled'}.",
            keep_error=True,
        ),
        key=TOGGLE_KEY,
    )


def render_password_reset(runtime: Runtime, user: User, users: list[User]) -> None:
    others = [u.username for u in users if u.username != user.username]
    if not others:
        return
    with st.form("settings_user_reset", clear_on_submit=True):
        st.markdown("**Reset a password**")
        cols = st.columns(3)
        who = cols[0].selectbox("User", others, key="settings_user_reset_user")
        password = cols[1].text_input(
            "New password", type="password", key="settings_user_reset_password"
        )
        repeat = cols[2].text_input(
            "Repeat the password", type="password", key="settings_user_reset_repeat"
        )
        submitted = st.form_submit_button("Reset password", icon=":material/key:")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ.")
        return
    attempt(
        lambda: user_admin(runtime).change_password(user.username, who, password),
        f"Password of {who!r} reset; tell them through a channel you trust.",
    )


def render_user_admin(runtime: Runtime, user: User) -> None:
    """Everything an admin manages; nothing for other roles."""
    if not user.can(Action.MANAGE_USERS):
        return
    try:
        users = user_admin(runtime).users(user.username)
    except ValidationError as exc:
        st.error(str(exc))
        return
    st.dataframe(
        users_frame(users),
        hide_index=True,
        column_config={
            "username": st.column_config.TextColumn("Username"),
            "name": st.column_config.TextColumn("Name"),
            "email": st.column_config.TextColumn("E-mail"),
            "role": st.column_config.TextColumn("Role"),
            "disabled": st.column_config.CheckboxColumn("Disabled"),
            "last_login": st.column_config.DatetimeColumn(
                "Last sign-in", format="YYYY-MM-DD HH:mm z"
            ),
            "created_by": st.column_config.TextColumn("Added by"),
        },
    )
    render_add_user(runtime, user)
    render_role_change(runtime, user, users)
    render_disable(runtime, user, users)
    render_password_reset(runtime, user, users)


# ---------------------------------------------------------------------------------- everyone
def render_own_password(runtime: Runtime, user: User) -> None:
    with st.form("settings_own_password", clear_on_submit=True):
        st.markdown(f"**Your password** ({user.username})")
        cols = st.columns(3)
        current = cols[0].text_input(
            "Current password", type="password", key="settings_own_current"
        )
        password = cols[1].text_input("New password", type="password", key="settings_own_new")
        repeat = cols[2].text_input(
            "Repeat the new password", type="password", key="settings_own_repeat"
        )
        submitted = st.form_submit_button("Change my password", icon=":material/password:")
    if not submitted:
        return
    if password != repeat:
        st.error("The two new passwords differ.")
        return
    attempt(
        lambda: user_admin(runtime).change_password(
            user.username, user.username, password, current
        ),
        "Your password was changed.",
    )


def render_users(runtime: Runtime, user: User) -> None:
    show_flash(FLASH)
    if user.can(Action.MANAGE_USERS):
        render_user_admin(runtime, user)
    else:
        st.caption("Managing users needs the admin role.")
    render_own_password(runtime, user)


__all__ = [
    "attempt",
    "render_add_user",
    "render_own_password",
    "render_user_admin",
    "render_users",
    "user_admin",
    "users_frame",
]
