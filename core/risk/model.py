"""What the risk gate reads and writes: trade intents, the account snapshot, decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from core.domain import (
    ZERO,
    AccountState,
    Direction,
    InstrumentType,
    KillSwitchState,
    Position,
    Side,
    Signal,
    TradeType,
    ValidationError,
    contract_multiplier,
    optional_positive,
    positive,
    to_decimal,
    utc,
)

#: Shares per contract: an equity option's premium is quoted per share of 100.
CONTRACT_MULTIPLIER: Mapping[InstrumentType, Decimal] = MappingProxyType(
    {InstrumentType.OPTION: Decimal(100)}
)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step`` (never below zero)."""
    if value <= 0:
        return ZERO
    return (value / step).to_integral_value(ROUND_FLOOR) * step


@dataclass(frozen=True, slots=True)
class TradeIntent:
    """An order the executor wants to send, as the risk gate sees it.

    ``direction`` is the direction of the position concerned: an entry opens or adds to it, a
    ``reduce_only`` intent closes part of it (a reduce-only long sells). ``price`` is the reference
    entry price; ``qty_step`` the smallest quantity increment (1 for whole shares), used when the
    gate reduces the quantity.
    """

    symbol: str
    direction: Direction
    qty: Decimal
    price: Decimal
    stop: Decimal | None = None
    trade_type: TradeType = TradeType.DAY
    instrument_type: InstrumentType = InstrumentType.STOCK
    signal_id: int | None = None
    reduce_only: bool = False
    qty_step: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not self.symbol or not isinstance(self.symbol, str):
            raise ValidationError("trade intent has no symbol")
        object.__setattr__(self, "direction", Direction(self.direction))
        object.__setattr__(self, "trade_type", TradeType(self.trade_type))
        object.__setattr__(self, "instrument_type", InstrumentType(self.instrument_type))
        object.__setattr__(self, "qty", positive(self.qty, "qty"))
        object.__setattr__(self, "price", positive(self.price, "price"))
        object.__setattr__(self, "stop", optional_positive(self.stop, "stop"))
        object.__setattr__(self, "qty_step", positive(self.qty_step, "qty_step"))

    @property
    def side(self) -> Side:
        """The order side: the entry side, or its opposite for a reduce-only intent."""
        entry = self.direction.entry_side
        return entry.opposite if self.reduce_only else entry

    @property
    def multiplier(self) -> Decimal:
        return contract_multiplier(self.instrument_type)

    @property
    def notional(self) -> Decimal:
        """Quantity x reference price x contract multiplier."""
        return self.qty * self.price * self.multiplier

    def fingerprint(self, at: datetime) -> OrderFingerprint:
        """What the duplicate check remembers of this intent once it is sent at ``at``."""
        return OrderFingerprint(self.symbol, self.side, self.qty, utc(at))

    @classmethod
    def from_signal(
        cls,
        signal: Signal,
        qty: Decimal,
        *,
        symbol: str | None = None,
        price: Decimal | None = None,
        instrument_type: InstrumentType = InstrumentType.STOCK,
        qty_step: Decimal = Decimal(1),
    ) -> TradeIntent:
        """The entry intent for ``signal`` (``symbol``/``price`` when routed to another ticker)."""
        return cls(
            symbol=symbol or signal.symbol,
            direction=signal.direction,
            qty=qty,
            price=price if price is not None else signal.entry,
            stop=signal.stop if symbol in (None, signal.symbol) else None,
            trade_type=signal.trade_type,
            instrument_type=instrument_type,
            signal_id=signal.id,
            qty_step=qty_step,
        )


@dataclass(frozen=True, slots=True)
class OrderFingerprint:
    """An order sent recently: the duplicate check compares symbol, side and quantity."""

    symbol: str
    side: Side
    qty: Decimal
    at: datetime

    def __post_init__(self) -> None:
        # Built for every recent order on every batch of signals: values that are already a
        # Side, a finite Decimal and a UTC datetime (the executor's own) are kept as they are,
        # which is what the conversions would return for them.
        side, qty, at = self.side, self.qty, self.at
        if side.__class__ is not Side:
            object.__setattr__(self, "side", Side(side))
        if qty.__class__ is not Decimal or not qty.is_finite():
            object.__setattr__(self, "qty", to_decimal(qty, "qty"))
        if at.__class__ is not datetime or at.tzinfo is not UTC:
            object.__setattr__(self, "at", utc(at))


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """An entry order sent but not yet (fully) filled: its remaining quantity counts as exposure."""

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    instrument_type: InstrumentType = InstrumentType.STOCK
    reduce_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "qty", to_decimal(self.qty, "qty"))
        object.__setattr__(self, "price", positive(self.price, "price"))

    @property
    def signed_value(self) -> Decimal:
        return self.side.sign * self.qty * self.price * contract_multiplier(self.instrument_type)


