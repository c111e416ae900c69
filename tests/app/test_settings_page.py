"""The Settings page under AppTest: executor status and this process's thread, market data and
broker, paper fill settings sent as commands and applied to the paper broker, reconciliation
actions, user management end to end, and the command audit; controls only for the roles that
may use them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from streamlit.testing.v1 import AppTest

from app import state
from core.brokers.commission import CommissionSchedule
from core.domain import (
    CommandStatus,
    CommandType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.user_admin import UserAdmin
from core.users import Role, verify_password
from tests.app.conftest import PASSWORD, button_keys, click, frames, texts

NEW_PASSWORD = "a much longer secret 42"


def _admin(dashboard) -> UserAdmin:
    return UserAdmin(dashboard.store, dashboard.runtime.market.clock)


def _run(dashboard, coro):
    return dashboard.loop.run_until_complete(coro)


# ---------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("who", ["admin", "trader", "viewer"])
def test_renders_for_every_role_on_an_empty_store(dashboard, who):
    at = dashboard.app("settings", user=who).run()
    assert not at.exception
    shown = texts(at)
    assert "Settings" in shown and "Executor never started" in shown and "Ticks 0" in shown
    assert "runs no executor thread" in shown and "AXION_EXECUTOR=external" in shown
    assert "Simulated market at 1x" in shown and "seed 7" in shown
    assert "`paper` broker" in shown
    assert "Alpaca" in shown and "Interactive Brokers" in shown
    assert "AXION_FALLBACK_BROKER" in shown and "not available from the dashboard" not in shown
    assert "No difference between the store and the broker has been recorded." in shown
    assert "No fill setting has been changed yet" in shown
    assert "No command yet." in shown


@pytest.mark.parametrize("who", ["admin", "trader", "viewer"])
def test_renders_for_every_role_with_seeded_trading(dashboard, who):
    dashboard.seed_trading()
    at = dashboard.app("settings", user=who).run()
    assert not at.exception
    shown = texts(at)
    assert "Executor running" in shown and "Leader `test-executor` holds the lease" in shown
    audit = next(f for f in frames(at) if "payload" in f.columns)
    assert (audit["type"] == "manual_order").sum() == 4
    assert set(audit["status"]) == {"applied"}


def test_a_viewer_sees_views_and_only_their_own_password_form(dashboard):
    at = dashboard.app("settings", user="viewer").run()
    assert button_keys(at) == {
        "FormSubmitter:settings_own_password-Change my password",
        "axion_logout",
    }
    assert [n.key for n in at.number_input] == ["settings_audit_limit"]  # a filter
    shown = texts(at)
    assert "Starting and stopping the executor needs the admin role." in shown
    assert "Changing fill settings needs the trader role." in shown
    assert "Resolving differences needs the trader role." in shown
    assert "Managing users needs the admin role." in shown


def test_a_trader_gets_settings_and_reconciliation_but_no_executor_or_user_controls(dashboard):
    at = dashboard.app("settings", user="trader").run()
    keys = button_keys(at)
    assert "FormSubmitter:settings_fills_form-Save fill settings" in keys
    assert "settings_executor_start" not in keys and "settings_user_role_apply" not in keys
    assert "Managing users needs the admin role." in texts(at)


# ---------------------------------------------------------------------------------- executor
def test_an_admin_starts_and_stops_this_processs_executor_thread(dashboard):
    from app.state import dashboard_runtime

    at = dashboard.app("settings", user="admin").run()
    runtime = dashboard_runtime()
    assert runtime.thread is None
    at.button(key="settings_executor_start").click().run()
    assert not at.exception
    try:
        assert runtime.thread is not None and runtime.thread.is_alive()
        assert "runs an executor thread" in texts(at)
        at.button(key="settings_executor_stop_open").click().run()
        assert "This process stops ticking: commands wait" in texts(at)  # the dialog
        at.button(key="settings_executor_stop_confirm").click().run()
        assert not at.exception
        assert runtime.thread is None
        assert "runs no executor thread" in texts(at)
    finally:
        runtime.stop_executor()


def _start_as(username: str) -> None:
    from app.components.settings import start_executor
    from app.state import dashboard_runtime
    from core.user_admin import UserAdmin

    rt = dashboard_runtime()
    start_executor(rt, UserAdmin(rt.store, rt.market.clock).get(username))


def test_executor_control_is_checked_against_the_stored_role(dashboard):
    from app.state import dashboard_runtime

    dashboard.app("settings", user="trader").run()
    probe = AppTest.from_function(_start_as, args=("trader",)).run()
    assert "executor control needs the admin role" in texts(probe)
    assert dashboard_runtime().thread is None


# ---------------------------------------------------------------------------------- paper fills
def test_a_trader_changes_latency_and_commission_and_the_executor_applies_them(dashboard):
    at = dashboard.app("settings", user="trader").run()
    at.number_input(key="settings_fills_latency").set_value(250)
    at.selectbox(key="settings_fills_commission_kind").select("per_share")
    at.number_input(key="settings_fills_rate").set_value(0.005)
    at.number_input(key="settings_fills_minimum").set_value(1.0)
    click(at, "Save fill settings")
    assert not at.exception
    sent = [c for c in dashboard.commands() if c.type == CommandType.UPDATE_SETTING.value]
    assert [c.payload["key"] for c in sent] == ["paper.latency_ms", "paper.commission"]
    assert sent[0].payload["value"] == 250 and sent[0].created_by == "trader"
    assert sent[1].payload["value"] == {
        "kind": "per_share",
        "rate": "0.005",
        "minimum": "1",
        "max_pct": None,
    }
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert all(c.status is CommandStatus.APPLIED for c in dashboard.commands())
    broker = dashboard.runtime.broker  # the paper broker the executor runs
    assert broker.config.latency == timedelta(milliseconds=250)
    assert broker.config.commission == CommissionSchedule.per_share("0.005", "1")
    at.run()
    knobs = next(f for f in frames(at) if "source" in f.columns)
    values = dict(zip(knobs["key"], knobs["value"], strict=True))
    assert values["paper.latency_ms"] == "250 ms"
    assert values["paper.commission"] == "$0.005 per share, at least $1 per order"
    assert any("version 1 by trader" in s for s in knobs["source"])
    assert "Change history (2)" in [e.label for e in at.expander]


def test_the_options_per_contract_commission_is_set_and_kept(dashboard):
    at = dashboard.app("settings", user="trader").run()
    at.number_input(key="settings_fills_per_contract").set_value(0.65)
    click(at, "Save fill settings")
    (sent,) = [c for c in dashboard.commands() if c.type == CommandType.UPDATE_SETTING.value]
    assert sent.payload["value"] == {"kind": "zero", "per_contract": "0.65"}
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert dashboard.runtime.broker.config.commission.per_contract == Decimal("0.65")
    # saving the form again without a change keeps the options rate (nothing is sent)
    at = dashboard.app("settings", user="trader").run()
    assert at.number_input(key="settings_fills_per_contract").value == 0.65
    click(at, "Save fill settings")
    assert "Nothing changed." in texts(at)


def test_saving_an_unchanged_form_sends_nothing(dashboard):
    at = dashboard.app("settings", user="trader").run()
    click(at, "Save fill settings")
    assert "Nothing changed." in texts(at)
    assert dashboard.commands() == []


def test_a_rejected_fill_setting_shows_the_reason(dashboard):
    dashboard.command(CommandType.UPDATE_SETTING, {"key": "paper.latency_ms", "value": -1})
    assert dashboard.apply().status is CommandStatus.REJECTED
    at = dashboard.app("settings", user="trader").run()
    audit = next(f for f in frames(at) if "payload" in f.columns)
    assert audit.iloc[0]["status"] == "rejected"
    assert "between 0 and 600000" in audit.iloc[0]["result"]


# ---------------------------------------------------------------------------------- reconciliation
def _position_difference(dashboard) -> None:
    """Two SPY shares bought at the broker behind the executor's back, then reconciled."""
    broker = dashboard.runtime.broker
    dashboard.seed_trading()
    _run(dashboard, broker.submit_order(OrderRequest("desk-phone-1", "SPY", Side.BUY, Decimal(2))))
    dashboard.tick()
    _run(dashboard, dashboard.executor.reconciler.reconcile())


