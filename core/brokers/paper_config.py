"""Settings of a simulated (paper) account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.brokers.commission import CommissionSchedule
from core.domain import ValidationError, to_decimal

#: Run-time settings (``update_setting`` keys) that change how a running paper broker fills.
#: Each maps to one :class:`PaperConfig` field; the stored values are plain JSON.
PARTICIPATION_KEY = "paper.participation_rate"
IMPACT_KEY = "paper.impact_bps_per_pct_adv"
LATENCY_KEY = "paper.latency_ms"
COMMISSION_KEY = "paper.commission"
PAPER_FILL_KEYS = (PARTICIPATION_KEY, IMPACT_KEY, LATENCY_KEY, COMMISSION_KEY)


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """How the paper broker fills orders and keeps the account. Validated on construction.

    * ``initial_cash`` -- cash of a new account (an existing ledger keeps its own).
    * ``impact_bps_per_pct_adv`` -- linear market impact: ``impact_bps = qty / ADV * 100 * k``
      (seed 000 R3.1: 10 bps per 1 % of average daily volume).
    * ``latency`` -- an order may fill only once ``now >= submitted_at + latency``.
    * ``participation_rate`` -- at most this fraction of a 1-minute bar's volume fills per bar.
    * ``commission`` -- a :class:`~core.brokers.commission.CommissionSchedule`.
    * ``leverage_limit`` -- cap on the RegT multiplier (1 = no margin).
    * ``overnight_multiplier`` / ``intraday_multiplier`` -- RegT 2x, and 4x intraday for accounts
      at or above ``pdt_equity_threshold``.
    * ``pdt_protection`` -- refuse an order that would be a 4th day trade in 5 sessions while
      equity is below ``pdt_equity_threshold``.
    * ``allow_short`` -- allow sells beyond the long position.
    * ``fractional`` -- allow non-whole share quantities.
    """

    initial_cash: Decimal = Decimal(100_000)
    impact_bps_per_pct_adv: Decimal = Decimal(10)
    latency: timedelta = timedelta(0)
    participation_rate: Decimal = Decimal("0.10")
    commission: CommissionSchedule = field(default_factory=CommissionSchedule)
    leverage_limit: Decimal = Decimal(1)
    overnight_multiplier: Decimal = Decimal(2)
    intraday_multiplier: Decimal = Decimal(4)
    pdt_equity_threshold: Decimal = Decimal(25_000)
    pdt_protection: bool = True
    allow_short: bool = True
    fractional: bool = True

    def __post_init__(self) -> None:
        def set_dec(name: str, minimum: Decimal, strict: bool) -> Decimal:
            value = to_decimal(getattr(self, name), name)
            if value < minimum or (strict and value == minimum):
                relation = "above" if strict else "at least"
                raise ValidationError(f"{name} must be {relation} {minimum}, got {value}")
            object.__setattr__(self, name, value)
            return value

        zero, one = Decimal(0), Decimal(1)
        set_dec("initial_cash", zero, strict=False)
        set_dec("impact_bps_per_pct_adv", zero, strict=False)
        rate = set_dec("participation_rate", zero, strict=True)
        if rate > one:
            raise ValidationError(f"participation_rate must be at most 1, got {rate}")
        set_dec("leverage_limit", zero, strict=True)
        set_dec("overnight_multiplier", one, strict=False)
        set_dec("intraday_multiplier", one, strict=False)
        set_dec("pdt_equity_threshold", zero, strict=False)
        if not isinstance(self.latency, timedelta) or self.latency < timedelta(0):
            raise ValidationError(f"latency must be a non-negative timedelta, got {self.latency!r}")
        if not isinstance(self.commission, CommissionSchedule):
            raise ValidationError("commission must be a CommissionSchedule")
        for name in ("pdt_protection", "allow_short", "fractional"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be True or False")

    # -- run-time fill settings ------------------------------------------------------------------
    def fill_settings(self) -> dict[str, Any]:
        """The knobs of :data:`PAPER_FILL_KEYS` as they are stored (strings for decimals,
        whole milliseconds for the latency, the commission schedule as a dict)."""
        return {
            PARTICIPATION_KEY: str(self.participation_rate),
            IMPACT_KEY: str(self.impact_bps_per_pct_adv),
            LATENCY_KEY: int(self.latency / timedelta(milliseconds=1)),
            COMMISSION_KEY: self.commission.to_dict(),
        }

    def with_fill_settings(self, values: Mapping[str, Any]) -> PaperConfig:
        """This config with the stored knobs in ``values`` applied (other keys are ignored);
        raises :class:`ValidationError` when a value does not make a valid config."""
        changes: dict[str, Any] = {}
        if PARTICIPATION_KEY in values:
            changes["participation_rate"] = to_decimal(
                values[PARTICIPATION_KEY], "participation_rate"
            )
        if IMPACT_KEY in values:
            changes["impact_bps_per_pct_adv"] = to_decimal(
                values[IMPACT_KEY], "impact_bps_per_pct_adv"
            )
        if LATENCY_KEY in values:
            ms = values[LATENCY_KEY]
            if isinstance(ms, bool) or not isinstance(ms, int):
                raise ValidationError(f"latency must be whole milliseconds, got {ms!r}")
            changes["latency"] = timedelta(milliseconds=ms)
        if COMMISSION_KEY in values:
            changes["commission"] = commission_from_setting(values[COMMISSION_KEY])
        return replace(self, **changes) if changes else self


_COMMISSION_FIELDS = frozenset({"kind", "rate", "pct", "minimum", "max_pct", "per_contract"})


def commission_from_setting(value: Any) -> CommissionSchedule:
    """A commission schedule from its stored dict (``kind`` plus ``rate``, ``pct``,
    ``minimum``, ``max_pct`` and the options ``per_contract`` as numbers or decimal strings);
    unknown fields are refused."""
    if isinstance(value, CommissionSchedule):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError("the commission must be an object with a kind")
    unknown = sorted(set(value) - _COMMISSION_FIELDS)
    if unknown:
        raise ValidationError(f"unknown commission fields: {', '.join(unknown)}")

    def dec(name: str) -> Decimal:
        raw = value.get(name)
        return Decimal(0) if raw is None or raw == "" else to_decimal(raw, f"commission {name}")

    cap = value.get("max_pct")
    return CommissionSchedule(
        kind=value.get("kind", "zero"),
        rate=dec("rate"),
        pct=dec("pct"),
        minimum=dec("minimum"),
        max_pct=None if cap is None or cap == "" else to_decimal(cap, "commission max_pct"),
        per_contract=dec("per_contract"),
    )
