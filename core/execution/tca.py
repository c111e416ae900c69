"""Transaction cost analysis: what executing an order actually cost, per order and per group
(seed 000 R6.2: slippage expected vs actual, commission impact, by strategy, sector and regime).

Sign convention: every cost in basis points is **positive when it costs money**, whatever the
side. Slippage against a reference price ``r`` for a fill VWAP ``v`` is

* buy: ``(v - r) / r * 10_000`` (paying more than the reference is a cost),
* sell: ``(r - v) / r * 10_000`` (receiving less than the reference is a cost),

so a negative number is price improvement. The arrival price (the reference when the order was
decided) gives ``slippage_bps``; the limit price, when there is one, gives ``limit_slippage_bps``
(normally negative: a limit fills at or better than its price). ``commission_bps`` is the
commission over the filled notional, and ``actual_cost_bps = slippage_bps + commission_bps``
compares with the ``expected_cost_bps`` estimated before the order was sent.

Rounding: basis points to 0.01 half up, dollars to the cent half up, the fill VWAP to the price
quantum ($0.0001). The bps figures are computed from the unrounded VWAP; ``actual_cost_bps`` is the
sum of the two rounded parts, so a report adds up as shown.

Groups (:func:`aggregate_tca`) weight every average by filled notional. Orders without fills are
counted in ``orders`` but left out of the averages: they have no price to measure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from core.domain import (
    BPS,
    CENT,
    ZERO,
    Side,
    ValidationError,
    optional_positive,
    positive,
    round_price,
    to_decimal,
    utc,
)

#: Reported basis points are rounded to this step.
BPS_QUANTUM = Decimal("0.01")
#: The keys :func:`aggregate_tca` groups by.
TCA_GROUP_KEYS = ("strategy", "sector", "regime", "algorithm", "symbol")
#: Group label for an order recorded without a strategy, sector or regime.
UNKNOWN = "unknown"


def signed_bps(side: Side, price: Decimal, reference: Decimal) -> Decimal:
    """Slippage of ``price`` against ``reference`` in bps, positive when it is a cost (unrounded).

    Buy: ``(price - reference) / reference * 10_000``; sell: the negative of that.
    """
    side = Side(side)
    reference = positive(reference, "reference price")
    return side.sign * (price - reference) / reference * BPS


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution of an order: ``qty`` at ``price``, ``commission`` dollars, at ``at`` (UTC)."""

    qty: Decimal
    price: Decimal
    commission: Decimal
    at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "qty", positive(self.qty, "fill qty"))
        object.__setattr__(self, "price", positive(self.price, "fill price"))
        fee = to_decimal(self.commission, "commission")
        if fee < 0:
            raise ValidationError(f"commission must not be negative, got {fee}")
        object.__setattr__(self, "commission", fee)
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise ValidationError(f"fill time must be timezone-aware, got {self.at!r}")
        object.__setattr__(self, "at", utc(self.at))


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """An order and its fills, with the labels it is analysed by. Validated on construction.

    ``strategy``, ``sector`` and ``regime`` given as ``None`` or blank are stored as
    :data:`UNKNOWN` so the order still lands in a group.
    """

    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    arrival_price: Decimal
    limit_price: Decimal | None
    algorithm: str
    strategy: str
    sector: str
    regime: str
    expected_cost_bps: Decimal | None
    fills: tuple[FillRecord, ...]

    def __post_init__(self) -> None:
        for name in ("order_id", "symbol", "algorithm"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"{name} is required, got {value!r}")
        for name in ("strategy", "sector", "regime"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{name} must be text, got {value!r}")
            object.__setattr__(self, name, value.strip() if value and value.strip() else UNKNOWN)
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "qty", positive(self.qty, "qty"))
        object.__setattr__(self, "arrival_price", positive(self.arrival_price, "arrival_price"))
        object.__setattr__(self, "limit_price", optional_positive(self.limit_price, "limit_price"))
        if self.expected_cost_bps is not None:
            expected = to_decimal(self.expected_cost_bps, "expected_cost_bps")
            object.__setattr__(self, "expected_cost_bps", expected)
        fills = tuple(self.fills)
        for fill in fills:
            if not isinstance(fill, FillRecord):
                raise ValidationError(f"fills must be FillRecord values, got {fill!r}")
        filled = sum((f.qty for f in fills), ZERO)
        if filled > self.qty:
            raise ValidationError(
                f"order {self.order_id}: fills of {filled} exceed the order quantity {self.qty}"
            )
        object.__setattr__(self, "fills", fills)


@dataclass(frozen=True, slots=True)
class OrderTca:
    """Cost analysis of one order (rules and sign convention in the module docstring).

    Price and bps fields are ``None`` when nothing filled.
    """

    order_id: str
    symbol: str
    side: Side
    algorithm: str
    strategy: str
    sector: str
    regime: str
    qty: Decimal
    filled_qty: Decimal
    notional: Decimal
    arrival_price: Decimal
    fill_vwap: Decimal | None
    slippage_bps: Decimal | None
    limit_slippage_bps: Decimal | None
    commission: Decimal
    commission_bps: Decimal | None
    actual_cost_bps: Decimal | None
    expected_cost_bps: Decimal | None


