"""The Rebalance Preview page's parts: targets in (table or file), the plan's allocation figure
and tables, quantity edits, approval and cancellation, and the live execution progress.

Tables and the figure are built by pure functions in :mod:`app.components.rebalance_tables`
(tested without Streamlit); the ``render_*`` functions here only lay them out and send commands
through :mod:`app.components.common`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import streamlit as st

from app.components.common import confirm_dialog, money, send_command
from app.components.rebalance_tables import (
    allocation_frame,
    annual_covariance,
    build_allocation_figure,
    history_frame,
    legs_frame,
    parent_label,
    pct,
    plan_badge,
    read_targets,
    targets_rows,
    trades_frame,
    when,
)
from app.runtime import Runtime
from core.domain import CommandType, ValidationError
from core.rebalance.engine import GIVEN_WEIGHTS
from core.rebalance.model import PlanStatus, RebalancePlan
from core.rebalance.targets import TargetError, TargetKind, TargetPortfolio
from core.sizing.allocation import Method
from core.users import Action, User

#: How often the execution progress of the selected plan is re-read.
PROGRESS_REFRESH_S = 2.0
#: Session keys: the plan shown, and the confirmation waiting to open for it.
SELECTED_PLAN = "axion_rebalance_plan"
APPROVE_DIALOG = "axion_rebalance_approve"
CANCEL_DIALOG = "axion_rebalance_cancel"
#: Trading days of daily closes behind the covariance of the risk-based methods.
COVARIANCE_DAYS = 60

#: Allocation methods the page offers for scores, with what each does.
SCORE_METHODS: dict[str, str] = {
    Method.SCORE.value: "in proportion to the scores",
    Method.EQUAL.value: "equal weights over the names with a positive score",
    Method.RISK_PARITY.value: "equal risk contribution (covariance of the last 60 daily closes)",
    Method.VOL_TARGET.value: "equal weights scaled to a target annual volatility",
}


# ------------------------------------------------------------------------------ reading targets
def stored_targets(runtime: Runtime) -> tuple[TargetPortfolio | None, str]:
    """The standing targets (the ``rebalance.targets`` setting) and who stored them when."""
    with runtime.store.unit_of_work(read_only=True) as uow:
        setting = uow.settings.get("rebalance.targets")
    if setting is None:
        return None, ""
    try:
        portfolio = TargetPortfolio.from_dict(setting.value)
    except ValidationError:
        return None, ""
    by = f"version {setting.version} by {setting.updated_by}, {when(setting.updated_at)}"
    return portfolio, by


async def _closes(runtime: Runtime, symbols: Sequence[str]) -> dict[str, list[Decimal]]:
    out = {}
    for s in symbols:
        bars = await runtime.market.bars(s, "1Day", limit=COVARIANCE_DAYS + 1)
        out[s] = [b.close for b in bars]
    return out


def allocation_inputs(
    runtime: Runtime, portfolio: TargetPortfolio, method: str, target_vol: float
) -> dict[str, Any]:
    """What the chosen allocation method needs besides the scores."""
    if method not in (Method.RISK_PARITY.value, Method.VOL_TARGET.value):
        return {}
    symbols = sorted(s for s, v in portfolio.values.items() if v > 0)
    inputs: dict[str, Any] = {
        "covariance": annual_covariance(asyncio.run(_closes(runtime, symbols)))
    }
    if method == Method.VOL_TARGET.value:
        inputs["target_vol"] = Decimal(str(target_vol))
    return inputs


def show_problems(title: str, problems: Sequence[str]) -> None:
    st.error(f"**{title}**\n\n" + "\n".join(f"- {p}" for p in problems), icon=":material/error:")


# ------------------------------------------------------------------------------ rendering
def render_targets_input(runtime: Runtime, user: User) -> int | None:
    """Targets (table or file), the allocation method and the preview button; returns the id of
    the plan a preview stored, or None."""
    service = runtime.service()
    standing, stored_by = stored_targets(runtime)
    kind_value = st.segmented_control(
        "Targets are",
        [k.value for k in TargetKind],
        default=(standing.kind if standing else TargetKind.WEIGHTS).value,
        key="rebalance_kind",
    )
    kind = TargetKind(kind_value or TargetKind.WEIGHTS.value)
    source = st.radio(
        "Enter targets", ["Edit table", "Upload CSV or JSON"], horizontal=True, key="rebalance_src"
    )
    rows, upload = None, None
    if source == "Edit table":
        if standing is None:
            st.info(
                "No targets yet: add one row per symbol below, or upload a file. "
                f"Weights are shares of equity (0.10 = 10%, together at most the profile's "
                f"leverage limit of {service.profile.leverage_limit}x); scores can be any scale."
            )
        else:
            st.caption(f"Starting from the standing targets ({stored_by}).")
        rows = st.data_editor(
            targets_rows(standing if standing and standing.kind is kind else None),
            num_rows="dynamic",
            key=f"rebalance_targets_{kind.value}",
            column_config={
                "symbol": st.column_config.TextColumn("Symbol", required=True),
                "value": st.column_config.NumberColumn(kind.noun.title(), format="%.4f"),
            },
            hide_index=True,
        )
    else:
        upload = st.file_uploader("Targets file", type=["csv", "json"], key="rebalance_upload")
        st.caption(
            "CSV: a header `symbol,weight` or `symbol,score`, then one row per symbol. JSON: "
            '`{"AAPL": 0.1}` (read as the kind above), `{"weights": {...}}`, `{"scores": {...}}` '
            'or `[{"symbol": "AAPL", "weight": 0.1}]`.'
        )
    if kind is TargetKind.WEIGHTS:
        method = GIVEN_WEIGHTS
        st.caption("Weights are used as given, then held to the risk profile's limits.")
    else:
        method = st.selectbox(
            "Allocation method",
            list(SCORE_METHODS),
            format_func=lambda m: f"{m} — {SCORE_METHODS[m]}",
            key="rebalance_method",
        )
        st.caption("Kelly sizing needs per-symbol win/loss statistics: use the service API.")
    target_vol = 0.15
    if method == Method.VOL_TARGET.value:
        target_vol = st.number_input(
            "Target annual volatility", 0.01, 2.0, 0.15, 0.01, key="rebalance_vol"
        )
    left, right = st.columns(2)
    preview = left.button("Preview rebalance", type="primary", key="rebalance_preview")
    keep = right.button("Save as standing targets", key="rebalance_keep")
    if not (preview or keep):
        return None
    if upload is None and rows is None:
        show_problems("No file uploaded.", ["choose a CSV or JSON file first"])
        return None
    try:
        portfolio = read_targets(service, kind, rows, upload)
    except TargetError as exc:
        show_problems("These targets cannot be used; nothing was stored.", exc.problems)
        return None
    if keep:
        send_command(
            runtime,
            user,
            CommandType.UPDATE_SETTING,
            {"key": "rebalance.targets", "value": portfolio.to_dict()},
            "Save standing targets",
            action=Action.CHANGE_SETTINGS,
        )
        return None
    try:
        inputs = allocation_inputs(runtime, portfolio, method, target_vol)
        plan = asyncio.run(
            service.preview_rebalance(
                portfolio,
                method=None if method == GIVEN_WEIGHTS else method,
                created_by=user.username,
                trigger_detail={"page": "rebalance"},
                **inputs,
            )
        )
    except ValidationError as exc:
        problems = exc.problems if isinstance(exc, TargetError) else [str(exc)]
        show_problems("No plan could be built; nothing was stored.", problems)
        return None
    plan_id = service.save_plan(plan)
    st.success(f"Plan #{plan_id} stored as proposed: review it below, then approve or cancel it.")
    return plan_id


def render_plan_summary(plan: RebalancePlan) -> None:
    cols = st.columns(5)
    cols[0].metric("Status", plan.status.value.replace("_", " "))
    cols[1].metric("Trades", str(len(plan.trades)))
    cols[2].metric("Est. cost", money(plan.est_cost))
    cols[3].metric("Turnover", pct(plan.turnover))
    cols[4].metric("Equity", money(plan.equity))
    approved = (
        f" · approved by {plan.approved_by} {when(plan.approved_at)}" if plan.approved_by else ""
    )
    st.caption(
        f"{plan_badge(plan.status)} method **{plan.method}** · trigger **{plan.trigger}** · "
        f"by {plan.created_by} {when(plan.created_at)} · expires {when(plan.expires_at)}{approved}"
        + (" · executed autonomously" if plan.autonomous else "")
    )
    if plan.reason:
        st.caption(f"Reason: {plan.reason}")
    left, right = st.columns([3, 2])
    left.plotly_chart(
        build_allocation_figure(plan.current_weights, plan.target_weights), key="rebalance_alloc"
    )
    right.dataframe(allocation_frame(plan), hide_index=True)
    st.caption(
        f"Estimated costs: commission {money(plan.est_commission)} · spread "
        f"{money(plan.est_spread)} · impact {money(plan.est_impact)} · traded "
        f"{money(plan.gross_notional)}"
    )
    if plan.notes:
        with st.expander(f"Notes ({len(plan.notes)})"):
            for note in plan.notes:
                st.markdown(f"- {note}")


def render_trades(runtime: Runtime, user: User, plan: RebalancePlan) -> None:
    """The trade list; a proposed plan's quantities can be edited by a trader."""
    frame = trades_frame(plan)
    if not plan.trades:
        st.info("This plan has no trades: the portfolio is already at its targets.")
        return
    editable = plan.status is PlanStatus.PROPOSED and user.can(Action.REBALANCE)
    money_cols = ("Ref price", "Limit", "Notional", "Commission", "Spread", "Impact", "Est. cost")
    config: dict[str, Any] = {
        c: st.column_config.NumberColumn(c, format="$%.2f") for c in money_cols
    }
    if not editable:
        st.dataframe(frame, hide_index=True, column_config=config)
        return
    step = 0.000001 if runtime.service().engine.config.fractional else 1.0
    config["Qty"] = st.column_config.NumberColumn("Qty", min_value=0.0, step=step, required=True)
    edited = st.data_editor(
        frame,
        hide_index=True,
        column_config=config,
        disabled=[c for c in frame.columns if c != "Qty"],
        key=f"rebalance_trades_{plan.id}_{len(plan.notes)}",
    )
    st.caption("Change a quantity (0 drops the trade) and save; costs are estimated again.")
    if st.button("Save quantities", key="rebalance_modify"):
        changes = {
            int(seq): _quantity(new)
            for seq, old, new in zip(frame["#"], frame["Qty"], edited["Qty"], strict=True)
            if new is not None and not math.isnan(new) and float(new) != float(old)
        }
        if not changes:
            st.info("No quantity was changed.")
            return
        try:
            assert plan.id is not None
            asyncio.run(runtime.service().modify_plan(plan.id, changes, user.username))
        except ValidationError as exc:
            show_problems("The plan was not changed.", [str(exc)])
            return
        st.rerun()


