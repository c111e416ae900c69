"""Domain model: signals, orders and their state machine, fills, positions, account state.

Money and quantities are always :class:`~decimal.Decimal`; timestamps are timezone-aware UTC.
Constructors validate their input and raise :class:`ValidationError` with a message a trader can
read, so a bad signal or order can be stored as rejected with that reason.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)
CENT = Decimal("0.01")
#: Smallest price increment we keep for prices we compute ourselves (fills with slippage).
PRICE_QUANTUM = Decimal("0.0001")


class ValidationError(ValueError):
    """Input a user or a signal source can cause; the message is stored as the rejection reason."""


class IllegalTransition(RuntimeError):
    """An order status change the state machine does not allow."""


# ---------------------------------------------------------------------------------------------
# Exact numbers and UTC time
# ---------------------------------------------------------------------------------------------


def to_decimal(value: Any, name: str = "value") -> Decimal:
    """Convert ``value`` to a finite Decimal without float rounding surprises.

    Floats are converted through ``repr`` (``0.1`` becomes ``Decimal('0.1')``), strings and ints
    exactly. NaN, infinities, booleans and non-numeric input raise :class:`ValidationError`.
    """
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a number, got a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number, got {value!r}")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError(f"{name} must be a number, got {value!r}") from None
    else:
        raise ValidationError(f"{name} must be a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    return result


def positive(value: Any, name: str) -> Decimal:
    """A finite, strictly positive Decimal, or :class:`ValidationError`."""
    result = to_decimal(value, name)
    if result <= 0:
        raise ValidationError(f"{name} must be positive, got {result}")
    return result


def optional_positive(value: Any, name: str) -> Decimal | None:
    return None if value is None else positive(value, name)


def utc(ts: datetime) -> datetime:
    """Return ``ts`` in UTC; naive datetimes are refused rather than guessed."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"naive datetime {ts!r}: timestamps must be timezone-aware")
    return ts.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Settings as plain data (the frozen config dataclasses store themselves as JSON)
# ---------------------------------------------------------------------------------------------


def seconds_text(value: timedelta) -> int | str:
    """A duration in seconds, exactly: an int when whole, else a decimal string."""
    seconds = Decimal(value.days * 86_400 + value.seconds) + Decimal(value.microseconds) / 10**6
    return int(seconds) if seconds == seconds.to_integral_value() else f"{seconds.normalize():f}"


def to_duration(value: Any, name: str, *, allow_zero: bool = False) -> timedelta:
    """A duration from a timedelta or a number of seconds; positive (or zero if allowed)."""
    if isinstance(value, timedelta):
        return value
    seconds = to_decimal(value, name)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        need = "must not be negative" if allow_zero else "must be a positive duration"
        raise ValidationError(f"{name} {need}, got {seconds} seconds")
    return timedelta(microseconds=int(seconds * 1_000_000))


def to_int(value: Any, name: str) -> int:
    """An integer from an int or its text; booleans and fractions are refused."""
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValidationError(f"{name} must be an integer, got {value!r}")


def plain_data(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-ready data: Decimals as strings, durations in seconds."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Decimal):
            out[f.name] = str(value)
        elif isinstance(value, timedelta):
            out[f.name] = seconds_text(value)
        else:
            out[f.name] = value
    return out


def known_changes(cls: type, data: Any, what: str) -> dict[str, Any]:
    """``data`` as field changes of the config dataclass ``cls``; anything that is not a
    mapping, or names a field ``cls`` does not have, is refused (a misspelt setting must not
    silently keep its default)."""
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"{what} settings must be given as a mapping of fields, got {type(data).__name__}"
        )
    known = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ValidationError(f"unknown {what} fields: {', '.join(unknown)}")
    return dict(data)


def round_price(price: Decimal) -> Decimal:
    """Round a computed price to :data:`PRICE_QUANTUM` (half-even)."""
    return price.quantize(PRICE_QUANTUM)


