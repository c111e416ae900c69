"""The entry stage of the signal pipeline (seed 001 "Entry Strategies").

It runs on the sized draft, after the instrument router and the sizer and before the risk gate:

1. **Order type.** A signal that asked for a non-market order (limit, stop, bracket, ...) keeps
   it. Otherwise :func:`~core.sizing.position.entry_order_type` decides from the conviction and
   the volume confirmation (:func:`volume_confirmed`): high conviction with volume confirmation
   is a market order, the rest from 50 up a limit order at the cloud edge.
2. **Limit price.** A limit entry rests at the cloud edge (``signal.metadata["cloud_edge"]``, the
   pullback cloud's near edge, else the signal's entry). When the signal was routed to a
   leveraged ETF the level is translated into the fund (:func:`translate_level`): its distance
   from the underlying's current price times the leverage, in the opposite direction for an
   inverse fund, applied to the fund's current price. The price is rounded to a cent in the
   direction that does not chase: down for buys, up for sells (:func:`round_limit`).
3. **Scale-in.** The size is split with :func:`~core.sizing.position.scale_in_split`: the draft
   keeps the first part (50 % by default) and the notes carry the rest as
   ``scale_in_remaining``, which :mod:`core.sizing.scale_in` adds on the first pullback to the
   cloud that holds. A size too small to split (below 2 shares at 50 %) goes in whole.

Notes written: ``entry_type`` (the order type's value), ``limit_price`` (limit entries),
``entry_qty`` (the first part) and ``scale_in_remaining`` (``"0"`` when nothing is left).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from core.domain import (
    CENT,
    ONE,
    InstrumentType,
    OrderType,
    Side,
    Signal,
    ValidationError,
    positive,
    to_decimal,
)
from core.pipeline import OrderDraft, PipelineContext, Rejected
from core.sizing.position import WHOLE_SHARE, entry_order_type, scale_in_split

#: Volume over its average at or above which a signal without scored volume points counts as
#: volume-confirmed (the EMA-cloud engine's default confirmation ratio).
VOLUME_CONFIRM_RATIO = 1.0


def volume_confirmed(signal: Signal) -> bool:
    """Whether the signal's volume confirms it, read from its metadata.

    In order: an explicit boolean ``volume_confirmed``; the EMA-cloud engine's scored volume
    points (``conviction_parts["volume"] > 0``); its ``volume_ratio`` (at least
    :data:`VOLUME_CONFIRM_RATIO`; ``None``, an unknown ratio, is not confirmation). A signal
    carrying none of these (a source that does not measure volume) counts as confirmed.
    """
    md: Mapping[str, Any] = signal.metadata or {}
    explicit = md.get("volume_confirmed")
    if isinstance(explicit, bool):
        return explicit
    parts = md.get("conviction_parts")
    if isinstance(parts, Mapping) and "volume" in parts:
        return _number(parts["volume"]) > 0
    if "volume_ratio" in md:
        return _number(md["volume_ratio"]) >= VOLUME_CONFIRM_RATIO
    return True


def _number(value: Any) -> float:
    """A metadata number; missing or unreadable values read as no volume (never confirmation)."""
    if value is None or isinstance(value, bool):
        return float("-inf")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def cloud_edge(signal: Signal) -> Decimal:
    """The level a limit entry rests at on the signal's chart: ``metadata["cloud_edge"]``, else
    the signal's entry."""
    raw = (signal.metadata or {}).get("cloud_edge")
    if raw is None or raw == "":
        return signal.entry
    return positive(raw, "cloud_edge")