def _quantity(value: float) -> Decimal:
    """A table's float as the quantity a person typed: ``3.0`` is 3 shares, ``0.5`` half a one."""
    d = Decimal(repr(float(value)))
    return d.to_integral_value() if d == d.to_integral_value() else d.normalize()


def render_plan_actions(runtime: Runtime, user: User, plan: RebalancePlan) -> None:
    """Approve (proposed) and cancel (proposed or approved), each after a confirmation."""
    if not user.can(Action.REBALANCE) or plan.id is None:
        return
    plan_id = plan.id
    left, right, _ = st.columns([1, 1, 3])
    proposed = plan.status is PlanStatus.PROPOSED
    approvable = proposed and bool(plan.trades)
    if approvable and left.button("Approve…", type="primary", key="rebalance_approve"):
        st.session_state[APPROVE_DIALOG] = plan_id
    cancellable = proposed or plan.status is PlanStatus.APPROVED
    if cancellable and right.button("Cancel plan…", key="rebalance_cancel"):
        st.session_state[CANCEL_DIALOG] = plan_id
    # A click sets a flag that this run takes, so each click opens its dialog once; the browser
    # then reruns only the dialog until it is confirmed or cancelled.
    if st.session_state.pop(APPROVE_DIALOG, None) == plan_id:
        confirm_dialog(
            f"Approve rebalance #{plan_id}",
            f"**{len(plan.trades)} trades** ({len(plan.sells)} sells first, then "
            f"{len(plan.buys)} buys), about **{money(plan.gross_notional)}** traded at an "
            f"estimated cost of **{money(plan.est_cost)}**.\n\nThe executor checks prices again "
            "before it starts: a plan whose prices moved past the tolerance expires instead.",
            "Approve and execute",
            lambda _reason: send_command(
                runtime,
                user,
                CommandType.APPROVE_REBALANCE,
                {"plan_id": plan_id},
                f"Approve rebalance #{plan_id}",
                action=Action.REBALANCE,
            ),
            key=f"rebalance_approve_{plan_id}",
        )
    if st.session_state.pop(CANCEL_DIALOG, None) == plan_id:
        confirm_dialog(
            f"Cancel rebalance #{plan_id}",
            "The plan is discarded and never executes. Say why (kept in its history).",
            "Cancel the plan",
            lambda reason: send_command(
                runtime,
                user,
                CommandType.CANCEL_REBALANCE,
                {"plan_id": plan_id, "reason": reason},
                f"Cancel rebalance #{plan_id}",
                action=Action.REBALANCE,
            ),
            ask_reason=True,
            key=f"rebalance_cancel_{plan_id}",
        )


