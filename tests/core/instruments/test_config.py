"""InstrumentConfig: seed defaults and validation; the runtime setting validators."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.domain import ValidationError
from core.instruments.catalog import Sector
from core.instruments.config import (
    INSTRUMENT_RUNTIME_SETTINGS,
    InstrumentConfig,
    parse_instrument_mode,
)


def test_seed_defaults() -> None:
    c = InstrumentConfig()
    assert c.prefer_3x_for_day_trades is True
    assert c.min_etf_daily_volume == D(10_000_000) and isinstance(c.min_etf_daily_volume, D)
    assert c.etf_sector_mapping is True
    assert c.both_mode_etf_min_conviction == 75
    assert (c.max_etf_hold_days_3x, c.max_etf_hold_days_2x, c.max_etf_hold_days_1_5x) == (
        5,
        10,
        15,
    )
    assert c.sector_fallback_index is Sector.SP500
    assert c.unknown_ticker_index is None
    assert dict(c.sector_overrides) == {}
    assert c.both_mode_stock_fallback is True


def test_is_frozen() -> None:
    with pytest.raises(AttributeError):
        InstrumentConfig().min_etf_daily_volume = D(1)  # type: ignore[misc]


def test_values_are_normalized() -> None:
    c = InstrumentConfig(
        min_etf_daily_volume="2500000",  # type: ignore[arg-type]
        sector_fallback_index="nasdaq100",  # type: ignore[arg-type]
        sector_overrides={" brk-a ": "financials"},  # type: ignore[dict-item]
    )
    assert c.min_etf_daily_volume == D(2_500_000)
    assert c.sector_fallback_index is Sector.NASDAQ100
    assert dict(c.sector_overrides) == {"BRK.A": Sector.FINANCIALS}
    with pytest.raises(TypeError):
        c.sector_overrides["X"] = Sector.FANG  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_etf_daily_volume": D(-1)},
        {"min_etf_daily_volume": "lots"},
        {"min_etf_daily_volume": float("nan")},
        {"both_mode_etf_min_conviction": 101},
        {"both_mode_etf_min_conviction": -1},
        {"both_mode_etf_min_conviction": True},
        {"both_mode_etf_min_conviction": 75.0},
        {"prefer_3x_for_day_trades": "yes"},
        {"etf_sector_mapping": 1},
        {"max_etf_hold_days_3x": 0},
        {"max_etf_hold_days_2x": 2.5},
        {"max_etf_hold_days_3x": 11},  # a 3x fund held longer than a 2x fund
        {"sector_fallback_index": "technology"},  # not an index
        {"unknown_ticker_index": "mars"},
        {"sector_overrides": {"AAPL": "crypto"}},
        {"sector_overrides": {"": "technology"}},
    ],
)
def test_invalid(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        InstrumentConfig(**kwargs)


def test_runtime_setting_validators() -> None:
    assert parse_instrument_mode("both") == "both"
    assert INSTRUMENT_RUNTIME_SETTINGS["instruments.mode"]("leveraged_etf") == "leveraged_etf"
    with pytest.raises(ValidationError, match="options, leveraged_etf, both"):
        parse_instrument_mode("stocks")
    conviction = INSTRUMENT_RUNTIME_SETTINGS["instruments.both_mode_etf_min_conviction"]
    assert conviction("80") == 80
    for bad in (101, "x", True, 1.5):
        with pytest.raises(ValidationError):
            conviction(bad)
    volume = INSTRUMENT_RUNTIME_SETTINGS["instruments.min_etf_daily_volume"]
    assert volume("20000000") == "20000000"
    with pytest.raises(ValidationError):
        volume(0)