# ---------------------------------------------------------------------------------------------
# Enums
# ---------------------------------------------------------------------------------------------


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def entry_side(self) -> Side:
        return Side.BUY if self is Direction.LONG else Side.SELL


class TradeType(StrEnum):
    SCALP = "scalp"
    DAY = "day"
    SWING = "swing"


class InstrumentType(StrEnum):
    STOCK = "stock"
    OPTION = "option"
    LEVERAGED_ETF = "leveraged_etf"


#: Client order ids of a broker's option expiry settlements (``ax-x-<occ>-<yyyymmdd>``): the
#: broker closes the position at the expiry close; the executor adopts them as exits.
EXPIRY_SETTLEMENT_PREFIX = "ax-x-"


def is_expiry_settlement(client_order_id: str) -> bool:
    return client_order_id.startswith(EXPIRY_SETTLEMENT_PREFIX)


def contract_multiplier(instrument_type: InstrumentType | str) -> Decimal:
    """Value of one unit of quantity per unit of price: 100 for an equity option (its premium
    is quoted per share of 100), else 1."""
    return Decimal(100) if InstrumentType(instrument_type) is InstrumentType.OPTION else ONE


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"
    MARKET_ON_CLOSE = "market_on_close"
    BRACKET = "bracket"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    CLS = "cls"


