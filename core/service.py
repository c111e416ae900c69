"""The service facade every front end calls: the dashboard, the worker CLI and the Python API
(seed 004: ``get_current_positions``, ``get_position``, ``calculate_nav``,
``rebalance_portfolio``).

It reads the store and market data and writes plans and commands; it never calls a broker (the
executor is the only code that does). Building a rebalance preview needs no executor: positions
come from the store, prices from market data and the account from the executor's last
heartbeat. Approving a plan is a command the executor applies on its next tick.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.brokers.commission import CommissionSchedule
from core.brokers.rate_limit import RateLimitConfig
from core.config import ADMIN_SETTINGS, LIVE_GATE_KEY, RATE_LIMIT_KEY
from core.domain import ZERO, Command, CommandType, Position, Quote, ValidationError, to_decimal
from core.execution.config import ExecutionConfig
from core.execution.parent import ParentOrder
from core.execution.tca import ExecutionRecord, FillRecord, OrderTca, order_tca
from core.live_gate import GateDecision, LiveGateConfig, PaperHistory, check_live_gate
from core.ports import Clock, MarketData, Store
from core.rebalance.config import RebalanceConfig
from core.rebalance.engine import RebalanceEngine
from core.rebalance.model import PlanStatus, RebalancePlan
from core.rebalance.runner import AUTONOMOUS_KEY
from core.rebalance.targets import TargetKind, TargetPortfolio, build_targets
from core.risk.config import CONSERVATIVE, RiskProfile
from core.settings_keys import LIVE_KEY, live_from_value
from core.users import Action, require

#: The store's lease row the executor's heartbeat (and account snapshot) lives in.
DEFAULT_LEASE = "executor"


#: What each command needs a user's role to allow (see ``core.users``).
COMMAND_ACTIONS: dict[CommandType, Action] = {
    CommandType.KILL_SWITCH_ON: Action.KILL_SWITCH,
    CommandType.KILL_SWITCH_OFF: Action.KILL_SWITCH,
    CommandType.CANCEL_ORDER: Action.CANCEL_ORDER,
    CommandType.CANCEL_ALL: Action.CANCEL_ORDER,
    CommandType.MANUAL_ORDER: Action.MANUAL_ORDER,
    CommandType.UPDATE_SETTING: Action.CHANGE_SETTINGS,
    CommandType.APPROVE_REBALANCE: Action.REBALANCE,
    CommandType.CANCEL_REBALANCE: Action.REBALANCE,
    CommandType.ADOPT_BROKER_POSITION: Action.RECONCILE,
    CommandType.CANCEL_ORPHAN_ORDER: Action.RECONCILE,
    CommandType.GO_LIVE: Action.MANAGE_BROKERS,
    CommandType.GO_PAPER: Action.MANAGE_BROKERS,
}


def action_for(kind: CommandType, payload: dict[str, Any]) -> Action:
    """What a command needs: its kind's action, and an admin's for the settings that belong to
    the brokers (the live gate, the order-rate limit)."""
    if kind is CommandType.UPDATE_SETTING and payload.get("key") in ADMIN_SETTINGS:
        return Action.MANAGE_BROKERS
    return COMMAND_ACTIONS[kind]


class ServiceError(ValidationError):
    """A request the service cannot carry out; the message says why."""


@dataclass(frozen=True, slots=True)
class RebalanceResult:
    """What :meth:`TradingService.rebalance_portfolio` did: the stored plan, and whether it
    waits for a person's approval or was approved (by the caller or the autonomous opt-in)."""

    plan_id: int
    status: PlanStatus
    trades: int
    est_cost: Decimal
    turnover: Decimal
    approval_command_id: int | None
    message: str


@dataclass(frozen=True, slots=True)
class LiveGateView:
    """Where the account stands on the way to live trading: its paper history against the
    gate's minimums, whether live trading is on, and the last switch on record."""

    history: PaperHistory
    config: LiveGateConfig
    decision: GateDecision
    live: bool
    #: The stored ``broker.live`` value (who switched, when, on what history), if any.
    record: dict[str, Any] | None


