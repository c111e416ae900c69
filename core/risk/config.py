"""Risk profiles: the limits the pre-trade risk gate, the position sizer and the kill switch apply.

A :class:`RiskProfile` is frozen and validated on construction; every fraction is a
:class:`~decimal.Decimal` share of account equity (``Decimal("0.15")`` is 15 %). Two profiles
ship:

``AGGRESSIVE`` (seed 001 "Risk Parameters (Aggressive Profile)")
    5 % risk per trade, 10 concurrent positions, 10 % daily loss limit, 15 % single-name and 30 %
    sector exposure, $25,000 minimum equity (PDT), 0.1 % slippage buffer. Not set by the seed and
    chosen here: 2x leverage (Reg T; ten positions of 15 % need 1.5x), no cash buffer, a $100
    minimum position (a few option contracts), 20 % drawdown from peak.

``CONSERVATIVE`` (seed 000 R4.2 "Position Constraints")
    15 % single position, 35 % sector, $500 minimum position, 2 % cash buffer, 1x leverage (no
    margin). Not set by the seed and chosen here: 1 % risk per trade, 20 concurrent positions (a
    20-stock portfolio), 3 % daily loss limit, 10 % drawdown from peak, $2,000 minimum equity, a
    0.1 % slippage buffer; accounts under $25,000 may trade but are held to three day trades in
    five sessions (seed 000 R2.3 item 4).

Profiles round-trip through :meth:`RiskProfile.to_dict` / :meth:`RiskProfile.from_dict` (Decimals
as strings, the duplicate window in seconds) so an edited profile can be stored as a setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from core.domain import (
    ValidationError,
    known_changes,
    plain_data,
    to_decimal,
    to_duration,
    to_int,
)

#: Equity under which FINRA's pattern-day-trader rule limits day trades.
PDT_EQUITY_THRESHOLD = Decimal(25_000)

_FRACTIONS = (  # (0, 1]
    "max_risk_per_trade",
    "daily_loss_limit",
    "max_single_exposure",
    "max_sector_exposure",
    "max_drawdown",
)
_BUFFERS = ("slippage_buffer", "cash_buffer")  # [0, 1)
_AMOUNTS = ("min_account_equity", "min_position_value", "pdt_equity_threshold")  # >= 0
_INTS = {"max_concurrent_positions": 1, "pdt_max_day_trades": 0}  # name -> minimum
_BOOLS = ("reject_outside_hours", "allow_add_to_winner")
_MAX_LEVERAGE = Decimal(10)


@dataclass(frozen=True, slots=True)
class RiskProfile:
    """Limits for new risk. Defaults are seed 001's aggressive profile.

    Exposure limits (single name, sector, leverage, buying power) shrink an order that would breach
    them; the other limits reject it. Orders that only reduce a position are never limited.
    """

    name: str = "aggressive"
    #: Loss at the stop, as a share of equity, that sizing aims for.
    max_risk_per_trade: Decimal = Decimal("0.05")
    #: Distinct symbols held or with a working entry order.
    max_concurrent_positions: int = 10
    #: No new risk once the day's P&L is at or below -this x starting equity.
    daily_loss_limit: Decimal = Decimal("0.10")
    #: Largest absolute market value of one symbol, as a share of equity.
    max_single_exposure: Decimal = Decimal("0.15")
    #: Largest gross market value of one sector, as a share of equity.
    max_sector_exposure: Decimal = Decimal("0.30")
    #: No new risk below this equity (seed 001: PDT compliance).
    min_account_equity: Decimal = Decimal(25_000)
    #: Added to the reference price when estimating what an order costs.
    slippage_buffer: Decimal = Decimal("0.001")
    #: Orders (or reduced orders) worth less than this are rejected.
    min_position_value: Decimal = Decimal(100)
    #: Share of equity always left unspent from buying power.
    cash_buffer: Decimal = Decimal(0)
    #: Gross market value of all positions may reach this multiple of equity.
    leverage_limit: Decimal = Decimal(2)
    #: No new risk once equity is this far below its peak (fraction of the peak).
    max_drawdown: Decimal = Decimal("0.20")
    #: The same symbol, side and quantity is refused again within this window.
    duplicate_window: timedelta = timedelta(seconds=60)
    #: Day trades allowed in five sessions while equity is under ``pdt_equity_threshold``.
    pdt_max_day_trades: int = 3
    pdt_equity_threshold: Decimal = PDT_EQUITY_THRESHOLD
    #: Reject outside regular hours (True) or pass with a warning in the audit trail (False).
    reject_outside_hours: bool = True
    #: Allow a second entry in a symbol already held when that position is in profit.
    allow_add_to_winner: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("name: a risk profile needs a name")
        for name in (*_FRACTIONS, *_BUFFERS, *_AMOUNTS, "leverage_limit"):
            object.__setattr__(self, name, to_decimal(getattr(self, name), name))
        for name in _FRACTIONS:
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValidationError(f"{name} must be above 0 and at most 1, got {value}")
        for name in _BUFFERS:
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValidationError(f"{name} must be at least 0 and below 1, got {value}")
        for name in _AMOUNTS:
            if getattr(self, name) < 0:
                raise ValidationError(f"{name} must not be negative, got {getattr(self, name)}")
        for name, low in _INTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(f"{name} must be an integer of at least {low}, got {value!r}")
        for name in _BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not 0 < self.leverage_limit <= _MAX_LEVERAGE:
            raise ValidationError(
                f"leverage_limit must be above 0 and at most {_MAX_LEVERAGE}, "
                f"got {self.leverage_limit}"
            )
        if not isinstance(self.duplicate_window, timedelta) or self.duplicate_window < timedelta(0):
            raise ValidationError(
                f"duplicate_window must be a non-negative duration, got {self.duplicate_window!r}"
            )
        if self.max_single_exposure > self.max_sector_exposure:
            raise ValidationError(
                f"max_single_exposure ({self.max_single_exposure}) must not exceed "
                f"max_sector_exposure ({self.max_sector_exposure})"
            )

    # -- plain data ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: Decimals as strings, ``duplicate_window`` in seconds."""
        return plain_data(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RiskProfile | None = None) -> RiskProfile:
        """Build a validated profile from plain data; fields left out come from ``base``.

        ``base`` defaults to the aggressive defaults. Unknown fields and bad values raise
        :class:`ValidationError` naming the field.
        """
        changes = known_changes(cls, data, "risk profile")
        if "duplicate_window" in changes:
            changes["duplicate_window"] = to_duration(
                changes["duplicate_window"], "duplicate_window", allow_zero=True
            )
        for name in _INTS:
            if name in changes:
                changes[name] = to_int(changes[name], name)
        return replace(base if base is not None else cls(), **changes)


