"""Pre-trade cost estimates and the choice of execution algorithm (seed 000 R2.2, R3.1).

Cost model, in basis points of the order's notional:

* Market impact is linear in participation: ``impact_bps = qty / ADV * 100 * k`` with
  ``k = impact_bps_per_pct_adv`` (10 bps per 1 % of average daily volume, the same model the paper
  broker fills with). A sliced order pays impact on each child, so ``n`` equal slices cost
  ``impact_bps / n`` in all.
* Crossing the spread costs the half-spread ``(ask - bid) / 2 / mid``. A missing, non-positive,
  locked (bid = ask) or crossed quote is a stale or broken snapshot, and pricing it would make an
  order look free, so the configured default half-spread is used instead.
* Commission comes from the account's :class:`~core.brokers.commission.CommissionSchedule`,
  charged as for one order filled in one piece (per-order minimum included).

Dollar amounts are rounded to the cent, half up (as commissions are). Basis points reported in
results are rounded to 0.01 bps, half up; decisions compare the unrounded figures, so an order one
share past a threshold is treated as past it.

Algorithm choice (:func:`choose_algorithm`), first rule that applies:

1. participation above ``adv_threshold_pct`` of ADV: sliced, TWAP, or VWAP when configured and a
   volume profile exists;
2. half-spread + impact above ``passive_impact_bps``: a passive limit at the near touch (which
   pays neither spread nor impact when it fills; the chase bounds what waiting may cost);
3. otherwise a market order.

The model is symmetric, so the choice takes no side: a rebalance sell is sliced like a buy of the
same size. Exits are not handled here. Stop-loss and target exits, time stops and the kill
switch's flatten orders must go out at once and are never throttled or delayed by any limit, so
the caller sends them straight to the broker instead of through this choice; trading a known
few basis points for an unbounded loss on a position that must close is never worth it.

Limit prices are rounded to the exchange tick (a cent at $1.00 and above, $0.0001 below, as the
brokers require) *away* from the last price: a buy limit rounds up, a sell limit down, so the
order is never less marketable than its buffer says.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from core.brokers.commission import CommissionSchedule
from core.domain import (
    BPS,
    CENT,
    ONE,
    PRICE_QUANTUM,
    ZERO,
    Side,
    ValidationError,
    positive,
    to_decimal,
)
from core.execution.config import ExecutionConfig
from core.execution.schedule import split_evenly

_HUNDRED = Decimal(100)
#: Reported basis points are rounded to this step.
BPS_QUANTUM = Decimal("0.01")
#: Reported participation (percent of ADV) is rounded to this step.
PCT_QUANTUM = Decimal("0.0001")


class Algorithm(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    TWAP = "twap"
    VWAP = "vwap"


# ---------------------------------------------------------------------------------------------
# Ticks and limit prices
# ---------------------------------------------------------------------------------------------


def tick_size(price: Decimal) -> Decimal:
    """The exchange tick at ``price``: $0.01 at $1.00 and above, $0.0001 below."""
    return CENT if price >= ONE else PRICE_QUANTUM


def round_to_tick(price: Decimal, *, up: bool) -> Decimal:
    """``price`` on the tick grid, rounded up or down; never below one tick."""
    rounded = price.quantize(tick_size(price), rounding=ROUND_CEILING if up else ROUND_FLOOR)
    # A price just under $1.00 can round up onto the cent grid, which is still a valid tick.
    return max(rounded, PRICE_QUANTUM)


def limit_price(side: Side, last: Decimal, buffer_bps: Decimal) -> Decimal:
    """A protective limit ``buffer_bps`` beyond ``last``: ``last * (1 + b)`` for a buy (rounded up
    to the tick), ``last * (1 - b)`` for a sell (rounded down)."""
    side = Side(side)
    last = positive(last, "last")
    buffer = _bps(buffer_bps, "buffer_bps")
    if buffer >= BPS:
        raise ValidationError(f"buffer_bps must be below {BPS}, got {buffer}")
    factor = ONE + side.sign * buffer / BPS
    return round_to_tick(last * factor, up=side is Side.BUY)


def passive_price(side: Side, bid: Decimal | None, ask: Decimal | None, last: Decimal) -> Decimal:
    """The near touch: a buy rests at the bid, a sell at the ask; ``last`` when there is no
    usable quote (missing, non-positive or crossed)."""
    side = Side(side)
    last = positive(last, "last")
    if not _usable_quote(bid, ask, allow_locked=True):
        return last
    assert bid is not None and ask is not None
    return bid if side is Side.BUY else ask


# ---------------------------------------------------------------------------------------------
# Participation, impact, spread
# ---------------------------------------------------------------------------------------------


def participation_pct(qty: Decimal, adv_shares: Decimal) -> Decimal:
    """``qty`` as a percent of average daily volume (``qty / ADV * 100``)."""
    qty = positive(qty, "qty")
    adv = _adv(adv_shares)
    return qty / adv * _HUNDRED


def impact_bps(qty: Decimal, adv_shares: Decimal, config: ExecutionConfig) -> Decimal:
    """Linear market impact of ``qty`` traded at once: participation % x
    ``impact_bps_per_pct_adv``."""
    return participation_pct(qty, adv_shares) * config.impact_bps_per_pct_adv


def half_spread_bps(bid: Decimal | None, ask: Decimal | None, config: ExecutionConfig) -> Decimal:
    """Half the quoted spread in bps of the mid, ``(ask - bid) / (ask + bid) * 10_000``; the
    configured default for a missing, non-positive, locked or crossed quote."""
    if not _usable_quote(bid, ask, allow_locked=False):
        return config.default_half_spread_bps
    assert bid is not None and ask is not None
    return (ask - bid) / (ask + bid) * BPS


# ---------------------------------------------------------------------------------------------
# Cost estimate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Estimated cost of an order in dollars (each rounded to the cent)."""

    notional: Decimal
    commission: Decimal
    spread_cost: Decimal
    impact_cost: Decimal

    @property
    def total(self) -> Decimal:
        """Commission + spread + impact, in dollars."""
        return self.commission + self.spread_cost + self.impact_cost

    @property
    def bps(self) -> Decimal:
        """The total in bps of notional (0.01 bps); 0 for a zero notional."""
        if self.notional == 0:
            return ZERO
        return _round_bps(self.total / self.notional * BPS)


