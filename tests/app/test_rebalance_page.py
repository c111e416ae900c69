"""The Rebalance page: targets from the table or a file, the previewed plan (allocation figure,
trades with estimated costs), quantity edits, approval and cancellation as commands the test
executor applies, live progress, and the read-only view of a viewer."""

from __future__ import annotations

import json
from decimal import Decimal

from streamlit.testing.v1 import AppTest

from app.components import rebalance as rb
from app.components import rebalance_tables as tables
from core.domain import CommandStatus, CommandType
from core.rebalance.model import PlanStatus, RebalancePlan
from tests.app.conftest import texts

WEIGHTS_EDITOR = "rebalance_targets_weights"
SCORES_EDITOR = "rebalance_targets_scores"


def _targets(at: AppTest, rows: list[tuple[str | None, float | None]], editor=WEIGHTS_EDITOR):
    at.session_state[editor] = {
        "edited_rows": {},
        "added_rows": [{"symbol": s, "value": v} for s, v in rows],
        "deleted_rows": [],
    }


def _plans(dashboard) -> list[RebalancePlan]:
    return dashboard.runtime.service().plans()


def _preview(dashboard, rows=(("SPY", 0.10), ("QQQ", 0.10), ("AAPL", 0.05))) -> AppTest:
    dashboard.seed_trading()
    at = dashboard.app("rebalance").run()
    _targets(at, list(rows))
    at.button(key="rebalance_preview").click().run()
    assert not at.exception, at.exception
    return at


def _confirm(at: AppTest, flag: str, plan_id: int, confirm_key: str) -> None:
    """Click the confirm button of the dialog the last run opened. A browser reruns only the
    dialog for that click; AppTest reruns the page, so the dialog is kept open for that run."""
    at.session_state[flag] = plan_id
    at.button(key=confirm_key).click().run()
    assert not at.exception, at.exception


# ------------------------------------------------------------------------------ rendering
def test_the_page_renders_on_an_empty_database(dashboard):
    at = dashboard.app("rebalance").run()
    assert not at.exception
    shown = texts(at)
    assert "No targets yet" in shown and "No rebalance plans yet" in shown
    at.button(key="rebalance_preview").click().run()  # no targets, no account: a clear error
    assert not at.exception
    assert "no targets given" in texts(at) and _plans(dashboard) == []


def test_a_preview_stores_a_proposed_plan_with_costs_and_the_allocation_side_by_side(dashboard):
    at = _preview(dashboard)
    [plan] = _plans(dashboard)
    assert plan.status is PlanStatus.PROPOSED and plan.created_by == "trader"
    assert {t.symbol for t in plan.trades} == {"SPY", "QQQ", "AAPL", "NVDA"}
    shown = texts(at)
    assert f"Plan #{plan.id} stored as proposed" in shown
    assert "Est. cost $" in shown and "commission $" in shown and "impact $" in shown
    assert at.session_state[rb.SELECTED_PLAN] == plan.id
    [chart] = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert [trace["name"] for trace in figure["data"]] == ["Current", "Target"]
    trades = next(df.value for df in at.dataframe if "Est. cost" in df.value.columns)
    assert list(trades["Symbol"]) == [t.symbol for t in plan.trades]
    assert {"Commission", "Spread", "Impact", "Algorithm"} <= set(trades.columns)
    assert "Not started: the plan waits for approval." in shown
    assert all(c.type != CommandType.APPROVE_REBALANCE for c in dashboard.commands())


def test_bad_targets_show_every_problem_and_store_nothing(dashboard):
    dashboard.seed_trading()
    before = len(dashboard.commands())
    at = dashboard.app("rebalance").run()
    _targets(at, [("SPY", 0.5), ("spy", 0.1), ("ZZZZ", 0.1), ("QQQ", -0.2), ("NVDA", None)])
    at.button(key="rebalance_preview").click().run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert "nothing was stored" in error
    for problem in (
        "weight of QQQ must not be negative",
        "weight of NVDA must be a number",
        "duplicate symbol SPY",
        "unknown symbol: ZZZZ",
    ):
        assert problem in error
    assert _plans(dashboard) == [] and len(dashboard.commands()) == before


