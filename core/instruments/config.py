"""Settings of the instrument router and the leveraged ETF sizer (seed 001, "Leveraged ETF
Settings"), frozen and validated on construction.

Fields and defaults:

* ``prefer_3x_for_day_trades`` (True) -- scalps and day trades try 3x funds first; when False
  they prefer 2x like swing trades.
* ``min_etf_daily_volume`` ($10,000,000) -- a fund trades only if its average daily *dollar*
  volume is at least this.
* ``etf_sector_mapping`` (True) -- map stocks to their sector fund; when False every mapped stock
  trades the broad-market pair (index funds such as SPY and QQQ still trade their own index).
* ``both_mode_etf_min_conviction`` (75) -- in *both* mode a day trade with at least this
  conviction trades a leveraged ETF, below it the stock.
* ``both_mode_stock_fallback`` (True) -- in *both* mode, a day trade for which no fund qualifies
  trades the stock (the table allows stock there); in *leveraged_etf* mode such a signal is
  always rejected.
* ``max_etf_hold_days_3x`` / ``_2x`` / ``_1_5x`` (5 / 10 / 15) -- holding limits by leverage.
* ``sector_fallback_index`` (``sp500``) -- the index a mapped ticker trades when its sector has
  no fund on the side the signal needs; ``None`` rejects such signals instead.
* ``unknown_ticker_index`` (``None``) -- the index a ticker in no map trades; ``None`` (default)
  rejects it with a reason, because for a ticker we know nothing about, no index is a
  trustworthy proxy.
* ``sector_overrides`` (empty) -- extra or replacement ``ticker -> sector`` mappings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from core.domain import ValidationError, positive, to_decimal
from core.instruments.catalog import INDEX_SECTORS, Sector
from core.instruments.modes import DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION, InstrumentMode
from core.instruments.sector_map import BROAD_MARKET, normalize_ticker

_TWO = Decimal(2)
_ONE_AND_HALF = Decimal("1.5")


def _index_or_none(value: Any, name: str) -> Sector | None:
    if value is None:
        return None
    try:
        sector = Sector(value)
    except ValueError:
        raise ValidationError(f"{name} must be an index key or None, got {value!r}") from None
    if sector not in INDEX_SECTORS:
        known = ", ".join(sorted(INDEX_SECTORS))
        raise ValidationError(f"{name} must be one of {known} or None, got {value!r}")
    return sector


@dataclass(frozen=True, slots=True)
class InstrumentConfig:
    """How signals map to instruments; see the module docstring for each field."""

    prefer_3x_for_day_trades: bool = True
    min_etf_daily_volume: Decimal = Decimal(10_000_000)
    etf_sector_mapping: bool = True
    both_mode_etf_min_conviction: int = DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION
    both_mode_stock_fallback: bool = True
    max_etf_hold_days_3x: int = 5
    max_etf_hold_days_2x: int = 10
    max_etf_hold_days_1_5x: int = 15
    sector_fallback_index: Sector | None = BROAD_MARKET
    unknown_ticker_index: Sector | None = None
    sector_overrides: Mapping[str, Sector] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "prefer_3x_for_day_trades",
            "etf_sector_mapping",
            "both_mode_stock_fallback",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be true or false")
        volume = to_decimal(self.min_etf_daily_volume, "min_etf_daily_volume")
        if volume < 0:
            raise ValidationError(f"min_etf_daily_volume must not be negative, got {volume}")
        object.__setattr__(self, "min_etf_daily_volume", volume)
        conviction = self.both_mode_etf_min_conviction
        if isinstance(conviction, bool) or not isinstance(conviction, int):
            raise ValidationError("both_mode_etf_min_conviction must be an integer 0-100")
        if not 0 <= conviction <= 100:
            raise ValidationError(
                f"both_mode_etf_min_conviction must be between 0 and 100, got {conviction}"
            )
        days = (self.max_etf_hold_days_3x, self.max_etf_hold_days_2x, self.max_etf_hold_days_1_5x)
        for name, value in zip(
            ("max_etf_hold_days_3x", "max_etf_hold_days_2x", "max_etf_hold_days_1_5x"),
            days,
            strict=True,
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a whole number of days >= 1, got {value!r}")
        if not days[0] <= days[1] <= days[2]:
            raise ValidationError(
                "holding limits must not grow with leverage: need "
                f"3x ({days[0]}) <= 2x ({days[1]}) <= 1.5x ({days[2]}) days"
            )
        object.__setattr__(
            self,
            "sector_fallback_index",
            _index_or_none(self.sector_fallback_index, "sector_fallback_index"),
        )
        object.__setattr__(
            self,
            "unknown_ticker_index",
            _index_or_none(self.unknown_ticker_index, "unknown_ticker_index"),
        )
        overrides: dict[str, Sector] = {}
        for ticker, sector in dict(self.sector_overrides).items():
            if not isinstance(ticker, str) or not ticker.strip():
                raise ValidationError(f"sector_overrides: bad ticker {ticker!r}")
            try:
                overrides[normalize_ticker(ticker)] = Sector(sector)
            except ValueError:
                known = ", ".join(s.value for s in Sector)
                raise ValidationError(
                    f"sector_overrides: unknown sector {sector!r} for {ticker}; known: {known}"
                ) from None
        object.__setattr__(self, "sector_overrides", MappingProxyType(overrides))

    def max_hold_days(self, leverage: Any) -> int:
        """Holding limit for a fund of ``leverage``: above 2x the 3x limit, above 1.5x the 2x
        limit, otherwise the 1.5x limit. A leverage between tiers gets the stricter limit."""
        lev = positive(leverage, "leverage")
        if lev > _TWO:
            return self.max_etf_hold_days_3x
        if lev > _ONE_AND_HALF:
            return self.max_etf_hold_days_2x
        return self.max_etf_hold_days_1_5x


def parse_instrument_mode(value: Any) -> str:
    """Validator for a dashboard ``instrument_mode`` setting: the stored mode value."""
    try:
        return InstrumentMode(value).value
    except ValueError:
        known = ", ".join(m.value for m in InstrumentMode)
        raise ValidationError(f"instrument mode must be one of {known}, got {value!r}") from None


def _conviction(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError("value must be an integer between 0 and 100")
    try:
        n = int(value)
    except ValueError:
        raise ValidationError("value must be an integer between 0 and 100") from None
    if not 0 <= n <= 100:
        raise ValidationError(f"value must be between 0 and 100, got {n}")
    return n


def _dollars(value: Any) -> str:
    return str(positive(value, "value"))


#: Validators for instrument settings the dashboard may change at run time (same shape as
#: ``core.config.RUNTIME_SETTINGS``, ready to be merged into it).
INSTRUMENT_RUNTIME_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "instruments.mode": parse_instrument_mode,
    "instruments.both_mode_etf_min_conviction": _conviction,
    "instruments.min_etf_daily_volume": _dollars,
}
