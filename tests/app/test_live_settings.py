"""The Settings page's broker sections under AppTest: broker keys (admins only, stored encrypted
and never shown back), live trading behind the paper-history gate (switched by commands the
test executor applies, with the header's banners following), the order-rate limit and broker
routing."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.runtime import credential_vault
from core.credential_admin import CredentialAdmin
from core.domain import CommandStatus, CommandType, utcnow
from core.marketdata.calendar import WallClock
from tests.app.conftest import button_keys, click, frames, texts

KEY_VALUE = "PKLIVEKEY-9f8e7d6c5b4a3210-WXYZ"
MASKED = "••••WXYZ"


def _everything(at: AppTest) -> str:
    """Every element the page drew (its protobuf, which holds labels, values and data), every
    frame's cells, and every session-state value."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts.extend(f.to_string() for f in frames(at))
    parts.extend(repr(v) for v in at.session_state.values())
    return "\n".join(parts)


def _vault(dashboard):
    return credential_vault(dashboard.runtime.settings, dashboard.store)


def _database_bytes(dashboard) -> bytes:
    path = Path(dashboard.runtime.settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))


def _live_account(dashboard) -> None:
    """Configure a live (real-money) account, as ``AXION_ALPACA_LIVE=true`` would: in the
    dashboard process's runtime and in the test executor's (after its next restart)."""
    from app.state import dashboard_runtime

    for runtime in (dashboard.runtime, dashboard_runtime()):
        runtime.config = replace(runtime.config, live_account=True)


def _paper_history(dashboard) -> None:
    """One paper trade opened and closed by the executor, and the session marked: one paper
    session with one closed trade."""
    dashboard.command(CommandType.MANUAL_ORDER, {"symbol": "SPY", "side": "buy", "qty": "5"})
    dashboard.tick(3)
    dashboard.command(
        CommandType.MANUAL_ORDER,
        {"symbol": "SPY", "side": "sell", "qty": "5", "reduce_only": True},
    )
    dashboard.tick(3)
    dashboard.loop.run_until_complete(dashboard.executor.mark_to_market(force=True))
    with dashboard.store.unit_of_work(read_only=True) as uow:
        assert uow.journal.track_record() == (1, 1)


