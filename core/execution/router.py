"""The smart order router (seed 000 R2.2): works parent orders through child orders, inside the
executor's tick.

Starting a parent (:meth:`SmartOrderRouter.start`) re-estimates the impact with the current
quote and ADV and picks the algorithm (:func:`~core.execution.impact.choose_algorithm`): TWAP or
VWAP above the ADV threshold, a passive limit above the cost threshold, market otherwise; a
symbol without an average daily volume (impact unknown) gets a passive limit. The
schedule is one slice for market and limit, ``slices`` slices ``slice_interval`` apart for TWAP,
and half-hour buckets over the rest of the session following the intraday volume profile for
VWAP.

Every child is a day limit order, written ahead like every other order, with ``parent_id`` set
and the id ``{parent}-{n}``:

* market and slices: a marketable limit at the last price ± ``limit_buffer_bps`` (a market
  order with a collar: it crosses the spread but cannot run through the book);
* passive limit: the near touch (bid for a buy, ask for a sell).

A child that is still working after ``chase_interval`` is re-priced one step toward the market
(:class:`~core.execution.chase.LimitChase`, bounded at ``chase_bound_bps`` from the arrival
price): the router cancels it and, once the broker confirmed the cancel (so its filled quantity
is final), sends the remainder at the new price. At the bound the child rests. When the next
slice falls due while a child is working, the child is cancelled and its remainder rides on the
next slice. At most one child works at a time, so the parent can never be over-filled. A
rebalance sell (a parent of a plan) only reduces a long position: a child never sells more than
the position holds when it is sent, and the parent ends when nothing is left to sell, so a
position that shrinks while the parent works (a person sold part of it) is not turned short.

A parent ends ``filled``; or, with the remainder unfilled, ``partially_filled`` / ``failed``
when the session closes, a child is rejected, or a person cancels a child; or ``cancelled`` when
the kill switch stops new risk (only parents that reduce a position keep working then).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from core.brokers.commission import CommissionSchedule
from core.brokers.rate_limit import is_exempt
from core.domain import (
    BPS,
    ZERO,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from core.execution.chase import LimitChase
from core.execution.config import ExecutionConfig
from core.execution.impact import (
    AlgoChoice,
    Algorithm,
    choose_algorithm,
    limit_price,
    passive_price,
)
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.schedule import (
    DEFAULT_U_PROFILE,
    Slice,
    profile_window,
    twap_schedule,
    vwap_schedule,
)
from core.execution.tca import aggregate_children
from core.ports import BrokerError, UnknownOrder

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.execution")

#: VWAP buckets: half-hour steps of the regular session, as in DEFAULT_U_PROFILE.
VWAP_BUCKET = timedelta(minutes=30)
#: Why an order on a symbol without an average daily volume is worked as a passive limit.
NO_VOLUME_REASON = "no average daily volume: impact not estimated; passive limit"


#: Marks the part of a parent's reason saying why its next slice waits.
HELD = "; held: "


def _without_hold(reason: str | None) -> str:
    """``reason`` without the note of a held slice."""
    if reason is None or reason.startswith(HELD[2:]):
        return ""
    return reason.split(HELD)[0]


class SmartOrderRouter:
    """Starts and works algorithm parents for one executor."""

    def __init__(
        self,
        executor: TradeExecutor,
        config: ExecutionConfig | None = None,
        commission: CommissionSchedule | None = None,
        volume_profile: Sequence[Decimal] | None = None,
    ) -> None:
        self.ex = executor
        self.config = config or ExecutionConfig()
        self.commission = commission
        #: Parents still working after the last :meth:`work` (None: not known yet); lets an
        #: idle executor tick skip the store.
        self.working: int | None = None
        #: Weights per half-hour bucket of the session (DEFAULT_U_PROFILE when None).
        self.volume_profile = tuple(volume_profile or DEFAULT_U_PROFILE)

    # ------------------------------------------------------------------ start
    async def start(
        self,
        parent_id: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        now: datetime,
        *,
        plan_id: int | None = None,
        strategy: str = "rebalance",
        sector: str | None = None,
        regime: str | None = None,
    ) -> ParentOrder:
        """Decide how to work ``qty`` of ``symbol`` and store the parent (children follow in
        :meth:`work`). Starting a parent id that exists returns the stored one."""
        with self.ex.store.unit_of_work(read_only=True) as uow:
            existing = uow.algos.get(parent_id)
        if existing is not None:
            return existing
        quote = await self.ex.market.quote(symbol)
        adv = await self.ex.market.average_daily_volume(symbol)
        if adv is None or adv <= 0:
            choice = self._without_volume(qty, quote.last)
        else:
            vwap_ok = self.config.slice_algorithm == "vwap" and self._vwap_window(now) is not None
            choice = choose_algorithm(
                qty,
                quote.last,
                adv,
                bid=quote.bid,
                ask=quote.ask,
                config=self.config,
                volume_profile_available=vwap_ok,
                commission=self.commission,
            )
        parent = ParentOrder(
            parent_id=parent_id,
            symbol=symbol,
            side=side,
            qty=qty,
            algorithm=choice.algorithm.value,
            arrival_price=quote.last,
            created_at=now,
            schedule=self._schedule(choice.algorithm, qty, now),
            plan_id=plan_id,
            expected_cost_bps=choice.expected_cost_bps,
            strategy=strategy,
            sector=sector,
            regime=regime,
            reason=choice.reason,
            updated_at=now,
        )
        parent.bound_price = LimitChase.from_config(
            side, quote.last, quote.last, self.config
        ).bound_price
        with self.ex.store.unit_of_work() as uow:
            uow.algos.add(parent)
            uow.commit()
        self.working = None
        log.info("%s %s %s %s: %s", parent_id, side.value, qty, symbol, choice.reason)
        return parent

    def _without_volume(self, qty: Decimal, price: Decimal) -> AlgoChoice:
        """Without an average daily volume the impact cannot be modelled: the order is worked
        passively (as the rebalancing engine plans it), expecting only its commission."""
        fee = ZERO if self.commission is None else self.commission.estimate(qty, price)
        cost = (fee / (qty * price) * BPS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return AlgoChoice(Algorithm.LIMIT, ZERO, cost, NO_VOLUME_REASON)

    def _vwap_window(self, now: datetime) -> tuple[int, int] | None:
        """(first bucket, bucket count) of the session still ahead, or None outside it."""
        cal = self.ex.market.calendar
        session = cal.session_date(now)
        if session is None:
            return None
        opened, closes = cal.session_open(session), cal.session_close(session)
        first = int((now - opened) / VWAP_BUCKET)
        last = int((closes - opened - timedelta(microseconds=1)) / VWAP_BUCKET)
        last = min(last, len(self.volume_profile) - 1)
        if first > last:
            return None
        return first, last - first + 1

    def _schedule(self, algorithm: Algorithm, qty: Decimal, now: datetime) -> list[Slice]:
        cfg = self.config
        if algorithm is Algorithm.TWAP:
            return twap_schedule(
                qty, now, slices=cfg.slices, interval=cfg.slice_interval, fractional=cfg.fractional
            )
        if algorithm is Algorithm.VWAP:
            window = self._vwap_window(now)
            assert window is not None  # chosen only when there is one
            profile = profile_window(self.volume_profile, *window)
            return vwap_schedule(
                qty, now, profile=profile, interval=VWAP_BUCKET, fractional=cfg.fractional
            )
        return [Slice(0, now, qty)]

    # ------------------------------------------------------------------ work
    async def work(self, now: datetime) -> int:
        """One step for every working parent; returns how many children were sent."""
        with self.ex.store.unit_of_work(read_only=True) as uow:
            parents = uow.algos.working()
            children = {p.parent_id: uow.orders.children(p.parent_id) for p in parents}
            fills = {
                p.parent_id: sum(
                    (
                        f.commission
                        for c in children[p.parent_id]
                        for f in uow.fills.for_order(c.client_order_id)
                    ),
                    ZERO,
                )
                for p in parents
            }
        sent = 0
        for parent in parents:
            parent.commission = fills[parent.parent_id]
            sent += await self._step(parent, children[parent.parent_id], now)
        self.working = sum(1 for p in parents if not p.status.is_terminal)
        return sent

    async def _step(self, parent: ParentOrder, children: list[Order], now: datetime) -> int:
        self._roll_up(parent, children)
        working = [c for c in children if not c.status.is_terminal]
        sent = 0
        if parent.filled_qty >= parent.qty:
            self._finish(parent, ParentStatus.FILLED, "filled", now)
        elif self._stopped_by_kill_switch(parent):
            if working:
                await self._cancel(parent, working[0])
            else:
                self._finish_unfilled(parent, "kill switch on: no new risk", now, cancelled=True)
        elif working:
            await self._tend(parent, working[0], now)
        else:
            sent = await self._next_child(parent, children, now)
        parent.updated_at = now
        with self.ex.store.unit_of_work() as uow:
            uow.algos.update(parent)
            uow.commit()
        return sent

    def _roll_up(self, parent: ParentOrder, children: list[Order]) -> None:
        cumulative, done, total = ZERO, 0, len(parent.schedule)
        progress = aggregate_children(
            parent.side,
            parent.qty,
            parent.arrival_price,
            [(c.filled_qty, c.avg_fill_price) for c in children],
            0,
            total,
        )
        for s in parent.schedule:
            cumulative += s.qty
            if cumulative <= progress.filled_qty:
                done += 1
        parent.filled_qty = progress.filled_qty
        parent.avg_price = progress.avg_price
        parent.slippage_bps = progress.slippage_bps
        parent.slices_done = done

    def _reduces_position(self, parent: ParentOrder) -> bool:
        pos = self.ex.journal.positions.get(parent.symbol)
        return pos is not None and (pos.qty > 0) == (parent.side is Side.SELL)

    def _stopped_by_kill_switch(self, parent: ParentOrder) -> bool:
        return self.ex.kill_switch.active and not self._reduces_position(parent)

    async def _tend(self, parent: ParentOrder, child: Order, now: datetime) -> None:
        """A child is working: fold it into a due slice, chase it, or let it rest."""
        if parent.cancelling == child.client_order_id:
            return  # the cancel is on its way
        if not self.ex.market.calendar.is_open(now):
            await self._cancel(parent, child)
            return
        due = parent.slices_sent < len(parent.schedule) and (
            parent.schedule[parent.slices_sent].at <= now
        )
        if due:
            parent.chase_price = None
            await self._cancel(parent, child)
            return
        if parent.next_chase_at is None or now < parent.next_chase_at:
            return
        current = child.request.limit_price
        assert current is not None
        quote = await self.ex.market.quote(parent.symbol)
        chase = LimitChase(
            parent.side,
            parent.arrival_price,
            min(current, parent.bound_price or current)
            if parent.side is Side.BUY
            else max(current, parent.bound_price or current),
            self.config.chase_step_bps,
            self.config.chase_bound_bps,
        )
        nxt = chase.next_price(current, quote.bid, quote.ask)
        parent.next_chase_at = now + self.config.chase_interval
        if nxt is None or nxt == current:
            return  # at the bound (or already marketable): it rests
        parent.chase_price = nxt
        await self._cancel(parent, child)

    async def _cancel(self, parent: ParentOrder, child: Order) -> None:
        if parent.cancelling == child.client_order_id:
            return
        try:
            await self.ex.broker.cancel_order(child.client_order_id)
        except UnknownOrder:
            log.warning("cancel of %s: unknown at the broker", child.client_order_id)
        except BrokerError as exc:  # it stays working; tried again next time
            log.warning("cancel of %s failed: %s", child.client_order_id, exc)
            return
        parent.cancelling = child.client_order_id

    async def _next_child(self, parent: ParentOrder, children: list[Order], now: datetime) -> int:
        """No child is working: send the next one, or finish."""
        last = max(children, key=lambda c: c.created_at, default=None)
        ours = parent.cancelling
        parent.cancelling = None
        if last is not None and last.filled_qty < last.request.qty:
            if last.status is OrderStatus.REJECTED:
                self._finish_unfilled(
                    parent,
                    f"child {last.client_order_id} rejected: {last.reason or 'no reason given'}",
                    now,
                )
                return 0
            if last.status is OrderStatus.CANCELLED and last.client_order_id != ours:
                self._finish_unfilled(
                    parent,
                    f"child {last.client_order_id} was cancelled outside the router",
                    now,
                    cancelled=True,
                )
                return 0
        if not self.ex.market.calendar.is_open(now):
            self._finish_unfilled(parent, "the session closed before the order completed", now)
            return 0
        while (
            parent.slices_sent < len(parent.schedule)
            and parent.schedule[parent.slices_sent].at <= now
        ):
            parent.slices_sent += 1
        released = sum((s.qty for s in parent.schedule[: parent.slices_sent]), ZERO)
        qty = released - parent.filled_qty
        if qty <= 0:
            return 0  # the next slice is not due yet
        if parent.plan_id is not None and parent.side is Side.SELL:
            # a rebalance sell reduces a long position: never past it, into a short
            pos = self.ex.journal.positions.get(parent.symbol)
            held = pos.qty if pos is not None and pos.qty > 0 else ZERO
            if held <= 0:
                self._finish_unfilled(parent, f"no {parent.symbol} position left to sell", now)
                return 0
            qty = min(qty, held)
        quote = await self.ex.market.quote(parent.symbol)
        price = self._child_price(parent, quote)
        request = OrderRequest(
            client_order_id=parent.child_id(parent.children_sent + 1),
            symbol=parent.symbol,
            side=parent.side,
            qty=qty,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.DAY,
            limit_price=price,
            reduce_only=self._reduces_position(parent)
            and qty <= abs(self.ex.journal.positions[parent.symbol].qty),
        )
        if not is_exempt(request):
            limit = self.ex.throttle(request, now)
            if not limit.allowed:
                # held, with its reason, until the order-rate limit has a slot: the slice goes
                # out on a later tick at that tick's price
                base = _without_hold(parent.reason)
                held = f"{base}{HELD}{limit.reason}" if base else f"{HELD[2:]}{limit.reason}"
                if parent.reason != held:
                    parent.reason = held
                    log.info("%s held: %s", parent.parent_id, limit.reason)
                return 0
        parent.children_sent += 1
        parent.chase_price = None
        parent.next_chase_at = now + self.config.chase_interval
        if parent.limit_price is None:
            parent.limit_price = price
        if parent.reason is not None and _without_hold(parent.reason) != parent.reason:
            parent.reason = _without_hold(parent.reason) or None
        written = await self.ex.write_and_submit([request], parent_id=parent.parent_id)
        return written

    def _child_price(self, parent: ParentOrder, quote: Quote) -> Decimal:
        if parent.chase_price is not None:
            return parent.chase_price
        if parent.algorithm == Algorithm.LIMIT.value and parent.children_sent == 0:
            return passive_price(parent.side, quote.bid, quote.ask, quote.last)
        price = limit_price(parent.side, quote.last, self.config.limit_buffer_bps)
        bound = parent.bound_price
        if bound is not None:  # a marketable child never goes past the chase bound either
            price = min(price, bound) if parent.side is Side.BUY else max(price, bound)
        return price

    def _finish_unfilled(
        self, parent: ParentOrder, reason: str, now: datetime, cancelled: bool = False
    ) -> None:
        if parent.filled_qty > 0:
            status = ParentStatus.PARTIALLY_FILLED
        else:
            status = ParentStatus.CANCELLED if cancelled else ParentStatus.FAILED
        self._finish(parent, status, reason, now)

    def _finish(
        self, parent: ParentOrder, status: ParentStatus, reason: str, now: datetime
    ) -> None:
        parent.status = status
        parent.reason = reason if status is not ParentStatus.FILLED else parent.reason
        parent.cancelling = None
        parent.next_chase_at = None
        parent.updated_at = now
        log.info(
            "%s %s: %s of %s filled (%s)",
            parent.parent_id,
            status.value,
            parent.filled_qty,
            parent.qty,
            reason,
        )


__all__ = ["VWAP_BUCKET", "SmartOrderRouter"]
