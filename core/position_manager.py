"""The position manager: watches the executor's open trades and closes them when an exit fires.

The last two boxes of seed 001's execution pipeline (position manager → exit monitor). Each tick
the executor hands it the current prices; for every open trade it keeps a
:class:`~core.exits.model.TrackedPosition` (the trade's entry, its stop and target in the traded
instrument, its leverage), feeds the :class:`~core.exits.monitor.ExitMonitor` the bars completed
since the last tick, and asks the monitor whether an exit fires.

An exit becomes a reduce-only market order for the whole position, with a deterministic client
order id ``ax-x{trade id}-{reason}-{attempt}``, written ahead like every other order. Exits are
never blocked: they do not go through the risk gate and the kill switch does not stop them. While
an exit (or any other reduce-only order) is working for a symbol no second one is sent; the
position's protective bracket legs are cancelled first so they cannot close it twice.

Scale-in: an entry the entry stage split (``scale_in_remaining`` in its stage decision) gets a
:class:`~core.sizing.scale_in.ScaleInPlan` once its first part fills. Each completed bar of the
plan's chart goes to the :class:`~core.sizing.scale_in.ScaleInPlanner`; on the first pullback
that holds, the add (``ax-s{signal}-add``) passes the risk gate and is written ahead and sent;
a plan the planner cancels, or the gate refuses, is closed with its reason stored as a
``scale_in`` decision. No plan survives without a stored outcome, so a restart rebuilds exactly
the plans still open.

The hot path, :meth:`PositionManager.on_price` (mark one position and check its exits), does no
I/O; ``benchmarks/ticks.py`` measures it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from core.domain import (
    Alert,
    AlertLevel,
    Bar,
    Direction,
    OrderRequest,
    Side,
    StageDecision,
    TradeExecution,
    ValidationError,
    to_decimal,
)
from core.exits.model import ExitDecision, ExitReason, TrackedPosition
from core.exits.monitor import ExitMonitor
from core.marketdata.bars import timeframe_minutes
from core.sizing.scale_in import (
    ScaleInAction,
    ScaleInDecision,
    ScaleInPlan,
    ScaleInPlanner,
    add_request,
    client_order_id_for_add,
)

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.positions")

#: Bars fetched to prime a (symbol, timeframe) the first time (the macro cloud needs 50).
HISTORY_BARS = 150
#: Exit orders tried per trade and reason; after that a trader is alerted and must act.
MAX_EXIT_ATTEMPTS = 3


def exit_client_order_id(trade_id: int, reason: ExitReason | str, attempt: int) -> str:
    return f"ax-x{trade_id}-{ExitReason(reason).value}-{attempt}"


@dataclass(slots=True)
class Watched:
    """One open trade under watch: its key (so a changed trade is rebuilt) and position."""

    key: tuple[object, ...]
    trade: TradeExecution
    position: TrackedPosition | None
    #: Why the trade cannot be watched (no stop, say); logged once.
    problem: str | None = None


def _trade_key(trade: TradeExecution) -> tuple[object, ...]:
    return (trade.id, trade.shares, trade.entry_price, trade.stop_loss, trade.target_price)


def tracked_position(trade: TradeExecution) -> TrackedPosition:
    """The exit monitor's view of an open trade; ValidationError if it has no usable stop."""
    if trade.stop_loss is None:
        raise ValidationError("the trade has no stop, so the exit rules cannot manage it")
    timeframe = trade.metadata.get("timeframe") if trade.metadata else None
    return TrackedPosition(
        symbol=trade.ticker,
        direction=trade.direction,
        entry_price=trade.entry_price,
        stop=trade.stop_loss,
        target=trade.target_price,
        qty=trade.shares,
        entry_time=trade.entry_time,
        trade_type=trade.trade_type,
        leverage=trade.leverage,
        instrument_type=trade.instrument_type,
        signal_id=trade.signal_id,
        timeframe=timeframe if isinstance(timeframe, str) else None,
    )


