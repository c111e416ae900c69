"""The routing table of seed 001 ("Instrument Mode")."""

from __future__ import annotations

import pytest

from core.domain import InstrumentType, TradeType, ValidationError
from core.instruments.modes import (
    DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION,
    InstrumentMode,
    route_kind,
)

OPTION, STOCK, ETF = InstrumentType.OPTION, InstrumentType.STOCK, InstrumentType.LEVERAGED_ETF

#: (mode, trade type, conviction) -> kind, row by row from the seed's table.
TABLE = [
    ("options", "scalp", 90, OPTION),
    ("options", "day", 90, STOCK),
    ("options", "swing", 90, STOCK),
    ("leveraged_etf", "scalp", 90, ETF),
    ("leveraged_etf", "day", 90, ETF),
    ("leveraged_etf", "day", 10, ETF),
    ("leveraged_etf", "swing", 90, ETF),
    ("both", "scalp", 90, OPTION),
    ("both", "scalp", 10, OPTION),
    ("both", "day", 100, ETF),
    ("both", "day", 75, ETF),
    ("both", "day", 74, STOCK),
    ("both", "day", 0, STOCK),
    ("both", "swing", 100, STOCK),
]


@pytest.mark.parametrize(("mode", "trade_type", "conviction", "kind"), TABLE)
def test_table(mode: str, trade_type: str, conviction: int, kind: InstrumentType) -> None:
    assert route_kind(mode, trade_type, conviction) is kind
    assert route_kind(InstrumentMode(mode), TradeType(trade_type), conviction) is kind


def test_modes_are_the_seed_values() -> None:
    assert [m.value for m in InstrumentMode] == ["options", "leveraged_etf", "both"]


def test_default_threshold_is_high_conviction() -> None:
    assert DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION == 75


def test_threshold_is_configurable() -> None:
    assert route_kind("both", "day", 60, etf_min_conviction=60) is ETF
    assert route_kind("both", "day", 59, etf_min_conviction=60) is STOCK
    # the threshold only matters for day trades in both mode
    assert route_kind("both", "swing", 100, etf_min_conviction=0) is STOCK
    assert route_kind("options", "day", 100, etf_min_conviction=0) is STOCK


@pytest.mark.parametrize(("mode", "trade_type"), [("futures", "day"), ("both", "position")])
def test_unknown_values_are_rejected(mode: str, trade_type: str) -> None:
    with pytest.raises(ValidationError):
        route_kind(mode, trade_type, 80)