class TradingService:
    """Read views and actions over one account's store and market data."""

    def __init__(
        self,
        store: Store,
        market: MarketData,
        *,
        clock: Clock | None = None,
        profile: Callable[[], RiskProfile] | RiskProfile = CONSERVATIVE,
        rebalance_config: RebalanceConfig | None = None,
        execution_config: ExecutionConfig | None = None,
        commission: CommissionSchedule | None = None,
        sector_of: Callable[[str], str | None] | None = None,
        lease_name: str = DEFAULT_LEASE,
    ) -> None:
        self.store = store
        self.market = market
        self.clock = clock or market.clock
        self._profile = profile
        self.engine = RebalanceEngine(
            rebalance_config, execution_config, commission=commission, sector_of=sector_of
        )
        self.lease_name = lease_name

    @property
    def profile(self) -> RiskProfile:
        return self._profile() if callable(self._profile) else self._profile

    # ------------------------------------------------------------------ positions and NAV
    async def _quotes(self, symbols: set[str] | list[str]) -> dict[str, Quote]:
        return {s: await self.market.quote(s) for s in sorted(symbols)}

    async def get_current_positions(self) -> list[Position]:
        """Open positions, marked at the current price."""
        with self.store.unit_of_work(read_only=True) as uow:
            positions = uow.positions.all()
        quotes = await self._quotes([p.symbol for p in positions])
        return [p.marked(quotes[p.symbol].last) for p in positions]

    async def get_position(self, symbol: str) -> Position | None:
        """The open position in ``symbol`` (marked), or None when flat."""
        with self.store.unit_of_work(read_only=True) as uow:
            pos = uow.positions.get(symbol.strip().upper())
        if pos is None or pos.qty == 0:
            return None
        return pos.marked((await self.market.quote(pos.symbol)).last)

    def account_snapshot(self) -> dict[str, Any] | None:
        """The account as the executor last saw it (published with its heartbeat)."""
        with self.store.unit_of_work(read_only=True) as uow:
            lease = uow.lease.get(self.lease_name)
        if lease is None:
            return None
        account = lease.info.get("account")
        return dict(account) if isinstance(account, dict) else None

    async def calculate_nav(self) -> Decimal:
        """Net asset value now: the account's cash plus every position at the current price."""
        snapshot = self.account_snapshot()
        if snapshot is None:
            raise ServiceError("no account snapshot yet: the executor has not marked the account")
        cash = to_decimal(snapshot["cash"], "cash")
        positions = await self.get_current_positions()
        return cash + sum((p.market_value for p in positions), ZERO)

    # ------------------------------------------------------------------ rebalancing
    def targets(
        self,
        values: TargetPortfolio | Mapping[str, Any],
        kind: TargetKind | str = TargetKind.WEIGHTS,
        source: str = "api",
    ) -> TargetPortfolio:
        """Validate targets against the market's symbols and the profile's leverage limit."""
        if isinstance(values, TargetPortfolio):
            return values
        return build_targets(
            values,
            kind=kind,
            known_symbols=frozenset(self.market.symbols()),
            leverage_limit=self.profile.leverage_limit,
            source=source,
        )

    async def preview_rebalance(
        self,
        targets: TargetPortfolio | Mapping[str, Any],
        *,
        kind: TargetKind | str = TargetKind.WEIGHTS,
        method: str | None = None,
        created_by: str = "api",
        trigger: str = "manual",
        trigger_detail: Mapping[str, Any] | None = None,
        weights_override: Mapping[str, Decimal] | None = None,
        **allocation_inputs: Any,
    ) -> RebalancePlan:
        """The plan (not stored) that moves today's positions to ``targets``."""
        portfolio = self.targets(targets, kind)
        with self.store.unit_of_work(read_only=True) as uow:
            positions = {p.symbol: p for p in uow.positions.all()}
        equity = await self.calculate_nav()
        label, weights, notes = self.engine.target_weights(
            portfolio, profile=self.profile, equity=equity, method=method, **allocation_inputs
        )
        if weights_override is not None:
            weights = dict(weights_override)
        symbols = set(positions) | set(weights)
        quotes = await self._quotes(symbols)
        adv = {s: await self.market.average_daily_volume(s) for s in sorted(symbols)}
        return self.engine.build_plan(
            weights=weights,
            positions=positions,
            quotes=quotes,
            adv=adv,
            equity=equity,
            now=self.clock.now(),
            trigger=trigger,
            method=label,
            created_by=created_by,
            trigger_detail={"source": portfolio.source, **dict(trigger_detail or {})},
            notes=notes,
        )

    def save_plan(self, plan: RebalancePlan) -> int:
        """Store a previewed plan as proposed; returns its id."""
        if plan.id is not None:
            raise ServiceError(f"plan {plan.id} is already stored")
        with self.store.unit_of_work() as uow:
            plan_id = uow.rebalance.add(plan)
            uow.commit()
        return plan_id

    async def modify_plan(
        self, plan_id: int, quantities: Mapping[int, Any], by: str
    ) -> RebalancePlan:
        """Change trade quantities of a proposed plan (0 drops a trade); costs are re-estimated
        and the change is noted. Only a proposed plan can be modified."""
        with self.store.unit_of_work() as uow:
            plan = uow.rebalance.get(plan_id)
            if plan is None:
                raise ServiceError(f"there is no rebalance plan {plan_id}")
            if plan.status is not PlanStatus.PROPOSED:
                raise ServiceError(f"plan {plan_id} is {plan.status.value}; it cannot be modified")
            changes = []
            for seq, raw in sorted(quantities.items()):
                trade = plan.trade(int(seq))
                qty = to_decimal(raw, f"quantity of trade {seq}")
                if qty < 0:
                    raise ServiceError(f"quantity of trade {seq} must not be negative")
                if trade.closes_position and qty != trade.qty and qty != 0:
                    raise ServiceError(
                        f"trade {seq} closes the {trade.symbol} position: "
                        f"keep {trade.qty} or drop it"
                    )
                if qty == trade.qty:
                    continue
                changes.append(f"{trade.symbol} {trade.qty} -> {qty}")
                if qty == 0:
                    plan.trades.remove(trade)
                    continue
                trade.qty = qty
                quote = await self.market.quote(trade.symbol)
                adv = await self.market.average_daily_volume(trade.symbol)
                self.engine.estimate(trade, adv, quote.bid, quote.ask)
            if changes:
                plan.notes.append(f"modified by {by}: {', '.join(changes)}")
                uow.rebalance.update(plan)
                uow.commit()
        return plan

    def _command(self, kind: CommandType, payload: dict[str, Any], by: str) -> int:
        if not by or not by.strip():
            raise ServiceError("a command needs the name of the person giving it")
        with self.store.unit_of_work() as uow:
            command_id = uow.commands.add(Command(kind, payload, by, self.clock.now()))
            uow.commit()
        return command_id

    def send_command(
        self,
        username: str,
        kind: CommandType,
        payload: dict[str, Any],
        action: Action | None = None,
    ) -> int:
        """Write a command as ``username`` after checking, against the stored user, that the
        role allows it (``action`` defaults to the command's own); returns the command id.
        Raises :class:`core.users.PermissionDenied` with the reason otherwise."""
        needed = action_for(kind, payload)
        if action is not None and action.needs.rank > needed.needs.rank:
            needed = action  # a caller may ask for more, never for less
        with self.store.unit_of_work() as uow:
            user = uow.users.get(username) if username else None
            require(user, needed)
            command_id = uow.commands.add(Command(kind, payload, username, self.clock.now()))
            uow.commit()
        return command_id

    def command(self, command_id: int) -> Command | None:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.commands.get(command_id)

    def approve_plan(self, plan_id: int, by: str) -> int:
        """Ask the executor to approve (and then execute) a plan; returns the command id."""
        return self._command(CommandType.APPROVE_REBALANCE, {"plan_id": plan_id}, by)

    def cancel_plan(self, plan_id: int, by: str, reason: str = "") -> int:
        return self._command(
            CommandType.CANCEL_REBALANCE, {"plan_id": plan_id, "reason": reason}, by
        )

    def live_gate(self) -> LiveGateView:
        """The paper-before-live gate as it stands (for the Settings page)."""
        with self.store.unit_of_work(read_only=True) as uow:
            sessions, closed = uow.journal.track_record()
            gate = uow.settings.get(LIVE_GATE_KEY)
            live = uow.settings.get(LIVE_KEY)
        config = LiveGateConfig()
        if gate is not None:
            with contextlib.suppress(ValidationError, TypeError):  # validated when stored
                config = LiveGateConfig.from_dict(gate.value)
        history = PaperHistory(sessions, closed)
        record = live.value if live is not None and isinstance(live.value, dict) else None
        return LiveGateView(
            history, config, check_live_gate(history, config), live_from_value(live), record
        )

    def order_rate_limit(self, default: RateLimitConfig | None = None) -> RateLimitConfig:
        """The order-rate limit in force: the stored setting, else ``default`` (the
        executor's configured one)."""
        with self.store.unit_of_work(read_only=True) as uow:
            stored = uow.settings.get(RATE_LIMIT_KEY)
        if stored is not None:
            try:
                return RateLimitConfig.from_dict(stored.value)
            except (ValidationError, TypeError):
                pass
        return default or RateLimitConfig()

    def autonomous(self) -> bool:
        with self.store.unit_of_work(read_only=True) as uow:
            setting = uow.settings.get(AUTONOMOUS_KEY)
        return self.engine.config.autonomous if setting is None else setting.value is True

    async def rebalance_portfolio(
        self,
        target_weights: Mapping[str, Any],
        *,
        by: str = "api",
        approve: bool = False,
        method: str | None = None,
    ) -> RebalanceResult:
        """Seed 004's ``rebalance_portfolio``: store a plan to ``target_weights``.

        It executes when ``approve`` is true (``by`` approves it, through a command) or when the
        autonomous opt-in is on; otherwise it waits, proposed, for a person's approval."""
        plan = await self.preview_rebalance(target_weights, method=method, created_by=by)
        plan_id = self.save_plan(plan)
        command_id = self.approve_plan(plan_id, by) if approve else None
        if command_id is not None:
            message = f"plan {plan_id} stored; approval by {by} sent (command {command_id})"
        elif self.autonomous():
            message = f"plan {plan_id} stored; the autonomous opt-in approves it"
        else:
            message = f"plan {plan_id} stored; it waits for approval"
        return RebalanceResult(
            plan_id,
            plan.status,
            len(plan.trades),
            plan.est_cost,
            plan.turnover,
            command_id,
            message,
        )

    def set_targets(
        self,
        targets: TargetPortfolio | Mapping[str, Any],
        by: str,
        kind: TargetKind | str = TargetKind.WEIGHTS,
        source: str = "api",
    ) -> int:
        """Store the target portfolio the triggers watch (validated first, applied by the
        executor as a versioned setting); returns the command id."""
        portfolio = self.targets(targets, kind, source)
        return self._command(
            CommandType.UPDATE_SETTING,
            {"key": "rebalance.targets", "value": portfolio.to_dict()},
            by,
        )

    def plans(self, limit: int = 50, status: PlanStatus | None = None) -> list[RebalancePlan]:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.rebalance.recent(limit, status)

    def plan(self, plan_id: int) -> tuple[RebalancePlan | None, list[ParentOrder]]:
        """A plan and its router parents (progress, fills, slippage)."""
        with self.store.unit_of_work(read_only=True) as uow:
            plan = uow.rebalance.get(plan_id)
            parents = uow.algos.for_plan(plan_id) if plan is not None else []
        return plan, parents

    # ------------------------------------------------------------------ TCA
    def tca(self, limit: int = 500) -> list[OrderTca]:
        """Transaction cost analysis of the router's recent parent orders (seed 000 R6.2)."""
        rows: list[OrderTca] = []
        with self.store.unit_of_work(read_only=True) as uow:
            for parent in uow.algos.recent(limit):
                fills = [
                    FillRecord(f.qty, f.price, f.commission, f.at)
                    for child in uow.orders.children(parent.parent_id)
                    for f in uow.fills.for_order(child.client_order_id)
                ]
                record = ExecutionRecord(
                    order_id=parent.parent_id,
                    symbol=parent.symbol,
                    side=parent.side,
                    qty=parent.qty,
                    arrival_price=parent.arrival_price,
                    limit_price=parent.limit_price,
                    algorithm=parent.algorithm,
                    strategy=parent.strategy,
                    sector=parent.sector or "",
                    regime=parent.regime or "",
                    expected_cost_bps=parent.expected_cost_bps,
                    fills=tuple(fills),
                )
                rows.append(order_tca(record))
        return rows

    def now(self) -> datetime:
        return self.clock.now()


__all__ = ["RebalanceResult", "ServiceError", "TradingService"]