class OrderStatus(StrEnum):
    NEW = "new"
    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL_STATUSES and self is not OrderStatus.NEW


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
_AFTER_SEND = frozenset(
    {
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
)
#: The order state machine. Statuses only move forward; a broker may skip intermediate steps
#: (a market order can come back filled from the submit call), terminal statuses never move.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset(
        {OrderStatus.PENDING_SUBMIT, OrderStatus.REJECTED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PENDING_SUBMIT: _AFTER_SEND | {OrderStatus.SUBMITTED},
    OrderStatus.SUBMITTED: _AFTER_SEND,
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


class SignalStatus(StrEnum):
    PENDING = "pending"
    ROUTED = "routed"  # an order was written for it
    REJECTED = "rejected"  # validation, risk or kill switch; reason stored


class CommandType(StrEnum):
    KILL_SWITCH_ON = "kill_switch_on"
    KILL_SWITCH_OFF = "kill_switch_off"
    CANCEL_ORDER = "cancel_order"
    CANCEL_ALL = "cancel_all"
    MANUAL_ORDER = "manual_order"
    UPDATE_SETTING = "update_setting"
    APPROVE_REBALANCE = "approve_rebalance"
    CANCEL_REBALANCE = "cancel_rebalance"
    #: Take the broker's quantity of a symbol as ours (a reconciliation difference resolved).
    ADOPT_BROKER_POSITION = "adopt_broker_position"
    #: Cancel an order the broker has and our store does not.
    CANCEL_ORPHAN_ORDER = "cancel_orphan_order"
    #: Switch a live account to live trading (behind the paper-history gate; ``confirm: true``).
    GO_LIVE = "go_live"
    #: Stop live trading: new-risk orders are refused again (exits still go out).
    GO_PAPER = "go_paper"


class CommandStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    """A trade idea waiting for the executor.

    ``entry`` is the reference price, ``stop`` the invalidation level (below entry for longs, above
    for shorts) and ``target`` the optional take-profit. ``qty`` is optional: sizing decides it when
    absent. ``id`` is assigned by the store.
    """

    symbol: str
    direction: Direction
    entry: Decimal
    stop: Decimal
    created_at: datetime
    target: Decimal | None = None
    qty: Decimal | None = None
    conviction: int = 75
    trade_type: TradeType = TradeType.DAY
    timeframe: str = "10Min"
    source: str = "api"
    order_type: OrderType = OrderType.MARKET
    status: SignalStatus = SignalStatus.PENDING
    reason: str | None = None
    id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def validate(self, known_symbols: frozenset[str] | None = None) -> None:
        """Raise :class:`ValidationError` with the first problem found."""
        if not self.symbol or not isinstance(self.symbol, str):
            raise ValidationError("signal has no symbol")
        if known_symbols is not None and self.symbol not in known_symbols:
            raise ValidationError(f"unknown symbol {self.symbol!r}")
        entry = positive(self.entry, "entry")
        stop = positive(self.stop, "stop")
        if self.direction is Direction.LONG and stop >= entry:
            raise ValidationError(f"stop {stop} must be below entry {entry} for a long signal")
        if self.direction is Direction.SHORT and stop <= entry:
            raise ValidationError(f"stop {stop} must be above entry {entry} for a short signal")
        if self.target is not None:
            target = positive(self.target, "target")
            if self.direction is Direction.LONG and target <= entry:
                raise ValidationError(f"target {target} must be above entry {entry} for a long")
            if self.direction is Direction.SHORT and target >= entry:
                raise ValidationError(f"target {target} must be below entry {entry} for a short")
        if self.qty is not None:
            positive(self.qty, "qty")
        if isinstance(self.conviction, bool) or not isinstance(self.conviction, int):
            raise ValidationError(f"conviction must be an integer 0-100, got {self.conviction!r}")
        if not 0 <= self.conviction <= 100:
            raise ValidationError(f"conviction must be between 0 and 100, got {self.conviction}")


def client_order_id_for(signal_id: int | str, leg: str = "entry") -> str:
    """Deterministic client order id for a signal's order leg: the same input, the same id.

    It is what lets a restarted executor find an order at the broker without resubmitting it.
    """
    return f"ax-s{signal_id}-{leg}"


def client_order_id_for_command(command_id: int | str, leg: str = "manual") -> str:
    return f"ax-c{command_id}-{leg}"


def short_hash(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What we ask a broker to do. Validated on construction.

    Prices by type: limit needs ``limit_price``; stop needs ``stop_price``; stop_limit needs both;
    trailing_stop needs exactly one of ``trail_percent``/``trail_price``; bracket needs
    ``take_profit_price`` and ``stop_loss_price`` (and ``limit_price`` for a limit entry).
    Market-on-close orders use time in force ``cls``.

    ``notional`` makes a dollar-amount order: buy or sell that much money's worth (a positive
    amount in whole cents). It is a market order with time in force ``day`` (so never a
    bracket), and ``qty`` is then the caller's estimate of the quantity (positive, fractional
    allowed), used for risk checks and bookkeeping: the broker fills the dollar amount, so the
    filled quantity may differ from ``qty``.
    """

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    trail_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    signal_id: int | None = None
    #: True when the order only reduces or closes an existing position (exits, flatten).
    reduce_only: bool = False
    instrument_type: InstrumentType = InstrumentType.STOCK
    #: A dollar amount to trade instead of a quantity (see the class docstring).
    notional: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValidationError("client_order_id is required")
        if not self.symbol or not isinstance(self.symbol, str):
            raise ValidationError("symbol is required")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "time_in_force", TimeInForce(self.time_in_force))
        object.__setattr__(self, "qty", positive(self.qty, "qty"))
        for name in (
            "limit_price",
            "stop_price",
            "trail_percent",
            "trail_price",
            "take_profit_price",
            "stop_loss_price",
        ):
            object.__setattr__(self, name, optional_positive(getattr(self, name), name))
        self._check_prices()
        if self.notional is not None:
            object.__setattr__(self, "notional", positive(self.notional, "notional"))
            self._check_notional()

    def _check_notional(self) -> None:
        notional = self.notional
        assert notional is not None
        try:
            whole_cents = notional == notional.quantize(CENT)
        except InvalidOperation:  # more digits than a Decimal holds
            raise ValidationError(f"notional {notional} is too large") from None
        if not whole_cents:
            raise ValidationError(
                f"notional must be a dollar amount in whole cents (at most 2 decimal places), "
                f"got {notional}"
            )
        if self.order_type is not OrderType.MARKET:
            raise ValidationError(
                f"a notional (dollar amount) order must be a market order, not "
                f"{self.order_type.value}"
            )
        if self.time_in_force is not TimeInForce.DAY:
            raise ValidationError(
                f"a notional (dollar amount) order must use time in force 'day', not "
                f"'{self.time_in_force.value}'"
            )

    def _check_prices(self) -> None:
        t = self.order_type
        need = {
            OrderType.LIMIT: ("limit_price",),
            OrderType.STOP: ("stop_price",),
            OrderType.STOP_LIMIT: ("limit_price", "stop_price"),
            OrderType.BRACKET: ("take_profit_price", "stop_loss_price"),
        }.get(t, ())
        for name in need:
            if getattr(self, name) is None:
                raise ValidationError(f"{t.value} order needs {name}")
        if t is OrderType.TRAILING_STOP and (self.trail_percent is None) == (
            self.trail_price is None
        ):
            raise ValidationError(
                "trailing_stop order needs exactly one of trail_percent/trail_price"
            )
        trail_pct = self.trail_percent
        if t is OrderType.TRAILING_STOP and trail_pct is not None and trail_pct >= 100:
            raise ValidationError("trail_percent must be below 100")
        if t is OrderType.MARKET_ON_CLOSE and self.time_in_force is not TimeInForce.CLS:
            raise ValidationError("market_on_close order must use time in force 'cls'")
        if self.time_in_force is TimeInForce.CLS and t not in (
            OrderType.MARKET_ON_CLOSE,
            OrderType.LIMIT,
        ):
            raise ValidationError("time in force 'cls' is only for market/limit-on-close orders")
        if t is OrderType.BRACKET:
            tp, sl = self.take_profit_price, self.stop_loss_price
            assert tp is not None and sl is not None
            if self.side is Side.BUY and not sl < tp:
                raise ValidationError("bracket buy needs stop_loss_price below take_profit_price")
            if self.side is Side.SELL and not sl > tp:
                raise ValidationError("bracket sell needs stop_loss_price above take_profit_price")
            if self.limit_price is not None:
                lp = self.limit_price
                if self.side is Side.BUY and not sl < lp < tp:
                    raise ValidationError(
                        "bracket buy limit must lie between stop loss and take profit"
                    )
                if self.side is Side.SELL and not tp < lp < sl:
                    raise ValidationError(
                        "bracket sell limit must lie between take profit and stop loss"
                    )
        if t is OrderType.STOP_LIMIT:
            assert self.limit_price is not None and self.stop_price is not None

    @property
    def notional_estimate_price(self) -> Decimal | None:
        return self.limit_price or self.stop_price

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Decimal) else v.value if isinstance(v, StrEnum) else v)
            for k, v in (
                (name, getattr(self, name))
                for name in self.__dataclass_fields__  # type: ignore[attr-defined]
            )
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderRequest:
        """Build a request from plain data (a command payload, a stored row). Validates it."""
        known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"unknown order fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValidationError(f"bad order: {exc}") from None
        except ValueError as exc:  # bad enum value
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One recorded step of an order's life."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    reason: str | None = None


@dataclass(slots=True)
class Order:
    """Our record of an order: the request, where it is in its life, and its fills so far."""

    request: OrderRequest
    status: OrderStatus = OrderStatus.NEW
    broker: str | None = None
    broker_order_id: str | None = None
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    reason: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    history: list[StatusChange] = field(default_factory=list)
    #: Parent client order id for bracket legs and algorithm slices.
    parent_id: str | None = None

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def remaining_qty(self) -> Decimal:
        """What is left to fill; never negative for a notional order, whose ``qty`` is only an
        estimate of what its dollar amount buys."""
        remaining = self.request.qty - self.filled_qty
        if self.request.notional is not None:
            return max(remaining, ZERO)
        return remaining

    @property
    def is_bracket_leg(self) -> bool:
        """A bracket's take-profit or stop-loss leg (an algorithm's slice also has a parent,
        but is an order of its own: the broker sizes and holds only bracket legs)."""
        return self.parent_id is not None and self.client_order_id in bracket_leg_ids(
            self.parent_id
        )

    def can_transition(self, to: OrderStatus) -> bool:
        return to in ALLOWED_TRANSITIONS[self.status]

    def transition(self, to: OrderStatus, at: datetime, reason: str | None = None) -> StatusChange:
        """Move to ``to``, recording time and reason; :class:`IllegalTransition` if not allowed."""
        to = OrderStatus(to)
        if not self.can_transition(to):
            raise IllegalTransition(
                f"order {self.client_order_id}: {self.status.value} -> {to.value} is not allowed"
            )
        change = StatusChange(self.status, to, utc(at), reason)
        self.history.append(change)
        self.status = to
        self.updated_at = change.at
        if reason and to in (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            self.reason = reason
        return change

    def apply_fill(self, qty: Decimal, price: Decimal) -> None:
        """Add a fill to the running quantity and volume-weighted average price. A notional
        order may fill more than its estimated ``qty`` (the broker fills the dollar amount)."""
        qty = positive(qty, "fill qty")
        if self.request.notional is None and qty > self.remaining_qty:
            raise ValidationError(
                f"fill of {qty} exceeds remaining {self.remaining_qty} on {self.client_order_id}"
            )
        prev_value = (self.avg_fill_price or ZERO) * self.filled_qty
        self.filled_qty += qty
        self.avg_fill_price = (prev_value + qty * price) / self.filled_qty


# ---------------------------------------------------------------------------------------------
# Broker-side views and events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as a broker reports it."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    status: OrderStatus
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    reason: str | None = None
    submitted_at: datetime | None = None
    #: The dollar amount of a notional order (``qty`` is then the broker's estimate until the
    #: order has filled); None for orders by quantity.
    notional: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fill_id`` is unique per broker, so fills are recorded exactly once."""

    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    at: datetime
    broker: str
    expected_price: Decimal | None = None
    commission: Decimal = ZERO
    broker_order_id: str | None = None

    @property
    def slippage_bps(self) -> Decimal | None:
        """Adverse slippage against the arrival price, in basis points (positive = worse)."""
        if self.expected_price is None or self.expected_price == 0:
            return None
        diff = (self.price - self.expected_price) * self.side.sign
        return (diff / self.expected_price * BPS).quantize(Decimal("0.0001"))

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price