def test_targets_from_an_uploaded_csv_and_the_problems_of_a_bad_json_file(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("rebalance").run()
    at.radio(key="rebalance_src").set_value("Upload CSV or JSON").run()
    at.button(key="rebalance_preview").click().run()
    assert "choose a CSV or JSON file first" in at.error[0].value
    csv = b"symbol,weight\nSPY,0.10\nMSFT,0.05\n"
    at.file_uploader(key="rebalance_upload").upload("targets.csv", csv, "text/csv")
    at.button(key="rebalance_preview").click().run()
    assert not at.exception
    [plan] = _plans(dashboard)
    assert plan.target_weights == {"MSFT": Decimal("0.05"), "SPY": Decimal("0.10")}
    assert plan.trigger_detail["source"] == "file:targets.csv"

    bad = b'[{"symbol": "SPY", "weight": "x"}, {"symbol": "QQQ"}, {"symbol": "AAPL", "weight": 3}]'
    at.file_uploader(key="rebalance_upload").clear().upload("t.json", bad, "application/json")
    at.button(key="rebalance_preview").click().run()
    [error] = [e.value for e in at.error]
    assert "item 1: weight of SPY must be a number" in error
    assert "item 2: expected fields symbol and weight or score" in error
    assert "above the leverage limit" in error
    assert len(_plans(dashboard)) == 1


def test_scores_go_through_the_chosen_allocation_method(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("rebalance").run()
    at.segmented_control(key="rebalance_kind").set_value("scores").run()
    _targets(at, [("SPY", 3.0), ("QQQ", 1.0), ("XOM", 0.0)], editor=SCORES_EDITOR)
    at.selectbox(key="rebalance_method").set_value("risk_parity")
    at.button(key="rebalance_preview").click().run()
    assert not at.exception, at.exception
    [plan] = _plans(dashboard)
    assert plan.method == "risk_parity"
    assert plan.target_weights["XOM"] == 0 and plan.target_weights["SPY"] > 0


def test_standing_targets_are_saved_as_a_setting_command(dashboard):
    at = dashboard.app("rebalance").run()
    _targets(at, [("SPY", 0.2), ("QQQ", 0.1)])
    at.button(key="rebalance_keep").click().run()
    command = dashboard.last_command()
    assert command.type == CommandType.UPDATE_SETTING and command.created_by == "trader"
    assert command.payload["key"] == "rebalance.targets"
    assert command.payload["value"]["values"] == {"QQQ": "0.1", "SPY": "0.2"}
    assert dashboard.apply().status is CommandStatus.APPLIED
    at = dashboard.app("rebalance").run()
    assert "Starting from the standing targets (version 1 by trader" in texts(at)


# ------------------------------------------------------------------------------ actions
def test_quantities_of_a_proposed_plan_can_be_modified(dashboard):
    at = _preview(dashboard)
    [plan] = _plans(dashboard)
    spy = next(t for t in plan.trades if t.symbol == "SPY")
    row = [t.seq for t in plan.trades].index(spy.seq)
    at.session_state[f"rebalance_trades_{plan.id}_{len(plan.notes)}"] = {
        "edited_rows": {row: {"Qty": 3}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.button(key="rebalance_modify").click().run()
    assert not at.exception, at.exception
    changed, _ = dashboard.runtime.service().plan(plan.id)
    assert changed.trade(spy.seq).qty == 3
    assert changed.notes[-1] == f"modified by trader: SPY {spy.qty} -> 3"


def test_approving_executes_the_plan_and_the_fills_show_up(dashboard):
    at = _preview(dashboard)
    [plan] = _plans(dashboard)
    with dashboard.store.unit_of_work(read_only=True) as uow:
        fills_before = uow.fills.count()
    at.button(key="rebalance_approve").click().run()
    assert at.button(key=f"rebalance_approve_{plan.id}_confirm").label == "Approve and execute"
    assert "The executor checks prices again" in texts(at)
    assert dashboard.last_command().type != CommandType.APPROVE_REBALANCE  # not before confirming
    _confirm(at, rb.APPROVE_DIALOG, plan.id, f"rebalance_approve_{plan.id}_confirm")

    command = dashboard.last_command()
    assert command.type == CommandType.APPROVE_REBALANCE
    assert command.payload == {"plan_id": plan.id} and command.created_by == "trader"
    assert dashboard.apply().status is CommandStatus.APPLIED
    dashboard.tick(6)
    done, _ = dashboard.runtime.service().plan(plan.id)
    assert done.status is PlanStatus.COMPLETED and done.approved_by == "trader"
    with dashboard.store.unit_of_work(read_only=True) as uow:
        assert uow.fills.count() >= fills_before + len(plan.trades)
        held = {p.symbol for p in uow.positions.all() if p.qty}
    assert "AAPL" in held and "NVDA" not in held

    at.run()
    shown = texts(at)
    assert f"{len(plan.trades)} of {len(plan.trades)} legs filled" in shown
    assert "completed" in shown
    assert not [b for b in at.button if b.key in ("rebalance_approve", "rebalance_modify")]
    history = next(df.value for df in at.dataframe if "From" in df.value.columns)
    assert list(history["To"]) == ["approved", "executing", "completed"]
    bars = {p.proto.text: p.value for p in at.get("progress")}
    sell = next(text for text in bars if text.startswith("MARKET sell 20 NVDA"))
    assert "20 of 20 filled" in sell and bars[sell] == 100


def test_a_proposed_plan_is_cancelled_with_a_reason(dashboard):
    at = _preview(dashboard)
    [plan] = _plans(dashboard)
    at.button(key="rebalance_cancel").click().run()
    at.session_state[rb.CANCEL_DIALOG] = plan.id
    at.text_input(key=f"rebalance_cancel_{plan.id}_reason").set_value("prices look off")
    at.button(key=f"rebalance_cancel_{plan.id}_confirm").click().run()
    assert not at.exception
    command = dashboard.last_command()
    assert command.type == CommandType.CANCEL_REBALANCE and command.created_by == "trader"
    assert command.payload == {"plan_id": plan.id, "reason": "prices look off"}
    assert dashboard.apply().status is CommandStatus.APPLIED
    cancelled, _ = dashboard.runtime.service().plan(plan.id)
    assert cancelled.status is PlanStatus.CANCELLED and cancelled.reason == "prices look off"
    at.run()
    assert "prices look off" in texts(at)
    assert not [b for b in at.button if b.key in ("rebalance_approve", "rebalance_cancel")]


def test_a_viewer_sees_plans_and_progress_but_has_no_controls(dashboard):
    _preview(dashboard)
    at = dashboard.app("rebalance", user="viewer").run()
    assert not at.exception
    assert [b.key for b in at.button] == ["axion_logout"]
    assert not at.file_uploader and not at.data_editor
    shown = texts(at)
    assert "Proposed trades" in shown and "Recent plans" in shown and "No targets yet" in shown


def test_the_autonomous_opt_in_is_announced_on_the_page(dashboard):
    dashboard.command(CommandType.UPDATE_SETTING, {"key": "rebalance.autonomous", "value": True})
    dashboard.apply()
    at = dashboard.app("rebalance").run()
    assert "Autonomous trading is on" in texts(at)


# ------------------------------------------------------------------------------ pure parts
def test_the_allocation_figure_puts_current_and_target_side_by_side():
    fig = tables.build_allocation_figure(
        {"SPY": Decimal("0.30"), "NVDA": Decimal("0.10")},
        {"SPY": Decimal("0.20"), "QQQ": Decimal("0.25")},
    )
    current, target = fig.data
    assert (current.name, target.name) == ("Current", "Target")
    assert fig.layout.barmode == "group"
    assert list(current.x) == list(target.x) == ["NVDA", "QQQ", "SPY", "Cash"]
    assert list(current.y) == [0.10, 0.0, 0.30, 0.6]
    assert list(target.y) == [0.0, 0.25, 0.20, 0.55]


def test_the_allocation_figure_of_nothing_says_so():
    fig = tables.build_allocation_figure({}, {})
    assert not fig.data
    assert fig.layout.annotations[0].text == "No allocation yet"


def test_blank_rows_of_the_targets_table_are_skipped_and_half_filled_rows_kept():
    rows = tables.targets_rows(None)
    rows.loc[0] = ["SPY", 0.1]
    rows.loc[1] = [None, float("nan")]
    rows.loc[2] = ["QQQ", float("nan")]
    rows.loc[3] = ["  ", 0.2]
    assert tables.editor_targets(rows) == [("SPY", 0.1), ("QQQ", None), ("", 0.2)]


def test_the_covariance_of_daily_closes_is_annualised():
    closes = {"A": [Decimal(100), Decimal(101), Decimal(100), Decimal(102)]}
    closes["B"] = [Decimal(50), Decimal(50), Decimal(51), Decimal(50)]
    cov = tables.annual_covariance(closes)
    assert cov["A"]["B"] == cov["B"]["A"]
    assert cov["A"]["A"] > 0 and cov["B"]["B"] > 0