def _store_qty(dashboard, symbol: str) -> Decimal | None:
    with dashboard.store.unit_of_work(read_only=True) as uow:
        pos = uow.positions.get(symbol)
    return None if pos is None else pos.qty


def test_a_trader_adopts_the_brokers_position_after_confirming(dashboard):
    _position_difference(dashboard)
    assert _store_qty(dashboard, "SPY") == Decimal(10)
    at = dashboard.app("settings", user="trader").run()
    diffs = next(f for f in frames(at) if "resolved_by" in f.columns)
    assert ((diffs["kind"] == "position_mismatch") & (diffs["status"] == "open")).any()
    at.selectbox(key="settings_adopt_choice").select("SPY")
    at.button(key="settings_adopt_open").click().run()
    assert "reads the broker's **SPY** position again" in texts(at)  # the dialog
    at.button(key="settings_adopt_confirm").click().run()
    assert "A reason is required." in texts(at)
    assert not [c for c in dashboard.commands() if c.type == "adopt_broker_position"]
    at.text_input(key="settings_adopt_reason").input("bought by phone with the desk")
    at.button(key="settings_adopt_confirm").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert command.type == CommandType.ADOPT_BROKER_POSITION.value
    assert command.payload == {"symbol": "SPY", "reason": "bought by phone with the desk"}
    assert command.created_by == "trader"
    applied = dashboard.apply()
    assert applied.status is CommandStatus.APPLIED
    assert "SPY: 10 -> 12" in (applied.result or "")
    assert "by trader: bought by phone with the desk" in (applied.result or "")
    assert _store_qty(dashboard, "SPY") == Decimal(12)
    at.run()
    diffs = next(f for f in frames(at) if "resolved_by" in f.columns)
    spy = diffs[(diffs["kind"] == "position_mismatch") & (diffs["key"] == "SPY")]
    assert set(spy["status"]) == {"resolved"}
    assert "position_adopted" in set(diffs["kind"])