class EventKind(StrEnum):
    ACCEPTED = "accepted"
    FILL = "fill"  # partial or full; ``fill`` is set
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    """A change a broker reports on one of our orders, in the order it happened."""

    kind: EventKind
    client_order_id: str
    at: datetime
    broker_order_id: str | None = None
    fill: Fill | None = None
    #: The order's status after this event, as the broker sees it.
    status: OrderStatus | None = None
    reason: str | None = None


# ---------------------------------------------------------------------------------------------
# Positions and account
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """A holding. ``qty`` is signed: positive long, negative short."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None = None
    instrument_type: InstrumentType = InstrumentType.STOCK
    opened_at: datetime | None = None
    realized_pnl: Decimal = ZERO

    @property
    def side(self) -> Direction:
        return Direction.LONG if self.qty >= 0 else Direction.SHORT

    @property
    def market_value(self) -> Decimal:
        price = self.current_price if self.current_price is not None else self.avg_entry_price
        return self.qty * price

    @property
    def cost_basis(self) -> Decimal:
        return self.qty * self.avg_entry_price

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.current_price is None:
            return ZERO
        return (self.current_price - self.avg_entry_price) * self.qty

    @property
    def unrealized_pnl_pct(self) -> Decimal:
        basis = abs(self.cost_basis)
        return ZERO if basis == 0 else self.unrealized_pnl / basis

    def closing_request(
        self,
        client_order_id: str,
        signal_id: int | None = None,
        instrument_type: InstrumentType | None = None,
    ) -> OrderRequest:
        """A reduce-only market order for the whole position (exits, kill-switch closes)."""
        return OrderRequest(
            client_order_id=client_order_id,
            symbol=self.symbol,
            side=Side.SELL if self.qty > 0 else Side.BUY,
            qty=abs(self.qty),
            reduce_only=True,
            signal_id=signal_id,
            instrument_type=instrument_type or self.instrument_type,
        )

    def marked(self, price: Decimal) -> Position:
        # built directly: this runs for every position on every price (dataclasses.replace
        # costs several times as much)
        return Position(
            self.symbol,
            self.qty,
            self.avg_entry_price,
            price,
            self.instrument_type,
            self.opened_at,
            self.realized_pnl,
        )


@dataclass(frozen=True, slots=True)
class PositionChange:
    """The result of applying a fill to a position."""

    position: Position  # qty 0 when the fill closed it
    realized_pnl: Decimal
    opened: bool  # a new position started (from flat or by flipping side)
    closed: bool  # the position went to zero (or flipped)


def apply_fill_to_position(pos: Position | None, fill: Fill) -> PositionChange:
    """Average-cost position accounting with realized P&L on reductions and flips."""
    signed = fill.qty * fill.side.sign
    if pos is None or pos.qty == 0:
        new = Position(fill.symbol, signed, fill.price, fill.price, opened_at=fill.at)
        return PositionChange(new, ZERO, opened=True, closed=False)
    if (pos.qty > 0) == (signed > 0):  # adding
        qty = pos.qty + signed
        avg = (pos.avg_entry_price * pos.qty + fill.price * signed) / qty
        new = replace(pos, qty=qty, avg_entry_price=avg, current_price=fill.price)
        return PositionChange(new, ZERO, opened=False, closed=False)
    closing = min(abs(signed), abs(pos.qty))
    direction = 1 if pos.qty > 0 else -1
    realized = (fill.price - pos.avg_entry_price) * closing * direction
    remaining = pos.qty + signed
    if remaining == 0:
        new = replace(
            pos, qty=ZERO, current_price=fill.price, realized_pnl=pos.realized_pnl + realized
        )
        return PositionChange(new, realized, opened=False, closed=True)
    if (remaining > 0) == (pos.qty > 0):  # partial reduction
        new = replace(
            pos, qty=remaining, current_price=fill.price, realized_pnl=pos.realized_pnl + realized
        )
        return PositionChange(new, realized, opened=False, closed=False)
    # flipped through zero: the rest opens a new position at the fill price
    new = Position(fill.symbol, remaining, fill.price, fill.price, opened_at=fill.at)
    return PositionChange(new, realized, opened=True, closed=True)


@dataclass(frozen=True, slots=True)
class AccountState:
    """A broker account snapshot (seed 000 R1.3 ``AccountInfo`` plus PDT state)."""

    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    margin_used: Decimal = ZERO
    day_trades_remaining: int | None = None
    day_trade_count: int = 0
    pattern_day_trader: bool = False
    long_market_value: Decimal = ZERO
    short_market_value: Decimal = ZERO
    daily_pnl: Decimal = ZERO
    at: datetime | None = None

    @property
    def portfolio_value(self) -> Decimal:
        return self.equity

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (amounts as strings): what the heartbeat publishes for the dashboard."""
        return {
            "equity": str(self.equity),
            "cash": str(self.cash),
            "buying_power": str(self.buying_power),
            "margin_used": str(self.margin_used),
            "day_trades_remaining": self.day_trades_remaining,
            "day_trade_count": self.day_trade_count,
            "pattern_day_trader": self.pattern_day_trader,
            "long_market_value": str(self.long_market_value),
            "short_market_value": str(self.short_market_value),
            "daily_pnl": str(self.daily_pnl),
            "at": None if self.at is None else self.at.isoformat(),
        }


