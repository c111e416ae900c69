"""The executor's side of rebalancing (tick step 5): approvals, expiry and execution of plans.

* Approval is a command. When the executor applies it, the plan is checked again against the
  current prices and its age; a stale plan is marked ``expired`` (with the prices that moved)
  and the approval is rejected: it can never execute.
* Proposed plans that go stale while they wait are expired the same way. With the autonomous
  opt-in on, proposed plans are approved by the engine itself (recorded as ``autonomous``);
  without it nothing executes until a person approves.
* An approved plan starts in a session: sells first, each handed to the smart order router as a
  parent order; the buys start once every sell is done (they need the cash). A sell never sells
  more than the position holds at that moment (nor does any of its children, when they are
  sent), so a position that shrank in the meantime cannot be turned into a short.
* While the kill switch is on, buys are not started (they are recorded as skipped) and the
  router cancels working buy parents; sells keep working.
* A trade the router cannot start (no price for the symbol, a quantity its schedule refuses)
  fails with the reason; the rest of the plan goes on.
* The plan ends ``completed`` when every trade filled, ``partially_completed`` when some did,
  ``failed`` when none did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from core.brokers.commission import CommissionSchedule
from core.domain import Quote, Side, ValidationError
from core.execution.config import ExecutionConfig
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.router import SmartOrderRouter
from core.ports import UnknownSymbol
from core.rebalance.config import RebalanceConfig
from core.rebalance.engine import RebalanceEngine, staleness
from core.rebalance.model import (
    LegStatus,
    PlannedTrade,
    PlanStatus,
    RebalancePlan,
    parent_order_id,
)
from core.rebalance.monitor import TriggerMonitor

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.rebalance")

#: Who approves plans under the autonomous opt-in.
AUTONOMOUS = "autonomous"
#: Settings key of the autonomous opt-in (a boolean; versioned, so who switched it is kept).
AUTONOMOUS_KEY = "rebalance.autonomous"


class PlanRejected(Exception):
    """An approval or cancellation that cannot be applied; the message says why."""


class RebalanceRunner:
    """Applies plan commands and executes approved plans for one executor."""

    def __init__(
        self,
        executor: TradeExecutor,
        router: SmartOrderRouter,
        config: RebalanceConfig | None = None,
        check_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self.ex = executor
        self.router = router
        self.config = config or RebalanceConfig()
        self.check_every = check_every
        self._last_check: datetime | None = None
        #: False once a look at the store found no approved or executing plan.
        self._active = True
        #: Proposes plans when a trigger fires (set by :func:`use_rebalancing`).
        self.monitor: TriggerMonitor | None = None

    # ------------------------------------------------------------------ commands
    async def approve(self, plan_id: int, by: str, now: datetime) -> str:
        """Approve a proposed plan after checking it is still fresh; raises PlanRejected."""
        with self.ex.store.unit_of_work() as uow:
            plan = uow.rebalance.get(plan_id)
            if plan is None:
                raise PlanRejected(f"there is no rebalance plan {plan_id}")
            if plan.status is not PlanStatus.PROPOSED:
                why = f": {plan.reason}" if plan.reason else ""
                raise PlanRejected(
                    f"plan {plan_id} is {plan.status.value}{why}; only a proposed plan can be "
                    "approved"
                )
            stale = staleness(plan, await self._quotes(plan), now)
            if stale is not None:
                plan.transition(PlanStatus.EXPIRED, now, by, stale)
                uow.rebalance.update(plan)
                uow.commit()
                raise PlanRejected(f"plan {plan_id} expired: {stale}")
            plan.transition(PlanStatus.APPROVED, now, by, "approved")
            plan.autonomous = by == AUTONOMOUS
            uow.rebalance.update(plan)
            uow.commit()
        self._active = True
        return f"plan {plan_id} approved by {by}: {len(plan.trades)} trades"

    def cancel(self, plan_id: int, by: str, reason: str, now: datetime) -> str:
        """Discard a proposed or approved plan (an executing one finishes its orders)."""
        with self.ex.store.unit_of_work() as uow:
            plan = uow.rebalance.get(plan_id)
            if plan is None:
                raise PlanRejected(f"there is no rebalance plan {plan_id}")
            if not plan.can_transition(PlanStatus.CANCELLED):
                raise PlanRejected(
                    f"plan {plan_id} is {plan.status.value} and cannot be cancelled"
                    + (
                        "; cancel its working orders from the order book"
                        if plan.status is PlanStatus.EXECUTING
                        else ""
                    )
                )
            plan.transition(PlanStatus.CANCELLED, now, by, reason or "cancelled")
            uow.rebalance.update(plan)
            uow.commit()
        return f"plan {plan_id} cancelled by {by}"

    # ------------------------------------------------------------------ the tick
    async def tick(self, now: datetime) -> None:
        """Step 5 of the tick: proposed plans (expiry, autonomous approval), active plans,
        then one step of every working router parent."""
        wall = self.ex.wall.now()
        if self._last_check is None or wall - self._last_check >= self.check_every:
            self._last_check = wall
            # another executor may have led meanwhile: look at the store again
            self._active = True
            self.router.working = None
            await self._review_proposed(now)
        if self.monitor is not None:
            await self.monitor.run(now)
        if self._active:  # approvals go through this runner, so an idle tick skips the store
            with self.ex.store.unit_of_work(read_only=True) as uow:
                active = uow.rebalance.active()
            for plan in active:
                await self._advance(plan, now)
            self._active = bool(active)
        if self.router.working != 0:
            await self.router.work(now)

    def _autonomous(self) -> bool:
        with self.ex.store.unit_of_work(read_only=True) as uow:
            setting = uow.settings.get(AUTONOMOUS_KEY)
        return self.config.autonomous if setting is None else setting.value is True

    async def _review_proposed(self, now: datetime) -> None:
        with self.ex.store.unit_of_work(read_only=True) as uow:
            proposed = uow.rebalance.proposed()
        if not proposed:
            return
        autonomous = self._autonomous()
        for plan in proposed:
            assert plan.id is not None
            if autonomous:
                try:
                    await self.approve(plan.id, AUTONOMOUS, now)
                except PlanRejected as exc:
                    log.info("autonomous approval refused: %s", exc)
                continue
            stale = staleness(plan, await self._quotes(plan), now)
            if stale is None:
                continue
            with self.ex.store.unit_of_work() as uow:
                # read again under the write lock: a person may have edited or approved it
                fresh = uow.rebalance.get(plan.id)
                if fresh is None or fresh.status is not PlanStatus.PROPOSED:
                    continue
                fresh.transition(PlanStatus.EXPIRED, now, "executor", stale)
                uow.rebalance.update(fresh)
                uow.commit()
            log.info("rebalance plan %s expired: %s", plan.id, stale)

    async def _quotes(self, plan: RebalancePlan) -> dict[str, Quote]:
        quotes: dict[str, Quote] = {}
        for trade in plan.trades:
            try:
                quotes[trade.symbol] = await self.ex.market.quote(trade.symbol)
            except (KeyError, ValueError):
                continue  # counted as moved by staleness(): the plan cannot be checked
        return quotes

    async def _advance(self, plan: RebalancePlan, now: datetime) -> None:
        assert plan.id is not None
        if plan.status is PlanStatus.APPROVED:
            if not self.ex.market.calendar.is_open(now):
                return  # starts at the next open, if it is still fresh then
            stale = staleness(plan, await self._quotes(plan), now)
            with self.ex.store.unit_of_work() as uow:
                if stale is not None:
                    plan.transition(PlanStatus.EXPIRED, now, "executor", stale)
                else:
                    plan.transition(PlanStatus.EXECUTING, now, "executor", "execution started")
                uow.rebalance.update(plan)
                uow.commit()
            if stale is not None:
                log.info("approved plan %s expired before it started: %s", plan.id, stale)
                return
        with self.ex.store.unit_of_work(read_only=True) as uow:
            parents = {p.parent_id: p for p in uow.algos.for_plan(plan.id)}
        for trade in plan.trades:
            if trade.status is LegStatus.WORKING and trade.client_order_id in parents:
                self._follow(trade, parents[trade.client_order_id])
        sells_open = any(not t.status.is_terminal for t in plan.sells)
        for trade in plan.trades:
            if trade.status is not LegStatus.PENDING:
                continue
            if trade.side is Side.BUY and sells_open:
                continue
            await self._start(plan, trade, now)
        if all(t.status.is_terminal for t in plan.trades):
            self._finish(plan, now)
        with self.ex.store.unit_of_work() as uow:
            uow.rebalance.update(plan)
            uow.commit()

    async def _start(self, plan: RebalancePlan, trade: PlannedTrade, now: datetime) -> None:
        assert plan.id is not None
        qty = trade.qty
        if trade.side is Side.BUY and self.ex.kill_switch.active:
            trade.status = LegStatus.SKIPPED
            trade.reason = f"kill switch on ({self.ex.kill_switch.reason}): buy not started"
            return
        if trade.side is Side.SELL:
            pos = self.ex.journal.positions.get(trade.symbol)
            held = pos.qty if pos is not None and pos.qty > 0 else Decimal(0)
            if held <= 0:
                trade.status = LegStatus.SKIPPED
                trade.reason = f"no {trade.symbol} position left to sell"
                return
            if trade.closes_position or qty > held:
                qty = held
        try:
            parent = await self.router.start(
                parent_order_id(plan.id, trade.seq),
                trade.symbol,
                trade.side,
                qty,
                now,
                plan_id=plan.id,
                strategy=f"rebalance:{plan.trigger}",
                sector=trade.sector,
            )
        except (ValidationError, UnknownSymbol) as exc:
            # one trade that cannot be worked must not stop the executor's ticks
            trade.status = LegStatus.FAILED
            trade.reason = f"could not be started: {exc}"
            log.warning("plan %s trade %s not started: %s", plan.id, trade.seq, exc)
            return
        trade.client_order_id = parent.parent_id
        trade.status = LegStatus.WORKING
        if qty != trade.qty:
            trade.reason = f"sells the {qty} shares held now (planned {trade.qty})"

    @staticmethod
    def _follow(trade: PlannedTrade, parent: ParentOrder) -> None:
        trade.filled_qty = parent.filled_qty
        trade.avg_price = parent.avg_price
        if not parent.status.is_terminal:
            return
        if parent.status is ParentStatus.FILLED:
            trade.status = LegStatus.FILLED
        elif parent.filled_qty > 0:
            trade.status = LegStatus.PARTIALLY_FILLED
            trade.reason = parent.reason
        else:
            trade.status = LegStatus.FAILED
            trade.reason = parent.reason

    @staticmethod
    def _finish(plan: RebalancePlan, now: datetime) -> None:
        filled = [t for t in plan.trades if t.status is LegStatus.FILLED]
        some = [t for t in plan.trades if t.filled_qty > 0]
        if plan.trades and len(filled) == len(plan.trades):
            plan.transition(PlanStatus.COMPLETED, now, "executor", "every trade filled")
        elif some:
            plan.transition(
                PlanStatus.PARTIALLY_COMPLETED,
                now,
                "executor",
                f"{len(filled)} of {len(plan.trades)} trades filled in full",
            )
        elif not plan.trades:
            plan.transition(PlanStatus.COMPLETED, now, "executor", "nothing to trade")
        else:
            reasons = "; ".join(sorted({t.reason or t.status.value for t in plan.trades}))
            plan.transition(PlanStatus.FAILED, now, "executor", f"no trade filled: {reasons}")
        log.info("rebalance plan %s %s", plan.id, plan.status.value)


def use_rebalancing(
    executor: TradeExecutor,
    config: RebalanceConfig | None = None,
    execution: ExecutionConfig | None = None,
    commission: CommissionSchedule | None = None,
    sector_of: Callable[[str], str | None] | None = None,
) -> RebalanceRunner:
    """Give ``executor`` its tick step 5: approved plans through a smart order router, and the
    triggers that propose plans."""
    router = SmartOrderRouter(executor, execution, commission)
    runner = RebalanceRunner(executor, router, config)
    engine = RebalanceEngine(config, execution, commission=commission, sector_of=sector_of)
    runner.monitor = TriggerMonitor(executor, engine)
    executor.rebalancer = runner
    return runner


__all__ = ["AUTONOMOUS", "AUTONOMOUS_KEY", "PlanRejected", "RebalanceRunner", "use_rebalancing"]