@dataclass(frozen=True)
class RiskSnapshot:
    """The account as the risk gate needs it at the moment of a decision.

    ``positions`` are keyed by symbol, signed, marked at ``current_price``. ``daily_pnl`` is the
    session's realized plus unrealized P&L (``None``: equity minus ``starting_equity``).
    ``peak_equity`` is the high-water mark for the drawdown check (``None`` skips it).
    ``day_trade_count`` is day trades in the last five sessions (``None``: the account's count).
    """

    account: AccountState
    starting_equity: Decimal
    positions: Mapping[str, Position] = field(default_factory=dict)
    daily_pnl: Decimal | None = None
    peak_equity: Decimal | None = None
    day_trade_count: int | None = None
    recent_orders: Sequence[OrderFingerprint] = ()
    working_orders: Sequence[WorkingOrder] = ()
    kill_switch: KillSwitchState = field(default_factory=lambda: KillSwitchState(active=False))

    def __post_init__(self) -> None:
        start = positive(self.starting_equity, "starting_equity")
        object.__setattr__(self, "starting_equity", start)
        pnl = self.account.equity - start if self.daily_pnl is None else self.daily_pnl
        object.__setattr__(self, "daily_pnl", to_decimal(pnl, "daily_pnl"))
        object.__setattr__(self, "peak_equity", optional_positive(self.peak_equity, "peak_equity"))
        count = self.day_trade_count
        if count is None:
            count = self.account.day_trade_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValidationError(f"day_trade_count must be a non-negative integer, got {count!r}")
        object.__setattr__(self, "day_trade_count", count)
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))
        object.__setattr__(self, "recent_orders", tuple(self.recent_orders))
        object.__setattr__(self, "working_orders", tuple(self.working_orders))

    @property
    def equity(self) -> Decimal:
        return self.account.equity

    @property
    def pnl(self) -> Decimal:
        """``daily_pnl`` resolved (never ``None`` after construction)."""
        assert self.daily_pnl is not None
        return self.daily_pnl

    @property
    def day_trades(self) -> int:
        assert self.day_trade_count is not None
        return self.day_trade_count

    def with_sent(self, intent: TradeIntent, qty: Decimal, at: datetime) -> RiskSnapshot:
        """A new snapshot in which ``intent`` was sent for ``qty`` at ``at``: it counts as a
        working order and as a recent order (fingerprinted with the quantity asked for), so
        later intents of the same batch see it. The snapshot itself never changes."""
        i = intent
        sent = WorkingOrder(i.symbol, i.side, qty, i.price, i.instrument_type, i.reduce_only)
        return replace(
            self,
            working_orders=(*self.working_orders, sent),
            recent_orders=(*self.recent_orders, intent.fingerprint(at)),
        )


@dataclass(frozen=True, slots=True)
class ExposureBook:
    """Signed market value per symbol (positions plus working entry orders) and what is held.

    Positions are valued at their current price; working entry orders at their price for their
    remaining quantity. Reduce-only orders do not add exposure.
    """

    value: Mapping[str, Decimal]
    working: Mapping[str, Decimal]
    held: frozenset[str]

    @classmethod
    def of(cls, snap: RiskSnapshot) -> ExposureBook:
        value: dict[str, Decimal] = {}
        working: dict[str, Decimal] = {}
        held: set[str] = set()
        for symbol, pos in snap.positions.items():
            if pos.qty != 0:
                mv = pos.market_value * contract_multiplier(pos.instrument_type)
                value[symbol] = value.get(symbol, ZERO) + mv
                held.add(symbol)
        for order in snap.working_orders:
            if order.reduce_only or order.qty <= 0:
                continue
            value[order.symbol] = value.get(order.symbol, ZERO) + order.signed_value
            working[order.symbol] = working.get(order.symbol, ZERO) + order.signed_value
            held.add(order.symbol)
        return cls(value, working, frozenset(held))

    def gross(self, symbols: set[str] | None = None) -> Decimal:
        """Sum of absolute market values, of ``symbols`` or of everything."""
        return sum((abs(v) for s, v in self.value.items() if symbols is None or s in symbols), ZERO)


class CheckResult(NamedTuple):
    """One line of a decision's audit trail."""

    name: str
    passed: bool
    detail: str


class CheckName(StrEnum):
    """Names of the gate's checks, in the order they run."""

    REDUCE_ONLY = "reduce_only"
    KILL_SWITCH = "kill_switch"
    DAILY_LOSS = "daily_loss_limit"
    DRAWDOWN = "drawdown"
    MIN_EQUITY = "min_equity"
    MARKET_HOURS = "market_hours"
    DAY_TRADES = "pdt_day_trades"
    DUPLICATE = "duplicate_order"
    CONFLICT = "conflicting_position"
    EXISTING = "existing_position"
    MAX_POSITIONS = "max_positions"
    MIN_POSITION = "min_position_value"
    SINGLE = "single_exposure"
    SECTOR = "sector_exposure"
    LEVERAGE = "leverage"
    BUYING_POWER = "buying_power"


@dataclass(frozen=True)
class RiskDecision:
    """The gate's answer. ``qty`` is the approved quantity (reduced when ``adjustments`` say so)
    and ``None`` on rejection; ``reason`` names the first failed check and its numbers."""

    approved: bool
    reason: str | None
    adjustments: dict[str, Any] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    qty: Decimal | None = None

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def check(self, name: str) -> CheckResult:
        """The audit line of check ``name`` (``KeyError`` if it did not run)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for the ``risk_decisions`` audit table (Decimals as strings)."""
        return {
            "approved": self.approved,
            "reason": self.reason,
            "qty": None if self.qty is None else str(self.qty),
            "adjustments": {k: _plain(v) for k, v in self.adjustments.items()},
            "checks": [[str(c.name), c.passed, c.detail] for c in self.checks],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- formatting for reasons --------------------------------------------------------------------


def money(value: Decimal) -> str:
    """``12,345.60`` style."""
    return f"{value:,.2f}"


def pct(fraction: Decimal) -> str:
    """``0.15`` -> ``15%``, ``0.001`` -> ``0.1%``."""
    return f"{(fraction * 100).normalize():f}%"


def seconds_text(value: timedelta) -> str:
    """A duration in seconds without float noise: ``59``, ``60.000001``."""
    seconds = Decimal(value.days * 86_400 + value.seconds) + Decimal(value.microseconds) / 10**6
    return f"{seconds.normalize():f}" if seconds != 0 else "0"


def qty_text(value: Decimal) -> str:
    """A quantity without trailing zeros: ``100``, ``0.5``."""
    return f"{value.normalize():f}" if value != 0 else "0"
