"""Position sizing for leveraged ETFs (seed 001, ``etf_sizer.py``).

The dollar risk of an ETF trade equals that of the unlevered stock trade it replaces. With
``L`` the fund's leverage:

1. ``risk_amount = equity * max_risk_per_trade`` (5 %).
2. ``stop_distance = |entry - stop| / entry`` -- the signal's stop, as a fraction of the
   underlying's price.
3. ``etf_stop_distance = stop_distance * L`` -- the same stop on the fund: a 1 % move of the
   underlying is an ``L`` % move of the fund. The fund's stop price is
   ``etf_price * (1 - etf_stop_distance)``; all ETF positions are long (the inverse fund carries a
   short view), so it lies below the fund price.
4. ``shares = risk_amount / (etf_price * etf_stop_distance)``. The position's value is thus
   ``1/L`` of the unlevered one ("a 3x ETF needs 1/3 the exposure") and a stop-out loses
   ``risk_amount``.
5. Times the conviction multiplier (as for stocks: 75-100 -> 1, 50-74 -> 0.5, below 50 -> 0).
6. Capped so the position's value is at most ``equity * max_single_etf_exposure`` (15 %, the
   seed's single-position limit).
7. Rounded *down* to whole shares, so neither the risk budget nor the cap is ever exceeded.

The seed's text writes step 3 as ``stop_distance / L``; taken literally with step 4 that would
multiply the dollar risk by ``L**2`` and contradict step 1 and its own "1/3 the shares", so the
stop distance is scaled up, as above. The translation is first order: a fund tracks ``L`` times
the underlying's *daily* return, which is what an intraday stop sees; over several days
compounding makes the fund drift from ``L`` times the underlying's move, which is why holding is
limited by :meth:`LeveragedETFSizer.max_hold_days` (3x -> 5 days, 2x -> 10, 1.5x -> 15).

A signal's own ``qty`` is an amount of the underlying and is ignored here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from core.domain import (
    ONE,
    ZERO,
    AccountState,
    Signal,
    ValidationError,
    positive,
    round_price,
    to_decimal,
)
from core.instruments.config import InstrumentConfig
from core.sizing.position import conviction_multiplier

#: One conviction rule for stocks and funds (seed 001): 75-100 -> 1, 50-74 -> 0.5, below 50 -> 0.
default_conviction_multiplier = conviction_multiplier


class LeveredInstrument(Protocol):
    """What the sizer needs to know about the fund: an ETFSelection or InstrumentDecision."""

    @property
    def ticker(self) -> str: ...

    @property
    def leverage(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class EtfSize:
    """A sized ETF position. ``shares`` is whole; when it is zero, ``reason`` says why."""

    ticker: str
    shares: Decimal
    notional: Decimal
    leverage: Decimal
    max_hold_days: int
    risk_amount: Decimal
    conviction_multiplier: Decimal
    etf_stop_distance: Decimal | None = None
    etf_stop_price: Decimal | None = None
    capped_by_exposure: bool = False
    reason: str | None = None

    @property
    def underlying_exposure(self) -> Decimal:
        """The unlevered exposure the position carries: ``notional * leverage``."""
        return self.notional * self.leverage

    @property
    def max_loss_at_stop(self) -> Decimal:
        """What a stop-out costs (before slippage): ``shares * etf_price * etf_stop_distance``."""
        if self.etf_stop_distance is None or self.shares == 0:
            return ZERO
        return self.notional * self.etf_stop_distance


class LeveragedETFSizer:
    """Size leveraged ETF positions so their dollar risk matches the unlevered trade."""

    def __init__(
        self,
        config: InstrumentConfig | None = None,
        *,
        max_risk_per_trade: Any = Decimal("0.05"),
        max_single_etf_exposure: Any = Decimal("0.15"),
        conviction_multiplier: Callable[[int], Decimal] = default_conviction_multiplier,
    ) -> None:
        self.config = config if config is not None else InstrumentConfig()
        self.max_risk_per_trade = positive(max_risk_per_trade, "max_risk_per_trade")
        self.max_single_etf_exposure = positive(max_single_etf_exposure, "max_single_etf_exposure")
        if self.max_risk_per_trade > 1 or self.max_single_etf_exposure > 1:
            raise ValidationError("max_risk_per_trade and max_single_etf_exposure must be <= 1")
        self.conviction_multiplier = conviction_multiplier

    def max_hold_days(self, leverage: Any) -> int:
        """3x -> 5 days, 2x -> 10, 1.5x -> 15 (from the config; between tiers, the stricter)."""
        return self.config.max_hold_days(leverage)

    def calculate(
        self,
        signal: Signal,
        etf: LeveredInstrument,
        account: AccountState,
        etf_price: Any,
    ) -> EtfSize:
        """Size a position in ``etf`` for ``signal`` at the fund's price ``etf_price``.

        Bad prices raise :class:`~core.domain.ValidationError`; a position that comes out at zero
        shares is returned with ``reason`` set.
        """
        entry = positive(signal.entry, "entry")
        stop = positive(signal.stop, "stop")
        price = positive(etf_price, "etf_price")
        leverage = positive(etf.leverage, "leverage")
        if entry == stop:
            raise ValidationError("stop must differ from entry")
        hold = self.max_hold_days(leverage)
        equity = to_decimal(account.equity, "equity")
        risk_amount = max(equity, ZERO) * self.max_risk_per_trade
        multiplier = to_decimal(self.conviction_multiplier(signal.conviction), "multiplier")

        def zero(reason: str, **extra: Any) -> EtfSize:
            return EtfSize(
                etf.ticker,
                ZERO,
                ZERO,
                leverage,
                hold,
                risk_amount,
                multiplier,
                reason=reason,
                **extra,
            )

        if equity <= 0:
            return zero(f"account equity {equity} is not positive")
        if multiplier <= 0:
            return zero(f"conviction {signal.conviction} is too low to trade")
        stop_distance = abs(entry - stop) / entry
        etf_stop_distance = stop_distance * leverage
        if etf_stop_distance >= ONE:
            return zero(
                f"the {stop_distance:.2%} stop on {signal.symbol} is {etf_stop_distance:.2%} on "
                f"the {leverage}x fund {etf.ticker}: the fund would lose everything first",
                etf_stop_distance=etf_stop_distance,
            )
        stop_price = round_price(price * (ONE - etf_stop_distance))
        raw = risk_amount / (price * etf_stop_distance) * multiplier
        cap = equity * self.max_single_etf_exposure / price
        capped = cap < raw
        shares = min(raw, cap).to_integral_value(rounding=ROUND_DOWN)
        # The division above is rounded to 28 digits; never let that rounding put a share more
        # at risk than the budget (or past the cap).
        while shares > 0 and (
            shares * price * etf_stop_distance > risk_amount * multiplier
            or shares * price > equity * self.max_single_etf_exposure
        ):
            shares -= 1
        if shares < 1:
            limit = (
                f"the {self.max_single_etf_exposure:.0%} exposure cap"
                if capped
                else f"the risk budget of ${risk_amount:,.2f}"
            )
            return zero(
                f"{limit} buys less than one share of {etf.ticker} at {price}",
                etf_stop_distance=etf_stop_distance,
                etf_stop_price=stop_price,
                capped_by_exposure=capped,
            )
        return EtfSize(
            etf.ticker,
            shares,
            shares * price,
            leverage,
            hold,
            risk_amount,
            multiplier,
            etf_stop_distance=etf_stop_distance,
            etf_stop_price=stop_price,
            capped_by_exposure=capped,
        )
