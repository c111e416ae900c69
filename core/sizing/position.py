"""Position sizing by risk at the stop and conviction (seed 001 "Position Sizing").

1. risk amount = equity x ``max_risk_per_trade``
2. stop distance = |entry - stop| / entry
3. raw shares = risk amount / (entry x stop distance), computed as risk amount / |entry - stop|
   (the same number, without rounding the distance first)
4. conviction multiplier: 1.0 at 75-100, 0.5 at 50-74, no trade below 50
5. shares = min(raw shares x multiplier, equity x ``max_single_exposure`` / price), rounded down
   to whole shares (or to ``fractional_step`` for fractional trading)

Entry strategies (seed 001 "Entry Strategies"): :func:`entry_order_type` picks market or limit
from conviction and volume confirmation, :func:`scale_in_split` splits a size into the first
entry and the add on the first pullback.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.domain import ZERO, OrderType, ValidationError, positive, to_decimal
from core.risk.config import AGGRESSIVE, RiskProfile
from core.risk.model import floor_to, money, pct, qty_text

HIGH_CONVICTION = 75
MEDIUM_CONVICTION = 50
WHOLE_SHARE = Decimal(1)
FRACTIONAL_STEP = Decimal("0.000001")


def _conviction(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValidationError(f"conviction must be an integer from 0 to 100, got {value!r}")
    return value


def conviction_multiplier(conviction: int) -> Decimal:
    """1 for high conviction (75-100), 0.5 for medium (50-74), 0 below 50 (no trade)."""
    c = _conviction(conviction)
    if c >= HIGH_CONVICTION:
        return Decimal(1)
    if c >= MEDIUM_CONVICTION:
        return Decimal("0.5")
    return ZERO


def entry_order_type(conviction: int, volume_confirmed: bool) -> OrderType | None:
    """Market for high conviction with volume confirmation, limit (at the cloud edge) otherwise
    from 50 up; ``None`` below 50 (no trade). High conviction without volume confirmation waits
    for a pullback like a medium-conviction entry."""
    c = _conviction(conviction)
    if c >= HIGH_CONVICTION and volume_confirmed:
        return OrderType.MARKET
    if c >= MEDIUM_CONVICTION:
        return OrderType.LIMIT
    return None


def scale_in_split(
    qty: Decimal, initial_pct: Decimal = Decimal("0.5"), step: Decimal = WHOLE_SHARE
) -> tuple[Decimal, Decimal]:
    """Split ``qty`` into (first entry, add on the first pullback that holds).

    The first part is ``qty x initial_pct`` rounded down to ``step``; the rest is the remainder.
    A size too small to split goes in whole: ``(qty, 0)``.
    """
    qty = to_decimal(qty, "qty")
    if qty < 0:
        raise ValidationError(f"qty must not be negative, got {qty}")
    share = to_decimal(initial_pct, "initial_pct")
    if not 0 < share <= 1:
        raise ValidationError(f"initial_pct must be above 0 and at most 1, got {share}")
    step = positive(step, "step")
    first = floor_to(qty * share, step)
    if first <= 0:
        return qty, ZERO
    return first, qty - first


@dataclass(frozen=True, slots=True)
class SizeResult:
    """A sizing decision with its working, so the journal can show how the size came about."""

    qty: Decimal
    notional: Decimal
    conviction_multiplier: Decimal
    risk_amount: Decimal
    #: |entry - stop| / entry.
    stop_distance: Decimal
    #: Shares the risk amount buys at the stop distance, before conviction and the cap.
    raw_qty: Decimal
    #: Most shares the single-name exposure limit allows at ``price``.
    cap_qty: Decimal
    #: True when the single-name cap, not the risk budget, decided the size.
    capped: bool
    #: Loss if the stop is hit: qty x |entry - stop|.
    risk_at_stop: Decimal
    reason: str

    @property
    def tradeable(self) -> bool:
        return self.qty > 0


class PositionSizer:
    """Sizes entries from a :class:`RiskProfile` (seed 001 ``PositionSizer``)."""

    def __init__(
        self,
        profile: RiskProfile = AGGRESSIVE,
        *,
        fractional: bool = False,
        fractional_step: Decimal = FRACTIONAL_STEP,
    ):
        self.profile = profile
        self.fractional = fractional
        self.step = positive(fractional_step, "fractional_step") if fractional else WHOLE_SHARE

    def size(
        self,
        entry: Decimal,
        stop: Decimal,
        conviction: int,
        equity: Decimal,
        price: Decimal | None = None,
    ) -> SizeResult:
        """Shares for an entry at ``entry`` with its stop at ``stop``.

        ``price`` is the current price the single-name cap is measured at (``entry`` when not
        given). A quantity of 0 comes with the reason: conviction below 50, no equity, a stop at
        the entry price, or a size worth less than the profile's minimum position value.
        """
        entry = positive(entry, "entry")
        stop = positive(stop, "stop")
        price = entry if price is None else positive(price, "price")
        equity = to_decimal(equity, "equity")
        mult = conviction_multiplier(conviction)
        p = self.profile
        per_share = abs(entry - stop)
        distance = per_share / entry
        risk = max(equity, ZERO) * p.max_risk_per_trade
        cap = floor_to(max(equity, ZERO) * p.max_single_exposure / price, self.step)

        def result(qty: Decimal, raw: Decimal, capped: bool, reason: str) -> SizeResult:
            return SizeResult(
                qty=qty,
                notional=qty * price,
                conviction_multiplier=mult,
                risk_amount=risk,
                stop_distance=distance,
                raw_qty=raw,
                cap_qty=cap,
                capped=capped,
                risk_at_stop=qty * per_share,
                reason=reason,
            )

        if mult == 0:
            return result(ZERO, ZERO, False, f"conviction {conviction} is below 50: no trade")
        if equity <= 0:
            return result(ZERO, ZERO, False, f"equity {money(equity)} leaves nothing to risk")
        if per_share == 0:
            return result(ZERO, ZERO, False, "stop equals entry: no distance to size on")
        raw = risk / per_share
        wanted = raw * mult
        capped = cap < wanted
        qty = floor_to(min(wanted, cap), self.step)
        steps = [
            f"risk {money(risk)} ({pct(p.max_risk_per_trade)} of equity {money(equity)}) "
            f"over a stop distance of {money(per_share)} ({pct(distance.quantize(Decimal('1E-6')))}"
            f" of entry) = {qty_text(floor_to(raw, self.step))} shares",
            f"x{qty_text(mult)} for conviction {conviction} = "
            f"{qty_text(floor_to(wanted, self.step))}",
        ]
        if capped:
            steps.append(
                f"capped at {qty_text(cap)} by the {pct(p.max_single_exposure)} single-name "
                f"limit ({money(equity * p.max_single_exposure)} at {money(price)})"
            )
        steps.append(f"{qty_text(qty)} shares")
        reason = "; ".join(steps)
        minimum = p.min_position_value
        if qty * price < minimum:
            return result(
                ZERO,
                raw,
                capped,
                f"{reason}, worth {money(qty * price)}, below the minimum position value "
                f"{money(minimum)}: no trade",
            )
        return result(qty, raw, capped, reason)

    def scale_in_split(
        self, qty: Decimal, initial_pct: Decimal = Decimal("0.5")
    ) -> tuple[Decimal, Decimal]:
        """:func:`scale_in_split` with this sizer's quantity step."""
        return scale_in_split(qty, initial_pct, self.step)
