"""Rebalancing triggers in the executor (seed 000 R5.1): each one that fires proposes a plan.

The target portfolio is the stored setting ``rebalance.targets`` (weights or factor scores; set
through an ``update_setting`` command, so who changed it is kept). Every ``check_every`` of
market time during a session the monitor evaluates the triggers against the open positions at
current prices and stores, for each trigger that fired, a proposed plan with the trigger and its
numbers recorded:

* calendar (first session of the month): the full move to the targets;
* drift: the drifted names back to their targets, everything else left as it is;
* signal (score below the 30th percentile) and stop-loss (down more than 15%): those positions
  closed, everything else left as it is;
* new top-decile name: that name added at its target weight.

A trigger whose previous plan is still proposed, approved or executing does not propose another.
What the monitor must remember (the last calendar session, the previous scores for the
top-decile test) is the setting ``rebalance.trigger_state``. Plans only execute after approval
(or under the autonomous opt-in), like every other plan.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.domain import ValidationError
from core.rebalance.engine import RebalanceEngine
from core.rebalance.model import RebalancePlan
from core.rebalance.targets import TargetKind, TargetPortfolio
from core.rebalance.triggers import (
    HoldingSnapshot,
    TriggerConfig,
    TriggerEvent,
    TriggerKind,
    evaluate_triggers,
)

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.rebalance")

TARGETS_KEY = "rebalance.targets"
TRIGGERS_KEY = "rebalance.triggers"
STATE_KEY = "rebalance.trigger_state"
#: Who proposes plans for triggers.
TRIGGER_AUTHOR = "trigger"


class TriggerMonitor:
    """Evaluates the triggers for one executor and stores the plans they propose."""

    def __init__(
        self,
        executor: TradeExecutor,
        engine: RebalanceEngine,
        check_every: timedelta = timedelta(minutes=1),
    ) -> None:
        self.ex = executor
        self.engine = engine
        self.check_every = check_every
        self._last: datetime | None = None

    async def run(self, now: datetime) -> list[RebalancePlan]:
        """Evaluate the triggers if due; returns the plans proposed."""
        if self._last is not None and now - self._last < self.check_every:
            return []
        if not self.ex.market.calendar.is_open(now) or self.ex.last_equity is None:
            return []
        self._last = now
        with self.ex.store.unit_of_work(read_only=True) as uow:
            stored = uow.settings.get(TARGETS_KEY)
            trigger_setting = uow.settings.get(TRIGGERS_KEY)
            state_setting = uow.settings.get(STATE_KEY)
            open_kinds = {p.trigger for p in uow.rebalance.proposed() + uow.rebalance.active()}
        if stored is None:
            return []
        try:
            targets = TargetPortfolio.from_dict(stored.value)
            config = (
                TriggerConfig.from_dict(trigger_setting.value)
                if trigger_setting is not None
                else TriggerConfig()
            )
        except (ValidationError, TypeError) as exc:
            log.warning("rebalance triggers skipped: stored settings unreadable: %s", exc)
            return []
        state: dict[str, Any] = dict(state_setting.value) if state_setting is not None else {}
        return await self._evaluate(now, targets, config, state, open_kinds)

    async def _evaluate(
        self,
        now: datetime,
        targets: TargetPortfolio,
        config: TriggerConfig,
        state: dict[str, Any],
        open_kinds: set[str],
    ) -> list[RebalancePlan]:
        equity = self.ex.last_equity
        assert equity is not None
        positions = {s: p for s, p in self.ex.journal.positions.items() if p.qty != 0}
        profile = self.ex.config.risk
        _, weights, notes = self.engine.target_weights(targets, profile=profile, equity=equity)
        symbols = sorted(set(positions) | set(weights))
        quotes = {s: await self.ex.market.quote(s) for s in symbols}
        current = {
            s: (p.qty * quotes[s].last / equity).quantize(Decimal("0.000001"))
            for s, p in positions.items()
        }
        scores = dict(targets.values) if targets.kind is TargetKind.SCORES else {}
        # The first evaluation has no earlier scores to compare with: nothing is "new" yet.
        previous = (
            {s: Decimal(v) for s, v in dict(state["previous_scores"]).items()}
            if "previous_scores" in state
            else dict(scores)
        )
        last_run = state.get("last_calendar_run")
        events = evaluate_triggers(
            now,
            self.ex.market.calendar,
            holdings=[
                HoldingSnapshot.from_position(p, quotes[s].last) for s, p in positions.items()
            ],
            current_weights=current,
            target_weights=weights,
            scores=scores,
            previous_scores=previous,
            last_calendar_run=None if last_run is None else date.fromisoformat(last_run),
            config=config,
        )
        adv = {s: await self.ex.market.average_daily_volume(s) for s in symbols}
        plans: list[RebalancePlan] = []
        for event in events:
            if event.kind is TriggerKind.CALENDAR:
                session = self.ex.market.calendar.session_date(now)
                state["last_calendar_run"] = None if session is None else session.isoformat()
            if event.kind.value in open_kinds:
                log.info("%s trigger: a plan from it is still open; none proposed", event.kind)
                continue
            plan_weights = self._weights_for(event, weights, current)
            if plan_weights is None:
                continue
            plan = self.engine.build_plan(
                weights=plan_weights,
                positions=positions,
                quotes=quotes,
                adv=adv,
                equity=equity,
                now=now,
                trigger=event.kind.value,
                method="weights",
                created_by=TRIGGER_AUTHOR,
                trigger_detail={**event.to_dict(), "message": event.message},
                notes=[event.message, *notes],
            )
            if not plan.trades:
                continue
            plans.append(plan)
        state["previous_scores"] = {s: str(v) for s, v in scores.items()}
        with self.ex.store.unit_of_work() as uow:
            for plan in plans:
                uow.rebalance.add(plan)
            uow.settings.put(STATE_KEY, state, TRIGGER_AUTHOR, now)
            uow.commit()
        for plan in plans:
            log.info("rebalance plan %s proposed by the %s trigger", plan.id, plan.trigger)
        return plans

    @staticmethod
    def _weights_for(
        event: TriggerEvent, targets: dict[str, Decimal], current: dict[str, Decimal]
    ) -> dict[str, Decimal] | None:
        """The weights a trigger's plan moves to (see the module docstring)."""
        if event.kind is TriggerKind.CALENDAR:
            return dict(targets)
        weights = dict(current)
        if event.kind is TriggerKind.DRIFT:
            for s in event.symbols:
                weights[s] = targets.get(s, Decimal(0))
        elif event.kind in (TriggerKind.SIGNAL, TriggerKind.STOP_LOSS):
            for s in event.symbols:
                weights[s] = Decimal(0)
        elif event.kind is TriggerKind.NEW_TOP_DECILE:
            added = {s: targets[s] for s in event.symbols if targets.get(s, 0) > 0}
            if not added:
                return None
            weights.update(added)
        else:
            return None
        return weights


__all__ = ["STATE_KEY", "TARGETS_KEY", "TRIGGERS_KEY", "TriggerMonitor"]
