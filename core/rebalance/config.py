"""Settings of the rebalancing engine: trade filters, price buffers, plan freshness and the
autonomous opt-in. Frozen and validated; round-trips through ``to_dict``/``from_dict`` so it can
be stored as a versioned setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.domain import ValidationError, known_changes, plain_data, to_decimal, to_duration


@dataclass(frozen=True, slots=True)
class RebalanceConfig:
    """How plans are built and how long they stay valid."""

    #: Adjustments worth less than this (in dollars) are left out; closing a position that is
    #: no longer in the targets is never left out.
    min_trade_value: Decimal = Decimal(100)
    #: Plan limit prices: last + buffer for buys, last - buffer for sells (seed 000 R5.2).
    limit_buffer_bps: Decimal = Decimal(10)
    #: A plan expires when any of its prices has moved more than this since it was built.
    price_tolerance_bps: Decimal = Decimal(100)
    #: ... or when it is older than this.
    max_plan_age: timedelta = timedelta(hours=4)
    #: Trade fractional shares (to 1e-6) when the broker supports them; whole shares otherwise.
    fractional: bool = False
    #: Plans execute without a person's approval only when this is switched on (seed 000
    #: security: no fully autonomous trading without opt-in).
    autonomous: bool = False

    def __post_init__(self) -> None:
        for name in ("min_trade_value", "limit_buffer_bps", "price_tolerance_bps"):
            value = to_decimal(getattr(self, name), name)
            if value < 0:
                raise ValidationError(f"{name} must not be negative, got {value}")
            object.__setattr__(self, name, value)
        if self.limit_buffer_bps >= 10_000:
            raise ValidationError("limit_buffer_bps must be below 10000 (100%)")
        age = to_duration(self.max_plan_age, "max_plan_age")
        if age <= timedelta(0):
            raise ValidationError("max_plan_age must be positive")
        object.__setattr__(self, "max_plan_age", age)
        for name in ("fractional", "autonomous"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be true or false")

    def to_dict(self) -> dict[str, Any]:
        return plain_data(self)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base: RebalanceConfig | None = None
    ) -> RebalanceConfig:
        return replace(base or cls(), **known_changes(cls, data, "rebalance"))


__all__ = ["RebalanceConfig"]
