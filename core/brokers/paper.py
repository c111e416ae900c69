"""The paper broker: a simulated account that implements :class:`core.ports.Broker`.

Time comes only from ``market.clock`` and sessions from ``market.calendar``. Price rules are in
:mod:`core.brokers.paper_fills`, the books in :mod:`core.brokers.paper_account`.

Life of an order:

* ``submit_order`` checks the order (see the rejection reasons below), stores it and returns the
  acknowledgement (status ``accepted``). With no latency and the market open, a market order (or
  a limit order marketable at the touch) executes right away; the execution stands in for the
  1-minute bar in progress. Fills and status changes are *reported* only by ``updates()``.
* ``updates()`` walks the 1-minute bars completed since each working order last looked, in time
  order across symbols, fills and triggers orders, expires day orders at their session's close
  and fills on-close orders there, then returns the events. ``cancel_order``/``cancel_all`` first
  walk the bars too, so a cancel never undoes a fill the price path already made.
* A bar counts for an order only if it starts at or after the moment the order became eligible
  (``submitted_at + latency``, rounded up to the minute) and lies in a session.

Time in force: ``day`` orders expire at the close of their session (an order sent while closed
works in the next session); ``gtc`` orders persist; ``ioc`` orders get one chance (at submit, or on
their first eligible bar with latency) and the rest is cancelled; ``cls`` orders fill at the close.
Market and ioc day orders, and on-close orders, are refused while the market is closed.

Brackets: the entry (market, or limit with ``limit_price``) works as usual; each entry fill
activates or grows a take-profit limit leg and a stop-loss stop leg (ids from
:func:`core.domain.bracket_leg_ids`, an ``accepted`` event when they appear). A leg's size is
its own filled quantity plus the bracket's open quantity (entry filled minus both legs' fills),
so a partial fill of one leg shrinks the other. When a leg fills completely the other leg, and
the entry if still working, are cancelled with reason ``OCO``. If one bar reaches both legs the
stop-loss is assumed first and the take-profit does not fill in that bar. Cancelling the parent
cancels its working legs (and ``cancel_order`` returns True even when only legs were left).

Notional (dollar amount) orders: market ``day`` orders only (``OrderRequest`` checks that)
and only with fractional shares enabled. At submission they are sized at the touch
(``notional / touch`` rounded down to 9 decimal places): that quantity, not the request's
estimate, is what the reduce-only, short-sale and buying-power checks use. They execute like a
market order, in one execution for the whole amount at the fill price
(:func:`core.brokers.paper_fills.notional_quantity`), commission as usual; the order's
quantity becomes what was bought, so the fill leaves it ``filled``.

Marks: positions and equity are marked at the quote mid ``(bid + ask) / 2``.

Options: an option order has ``instrument_type`` option and the compact OCC symbol
(``SPY261120C00590000``; an OCC symbol sent as another instrument type is refused), ``qty`` in
whole contracts and prices per share of premium. The market knows a contract when it quotes
it (contracts need not be listed in ``market.symbols()``).

* Admission: market or limit orders, time in force ``day``, whole contracts, no notional
  amount. Buying opens or adds; selling only closes a long: a sell larger than the long
  position less the working sells of the contract is refused ("selling options to open is not
  supported", code ``short_disabled``), reduce-only or not, whatever ``allow_short`` says. An
  order on a contract past its expiry close, or that would only work in a session after its
  expiry, is refused (code ``expired``). Client order ids starting with ``ax-x-`` are reserved.
* Fills: in full at the touch with no impact and no participation cap
  (:mod:`core.brokers.paper_fills` explains why and the resting-limit rule).
* Money: everything is multiplied by 100 (:data:`core.options.occ.MULTIPLIER`). Cash moves by
  ``price * contracts * 100`` plus the commission (``CommissionSchedule.per_contract`` per
  contract, zero by default); the buying-power check needs ``opening * reference * 100 +
  commission`` within both the buying power and the cash (options are paid in full, never on
  margin); equity, market values, daily P&L and realized P&L count ``qty * price * 100``.
  Positions carry ``instrument_type`` option and per-share prices, like every broker's option
  positions: ``Position.market_value`` and ``unrealized_pnl`` (and the position's own
  ``realized_pnl``) are per share of premium times contracts, to be multiplied by 100 by the
  reader (as :func:`core.risk.model.contract_multiplier` does).
* Expiry: a contract expires at the close of its expiry date's session (an early close counts;
  the last session before it when that date is no session). When the broker next walks the
  clock past that close (``updates()``, ``submit_order``, ``cancel_order``, ``cancel_all``), in
  time order with the other events: working orders on the contract expire at the close (event
  ``EXPIRED``, reason "option expired: ..."), then a position still held is settled in cash at
  its intrinsic value ``max(0, S - K)`` (call) or ``max(0, K - S)`` (put), ``S`` being the
  underlying's last 1-minute close at or before the close (else its quote's last price; if the
  market does not know the underlying, the option's own last price), and removed. Out of the
  money it closes at price 0 ("expired worthless"). The settlement is a filled order the broker
  creates: client order id ``ax-x-<occ>-<yyyymmdd>`` (the contract's expiry date), a broker
  order id from the usual sequence, side ``sell`` (closing the long), ``qty`` the contracts
  held, market, reduce-only, instrument type option, status ``filled``, ``reason`` the
  settlement text. ``updates()`` reports it as one ``BrokerEvent(kind=FILL, status=FILLED,
  client_order_id="ax-x-<occ>-<yyyymmdd>", at=close, reason=...)`` whose ``fill`` has
  ``fill_id`` ``expiry-<occ>-<yyyymmdd>``, ``price`` the intrinsic value (0 when worthless),
  ``commission`` 0, ``expected_price`` None and ``at`` the close; no ``ACCEPTED`` event comes
  before it. It is booked like a sale (cash ``+ price * contracts * 100``, realized P&L
  ``(price - average entry) * contracts * 100``) but never counts as a day trade. It is saved
  with the account in one ledger write, so a restart never settles twice; ``get_order``,
  ``get_orders("closed")``, ``get_fills`` and :meth:`PaperBroker.settled_expiries` show it.

Other rules, detailed where they are implemented:

* prices, impact, participation, stop-limit and trailing-stop rules: :mod:`core.brokers.paper_fills`
  (a stop-limit fills in its trigger bar only if the limit is marketable at the trigger price);
* RegT buying power, margin, daily P&L and the day-trade rule: :mod:`core.brokers.paper_account`
  (one day trade per reducing order that closes quantity opened the same session);
* commissions on partial fills: :mod:`core.brokers.commission` (the per-share or percentage
  charge on every fill, the per-order minimum once, on the first fill).

Buying power: an order's opening part (what does not reduce the current position) needs
``opening_qty * reference_price + estimated commission`` (reference: limit, else stop, else the
touch plus impact for market buys) within ``buying_power`` minus what working orders already hold
the same way. Reducing quantity never needs buying power.

Persistence: each public method that changes anything saves the account, the changed orders and
the new fills through the :class:`core.ports.PaperLedger` before it returns; a new broker on the
same ledger resumes exactly. Undelivered events are not kept: after a restart use ``get_order``
and ``get_fills``. Fill ids are ``f"{client_order_id}-{n}"`` (n counts the order's fills from 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.brokers.commission import CommissionSchedule
from core.brokers.paper_account import (
    PDT_DAY_TRADE_LIMIT,
    PDT_WINDOW_SESSIONS,
    regt_buying_power,
)
from core.brokers.paper_config import PaperConfig
from core.brokers.paper_engine import (
    IOC_REASON,
    SETTLEMENT_FILL_PREFIX,
    SETTLEMENT_ID_PREFIX,
    PaperEngine,
    option_contract,
)
from core.brokers.paper_fills import (
    PriceContext,
    immediate_fill,
    impact_bps,
    notional_quantity,
    with_impact,
)
from core.brokers.paper_rules import (
    ceil_minute,
    check_request,
    expected_price,
    floor_minute,
    opening_quantity,
    reference_price,
)
from core.brokers.paper_state import (
    MemoryPaperLedger,
    PaperOrder,
    fill_sort_key,
    working_type,
)
from core.domain import (
    ZERO,
    AccountState,
    BrokerEvent,
    BrokerOrder,
    Fill,
    InstrumentType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
    bracket_leg_ids,
)
from core.options.occ import MULTIPLIER
from core.ports import (
    BrokerUnavailable,
    MarketData,
    OrderRejected,
    PaperLedger,
    UnknownOrder,
    UnknownSymbol,
)

_ONE_MINUTE = timedelta(minutes=1)

__all__ = ["CommissionSchedule", "MemoryPaperLedger", "PaperBroker", "PaperConfig"]


class PaperBroker(PaperEngine):
    """A simulated broker account (see the module docstring for the rules).

    ``PaperBroker(market, ledger, config=PaperConfig(), name="paper")``; call ``connect()``
    before use (methods raise :class:`BrokerUnavailable` otherwise).
    """

    def __init__(
        self,
        market: MarketData,
        ledger: PaperLedger,
        config: PaperConfig | None = None,
        name: str = "paper",
    ) -> None:
        super().__init__(market, ledger, config if config is not None else PaperConfig(), name)
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        """Open the account: (re)load its books from the ledger, since another executor process
        may have traded it while this one stood by."""
        if not self._connected:
            self._reset()
            self._load()
        self._connected = True

    def apply_fill_settings(self, values: Mapping[str, Any]) -> bool:
        """Swap in the run-time fill settings found in ``values`` (the keys of
        :data:`~core.brokers.paper_config.PAPER_FILL_KEYS`: participation rate, impact, latency,
        commission); True if the config changed. A bad value raises
        :class:`~core.domain.ValidationError` and the config stays as it was.

        Participation, impact and commission apply to every execution from now on, working
        orders included; the latency applies to orders submitted from now on (an accepted order
        keeps the moment it became eligible).
        """
        config = self.config.with_fill_settings(values)
        if config == self.config:
            return False
        self.config = config
        return True

    def begin_batch(self) -> None:
        """Defer ledger writes until :meth:`flush`: a batch of submits is then made durable in
        one transaction. Callers must not record acknowledgements before ``flush`` returns; a
        crash before it loses the whole batch at the broker, as if it had never arrived."""
        self._batching = True

    async def flush(self) -> None:
        """End a batch: write everything changed since :meth:`begin_batch` in one transaction."""
        self._batching = False
        self._save()

    async def close(self) -> None:
        self._save()
        self._connected = False

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerUnavailable(f"{self.name} broker is not connected; call connect() first")

    @property
    def realized_pnl(self) -> Decimal:
        """Realized P&L of all closed quantity (before commissions)."""
        return self.account.realized_pnl

    @property
    def total_commissions(self) -> Decimal:
        return self.account.commissions

    async def get_account(self) -> AccountState:
        """The account marked at quote mids; formulas in :mod:`core.brokers.paper_account`."""
        self._require_connected()
        now = self.market.clock.now()
        marks = await self._marks(self.account.positions)
        calendar = self.market.calendar
        in_session = calendar.session_date(now) is not None
        window = self._window(now)
        count = self.account.day_trade_count(window)
        session = self._reporting_session(now)
        sod = None if session is None else await self._sod_equity(session)
        return self.account.state(
            marks,
            in_session=in_session,
            config=self.config,
            day_trade_count=count,
            sod_equity=sod,
            at=now,
        )

    async def get_positions(self) -> list[Position]:
        """Open positions marked at quote mids."""
        self._require_connected()
        marks = await self._marks(self.account.positions)
        return [
            pos.marked(marks[symbol]) if symbol in marks else pos
            for symbol, pos in self.account.positions.items()
        ]

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        """Orders by ``status``: ``open`` (accepted or partially filled), ``closed`` (final) or
        ``all``, oldest first."""
        self._require_connected()
        if status == "open":
            chosen: Iterable[PaperOrder] = (o for o in self._orders.values() if o.is_open)
        elif status == "closed":
            chosen = (o for o in self._orders.values() if o.status.is_terminal)
        elif status == "all":
            chosen = self._orders.values()
        else:
            raise ValueError(f"status must be 'open', 'closed' or 'all', got {status!r}")
        return [o.to_broker_order() for o in chosen]

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        self._require_connected()
        order = self._orders.get(client_order_id)
        return None if order is None else order.to_broker_order()

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        """Fills, optionally of one order and/or at or after ``since``, ordered by time, then
        order (by broker order id), then fill number -- the same order after a restart."""
        self._require_connected()
        if client_order_id is None:
            fills = self._fills
        else:
            fills = self._fills_by_order.get(client_order_id, [])
        if since is not None:
            fills = [f for f in fills if f.at >= since]
        return sorted(fills, key=fill_sort_key)

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Check and accept an order; returns the acknowledgement (status ``accepted``).

        Raises :class:`OrderRejected` for: a duplicate client order id, an unknown symbol, a bad
        quantity or price, an unsupported type/time-in-force, a day market or ioc order (or an
        on-close order) while the market is closed, a reduce-only order that would open, a short
        sale when shorting is disabled, a 4th day trade in 5 sessions under PDT protection,
        insufficient buying power, and a notional order while fractional shares are disabled
        (or with no price to size it at). Option orders are also refused for fractional
        contracts, an order type other than market/limit or a time in force other than day, a
        sell beyond the long position (selling to open), and an expired contract (see the
        module docstring)."""
        self._require_connected()
        market = self.market
        now = market.clock.now()
        symbol = request.symbol
        self._check_ids(request)
        option = request.instrument_type == InstrumentType.OPTION or (
            option_contract(symbol) is not None
        )
        # option contracts are too many to list: the market knows one if it quotes it
        if not option and symbol not in market.symbols():
            raise OrderRejected(f"unknown symbol {symbol!r}", "unknown_symbol")
        check_request(request, self.config)
        await self._advance()  # the books as of now: earlier fills count for the checks
        session = market.calendar.session_date(now)
        tif = request.time_in_force
        working_kind = working_type(request)
        if option:
            self._check_option_expiry(request, now, session)
        if session is None:
            if tif is TimeInForce.IOC:
                raise OrderRejected("market closed for an ioc order", "market_closed")
            if tif is TimeInForce.CLS:
                raise OrderRejected(
                    "market closed: on-close orders are accepted only during a session",
                    "market_closed",
                )
            if tif is TimeInForce.DAY and working_kind is OrderType.MARKET:
                raise OrderRejected("market closed for a day order", "market_closed")
        try:
            quote = await market.quote(symbol)
        except UnknownSymbol:
            raise OrderRejected(f"unknown symbol {symbol!r}", "unknown_symbol") from None

        side = request.side
        touch = quote.touch(side)
        size = request.qty
        if request.notional is not None:
            size = notional_quantity(request.notional, touch) if touch > 0 else ZERO
            if size <= 0:
                raise OrderRejected(
                    f"cannot size ${request.notional} of {symbol}: the touch is {touch}",
                    "no_price",
                )
        opening = opening_quantity(self.account.position_qty(symbol), side, size)
        if option and side is Side.SELL:
            self._check_option_sell(request)
        if request.reduce_only and opening > 0:
            raise OrderRejected(
                f"reduce-only order would open or increase a position: {side.value} "
                f"{size} {symbol} against a position of {self.account.position_qty(symbol)}",
                "reduce_only",
            )
        if opening > 0 and side is Side.SELL and not self.config.allow_short:
            held = max(ZERO, self.account.position_qty(symbol))
            raise OrderRejected(
                f"short selling is disabled: sell {size} {symbol} exceeds the long "
                f"position of {held}",
                "short_disabled",
            )
        ctx: PriceContext | None = None
        ref = reference_price(request, touch)
        if working_kind is OrderType.MARKET and side is Side.BUY and request.notional is None:
            ctx = await self._price_context(symbol, quote)
            bps = impact_bps(request.qty, ctx.adv, ctx.impact_bps_per_pct_adv)
            ref = with_impact(touch, side, bps)
        if session is not None and self.config.pdt_protection:
            await self._check_pdt(request, session, now, quote)
        if opening > 0:
            await self._check_buying_power(request, size, opening, ref, session is not None, quote)

        order = self._new_order(request, size, now, session, quote, opening, ref)
        ack = order.to_broker_order()
        if (
            session is not None
            and self.config.latency == timedelta(0)
            and not order.at_close
            and order.kind in (OrderType.MARKET, OrderType.LIMIT)
        ):
            last = await market.bars(symbol, "1Min", end=now, limit=1)
            volume = last[-1].volume if last else ZERO
            if ctx is None:
                ctx = await self._price_context(symbol, quote)
            intent = immediate_fill(order, quote, volume, ctx, now)
            if intent is not None:
                order.last_evaluated = floor_minute(now) + _ONE_MINUTE
                await self._ensure_session(session)
                self._execute(order, intent, session)
        if tif is TimeInForce.IOC and order.is_open and self.config.latency == timedelta(0):
            self._finish(order, OrderStatus.CANCELLED, now, IOC_REASON)
        self._save()
        return ack

    def _check_option_expiry(
        self, request: OrderRequest, now: datetime, session: date | None
    ) -> None:
        """Refuse an option order once the contract has expired, or when the session the order
        would work in comes after its expiry."""
        expiry = self._expiry_of(request.symbol)
        if expiry is None:
            raise OrderRejected(
                f"{request.symbol}: the calendar has no session for its expiry", "expired"
            )
        expiry_session, close = expiry
        if now >= close:
            raise OrderRejected(
                f"option {request.symbol} expired at the close of {expiry_session}", "expired"
            )
        calendar = self.market.calendar
        works_in = session
        if works_in is None:
            works_in = calendar.session_date(calendar.next_open(now))
        if works_in is not None and works_in > expiry_session:
            raise OrderRejected(
                f"option {request.symbol} expires at the close of {expiry_session}, before the "
                f"session of {works_in} this order would work in",
                "expired",
            )

    def _check_option_sell(self, request: OrderRequest) -> None:
        """Options are bought and sold to close only: a sell must fit in the long position less
        what working sells of the contract already cover."""
        symbol = request.symbol
        held = max(ZERO, self.account.position_qty(symbol))
        sells = (o for o in self._working.values() if o.symbol == symbol and o.side is Side.SELL)
        selling = sum((o.remaining for o in sells), ZERO)
        free = max(ZERO, held - selling)
        if request.qty > free:
            covered = f", {selling} of it already covered by working sells" if selling else ""
            raise OrderRejected(
                f"selling options to open is not supported: sell {request.qty} {symbol} "
                f"exceeds the long position of {held} contracts{covered}; options are bought "
                "and sold to close only",
                "short_disabled",
            )

    def _check_ids(self, request: OrderRequest) -> None:
        coid = request.client_order_id
        if coid.startswith(SETTLEMENT_ID_PREFIX):
            raise OrderRejected(
                f"client_order_id {coid!r}: ids starting with {SETTLEMENT_ID_PREFIX!r} are "
                "reserved for option expiry settlements",
                "reserved_id",
            )
        taken = [coid]
        if request.order_type is OrderType.BRACKET:
            taken.extend(bracket_leg_ids(coid))
        for c in taken:
            if c in self._orders:
                raise OrderRejected(
                    f"duplicate client_order_id {c!r}: an order with this id already exists "
                    f"({self._orders[c].status.value})",
                    "duplicate",
                )

    async def _check_pdt(
        self, request: OrderRequest, session: date, now: datetime, quote: Quote
    ) -> None:
        if not self.account.would_day_trade(request.symbol, request.side, session):
            return
        marks = await self._marks(self.account.positions, quote)
        equity = self.account.market_values(marks).equity
        if equity >= self.config.pdt_equity_threshold:
            return
        count = self.account.day_trade_count(self._window(now))
        if count >= PDT_DAY_TRADE_LIMIT:
            raise OrderRejected(
                f"pattern day trader protection: this order would be day trade #{count + 1} "
                f"within {PDT_WINDOW_SESSIONS} sessions; {PDT_DAY_TRADE_LIMIT} are allowed while "
                f"equity {equity:,.2f} is below {self.config.pdt_equity_threshold:,.2f}",
                "pdt",
            )

    async def _check_buying_power(
        self,
        request: OrderRequest,
        size: Decimal,
        opening: Decimal,
        ref: Decimal,
        in_session: bool,
        quote: Quote,
    ) -> None:
        marks = await self._marks(self.account.positions, quote)
        values = self.account.market_values(marks)
        buying_power, multiplier = regt_buying_power(
            values.equity, values.gross, in_session, self.config
        )
        reserved = sum((o.reserved for o in self._working.values()), ZERO)
        available = buying_power - reserved
        schedule = self.config.commission
        paid_in_full = ""
        if request.instrument_type == InstrumentType.OPTION:
            # premium per share times 100 per contract; options are paid in full, never on margin
            needed = opening * ref * MULTIPLIER + schedule.for_option_fill(size)
            cash = self.account.cash - reserved
            if cash < available:
                available = cash
                paid_in_full = f"; options are paid in full from cash {self.account.cash:,.2f}"
        else:
            needed = opening * ref + schedule.estimate(size, ref)
        if needed > available:
            held = f", {reserved:,.2f} of it held by open orders" if reserved else ""
            what = f"{size}" if request.notional is None else f"${request.notional} of"
            raise OrderRejected(
                f"insufficient buying power: {request.side.value} {what} "
                f"{request.symbol} needs {needed:,.2f} but {max(available, ZERO):,.2f} is "
                f"available (buying power {buying_power:,.2f} at {multiplier}x{held}"
                f"{paid_in_full})",
                "buying_power",
            )

    def _new_order(
        self,
        request: OrderRequest,
        size: Decimal,
        now: datetime,
        session: date | None,
        quote: Quote,
        opening: Decimal,
        ref: Decimal,
    ) -> PaperOrder:
        calendar = self.market.calendar
        tif = request.time_in_force
        deadline = None
        if tif in (TimeInForce.DAY, TimeInForce.CLS):
            day = session if session is not None else calendar.session_date(calendar.next_open(now))
            if day is not None:
                deadline = calendar.session_close(day)
        eligible = now + self.config.latency
        order = PaperOrder(
            request=request,
            broker_order_id=self._next_broker_id(),
            status=OrderStatus.ACCEPTED,
            qty=size,
            submitted_at=now,
            eligible_at=eligible,
            last_evaluated=ceil_minute(eligible),
            updated_at=now,
            deadline=deadline,
            expected_price=expected_price(request, quote.touch(request.side)),
            water_mark=quote.last if request.order_type is OrderType.TRAILING_STOP else None,
            opening_qty=opening,
            reserve_price=ref,
        )
        self._add(order)
        return order

    async def cancel_order(self, client_order_id: str) -> bool:
        """Cancel an order (and a bracket parent's working legs). True if anything was
        cancelled, False if already final; :class:`UnknownOrder` if never seen."""
        self._require_connected()
        order = self._orders.get(client_order_id)
        if order is None:
            raise UnknownOrder(f"no order with client_order_id {client_order_id!r}")
        await self._advance()
        now = self.market.clock.now()
        changed = False
        if order.is_open:
            self._finish(order, OrderStatus.CANCELLED, now, "cancelled by request")
            changed = True
        if order.request.order_type is OrderType.BRACKET:
            for leg in self._legs(order):
                if leg is not None and leg.is_open:
                    self._finish(leg, OrderStatus.CANCELLED, now, "parent cancelled")
                    changed = True
        self._save()
        return changed

    async def cancel_all(self) -> int:
        """Cancel every working order (legs included); returns how many were cancelled."""
        self._require_connected()
        await self._advance()
        now = self.market.clock.now()
        count = 0
        for order in list(self._working.values()):
            if order.is_open:
                self._finish(order, OrderStatus.CANCELLED, now, "cancelled by request")
                count += 1
        self._save()
        return count

    def settled_expiries(self) -> list[Fill]:
        """The expiry settlements of options held through their expiry close, oldest first:
        fills with ``fill_id`` ``expiry-<occ>-<yyyymmdd>`` on orders ``ax-x-<occ>-<yyyymmdd>``
        (see the module docstring)."""
        self._require_connected()
        found = [f for f in self._fills if f.fill_id.startswith(SETTLEMENT_FILL_PREFIX)]
        return sorted(found, key=fill_sort_key)

    async def updates(self) -> list[BrokerEvent]:
        """Walk the market up to now and return the events since the last call, oldest first."""
        self._require_connected()
        await self._advance()
        self._save()
        events, self._events = self._events, []
        return events