@st.fragment(run_every=PROGRESS_REFRESH_S)
def render_progress(runtime: Runtime, plan_id: int, shown: PlanStatus) -> None:
    """Live: the plan's status, its legs, the router's parents (TWAP/VWAP progress) and history.
    When the status differs from ``shown`` (what the rest of the page was drawn with) the whole
    page is drawn again, so its summary and actions follow the plan."""
    plan, parents = runtime.service().plan(plan_id)
    if plan is None:
        st.warning(f"Plan #{plan_id} is gone.")
        return
    if plan.status is not shown:
        st.rerun(scope="app")
    done, total = plan.progress
    filled = sum(1 for t in plan.trades if t.filled_qty > 0 and t.filled_qty >= t.qty)
    st.markdown(
        f"{plan_badge(plan.status)} **{filled} of {total} legs filled** · {done} finished"
        + (f" · started {when(plan.started_at)}" if plan.started_at else "")
        + (f" · finished {when(plan.finished_at)}" if plan.finished_at else "")
    )
    st.progress(done / total if total else 0.0, text=f"legs finished: {done}/{total}")
    if plan.status is PlanStatus.PROPOSED:
        st.caption("Not started: the plan waits for approval.")
    elif plan.status is PlanStatus.APPROVED:
        st.caption("Approved: the executor starts it in the next session tick.")
    if parents:
        st.caption("Router orders")
        for parent in parents:
            st.progress(float(parent.progress), text=parent_label(parent))
    st.dataframe(legs_frame(plan), hide_index=True)
    st.caption("History")
    if plan.history:
        st.dataframe(history_frame(plan), hide_index=True)
    else:
        st.caption("Proposed; nothing has happened to it yet.")


__all__ = [
    "APPROVE_DIALOG",
    "CANCEL_DIALOG",
    "SELECTED_PLAN",
    "render_plan_actions",
    "render_plan_summary",
    "render_progress",
    "render_targets_input",
    "render_trades",
    "stored_targets",
]
