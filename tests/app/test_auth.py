"""Sign-in: the first administrator, login with stored bcrypt users, roles on the server side,
logout and the inactivity timeout."""

from __future__ import annotations

import time

import pytest

from app import state
from core.domain import CommandType
from core.user_admin import UserAdmin, UserError
from core.users import PermissionDenied, Role
from tests.app.conftest import PASSWORD, texts


def test_first_start_shows_only_the_first_administrator_form(empty_dashboard):
    at = empty_dashboard.app(user=None).run()
    assert not at.exception
    assert "Create the first administrator" in texts(at)
    at.text_input(key="first_admin_username").input("ada")
    at.text_input(key="first_admin_name").input("Ada")
    at.text_input(key="first_admin_password").input(PASSWORD)
    at.text_input(key="first_admin_repeat").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    admin = UserAdmin(empty_dashboard.store, empty_dashboard.runtime.market.clock)
    user = admin.get("ada")
    assert user is not None and user.role is Role.ADMIN
    assert user.password_hash.startswith("$2") and PASSWORD not in user.password_hash
    # the form is gone for good: the next visitor gets the sign-in form
    again = empty_dashboard.app(user=None).run()
    assert "Create the first administrator" not in texts(again)
    assert "Sign in" in texts(again)
    with pytest.raises(UserError):
        admin.create_first_admin("eve", "Eve", "", PASSWORD)


def test_the_first_administrator_form_checks_its_input(empty_dashboard):
    at = empty_dashboard.app(user=None).run()
    at.text_input(key="first_admin_username").input("ada")
    at.text_input(key="first_admin_password").input("short")
    at.text_input(key="first_admin_repeat").input("short")
    at.button[0].click().run()
    assert "at least 10 characters" in texts(at)
    assert UserAdmin(
        empty_dashboard.store, empty_dashboard.runtime.market.clock
    ).needs_first_admin()


def test_login_with_a_stored_user_then_logout(dashboard):
    at = dashboard.app(user=None).run()
    assert "Sign in" in texts(at)
    at.text_input[0].input("trader")
    at.text_input[1].input("wrong password!")
    at.button[0].click().run()
    assert "incorrect" in texts(at)
    at.text_input[0].input("trader")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[state.USER].username == "trader"
    assert "Trader" in texts(at) and "Sign in" not in [s.value for s in at.subheader]
    assert UserAdmin(dashboard.store, dashboard.runtime.market.clock).get("trader").last_login_at
    at.button(key="axion_logout").click().run()
    assert not at.session_state["authentication_status"]
    assert "Sign in" in texts(at)


def test_a_disabled_user_is_signed_out_on_the_next_run(dashboard):
    at = dashboard.app(user="trader").run()
    assert at.session_state[state.USER].username == "trader"
    UserAdmin(dashboard.store, dashboard.runtime.market.clock).set_disabled("admin", "trader", True)
    at.run()
    assert "disabled" in texts(at) or "Sign in" in texts(at)
    assert state.USER not in at.session_state


def test_thirty_minutes_without_activity_signs_out(dashboard):
    at = dashboard.app(user="trader").run()
    assert at.session_state[state.USER].username == "trader"
    at.session_state[state.LAST_SEEN] = time.time() - 31 * 60
    at.run()
    assert "without activity" in texts(at)
    assert not at.session_state["authentication_status"]


def test_roles_are_checked_on_the_server_side(dashboard):
    service = dashboard.runtime.service()
    with pytest.raises(PermissionDenied, match="trader role"):
        service.send_command("viewer", CommandType.KILL_SWITCH_ON, {"reason": "x"})
    with pytest.raises(PermissionDenied, match="signed-in"):
        service.send_command("nobody", CommandType.CANCEL_ALL, {})
    assert dashboard.commands() == []
    cid = service.send_command("trader", CommandType.KILL_SWITCH_ON, {"reason": "test"})
    assert dashboard.apply().id == cid
    admin = UserAdmin(dashboard.store, dashboard.runtime.market.clock)
    with pytest.raises(PermissionDenied):
        admin.add_user("trader", "mallory", "M", "", Role.ADMIN, PASSWORD)
    with pytest.raises(UserError, match="last enabled administrator"):
        admin.set_role("admin", "admin", Role.TRADER)


def test_the_cookie_key_is_generated_once_with_0600(dashboard):
    from app.auth import cookie_key

    first = cookie_key(dashboard.runtime)
    assert cookie_key(dashboard.runtime) == first and len(first) >= 40
    path = dashboard.runtime.settings.cookie_key_file
    assert path.stat().st_mode & 0o777 == 0o600
