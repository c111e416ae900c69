"""The Risk Dashboard under AppTest: limits, charts and empty states, and the kill switch turned
on and off through confirmed commands that the executor applies."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.domain import CommandStatus, CommandType
from tests.app.conftest import texts


def _charts(at: AppTest) -> list[str]:
    return [e.proto.id for e in at.get("plotly_chart")]


def _kill_switch(dashboard):
    return dashboard.runtime.queries.status.executor().kill_switch


def test_empty_store_shows_designed_empty_states(dashboard):
    at = dashboard.app("risk", user="trader").run()
    assert not at.exception
    shown = texts(at)
    assert "Risk Dashboard" in shown
    assert "Kill switch off" in shown
    assert "No open positions: nothing is exposed." in shown
    assert "No trades closed yet" in shown
    assert "Positions 0 / 10" in shown
    assert "The kill switch has never been turned on." in shown
    assert len(_charts(at)) == 1  # the gauges still show the limits


def test_seeded_trading_shows_limits_exposure_and_pnl(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("risk", user="trader").run()
    assert not at.exception
    shown = texts(at)
    assert "Positions 3 / 10" in shown
    assert "of equity" in shown
    assert "No open positions" not in shown
    assert len(_charts(at)) == 4  # gauges, exposure, P&L, drawdown


def test_a_trader_turns_the_kill_switch_on_and_off_with_reasons(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("risk", user="trader").run()
    assert _has(at, "ks_on_open") and not _has(at, "ks_off_open")

    at.button(key="ks_on_open").click().run()
    assert not at.exception
    assert "No new entries will be sent" in texts(at)
    at.text_input(key="ks_on_reason").input("desk halt: news pending")
    at.button(key="ks_on_confirm").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert command.type == CommandType.KILL_SWITCH_ON.value
    assert command.payload == {"reason": "desk halt: news pending"}
    assert command.created_by == "trader"
    assert dashboard.apply().status is CommandStatus.APPLIED

    at.run()
    shown = texts(at)
    state = _kill_switch(dashboard)
    assert state.active and state.at is not None
    assert "Kill switch ON" in shown and "trigger: desk halt: news pending" in shown
    assert "by trader" in shown and state.at.strftime("%Y-%m-%d %H:%M:%S UTC") in shown
    assert _has(at, "ks_off_open") and not _has(at, "ks_on_open")

    at.button(key="ks_off_open").click().run()
    at.text_input(key="ks_off_reason").input("news out, spreads normal")
    at.button(key="ks_off_confirm").click().run()
    command = dashboard.last_command()
    assert command.type == CommandType.KILL_SWITCH_OFF.value
    assert command.payload == {"reason": "news out, spreads normal"}
    assert command.created_by == "trader"
    assert dashboard.apply().status is CommandStatus.APPLIED

    at.run()
    shown = texts(at)
    assert not _kill_switch(dashboard).active
    assert "Kill switch off" in shown
    assert "Last released by trader" in shown and "news out, spreads normal" in shown
    assert _has(at, "ks_on_open")
    history = [e.value for e in at.dataframe]
    assert list(history[0]["state"]) == ["off", "ON"]
    assert list(history[1]["type"]) == ["kill_switch_off", "kill_switch_on"]


def test_turning_it_on_needs_a_reason_and_cancel_sends_nothing(dashboard):
    at = dashboard.app("risk", user="admin").run()
    at.button(key="ks_on_open").click().run()
    at.button(key="ks_on_confirm").click().run()
    assert "A reason is required." in texts(at)
    assert dashboard.commands() == []

    at = dashboard.app("risk", user="admin").run()
    at.button(key="ks_on_open").click().run()
    at.text_input(key="ks_on_reason").input("second thoughts")
    at.button(key="ks_on_cancel").click().run()
    assert not at.exception
    assert dashboard.commands() == []
    assert "No new entries will be sent" not in texts(at)


def test_flatten_goes_with_the_command_when_ticked(dashboard):
    at = dashboard.app("risk", user="admin").run()
    at.checkbox(key="ks_flatten").check().run()
    at.button(key="ks_on_open").click().run()
    assert "Every open position is closed" in texts(at)
    at.text_input(key="ks_on_reason").input("flatten the book")
    at.button(key="ks_on_confirm").click().run()
    command = dashboard.last_command()
    assert command.payload == {"reason": "flatten the book", "flatten": True}
    assert command.created_by == "admin"


def test_a_tripped_switch_shows_the_engine_trigger(dashboard):
    dashboard.command(CommandType.KILL_SWITCH_ON, {"reason": "daily loss reached"}, by="admin")
    dashboard.apply()
    at = dashboard.app("risk", user="viewer").run()
    shown = texts(at)
    assert "Kill switch ON" in shown and "daily loss reached" in shown and "by admin" in shown


def test_a_viewer_sees_the_state_but_no_controls(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("risk", user="viewer").run()
    assert not at.exception
    assert not _has(at, "ks_on_open") and not _has(at, "ks_off_open")
    assert not any(c.key == "ks_flatten" for c in at.checkbox)
    assert "needs the trader role" in texts(at)
    assert "Kill switch off" in texts(at)


def _has(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)
