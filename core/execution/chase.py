"""Chasing a resting limit toward the market, within a bound.

A passive limit that does not fill is moved toward the market every ``chase_interval``: a buy up
toward the ask, a sell down toward the bid, by ``step_bps`` of the *arrival* price each time
(a step in arrival bps is the same size at every step, so the chase's pace does not depend on how
far it has already gone). Two limits hold at every step:

* the bound: a buy never goes above ``arrival * (1 + bound_bps / 10_000)``, a sell never below
  ``arrival * (1 - bound_bps / 10_000)``; the bound price is rounded to the tick *toward* the
  arrival price, so rounding never lets the chase past it;
* the far touch: a buy never goes above the ask, a sell never below the bid. A limit at the far
  touch is already marketable, and paying through it would only add cost.

New prices are rounded to the exchange tick toward the market (up for a buy, down for a sell) so
every step makes progress even when the step is smaller than a tick. Once the resting price is at
the bound, :meth:`LimitChase.next_price` returns ``None``: the chase is over, and the caller
decides whether to leave the order resting or cancel it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.domain import BPS, ONE, Side, ValidationError, positive, to_decimal
from core.execution.config import ExecutionConfig
from core.execution.impact import round_to_tick


@dataclass(frozen=True, slots=True)
class LimitChase:
    """The chase of one resting limit order. Validated on construction.

    ``arrival`` is the reference price when the order was decided (it fixes the step and the
    bound), ``start_price`` the first resting price, which must not be past the bound.
    """

    side: Side
    arrival: Decimal
    start_price: Decimal
    step_bps: Decimal
    bound_bps: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "arrival", positive(self.arrival, "arrival"))
        object.__setattr__(self, "start_price", positive(self.start_price, "start_price"))
        object.__setattr__(self, "step_bps", positive(self.step_bps, "step_bps"))
        bound = to_decimal(self.bound_bps, "bound_bps")
        if not 0 <= bound < BPS:
            raise ValidationError(f"bound_bps must be at least 0 and below {BPS}, got {bound}")
        object.__setattr__(self, "bound_bps", bound)
        if self._past_bound(self.start_price, strict=True):
            where = "above" if self.side is Side.BUY else "below"
            raise ValidationError(
                f"start_price {self.start_price} is {where} the chase bound {self.bound_price} "
                f"({bound} bps from arrival {self.arrival})"
            )

    @classmethod
    def from_config(
        cls, side: Side, arrival: Decimal, start_price: Decimal, config: ExecutionConfig
    ) -> LimitChase:
        """A chase with the configured step and bound."""
        return cls(side, arrival, start_price, config.chase_step_bps, config.chase_bound_bps)

    @property
    def bound_price(self) -> Decimal:
        """The furthest price the chase may reach, on the tick, rounded toward the arrival."""
        buy = self.side is Side.BUY
        raw = self.arrival * (ONE + self.side.sign * self.bound_bps / BPS)
        return round_to_tick(raw, up=not buy)

    @property
    def step(self) -> Decimal:
        """One step in dollars: ``step_bps`` of the arrival price."""
        return self.arrival * self.step_bps / BPS

    def next_price(
        self, current_price: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> Decimal | None:
        """The resting price after one more step from ``current_price``.

        ``None`` when ``current_price`` is already at (or past) the bound: the chase stops. When
        the far touch is already reached the current price is returned unchanged (the order is
        marketable; there is nothing to chase).
        """
        current = positive(current_price, "current_price")
        if self._past_bound(current, strict=False):
            return None
        bound = self.bound_price
        if self.side is Side.BUY:
            target = min(round_to_tick(current + self.step, up=True), bound)
            if ask is not None and ask > 0:
                target = min(target, ask)
            return target if target > current else current
        target = max(round_to_tick(current - self.step, up=False), bound)
        if bid is not None and bid > 0:
            target = max(target, bid)
        return target if target < current else current

    def _past_bound(self, price: Decimal, *, strict: bool) -> bool:
        bound = self.bound_price
        if self.side is Side.BUY:
            return price > bound if strict else price >= bound
        return price < bound if strict else price <= bound