def test_a_trader_cancels_an_orphan_order_at_the_broker(dashboard):
    broker = dashboard.runtime.broker
    dashboard.tick()
    quote = _run(dashboard, dashboard.runtime.market.quote("QQQ"))
    stray = OrderRequest(
        "stray-1",
        "QQQ",
        Side.BUY,
        Decimal(1),
        order_type=OrderType.LIMIT,
        limit_price=(quote.bid * Decimal("0.8")).quantize(Decimal("0.01")),
        time_in_force=TimeInForce.GTC,
    )
    _run(dashboard, broker.submit_order(stray))
    _run(dashboard, dashboard.executor.reconciler.reconcile())
    at = dashboard.app("settings", user="trader").run()
    at.selectbox(key="settings_orphan_choice").select("stray-1")
    at.button(key="settings_orphan_open").click().run()
    at.text_input(key="settings_orphan_reason").input("left over from a test session")
    at.button(key="settings_orphan_confirm").click().run()
    command = dashboard.last_command()
    assert command.type == CommandType.CANCEL_ORPHAN_ORDER.value
    assert command.payload == {
        "client_order_id": "stray-1",
        "reason": "left over from a test session",
    }
    assert dashboard.apply().status is CommandStatus.APPLIED
    remote = _run(dashboard, broker.get_order("stray-1"))
    assert remote is not None and remote.status is OrderStatus.CANCELLED
    at.run()
    assert "No position difference or orphan order to resolve." in texts(at)


def test_a_viewer_sees_differences_without_actions(dashboard):
    _position_difference(dashboard)
    at = dashboard.app("settings", user="viewer").run()
    diffs = next(f for f in frames(at) if "resolved_by" in f.columns)
    assert "position_mismatch" in set(diffs["kind"])
    assert "settings_adopt_open" not in button_keys(at)


# ---------------------------------------------------------------------------------- users
def test_an_admin_manages_a_user_end_to_end(dashboard):
    admin = _admin(dashboard)
    at = dashboard.app("settings", user="admin").run()
    users = next(f for f in frames(at) if "last_login" in f.columns)
    assert set(users["username"]) == {"admin", "trader", "viewer"}

    at.text_input(key="settings_user_add_username").input("carol")
    at.text_input(key="settings_user_add_name").input("Carol Chen")
    at.selectbox(key="settings_user_add_role").select("trader")
    at.text_input(key="settings_user_add_password").input(PASSWORD)
    at.text_input(key="settings_user_add_repeat").input(PASSWORD)
    click(at, "Add user")
    assert not at.exception
    assert "User 'carol' added as trader." in texts(at)
    carol = admin.get("carol")
    assert carol is not None and carol.role is Role.TRADER and carol.created_by == "admin"
    users = next(f for f in frames(at) if "last_login" in f.columns)
    assert "carol" in set(users["username"])

    at.selectbox(key="settings_user_role_user").select("carol")
    at.run()
    at.selectbox(key="settings_user_role_role_carol").select("viewer")
    at.button(key="settings_user_role_apply").click().run()
    assert "'carol' is now a viewer." in texts(at)
    assert admin.get("carol").role is Role.VIEWER

    at.selectbox(key="settings_user_reset_user").select("carol")
    at.text_input(key="settings_user_reset_password").input(NEW_PASSWORD)
    at.text_input(key="settings_user_reset_repeat").input(NEW_PASSWORD)
    click(at, "Reset password")
    assert "Password of 'carol' reset" in texts(at)
    assert verify_password(NEW_PASSWORD, admin.get("carol").password_hash)

    at.selectbox(key="settings_user_toggle_user").select("carol")
    at.button(key="settings_user_toggle_open").click().run()
    assert "**carol** can no longer sign in" in texts(at)  # the dialog
    at.button(key="settings_user_toggle_confirm").click().run()
    assert not at.exception
    assert "'carol' disabled." in texts(at)
    assert admin.get("carol").disabled

    refused = dashboard.app(user="carol").run()  # a session of carol's, signed in before
    assert state.USER not in refused.session_state
    assert "This user is disabled" in texts(refused) and "Sign in" in texts(refused)

    at.selectbox(key="settings_user_toggle_user").select("carol")
    at.button(key="settings_user_toggle_open").click().run()
    at.button(key="settings_user_toggle_confirm").click().run()
    assert "'carol' enabled." in texts(at) and not admin.get("carol").disabled


