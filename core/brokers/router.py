"""The order router: one :class:`~core.ports.Broker` over a primary and an optional fallback.

Routing rules (the product rule above all: **no path may duplicate an order**):

* **New orders** go to the primary while it is up, to the fallback while the primary is down.
  A broker is *up* when it reports ``connected`` and its last call did not fail with
  :class:`~core.ports.BrokerUnavailable`; any call that succeeds marks it up again (``updates``
  polls both every tick, so a recovered primary takes new orders again from the next tick).
* **Business rejections never fail over**: :class:`~core.ports.OrderRejected` from a broker is
  raised to the caller as it is.
* **Failover on submit happens only when the broker certainly never got the order**: it was not
  connected (so the order was not sent to it), or the adapter raised :class:`BrokerNotReached`
  (or a ``BrokerUnavailable`` with ``sent = False``), meaning the request never left this
  process. Any other ``BrokerUnavailable`` is ambiguous: the router asks that same broker
  ``get_order(client_order_id)``; if the broker has it, that is the answer (its rejection is
  raised as ``OrderRejected``); if the broker cannot answer, *or answers that it does not have
  it* (a request may still be in flight), the router raises ``BrokerUnavailable`` and the order
  stays in doubt **at that broker** -- it is never sent anywhere else. The caller resolves it
  later by ``get_order``, which the router sends to that broker only.
* **Every client order id is tied to one broker** from its first attempt: the broker that took
  it, or the one where its outcome is in doubt (bracket legs go with their parent). ``submit``
  of the same id again, ``cancel_order``, ``get_order`` and ``get_fills`` go to that broker and
  nowhere else; ``broker_for`` tells which.
* **Exits follow the position**: with a fallback configured, a ``reduce_only`` order goes to the
  broker whose position it reduces (positions opened on the fallback during an outage are
  closed there). When no reachable broker holds the position and one broker cannot be asked,
  the exit waits (``BrokerUnavailable``) rather than open a position elsewhere.

Merged views:

* ``get_account``: the primary's while it is up, else the fallback's. Accounts are not added:
  buying power and day-trade counts belong to one account.
* ``get_positions``: positions of every broker that answers, summed per symbol (the executor's
  own books hold the fills of both); ``positions_by_broker`` gives them apart.
* ``get_orders``, ``get_fills`` (without an order id) and ``updates``: merged from every broker
  that answers, oldest first; ``BrokerUnavailable`` only when none answers.
* ``cancel_all`` asks every broker and raises ``BrokerUnavailable`` if one could not be asked.

Connectivity timing (kill-switch trigger 3: more than 60 s without *any* broker):
``down_since`` is when the router last saw no broker up (None while one is up) and
``outage(now)`` how long that has lasted. Listeners (the kill-switch monitor has the right
shape: ``broker_down(now)`` / ``broker_up()``) are told on every call the router observes:
``broker_up()`` while some broker is up, ``broker_down(down_since)`` while none is. The signal
is level-triggered, so a listener that was reset is brought up to date by the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from core.domain import (
    ZERO,
    AccountState,
    BrokerEvent,
    BrokerOrder,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    bracket_leg_ids,
)
from core.ports import Broker, BrokerUnavailable, Clock, OrderRejected, UnknownOrder

log = logging.getLogger("axion.router")

PRIMARY = "primary"
FALLBACK = "fallback"


class BrokerNotReached(BrokerUnavailable):
    """The request never left this process: no connection could be made (refused, DNS, not
    connected), so the broker certainly did not receive it.

    Adapters raise it only when that is certain; it is what allows the router to send a new
    order to the fallback. Setting ``sent = False`` on a plain ``BrokerUnavailable`` means the
    same.
    """

    sent = False


def never_sent(exc: BrokerUnavailable) -> bool:
    """True if ``exc`` says the request certainly did not reach the broker."""
    return isinstance(exc, BrokerNotReached) or getattr(exc, "sent", None) is False


class ConnectivityListener(Protocol):
    """Told whether any broker is reachable (the kill-switch monitor implements it)."""

    def broker_down(self, now: datetime) -> None: ...

    def broker_up(self) -> None: ...


@dataclass(slots=True)
class _Route:
    """One broker behind the router and what the router has seen of it."""

    broker: Broker
    role: str
    failed_at: datetime | None = None
    last_error: str | None = None
    last_reconnect: datetime | None = None

    @property
    def name(self) -> str:
        return self.broker.name

    @property
    def up(self) -> bool:
        return self.broker.connected and self.failed_at is None


class OrderRouter:
    """See the module docstring. ``clock`` times outages; ``reconnect_every`` is how often
    ``updates`` tries ``connect()`` on a broker that reports itself disconnected (None: never,
    for adapters that reconnect by themselves)."""

    def __init__(
        self,
        primary: Broker,
        fallback: Broker | None = None,
        *,
        clock: Clock,
        reconnect_every: timedelta | None = timedelta(seconds=5),
        listeners: Iterable[ConnectivityListener] = (),
    ) -> None:
        if fallback is not None and fallback.name == primary.name:
            raise ValueError(
                f"primary and fallback brokers need different names (both are {primary.name!r})"
            )
        if fallback is not None and fallback is primary:
            raise ValueError("the fallback must be a different broker from the primary")
        self.clock = clock
        self.reconnect_every = reconnect_every
        self._routes = [_Route(primary, PRIMARY)]
        if fallback is not None:
            self._routes.append(_Route(fallback, FALLBACK))
        self._listeners: list[ConnectivityListener] = list(listeners)
        self._owner: dict[str, _Route] = {}
        self._started = False
        #: When the router last saw no broker up; None while one is up (or before connect).
        self.down_since: datetime | None = None
        #: Called with the active broker's name whenever new orders start going elsewhere.
        self.on_switch: Callable[[str], None] | None = None
        self._active_name = primary.name

    # ------------------------------------------------------------------ state
    @property
    def primary(self) -> Broker:
        return self._routes[0].broker

    @property
    def fallback(self) -> Broker | None:
        return self._routes[1].broker if len(self._routes) > 1 else None

    @property
    def active(self) -> Broker:
        """The broker new orders go to now (the primary when none is up)."""
        for route in self._routes:
            if route.up:
                return route.broker
        return self._routes[0].broker

    @property
    def name(self) -> str:
        """The active broker's name."""
        return self.active.name

    @property
    def connected(self) -> bool:
        """True while any broker is up."""
        return any(route.up for route in self._routes)

    @property
    def degraded(self) -> bool:
        """True while some broker behind the router is not up (its views are missing)."""
        return not all(route.up for route in self._routes)

    def outage(self, now: datetime) -> timedelta:
        """How long no broker has been up at ``now`` (zero while one is)."""
        if self.down_since is None:
            return timedelta(0)
        return max(timedelta(0), now - self.down_since)

    def broker_for(self, client_order_id: str) -> str | None:
        """Name of the broker that took the order (or where its outcome is in doubt)."""
        route = self._owner.get(client_order_id)
        return None if route is None else route.name

    def remember(self, client_order_id: str, broker_name: str) -> None:
        """Tie an order to a broker known from elsewhere (the executor's stored record after a
        restart), so lookups need not ask every broker."""
        for route in self._routes:
            if route.name == broker_name:
                self._claim(client_order_id, route)
                return
        raise ValueError(f"no broker named {broker_name!r} behind this router")

    def add_listener(self, listener: ConnectivityListener) -> None:
        self._listeners.append(listener)
        self._notify()

    def status(self) -> dict[str, Any]:
        """For the heartbeat and the dashboard: each broker's state and the outage."""
        return {
            "active": self.name,
            "down_since": None if self.down_since is None else self.down_since.isoformat(),
            "brokers": [
                {
                    "name": r.name,
                    "role": r.role,
                    "connected": r.broker.connected,
                    "up": r.up,
                    "failed_at": None if r.failed_at is None else r.failed_at.isoformat(),
                    "last_error": r.last_error,
                }
                for r in self._routes
            ],
        }

    def refresh(self) -> None:
        """Re-read the brokers' ``connected`` flags (no I/O) and update the outage timing."""
        self._observe()

    def _mark_ok(self, route: _Route) -> None:
        route.failed_at = None
        route.last_error = None
        self._observe()

    def _mark_failed(self, route: _Route, exc: BaseException | str) -> None:
        if route.failed_at is None:
            route.failed_at = self.clock.now()
            log.warning("broker %s (%s) unavailable: %s", route.name, route.role, exc)
        route.last_error = str(exc)
        self._observe()

    def _observe(self) -> None:
        if not self._started:
            return
        active = self.name
        if active != self._active_name:
            log.warning("new orders now go to %s (was %s)", active, self._active_name)
            self._active_name = active
            if self.on_switch is not None:
                self.on_switch(active)
        if self.connected:
            if self.down_since is not None:
                log.warning(
                    "broker connectivity restored after %s", self.clock.now() - self.down_since
                )
            self.down_since = None
        elif self.down_since is None:
            self.down_since = self.clock.now()
            log.error("no broker is reachable")
        self._notify()

    def _notify(self) -> None:
        if not self._started:
            return
        for listener in self._listeners:
            if self.down_since is None:
                listener.broker_up()
            else:
                listener.broker_down(self.down_since)

    def _claim(self, request_or_id: OrderRequest | str, route: _Route) -> None:
        if isinstance(request_or_id, OrderRequest):
            coid = request_or_id.client_order_id
            self._owner.setdefault(coid, route)
            if request_or_id.order_type is OrderType.BRACKET:
                for leg in bracket_leg_ids(coid):
                    self._owner.setdefault(leg, route)
        else:
            self._owner.setdefault(request_or_id, route)

    def _candidates(self) -> list[_Route]:
        """Connected brokers in the order to try them: those up first (primary before
        fallback), then those whose last call failed."""
        connected = [r for r in self._routes if r.broker.connected]
        return [r for r in connected if r.failed_at is None] + [
            r for r in connected if r.failed_at is not None
        ]

    # ------------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        """Connect every broker; ``BrokerUnavailable`` only if none could be connected."""
        errors = []
        for route in self._routes:
            try:
                await route.broker.connect()
            except BrokerUnavailable as exc:
                errors.append(f"{route.name}: {exc}")
                self._mark_failed(route, exc)
            else:
                self._mark_ok(route)
        self._started = True  # timed from here: a broker still connecting is not an outage
        self._observe()
        if not self.connected:
            raise BrokerNotReached("no broker could be connected: " + "; ".join(errors))

    async def close(self) -> None:
        """Close every broker. A deliberate close is not an outage: timing stops."""
        self._started = False
        self.down_since = None
        for route in self._routes:
            await route.broker.close()

    def begin_batch(self) -> None:
        """Forwarded to brokers that batch their own persistence (the paper broker)."""
        for route in self._routes:
            begin = getattr(route.broker, "begin_batch", None)
            if begin is not None:
                begin()

    async def flush(self) -> None:
        for route in self._routes:
            flush = getattr(route.broker, "flush", None)
            if flush is not None:
                await flush()

    # ------------------------------------------------------------------ orders
    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Send a new order by the rules in the module docstring."""
        coid = request.client_order_id
        owner = self._owner.get(coid)
        if owner is not None:
            # the same id again: only where it went first (that broker refuses a duplicate)
            if not owner.broker.connected:
                raise BrokerNotReached(f"{owner.name} holds {coid} and is not connected")
            return await self._submit_at(owner, request)
        candidates = self._candidates()
        if request.reduce_only and len(self._routes) > 1:
            candidates = await self._exit_candidates(request, candidates)
        if not candidates:
            self._observe()
            raise BrokerNotReached(f"no broker is connected to take {coid}")
        errors = []
        for route in candidates:
            try:
                return await self._submit_at(route, request)
            except BrokerUnavailable as exc:
                if not never_sent(exc):
                    raise
                errors.append(f"{route.name}: {exc}")
        raise BrokerNotReached(f"no broker took {coid}: " + "; ".join(errors))

    async def _submit_at(self, route: _Route, request: OrderRequest) -> BrokerOrder:
        try:
            ack = await route.broker.submit_order(request)
        except OrderRejected:
            self._claim(request, route)
            self._mark_ok(route)  # it answered: a rejection is not a connectivity problem
            raise
        except BrokerUnavailable as exc:
            if never_sent(exc):
                self._mark_failed(route, exc)
                raise
            self._claim(request, route)
            # whether the broker is reachable is what the lookup shows
            return await self._resolve_ambiguous(route, request, exc)
        self._claim(request, route)
        self._mark_ok(route)
        return ack

    async def _resolve_ambiguous(
        self, route: _Route, request: OrderRequest, exc: BrokerUnavailable
    ) -> BrokerOrder:
        """After an ambiguous submit: ask the same broker, never send elsewhere."""
        coid = request.client_order_id
        try:
            found = await route.broker.get_order(coid)
        except BrokerUnavailable as lookup_exc:
            self._mark_failed(route, lookup_exc)
            raise BrokerUnavailable(
                f"submit of {coid} to {route.name} ended ambiguously ({exc}) and "
                f"{route.name} cannot say whether it has it ({lookup_exc}); the order is in "
                f"doubt at {route.name} and is not sent to another broker"
            ) from exc
        self._mark_ok(route)
        if found is None:
            raise BrokerUnavailable(
                f"submit of {coid} to {route.name} ended ambiguously ({exc}); {route.name} "
                f"does not show it, but the request may still arrive, so it is in doubt at "
                f"{route.name} and is not sent to another broker"
            ) from exc
        if found.status is OrderStatus.REJECTED:
            raise OrderRejected(found.reason or f"rejected by {route.name}", "rejected")
        return found

    async def _exit_candidates(
        self, request: OrderRequest, candidates: list[_Route]
    ) -> list[_Route]:
        """The broker(s) holding the position a reduce-only order reduces, primary first."""
        want_sign = -request.side.sign  # a sell reduces a long (positive) position
        full: list[_Route] = []  # can absorb the whole exit
        partial: list[_Route] = []
        unknown = False
        for route in self._routes:
            if not route.broker.connected:
                unknown = True
                continue
            try:
                positions = await route.broker.get_positions()
            except BrokerUnavailable as exc:
                self._mark_failed(route, exc)
                unknown = True
                continue
            self._mark_ok(route)
            for pos in positions:
                if pos.symbol == request.symbol and pos.qty * want_sign > 0:
                    (full if abs(pos.qty) >= request.qty else partial).append(route)
                    break
        holders = full + partial  # routes are visited primary first
        if holders:
            return [r for r in holders if r.broker.connected]
        if unknown:
            raise BrokerUnavailable(
                f"exit {request.client_order_id}: no reachable broker holds a {request.symbol} "
                f"position it reduces and a broker that may hold it cannot be asked; the exit "
                f"waits rather than open a position elsewhere"
            )
        return candidates  # nobody holds it: the broker's own reduce-only check will refuse

    async def cancel_order(self, client_order_id: str) -> bool:
        """Cancel at the broker that took the order; ``UnknownOrder`` if no broker has it."""
        route = await self._locate(client_order_id)
        if route is None:
            raise UnknownOrder(f"no broker has an order {client_order_id!r}")
        try:
            result = await route.broker.cancel_order(client_order_id)
        except BrokerUnavailable as exc:
            self._mark_failed(route, exc)
            raise
        self._mark_ok(route)
        return result

    async def cancel_all(self) -> int:
        """Cancel every open order at every broker; the total."""
        total = 0
        errors = []
        for route in self._routes:
            if not route.broker.connected:
                errors.append(f"{route.name}: not connected")
                continue
            try:
                total += await route.broker.cancel_all()
            except BrokerUnavailable as exc:
                self._mark_failed(route, exc)
                errors.append(f"{route.name}: {exc}")
            else:
                self._mark_ok(route)
        if errors:
            raise BrokerUnavailable(
                f"cancel all: {total} orders cancelled, but not every broker could be asked: "
                + "; ".join(errors)
            )
        return total

    async def _locate(self, client_order_id: str) -> _Route | None:
        """The broker holding ``client_order_id`` (asking them if the router does not know);
        None only when every broker answered that it has no such order."""
        owner = self._owner.get(client_order_id)
        if owner is not None:
            if not owner.broker.connected:
                raise BrokerUnavailable(
                    f"{owner.name} holds {client_order_id} and is not connected"
                )
            return owner
        found = await self._lookup_everywhere(client_order_id)
        return None if found is None else found[0]

    async def _lookup_everywhere(self, client_order_id: str) -> tuple[_Route, BrokerOrder] | None:
        await self._reconnect_disconnected()  # every broker must answer before "not found"
        errors = []
        for route in self._routes:
            if not route.broker.connected:
                errors.append(f"{route.name}: not connected")
                continue
            try:
                order = await route.broker.get_order(client_order_id)
            except BrokerUnavailable as exc:
                self._mark_failed(route, exc)
                errors.append(f"{route.name}: {exc}")
                continue
            self._mark_ok(route)
            if order is not None:
                self._claim(client_order_id, route)
                return route, order
        if errors:
            # "not found" from some brokers proves nothing while another cannot be asked
            raise BrokerUnavailable(f"cannot tell where {client_order_id} is: " + "; ".join(errors))
        return None

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order from the broker that took it; None only if every broker says it never
        saw it (or, for an order tied to one broker, that broker says so)."""
        owner = self._owner.get(client_order_id)
        if owner is None:
            found = await self._lookup_everywhere(client_order_id)
            return None if found is None else found[1]
        if not owner.broker.connected:
            self._observe()
            raise BrokerUnavailable(f"{owner.name} holds {client_order_id} and is not connected")
        try:
            order = await owner.broker.get_order(client_order_id)
        except BrokerUnavailable as exc:
            self._mark_failed(owner, exc)
            raise
        self._mark_ok(owner)
        return order

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        """One order's fills from its broker, or every broker's fills merged by time."""
        if client_order_id is not None:
            route = await self._locate(client_order_id)
            if route is None:
                return []
            routes = [route]
        else:
            routes = self._routes
        results = await self._gather(routes, lambda b: b.get_fills(client_order_id, since))
        fills = [f for _, batch in results for f in batch]
        fills.sort(key=lambda f: f.at)
        return fills

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        """Orders of every broker that answers (each remembered as that broker's)."""
        results = await self._gather(self._routes, lambda b: b.get_orders(status))
        merged: list[BrokerOrder] = []
        for route, orders in results:
            for order in orders:
                self._claim(order.client_order_id, route)
                merged.append(order)
        return merged

    # ------------------------------------------------------------------ account views
    async def get_account(self) -> AccountState:
        """The primary's account while it is up, else the fallback's."""
        errors = []
        for route in self._candidates():
            try:
                account = await route.broker.get_account()
            except BrokerUnavailable as exc:
                self._mark_failed(route, exc)
                errors.append(f"{route.name}: {exc}")
                continue
            self._mark_ok(route)
            return account
        self._observe()
        raise BrokerUnavailable("no broker answered for the account: " + "; ".join(errors))

    async def positions_by_broker(self) -> dict[str, list[Position]]:
        """Each answering broker's positions, by broker name."""
        results = await self._gather(self._routes, lambda b: b.get_positions())
        return {route.name: positions for route, positions in results}

    async def get_positions(self) -> list[Position]:
        """Positions of every broker that answers, summed per symbol."""
        by_symbol: dict[str, list[Position]] = {}
        for positions in (await self.positions_by_broker()).values():
            for pos in positions:
                by_symbol.setdefault(pos.symbol, []).append(pos)
        return [merge_positions(parts) for parts in by_symbol.values()]

    async def updates(self) -> list[BrokerEvent]:
        """Events from every broker that answers, oldest first. Also the health check: a
        broker that answers is up again, and a disconnected one is reconnected (at most every
        ``reconnect_every``)."""
        await self._reconnect_disconnected()
        results = await self._gather(self._routes, lambda b: b.updates())
        events: list[BrokerEvent] = []
        for route, batch in results:
            for event in batch:
                self._claim(event.client_order_id, route)
            events.extend(batch)
        events.sort(key=lambda e: e.at)  # stable: each broker's own order is kept
        return events

    async def _reconnect_disconnected(self) -> None:
        if self.reconnect_every is None or not self._started:
            return
        now = self.clock.now()
        for route in self._routes:
            if route.broker.connected:
                continue
            if (
                route.last_reconnect is not None
                and now - route.last_reconnect < self.reconnect_every
            ):
                continue
            route.last_reconnect = now
            try:
                await route.broker.connect()
            except BrokerUnavailable as exc:
                self._mark_failed(route, exc)
            else:
                if route.broker.connected:
                    log.warning("broker %s reconnected", route.name)
                    self._mark_ok(route)

    async def _gather(
        self, routes: Iterable[_Route], call: Callable[[Broker], Any]
    ) -> list[tuple[_Route, Any]]:
        """``call`` on each connected route; the answers, or ``BrokerUnavailable`` if none
        answered."""
        results = []
        errors = []
        for route in routes:
            if not route.broker.connected:
                self._mark_failed(route, "not connected")
                errors.append(f"{route.name}: not connected")
                continue
            try:
                value = await call(route.broker)
            except BrokerUnavailable as exc:
                self._mark_failed(route, exc)
                errors.append(f"{route.name}: {exc}")
                continue
            self._mark_ok(route)
            results.append((route, value))
        if not results:
            self._observe()
            raise BrokerUnavailable("no broker answered: " + "; ".join(errors))
        return results


def merge_positions(parts: list[Position]) -> Position:
    """One symbol's positions at several brokers as one: quantities and realized P&L added,
    entry price averaged by quantity over the parts on the net side."""
    if len(parts) == 1:
        return parts[0]
    qty = sum((p.qty for p in parts), ZERO)
    side = [p for p in parts if (p.qty > 0) == (qty > 0) and p.qty != 0] or parts
    weight = sum((abs(p.qty) for p in side), ZERO)
    avg = (
        sum((p.avg_entry_price * abs(p.qty) for p in side), ZERO) / weight
        if weight
        else side[0].avg_entry_price
    )
    current = next((p.current_price for p in parts if p.current_price is not None), None)
    opened = [p.opened_at for p in parts if p.opened_at is not None]
    return Position(
        symbol=parts[0].symbol,
        qty=qty,
        avg_entry_price=avg,
        current_price=current,
        instrument_type=parts[0].instrument_type,
        opened_at=min(opened) if opened else None,
        realized_pnl=sum((p.realized_pnl for p in parts), ZERO),
    )


__all__ = [
    "BrokerNotReached",
    "ConnectivityListener",
    "OrderRouter",
    "merge_positions",
    "never_sent",
]
