"""Commands: the dashboard-to-executor inbox, applied at the start of every tick.

Each command ends ``applied`` or ``rejected`` with a result a person can read; an unknown type or
a bad payload is rejected with the reason, never dropped. Applying a command again after a crash
is harmless: cancels of final orders are no-ops and manual orders have deterministic ids.
"""

from __future__ import annotations

import logging
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from core.brokers.paper_config import PAPER_FILL_KEYS
from core.brokers.rate_limit import OrderThrottled, RateLimitConfig
from core.config import LIVE_GATE_KEY, RATE_LIMIT_KEY, validate_setting
from core.domain import (
    Alert,
    AlertLevel,
    Command,
    CommandStatus,
    CommandType,
    KillSwitchState,
    Order,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    ValidationError,
    client_order_id_for_command,
    to_decimal,
)
from core.instruments.modes import InstrumentMode
from core.live_gate import LiveGateConfig, PaperHistory, request_go_live
from core.options.occ import is_occ, parse_occ
from core.ports import BrokerError, OrderRejected, UnitOfWork, UnknownOrder
from core.rebalance.runner import PlanRejected
from core.reconcile import ORPHAN_CANCELLED
from core.risk.config import RiskProfile
from core.risk.kill_switch import KillSwitch
from core.settings_keys import KILL_SWITCH_KEY, LIVE_KEY, kill_switch_value

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.commands")


class CommandRejected(Exception):
    """The command cannot be applied; the message is stored as its result."""


class LeaseLost(Exception):
    """Another executor leads now; the command is left pending for it."""