# ---------------------------------------------------------------------------------------------
# Market data values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    at: datetime

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def touch(self, side: Side) -> Decimal:
        """The price an aggressive ``side`` order trades at: the ask for buys, the bid for sells."""
        return self.ask if side is Side.BUY else self.bid


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar; ``start`` is the bar's opening time (UTC), ``end`` its close."""

    symbol: str
    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


# ---------------------------------------------------------------------------------------------
# Commands (dashboard -> executor inbox and audit trail)
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Command:
    type: str  # validated against CommandType by the executor, so unknown types get a stored reason
    payload: dict[str, Any]
    created_by: str
    created_at: datetime = field(default_factory=utcnow)
    status: CommandStatus = CommandStatus.PENDING
    result: str | None = None
    applied_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ReconciliationDiff:
    """A difference between our store and the broker, recorded and shown, never auto-overwritten."""

    kind: str  # position_mismatch | missing_at_broker | unknown_at_broker | order_status
    key: str  # symbol or client order id
    ours: str | None
    theirs: str | None
    at: datetime
    broker: str


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    active: bool
    reason: str | None = None
    at: datetime | None = None
    by: str | None = None


def bracket_leg_ids(client_order_id: str) -> tuple[str, str]:
    """Client order ids of a bracket's take-profit and stop-loss legs (deterministic)."""
    return f"{client_order_id}-tp", f"{client_order_id}-sl"