def estimate_cost(
    qty: Decimal,
    price: Decimal,
    adv_shares: Decimal,
    *,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
    commission: CommissionSchedule | None,
    config: ExecutionConfig,
) -> CostEstimate:
    """What sending ``qty`` at ``price`` as one market order is expected to cost.

    Spread cost is the half-spread times notional, impact cost the linear impact times notional,
    commission ``commission.estimate(qty, price)`` (none without a schedule).
    """
    qty = positive(qty, "qty")
    price = positive(price, "price")
    exact_notional = qty * price
    spread = half_spread_bps(bid, ask, config)
    impact = impact_bps(qty, adv_shares, config)
    fee = ZERO if commission is None else commission.estimate(qty, price)
    return CostEstimate(
        notional=_cents(exact_notional),
        commission=_cents(fee),
        spread_cost=_cents(exact_notional * spread / BPS),
        impact_cost=_cents(exact_notional * impact / BPS),
    )


# ---------------------------------------------------------------------------------------------
# Algorithm choice
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlgoChoice:
    """How an order is to be worked and why.

    ``participation_pct`` is the order's share of ADV in percent (0.0001); ``expected_cost_bps``
    the estimated cost of the chosen algorithm (0.01 bps): half-spread + impact for a market
    order, half-spread + impact / slices for a sliced one, nothing for a passive limit (it rests
    at the near touch), plus commission bps in every case when a schedule is given. ``slices``
    is the number of child orders (1 unless sliced).
    """

    algorithm: Algorithm
    participation_pct: Decimal
    expected_cost_bps: Decimal
    reason: str
    slices: int = 1