def _tick_until(dashboard, predicate, seconds: float = 10) -> None:
    """Tick until ``predicate(status)`` holds for the status the header reads (the executor
    publishes its state with its lease renewal, every couple of seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dashboard.tick()
        if predicate(dashboard.runtime.queries.status.executor()):
            return
        time.sleep(0.1)
    raise AssertionError("the executor never published the expected state")


def _write_lease(dashboard, info: dict[str, Any]) -> None:
    with dashboard.store.unit_of_work() as uow:
        assert uow.lease.try_acquire(
            dashboard.runtime.config.lease_name, "probe", utcnow(), timedelta(seconds=30), info
        )
        uow.commit()


# ---------------------------------------------------------------------------------- broker keys
def test_an_admin_stores_a_key_that_is_only_ever_shown_masked(dashboard):
    at = dashboard.app("settings", user="admin").run()
    assert "Broker keys" in [s.value for s in at.subheader]
    assert "No broker key is stored." in texts(at)
    at.selectbox(key="settings_key_name").select("alpaca.api_key")
    at.text_input(key="settings_key_value").input(KEY_VALUE)
    click(at, "Save key")
    assert not at.exception

    assert _vault(dashboard).get("alpaca.api_key").reveal() == KEY_VALUE
    shown = texts(at)
    assert f"alpaca.api_key stored ({MASKED})" in shown
    assert "restart that process" in shown and "for a new key to take effect" in shown
    keys = next(f for f in frames(at) if "masked" in f.columns)
    assert list(keys["name"]) == ["alpaca.api_key"]
    assert list(keys["masked"]) == [MASKED] and list(keys["updated_by"]) == ["admin"]
    assert list(keys["purpose"]) == ["Alpaca API key id"]

    assert KEY_VALUE not in _everything(at)
    assert at.text_input(key="settings_key_value").value == ""  # the form cleared the field
    assert dashboard.commands() == []  # never through the command table
    assert KEY_VALUE.encode() not in _database_bytes(dashboard)  # encrypted at rest
    at.run()
    assert KEY_VALUE not in _everything(at) and MASKED in _everything(at)


def test_an_admin_stores_a_key_under_another_name_and_empty_input_is_refused(dashboard):
    at = dashboard.app("settings", user="admin").run()
    at.selectbox(key="settings_key_name").select("(another name)")
    at.text_input(key="settings_key_value").input(KEY_VALUE)
    click(at, "Save key")
    assert "Type the key's name, or pick a known one." in texts(at)
    assert _vault(dashboard).names() == []

    at.selectbox(key="settings_key_name").select("alpaca.secret_key")
    click(at, "Save key")
    assert "Enter the value of alpaca.secret_key." in texts(at)
    assert _vault(dashboard).names() == []

    at.selectbox(key="settings_key_name").select("(another name)")
    at.text_input(key="settings_key_other").input("polygon.api_key")
    at.text_input(key="settings_key_value").input(KEY_VALUE)
    click(at, "Save key")
    assert not at.exception
    assert _vault(dashboard).get("polygon.api_key").reveal() == KEY_VALUE
    keys = next(f for f in frames(at) if "masked" in f.columns)
    assert list(keys["name"]) == ["polygon.api_key"] and list(keys["purpose"]) == [""]
    assert KEY_VALUE not in _everything(at)


def test_an_admin_deletes_a_key_after_confirming(dashboard):
    admin = CredentialAdmin(dashboard.store, _vault(dashboard), WallClock())
    admin.set("admin", "alpaca.api_key", KEY_VALUE)
    admin.set("admin", "alpaca.secret_key", "another-secret-value-1234")
    at = dashboard.app("settings", user="admin").run()
    keys = next(f for f in frames(at) if "masked" in f.columns)
    assert list(keys["name"]) == ["alpaca.api_key", "alpaca.secret_key"]
    at.selectbox(key="settings_key_delete_choice").select("alpaca.api_key")
    at.button(key="settings_key_delete_open").click().run()
    assert "**alpaca.api_key** is removed from the store" in texts(at)  # the dialog
    assert _vault(dashboard).has("alpaca.api_key")
    at.button(key="settings_key_delete_confirm").click().run()
    assert not at.exception
    assert "alpaca.api_key deleted." in texts(at)
    assert _vault(dashboard).names() == ["alpaca.secret_key"]
    keys = next(f for f in frames(at) if "masked" in f.columns)
    assert list(keys["name"]) == ["alpaca.secret_key"]


@pytest.mark.parametrize("who", ["trader", "viewer"])
def test_other_roles_see_nothing_of_the_keys(dashboard, who):
    CredentialAdmin(dashboard.store, _vault(dashboard), WallClock()).set(
        "admin", "alpaca.api_key", KEY_VALUE
    )
    at = dashboard.app("settings", user=who).run()
    assert not at.exception
    assert "Broker keys" not in [s.value for s in at.subheader]
    assert not [t for t in at.text_input if t.key and t.key.startswith("settings_key")]
    everything = _everything(at)
    assert MASKED not in everything and "alpaca.api_key" not in everything
    assert KEY_VALUE not in everything


# ---------------------------------------------------------------------------------- live trading
@pytest.mark.parametrize("who", ["admin", "trader"])
def test_a_paper_account_explains_live_trading_and_offers_no_switch(dashboard, who):
    at = dashboard.app("settings", user=who).run()
    assert not at.exception
    shown = texts(at)
    assert "Paper account" in shown and "nothing to switch" in shown
    assert "`AXION_BROKER=alpaca` with `AXION_ALPACA_LIVE=true`" in shown
    assert "`AXION_BROKER=ibkr` with `AXION_IBKR_LIVE=true`" in shown
    assert "Paper sessions 0 of 5" in shown and "Closed paper trades 0 of 20" in shown
    assert "No switch on record" in shown
    assert not {"settings_go_live_open", "settings_go_paper_open"} & button_keys(at)
    gate_form = "FormSubmitter:settings_gate_form-Save the gate" in button_keys(at)
    assert gate_form is (who == "admin")


def test_an_admin_switches_a_live_account_to_live_behind_the_gate_and_back(dashboard):
    at = dashboard.app("settings", user="admin").run()
    _paper_history(dashboard)  # on paper first
    dashboard.restart()
    _live_account(dashboard)  # then the process starts on a live account
    _tick_until(dashboard, lambda s: s.live_account and s.holder == "test-executor")

    at.run()
    shown = texts(at)
    assert "Live account, locked: new-risk orders are refused" in shown  # the header
    assert "Paper sessions 1 of 5" in shown and "Closed paper trades 1 of 20" in shown
    switch = at.button(key="settings_go_live_open")
    assert switch.disabled
    assert "Switching needs more paper history: 1 of 5 paper sessions, 1 of 20 closed" in shown

    # the admin lowers the gate (a command the executor applies)
    at.number_input(key="settings_gate_sessions").set_value(1)
    at.number_input(key="settings_gate_trades").set_value(1)
    click(at, "Save the gate")
    command = dashboard.last_command()
    assert command.type == CommandType.UPDATE_SETTING.value and command.created_by == "admin"
    assert command.payload == {
        "key": "live.gate",
        "value": {"min_paper_sessions": 1, "min_closed_trades": 1},
    }
    assert dashboard.apply().status is CommandStatus.APPLIED

    at.run()
    assert "Paper sessions 1 of 1" in texts(at) and "meets the gate" in texts(at)
    assert not at.button(key="settings_go_live_open").disabled
    at.button(key="settings_go_live_open").click().run()
    assert "**use real money**" in texts(at)  # the dialog
    at.text_input(key="settings_go_live_word").input("live")
    at.button(key="settings_go_live_confirm").click().run()
    assert "Type LIVE (in capitals) to switch." in texts(at)
    assert not [c for c in dashboard.commands() if c.type == CommandType.GO_LIVE.value]

    at.text_input(key="settings_go_live_word").input("LIVE")
    at.button(key="settings_go_live_confirm").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert command.type == CommandType.GO_LIVE.value
    assert command.payload == {"confirm": True} and command.created_by == "admin"
    applied = dashboard.apply()
    assert applied.status is CommandStatus.APPLIED
    assert "LIVE trading on, by admin" in (applied.result or "")
    _tick_until(dashboard, lambda s: s.live)

    elsewhere = dashboard.app("positions", user="viewer").run()
    shown = texts(elsewhere)
    assert "LIVE TRADING — orders on this account use real money" in shown
    assert "Live account, locked" not in shown

    at.run()
    shown = texts(at)
    assert "LIVE trading is on" in shown
    assert "Switched to **LIVE** by **admin**" in shown
    assert "on 1 paper sessions and 1 closed paper trades" in shown
    assert "settings_go_live_open" not in button_keys(at)

    # back to paper, with a reason
    at.button(key="settings_go_paper_open").click().run()
    at.button(key="settings_go_paper_confirm").click().run()
    assert "A reason is required." in texts(at)
    at.text_input(key="settings_go_paper_reason").input("end of the trial")
    at.button(key="settings_go_paper_confirm").click().run()
    command = dashboard.last_command()
    assert command.type == CommandType.GO_PAPER.value
    assert command.payload == {"reason": "end of the trial"}
    assert dashboard.apply().status is CommandStatus.APPLIED
    _tick_until(dashboard, lambda s: not s.live)
    at.run()
    shown = texts(at)
    assert "Switched back to **paper** by **admin**" in shown and "end of the trial" in shown
    assert "Live account, locked" in shown and "LIVE TRADING —" not in shown


def test_a_trader_sees_live_trading_read_only(dashboard):
    at = dashboard.app("settings", user="trader").run()
    _live_account(dashboard)
    at.run()
    shown = texts(at)
    assert "Paper sessions 0 of 5" in shown and "Live account, locked" in shown
    assert "Switching live trading and changing the gate need the admin role." in shown
    keys = button_keys(at)
    assert "settings_go_live_open" not in keys
    assert "FormSubmitter:settings_gate_form-Save the gate" not in keys


def test_go_live_is_refused_with_the_missing_history(dashboard):
    at = dashboard.app("settings", user="admin").run()
    _live_account(dashboard)
    dashboard.tick()
    dashboard.command(CommandType.GO_LIVE, {"confirm": True}, by="admin")
    rejected = dashboard.apply()
    assert rejected.status is CommandStatus.REJECTED
    assert "0 of 5 paper sessions" in (rejected.result or "")
    at.run()
    assert "No switch on record" in texts(at)


# ---------------------------------------------------------------------------------- rate limit
def test_an_admin_changes_the_order_rate_limit(dashboard):
    at = dashboard.app("settings", user="admin").run()
    shown = texts(at)
    assert "at most 10 new-risk orders per 60 s (the configured default)" in shown
    assert "never throttled" in shown and "decision chain" in shown
    click(at, "Save rate limit")
    assert "Nothing changed." in texts(at) and dashboard.commands() == []

    at.number_input(key="settings_rate_max_orders").set_value(5)
    at.number_input(key="settings_rate_window").set_value(30.0)
    click(at, "Save rate limit")
    command = dashboard.last_command()
    assert command.type == CommandType.UPDATE_SETTING.value and command.created_by == "admin"
    assert command.payload == {
        "key": "orders.rate_limit",
        "value": {"max_orders": 5, "window_seconds": 30, "enabled": True},
    }
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert dashboard.executor.rate_limiter.config.max_orders == 5
    at.run()
    assert "at most 5 new-risk orders per 30 s (version 1 by admin" in texts(at)

    at.checkbox(key="settings_rate_enabled").uncheck()
    click(at, "Save rate limit")
    assert dashboard.last_command().payload["value"]["enabled"] is False
    assert dashboard.apply().status is CommandStatus.APPLIED
    at.run()
    assert "off (when on: 5 new-risk orders per 30 s)" in texts(at)


@pytest.mark.parametrize("who", ["trader", "viewer"])
def test_other_roles_see_the_rate_limit_without_the_form(dashboard, who):
    at = dashboard.app("settings", user=who).run()
    shown = texts(at)
    assert "at most 10 new-risk orders per 60 s" in shown and "never throttled" in shown
    assert "Changing the order-rate limit needs the admin role." in shown
    assert "FormSubmitter:settings_rate_form-Save rate limit" not in button_keys(at)
    assert not [n for n in at.number_input if n.key.startswith("settings_rate")]


# ---------------------------------------------------------------------------------- routing
def test_broker_routes_are_shown_when_a_fallback_is_configured(dashboard):
    at = dashboard.app("settings", user="viewer").run()
    assert not [f for f in frames(at) if "last_error" in f.columns]  # no fallback
    failed = utcnow().isoformat()
    _write_lease(
        dashboard,
        {
            "ticks": 12,
            "broker": "ibkr",
            "connected": True,
            "routes": {
                "active": "ibkr",
                "down_since": failed,
                "brokers": [
                    {
                        "name": "alpaca",
                        "role": "primary",
                        "connected": False,
                        "up": False,
                        "failed_at": failed,
                        "last_error": "connection refused",
                    },
                    {
                        "name": "ibkr",
                        "role": "fallback",
                        "connected": True,
                        "up": True,
                        "failed_at": None,
                        "last_error": None,
                    },
                ],
            },
        },
    )
    assert dashboard.runtime.queries.status.executor().routes["active"] == "ibkr"
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "new orders go to `ibkr`" in shown and "unreachable since" in shown
    routes = next(f for f in frames(at) if "last_error" in f.columns)
    assert list(routes["name"]) == ["alpaca", "ibkr"]
    assert list(routes["state"]) == ["down", "up"] and list(routes["active"]) == [False, True]
    assert list(routes["last_error"]) == ["connection refused", ""]