def test_user_errors_are_shown_and_change_nothing(dashboard):
    admin = _admin(dashboard)
    at = dashboard.app("settings", user="admin").run()
    at.selectbox(key="settings_user_role_user").select("admin")
    at.run()
    at.selectbox(key="settings_user_role_role_admin").select("trader")
    at.button(key="settings_user_role_apply").click().run()
    assert "last enabled administrator" in texts(at)
    assert admin.get("admin").role is Role.ADMIN

    at.text_input(key="settings_user_add_username").input("trader")
    at.text_input(key="settings_user_add_password").input(PASSWORD)
    at.text_input(key="settings_user_add_repeat").input(PASSWORD)
    click(at, "Add user")
    assert "user 'trader' already exists" in texts(at)

    at.text_input(key="settings_user_add_username").input("dave")
    at.text_input(key="settings_user_add_password").input("short")
    at.text_input(key="settings_user_add_repeat").input("short")
    click(at, "Add user")
    assert "at least 10 characters" in texts(at) and admin.get("dave") is None

    at.selectbox(key="settings_user_toggle_user").select("admin")
    at.button(key="settings_user_toggle_open").click().run()
    at.button(key="settings_user_toggle_confirm").click().run()
    assert "last enabled administrator" in texts(at)
    assert not admin.get("admin").disabled


def test_every_user_changes_their_own_password(dashboard):
    admin = _admin(dashboard)
    at = dashboard.app("settings", user="viewer").run()
    at.text_input(key="settings_own_current").input("not my password")
    at.text_input(key="settings_own_new").input(NEW_PASSWORD)
    at.text_input(key="settings_own_repeat").input(NEW_PASSWORD)
    click(at, "Change my password")
    assert "the current password is not correct" in texts(at)
    assert verify_password(PASSWORD, admin.get("viewer").password_hash)

    at.text_input(key="settings_own_current").input(PASSWORD)
    at.text_input(key="settings_own_new").input(NEW_PASSWORD)
    at.text_input(key="settings_own_repeat").input(NEW_PASSWORD)
    click(at, "Change my password")
    assert "Your password was changed." in texts(at)
    assert verify_password(NEW_PASSWORD, admin.get("viewer").password_hash)


# ---------------------------------------------------------------------------------- audit
def test_the_audit_shows_who_did_what_with_filters(dashboard):
    dashboard.command(CommandType.CANCEL_ALL, {}, by="trader")
    dashboard.apply()
    dashboard.command(CommandType.UPDATE_SETTING, {"key": "nope", "value": 1}, by="admin")
    dashboard.apply()
    at = dashboard.app("settings", user="viewer").run()
    audit = next(f for f in frames(at) if "payload" in f.columns)
    assert list(audit["type"]) == ["update_setting", "cancel_all"]
    assert list(audit["created_by"]) == ["admin", "trader"]
    assert list(audit["status"]) == ["rejected", "applied"]
    assert "unknown setting 'nope'" in audit.iloc[0]["result"]
    at.selectbox(key="settings_audit_by").select("trader").run()
    audit = next(f for f in frames(at) if "payload" in f.columns)
    assert list(audit["type"]) == ["cancel_all"]
    at.selectbox(key="settings_audit_status").select("pending").run()
    assert "No command matches." in texts(at)