def translate_level(
    level: Decimal,
    underlying_price: Decimal,
    instrument_price: Decimal,
    leverage: Decimal,
    inverse: bool,
) -> Decimal:
    """A price level of the underlying expressed in a leveraged fund (unrounded).

    The level's distance from the underlying's current price, as a fraction of that price, is
    multiplied by the leverage (and negated for an inverse fund) and applied to the fund's
    current price: a level 1 % below the underlying is 3 % below a 3x bull fund and 3 % above a
    3x inverse fund.
    """
    level = positive(level, "level")
    underlying_price = positive(underlying_price, "underlying price")
    instrument_price = positive(instrument_price, "instrument price")
    leverage = positive(leverage, "leverage")
    move = (level - underlying_price) / underlying_price * leverage
    if inverse:
        move = -move
    return instrument_price * (ONE + move)


def round_limit(price: Decimal, side: Side) -> Decimal:
    """``price`` rounded to a cent without chasing: down for a buy, up for a sell."""
    return to_decimal(price, "limit price").quantize(
        CENT, ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    )


class EntryStage:
    """Order type, limit price and scale-in split of a sized draft (see the module docstring).

    ``scale_in=False`` sends the whole size at once; ``initial_fraction`` is the share of the
    size the first entry takes; ``step`` the quantity increment the first part is rounded down
    to (whole shares by default).
    """

    name = "entry"

    def __init__(
        self,
        *,
        scale_in: bool = True,
        initial_fraction: Decimal = Decimal("0.5"),
        step: Decimal = WHOLE_SHARE,
    ):
        fraction = to_decimal(initial_fraction, "initial_fraction")
        if not 0 < fraction <= 1:
            raise ValidationError(f"initial_fraction must be above 0 and at most 1, got {fraction}")
        self.scale_in = scale_in
        self.initial_fraction = fraction
        self.step = positive(step, "step")

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        s = draft.signal
        if draft.qty is None:
            raise Rejected("no quantity was decided for the signal")
        if draft.instrument_type is InstrumentType.OPTION:
            # a limit at the ask, all at once: the premium at risk was sized on that price
            return replace(draft, notes={**draft.notes, "scale_in_remaining": "0"})
        side = draft.side or s.direction.entry_side
        order_type = self.order_type(draft)
        notes = {**draft.notes, "entry_type": order_type.value}
        limit_price: Decimal | None = None
        if order_type is OrderType.LIMIT:
            limit_price = self.limit_price(draft, ctx, side)
            notes["limit_price"] = str(limit_price)
        if self.scale_in:
            first, rest = scale_in_split(draft.qty, self.initial_fraction, self.step)
        else:
            first, rest = draft.qty, Decimal(0)
        notes["entry_qty"] = str(first)
        notes["scale_in_remaining"] = str(rest)
        return replace(
            draft, order_type=order_type, limit_price=limit_price, qty=first, notes=notes
        )

    def order_type(self, draft: OrderDraft) -> OrderType:
        """The draft's own type when it is not a market order, else market or limit by
        conviction and volume confirmation."""
        if draft.order_type is not OrderType.MARKET:
            return draft.order_type
        s = draft.signal
        chosen = entry_order_type(s.conviction, volume_confirmed(s))
        if chosen is None:
            raise Rejected(f"conviction {s.conviction} is below 50: no trade")
        return chosen

    def limit_price(self, draft: OrderDraft, ctx: PipelineContext, side: Side) -> Decimal:
        """The cloud edge in the traded instrument, rounded to a cent without chasing."""
        s = draft.signal
        level = cloud_edge(s)
        if draft.symbol != s.symbol:
            if draft.price is None:
                raise Rejected(f"no price for {draft.symbol} to place the limit at the cloud edge")
            underlying = ctx.prices.get(s.symbol) or s.entry
            inverse = bool(getattr(draft.decision, "is_inverse", False))
            level = translate_level(level, underlying, draft.price, draft.leverage, inverse)
        price = round_limit(level, side)
        if price <= 0:
            raise Rejected(
                f"the cloud edge {cloud_edge(s)} on {s.symbol} translates to no positive limit "
                f"in {draft.symbol}"
            )
        return price


__all__ = [
    "VOLUME_CONFIRM_RATIO",
    "EntryStage",
    "cloud_edge",
    "round_limit",
    "translate_level",
    "volume_confirmed",
]
