"""Settings of the execution algorithms: when an order is sliced, when it goes passive, how a
limit is priced and how far a resting limit may chase the market.

:class:`ExecutionConfig` is frozen and validated on construction. Amounts in basis points are
:class:`~decimal.Decimal` (``Decimal(10)`` is 10 bps = 0.10 %), percentages of average daily
volume are percent (``Decimal(5)`` is 5 % of ADV). It round-trips through
:meth:`ExecutionConfig.to_dict` / :meth:`ExecutionConfig.from_dict` (Decimals as strings,
durations in seconds) so an edited configuration can be stored as a setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.domain import (
    ValidationError,
    known_changes,
    plain_data,
    to_decimal,
    to_duration,
    to_int,
)

#: The slicing algorithms a large order may use.
SLICE_ALGORITHMS = ("twap", "vwap")
#: A buffer or chase bound of 10,000 bps (100 %) or more would put a sell limit at or below 0.
_MAX_DISTANCE_BPS = Decimal(10_000)

# name -> (lowest allowed value, whether that value itself is allowed)
_DECIMALS: dict[str, tuple[Decimal, bool]] = {
    "impact_bps_per_pct_adv": (Decimal(0), True),
    "adv_threshold_pct": (Decimal(0), False),
    "passive_impact_bps": (Decimal(0), True),
    "default_half_spread_bps": (Decimal(0), True),
    "limit_buffer_bps": (Decimal(0), True),
    "chase_step_bps": (Decimal(0), False),
    "chase_bound_bps": (Decimal(0), True),
}
_DURATIONS = ("slice_interval", "chase_interval")


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """How orders are worked. Defaults follow seed 000 R2.2 and R3.1."""

    #: Linear market impact: each 1 % of ADV an order takes costs this many bps (seed 000 R3.1).
    impact_bps_per_pct_adv: Decimal = Decimal(10)
    #: An order above this percent of ADV is sliced over time (TWAP or VWAP).
    adv_threshold_pct: Decimal = Decimal(5)
    #: An order whose estimated half-spread + impact exceeds this many bps rests as a passive
    #: limit instead of crossing the spread (seed 000 R2.2: "> 10 bps impact").
    passive_impact_bps: Decimal = Decimal(10)
    #: Half-spread assumed when there is no usable quote.
    default_half_spread_bps: Decimal = Decimal(2)
    #: Number of child orders a sliced order is split into.
    slices: int = 10
    #: Time between two child orders.
    slice_interval: timedelta = timedelta(seconds=60)
    #: ``"twap"`` (equal slices) or ``"vwap"`` (slices follow the intraday volume profile).
    slice_algorithm: str = "twap"
    #: A protective limit sits this many bps beyond the last price (above for buys).
    limit_buffer_bps: Decimal = Decimal(10)
    #: Each chase step moves a resting limit this many bps of the arrival price.
    chase_step_bps: Decimal = Decimal(5)
    #: A chased limit never goes further than this many bps from the arrival price.
    chase_bound_bps: Decimal = Decimal(50)
    #: Time between two chase steps.
    chase_interval: timedelta = timedelta(seconds=30)
    #: Child quantities may be fractional (to 1e-6 shares) instead of whole shares.
    fractional: bool = False

    def __post_init__(self) -> None:
        for name, (low, inclusive) in _DECIMALS.items():
            value = to_decimal(getattr(self, name), name)
            if value < low or (value == low and not inclusive):
                relation = "at least" if inclusive else "above"
                raise ValidationError(f"{name} must be {relation} {low}, got {value}")
            object.__setattr__(self, name, value)
        if self.adv_threshold_pct > 100:
            raise ValidationError(
                f"adv_threshold_pct must be at most 100 (percent of ADV), "
                f"got {self.adv_threshold_pct}"
            )
        for name in ("limit_buffer_bps", "chase_bound_bps"):
            if getattr(self, name) >= _MAX_DISTANCE_BPS:
                raise ValidationError(
                    f"{name} must be below {_MAX_DISTANCE_BPS} bps (100 %), "
                    f"got {getattr(self, name)}"
                )
        if isinstance(self.slices, bool) or not isinstance(self.slices, int) or self.slices < 1:
            raise ValidationError(f"slices must be an integer of at least 1, got {self.slices!r}")
        for name in _DURATIONS:
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValidationError(f"{name} must be a positive duration, got {value!r}")
        if self.slice_algorithm not in SLICE_ALGORITHMS:
            raise ValidationError(
                f"slice_algorithm must be one of {', '.join(SLICE_ALGORITHMS)}, "
                f"got {self.slice_algorithm!r}"
            )
        if not isinstance(self.fractional, bool):
            raise ValidationError(f"fractional must be true or false, got {self.fractional!r}")

    # -- plain data ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: Decimals as strings, durations in seconds."""
        return plain_data(self)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base: ExecutionConfig | None = None
    ) -> ExecutionConfig:
        """Build a validated configuration from plain data; fields left out come from ``base``
        (the defaults unless given). Unknown fields and bad values raise
        :class:`~core.domain.ValidationError` naming the field."""
        changes = known_changes(cls, data, "execution")
        for name in _DURATIONS:
            if name in changes:
                changes[name] = to_duration(changes[name], name)
        if "slices" in changes:
            changes["slices"] = to_int(changes["slices"], "slices")
        return replace(base if base is not None else cls(), **changes)
