"""Commission schedules for simulated accounts.

Three kinds:

* ``zero`` -- commission-free (the default, like Alpaca).
* ``per_share`` -- ``rate`` per share with a per-order ``minimum`` and, optionally, a cap of
  ``max_pct`` percent of the fill's notional (the Interactive Brokers "fixed" shape).
* ``percent`` -- ``pct`` percent of the fill's notional, with an optional per-order ``minimum``.

Partially filled orders: the per-share or percentage charge is computed on every fill; the
per-order minimum is applied once, to the order's first fill (that fill pays
``max(charge, minimum)``; later fills pay the plain charge). The ``max_pct`` cap applies to every
fill and wins over the minimum. Every fill's commission is rounded to the cent, half up.

Options: an option fill pays ``per_contract`` dollars per contract and nothing else (whatever the
kind: the per-share, percentage, minimum and cap rules are for shares). ``per_contract`` is zero
by default; :data:`OPTION_RATE_PER_CONTRACT` is a typical retail rate. A schedule stores
``per_contract`` only when it is not zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from core.domain import CENT, ZERO, ValidationError, to_decimal

CommissionKind = Literal["zero", "per_share", "percent"]
_HUNDRED = Decimal(100)
#: A typical retail options commission, dollars per contract.
OPTION_RATE_PER_CONTRACT = Decimal("0.65")


@dataclass(frozen=True, slots=True)
class CommissionSchedule:
    """How a simulated account is charged. Build one with the class methods."""

    kind: CommissionKind = "zero"
    #: Dollars per share (``per_share``).
    rate: Decimal = ZERO
    #: Percent of notional (``percent``): ``Decimal("0.1")`` is 0.1 %.
    pct: Decimal = ZERO
    #: Minimum commission per order, charged on its first fill.
    minimum: Decimal = ZERO
    #: Optional cap per fill, in percent of that fill's notional (``per_share``).
    max_pct: Decimal | None = None
    #: Dollars per option contract (option fills pay only this).
    per_contract: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.kind not in ("zero", "per_share", "percent"):
            raise ValidationError(f"unknown commission kind {self.kind!r}")
        for name in ("rate", "pct", "minimum", "per_contract"):
            value = to_decimal(getattr(self, name), name)
            if value < 0:
                raise ValidationError(f"commission {name} must not be negative, got {value}")
            object.__setattr__(self, name, value)
        if self.max_pct is not None:
            cap = to_decimal(self.max_pct, "max_pct")
            if cap <= 0:
                raise ValidationError(f"commission max_pct must be positive, got {cap}")
            object.__setattr__(self, "max_pct", cap)

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def zero(cls) -> CommissionSchedule:
        """No commission."""
        return cls()

    @classmethod
    def per_share(
        cls, rate: Any, minimum: Any = ZERO, max_pct: Any | None = None
    ) -> CommissionSchedule:
        """``rate`` dollars per share, at least ``minimum`` per order, at most ``max_pct`` % of
        each fill's notional."""
        return cls(kind="per_share", rate=rate, minimum=minimum, max_pct=max_pct)

    @classmethod
    def percent_of_notional(cls, pct: Any, minimum: Any = ZERO) -> CommissionSchedule:
        """``pct`` percent of each fill's notional, at least ``minimum`` per order."""
        return cls(kind="percent", pct=pct, minimum=minimum)

    def with_option_rate(self, per_contract: Any = OPTION_RATE_PER_CONTRACT) -> CommissionSchedule:
        """This schedule with option fills charged ``per_contract`` dollars per contract."""
        return replace(self, per_contract=to_decimal(per_contract, "per_contract"))

    # -- charging ------------------------------------------------------------------------------
    def for_fill(self, qty: Decimal, price: Decimal, first_fill: bool) -> Decimal:
        """Commission for one fill of ``qty`` at ``price``.

        ``first_fill`` is True for an order's first execution, which carries the per-order
        minimum.
        """
        if self.kind == "zero":
            return ZERO
        notional = qty * price
        per_share = self.kind == "per_share"
        charge = qty * self.rate if per_share else notional * self.pct / _HUNDRED
        if first_fill and charge < self.minimum:
            charge = self.minimum
        if self.max_pct is not None:
            charge = min(charge, notional * self.max_pct / _HUNDRED)
        return charge.quantize(CENT, rounding=ROUND_HALF_UP)

    def for_option_fill(self, contracts: Decimal) -> Decimal:
        """Commission for an option fill of ``contracts``: ``per_contract`` each, to the cent."""
        return (contracts * self.per_contract).quantize(CENT, rounding=ROUND_HALF_UP)

    def estimate(self, qty: Decimal, price: Decimal) -> Decimal:
        """Commission for an order filled in one piece (used for buying-power checks)."""
        return self.for_fill(qty, price, first_fill=True)

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "rate": str(self.rate),
            "pct": str(self.pct),
            "minimum": str(self.minimum),
            "max_pct": None if self.max_pct is None else str(self.max_pct),
        }
        if self.per_contract:
            data["per_contract"] = str(self.per_contract)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommissionSchedule:
        return cls(
            kind=data.get("kind", "zero"),
            rate=Decimal(data.get("rate", "0")),
            pct=Decimal(data.get("pct", "0")),
            minimum=Decimal(data.get("minimum", "0")),
            max_pct=None if data.get("max_pct") is None else Decimal(data["max_pct"]),
            per_contract=Decimal(data.get("per_contract") or "0"),
        )