class PositionManager:
    """See the module docstring."""

    def __init__(
        self,
        ex: TradeExecutor,
        monitor: ExitMonitor,
        history_bars: int = HISTORY_BARS,
        planner: ScaleInPlanner | None = None,
    ):
        self.ex = ex
        self.monitor = monitor
        self.history_bars = history_bars
        self.planner = planner or ScaleInPlanner(monitor.calendar)
        self.watched: dict[str, Watched] = {}
        #: Open scale-in plans by signal id, and the trades already looked at for one.
        self.plans: dict[int, ScaleInPlan] = {}
        self._plan_looked: set[int] = set()
        #: Last completed bar end fed per (symbol, timeframe).
        self._fed_until: dict[tuple[str, str], datetime] = {}
        self._alerted: set[tuple[int | None, ExitReason]] = set()

    # ------------------------------------------------------------------ watching trades
    def sync(self) -> None:
        """Follow the journal's open trades: watch new ones, rebuild changed ones, drop closed."""
        trades = self.ex.journal.open_trades
        for symbol in [s for s in self.watched if s not in trades]:
            del self.watched[symbol]
        for symbol, trade in trades.items():
            key = _trade_key(trade)
            current = self.watched.get(symbol)
            if current is not None and current.key == key:
                current.trade = trade
                continue
            try:
                position: TrackedPosition | None = tracked_position(trade)
                problem = None
            except ValidationError as exc:
                position, problem = None, str(exc)
                log.info("open %s trade %s is not exit-managed: %s", symbol, trade.id, problem)
            self.watched[symbol] = Watched(key, trade, position, problem)
            if trade.id is not None and trade.id not in self._plan_looked:
                self._plan_looked.add(trade.id)
                plan = self._plan_for(trade)
                if plan is not None:
                    self.plans[plan.signal_id] = plan

    def _plan_for(self, trade: TradeExecution) -> ScaleInPlan | None:
        """The scale-in plan of a newly opened trade, when its entry was split and the rest
        has neither been added nor closed."""
        sid = trade.signal_id
        if sid is None:
            return None
        with self.ex.store.unit_of_work(read_only=True) as uow:
            decisions = uow.decisions.for_signal(sid)
            if any(d.stage == "scale_in" for d in decisions):
                return None
            if uow.orders.get(client_order_id_for_add(sid)) is not None:
                return None
            signal = uow.signals.get(sid)
        approved = [d for d in decisions if d.approved and d.stage != "exit"]
        if signal is None or not approved:
            return None
        remaining = to_decimal(approved[-1].details.get("scale_in_remaining", "0"), "remaining")
        if remaining <= 0:
            return None
        return ScaleInPlan(
            symbol=trade.ticker,
            direction=signal.direction,
            remaining_qty=remaining,
            signal_id=sid,
            trade_type=signal.trade_type,
            timeframe=signal.timeframe,
            stop=signal.stop,
            created_at=trade.entry_time,
            side=Side.BUY if trade.direction is Direction.LONG else Side.SELL,
            instrument_type=trade.instrument_type,
            chart_symbol=None if signal.symbol == trade.ticker else signal.symbol,
        )

    def timeframes(self) -> set[tuple[str, str]]:
        keys = {
            (self.monitor.chart_symbol(w.position), self.monitor.timeframe_of(w.position))
            for w in self.watched.values()
            if w.position is not None
        }
        keys.update((p.watch_symbol, p.timeframe) for p in self.plans.values())
        return keys

    async def feed_bars(self, now: datetime) -> dict[tuple[str, str], list[Bar]]:
        """Feed the monitor the bars completed since the last call (history the first time);
        returns the bars that were new after the history, per (symbol, timeframe)."""
        fed: dict[tuple[str, str], list[Bar]] = {}
        for symbol, timeframe in sorted(self.timeframes()):
            last = self._fed_until.get((symbol, timeframe))
            step = timedelta(minutes=timeframe_minutes(timeframe))
            if last is not None and now < last + step:
                continue
            if last is None:
                bars = await self.ex.market.bars(
                    symbol, timeframe, end=now, limit=self.history_bars
                )
            else:
                bars = await self.ex.market.bars(symbol, timeframe, start=last, end=now)
            fresh = []
            for bar in bars:
                if self.monitor.on_bar(symbol, bar, timeframe):
                    fresh.append(bar)
                    if last is not None:
                        await self._scale_in_bar(symbol, timeframe, bar)
            if last is not None and fresh:
                fed[(symbol, timeframe)] = fresh
            if bars:
                self._fed_until[(symbol, timeframe)] = bars[-1].end
            elif last is None:
                self._fed_until[(symbol, timeframe)] = now - step
        return fed

    # ------------------------------------------------------------------ the hot path
    def on_price(self, symbol: str, price: Decimal, now: datetime) -> ExitDecision | None:
        """Mark one watched position at ``price`` and return the exit that fires, if any."""
        watched = self.watched.get(symbol)
        if watched is None or watched.position is None:
            return None
        return self.monitor.check(watched.position, price, now)

    # ------------------------------------------------------------------ the tick step
    async def run(self, prices: dict[str, Decimal], now: datetime) -> int:
        """One tick: sync, feed bars, check each position, send the exits that fire."""
        self.sync()
        if not self.watched and not self.plans:
            return 0
        await self.feed_bars(now)
        for plan in list(self.plans.values()):
            expired = self.planner.check_expiry(plan, now)
            if expired is not None:
                await self._close_plan(expired, approved=False)
        requests: list[tuple[OrderRequest, ExitDecision, TradeExecution]] = []
        for symbol in sorted(self.watched):
            watched = self.watched[symbol]
            price = prices.get(symbol)
            if watched.position is None or price is None:
                continue
            decision = self.monitor.check(watched.position, price, now)
            if decision is None:
                continue
            if self._exit_working(symbol):
                continue
            request = self._exit_request(watched, decision)
            if request is not None:
                requests.append((request, decision, watched.trade))
        if not requests:
            return 0
        for request, _, _ in requests:
            await self.ex.cancel_protective_legs(request.symbol)
        decisions = [
            StageDecision(
                trade.signal_id,
                "exit",
                True,
                now,
                decision.detail,
                {
                    "reason": decision.reason.value,
                    "price": str(decision.price),
                    "client_order_id": request.client_order_id,
                    "trade_id": str(trade.id),
                },
            )
            for request, decision, trade in requests
            if trade.signal_id is not None
        ]
        sent = await self.ex.write_and_submit([r for r, _, _ in requests], decisions=decisions)
        for request, decision, _ in requests:
            log.info(
                "exit %s %s: %s (%s)",
                request.symbol,
                decision.reason.value,
                decision.detail,
                request.client_order_id,
            )
        return sent

    # ------------------------------------------------------------------ scale-in
    async def _scale_in_bar(self, symbol: str, timeframe: str, bar: Bar) -> None:
        """Show one completed bar (already fed to the monitor) to the plans watching it."""
        for plan in [
            p for p in self.plans.values() if p.watch_symbol == symbol and p.timeframe == timeframe
        ]:
            decision = self.planner.on_bar(
                plan,
                bar,
                self.monitor.clouds(symbol, timeframe),
                position=self.ex.journal.positions.get(plan.symbol),
            )
            if decision is None:
                continue
            if decision.kind is ScaleInAction.ADD:
                await self._add(decision)
            else:
                await self._close_plan(decision, approved=False)

    async def _add(self, decision: ScaleInDecision) -> None:
        plan = decision.plan
        now = self.ex.clock.now()
        if self.ex.kill_switch.active:
            await self._close_plan(
                decision, False, f"kill switch is on ({self.ex.kill_switch.reason}): no add"
            )
            return
        try:
            price = (await self.ex.market.quote(plan.symbol)).last
        except (KeyError, ValueError) as exc:
            await self._close_plan(decision, False, f"no price for the add: {exc}")
            return
        if self.ex.add_check is not None:
            qty, why = await self.ex.add_check(self.ex, plan, price, now)
            if qty is None:
                await self._close_plan(decision, False, f"add refused by the risk gate: {why}")
                return
            if qty < plan.remaining_qty:
                plan = replace(plan, remaining_qty=qty)
                decision = replace(decision, plan=plan)
        request = add_request(plan, client_order_id_for_add(plan.signal_id), price)
        limit = self.ex.throttle(request, now)
        if not limit.allowed:  # refused with its reason; a held add would chase a later price
            await self._close_plan(decision, False, f"add refused: {limit.reason}")
            return
        self.plans.pop(plan.signal_id, None)
        record = self._plan_decision(decision, True, decision.reason, request.client_order_id)
        await self.ex.write_and_submit([request], decisions=[record])
        log.info("scale-in add %s: %s", request.client_order_id, decision.reason)

    async def _close_plan(
        self, decision: ScaleInDecision, approved: bool, reason: str | None = None
    ) -> None:
        plan = self.plans.pop(decision.plan.signal_id, None)
        if plan is None:
            return
        self.planner.forget(plan)
        record = self._plan_decision(decision, approved, reason or decision.reason, None)
        with self.ex.store.unit_of_work() as uow:
            uow.decisions.add(record)
            uow.commit()
        log.info("scale-in plan for signal %s closed: %s", plan.signal_id, record.reason)

    def _plan_decision(
        self, decision: ScaleInDecision, approved: bool, reason: str, coid: str | None
    ) -> StageDecision:
        plan = decision.plan
        details = {
            "action": decision.kind.value if approved else "cancel",
            "symbol": plan.symbol,
            "qty": str(plan.remaining_qty),
            "price": "" if decision.price is None else str(decision.price),
        }
        if coid is not None:
            details["client_order_id"] = coid
        return StageDecision(
            plan.signal_id, "scale_in", approved, self.ex.clock.now(), reason, details
        )

    def _alert_stuck_exit(self, trade: TradeExecution, decision: ExitDecision) -> None:
        """The broker refused the exit every time: stop retrying and tell the trader, once."""
        key = (trade.id, decision.reason)
        if key in self._alerted:
            return
        self._alerted.add(key)
        message = (
            f"{trade.ticker}: the {decision.reason.value} exit was refused {MAX_EXIT_ATTEMPTS} "
            f"times; the position stays open until a trader closes it"
        )
        log.error(message)
        with self.ex.store.unit_of_work() as uow:
            uow.alerts.add(
                Alert(
                    kind="exit",
                    level=AlertLevel.CRITICAL,
                    message=message,
                    at=self.ex.clock.now(),
                    details={"trade_id": trade.id, "reason": decision.reason.value},
                )
            )
            uow.commit()

    def _exit_working(self, symbol: str) -> bool:
        """An exit or another reduce-only order (not a bracket leg) is working for ``symbol``."""
        return any(
            o.symbol == symbol
            and o.request.reduce_only
            and not o.is_bracket_leg
            and not o.status.is_terminal
            for o in self.ex.open_orders.values()
        )

    def _exit_request(self, watched: Watched, decision: ExitDecision) -> OrderRequest | None:
        trade = watched.trade
        pos = self.ex.journal.positions.get(trade.ticker)
        if pos is None or pos.qty == 0 or trade.id is None:
            return None
        with self.ex.store.unit_of_work(read_only=True) as uow:
            attempt = 1
            while uow.orders.get(exit_client_order_id(trade.id, decision.reason, attempt)):
                attempt += 1
        if attempt > MAX_EXIT_ATTEMPTS:
            self._alert_stuck_exit(trade, decision)
            return None
        return pos.closing_request(
            exit_client_order_id(trade.id, decision.reason, attempt),
            trade.signal_id,
            trade.instrument_type,
        )


__all__ = ["PositionManager", "exit_client_order_id", "tracked_position"]
