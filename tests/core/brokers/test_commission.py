"""Commission schedules and paper configuration checks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from core.brokers.commission import CommissionSchedule
from core.brokers.paper import PaperConfig
from core.domain import ValidationError


def test_zero_schedule() -> None:
    assert CommissionSchedule.zero().for_fill(D(1000), D(100), True) == 0


def test_per_share_minimum_on_the_first_fill_only() -> None:
    s = CommissionSchedule.per_share("0.005", minimum="1")
    assert s.for_fill(D(100), D(50), first_fill=True) == D("1.00")
    assert s.for_fill(D(100), D(50), first_fill=False) == D("0.50")
    assert s.for_fill(D(1000), D(50), first_fill=True) == D("5.00")


def test_per_share_cap_as_percent_of_notional_wins_over_the_minimum() -> None:
    s = CommissionSchedule.per_share("0.01", minimum="1", max_pct="0.5")
    # 10 shares at $10: 0.10 per share -> 1.00 minimum -> capped at 0.5 % of $100 = 0.50
    assert s.for_fill(D(10), D(10), first_fill=True) == D("0.50")


def test_percent_of_notional_rounds_to_the_cent() -> None:
    s = CommissionSchedule.percent_of_notional("0.1")
    assert s.for_fill(D(3), D("33.335"), first_fill=True) == D("0.10")  # 0.100005


def test_schedule_round_trips_through_a_dict() -> None:
    s = CommissionSchedule.per_share("0.0035", minimum="0.35", max_pct="1")
    assert CommissionSchedule.from_dict(s.to_dict()) == s


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_cash": D(-1)},
        {"participation_rate": D(0)},
        {"participation_rate": D("1.5")},
        {"leverage_limit": D(0)},
        {"latency": timedelta(seconds=-1)},
        {"overnight_multiplier": D("0.5")},
        {"allow_short": "yes"},
    ],
)
def test_bad_config_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        PaperConfig(**kwargs)


def test_config_coerces_numbers() -> None:
    config = PaperConfig(initial_cash=5000, participation_rate=0.2)  # type: ignore[arg-type]
    assert config.initial_cash == D(5000) and config.participation_rate == D("0.2")
    with pytest.raises(ValidationError):
        CommissionSchedule.per_share("-1")