def bracket_leg_requests(parent: OrderRequest, qty: Decimal) -> tuple[OrderRequest, OrderRequest]:
    """The take-profit (limit) and stop-loss (stop) legs of a bracket, for ``qty``: reduce-only
    orders on the exit side, with the ids of :func:`bracket_leg_ids`."""
    tp_id, sl_id = bracket_leg_ids(parent.client_order_id)
    sl = OrderRequest(
        client_order_id=sl_id,
        symbol=parent.symbol,
        side=parent.side.opposite,
        qty=qty,
        order_type=OrderType.STOP,
        time_in_force=parent.time_in_force,
        stop_price=parent.stop_loss_price,
        signal_id=parent.signal_id,
        reduce_only=True,
        instrument_type=parent.instrument_type,
    )
    tp = replace(
        sl,
        client_order_id=tp_id,
        order_type=OrderType.LIMIT,
        stop_price=None,
        limit_price=parent.take_profit_price,
    )
    return tp, sl


# ---------------------------------------------------------------------------------------------
# Journal (seed 001 "Data Models")
# ---------------------------------------------------------------------------------------------


class TradeStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class TradeExecution:
    """A round trip: entry fill(s) to exit. Mirrors seed 001's ``trade_executions`` table."""

    ticker: str
    direction: Direction
    trade_type: TradeType
    entry_price: Decimal
    shares: Decimal
    entry_time: datetime
    signal_id: int | None = None
    instrument_type: InstrumentType = InstrumentType.STOCK
    original_ticker: str | None = None
    leverage: Decimal = ONE
    exit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    target_price: Decimal | None = None
    conviction: int | None = None
    status: TradeStatus = TradeStatus.OPEN
    exit_reason: str | None = None
    pnl: Decimal | None = None
    pnl_pct: Decimal | None = None
    broker: str | None = None
    order_id: str | None = None
    exit_time: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    # seed 000 R6.1 trade record fields
    trigger: str | None = None  # signal | rebalance | stop_loss | manual | …
    strategy: str | None = None  # the signal source, e.g. ema_cloud
    sector: str | None = None
    regime: str | None = None
    factor_scores: dict[str, Any] = field(default_factory=dict)
    portfolio_value: Decimal | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class StageDecision:
    """What one pipeline stage decided about a signal (instrument, risk, sizing, …): stored, so
    every signal can be traced to its decisions, its order, its fills and its exit."""

    signal_id: int
    stage: str
    approved: bool
    at: datetime
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a trader must see: the kill switch tripping, an exit that keeps failing."""

    kind: str  # kill_switch, exit, broker, …
    level: AlertLevel
    message: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None


@dataclass(slots=True)
class DailyPnl:
    """One session's P&L summary. Mirrors seed 001's ``daily_pnl`` table."""

    date: Any  # datetime.date
    starting_equity: Decimal
    ending_equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    total_trades: int = 0
    winning_trades: int = 0
    losing_trades: int = 0
    max_drawdown: Decimal | None = None
    kill_switch_triggered: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
