"""The Settings page's broker keys section, for admins only (other roles see nothing of it, not
even masked keys): the stored keys, masked, with who set them and when; a form that sets or
replaces a key; deleting a key after a confirmation.

A key goes from the form's password field straight to :class:`core.credential_admin.
CredentialAdmin`, which checks the stored user's role and encrypts it into the store. It never
goes through a command (the command table keeps payloads in plain text), is never shown back
or logged, and stays in the session only as the field's own value until the submit is handled:
the browser clears the field, and the rerun that follows empties it on the server too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import pandas as pd
import streamlit as st

from app.components.common import confirm_dialog, confirmation, show_flash
from app.components.settings import eastern, when_column
from app.runtime import Runtime
from core.credential_admin import KNOWN_CREDENTIALS, CredentialAdmin, CredentialInfo
from core.domain import ValidationError
from core.users import Action, User
from core.vault import Secret, VaultError

#: A message shown once after the rerun that redraws the table.
FLASH = "settings_keys_flash"
FORM = "settings_key_form"
DELETE_KEY = "settings_key_delete"
#: The password field, and the flag that empties it on the run after a submit.
VALUE = "settings_key_value"
WIPE = "settings_key_wipe"
#: The name picker's choice for a name typed in the "Other name" field.
OTHER = "(another name)"
KEY_COLUMNS = ["name", "purpose", "masked", "updated_by", "updated_at"]

RESTART_NOTE = (
    "The broker reads its keys once, when the process that runs the executor starts: restart "
    "that process (the worker, or this dashboard when it runs the executor thread) for a new "
    "key to take effect."
)


def keys_frame(keys: list[CredentialInfo]) -> pd.DataFrame:
    rows = [
        {
            "name": k.name,
            "purpose": k.purpose or "",
            "masked": k.masked,
            "updated_by": k.updated_by,
            "updated_at": k.updated_at,
        }
        for k in keys
    ]
    return eastern(pd.DataFrame(rows, columns=KEY_COLUMNS), "updated_at")


def _done(kind: str, message: str) -> NoReturn:
    """Keep an outcome (which never holds a key) for the next run, and rerun so the table
    shows the change."""
    st.session_state[FLASH] = (kind, message)
    st.rerun()


def _change(change: Callable[[], Any], success: Callable[[Any], str]) -> None:
    """Run a key change and keep its outcome: ``success(result)`` or the error."""
    try:
        result = change()
    except (ValidationError, VaultError) as exc:  # PermissionDenied included
        _done("error", str(exc))
    else:
        _done("success", success(result))


def _name_label(name: str) -> str:
    if name == OTHER:
        return "Another name (type it below)"
    return f"{name} — {KNOWN_CREDENTIALS[name]}"


def render_set_key(admin: CredentialAdmin, user: User) -> None:
    """Set or replace a key: a known name or another one, and the value in a password field.
    Every submit ends in a rerun that empties the field on the server side too (the browser
    clears it on submit), so a key stays in the session no longer than the submit itself."""
    if st.session_state.pop(WIPE, False):
        st.session_state[VALUE] = ""
    with st.form(FORM, clear_on_submit=True):
        st.markdown("**Set or replace a key**")
        left, right = st.columns(2)
        choice = left.selectbox(
            "Key",
            [*KNOWN_CREDENTIALS, OTHER],
            format_func=_name_label,
            key="settings_key_name",
        )
        other = right.text_input(
            "Other name",
            placeholder="e.g. polygon.api_key",
            help="Used when the key picked is 'Another name'.",
            key="settings_key_other",
        )
        value = st.text_input(
            "Value",
            type="password",
            help="Stored encrypted; only its last 4 characters are ever shown.",
            key=VALUE,
        )
        submitted = st.form_submit_button("Save key", type="primary", icon=":material/key:")
    if not submitted:
        return
    st.session_state[WIPE] = True
    name = other.strip() if choice == OTHER else choice
    if not name:
        _done("error", "Type the key's name, or pick a known one.")
    if not value.strip():
        _done("error", f"Enter the value of {name}.")
    secret = Secret(value)
    _change(
        lambda: admin.set(user.username, name, secret),
        lambda masked: f"{name} stored ({masked}). {RESTART_NOTE}",
    )


def render_delete_key(admin: CredentialAdmin, user: User, names: list[str]) -> None:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Delete a key", names, key=f"{DELETE_KEY}_choice")
    clicked = right.button(
        "Delete key", key=f"{DELETE_KEY}_open", icon=":material/delete:", disabled=not chosen
    )
    name = confirmation(DELETE_KEY, chosen if clicked and chosen else None)
    if name is None:
        return
    confirm_dialog(
        f"Delete {name}?",
        f"**{name}** is removed from the store. A broker already running keeps the key it read "
        "at start; the next start without it fails until the key is set again.",
        "Delete key",
        lambda _reason: _change(
            lambda: admin.delete(user.username, name),
            lambda found: f"{name} deleted." if found else f"{name} was not stored.",
        ),
        key=DELETE_KEY,
    )


def render_broker_keys(runtime: Runtime, user: User) -> None:
    """The stored keys and their controls; nothing at all for roles other than admin."""
    if not user.can(Action.MANAGE_BROKERS):
        return
    st.subheader("Broker keys")
    show_flash(FLASH)
    try:
        admin = runtime.credential_admin()
        keys = admin.list(user.username)
    except (ValidationError, VaultError) as exc:
        st.error(str(exc))
        return
    st.caption(
        "Keys are encrypted in the store under the master key and shown only by their last 4 "
        f"characters. {RESTART_NOTE}"
    )
    if keys:
        st.dataframe(
            keys_frame(keys),
            hide_index=True,
            column_config={
                "name": st.column_config.TextColumn("Key"),
                "purpose": st.column_config.TextColumn("For"),
                "masked": st.column_config.TextColumn("Value"),
                "updated_by": st.column_config.TextColumn("Set by"),
                "updated_at": when_column("Set"),
            },
        )
    else:
        st.caption("No broker key is stored.")
    render_set_key(admin, user)
    if keys:
        render_delete_key(admin, user, [k.name for k in keys])


__all__ = ["keys_frame", "render_broker_keys"]
