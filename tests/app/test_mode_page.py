"""The Instrument Mode page: the mode picker and the routing table, the risk profile form and
its versions, the autonomous-trading opt-in and the watchlist, each change an ``update_setting``
command the test executor applies; a viewer sees everything and changes nothing."""

from __future__ import annotations

from decimal import Decimal

from streamlit.testing.v1 import AppTest

from app.components import mode, mode_tables
from core.domain import CommandStatus, CommandType, InstrumentType, TradeType
from core.instruments.config import InstrumentConfig
from core.instruments.modes import InstrumentMode, route_kind
from core.risk.config import AGGRESSIVE, CONSERVATIVE
from tests.app.conftest import texts

SAVE_PROFILE = "Save risk profile"


def _stored(dashboard, key: str):
    with dashboard.store.unit_of_work(read_only=True) as uow:
        row = uow.settings.get(key)
    return None if row is None else row.value


def _save_profile(at: AppTest) -> None:
    [button] = [b for b in at.button if b.label == SAVE_PROFILE]
    button.click().run()
    assert not at.exception, at.exception


def _setting_command(dashboard, key: str):
    command = dashboard.last_command()
    assert command.type == CommandType.UPDATE_SETTING and command.created_by == "trader"
    assert command.payload["key"] == key
    return command


# ------------------------------------------------------------------------------ rendering
def test_the_page_renders_on_an_empty_database(dashboard):
    at = dashboard.app("mode").run()
    assert not at.exception
    shown = texts(at)
    assert "In force: **Both** (as configured at start)" in shown
    assert "In force: **aggressive** (as configured at start)" in shown
    assert "**Off**: every rebalance plan waits for a person's approval" in shown
    assert "Scanning: **SPY, QQQ, NVDA, TQQQ, SOXL, SPXL**" in shown
    assert "options trading is supported" in shown


def test_the_page_renders_with_seeded_trading_and_setting_history(dashboard):
    dashboard.seed_trading()
    dashboard.command(
        CommandType.UPDATE_SETTING, {"key": "executor.instrument_mode", "value": "options"}
    )
    dashboard.apply()
    dashboard.command(CommandType.UPDATE_SETTING, {"key": "risk.profile", "value": "conservative"})
    dashboard.apply()
    at = dashboard.app("mode").run()
    assert not at.exception
    shown = texts(at)
    assert "In force: **Options** (version 1, set by trader" in shown
    assert "In force: **conservative** (version 1, set by trader" in shown


def test_the_routing_table_is_the_routers_own_rules():
    table = mode_tables.routing_table(InstrumentConfig())
    assert list(table.columns) == [
        "Mode",
        "Scalp signals (1-min)",
        "Day signals (10-min)",
        "Swing signals (1-hour)",
    ]
    rows = {r["Mode"]: r for r in table.to_dict("records")}
    assert rows["Options"]["Scalp signals (1-min)"].startswith("0DTE/1DTE options (calls for bull")
    assert rows["Options"]["Day signals (10-min)"] == "stock"
    assert rows["Leveraged ETF"]["Day signals (10-min)"] == "3x leveraged ETF"
    assert rows["Leveraged ETF"]["Swing signals (1-hour)"].startswith("2x leveraged ETF")
    assert rows["Both"]["Day signals (10-min)"] == (
        "3x leveraged ETF if conviction ≥ 75, else stock"
    )
    assert rows["Both"]["Swing signals (1-hour)"] == "stock"
    # every cell agrees with route_kind
    for m in InstrumentMode:
        for tt in TradeType:
            cell = next(
                v for k, v in rows[mode_tables.MODE_LABELS[m]].items() if k.startswith(tt.title())
            )
            kind = route_kind(m, tt, 100)
            assert cell.startswith(
                {
                    InstrumentType.OPTION: "0DTE",
                    InstrumentType.STOCK: "stock",
                    InstrumentType.LEVERAGED_ETF: "3x" if tt is not TradeType.SWING else "2x",
                }[kind]
            )
    other = mode_tables.routing_table(InstrumentConfig(both_mode_etf_min_conviction=60))
    assert "conviction ≥ 60" in other.iloc[2]["Day signals (10-min)"]


# ------------------------------------------------------------------------------ mode
def test_changing_the_mode_is_a_command_and_the_stored_setting_holds_it(dashboard):
    at = dashboard.app("mode").run()
    assert at.button(key="mode_apply").disabled  # the picked mode is the one in force
    at.radio(key="mode_pick_0").set_value(InstrumentMode.LEVERAGED_ETF).run()
    at.button(key="mode_apply").click().run()
    command = _setting_command(dashboard, "executor.instrument_mode")
    assert command.payload["value"] == "leveraged_etf"
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert _stored(dashboard, "executor.instrument_mode") == "leveraged_etf"
    assert dashboard.executor.config.instrument_mode is InstrumentMode.LEVERAGED_ETF
    at.run()
    assert "In force: **Leveraged ETF** (version 1, set by trader" in texts(at)


