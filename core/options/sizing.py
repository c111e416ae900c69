"""Option position size from the premium at risk.

Only long options are bought, so the most a position can lose is the premium paid. The risk
budget of a trade is ``account_equity * max_risk_per_trade_pct * conviction_multiplier``, and::

    contracts = floor(budget / (premium * 100))        # premium per share, 100 shares a contract

capped at ``max_contracts``. ``premium_at_risk = contracts * premium * 100`` never exceeds the
budget. When not even one contract fits, :class:`NoContract` says so with both amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from core.domain import CENT, ValidationError, positive, to_decimal, to_int
from core.options.occ import MULTIPLIER
from core.options.selection import NoContract


@dataclass(frozen=True, slots=True)
class OptionSize:
    """A sized long option position.

    ``contracts`` (at least 1); ``premium_at_risk`` = contracts x premium x 100, the maximum
    loss, in dollars; ``premium`` per share and ``cost_per_contract`` (premium x 100);
    ``risk_budget`` = equity x risk fraction x conviction; ``capped`` when ``max_contracts``
    bound; ``reason`` says how the number came about."""

    contracts: int
    premium_at_risk: Decimal
    reason: str
    premium: Decimal
    cost_per_contract: Decimal
    risk_budget: Decimal
    capped: bool


def _money(value: Decimal) -> str:
    return f"${value.quantize(CENT):,}"


def size_option(
    premium: Decimal,
    account_equity: Decimal,
    max_risk_per_trade_pct: Decimal,
    conviction_multiplier: Decimal,
    max_contracts: int,
) -> OptionSize:
    """Contracts to buy at ``premium`` (the ask, per share) -- see the module docstring.

    ``max_risk_per_trade_pct`` is a fraction (0.05 = 5 % of equity), ``conviction_multiplier``
    scales the budget (1 full, 0.5 half, 0 none). Raises :class:`ValidationError` for bad input
    and :class:`NoContract` when the budget buys no contract.
    """
    price = positive(premium, "premium")
    equity = to_decimal(account_equity, "account_equity")
    pct = to_decimal(max_risk_per_trade_pct, "max_risk_per_trade_pct")
    conviction = to_decimal(conviction_multiplier, "conviction_multiplier")
    cap = _max_contracts(max_contracts)
    if not 0 < pct <= 1:
        raise ValidationError(f"max_risk_per_trade_pct is a fraction in (0, 1], got {pct}")
    if conviction < 0:
        raise ValidationError(f"conviction_multiplier must not be negative, got {conviction}")
    per_contract = price * MULTIPLIER
    budget = max(equity, Decimal(0)) * pct * conviction
    budget_text = (
        f"the risk budget {_money(budget)} ({_pct(pct)} of equity {_money(equity)} "
        f"x conviction {conviction.normalize():f})"
    )
    if budget <= 0:
        raise NoContract(f"no option bought: {budget_text} is nothing")
    fits = int((budget / per_contract).to_integral_value(ROUND_FLOOR))
    if fits < 1:
        raise NoContract(
            f"premium {_money(per_contract)} per contract ({_money(price)} x 100) exceeds "
            f"{budget_text}"
        )
    contracts = min(fits, cap)
    at_risk = per_contract * contracts
    capped = fits > cap
    reason = (
        f"{contracts} contract{'s' if contracts != 1 else ''} x {_money(per_contract)} = "
        f"{_money(at_risk)} premium at risk within {budget_text}"
    )
    if capped:
        reason += f"; capped at max_contracts {cap} (the budget buys {fits})"
    return OptionSize(
        contracts=contracts,
        premium_at_risk=at_risk,
        reason=reason,
        premium=price,
        cost_per_contract=per_contract,
        risk_budget=budget,
        capped=capped,
    )


def _max_contracts(value: Any) -> int:
    cap = to_int(value, "max_contracts")
    if cap < 1:
        raise ValidationError(f"max_contracts must be at least 1, got {cap}")
    return cap


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


__all__ = ["OptionSize", "size_option"]