class CommandHandler:
    def __init__(self, executor: TradeExecutor):
        self.ex = executor

    def load_runtime_settings(self, uow: UnitOfWork) -> None:
        """Apply stored run-time settings (the dashboard may have changed them meanwhile)."""
        self._load_paper_settings(uow)
        rate = uow.settings.get(RATE_LIMIT_KEY)
        if rate is not None:
            try:
                config = RateLimitConfig.from_dict(rate.value)
            except (ValidationError, TypeError) as exc:  # validated when stored
                log.warning("stored order rate limit ignored: %s", exc)
            else:
                self.ex.rate_limiter.config = config
        qty = uow.settings.get("executor.default_qty")
        if qty is not None:
            self.ex.default_qty = Decimal(str(qty.value))
        per_tick = uow.settings.get("executor.max_signals_per_tick")
        if per_tick is not None:
            self.ex.max_signals_per_tick = int(per_tick.value)
        mode_setting = uow.settings.get("executor.instrument_mode")
        profile_setting = uow.settings.get("risk.profile")
        if not self.ex.pipeline_needs_market or (mode_setting is None and profile_setting is None):
            return  # nothing stored, or a pass-through pipeline with no router or risk gate
        # imported here: core.stages imports the executor, which imports this module
        from core.stages import use_full_pipeline

        current_mode, current_profile = self.ex.config.instrument_mode, self.ex.config.risk
        mode, profile = current_mode, current_profile
        if mode_setting is not None:  # values were validated when stored; a bad one is skipped
            try:
                mode = InstrumentMode(mode_setting.value)
            except (ValueError, TypeError):
                log.warning("stored instrument mode %r ignored", mode_setting.value)
        if profile_setting is not None:
            try:
                profile = RiskProfile.from_dict(profile_setting.value)
            except ValidationError as exc:
                log.warning("stored risk profile ignored: %s", exc)
        if mode != current_mode or profile != current_profile:
            use_full_pipeline(self.ex, mode, profile)
            log.info("pipeline: instrument mode %s, risk profile %s", mode.value, profile.name)

    def _load_paper_settings(self, uow: UnitOfWork) -> None:
        """Hand the stored paper fill settings to a broker that takes them (the paper broker);
        other brokers ignore them (a command changing one is rejected for them)."""
        apply = getattr(self.ex.broker, "apply_fill_settings", None)
        if apply is None:
            return
        stored = {}
        for key in PAPER_FILL_KEYS:
            setting = uow.settings.get(key)
            if setting is not None:
                stored[key] = setting.value
        if not stored:
            return
        try:
            if apply(stored):
                log.info("paper broker fill settings: %s", stored)
        except ValidationError as exc:  # validated when stored; an unreadable one is skipped
            log.warning("stored paper fill settings ignored: %s", exc)

    async def apply_pending(self, limit: int = 50) -> int:
        with self.ex.store.unit_of_work(read_only=True) as uow:
            pending = uow.commands.pending(limit)
        for command in pending:
            await self.apply(command)
            if not self.ex.is_leader:
                break
        return len(pending)

    async def apply(self, command: Command) -> tuple[CommandStatus, str]:
        assert command.id is not None
        try:
            kind = CommandType(command.type)
        except ValueError:
            known = ", ".join(t.value for t in CommandType)
            return self._finish(
                command,
                CommandStatus.REJECTED,
                f"unknown command type {command.type!r}; known: {known}",
            )
        if not isinstance(command.payload, dict):
            return self._finish(command, CommandStatus.REJECTED, "payload must be an object")
        handler = getattr(self, f"_do_{kind.value}")
        try:
            result = await handler(command)
        except LeaseLost:
            await self.ex._step_down("lease lost while applying a command")
            return CommandStatus.PENDING, "left for the new leader"
        except (CommandRejected, ValidationError, OrderRejected, OrderThrottled) as exc:
            return self._finish(command, CommandStatus.REJECTED, str(exc))
        except BrokerError as exc:
            return self._finish(command, CommandStatus.REJECTED, f"broker error: {exc}")
        self.ex.stats.commands += 1
        if result is None:  # already recorded in the handler's own transaction
            return CommandStatus.APPLIED, ""
        return self._finish(command, CommandStatus.APPLIED, result)

    def _finish(
        self, command: Command, status: CommandStatus, result: str
    ) -> tuple[CommandStatus, str]:
        assert command.id is not None
        with self.ex.store.unit_of_work() as uow:
            uow.commands.mark(command.id, status, result, self.ex.clock.now())
            uow.commit()
        if status is CommandStatus.REJECTED:
            log.info("command %s (%s) rejected: %s", command.id, command.type, result)
        return status, result

    # ---------------------------------------------------------------- handlers
    async def _do_kill_switch_on(self, command: Command) -> str:
        reason = str(command.payload.get("reason") or "").strip()
        if not reason:
            raise CommandRejected("turning the kill switch on needs a reason")
        now = self.ex.clock.now()
        state = KillSwitchState(True, reason, now, command.created_by)
        with self.ex.store.unit_of_work() as uow:
            uow.settings.put(KILL_SWITCH_KEY, kill_switch_value(state), command.created_by, now)
            uow.commit()
        self.ex.kill_switch = state
        cancelled = 0
        if command.payload.get("cancel_open", True):
            cancelled = await self.ex.cancel_working_entries()
        flattened = await self._flatten(command) if command.payload.get("flatten") else 0
        return (
            f"kill switch on ({reason}); {cancelled} entry orders cancelled; "
            f"{flattened} closing orders sent"
        )

    async def _flatten(self, command: Command) -> int:
        orders = []
        for symbol, pos in sorted(self.ex.journal.positions.items()):
            prefix = client_order_id_for_command(command.id or 0, "flatten")
            orders.append(pos.closing_request(f"{prefix}-{symbol}"))
        return await self._write_and_submit(orders)

    async def _do_kill_switch_off(self, command: Command) -> str:
        if not self.ex.kill_switch.active:
            return "kill switch was already off"
        now = self.ex.clock.now()
        reason = str(command.payload.get("reason") or "").strip()
        try:
            # only a named person, with a reason, may release it (never the engine itself)
            state = KillSwitch(state=self.ex.kill_switch).deactivate(
                command.created_by, reason, now
            )
        except ValidationError as exc:
            raise CommandRejected(str(exc)) from None
        with self.ex.store.unit_of_work() as uow:
            uow.settings.put(KILL_SWITCH_KEY, kill_switch_value(state), command.created_by, now)
            uow.commit()
        previous = self.ex.kill_switch.reason
        self.ex.kill_switch = state
        return f"kill switch off (was on: {previous}); by {command.created_by}: {reason}"

    async def _do_cancel_order(self, command: Command) -> str:
        coid = command.payload.get("client_order_id")
        if not isinstance(coid, str) or not coid:
            raise CommandRejected("cancel_order needs client_order_id")
        with self.ex.store.unit_of_work() as uow:
            order = self.ex._order(uow, coid)
        if order is None:
            raise CommandRejected(f"unknown order {coid}")
        if order.status.is_terminal:
            raise CommandRejected(f"order {coid} is already {order.status.value}")
        try:
            sent = await self.ex.broker.cancel_order(coid)
        except UnknownOrder:
            raise CommandRejected(f"the broker does not know order {coid}") from None
        return (
            f"cancel of {coid} requested"
            if sent
            else f"order {coid} was already final at the broker"
        )

    async def _do_cancel_all(self, command: Command) -> str:
        n = await self.ex.broker.cancel_all()
        return f"{n} cancel requests sent"

    async def _do_manual_order(self, command: Command) -> str | None:
        payload: dict[str, Any] = dict(command.payload)
        if "client_order_id" in payload:
            raise CommandRejected("client_order_id is assigned by the executor")
        payload.setdefault("order_type", OrderType.MARKET.value)
        if payload.get("notional") is not None and payload.get("qty") is None:
            payload["qty"] = str(await self._estimated_qty(payload))
        if payload["order_type"] == OrderType.MARKET_ON_CLOSE.value:
            payload.setdefault("time_in_force", TimeInForce.CLS.value)
        request = OrderRequest.from_dict(
            {**payload, "client_order_id": client_order_id_for_command(command.id or 0)}
        )
        if request.symbol not in self.ex._known_symbols and not self._known_option(request.symbol):
            raise CommandRejected(f"unknown symbol {request.symbol!r}")
        if request.reduce_only:
            pos = self.ex.journal.positions.get(request.symbol)
            reduces = (
                pos is not None
                and (pos.qty > 0) == (request.side is Side.SELL)
                and request.qty <= abs(pos.qty)
            )
            if not reduces:
                raise CommandRejected(
                    f"reduce-only order does not reduce the {request.symbol} position"
                )
        elif self.ex.kill_switch.active:
            raise CommandRejected(
                f"kill switch is on ({self.ex.kill_switch.reason}): only exits are allowed"
            )
        written = await self._write_and_submit([request], command)
        return None if written else "order was already written"

    def _known_option(self, symbol: str) -> bool:
        """An option contract (OCC symbol) on an underlying the market knows: the market lists
        underlyings, and quotes their contracts."""
        return is_occ(symbol) and parse_occ(symbol).underlying in self.ex._known_symbols

    async def _estimated_qty(self, payload: dict[str, Any]) -> Decimal:
        """A notional order's quantity estimate (for risk checks and the books): the dollar
        amount at the last price; the broker fills the amount."""
        symbol = str(payload.get("symbol") or "")
        notional = to_decimal(payload["notional"], "notional")
        try:
            last = (await self.ex.market.quote(symbol)).last
        except (KeyError, ValueError):
            raise CommandRejected(f"no price for {symbol!r} to size the notional order") from None
        qty = (notional / last).quantize(Decimal("0.000000001"), ROUND_DOWN)
        if qty <= 0:
            raise CommandRejected(f"${notional} buys no {symbol} at {last}")
        return qty

    async def _write_and_submit(
        self, requests: list[OrderRequest], command: Command | None = None
    ) -> int:
        """Write orders ahead (marking ``command`` applied in the same transaction), then submit."""

        def mark_applied(uow: UnitOfWork, orders: list[Order]) -> None:
            if command is not None and orders:
                uow.commands.mark(
                    command.id or 0,
                    CommandStatus.APPLIED,
                    f"order {orders[0].client_order_id} written",
                    self.ex.clock.now(),
                )

        return await self.ex.write_and_submit(requests, on_commit=mark_applied)

    async def _do_approve_rebalance(self, command: Command) -> str:
        plan_id = self._plan_id(command)
        if self.ex.rebalancer is None:
            raise CommandRejected("rebalancing is not set up on this executor")
        try:
            return await self.ex.rebalancer.approve(
                plan_id, command.created_by, self.ex.clock.now()
            )
        except PlanRejected as exc:
            raise CommandRejected(str(exc)) from None

    async def _do_cancel_rebalance(self, command: Command) -> str:
        plan_id = self._plan_id(command)
        if self.ex.rebalancer is None:
            raise CommandRejected("rebalancing is not set up on this executor")
        reason = str(command.payload.get("reason") or "").strip()
        try:
            return self.ex.rebalancer.cancel(
                plan_id, command.created_by, reason, self.ex.clock.now()
            )
        except PlanRejected as exc:
            raise CommandRejected(str(exc)) from None

    @staticmethod
    def _plan_id(command: Command) -> int:
        plan_id = command.payload.get("plan_id")
        if isinstance(plan_id, bool) or not isinstance(plan_id, int) or plan_id <= 0:
            raise CommandRejected(f"{command.type} needs a plan_id (a positive integer)")
        return plan_id

    async def _do_update_setting(self, command: Command) -> str:
        key = command.payload.get("key")
        value = validate_setting(key, command.payload.get("value"))
        applied = ""
        if key in PAPER_FILL_KEYS:
            self._check_paper_setting(str(key), value)
            applied = "; applied to the paper broker"
        now = self.ex.clock.now()
        with self.ex.store.unit_of_work() as uow:
            version = uow.settings.put(str(key), value, command.created_by, now)
            uow.commit()
            self.load_runtime_settings(uow)
        return f"{key} = {value} (version {version}){applied}"

    def _check_paper_setting(self, key: str, value: Any) -> None:
        """A paper fill setting is stored only for a broker that applies it, and only if it
        makes a valid config with the broker's other settings."""
        broker = self.ex.broker
        if not callable(getattr(broker, "apply_fill_settings", None)):
            raise CommandRejected(
                f"{key} changes how the paper broker fills; this executor trades on "
                f"{broker.name!r}, which does not take it"
            )
        config = getattr(broker, "config", None)
        with_fill_settings = getattr(config, "with_fill_settings", None)
        if with_fill_settings is not None:
            with_fill_settings({key: value})  # raises ValidationError with the reason

    # ---------------------------------------------------------------- reconciliation
    @staticmethod
    def _reason(command: Command, what: str) -> str:
        reason = str(command.payload.get("reason") or "").strip()
        if not reason:
            raise CommandRejected(f"{what} needs a reason (it is kept with the command)")
        return reason

    async def _do_adopt_broker_position(self, command: Command) -> None:
        """Take the broker's quantity of a symbol as ours: the broker's position is read again
        now (not the one the difference recorded) and written to the store and the journal,
        with a ``position_adopted`` reconciliation row; the command is marked in the same
        transaction, under the lease."""
        raw = command.payload.get("symbol")
        if not isinstance(raw, str) or not raw.strip():
            raise CommandRejected("adopt_broker_position needs a symbol")
        symbol = raw.strip().upper()
        reason = self._reason(command, "adopting the broker's position")
        theirs = {p.symbol: p for p in await self.ex.broker.get_positions()}.get(symbol)
        ours = self.ex.journal.positions.get(symbol)
        if ours is None and theirs is None:
            raise CommandRejected(f"neither the store nor the broker holds {symbol}")
        now = self.ex.clock.now()
        with self.ex.store.unit_of_work() as uow:
            # fencing: the lease is taken first in this transaction, before anything changes
            if not self.ex._renew_lease(uow, self.ex.wall.now()):
                raise LeaseLost()
            result = self.ex.reconciler.adopt_position(uow, symbol, theirs, now)
            result += f"; by {command.created_by}: {reason}"
            uow.commands.mark(command.id or 0, CommandStatus.APPLIED, result, now)
            uow.commit()
        log.warning("reconciliation: %s", result)
        return None

    # ---------------------------------------------------------------- live trading
    async def _do_go_live(self, command: Command) -> str:
        """Switch a live account to live trading, behind the paper-history gate; recorded (the
        setting keeps who, when and on what history) with a critical alert."""
        if not self.ex.config.live_account:
            raise CommandRejected(
                f"this executor trades on {self.ex.broker.name!r}, a paper account; live "
                "trading needs a live account configured (AXION_BROKER=alpaca with "
                "AXION_ALPACA_LIVE=true, or AXION_BROKER=ibkr with AXION_IBKR_LIVE=true)"
            )
        if self.ex.live_enabled:
            return "live trading was already on"
        now = self.ex.clock.now()
        with self.ex.store.unit_of_work() as uow:
            sessions, closed = uow.journal.track_record()
            stored = uow.settings.get(LIVE_GATE_KEY)
            config = LiveGateConfig.from_dict(stored.value) if stored else LiveGateConfig()
            record = request_go_live(
                PaperHistory(sessions, closed),
                config,
                confirmed=command.payload.get("confirm") is True,
                by=command.created_by,
                at=now,
            )  # ValidationError (the command's rejection) says what is missing
            uow.settings.put(LIVE_KEY, {"live": True, **record.to_dict()}, record.by, now)
            uow.alerts.add(
                Alert(
                    "broker",
                    AlertLevel.CRITICAL,
                    f"LIVE trading switched on by {record.by} on {self.ex.broker.name} "
                    f"({sessions} paper sessions, {closed} closed paper trades)",
                    now,
                    {"command": "go_live", "record": record.to_dict()},
                )
            )
            uow.commit()
        self.ex.live_enabled = True
        self.ex.publish_soon()
        log.warning("LIVE trading switched on by %s", record.by)
        return (
            f"LIVE trading on, by {record.by}: {sessions} paper sessions and {closed} closed "
            f"paper trades (needs {config.min_paper_sessions} and {config.min_closed_trades})"
        )

    async def _do_go_paper(self, command: Command) -> str:
        """Stop live trading: new-risk orders are refused again; exits still go out."""
        if not self.ex.live_enabled:
            return "live trading was already off"
        now = self.ex.clock.now()
        reason = str(command.payload.get("reason") or "").strip() or "no reason given"
        with self.ex.store.unit_of_work() as uow:
            value = {"live": False, "by": command.created_by, "at": now.isoformat()}
            uow.settings.put(LIVE_KEY, {**value, "reason": reason}, command.created_by, now)
            uow.alerts.add(
                Alert(
                    "broker",
                    AlertLevel.WARNING,
                    f"live trading switched off by {command.created_by}: {reason}",
                    now,
                    {"command": "go_paper", "reason": reason},
                )
            )
            uow.commit()
        self.ex.live_enabled = False
        self.ex.publish_soon()
        return f"live trading off ({reason}): new-risk orders are refused, exits still go out"

    async def _do_cancel_orphan_order(self, command: Command) -> str:
        """Cancel an order the broker has and our store does not (by client or broker order
        id); orders of our own go through ``cancel_order``."""
        coid = command.payload.get("client_order_id")
        broker_id = command.payload.get("broker_order_id")
        reason = self._reason(command, "cancelling an orphan order")
        coid = coid.strip() if isinstance(coid, str) else None
        broker_id = broker_id.strip() if isinstance(broker_id, str) else None
        if not coid and not broker_id:
            raise CommandRejected("cancel_orphan_order needs client_order_id or broker_order_id")
        remote = await self.ex.reconciler.broker_order(coid, broker_id)
        if remote is None:
            raise CommandRejected(f"the broker has no order {coid or broker_id}")
        coid = remote.client_order_id
        broker = self.ex.broker
        with self.ex.store.unit_of_work(read_only=True) as uow:
            ours = self.ex._order(uow, coid)
        if ours is not None:
            raise CommandRejected(
                f"order {coid} is ours ({ours.status.value}), not an orphan: cancel it as an order"
            )
        if remote.status.is_terminal:
            status = remote.status.value
            note = f"order {coid} was already {status} at the broker; nothing to cancel"
        else:
            try:
                sent = await broker.cancel_order(coid)
            except UnknownOrder:
                raise CommandRejected(f"the broker does not know order {coid}") from None
            # the cancel's own event goes into the books (as a difference of the order we do
            # not know) before the resolution is recorded, so the resolution comes last
            await self.ex.process_updates()
            after = await broker.get_order(coid)
            status = after.status.value if after is not None else "unknown"
            note = (
                f"orphan order {coid} cancelled at the broker ({status})"
                if sent
                else f"order {coid} was already final at the broker ({status})"
            )
        with self.ex.store.unit_of_work() as uow:
            self.ex.reconciler.resolved(uow, ORPHAN_CANCELLED, coid, None, status)
            uow.commit()
        return f"{note}; by {command.created_by}: {reason}"


__all__ = ["CommandHandler", "CommandRejected", "LeaseLost"]
