"""The paper broker's fill and trigger engine: pure price rules over quotes and 1-minute bars.

Rules (``k`` = ``impact_bps_per_pct_adv``, buys shown; sells are the mirror image):

* Impact: ``impact_bps = order_qty / ADV * 100 * k`` on the order's whole quantity; an impacted
  buy price is ``p * (1 + impact_bps / 10_000)``, rounded with :func:`core.domain.round_price`.
  Only aggressive executions pay impact (market, triggered stop and trailing-stop fills,
  marketable limits); a resting limit filled by the price path does not.
* Participation: one execution per 1-minute bar of at most ``floor(rate * bar.volume)`` shares.
* Immediate execution at submit (no latency, session open): a market order, or a limit order
  that is marketable at the touch, fills at the touch (the ask) plus impact -- never worse than
  its limit -- capped by the latest completed 1-minute bar's volume.
* Working market orders (remainders, orders delayed by latency or queued while closed) fill at
  each bar's ``close + half_spread`` plus impact, where ``half_spread`` comes from the current
  quote.
* Limit: fills when ``bar.low <= limit`` at ``min(limit, bar.open)`` (a gap through the limit
  gets the better open).
* Stop: triggers when ``bar.high >= stop`` and fills in the same bar at ``max(stop, bar.open)``
  plus impact; what the participation cap leaves works as a market order on later bars.
* Stop-limit: triggers like a stop at the trigger price ``p = max(stop, bar.open)``. In the
  trigger bar it fills only if the limit is marketable at ``p`` (``p <= limit``), at
  ``min(limit, p + impact)``; the rest of that bar's range is not used because it may have
  printed before the trigger. Otherwise it rests as a limit from the next bar on.
* Trailing stop: the low-water mark (buys; high-water mark for sells) starts at the quote's last
  price at submission; each bar is first checked against ``stop = mark * (1 + pct / 100)`` or
  ``mark + trail_price`` of the previous mark, and only then is the mark moved to the bar's low.
  Once triggered it fills like a stop.
* Market/limit-on-close: the close of the session's last 1-minute bar, in full, no impact (the
  closing auction); a limit-on-close fills only if that price is within its limit.
* Notional (dollar amount) market orders execute whenever a market order would (at submit, or
  in a bar whose participation cap allows a share), at the same price, but in one execution
  for the whole amount: ``notional / price`` shares rounded down to 9 decimal places (exact;
  the participation cap does not split a dollar amount).

Options (``PriceContext.option``; market and limit day orders only, whole contracts): option
bars are thin (a contract's average daily volume is tiny next to a share's), so the share rules
for size and impact would make fills absurd -- a 1 % participation cap of a 3-contract bar fills
nothing, and ``qty / ADV`` impact on a small ADV moves the price by whole percents. Options
therefore fill **in full at the touch, with no impact and no participation cap**: at submit a
market order (or a limit marketable at the touch) fills at the ask (buys) or the bid (sells); a
working market order fills at its bar's ``close +/- half_spread``; a resting limit is checked
against the bar moved to the quote side (a buy fills when ``bar.low + half_spread <= limit``, at
``min(limit, bar.open + half_spread)``; a sell when ``bar.high - half_spread >= limit``, at
``max(limit, bar.open - half_spread)``), so option fills never get the inside of the spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from core.brokers.paper_state import PaperOrder
from core.domain import (
    BPS,
    ONE,
    PRICE_QUANTUM,
    ZERO,
    Bar,
    OrderType,
    Quote,
    Side,
    round_price,
)

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FillIntent:
    """An execution the engine found: ``qty`` at ``price`` at time ``at``."""

    qty: Decimal
    price: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class PriceContext:
    """What the engine needs to know about one symbol's liquidity right now.

    ``option``: the symbol is an option contract (whole fills at the quote side, no impact or
    participation cap; see the module docstring)."""

    adv: Decimal
    half_spread: Decimal
    participation_rate: Decimal
    impact_bps_per_pct_adv: Decimal
    option: bool = False


_NANO_SHARES = 9


def notional_quantity(notional: Decimal, price: Decimal) -> Decimal:
    """The shares ``notional`` dollars buy at ``price``, rounded down to 9 decimal places
    (computed exactly: integer division of nano-shares)."""
    return (notional.scaleb(_NANO_SHARES) // price).scaleb(-_NANO_SHARES)


def _sized(order: PaperOrder, qty: Decimal, price: Decimal, at: datetime) -> FillIntent | None:
    """An execution of ``qty`` at ``price``, or of the whole dollar amount of a notional order
    (None if that amount buys nothing)."""
    notional = order.request.notional
    if notional is not None:
        qty = notional_quantity(notional, price)
        if qty <= 0:
            return None
    return FillIntent(qty, price, at)


def impact_bps(qty: Decimal, adv: Decimal, bps_per_pct_adv: Decimal) -> Decimal:
    """Linear impact ``qty / adv * 100 * bps_per_pct_adv``; zero when ADV is unknown (<= 0)."""
    if adv <= 0:
        return ZERO
    return qty / adv * _HUNDRED * bps_per_pct_adv


def with_impact(price: Decimal, side: Side, bps: Decimal) -> Decimal:
    """``price`` moved against ``side`` by ``bps`` basis points, rounded."""
    if bps == 0:
        return round_price(price)
    factor = ONE + bps / BPS if side is Side.BUY else ONE - bps / BPS
    return max(round_price(price * factor), PRICE_QUANTUM)


def participation_cap(volume: Decimal, rate: Decimal) -> Decimal:
    """Whole shares one bar of ``volume`` can give an order."""
    if volume <= 0:
        return ZERO
    return (volume * rate).to_integral_value(rounding=ROUND_FLOOR)


def trailing_stop_level(order: PaperOrder) -> Decimal | None:
    """The trailing stop implied by the order's current water mark."""
    mark = order.water_mark
    if mark is None:
        return None
    req = order.request
    buy = req.side is Side.BUY
    if req.trail_percent is not None:
        offset = mark * req.trail_percent / _HUNDRED
    else:
        assert req.trail_price is not None
        offset = req.trail_price
    return round_price(mark + offset if buy else mark - offset)