def order_tca(record: ExecutionRecord) -> OrderTca:
    """Slippage, commission and total cost of one executed order."""
    filled = sum((f.qty for f in record.fills), ZERO)
    value = sum((f.qty * f.price for f in record.fills), ZERO)
    commission = sum((f.commission for f in record.fills), ZERO)
    vwap = value / filled if filled else None
    slippage = limit_slippage = commission_bps = actual = None
    if vwap is not None:
        slippage = _round_bps(signed_bps(record.side, vwap, record.arrival_price))
        if record.limit_price is not None:
            limit_slippage = _round_bps(signed_bps(record.side, vwap, record.limit_price))
        commission_bps = _round_bps(commission / value * BPS)
        actual = slippage + commission_bps
    return OrderTca(
        order_id=record.order_id,
        symbol=record.symbol,
        side=record.side,
        algorithm=record.algorithm,
        strategy=record.strategy,
        sector=record.sector,
        regime=record.regime,
        qty=record.qty,
        filled_qty=filled,
        notional=_cents(value),
        arrival_price=record.arrival_price,
        fill_vwap=None if vwap is None else round_price(vwap),
        slippage_bps=slippage,
        limit_slippage_bps=limit_slippage,
        commission=commission,
        commission_bps=commission_bps,
        actual_cost_bps=actual,
        expected_cost_bps=record.expected_cost_bps,
    )


# ---------------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcaGroup:
    """Orders sharing one value of a key, with notional-weighted average costs in bps.

    ``orders`` counts every order, ``filled_orders`` those with fills (the only ones in the
    averages). ``expected_cost_bps`` averages the filled orders that carry an estimate. An
    average is ``None`` when no order contributes to it.
    """

    key: str
    orders: int
    filled_notional: Decimal
    commission: Decimal
    avg_slippage_bps: Decimal | None
    expected_cost_bps: Decimal | None
    actual_cost_bps: Decimal | None
    filled_orders: int = 0


def aggregate_tca(rows: Sequence[OrderTca], by: str) -> list[TcaGroup]:
    """Group per-order results by ``by`` (one of :data:`TCA_GROUP_KEYS`), sorted by key."""
    if by not in TCA_GROUP_KEYS:
        raise ValidationError(f"TCA can be grouped by {', '.join(TCA_GROUP_KEYS)}; got {by!r}")
    groups: dict[str, list[OrderTca]] = defaultdict(list)
    for row in rows:
        groups[str(getattr(row, by))].append(row)
    return [_group(key, groups[key]) for key in sorted(groups)]


def _group(key: str, rows: list[OrderTca]) -> TcaGroup:
    filled = [r for r in rows if r.filled_qty > 0]
    return TcaGroup(
        key=key,
        orders=len(rows),
        filled_notional=sum((r.notional for r in filled), ZERO),
        commission=sum((r.commission for r in rows), ZERO),
        avg_slippage_bps=_weighted(filled, lambda r: r.slippage_bps),
        expected_cost_bps=_weighted(filled, lambda r: r.expected_cost_bps),
        actual_cost_bps=_weighted(filled, lambda r: r.actual_cost_bps),
        filled_orders=len(filled),
    )


def _weighted(
    rows: list[OrderTca], value_of: Callable[[OrderTca], Decimal | None]
) -> Decimal | None:
    pairs = [(r.notional, v) for r in rows if (v := value_of(r)) is not None]
    weight = sum((w for w, _ in pairs), ZERO)
    if weight == 0:
        return None
    return _round_bps(sum((w * v for w, v in pairs), ZERO) / weight)


# ---------------------------------------------------------------------------------------------
# Parent orders worked in slices
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParentProgress:
    """How far a sliced parent order has got: quantity filled across its children, their
    quantity-weighted average price ($0.0001) and its slippage against arrival (0.01 bps,
    positive is a cost); both ``None`` before the first fill."""

    qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    slices_done: int
    slices_total: int
    slippage_bps: Decimal | None

    @property
    def fraction(self) -> Decimal:
        """Share of the parent filled, ``filled_qty / qty`` (0 to 1)."""
        return self.filled_qty / self.qty

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


def aggregate_children(
    side: Side,
    qty: Decimal,
    arrival_price: Decimal,
    children: Sequence[tuple[Decimal, Decimal | None]],
    slices_done: int,
    slices_total: int,
) -> ParentProgress:
    """Roll children's ``(filled_qty, avg_price)`` up into the parent's progress.

    A child with nothing filled may have no price. Raises :class:`~core.domain.ValidationError`
    when the children filled more than the parent, a filled child has no price, or the slice
    counts are inconsistent.
    """
    side = Side(side)
    qty = positive(qty, "qty")
    arrival = positive(arrival_price, "arrival_price")
    for name, count in (("slices_done", slices_done), ("slices_total", slices_total)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValidationError(f"{name} must be a non-negative integer, got {count!r}")
    if slices_done > slices_total:
        raise ValidationError(f"slices_done {slices_done} exceeds slices_total {slices_total}")
    filled, value = ZERO, ZERO
    for child_qty, child_price in children:
        q = to_decimal(child_qty, "child filled_qty")
        if q < 0:
            raise ValidationError(f"child filled_qty must not be negative, got {q}")
        if q == 0:
            continue
        if child_price is None:
            raise ValidationError(f"a child filled {q} shares but has no average price")
        filled += q
        value += q * positive(child_price, "child avg_price")
    if filled > qty:
        raise ValidationError(f"children filled {filled}, more than the parent's {qty}")
    if filled == 0:
        return ParentProgress(qty, ZERO, None, slices_done, slices_total, None)
    avg = value / filled
    slippage = _round_bps(signed_bps(side, avg, arrival))
    return ParentProgress(qty, filled, round_price(avg), slices_done, slices_total, slippage)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _round_bps(value: Decimal) -> Decimal:
    return value.quantize(BPS_QUANTUM, rounding=ROUND_HALF_UP)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
