"""Risk profiles: the shipped numbers, validation naming the field, plain-data round trips."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import ValidationError
from core.risk import (
    AGGRESSIVE,
    CONSERVATIVE,
    PROFILES,
    RiskProfile,
    profile_named,
    validate_profile_setting,
)


class TestShippedProfiles:
    def test_aggressive_is_seed_001s_table(self):
        p = AGGRESSIVE
        assert p.max_risk_per_trade == D("0.05")
        assert p.max_concurrent_positions == 10
        assert p.daily_loss_limit == D("0.10")
        assert p.max_single_exposure == D("0.15")
        assert p.max_sector_exposure == D("0.30")
        assert p.min_account_equity == D(25_000)
        assert p.slippage_buffer == D("0.001")
        assert p.duplicate_window == timedelta(seconds=60)
        assert p.pdt_max_day_trades == 3

    def test_conservative_is_seed_000_r4_2(self):
        p = CONSERVATIVE
        assert p.max_single_exposure == D("0.15")
        assert p.max_sector_exposure == D("0.35")
        assert p.min_position_value == D(500)
        assert p.cash_buffer == D("0.02")
        assert p.leverage_limit == D(1)

    def test_conservative_is_stricter_where_it_matters(self):
        for name in ("max_risk_per_trade", "daily_loss_limit", "leverage_limit", "max_drawdown"):
            assert getattr(CONSERVATIVE, name) < getattr(AGGRESSIVE, name), name

    def test_profiles_by_name(self):
        assert set(PROFILES) == {"aggressive", "conservative"}
        assert PROFILES["aggressive"] is AGGRESSIVE
        assert profile_named("conservative") is CONSERVATIVE
        with pytest.raises(ValidationError, match="unknown risk profile 'yolo'"):
            profile_named("yolo")

    def test_profiles_are_frozen(self):
        with pytest.raises(dataclasses.FrozenInstanceError):
            AGGRESSIVE.max_concurrent_positions = 99  # type: ignore[misc]

    def test_values_are_decimals(self):
        for f in dataclasses.fields(RiskProfile):
            value = getattr(CONSERVATIVE, f.name)
            assert not isinstance(value, float), f.name
        assert RiskProfile(max_risk_per_trade=0.02).max_risk_per_trade == D("0.02")  # type: ignore[arg-type]


class TestValidation:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"max_single_exposure": "1.5"}, "max_single_exposure must be above 0 and at most 1"),
            ({"daily_loss_limit": "0"}, "daily_loss_limit must be above 0 and at most 1, got 0"),
            ({"cash_buffer": "1"}, "cash_buffer must be at least 0 and below 1, got 1"),
            ({"slippage_buffer": "abc"}, "slippage_buffer must be a number, got 'abc'"),
            ({"min_position_value": "-1"}, "min_position_value must not be negative, got -1"),
            ({"max_concurrent_positions": 0}, "max_concurrent_positions must be an integer of"),
            ({"max_concurrent_positions": "ten"}, "max_concurrent_positions must be an integer"),
            ({"pdt_max_day_trades": True}, "pdt_max_day_trades must be an integer"),
            ({"leverage_limit": "11"}, "leverage_limit must be above 0 and at most 10"),
            ({"duplicate_window": -1}, "duplicate_window must not be negative"),
            ({"reject_outside_hours": "yes"}, "reject_outside_hours must be true or false"),
            ({"name": " "}, "name: a risk profile needs a name"),
            ({"max_risk_per_trade": float("nan")}, "max_risk_per_trade must be a finite number"),
            (
                {"max_single_exposure": "0.4"},
                r"max_single_exposure \(0.4\) must not exceed max_sector_exposure \(0.30\)",
            ),
        ],
    )
    def test_bad_values_name_the_field(self, changes, message):
        with pytest.raises(ValidationError, match=message):
            RiskProfile.from_dict(changes)

    def test_unknown_fields_are_refused(self):
        with pytest.raises(ValidationError, match="unknown risk profile fields: colour, size"):
            RiskProfile.from_dict({"size": 1, "colour": "red"})

    def test_not_a_mapping(self):
        with pytest.raises(ValidationError, match="mapping"):
            RiskProfile.from_dict(["max_risk_per_trade"])  # type: ignore[arg-type]


class TestPlainData:
    def test_decimals_travel_as_strings(self):
        data = CONSERVATIVE.to_dict()
        assert data["max_sector_exposure"] == "0.35"
        assert data["cash_buffer"] == "0.02"
        assert data["duplicate_window"] == 60
        assert data["max_concurrent_positions"] == 20
        assert json.loads(json.dumps(data)) == data

    @pytest.mark.parametrize("profile", [AGGRESSIVE, CONSERVATIVE])
    def test_round_trip(self, profile):
        assert RiskProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile

    def test_partial_edit_starts_from_a_base(self):
        edited = RiskProfile.from_dict({"max_concurrent_positions": "12"}, base=CONSERVATIVE)
        assert edited.max_concurrent_positions == 12
        assert edited.cash_buffer == D("0.02")
        assert RiskProfile.from_dict({}) == AGGRESSIVE

    def test_fractional_window(self):
        p = RiskProfile.from_dict({"duplicate_window": "90.5"})
        assert p.duplicate_window == timedelta(seconds=90.5)
        assert p.to_dict()["duplicate_window"] == "90.5"

    def test_setting_validator(self):
        assert validate_profile_setting("conservative") == CONSERVATIVE.to_dict()
        stored = validate_profile_setting({"name": "conservative", "max_drawdown": "0.08"})
        assert stored["cash_buffer"] == "0.02"
        assert stored["max_drawdown"] == "0.08"
        with pytest.raises(ValidationError, match="max_drawdown"):
            validate_profile_setting({"max_drawdown": "2"})


fraction = st.decimals(min_value=D("0.0001"), max_value=D(1), places=4)


@given(
    risk=fraction,
    single=fraction,
    extra=st.decimals(min_value=D(0), max_value=D(1), places=4),
    positions=st.integers(1, 100),
    window=st.integers(0, 3600),
    leverage=st.decimals(min_value=D("0.5"), max_value=D(10), places=2),
    min_value=st.decimals(min_value=D(0), max_value=D(10_000), places=2),
)
def test_any_valid_profile_round_trips(risk, single, extra, positions, window, leverage, min_value):
    profile = RiskProfile(
        name="custom",
        max_risk_per_trade=risk,
        max_single_exposure=single,
        max_sector_exposure=min(single + extra, D(1)),
        max_concurrent_positions=positions,
        duplicate_window=timedelta(seconds=window),
        leverage_limit=leverage,
        min_position_value=min_value,
    )
    assert RiskProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