def _impacted(order: PaperOrder, price: Decimal, ctx: PriceContext) -> Decimal:
    bps = impact_bps(order.request.qty, ctx.adv, ctx.impact_bps_per_pct_adv)
    return with_impact(price, order.side, bps)


def _within_limit(side: Side, price: Decimal, limit: Decimal) -> Decimal:
    return min(price, limit) if side is Side.BUY else max(price, limit)


def _marketable(side: Side, price: Decimal, limit: Decimal) -> bool:
    return price <= limit if side is Side.BUY else price >= limit


def immediate_fill(
    order: PaperOrder,
    quote: Quote,
    last_bar_volume: Decimal,
    ctx: PriceContext,
    now: datetime,
) -> FillIntent | None:
    """Execution at submit for a market order or a marketable limit order, or None."""
    if ctx.option:
        qty = order.remaining
    else:
        qty = min(order.remaining, participation_cap(last_bar_volume, ctx.participation_rate))
    if qty <= 0:
        return None
    touch = quote.touch(order.side)
    if touch <= 0:
        return None
    kind = order.kind
    if kind is OrderType.MARKET:
        return _sized(order, qty, _impacted(order, touch, ctx), now)
    if kind is OrderType.LIMIT:
        limit = order.request.limit_price
        assert limit is not None
        if not _marketable(order.side, touch, limit):
            return None
        price = _within_limit(order.side, _impacted(order, touch, ctx), limit)
        return FillIntent(qty, price, now)
    return None


def evaluate_bar(order: PaperOrder, bar: Bar, ctx: PriceContext) -> FillIntent | None:
    """Walk one completed bar for a working order: update its trigger state (``triggered``,
    ``stop_level``, ``water_mark``) and return the execution it gets in this bar, if any.

    Market-on-close orders ignore bars (see :func:`closing_fill`).
    """
    kind = order.kind
    if order.at_close:
        return None
    side = order.side
    buy = side is Side.BUY
    if ctx.option:
        cap = order.remaining
    else:
        cap = min(order.remaining, participation_cap(bar.volume, ctx.participation_rate))
    req = order.request

    if kind in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP) and not (
        order.triggered
    ):
        if kind is OrderType.TRAILING_STOP:
            stop = trailing_stop_level(order)
            if stop is None:  # no mark yet: start it at this bar's open
                order.water_mark = bar.open
                stop = trailing_stop_level(order)
                assert stop is not None
        else:
            assert req.stop_price is not None
            stop = req.stop_price
        hit = bar.high >= stop if buy else bar.low <= stop
        if not hit:
            if kind is OrderType.TRAILING_STOP:
                assert order.water_mark is not None
                order.water_mark = (
                    min(order.water_mark, bar.low) if buy else max(order.water_mark, bar.high)
                )
            return None
        order.triggered = True
        order.stop_level = stop
        trigger = max(stop, bar.open) if buy else min(stop, bar.open)
        if kind is OrderType.STOP_LIMIT:
            limit = req.limit_price
            assert limit is not None
            if not _marketable(side, trigger, limit) or cap <= 0:
                return None
            price = _within_limit(side, _impacted(order, trigger, ctx), limit)
            return FillIntent(cap, price, bar.end)
        if cap <= 0:
            return None
        return FillIntent(cap, _impacted(order, trigger, ctx), bar.end)

    if cap <= 0:
        return None
    if kind is OrderType.LIMIT or kind is OrderType.STOP_LIMIT:
        limit = req.limit_price
        assert limit is not None
        low, high, first = bar.low, bar.high, bar.open
        if ctx.option:  # the bar on the quote side: the ask for buys, the bid for sells
            shift = ctx.half_spread if buy else -ctx.half_spread
            low, high, first = low + shift, high + shift, first + shift
        if not (low <= limit if buy else high >= limit):
            return None
        return FillIntent(cap, round_price(_within_limit(side, first, limit)), bar.end)

    # market orders and triggered stops: the bar's close on the aggressive side of the spread
    touch = bar.close + ctx.half_spread if buy else bar.close - ctx.half_spread
    return _sized(order, cap, _impacted(order, max(touch, PRICE_QUANTUM), ctx), bar.end)


def closing_fill(order: PaperOrder, close_price: Decimal, at: datetime) -> FillIntent | None:
    """The closing-auction execution of a market- or limit-on-close order, or None when a
    limit-on-close's limit is not met."""
    if order.remaining <= 0:
        return None
    limit = order.request.limit_price
    if (
        order.kind is OrderType.LIMIT
        and limit is not None
        and not _marketable(order.side, close_price, limit)
    ):
        return None
    return FillIntent(order.remaining, round_price(close_price), at)
