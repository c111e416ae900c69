"""The paper broker's engine: its books in memory, the walk over the price path, executions,
bracket legs, persistence through the ledger, and the market lookups they need.

:class:`core.brokers.paper.PaperBroker` adds the ``Broker`` API and order admission on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from core.brokers.paper_account import (
    PDT_WINDOW_SESSIONS,
    PaperAccount,
)
from core.brokers.paper_config import PaperConfig
from core.brokers.paper_fills import (
    FillIntent,
    PriceContext,
    closing_fill,
    evaluate_bar,
)
from core.brokers.paper_state import (
    PaperOrder,
    contract_multiplier,
    fill_from_dict,
    fill_sort_key,
    fill_to_dict,
)
from core.domain import (
    EXPIRY_SETTLEMENT_PREFIX,
    ZERO,
    Bar,
    BrokerEvent,
    EventKind,
    Fill,
    InstrumentType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
    ValidationError,
    bracket_leg_ids,
    bracket_leg_requests,
    round_price,
)
from core.options.occ import OptionContract, Right, parse_occ
from core.ports import (
    BrokerUnavailable,
    MarketData,
    PaperLedger,
    UnknownSymbol,
)

_TINY = timedelta(microseconds=1)
IOC_REASON = "ioc: unfilled quantity cancelled"
_EXPIRED_REASON = "day order expired at the session close"
_EVENT_FOR = {OrderStatus.CANCELLED: EventKind.CANCELLED, OrderStatus.EXPIRED: EventKind.EXPIRED}
_OPTION_EXPIRED_REASON = (
    "option expired: working order cancelled at the close of its expiry session"
)
#: Client order ids of expiry settlements start with this (reserved: refused on submission).
SETTLEMENT_ID_PREFIX = EXPIRY_SETTLEMENT_PREFIX
#: Fill ids of expiry settlements start with this.
SETTLEMENT_FILL_PREFIX = "expiry-"


@lru_cache(maxsize=4096)
def option_contract(symbol: str) -> OptionContract | None:
    """The contract an OCC symbol names, or None for any other symbol."""
    try:
        return parse_occ(symbol)
    except ValidationError:
        return None


def settlement_ids(symbol: str, expiry: date) -> tuple[str, str]:
    """``(client_order_id, fill_id)`` of the settlement of ``symbol`` expiring on ``expiry``:
    ``ax-x-<occ>-<yyyymmdd>`` and ``expiry-<occ>-<yyyymmdd>``."""
    stamp = f"{expiry:%Y%m%d}"
    return f"{SETTLEMENT_ID_PREFIX}{symbol}-{stamp}", f"{SETTLEMENT_FILL_PREFIX}{symbol}-{stamp}"


@dataclass(frozen=True, slots=True)
class _Expiry:
    """An option's expiry to settle at ``close`` (the close of ``session``)."""

    symbol: str
    contract: OptionContract
    session: date
    close: datetime


def _order_seq(order: PaperOrder) -> int:
    try:
        return int(order.broker_order_id.rsplit("-", 1)[-1])
    except ValueError:
        return 0


