"""ExecutionConfig: seed defaults, validation with readable messages, plain-data round trip."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from core.domain import ValidationError
from core.execution import ExecutionConfig


def test_defaults_follow_the_seed() -> None:
    c = ExecutionConfig()
    assert c.impact_bps_per_pct_adv == D(10)  # seed 000 R3.1
    assert c.adv_threshold_pct == D(5)
    assert c.passive_impact_bps == D(10)  # seed 000 R2.2: > 10 bps impact goes passive
    assert c.default_half_spread_bps == D(2)
    assert c.slices == 10
    assert c.slice_interval == timedelta(seconds=60)
    assert c.slice_algorithm == "twap"
    assert c.limit_buffer_bps == D(10)
    assert (c.chase_step_bps, c.chase_bound_bps) == (D(5), D(50))
    assert c.chase_interval == timedelta(seconds=30)
    assert c.fractional is False


def test_numbers_are_converted_to_decimal_exactly() -> None:
    c = ExecutionConfig(impact_bps_per_pct_adv=0.1, adv_threshold_pct="2.5")  # type: ignore[arg-type]
    assert c.impact_bps_per_pct_adv == D("0.1")
    assert c.adv_threshold_pct == D("2.5")


def test_round_trip_through_plain_data() -> None:
    c = ExecutionConfig(
        adv_threshold_pct=D("2.5"),
        slices=4,
        slice_interval=timedelta(seconds=90, microseconds=500_000),
        slice_algorithm="vwap",
        fractional=True,
    )
    data = c.to_dict()
    assert data["adv_threshold_pct"] == "2.5"
    assert data["slice_interval"] == "90.5"
    assert data["chase_interval"] == 30
    assert data["slices"] == 4
    assert ExecutionConfig.from_dict(data) == c


def test_from_dict_reads_strings_and_keeps_base_fields() -> None:
    base = ExecutionConfig(slices=6)
    c = ExecutionConfig.from_dict(
        {"slice_interval": "120", "slices": "8", "chase_bound_bps": "25"}, base=ExecutionConfig()
    )
    assert c.slice_interval == timedelta(minutes=2)
    assert c.slices == 8
    assert c.chase_bound_bps == D(25)
    assert ExecutionConfig.from_dict({"fractional": True}, base=base).slices == 6


def test_from_dict_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="unknown execution fields: slice_count"):
        ExecutionConfig.from_dict({"slice_count": 3})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"impact_bps_per_pct_adv": D(-1)}, "impact_bps_per_pct_adv must be at least 0"),
        ({"adv_threshold_pct": D(0)}, "adv_threshold_pct must be above 0"),
        ({"adv_threshold_pct": D(101)}, "adv_threshold_pct must be at most 100"),
        ({"passive_impact_bps": D("-0.5")}, "passive_impact_bps must be at least 0"),
        ({"default_half_spread_bps": "x"}, "default_half_spread_bps must be a number"),
        ({"limit_buffer_bps": D(10_000)}, "limit_buffer_bps must be below 10000"),
        ({"chase_step_bps": D(0)}, "chase_step_bps must be above 0"),
        ({"chase_bound_bps": D(-1)}, "chase_bound_bps must be at least 0"),
        ({"chase_bound_bps": D(10_000)}, "chase_bound_bps must be below 10000"),
        ({"slices": 0}, "slices must be an integer of at least 1"),
        ({"slices": True}, "slices must be an integer of at least 1"),
        ({"slices": 2.5}, "slices must be an integer of at least 1"),
        ({"slice_interval": timedelta(0)}, "slice_interval must be a positive duration"),
        ({"chase_interval": 30}, "chase_interval must be a positive duration"),
        ({"slice_algorithm": "pov"}, "slice_algorithm must be one of twap, vwap"),
        ({"fractional": "yes"}, "fractional must be true or false"),
    ],
)
def test_bad_values_are_refused_with_the_field_name(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExecutionConfig(**changes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"slice_interval": "0"}, "slice_interval must be a positive duration"),
        ({"slices": "ten"}, "slices must be an integer"),
        ({"slices": False}, "slices must be an integer"),
    ],
)
def test_from_dict_bad_values(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExecutionConfig.from_dict(data)


def test_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ExecutionConfig().slices = 3  # type: ignore[misc]
