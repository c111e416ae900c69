"""The options stage of the signal pipeline: a scalp signal the instrument router sent to options
becomes a bought call (bull) or put (bear) on a 0DTE/1DTE contract, sized by premium at risk.

* **Contract**: :func:`~core.options.selection.select_contract` on the market's option chain
  (0DTE when the underlying lists an expiry this session and the close is not too near, else the
  next expiry; ATM or a target delta; open-interest and spread filters).
* **Size**: the premium is the maximum loss: contracts = equity x max risk per trade x
  conviction multiplier / (ask x 100), capped by ``max_contracts``.
* **Order**: a limit buy at the ask (never more than the premium the size was computed on), day.
* **Exits** in the traded contract's premium: stop at ``premium_stop`` below the entry premium
  (default -50 %), target at ``premium_target`` above it (default +100 %); the time stop
  (``ExitConfig.option_time_stop_minutes``), the EOD close and the underlying's cloud flip are
  the exit monitor's (see ``core.exits.monitor``).

A market data source without option chains (the brokers' feeds, a replay) cannot price a
contract: such signals are rejected with that reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.domain import CENT, InstrumentType, OrderType, Side, ValidationError, to_decimal
from core.options.pricing import OptionQuote
from core.options.selection import (
    DEFAULT_SELECTION,
    ContractSelectionConfig,
    NoContract,
    select_contract,
)
from core.options.sizing import size_option
from core.pipeline import OrderDraft, PipelineContext, Rejected
from core.sizing.position import conviction_multiplier

#: ``(underlying, expiry or None) -> quotes`` of one expiry's calls and puts.
ChainSource = Callable[[str, date | None], list[OptionQuote]]


@dataclass(frozen=True, slots=True)
class OptionsConfig:
    """Options trading settings (defaults from the product: -50 % premium stop, +100 % premium
    target, at most 10 contracts a trade)."""

    selection: ContractSelectionConfig = field(default_factory=lambda: DEFAULT_SELECTION)
    max_contracts: int = 10
    #: Exit when the premium has lost this fraction of the entry premium.
    premium_stop: Decimal = Decimal("0.50")
    #: Exit when the premium has gained this fraction of the entry premium.
    premium_target: Decimal = Decimal("1.00")

    def __post_init__(self) -> None:
        if not isinstance(self.selection, ContractSelectionConfig):
            raise ValidationError("selection must be a ContractSelectionConfig")
        if isinstance(self.max_contracts, bool) or not isinstance(self.max_contracts, int):
            raise ValidationError(f"max_contracts must be a whole number: {self.max_contracts!r}")
        if self.max_contracts < 1:
            raise ValidationError(f"max_contracts must be at least 1, got {self.max_contracts}")
        stop = to_decimal(self.premium_stop, "premium_stop")
        if not 0 < stop < 1:
            raise ValidationError(f"premium_stop is a fraction between 0 and 1, got {stop}")
        target = to_decimal(self.premium_target, "premium_target")
        if target <= 0:
            raise ValidationError(f"premium_target must be above 0, got {target}")
        object.__setattr__(self, "premium_stop", stop)
        object.__setattr__(self, "premium_target", target)

    def stop_price(self, premium: Decimal) -> Decimal:
        return _cents(premium * (1 - self.premium_stop))

    def target_price(self, premium: Decimal) -> Decimal:
        return _cents(premium * (1 + self.premium_target))

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_contracts": self.max_contracts,
            "premium_stop": str(self.premium_stop),
            "premium_target": str(self.premium_target),
            "target_delta": None
            if self.selection.target_delta is None
            else str(self.selection.target_delta),
        }


def _cents(value: Decimal) -> Decimal:
    return max(CENT, value.quantize(CENT, ROUND_HALF_UP))


class OptionsStage:
    """See the module docstring. ``risk_fraction`` is the risk profile's max risk per trade."""

    name = "options"

    def __init__(self, config: OptionsConfig, risk_fraction: Decimal, calendar: Any) -> None:
        self.config = config
        self.risk_fraction = risk_fraction
        self.calendar = calendar

    @staticmethod
    def applies(draft: OrderDraft) -> bool:
        """Only drafts the instrument router sent to options pass through this stage."""
        return draft.instrument_type is InstrumentType.OPTION

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        if not self.applies(draft):
            return draft
        chain: ChainSource | None = ctx.option_chain
        signal = draft.signal
        if chain is None:
            raise Rejected(
                f"{signal.trade_type.value} signal routes to 0DTE/1DTE options on "
                f"{signal.symbol}, and this market data source gives no option chains to price "
                "a contract"
            )
        if ctx.account is None:
            raise Rejected("no account snapshot to size the option against")
        spot = ctx.prices.get(signal.symbol)
        if spot is None:
            raise Rejected(f"no price for {signal.symbol}, the option's underlying")
        bullish = draft.side is not Side.SELL and signal.direction.value == "long"
        try:
            selection = select_contract(
                signal.symbol,
                bullish,
                spot,
                ctx.now,
                self.calendar,
                lambda expiry: chain(signal.symbol, expiry),
                self.config.selection,
            )
            quote = selection.quote
            size = size_option(
                quote.ask,
                ctx.account.equity,
                self.risk_fraction,
                conviction_multiplier(signal.conviction),
                self.config.max_contracts,
            )
        except NoContract as exc:
            raise Rejected(str(exc)) from None
        premium = quote.ask
        contract = selection.contract
        greeks = quote.greeks
        return replace(
            draft,
            symbol=contract.symbol,
            side=Side.BUY,
            qty=Decimal(size.contracts),
            order_type=OrderType.LIMIT,
            limit_price=premium,
            price=premium,
            stop=self.config.stop_price(premium),
            target=self.config.target_price(premium),
            notes={
                **draft.notes,
                "contract": contract.symbol,
                "underlying": contract.underlying,
                "expiry": contract.expiry.isoformat(),
                "strike": str(contract.strike),
                "right": contract.right.value,
                "expiry_kind": selection.expiry_kind,
                "selection": selection.reason,
                "bid": str(quote.bid),
                "ask": str(quote.ask),
                "iv": f"{quote.iv:.4f}",
                "delta": f"{greeks.delta:.4f}",
                "gamma": f"{greeks.gamma:.4f}",
                "theta": f"{greeks.theta:.4f}",
                "vega": f"{greeks.vega:.4f}",
                "contracts": str(size.contracts),
                "premium_at_risk": str(size.premium_at_risk),
                "sizing": size.reason,
                "stop": str(self.config.stop_price(premium)),
                "target": str(self.config.target_price(premium)),
                "entry_type": OrderType.LIMIT.value,
                "limit_price": str(premium),
            },
        )


__all__ = ["ChainSource", "OptionsConfig", "OptionsStage"]