AGGRESSIVE = RiskProfile()

CONSERVATIVE = RiskProfile(
    name="conservative",
    max_risk_per_trade=Decimal("0.01"),
    max_concurrent_positions=20,
    daily_loss_limit=Decimal("0.03"),
    max_single_exposure=Decimal("0.15"),
    max_sector_exposure=Decimal("0.35"),
    min_account_equity=Decimal(2_000),
    slippage_buffer=Decimal("0.001"),
    min_position_value=Decimal(500),
    cash_buffer=Decimal("0.02"),
    leverage_limit=Decimal(1),
    max_drawdown=Decimal("0.10"),
)

#: The shipped profiles by name.
PROFILES: Mapping[str, RiskProfile] = MappingProxyType(
    {"aggressive": AGGRESSIVE, "conservative": CONSERVATIVE}
)


def profile_named(name: str) -> RiskProfile:
    """A shipped profile by name, or :class:`ValidationError` listing the known names."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(PROFILES))
        raise ValidationError(f"unknown risk profile {name!r}; known profiles: {known}") from None


def validate_profile_setting(value: Any) -> dict[str, Any]:
    """Settings validator: a profile name or an edited profile dict -> the dict to store."""
    if isinstance(value, str):
        return profile_named(value).to_dict()
    base = None
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        base = PROFILES.get(value["name"])
    return RiskProfile.from_dict(value, base=base).to_dict()
