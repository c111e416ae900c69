"""TradeExecutor: the one writer of orders, fills and positions, and the only caller of the broker.

One tick (see DESIGN §1):
  0. hold the leader lease (a standby executor does nothing else);
  1. apply pending commands (kill switch, cancels, manual orders, settings);
  2. take broker updates into orders, fills, positions and the journal;
  3. mark to market and update the day's P&L; evaluate the kill switch's triggers;
  4. manage open positions: the exit monitor's exits (never blocked) and scale-in adds;
  5. run pending signals through the pipeline, write the orders ahead, submit them;
  6. (rebalance plans, later);
  7. heartbeat (the lease row carries it).

Write-ahead: an order row in ``pending_submit`` is committed, in the same transaction that marks
its signal routed and re-checks the lease, before the broker is called. An order whose submit
ended ambiguously is looked up by its client order id on the next tick; an order left in
``pending_submit`` by a crash is looked up at start. Nothing is re-sent blindly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from core.brokers.rate_limit import OrderRateLimiter, OrderThrottled, RateDecision, is_exempt
from core.brokers.router import OrderRouter
from core.commands import CommandHandler, LeaseLost
from core.config import ExecutorConfig
from core.domain import (
    AccountState,
    BrokerEvent,
    BrokerOrder,
    DailyPnl,
    EventKind,
    Fill,
    InstrumentType,
    KillSwitchState,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    StageDecision,
    bracket_leg_ids,
    bracket_leg_requests,
    is_expiry_settlement,
)
from core.faults import fail_point
from core.journal import TradeJournalWriter
from core.marketdata.calendar import WallClock
from core.pipeline import PipelineContext, SignalPipeline, pass_through_pipeline
from core.ports import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    Clock,
    MarketData,
    OrderRejected,
    Store,
    UnitOfWork,
    UnknownOrder,
)
from core.rebalance.runner import RebalanceRunner
from core.reconcile import Reconciler

if TYPE_CHECKING:
    from core.kill_switch_monitor import KillSwitchMonitor
    from core.position_manager import PositionManager
from core.settings_keys import (
    KILL_SWITCH_KEY,
    LIVE_KEY,
    kill_switch_from_value,
    live_from_value,
)

log = logging.getLogger("axion.executor")

_IN_FLIGHT = (
    OrderStatus.PENDING_SUBMIT,
    OrderStatus.SUBMITTED,
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
)


class DuplicateOrder(Exception):
    """An order with this client order id is already stored."""


class SignalSource(Protocol):
    """Something that writes signals into the store (a strategy, the demo generator)."""

    async def emit(self, store: Store, now: datetime) -> int: ...


@dataclass(slots=True)
class TickStats:
    ticks: int = 0
    signals_routed: int = 0
    signals_rejected: int = 0
    orders_submitted: int = 0
    orders_rejected: int = 0
    fills: int = 0
    commands: int = 0
    errors: int = 0
    last_error: str | None = None
    #: seconds from a signal's pickup to its broker submit returning (kept for benchmarks)
    submit_latencies: list[float] = field(default_factory=list)


def default_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class TradeExecutor:
    """Turns signals into orders on one broker account; see the module docstring."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        market: MarketData,
        config: ExecutorConfig | None = None,
        pipeline: SignalPipeline | None = None,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        holder_id: str | None = None,
        signal_sources: Sequence[SignalSource] = (),
        record_latency: bool = False,
    ):
        self.store = store
        self.broker = broker
        self.market = market
        self.config = config or ExecutorConfig()
        self.pipeline = pipeline or pass_through_pipeline()
        self.clock = clock or market.clock
        self.wall = wall_clock or WallClock()
        self.holder_id = holder_id or default_holder_id()
        self.signal_sources = list(signal_sources)
        self.record_latency = record_latency
        self.stats = TickStats()
        self.is_leader = False
        self.journal = TradeJournalWriter()
        self.reconciler = Reconciler(self)
        self.commands = CommandHandler(self)
        self.kill_switch = KillSwitchState(active=False)
        self.default_qty: Decimal = self.config.default_qty
        self.max_signals_per_tick = self.config.max_signals_per_tick
        #: Open orders by client order id (this executor is their only writer while leader).
        self.open_orders: dict[str, Order] = {}
        #: Orders whose submit ended ambiguously; resolved by lookup before anything else.
        self.in_doubt: set[str] = set()
        self._last_lease_renewal: datetime | None = None
        self._recovered = False
        #: Account equity at the last mark (the journal records it with each new trade).
        self.last_equity: Decimal | None = None
        #: The session's daily P&L row as of the last mark (starting and peak equity).
        self.last_daily_row: DailyPnl | None = None
        self._last_mark: datetime | None = None
        self._last_checkpoint: datetime | None = None
        self._leader_ticks = 0
        self._known_symbols = frozenset(market.symbols())
        #: Set by the composition root when the pipeline has the router, sizer and risk gate.
        self.pipeline_needs_market = False
        self.instrument_mode: object = None
        self.risk_snapshot: Callable[..., object] | None = None
        self._adv_day: object = None
        #: (symbol, side, qty, at) of orders written recently, for the duplicate-order check.
        self.recent_fingerprints: deque[tuple[str, object, Decimal, datetime]] = deque(
            maxlen=10_000
        )
        self.recent_window = timedelta(seconds=120)
        self._adv_cache: dict[str, Decimal] = {}
        #: Set by the composition root: exit management and the kill switch's triggers.
        self.position_manager: PositionManager | None = None
        self.kill_monitor: KillSwitchMonitor | None = None
        #: Set by the composition root: approved rebalance plans and the smart order router.
        self.rebalancer: RebalanceRunner | None = None
        #: The broker account as of the last mark (also published in the heartbeat).
        self.last_account: AccountState | None = None
        #: The risk gate's check of a scale-in add: (allowed qty or None, reason).
        self.add_check: Callable[..., Awaitable[tuple[Decimal | None, str]]] | None = None
        #: New-risk orders per minute on this account (exits and kill-switch orders exempt).
        self.rate_limiter = OrderRateLimiter(self.config.order_rate)
        #: Live trading switched on (``go_live``); matters only on a live account.
        self.live_enabled = False

    # ------------------------------------------------------------------ lease and leadership
    def _renew_lease(self, uow: UnitOfWork, now_wall: datetime) -> bool:
        info = {
            "ticks": self.stats.ticks,
            "broker": self.broker.name,
            "connected": self.broker.connected,
            "kill_switch": self.kill_switch.active,
            "live_account": self.config.live_account,
            "live": self.live_trading,
            "last_error": self.stats.last_error,
            "account": None if self.last_account is None else self.last_account.to_dict(),
        }
        if isinstance(self.broker, OrderRouter):
            info["routes"] = self.broker.status()
        return uow.lease.try_acquire(
            self.config.lease_name, self.holder_id, now_wall, self.config.lease_ttl, info
        )

    async def _ensure_leadership(self) -> bool:
        now_wall = self.wall.now()
        due = (
            not self.is_leader
            or self._last_lease_renewal is None
            or now_wall - self._last_lease_renewal >= self.config.lease_renew_every
        )
        if not due:
            return True
        with self.store.unit_of_work() as uow:
            held = self._renew_lease(uow, now_wall)
            uow.commit()
        if held:
            self._last_lease_renewal = now_wall
            if not self.is_leader:
                await self._become_leader()
        elif self.is_leader:
            await self._step_down("lease lost to another executor")
        return self.is_leader

    def publish_soon(self) -> None:
        """Renew the lease (and the heartbeat's info) on the next tick, not when it is due: the
        dashboard reads what changed (live trading switched) from it."""
        self._last_lease_renewal = None

    async def _become_leader(self) -> None:
        log.info("executor %s became leader for %s", self.holder_id, self.config.account)
        self.is_leader = True
        self._leader_ticks = 0
        with self.store.unit_of_work() as uow:
            self.journal.load(uow)
            self.kill_switch = kill_switch_from_value(uow.settings.get(KILL_SWITCH_KEY))
            self.live_enabled = live_from_value(uow.settings.get(LIVE_KEY))
            self.commands.load_runtime_settings(uow)
            self.open_orders = {o.client_order_id: o for o in uow.orders.with_status(_IN_FLIGHT)}
            self._count_recent_entries(uow)
        self._remember_brokers(self.open_orders.values())
        if self.kill_monitor is not None:
            self.kill_monitor.load()
        self._recovered = False
        await self._recover()

    def _count_recent_entries(self, uow: UnitOfWork) -> None:
        """Count the new-risk orders written within the rate window before this executor
        became leader, so a restart does not reset the order-rate limit."""
        now = self.clock.now()
        window = self.rate_limiter.config.window
        self.rate_limiter = OrderRateLimiter(self.rate_limiter.config)
        recent = [
            o
            for o in uow.orders.recent(1000)
            if o.created_at is not None
            and now - window < o.created_at <= now
            and not o.is_bracket_leg
        ]
        for order in sorted(recent, key=lambda o: o.created_at or now):
            assert order.created_at is not None
            self.rate_limiter.record(order.request, order.created_at, account=self._account)

    @property
    def _account(self) -> str:
        return self.config.account

    def _remember_brokers(self, orders: Iterable[Order]) -> None:
        """Tell a routing broker which broker holds each stored order (after a restart)."""
        remember = getattr(self.broker, "remember", None)
        if remember is None:
            return
        for order in orders:
            if not order.broker:
                continue
            try:
                remember(order.client_order_id, order.broker)
            except ValueError:
                log.warning(
                    "order %s was placed at %s, which is not configured now",
                    order.client_order_id,
                    order.broker,
                )

    @property
    def live_trading(self) -> bool:
        """True while orders on this executor's account are real-money orders."""
        return self.config.live_account and self.live_enabled

    def throttle(self, request: OrderRequest, now: datetime, pending: int = 0) -> RateDecision:
        """May a new-risk order go out now: refused on a live account not switched to live
        trading, and by the order-rate limit (exits and kill-switch orders always may)."""
        if self.config.live_account and not self.live_enabled and not is_exempt(request):
            return RateDecision(
                False,
                None,
                "live trading is not switched on for this live account: an admin switches it on "
                "(Settings, after the paper history the live gate asks for); only exits go out",
            )
        return self.rate_limiter.check(request, now, account=self._account, pending=pending)

    async def _recover(self) -> None:
        """Connect, resolve in-flight orders and reconcile; until this has succeeded the leader
        does nothing else (a broker that is down at start is retried every tick)."""
        await self.broker.connect()
        await self.reconciler.recover_in_flight()
        await self.reconciler.reconcile()
        self._recovered = True

    async def _step_down(self, why: str) -> None:
        log.warning("executor %s standing by: %s", self.holder_id, why)
        self.is_leader = False
        self.open_orders.clear()
        self.in_doubt.clear()
        try:
            await self.broker.close()
        except BrokerError:  # pragma: no cover - closing a dead connection
            log.exception("closing the broker failed")

    async def shutdown(self) -> None:
        """Stop cleanly: release the lease so a standby can take over at once."""
        if self.is_leader:
            try:  # events the broker produced since the last tick belong in our books
                await self.process_updates()
            except BrokerError:
                log.exception("could not take the last broker updates; recovery will at start")
            with self.store.unit_of_work() as uow:
                uow.lease.release(self.config.lease_name, self.holder_id)
                uow.commit()
            await self._step_down("shutting down")

    # ------------------------------------------------------------------ the tick
    async def tick(self) -> bool:
        """Run one tick; returns True if this executor is the leader."""
        self.stats.ticks += 1
        try:
            if not await self._ensure_leadership():
                return False
        except BrokerUnavailable as exc:
            if not self.is_leader:
                raise
            await self._broker_unavailable(exc)
            return True
        self._leader_ticks += 1
        try:
            if not self._recovered:
                await self._recover()
            await self.commands.apply_pending()
            if self.in_doubt:
                await self.reconciler.resolve_in_doubt()
            await self.process_updates()
            if self.kill_monitor is not None:
                self.kill_monitor.broker_up()
            await self.mark_to_market()
            if self.position_manager is not None:
                await self.manage_positions()
            for source in self.signal_sources:
                await source.emit(self.store, self.clock.now())
            await self.process_signals()
            if self.rebalancer is not None:
                await self.rebalancer.tick(self.clock.now())
            if self._leader_ticks % self.config.reconcile_every_ticks == 0:
                await self.reconciler.reconcile()
            self._housekeeping()
        except BrokerUnavailable as exc:
            await self._broker_unavailable(exc)
        return True

    async def _broker_unavailable(self, exc: BrokerUnavailable) -> None:
        """The broker did not answer: note it; the kill switch counts how long it has been."""
        self._note_error(f"broker unavailable: {exc}")
        if self.kill_monitor is not None:
            now = self.clock.now()
            # a routing broker knows when it last saw any broker up
            since = getattr(self.broker, "down_since", None)
            self.kill_monitor.broker_down(since if isinstance(since, datetime) else now)
            await self.kill_monitor.check(None, None, now)

    def _housekeeping(self) -> None:
        """Off the order path: after this tick's orders went out."""
        now = self.wall.now()
        if (
            self._last_checkpoint is None
            or now - self._last_checkpoint >= self.config.checkpoint_interval
        ):
            self._last_checkpoint = now
            self.store.checkpoint()

    def _note_error(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        log.warning(message)

    # ------------------------------------------------------------------ step 2: broker events
    async def process_updates(self) -> int:
        events = await self.broker.updates()
        if not events:
            return 0
        fail_point("after_updates_drained")
        with self.store.unit_of_work() as uow:
            for event in events:
                self.apply_event(uow, event)
            uow.commit()
        for coid in [c for c, o in self.open_orders.items() if o.status.is_terminal]:
            del self.open_orders[coid]
        return len(events)

    def _order(self, uow: UnitOfWork, coid: str) -> Order | None:
        order = self.open_orders.get(coid)
        if order is None:
            order = uow.orders.get(coid)
        return order

    def apply_event(self, uow: UnitOfWork, event: BrokerEvent) -> None:
        """Apply one broker event to our books. Duplicate and stale events change nothing."""
        order = self._order(uow, event.client_order_id)
        if order is None and event.fill is not None and is_expiry_settlement(event.client_order_id):
            order = self._adopt_settlement(uow, event)
        if order is None:
            self.reconciler.record(
                uow, "unknown_at_broker", event.client_order_id, None, f"{event.kind.value} event"
            )
            return
        if event.broker_order_id and not order.broker_order_id:
            order.broker_order_id = event.broker_order_id
        if event.kind is EventKind.FILL and event.fill is not None:
            self.record_fill(uow, order, event.fill, event.status)
        else:
            target = {
                EventKind.ACCEPTED: OrderStatus.ACCEPTED,
                EventKind.CANCELLED: OrderStatus.CANCELLED,
                EventKind.REJECTED: OrderStatus.REJECTED,
                EventKind.EXPIRED: OrderStatus.EXPIRED,
            }.get(event.kind)
            if target is not None:
                self.advance(order, target, event.at, event.reason)
        uow.orders.update(order)

    def _adopt_settlement(self, uow: UnitOfWork, event: BrokerEvent) -> Order:
        """An option the broker settled at its expiry close: stored as the broker's closing
        order, so the fill closes the position and the journal's trade (exit ``expiry``)."""
        fill = event.fill
        assert fill is not None
        request = OrderRequest(
            client_order_id=event.client_order_id,
            symbol=fill.symbol,
            side=fill.side,
            qty=fill.qty,
            order_type=OrderType.MARKET,
            reduce_only=True,
            instrument_type=InstrumentType.OPTION,
        )
        order = Order(
            request,
            broker=fill.broker or self.broker.name,
            created_at=event.at,
            updated_at=event.at,
        )
        order.transition(
            OrderStatus.PENDING_SUBMIT, event.at, event.reason or "option expiry settlement"
        )
        uow.orders.add(order)
        self.open_orders[order.client_order_id] = order
        log.info("%s: %s", event.client_order_id, event.reason or "option expiry settlement")
        return order

    def record_fill(
        self, uow: UnitOfWork, order: Order, fill: Fill, status_after: OrderStatus | None
    ) -> bool:
        """Store a fill once, apply it to the order, the position and the journal."""
        if not uow.fills.add(fill):
            return False
        order.apply_fill(fill.qty, fill.price)
        filled = order.filled_qty >= order.request.qty
        target = OrderStatus.FILLED if filled else OrderStatus.PARTIALLY_FILLED
        if status_after is OrderStatus.FILLED and not filled:
            # A bracket leg is sized by the broker to what the entry filled, so its "filled" is
            # final; for any other order quantities win over a status.
            # A notional order's quantity is an estimate: the broker fills the dollar amount.
            final = order.is_bracket_leg or getattr(order.request, "notional", None) is not None
            target = OrderStatus.FILLED if final else OrderStatus.PARTIALLY_FILLED
        self.advance(order, target, fill.at, None)
        self.journal.record_fill(uow, order, fill, portfolio_value=self.last_equity)
        self.stats.fills += 1
        return True

    def advance(self, order: Order, to: OrderStatus, at: datetime, reason: str | None) -> bool:
        """Move an order forward, via ``submitted`` when the broker skipped it. Stale or repeated
        statuses (a late ``accepted`` after a fill) are ignored, not errors."""
        if order.status is to and to is not OrderStatus.PARTIALLY_FILLED:
            return False
        if order.status is OrderStatus.PENDING_SUBMIT and to not in (
            OrderStatus.SUBMITTED,
            OrderStatus.REJECTED,
        ):
            order.transition(OrderStatus.SUBMITTED, at, "acknowledged by broker")
        if not order.can_transition(to):
            log.debug("ignoring %s -> %s for %s", order.status, to, order.client_order_id)
            return False
        order.transition(to, at, reason)
        if order.status.is_terminal:
            self.in_doubt.discard(order.client_order_id)
        return True

    # ------------------------------------------------------------------ step 3: mark to market
    async def mark_to_market(self, force: bool = False) -> None:
        now = self.clock.now()
        if not force and self._last_mark and now - self._last_mark < self.config.mark_interval:
            return
        self._last_mark = now
        prices: dict[str, Decimal] = {}
        for symbol in list(self.journal.positions):
            try:
                prices[symbol] = (await self.market.quote(symbol)).last
            except (KeyError, ValueError):
                continue
        account = await self.broker.get_account()
        self.last_equity = account.equity
        self.last_account = account
        session = self.market.calendar.session_date(now)
        row = None
        with self.store.unit_of_work() as uow:
            self.journal.mark(uow, prices)
            if session is not None:
                row = self.journal.update_daily_pnl(
                    uow, session, account.equity, now, self.kill_switch.active
                )
            uow.commit()
        self.last_daily_row = row
        if self.kill_monitor is not None:
            await self.kill_monitor.check(account, row, now)

    async def manage_positions(self) -> int:
        """Step 4: exits for open positions, at current prices (during sessions only)."""
        assert self.position_manager is not None
        now = self.clock.now()
        manager = self.position_manager
        manager.sync()
        if not manager.watched or not self.market.calendar.is_open(now):
            return 0
        prices: dict[str, Decimal] = {}
        for symbol in manager.watched:
            try:
                prices[symbol] = (await self.market.quote(symbol)).last
            except (KeyError, ValueError):
                continue
        return await manager.run(prices, now)

    async def cancel_protective_legs(self, symbol: str) -> int:
        """Cancel the working bracket legs of ``symbol`` (before another order closes it)."""
        return await self._cancel_where(lambda o: o.symbol == symbol and o.is_bracket_leg)

    async def cancel_working_entries(self) -> int:
        """Cancel working entry orders (kill switch); exits and protective legs keep working."""
        return await self._cancel_where(
            lambda o: not o.request.reduce_only and not o.is_bracket_leg
        )

    async def _cancel_where(self, wanted: Callable[[Order], bool]) -> int:
        cancelled = 0
        for order in list(self.open_orders.values()):
            if order.status.is_terminal or not wanted(order):
                continue
            try:
                if await self.broker.cancel_order(order.client_order_id):
                    cancelled += 1
            except UnknownOrder:
                continue
            except OrderRejected as exc:  # the broker refused the cancel: it stays working
                log.warning("cancel of %s refused: %s", order.client_order_id, exc)
        return cancelled

    async def write_and_submit(
        self,
        requests: Sequence[OrderRequest],
        decisions: Sequence[StageDecision] = (),
        on_commit: Callable[[UnitOfWork, list[Order]], None] | None = None,
        parent_id: str | None = None,
    ) -> int:
        """Write orders the executor decided itself (exits, kill-switch closes, manual orders,
        algorithm slices with their ``parent_id``) ahead, with their decisions and under the
        lease, then submit them. An id already stored is not written again. Raises
        :class:`LeaseLost` (and writes nothing) without the lease, and
        :class:`OrderThrottled` (writing nothing) when a new-risk order among them would pass
        the order-rate limit."""
        now = self.clock.now()
        orders: list[Order] = []
        with self.store.unit_of_work() as uow:
            new = [r for r in requests if uow.orders.get(r.client_order_id) is None]
            entries = 0
            for request in new:
                if is_exempt(request):
                    continue
                limit = self.throttle(request, now, pending=entries)
                if not limit.allowed:
                    raise OrderThrottled(limit)
                entries += 1
            for request in new:
                orders.extend(self.write_ahead(uow, request, now, parent_id)[:1])
            if decisions:
                uow.decisions.add_many(list(decisions))
            if on_commit is not None:
                on_commit(uow, orders)
            if not orders and on_commit is None and not decisions:
                return 0
            if not self._renew_lease(uow, self.wall.now()):
                uow.rollback()
                for o in orders:
                    self.open_orders.pop(o.client_order_id, None)
                raise LeaseLost()
            uow.commit()
        await self.submit_all(orders)
        return len(orders)

    # ------------------------------------------------------------------ step 4: signals
    async def _context(self, now: datetime) -> PipelineContext:
        """Everything the stages look at, gathered once per batch."""
        if not self.pipeline_needs_market:
            return PipelineContext(
                now=now,
                account=None,
                positions=dict(self.journal.positions),
                kill_switch=self.kill_switch,
                known_symbols=self._known_symbols,
                default_qty=self.default_qty,
            )
        account = await self.broker.get_account()
        prices = {}
        for symbol in self._known_symbols:
            prices[symbol] = (await self.market.quote(symbol)).last
        adv = await self._adv_dollars(now, prices)
        ctx = PipelineContext(
            now=now,
            account=account,
            positions=dict(self.journal.positions),
            kill_switch=self.kill_switch,
            known_symbols=self._known_symbols,
            default_qty=self.default_qty,
            mode=self.instrument_mode,
            prices=prices,
            adv_dollars=adv,
            option_chain=self._option_chain(),
        )
        if self.risk_snapshot is not None:
            risk = self.risk_snapshot(self, account, now, ctx)
            ctx = replace(ctx, risk=risk)
        return ctx

    def _option_chain(self) -> Callable[[str, object], list] | None:
        """The market's option chains, when it quotes them (the simulated market does)."""
        chain = getattr(self.market, "option_chain", None)
        if chain is None:
            return None
        return lambda underlying, expiry: chain(underlying, expiry)

    async def _adv_dollars(self, now: datetime, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        """Average daily dollar volume per symbol, refreshed once per session day."""
        day = now.date()
        if self._adv_day != day:
            shares = {s: await self.market.average_daily_volume(s) for s in self._known_symbols}
            self._adv_cache = {s: shares[s] * prices[s] for s in shares}
            self._adv_day = day
        return self._adv_cache

    async def process_signals(self) -> int:
        """Route a batch of pending signals: write-ahead commit, then submit each order."""
        now = self.clock.now()
        picked_at = self.wall.now()
        to_submit: list[Order] = []
        with self.store.unit_of_work() as uow:
            signals = uow.signals.pending(self.max_signals_per_tick)
            if not signals:
                return 0
            ctx = await self._context(now)
            decisions: list[StageDecision] = []
            for signal in signals:
                assert signal.id is not None
                plan = self.pipeline.plan(signal, ctx)
                decisions.extend(plan.decisions)
                request = plan.request
                if request is not None and not is_exempt(request):
                    limit = self.throttle(request, now)
                    if not limit.allowed:
                        # rejected with its reason: a held entry would go out later at a price
                        # nobody chose
                        decisions.append(
                            StageDecision(
                                signal.id,
                                "rate_limit",
                                False,
                                now,
                                limit.reason,
                                {"retry_at": limit.retry_at.isoformat()} if limit.retry_at else {},
                            )
                        )
                        request, plan_reason = None, limit.reason
                    else:
                        plan_reason = plan.reason
                else:
                    plan_reason = plan.reason
                if request is None:
                    uow.signals.mark_rejected(signal.id, plan_reason or "rejected", now)
                    self.stats.signals_rejected += 1
                    continue
                try:
                    orders = self.write_ahead(uow, request, now)
                except DuplicateOrder:
                    # Cannot happen while signals are marked in the same transaction as their
                    # orders; if it does, the existing order stands and no second one is made.
                    uow.signals.mark_routed(signal.id, request.client_order_id, now)
                    continue
                uow.signals.mark_routed(signal.id, request.client_order_id, now)
                to_submit.append(orders[0])
                self.stats.signals_routed += 1
            uow.decisions.add_many(decisions)
            # Fencing: the lease is re-checked in the same transaction as the order rows.
            if to_submit and not self._renew_lease(uow, self.wall.now()):
                uow.rollback()
                await self._step_down("lease lost before write-ahead commit")
                return 0
            uow.commit()
        fail_point("after_write_ahead")
        await self.submit_all(to_submit, picked_at)
        return len(signals)

    def write_ahead(
        self, uow: UnitOfWork, request: OrderRequest, now: datetime, parent_id: str | None = None
    ) -> list[Order]:
        """Insert the order (and a bracket's legs) in ``pending_submit``; not yet committed."""
        order = Order(
            request, broker=self.broker.name, created_at=now, updated_at=now, parent_id=parent_id
        )
        order.transition(OrderStatus.PENDING_SUBMIT, now, "written ahead of submit")
        try:
            uow.orders.add(order)
        except ValueError as exc:  # the store's duplicate-key error is a ValueError
            raise DuplicateOrder(str(exc)) from exc
        orders = [order]
        if request.order_type is OrderType.BRACKET:
            orders.extend(self._bracket_legs(uow, order, now))
        for o in orders:
            self.open_orders[o.client_order_id] = o
        self.recent_fingerprints.append((request.symbol, request.side, request.qty, now))
        self.rate_limiter.record(request, now, account=self._account)
        return orders

    def _bracket_legs(self, uow: UnitOfWork, parent: Order, now: datetime) -> list[Order]:
        req = parent.request
        legs = bracket_leg_requests(req, req.qty)
        out = []
        for leg_req in legs:
            leg = Order(
                leg_req,
                broker=self.broker.name,
                created_at=now,
                updated_at=now,
                parent_id=req.client_order_id,
            )
            leg.transition(OrderStatus.PENDING_SUBMIT, now, "bracket leg written with its parent")
            uow.orders.add(leg)
            out.append(leg)
        return out

    async def submit_all(self, orders: Sequence[Order], picked_at: datetime | None = None) -> None:
        """Submit written-ahead orders and record the answers in one transaction."""
        if not orders:
            return
        changed: list[Order] = []
        # A broker that can batch its own persistence makes the batch durable once, before any
        # acknowledgement is recorded here (see PaperBroker.begin_batch).
        begin_batch = getattr(self.broker, "begin_batch", None)
        if begin_batch is not None:
            begin_batch()
        try:
            for order in orders:
                changed.extend(await self._submit_one(order))
                if self.record_latency and picked_at is not None:
                    self.stats.submit_latencies.append(
                        (self.wall.now() - picked_at).total_seconds()
                    )
        finally:
            if begin_batch is not None:
                try:
                    await self.broker.flush()  # type: ignore[attr-defined]
                except BrokerUnavailable as exc:
                    self.in_doubt.update(o.client_order_id for o in orders)
                    self._note_error(f"broker could not make the batch durable: {exc}")
                    return
        fail_point("after_submit")
        with self.store.unit_of_work() as uow:
            for order in changed:
                uow.orders.update(order)
            uow.commit()
        for order in changed:
            if order.status.is_terminal:
                self.open_orders.pop(order.client_order_id, None)

    async def _submit_one(self, order: Order) -> list[Order]:
        """Call the broker once. Returns the orders whose state changed."""
        legs = (
            [
                self.open_orders[c]
                for c in bracket_leg_ids(order.client_order_id)
                if c in self.open_orders
            ]
            if order.request.order_type is OrderType.BRACKET
            else []
        )
        try:
            ack: BrokerOrder = await self.broker.submit_order(order.request)
        except OrderRejected as exc:
            at = self.clock.now()
            self._note_broker(order, *legs)
            for o in (order, *legs):
                o.transition(
                    OrderStatus.REJECTED,
                    at,
                    exc.reason if o is order else f"parent rejected: {exc.reason}",
                )
            self.stats.orders_rejected += 1
            return [order, *legs]
        except BrokerUnavailable as exc:
            # Ambiguous: the broker may have it. Look it up by client order id next tick.
            self.in_doubt.add(order.client_order_id)
            if self._note_broker(order, *legs):
                changed = [order, *legs]
                self._note_error(f"submit of {order.client_order_id} ended ambiguously: {exc}")
                return changed
            self._note_error(f"submit of {order.client_order_id} ended ambiguously: {exc}")
            return []
        fail_point("after_broker_submit")
        at = self.clock.now()
        self._note_broker(order, *legs)
        order.broker_order_id = ack.broker_order_id
        self.stats.orders_submitted += 1
        self.advance(order, OrderStatus.SUBMITTED, at, "sent")
        if ack.status in (OrderStatus.ACCEPTED,):
            self.advance(order, OrderStatus.ACCEPTED, at, None)
        for leg in legs:
            self.advance(leg, OrderStatus.SUBMITTED, at, "held by the broker until the entry fills")
        return [order, *legs]

    def _note_broker(self, *orders: Order) -> bool:
        """Record which broker took the orders (a routing broker may have sent them to its
        fallback, or an exit to the broker holding the position); True if one changed."""
        broker_for = getattr(self.broker, "broker_for", None)
        if broker_for is None:
            return False
        changed = False
        for order in orders:
            name = broker_for(order.client_order_id)
            if name is not None and name != order.broker:
                order.broker = name
                changed = True
        return changed

    # ------------------------------------------------------------------ run loop
    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Tick until ``stop`` is set; ``wake`` (set by a command writer) skips the wait."""
        wake = wake or asyncio.Event()
        interval = self.config.tick_interval.total_seconds()
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except (
                    Exception
                ) as exc:  # keep the loop alive; the error is visible in the heartbeat
                    log.exception("tick failed")
                    self._note_error(f"tick failed: {type(exc).__name__}: {exc}")
                    if self.is_leader:
                        # In-memory caches may be ahead of a rolled-back transaction: drop them;
                        # the next tick reloads from the store and runs recovery again.
                        await self._step_down("recovering from a failed tick")
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                )
                for fut in (waiter, stopper):
                    fut.cancel()
                wake.clear()
        finally:
            await self.shutdown()


class ExecutorThread(threading.Thread):
    """Owns an asyncio loop, the broker connection and the executor (DESIGN §3)."""

    def __init__(self, make_executor: Callable[[], TradeExecutor], name: str = "axion-executor"):
        super().__init__(name=name, daemon=True)
        self._make_executor = make_executor
        self.executor: TradeExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._wake_event: asyncio.Event | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._wake_event = asyncio.Event()
        self.executor = self._make_executor()
        self.ready.set()
        await self.executor.run(self._stop_event, self._wake_event)

    def wake(self) -> None:
        """Thread-safe: run the next tick now (after a command was written)."""
        if self._loop is not None and self._wake_event is not None:
            self._loop.call_soon_threadsafe(self._wake_event.set)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout)


__all__ = [
    "DuplicateOrder",
    "ExecutorThread",
    "OrderThrottled",
    "SignalSource",
    "TickStats",
    "TradeExecutor",
]