def choose_algorithm(
    qty: Decimal,
    price: Decimal,
    adv_shares: Decimal,
    *,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
    config: ExecutionConfig,
    volume_profile_available: bool = False,
    commission: CommissionSchedule | None = None,
) -> AlgoChoice:
    """Pick market, passive limit, TWAP or VWAP for an order (rules in the module docstring)."""
    qty = positive(qty, "qty")
    price = positive(price, "price")
    pct = participation_pct(qty, adv_shares)
    spread = half_spread_bps(bid, ask, config)
    impact = pct * config.impact_bps_per_pct_adv
    shown_pct = pct.quantize(PCT_QUANTUM, rounding=ROUND_HALF_UP)

    if pct > config.adv_threshold_pct:
        parts = split_evenly(qty, config.slices, fractional=config.fractional)
        vwap = config.slice_algorithm == "vwap" and volume_profile_available
        algorithm = Algorithm.VWAP if vwap else Algorithm.TWAP
        # Each child pays impact on its own size; equal children stand in for a VWAP's unknown
        # profile.
        cost = spread + impact / len(parts) + _commission_bps(parts, price, commission)
        how = "following the volume profile" if vwap else f"every {_duration(config)}"
        note = (
            " (no volume profile for VWAP)" if config.slice_algorithm == "vwap" and not vwap else ""
        )
        reason = (
            f"order is {_fmt(shown_pct)}% of ADV (threshold {_fmt(config.adv_threshold_pct)}%): "
            f"{algorithm.value.upper()} over {len(parts)} slices {how}{note}"
        )
        return AlgoChoice(algorithm, shown_pct, _round_bps(cost), reason, len(parts))

    market_cost = spread + impact
    estimate = (
        f"estimated cost {_fmt(_round_bps(market_cost))} bps (half-spread "
        f"{_fmt(_round_bps(spread))} + impact {_fmt(_round_bps(impact))})"
    )
    fee_bps = _commission_bps([qty], price, commission)
    if market_cost > config.passive_impact_bps:
        limit = _fmt(config.passive_impact_bps)
        reason = f"{estimate} is above {limit} bps: passive limit at the near touch"
        return AlgoChoice(Algorithm.LIMIT, shown_pct, _round_bps(fee_bps), reason)
    reason = f"{estimate} is within {_fmt(config.passive_impact_bps)} bps: market order"
    return AlgoChoice(Algorithm.MARKET, shown_pct, _round_bps(market_cost + fee_bps), reason)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _usable_quote(bid: Decimal | None, ask: Decimal | None, *, allow_locked: bool) -> bool:
    if bid is None or ask is None or bid <= 0 or ask <= 0:
        return False
    return bid <= ask if allow_locked else bid < ask


def _commission_bps(
    parts: list[Decimal], price: Decimal, commission: CommissionSchedule | None
) -> Decimal:
    # Every child is its own order, so each one pays the per-order minimum.
    if commission is None:
        return ZERO
    fees = sum((commission.estimate(q, price) for q in parts), ZERO)
    return fees / (sum(parts, ZERO) * price) * BPS


def _adv(adv_shares: Decimal) -> Decimal:
    try:
        return positive(adv_shares, "adv_shares")
    except ValidationError:
        raise ValidationError(
            f"average daily volume must be positive to estimate impact, got {adv_shares!r}"
        ) from None


def _bps(value: Decimal, name: str) -> Decimal:
    result = to_decimal(value, name)
    if result < 0:
        raise ValidationError(f"{name} must not be negative, got {result}")
    return result


def _round_bps(value: Decimal) -> Decimal:
    return value.quantize(BPS_QUANTUM, rounding=ROUND_HALF_UP)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _fmt(value: Decimal) -> str:
    """A number for a sentence: no exponent, no trailing zeros (7.50 -> 7.5, 10 -> 10)."""
    return f"{value.normalize():f}"


def _duration(config: ExecutionConfig) -> str:
    seconds = config.slice_interval.total_seconds()
    return f"{seconds:g}s" if seconds < 120 else f"{seconds / 60:g}min"