# ------------------------------------------------------------------------------ risk profile
def test_an_edited_risk_profile_is_saved_and_its_versions_listed(dashboard):
    at = dashboard.app("mode").run()
    at.text_input(key="risk_aggressive_0_max_risk_per_trade").set_value("0.03")
    at.number_input(key="risk_aggressive_0_max_concurrent_positions").set_value(6)
    _save_profile(at)
    command = _setting_command(dashboard, "risk.profile")
    value = command.payload["value"]
    assert value["name"] == "aggressive" and value["max_risk_per_trade"] == "0.03"
    assert value["max_concurrent_positions"] == 6
    assert dashboard.apply().status is CommandStatus.APPLIED
    profile = dashboard.runtime.current_profile()
    assert profile.max_risk_per_trade == Decimal("0.03") and profile.max_concurrent_positions == 6
    assert profile.daily_loss_limit == AGGRESSIVE.daily_loss_limit

    at.run()
    assert "In force: **aggressive**, edited (version 1, set by trader" in texts(at)
    versions = next(df.value for df in at.dataframe if "Changes" in df.value.columns)
    assert list(versions["Version"]) == [1] and list(versions["By"]) == ["trader"]
    # the form now starts from the stored version
    assert at.text_input(key="risk_aggressive_1_max_risk_per_trade").value == "0.03"


def test_a_bad_risk_profile_edit_shows_the_error_and_writes_no_command(dashboard):
    before = dashboard.commands()
    at = dashboard.app("mode").run()
    at.text_input(key="risk_aggressive_0_max_single_exposure").set_value("0.5")
    _save_profile(at)
    [error] = [e.value for e in at.error]
    assert "The risk profile was not saved" in error
    assert "max_single_exposure (0.5) must not exceed max_sector_exposure" in error
    at.text_input(key="risk_aggressive_0_max_single_exposure").set_value("0.15")
    at.text_input(key="risk_aggressive_0_daily_loss_limit").set_value("ten percent")
    _save_profile(at)
    assert "daily_loss_limit must be a number" in at.error[0].value
    assert dashboard.commands() == before


def test_switching_to_the_conservative_profile(dashboard):
    at = dashboard.app("mode").run()
    at.selectbox(key="risk_profile_name").set_value("conservative").run()
    assert at.text_input(key="risk_conservative_0_cash_buffer").value == "0.02"
    _save_profile(at)
    command = _setting_command(dashboard, "risk.profile")
    assert command.payload["value"] == CONSERVATIVE.to_dict()
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert dashboard.runtime.current_profile() == CONSERVATIVE


def test_saving_the_profile_in_force_unchanged_sends_nothing(dashboard):
    before = dashboard.commands()
    at = dashboard.app("mode").run()
    _save_profile(at)
    assert "Nothing changed" in texts(at) and dashboard.commands() == before


# ------------------------------------------------------------------------------ autonomous
def test_the_autonomous_opt_in_needs_a_confirmation_and_records_who(dashboard):
    at = dashboard.app("mode").run()
    at.button(key="autonomous_on").click().run()
    assert "execute without approval" in texts(at)
    assert dashboard.commands() == []  # nothing before the confirmation
    # a browser reruns only the dialog for the confirm click; AppTest reruns the page
    at.session_state[mode.AUTONOMOUS_DIALOG] = True
    at.button(key="autonomous_confirm_confirm").click().run()
    assert not at.exception
    command = _setting_command(dashboard, "rebalance.autonomous")
    assert command.payload["value"] is True
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert dashboard.runtime.service().autonomous()

    at.run()
    shown = texts(at)
    assert "**On**: proposed rebalance plans execute without a person's approval" in shown
    assert "version 1, set by trader" in shown
    at.button(key="autonomous_off").click().run()
    assert _setting_command(dashboard, "rebalance.autonomous").payload["value"] is False
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert not dashboard.runtime.service().autonomous()
    at.run()
    history = [df.value for df in at.dataframe if "Value" in df.value.columns]
    assert [list(h["Value"]) for h in history] == [["off", "on"]]
    assert list(history[0]["By"]) == ["trader", "trader"]


# ------------------------------------------------------------------------------ watchlist
def test_the_watchlist_is_changed_by_a_command(dashboard):
    at = dashboard.app("mode").run()
    at.multiselect(key="watchlist_0").set_value(["QQQ", "NVDA", "SOXL"])
    at.button(key="watchlist_save").click().run()
    command = _setting_command(dashboard, "signals.watchlist")
    assert command.payload["value"] == ["QQQ", "NVDA", "SOXL"]
    assert dashboard.apply().status is CommandStatus.APPLIED
    assert _stored(dashboard, "signals.watchlist") == ["QQQ", "NVDA", "SOXL"]
    at.run()
    assert "Scanning: **QQQ, NVDA, SOXL** (version 1, set by trader" in texts(at)


def test_an_empty_watchlist_is_refused_on_the_page(dashboard):
    at = dashboard.app("mode").run()
    at.multiselect(key="watchlist_0").set_value([])
    at.button(key="watchlist_save").click().run()
    assert "needs at least one symbol" in at.error[0].value
    assert dashboard.commands() == []


# ------------------------------------------------------------------------------ viewer
def test_a_viewer_sees_everything_read_only(dashboard):
    at = dashboard.app("mode", user="viewer").run()
    assert not at.exception
    assert [b.key for b in at.button] == ["axion_logout"]
    assert not at.radio and not at.text_input and not at.multiselect and not at.number_input
    assert not at.selectbox and not at.checkbox
    shown = texts(at)
    assert "Read-only" in shown and "In force: **Both**" in shown
    params = next(df.value for df in at.dataframe if "Parameter" in df.value.columns)
    assert "max_risk_per_trade" in list(params["Parameter"])
