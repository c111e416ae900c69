"""Recovery and reconciliation against the broker.

* ``recover_in_flight`` (at start and after becoming leader): every order we hold as in flight is
  looked up at the broker by its client order id. Found: adopted, its fills recovered (fills are
  stored once by fill id, so recovery is idempotent). Not found and still ``pending_submit``: the
  broker never got it, so it is marked rejected with that reason; it is never re-sent blindly.
* ``resolve_in_doubt``: the same for orders whose submit ended ambiguously while running.
  An order whose broker cannot be asked (behind a router, the other broker may be up) stays in
  doubt and is asked again next tick; it never blocks the orders that can be resolved.
* ``reconcile``: positions and open orders compared with the broker's; each new difference is
  recorded in ``reconciliation_diffs`` and shown, never silently overwritten.
* ``adopt_position``: a person's decision (the ``adopt_broker_position`` command) to take the
  broker's quantity of a symbol as ours; recorded as a ``position_adopted`` row. A cancelled
  orphan order (``cancel_orphan_order``) is recorded as an ``orphan_cancelled`` row. These rows
  mark the earlier differences of the same key as resolved.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from core.domain import ZERO, BrokerOrder, Order, OrderStatus, Position, ReconciliationDiff
from core.ports import BrokerUnavailable, UnitOfWork

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.reconcile")

#: Differences the reconciler finds.
POSITION_MISMATCH = "position_mismatch"
UNKNOWN_AT_BROKER = "unknown_at_broker"
#: Rows recording how a person resolved a difference (by a command), and what each resolves.
POSITION_ADOPTED = "position_adopted"
ORPHAN_CANCELLED = "orphan_cancelled"
RESOLVES = {POSITION_ADOPTED: POSITION_MISMATCH, ORPHAN_CANCELLED: UNKNOWN_AT_BROKER}

_ADOPTABLE = {
    OrderStatus.ACCEPTED,
    OrderStatus.CANCELLED,
    OrderStatus.EXPIRED,
    OrderStatus.REJECTED,
}


class Reconciler:
    def __init__(self, executor: TradeExecutor):
        self.ex = executor
        self._seen: set[tuple[str, str, str | None, str | None]] = set()

    def record(
        self, uow: UnitOfWork, kind: str, key: str, ours: str | None, theirs: str | None
    ) -> bool:
        marker = (kind, key, ours, theirs)
        if marker in self._seen:
            return False
        self._seen.add(marker)
        uow.reconciliation.add(
            ReconciliationDiff(kind, key, ours, theirs, self.ex.clock.now(), self.ex.broker.name)
        )
        log.warning("reconciliation: %s %s ours=%s broker=%s", kind, key, ours, theirs)
        return True

    def resolved(
        self, uow: UnitOfWork, kind: str, key: str, ours: str | None, theirs: str | None
    ) -> None:
        """Record how a difference of ``key`` was resolved (``kind``: a key of
        :data:`RESOLVES`), and record the next difference of ``key`` again even if it repeats
        an earlier one."""
        self._seen = {m for m in self._seen if m[1] != key}
        uow.reconciliation.add(
            ReconciliationDiff(kind, key, ours, theirs, self.ex.clock.now(), self.ex.broker.name)
        )
        log.info("reconciliation: %s %s ours=%s broker=%s", kind, key, ours, theirs)

    def adopt_position(
        self, uow: UnitOfWork, symbol: str, theirs: Position | None, now: datetime
    ) -> str:
        """Write the broker's position of ``symbol`` (``theirs``, None when flat there) as ours,
        in ``uow`` (not committed), with a ``position_adopted`` row; returns what changed.

        The journal's open trade follows the new quantity when the position stays on the same
        side; a trade the adoption would close or reverse is left for a person to settle, since
        no fill says at what price it ended."""
        journal = self.ex.journal
        before = journal.positions.get(symbol)
        qty = theirs.qty if theirs is not None else ZERO
        after: Position | None = None
        if qty == 0:
            basis = before.avg_entry_price if before is not None else ZERO
            uow.positions.upsert(Position(symbol, ZERO, basis))  # zero deletes the row
            journal.positions.pop(symbol, None)
        else:
            assert theirs is not None
            same_side = before is not None and (before.qty > 0) == (qty > 0)
            after = Position(
                symbol,
                qty,
                theirs.avg_entry_price,
                theirs.current_price,
                before.instrument_type if before is not None else theirs.instrument_type,
                before.opened_at if same_side and before is not None else now,
                before.realized_pnl if before is not None else ZERO,
            )
            uow.positions.upsert(after)
            journal.positions[symbol] = after
        trade = journal.open_trades.get(symbol)
        trade_left = trade is not None
        if trade is not None and after is not None and after.side is trade.direction:
            trade.shares = abs(after.qty)
            uow.journal.update_trade(trade)
            trade_left = False
        was = "0" if before is None else str(before.qty)
        new = "0" if after is None else str(after.qty)
        self.resolved(uow, POSITION_ADOPTED, symbol, was, new)
        name = self.ex.broker.name
        if was == new:
            return f"{symbol}: the store already holds the {name} broker's {new}"
        result = f"{symbol}: {was} -> {new}, the {name} broker's quantity"
        if after is not None:
            result += f" at {after.avg_entry_price}"
        if trade_left:
            result += "; the journal's open trade was left as it was"
        return result

    async def broker_order(
        self, client_order_id: str | None, broker_order_id: str | None = None
    ) -> BrokerOrder | None:
        """The broker's order by client order id, else by the broker's own id."""
        if client_order_id:
            return await self.ex.broker.get_order(client_order_id)
        if broker_order_id:
            for order in await self.ex.broker.get_orders("all"):
                if order.broker_order_id == broker_order_id:
                    return order
        return None

    async def recover_in_flight(self) -> int:
        orders = sorted(self.ex.open_orders.values(), key=lambda o: o.is_bracket_leg)
        return await self._resolve(orders, after_restart=True)

    async def resolve_in_doubt(self) -> int:
        self.ex.in_doubt.intersection_update(self.ex.open_orders)
        orders = [self.ex.open_orders[c] for c in list(self.ex.in_doubt)]
        orders.sort(key=lambda o: o.is_bracket_leg)
        return await self._resolve(orders, after_restart=False)

    async def _resolve(self, orders: list[Order], after_restart: bool) -> int:
        """Look each order up; those whose broker cannot answer are kept in doubt, to be asked
        again next tick, and the others are resolved."""
        if not orders:
            return 0
        broker = self.ex.broker
        found_parents: set[str] = set()
        lookups = []
        unreachable: list[tuple[Order, BrokerUnavailable]] = []
        for order in orders:
            parent_unreachable = next(
                (exc for o, exc in unreachable if o.client_order_id == order.parent_id), None
            )
            if order.is_bracket_leg and parent_unreachable is not None:
                unreachable.append((order, parent_unreachable))  # the legs go with the parent
                continue
            try:
                remote = await broker.get_order(order.client_order_id)
                fills = (
                    await broker.get_fills(client_order_id=order.client_order_id) if remote else []
                )
            except BrokerUnavailable as exc:
                unreachable.append((order, exc))
                continue
            lookups.append((order, remote, fills))
            if remote is not None and not order.is_bracket_leg:
                found_parents.add(order.client_order_id)
        for order, exc in unreachable:
            self.ex.in_doubt.add(order.client_order_id)
            log.warning(
                "%s stays in doubt: its broker cannot be asked (%s)", order.client_order_id, exc
            )
        if not lookups:
            return 0
        now = self.ex.clock.now()
        why = "after restart" if after_restart else "after an ambiguous submit"
        with self.ex.store.unit_of_work() as uow:
            for order, remote, fills in lookups:
                if remote is None:
                    if order.is_bracket_leg and order.parent_id in found_parents:
                        self.ex.advance(
                            order,
                            OrderStatus.SUBMITTED,
                            now,
                            "held by the broker until the entry fills",
                        )
                    elif order.status is OrderStatus.PENDING_SUBMIT:
                        self.ex.advance(
                            order,
                            OrderStatus.REJECTED,
                            now,
                            f"not found at the broker {why}; never sent, not re-sent",
                        )
                    else:
                        self.record(
                            uow,
                            "missing_at_broker",
                            order.client_order_id,
                            order.status.value,
                            None,
                        )
                    uow.orders.update(order)
                    continue
                if not order.broker_order_id:
                    order.broker_order_id = remote.broker_order_id
                self.ex.advance(order, OrderStatus.SUBMITTED, now, f"adopted {why}")
                for fill in sorted(fills, key=lambda f: f.at):
                    self.ex.record_fill(uow, order, fill, None)
                if remote.status in _ADOPTABLE:
                    self.ex.advance(order, remote.status, now, remote.reason or f"adopted {why}")
                if remote.filled_qty != order.filled_qty:
                    self.record(
                        uow,
                        "fill_qty",
                        order.client_order_id,
                        str(order.filled_qty),
                        str(remote.filled_qty),
                    )
                uow.orders.update(order)
            uow.commit()
        for order, _, _ in lookups:
            self.ex.in_doubt.discard(order.client_order_id)
            if order.status.is_terminal:
                self.ex.open_orders.pop(order.client_order_id, None)
        return len(lookups)

    async def reconcile(self) -> int:
        """Compare positions and open orders with the broker; record new differences. Skipped
        while a broker behind a router cannot be asked: its part would show as differences."""
        if getattr(self.ex.broker, "degraded", False):
            log.info("reconciliation skipped: a broker cannot be asked")
            return 0
        broker_positions = {p.symbol: p for p in await self.ex.broker.get_positions()}
        broker_open = {o.client_order_id: o for o in await self.ex.broker.get_orders("open")}
        ours = self.ex.journal.positions
        recorded = 0
        with self.ex.store.unit_of_work() as uow:
            for symbol in sorted(set(ours) | set(broker_positions)):
                a = ours.get(symbol)
                b = broker_positions.get(symbol)
                qa = a.qty if a else None
                qb = b.qty if b else None
                if qa != qb:
                    recorded += self.record(
                        uow,
                        POSITION_MISMATCH,
                        symbol,
                        None if qa is None else str(qa),
                        None if qb is None else str(qb),
                    )
            for coid, order in self.ex.open_orders.items():
                if order.status in (OrderStatus.PENDING_SUBMIT,) or order.is_bracket_leg:
                    continue
                if coid not in broker_open:
                    remote = await self.ex.broker.get_order(coid)
                    recorded += self.record(
                        uow,
                        "order_status",
                        coid,
                        order.status.value,
                        remote.status.value if remote else None,
                    )
            for coid, remote in broker_open.items():
                if coid not in self.ex.open_orders:
                    recorded += self.record(uow, UNKNOWN_AT_BROKER, coid, None, remote.status.value)
            uow.commit()
        return recorded
