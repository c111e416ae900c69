"""The rebalancing engine: target weights from targets, and the trade list that gets there.

Rules of the trade list (seed 000 R5.2), for every symbol held or targeted:

* ``target_qty = target_weight * equity / last``, rounded toward zero to whole shares (or to
  1e-6 shares when fractional trading is on), so buys never overshoot the target and the cash
  buffer the constraints left stays in cash.
* A held symbol that is not in the targets (or has a target weight of 0) is sold entirely, its
  exact quantity, whatever the minimum trade size.
* Any other change worth less than ``min_trade_value`` dollars is left out and noted.
* Limit prices are the last price ± ``limit_buffer_bps`` (buys above, sells below), on the tick.
* Sells come first (they free the cash the buys need), then buys; each group by symbol.

Each trade carries its estimated costs (commission, half-spread, impact from the execution
model) and the algorithm the smart order router would pick for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from core.brokers.commission import CommissionSchedule
from core.domain import ZERO, Position, Quote, Side, ValidationError, to_decimal, utc
from core.execution.config import ExecutionConfig
from core.execution.impact import choose_algorithm, estimate_cost, limit_price
from core.rebalance.config import RebalanceConfig
from core.rebalance.model import PlannedTrade, RebalancePlan
from core.rebalance.targets import TargetKind, TargetPortfolio
from core.risk.config import RiskProfile
from core.sizing.allocation import Method, allocate, apply_constraints

WEIGHT_STEP = Decimal("0.000001")
FRACTIONAL_STEP = Decimal("0.000001")
#: The method label of a plan whose targets were weights (no allocation method ran).
GIVEN_WEIGHTS = "weights"


def _price_of(value: Quote | Decimal | Any) -> tuple[Decimal, Decimal | None, Decimal | None]:
    if isinstance(value, Quote):
        return value.last, value.bid, value.ask
    return to_decimal(value, "price"), None, None


class RebalanceEngine:
    """Builds rebalance plans; pure (prices, positions and equity are passed in)."""

    def __init__(
        self,
        config: RebalanceConfig | None = None,
        execution: ExecutionConfig | None = None,
        commission: CommissionSchedule | None = None,
        sector_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.config = config or RebalanceConfig()
        self.execution = execution or ExecutionConfig()
        self.commission = commission
        self.sector_of = sector_of

    # ------------------------------------------------------------------ weights
    def target_weights(
        self,
        targets: TargetPortfolio,
        *,
        profile: RiskProfile,
        equity: Decimal,
        method: str | None = None,
        **inputs: Any,
    ) -> tuple[str, dict[str, Decimal], list[str]]:
        """(method label, constrained weights, notes on what the constraints changed).

        Weights are kept as given and only constrained; scores go through an allocation
        method (``score`` by default; ``equal`` over the names with a positive score; the
        covariance-based methods need ``covariance``, ``target_vol``, ``kelly`` in ``inputs``).
        """
        if targets.kind is TargetKind.WEIGHTS:
            if method not in (None, GIVEN_WEIGHTS):
                raise ValidationError(
                    f"targets are weights; allocation method {method!r} applies to scores"
                )
            weights, effects = apply_constraints(
                dict(targets.values), profile, equity, self.sector_of
            )
            label = GIVEN_WEIGHTS
        else:
            chosen = Method(method or Method.SCORE)
            positive = {s: v for s, v in targets.values.items() if v > 0}
            if not positive:
                raise ValidationError("no symbol has a positive score")
            result = allocate(
                chosen,
                symbols=sorted(positive) if chosen is not Method.SCORE else None,
                scores=positive if chosen is Method.SCORE else None,
                profile=profile,
                equity=equity,
                sector_of=self.sector_of,
                **inputs,
            )
            weights, effects, label = dict(result.weights), list(result.effects), chosen.value
            for symbol in targets.values:  # zero scores are explicit "hold none" targets
                weights.setdefault(symbol, ZERO)
        notes = [f"{e.constraint}: {e.subject} {e.before} -> {e.after} ({e.note})" for e in effects]
        return label, {s: w.quantize(WEIGHT_STEP) for s, w in weights.items()}, notes

    # ------------------------------------------------------------------ plan
    def build_plan(
        self,
        *,
        weights: Mapping[str, Decimal],
        positions: Mapping[str, Position],
        quotes: Mapping[str, Quote | Decimal],
        adv: Mapping[str, Decimal],
        equity: Decimal,
        now: datetime,
        trigger: str = "manual",
        method: str = GIVEN_WEIGHTS,
        created_by: str = "system",
        trigger_detail: Mapping[str, Any] | None = None,
        notes: list[str] | None = None,
    ) -> RebalancePlan:
        """The plan that moves ``positions`` to ``weights`` of ``equity`` at ``quotes``."""
        equity = to_decimal(equity, "equity")
        if equity <= 0:
            raise ValidationError(f"equity must be above 0 to rebalance, got {equity}")
        cfg = self.config
        held = {s: p for s, p in positions.items() if p.qty != 0}
        symbols = sorted(set(held) | set(weights))
        missing = [s for s in symbols if s not in quotes]
        if missing:
            raise ValidationError(f"no price for {', '.join(missing)}")
        notes = list(notes or [])
        current_weights: dict[str, Decimal] = {}
        sells: list[PlannedTrade] = []
        buys: list[PlannedTrade] = []
        for symbol in symbols:
            last, bid, ask = _price_of(quotes[symbol])
            if last <= 0:
                raise ValidationError(f"price of {symbol} must be above 0, got {last}")
            current_qty = held[symbol].qty if symbol in held else ZERO
            current_w = (current_qty * last / equity).quantize(WEIGHT_STEP)
            current_weights[symbol] = current_w
            target_w = to_decimal(weights.get(symbol, ZERO), f"weight of {symbol}")
            closes = target_w == 0 and current_qty != 0
            target_qty = ZERO if closes else self._shares(target_w * equity / last)
            delta = target_qty - current_qty
            if delta == 0:
                continue
            value = abs(delta) * last
            if not closes and value < cfg.min_trade_value:
                notes.append(
                    f"{symbol}: a trade of ${value.quantize(Decimal('0.01'))} is below the "
                    f"minimum trade size ${cfg.min_trade_value}; left as it is"
                )
                continue
            side = Side.BUY if delta > 0 else Side.SELL
            qty = abs(delta)
            trade = PlannedTrade(
                seq=0,
                symbol=symbol,
                side=side,
                qty=qty,
                ref_price=last,
                limit_price=limit_price(side, last, cfg.limit_buffer_bps),
                current_qty=current_qty,
                target_qty=target_qty,
                current_weight=current_w,
                target_weight=target_w,
                sector=self.sector_of(symbol) if self.sector_of else None,
                closes_position=closes,
            )
            self.estimate(trade, adv.get(symbol), bid, ask)
            (sells if side is Side.SELL else buys).append(trade)
        trades = sells + buys
        for seq, trade in enumerate(trades, start=1):
            trade.seq = seq
        now = utc(now)
        return RebalancePlan(
            trigger=trigger,
            method=method,
            equity=equity,
            current_weights=current_weights,
            target_weights={s: to_decimal(w, s) for s, w in sorted(weights.items())},
            trades=trades,
            created_at=now,
            created_by=created_by,
            price_tolerance_bps=cfg.price_tolerance_bps,
            expires_at=now + cfg.max_plan_age,
            trigger_detail=dict(trigger_detail or {}),
            notes=notes,
        )

    def _shares(self, raw: Decimal) -> Decimal:
        step = FRACTIONAL_STEP if self.config.fractional else Decimal(1)
        return raw.quantize(step, rounding=ROUND_DOWN) if raw > 0 else ZERO

    def estimate(
        self,
        trade: PlannedTrade,
        adv: Decimal | None,
        bid: Decimal | None,
        ask: Decimal | None,
    ) -> None:
        """Set ``trade``'s estimated costs and the router's likely algorithm."""
        if adv is None or adv <= 0:
            # Without a volume figure the impact cannot be modelled: work it passively.
            trade.algorithm = "limit"
            trade.reason = "no average daily volume: impact not estimated; passive limit"
            cost = estimate_cost(
                trade.qty,
                trade.ref_price,
                Decimal(10) ** 30,  # effectively no impact; spread and commission still count
                bid=bid,
                ask=ask,
                commission=self.commission,
                config=self.execution,
            )
        else:
            cost = estimate_cost(
                trade.qty,
                trade.ref_price,
                adv,
                bid=bid,
                ask=ask,
                commission=self.commission,
                config=self.execution,
            )
            choice = choose_algorithm(
                trade.qty,
                trade.ref_price,
                adv,
                bid=bid,
                ask=ask,
                config=self.execution,
                # the router always has a volume profile (its own or the default U shape)
                volume_profile_available=self.execution.slice_algorithm == "vwap",
                commission=self.commission,
            )
            trade.algorithm = choice.algorithm.value
            trade.reason = choice.reason
        trade.est_commission = cost.commission
        trade.est_spread = cost.spread_cost
        trade.est_impact = cost.impact_cost


def price_moves(
    plan: RebalancePlan, quotes: Mapping[str, Quote | Decimal]
) -> list[tuple[str, Decimal]]:
    """Symbols whose price moved more than the plan's tolerance since it was built, with the
    move in bps (a symbol without a price now counts as moved: the plan cannot be checked)."""
    moved: list[tuple[str, Decimal]] = []
    for trade in plan.trades:
        if trade.symbol not in quotes:
            moved.append((trade.symbol, Decimal("Infinity")))
            continue
        last, _, _ = _price_of(quotes[trade.symbol])
        bps = (abs(last - trade.ref_price) / trade.ref_price * 10_000).quantize(Decimal("0.01"))
        if bps > plan.price_tolerance_bps:
            moved.append((trade.symbol, bps))
    return moved


def staleness(
    plan: RebalancePlan, quotes: Mapping[str, Quote | Decimal], now: datetime
) -> str | None:
    """Why ``plan`` may no longer be executed, or None while it is still fresh."""
    if plan.expires_at is not None and utc(now) >= plan.expires_at:
        return f"the plan is older than its limit (built {plan.created_at:%Y-%m-%d %H:%M} UTC)"
    moved = price_moves(plan, quotes)
    if moved:
        shown = ", ".join(
            f"{s} {'has no price' if b.is_infinite() else f'moved {b / 100:.2f}%'}"
            for s, b in moved
        )
        return (
            f"prices moved past the tolerance of {plan.price_tolerance_bps / 100:.2f}% "
            f"since the plan was built: {shown}"
        )
    return None


__all__ = ["GIVEN_WEIGHTS", "RebalanceEngine", "price_moves", "staleness"]