class PaperEngine:
    """State and mechanics of a paper account; see :mod:`core.brokers.paper` for the rules.

    ``market``, ``ledger``, ``config`` and ``name`` are as given; ``account`` holds the books
    (:class:`~core.brokers.paper_account.PaperAccount`). The state is loaded from the ledger on
    construction.
    """

    def __init__(
        self,
        market: MarketData,
        ledger: PaperLedger,
        config: PaperConfig,
        name: str,
    ) -> None:
        self.market = market
        self.ledger = ledger
        self.config = config
        self.name = name
        self._reset()
        self._load()

    def _reset(self) -> None:
        """Forget the in-memory books (before loading them again from the ledger)."""
        config = self.config
        self._batching = False
        self._orders: dict[str, PaperOrder] = {}
        self._working: dict[str, PaperOrder] = {}
        self._fills: list[Fill] = []
        self._fills_by_order: dict[str, list[Fill]] = {}
        self._events: list[BrokerEvent] = []
        self._dirty: dict[str, PaperOrder] = {}
        self._new_fills: list[Fill] = []
        self._account_dirty = False
        self._adv_cache: dict[str, tuple[date, Decimal]] = {}
        self._window_cache: tuple[date, frozenset[date]] | None = None
        self._sod_cache: tuple[date, Decimal] | None = None
        self._expiry_cache: dict[date, tuple[date, datetime] | None] = {}
        self.account = PaperAccount(config.initial_cash)

    def _load(self) -> None:
        snapshot = self.ledger.load()
        if snapshot.account is not None:
            self.account = PaperAccount.from_dict(snapshot.account)
        orders = sorted((PaperOrder.from_dict(d) for d in snapshot.orders), key=_order_seq)
        for order in orders:
            self._orders[order.client_order_id] = order
            if order.is_open:
                self._working[order.client_order_id] = order
        fills = [fill_from_dict(d) for d in snapshot.fills]
        fills.sort(key=fill_sort_key)
        for fill in fills:
            self._fills.append(fill)
            self._fills_by_order.setdefault(fill.client_order_id, []).append(fill)

    def _save(self) -> None:
        if self._batching or not (self._dirty or self._new_fills or self._account_dirty):
            return
        account = self.account.to_dict() if self._account_dirty else None
        try:
            self.ledger.save(
                account=account,
                orders=[o.to_dict() for o in self._dirty.values()],
                fills=[fill_to_dict(f) for f in self._new_fills],
            )
        except Exception as exc:  # the change stays pending and is saved by the next call
            raise BrokerUnavailable(f"paper ledger save failed: {exc}") from exc
        self._dirty.clear()
        self._new_fills.clear()
        self._account_dirty = False

    def _next_broker_id(self) -> str:
        return f"{self.name}-{len(self._orders) + 1:08d}"

    def _add(self, order: PaperOrder) -> None:
        self._orders[order.client_order_id] = order
        self._working[order.client_order_id] = order
        self._dirty[order.client_order_id] = order

    async def _advance(self) -> None:
        now = self.market.clock.now()
        expiries = self._due_expiries(now)
        if not self._working and not expiries:
            return
        by_symbol: dict[str, list[PaperOrder]] = {}
        for order in self._working.values():
            by_symbol.setdefault(order.symbol, []).append(order)
        bars: list[tuple[datetime, int, Bar]] = []
        deadlines: list[tuple[datetime, int, PaperOrder]] = []
        n = 0
        for symbol, orders in by_symbol.items():
            walking = [o for o in orders if not o.at_close]
            if walking:
                start = min(o.last_evaluated for o in walking)
                if start < now:
                    for bar in await self.market.bars(symbol, "1Min", start=start, end=now):
                        bars.append((bar.end, n, bar))
                        n += 1
            for o in orders:
                if o.deadline is not None and o.deadline <= now:
                    deadlines.append((o.deadline, n, o))
                    n += 1
        # bars ending at a close are walked before that close's expiries and on-close fills,
        # and options are settled after both
        timeline: list[tuple[datetime, int, int, Bar | PaperOrder | _Expiry]] = [
            (t, 0, i, bar) for t, i, bar in bars
        ]
        timeline.extend((t, 1, i, o) for t, i, o in deadlines)
        timeline.extend((e.close, 2, i, e) for i, e in enumerate(expiries))
        timeline.sort(key=lambda item: (item[0], item[1], item[2]))
        contexts: dict[str, PriceContext] = {}
        for _, _, _, item in timeline:
            if isinstance(item, Bar):
                await self._on_bar(item, contexts)
            elif isinstance(item, _Expiry):
                await self._settle_expiry(item)
            else:
                await self._on_deadline(item)
        for order in list(self._working.values()):
            if order.deadline is not None and order.deadline <= now:
                await self._on_deadline(order)

    async def _on_bar(self, bar: Bar, contexts: dict[str, PriceContext]) -> None:
        symbol = bar.symbol
        orders = [
            o for o in self._working.values() if o.symbol == symbol and bar.end > o.last_evaluated
        ]
        if not orders:
            return
        session = self.market.calendar.session_date(bar.start)
        exits_this_bar: set[str] = set()
        for order in orders:
            if not order.is_open:
                continue
            if order.deadline is not None and bar.end > order.deadline:
                await self._on_deadline(order)
                continue
            order.last_evaluated = bar.end
            self._dirty[order.client_order_id] = order
            if session is None or order.at_close:
                continue
            if order.parent_id is not None and order.parent_id in exits_this_bar:
                continue
            ctx = contexts.get(symbol)
            if ctx is None:
                ctx = contexts[symbol] = await self._price_context(symbol)
            intent = evaluate_bar(order, bar, ctx)
            if intent is not None:
                await self._ensure_session(session)
                self._execute(order, intent, session)
                if order.parent_id is not None:
                    exits_this_bar.add(order.parent_id)
            if order.request.time_in_force is TimeInForce.IOC and order.is_open:
                self._finish(order, OrderStatus.CANCELLED, bar.end, IOC_REASON)

    async def _on_deadline(self, order: PaperOrder) -> None:
        if not order.is_open or order.deadline is None:
            return
        deadline = order.deadline
        if not order.at_close:
            reason = _EXPIRED_REASON
            if order.is_option:
                expiry = self._expiry_of(order.symbol)
                if expiry is not None and deadline >= expiry[1]:
                    reason = _OPTION_EXPIRED_REASON
            self._finish(order, OrderStatus.EXPIRED, deadline, reason)
            return
        calendar = self.market.calendar
        session = calendar.session_date(deadline - _TINY)
        price = None
        if session is not None:
            bars = await self.market.bars(
                order.symbol, "1Min", start=calendar.session_open(session), end=deadline, limit=1
            )
            price = bars[-1].close if bars else None
        if price is None or session is None:
            reason = f"no closing price for {order.symbol}"
            self._finish(order, OrderStatus.EXPIRED, deadline, reason)
            return
        intent = closing_fill(order, price, deadline)
        if intent is not None:
            await self._ensure_session(session)
            self._execute(order, intent, session)
        if order.is_open:
            self._finish(
                order,
                OrderStatus.EXPIRED,
                deadline,
                f"limit-on-close not filled: closing price {price} is beyond the limit "
                f"{order.request.limit_price}",
            )

    def _execute(self, order: PaperOrder, intent: FillIntent, session: date) -> None:
        qty, price, at = intent.qty, intent.price, intent.at
        coid = order.client_order_id
        if order.request.notional is not None:  # its size is what the dollar amount bought
            order.qty = order.filled_qty + qty
        schedule = self.config.commission
        if order.is_option:
            commission = schedule.for_option_fill(qty)
        else:
            commission = schedule.for_fill(qty, price, first_fill=order.fill_count == 0)
        order.record_fill(qty, price, commission)
        fill = Fill(
            fill_id=f"{coid}-{order.fill_count}",
            client_order_id=coid,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            at=at,
            broker=self.name,
            expected_price=(
                order.expected_price if order.expected_price is not None else order.stop_level
            ),
            commission=commission,
            broker_order_id=order.broker_order_id,
        )
        counted = order.day_trade_session == session
        kind = order.request.instrument_type
        if self.account.apply_fill(fill, session, counted, kind):
            order.day_trade_session = session
        self._account_dirty = True
        self._fills.append(fill)
        self._fills_by_order.setdefault(coid, []).append(fill)
        self._new_fills.append(fill)
        status = OrderStatus.FILLED if order.remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        order.status = status
        order.updated_at = at
        self._dirty[coid] = order
        if status is OrderStatus.FILLED:
            self._working.pop(coid, None)
        self._events.append(
            BrokerEvent(EventKind.FILL, coid, at, order.broker_order_id, fill=fill, status=status)
        )
        if order.request.order_type is OrderType.BRACKET:
            self._sync_legs(order, at)
        elif order.parent_id is not None:
            self._after_leg_fill(order, at)

    def _finish(self, order: PaperOrder, status: OrderStatus, at: datetime, reason: str) -> None:
        order.status = status
        order.reason = reason
        order.updated_at = at
        self._dirty[order.client_order_id] = order
        self._working.pop(order.client_order_id, None)
        self._events.append(
            BrokerEvent(
                _EVENT_FOR[status],
                order.client_order_id,
                at,
                order.broker_order_id,
                status=status,
                reason=reason,
            )
        )

    # -- option expiry -----------------------------------------------------------------------
    def _expiry_of(self, symbol: str) -> tuple[date, datetime] | None:
        """``(session, close)`` at which the option ``symbol`` expires: the close of its expiry
        date's session (an early close counts), or of the last session before it when the
        expiry date is not a session. None for other symbols or a date the calendar cannot
        place."""
        contract = option_contract(symbol)
        if contract is None:
            return None
        expiry = contract.expiry
        if expiry not in self._expiry_cache:
            calendar = self.market.calendar
            try:
                session = calendar.previous_session(datetime.combine(expiry, time(23, 59), UTC))
                found: tuple[date, datetime] | None = (session, calendar.session_close(session))
            except ValueError:
                found = None
            self._expiry_cache[expiry] = found
        return self._expiry_cache[expiry]

    def _due_expiries(self, now: datetime) -> list[_Expiry]:
        """Options held, or with working orders, whose expiry close is at or before ``now`` and
        that are not settled yet."""
        symbols = {
            symbol
            for symbol, pos in self.account.positions.items()
            if pos.instrument_type == InstrumentType.OPTION
        }
        symbols.update(o.symbol for o in self._working.values() if o.is_option)
        due = []
        for symbol in sorted(symbols):
            contract = option_contract(symbol)
            expiry = self._expiry_of(symbol)
            if contract is None or expiry is None or expiry[1] > now:
                continue
            if settlement_ids(symbol, contract.expiry)[0] in self._orders:
                continue
            due.append(_Expiry(symbol, contract, expiry[0], expiry[1]))
        return due

    async def _underlying_close(self, expiry: _Expiry) -> tuple[Decimal, str] | None:
        """The underlying's price at the expiry close and where it came from: the close of its
        last 1-minute bar ending at or before the close, else its quote's last price. Failing
        both (the market does not know the underlying), None."""
        underlying = expiry.contract.underlying
        try:
            bars = await self.market.bars(underlying, "1Min", end=expiry.close, limit=1)
            if bars:
                return bars[-1].close, f"{underlying} closed at {bars[-1].close}"
            quote = await self.market.quote(underlying)
        except UnknownSymbol:
            return None
        return quote.last, f"{underlying} last {quote.last}"

    async def _option_close(self, expiry: _Expiry) -> Decimal:
        """The option's own last price at the expiry close (its last bar's close, else its
        quote mid), floored at zero; zero when the market has nothing."""
        try:
            bars = await self.market.bars(expiry.symbol, "1Min", end=expiry.close, limit=1)
            price = bars[-1].close if bars else (await self.market.quote(expiry.symbol)).mid
        except UnknownSymbol:
            return ZERO
        return max(ZERO, round_price(price))

    async def _settle_expiry(self, expiry: _Expiry) -> None:
        """Settle an option held through its expiry close: working orders on it expire, and
        the position closes at its intrinsic value ``max(0, S - K)`` for a call or
        ``max(0, K - S)`` for a put (``S``: the underlying at the close), cash-settled, or at 0
        when out of the money. The settlement is a filled order of its own (see
        :mod:`core.brokers.paper`), booked like any fill with commission 0."""
        symbol, close = expiry.symbol, expiry.close
        for order in list(self._working.values()):
            if order.symbol == symbol:
                self._finish(order, OrderStatus.EXPIRED, close, _OPTION_EXPIRED_REASON)
        pos = self.account.positions.get(symbol)
        if pos is None or pos.qty == 0:
            return
        contract = expiry.contract
        strike = contract.strike
        underlying = await self._underlying_close(expiry)
        if underlying is not None:
            spot, seen = underlying
            diff = spot - strike if contract.right is Right.CALL else strike - spot
            price = max(ZERO, round_price(diff))
            where = f"{seen}, strike {strike}"
        else:
            price = await self._option_close(expiry)
            where = f"no price for {contract.underlying}: settled at the option's last price"
        if price > 0:
            reason = f"expired in the money: cash-settled at intrinsic value {price} ({where})"
        else:
            reason = f"expired worthless ({where})"
        coid, fill_id = settlement_ids(symbol, contract.expiry)
        qty = abs(pos.qty)
        side = Side.SELL if pos.qty > 0 else Side.BUY
        request = OrderRequest(
            client_order_id=coid,
            symbol=symbol,
            side=side,
            qty=qty,
            reduce_only=True,
            instrument_type=InstrumentType.OPTION,
        )
        order = PaperOrder(
            request=request,
            broker_order_id=self._next_broker_id(),
            status=OrderStatus.FILLED,
            qty=qty,
            submitted_at=close,
            eligible_at=close,
            last_evaluated=close,
            updated_at=close,
            reason=reason,
        )
        order.record_fill(qty, price, ZERO)
        fill = Fill(
            fill_id=fill_id,
            client_order_id=coid,
            symbol=symbol,
            side=side,
            qty=qty,
            price=price,
            at=close,
            broker=self.name,
            commission=ZERO,
            broker_order_id=order.broker_order_id,
        )
        await self._ensure_session(expiry.session)
        # an expiry is no trade: it never counts as a day trade
        self.account.apply_fill(fill, expiry.session, True, InstrumentType.OPTION)
        self._account_dirty = True
        self._orders[coid] = order
        self._dirty[coid] = order
        self._fills.append(fill)
        self._fills_by_order.setdefault(coid, []).append(fill)
        self._new_fills.append(fill)
        self._events.append(
            BrokerEvent(
                EventKind.FILL,
                coid,
                close,
                order.broker_order_id,
                fill=fill,
                status=OrderStatus.FILLED,
                reason=reason,
            )
        )

    def _legs(self, parent: PaperOrder) -> tuple[PaperOrder | None, PaperOrder | None]:
        tp_id, sl_id = bracket_leg_ids(parent.client_order_id)
        return self._orders.get(tp_id), self._orders.get(sl_id)

    def _sync_legs(self, parent: PaperOrder, at: datetime) -> None:
        """Create the legs at the entry's first fill, else resize them to the open quantity."""
        tp, sl = self._legs(parent)
        if tp is None or sl is None:
            self._create_legs(parent, at)
            return
        open_qty = parent.filled_qty - tp.filled_qty - sl.filled_qty
        for leg in (tp, sl):
            if leg.is_open and leg.qty != leg.filled_qty + open_qty:
                leg.qty = leg.filled_qty + open_qty
                leg.updated_at = at
                self._dirty[leg.client_order_id] = leg

    def _create_legs(self, parent: PaperOrder, at: datetime) -> None:
        req = parent.request
        tp_req, sl_req = bracket_leg_requests(req, parent.filled_qty)
        start = max(at, parent.last_evaluated)
        # the stop-loss is created (and so walked) first: if one bar reaches both, it wins
        for leg_req, leg_name, expected in (
            (sl_req, "sl", req.stop_loss_price),
            (tp_req, "tp", req.take_profit_price),
        ):
            leg = PaperOrder(
                request=leg_req,
                broker_order_id=self._next_broker_id(),
                status=OrderStatus.ACCEPTED,
                qty=parent.filled_qty,
                submitted_at=at,
                eligible_at=at,
                last_evaluated=start,
                updated_at=at,
                deadline=parent.deadline,
                expected_price=expected,
                parent_id=req.client_order_id,
                leg=leg_name,
            )
            self._add(leg)
        for leg_id in (tp_req.client_order_id, sl_req.client_order_id):
            leg = self._orders[leg_id]
            self._events.append(
                BrokerEvent(
                    EventKind.ACCEPTED,
                    leg_id,
                    at,
                    leg.broker_order_id,
                    status=OrderStatus.ACCEPTED,
                    reason="bracket leg activated by the entry fill",
                )
            )

    def _after_leg_fill(self, leg: PaperOrder, at: datetime) -> None:
        parent = self._orders.get(leg.parent_id or "")
        if parent is None:
            return
        self._sync_legs(parent, at)
        if leg.status is not OrderStatus.FILLED:
            return
        for other in self._legs(parent):
            if other is not None and other is not leg and other.is_open:
                self._finish(other, OrderStatus.CANCELLED, at, "OCO")
        if parent.is_open:
            self._finish(parent, OrderStatus.CANCELLED, at, "OCO: the bracket's exit filled")

    async def _price_context(self, symbol: str, quote: Quote | None = None) -> PriceContext:
        if quote is None:
            quote = await self.market.quote(symbol)
        half_spread = max(ZERO, (quote.ask - quote.bid) / 2)
        if option_contract(symbol) is not None:  # whole fills at the touch, no impact
            return PriceContext(
                adv=ZERO,
                half_spread=half_spread,
                participation_rate=self.config.participation_rate,
                impact_bps_per_pct_adv=ZERO,
                option=True,
            )
        return PriceContext(
            adv=await self._adv(symbol),
            half_spread=half_spread,
            participation_rate=self.config.participation_rate,
            impact_bps_per_pct_adv=self.config.impact_bps_per_pct_adv,
        )

    async def _adv(self, symbol: str) -> Decimal:
        today = self.market.clock.now().date()
        cached = self._adv_cache.get(symbol)
        if cached is not None and cached[0] == today:
            return cached[1]
        adv = Decimal(await self.market.average_daily_volume(symbol))
        self._adv_cache[symbol] = (today, adv)
        return adv

    async def _marks(
        self, positions: dict[str, Position], known: Quote | None = None
    ) -> dict[str, Decimal]:
        marks: dict[str, Decimal] = {}
        for symbol in positions:
            if known is not None and known.symbol == symbol:
                marks[symbol] = known.mid
                continue
            try:
                marks[symbol] = (await self.market.quote(symbol)).mid
            except UnknownSymbol:
                continue
        return marks

    def _reporting_session(self, now: datetime) -> date | None:
        calendar = self.market.calendar
        session = calendar.session_date(now)
        if session is not None:
            return session
        try:
            return calendar.previous_session(now)
        except ValueError:
            return None

    def _window(self, now: datetime) -> frozenset[date]:
        """The last :data:`PDT_WINDOW_SESSIONS` sessions up to the current (or latest) one."""
        latest = self._reporting_session(now)
        if latest is None:
            return frozenset()
        if self._window_cache is not None and self._window_cache[0] == latest:
            return self._window_cache[1]
        calendar = self.market.calendar
        sessions = [latest]
        try:
            while len(sessions) < PDT_WINDOW_SESSIONS:
                before = calendar.session_open(sessions[-1]) - _TINY
                sessions.append(calendar.previous_session(before))
        except ValueError:
            pass
        window = frozenset(sessions)
        self._window_cache = (latest, window)
        return window

    async def _sod_equity(self, session: date) -> Decimal:
        """Equity at ``session``'s open: the books then, marked at the last close before it."""
        if self.account.day_session == session and self.account.sod_equity is not None:
            return self.account.sod_equity
        if self._sod_cache is not None and self._sod_cache[0] == session:
            return self._sod_cache[1]
        opens_at = self.market.calendar.session_open(session)
        equity = self.account.cash
        for symbol, pos in self.account.positions.items():
            try:
                bars = await self.market.bars(symbol, "1Min", end=opens_at, limit=1)
            except UnknownSymbol:
                bars = []
            price = bars[-1].close if bars else pos.avg_entry_price
            equity += pos.qty * price * contract_multiplier(pos.instrument_type)
        self._sod_cache = (session, equity)
        return equity

    async def _ensure_session(self, session: date) -> None:
        """Start ``session``'s day bookkeeping before its first fill (never going back)."""
        current = self.account.day_session
        if current is not None and session <= current:
            return
        sod = await self._sod_equity(session)
        self.account.start_session(session, sod)
        window = self._window(self.market.calendar.session_open(session))
        if window:
            self.account.prune_day_trades(min(window))
        self._sod_cache = None
        self._account_dirty = True
