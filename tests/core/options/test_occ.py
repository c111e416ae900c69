from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import ValidationError
from core.options.occ import OptionContract, Right, is_occ, parse_occ

contracts = st.builds(
    OptionContract,
    underlying=st.from_regex(r"[A-Z][A-Z0-9.]{0,5}", fullmatch=True),
    expiry=st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    strike=st.integers(1, 99_999_999).map(lambda n: Decimal(n) / 1000),
    right=st.sampled_from(list(Right)),
)


@settings(max_examples=500, deadline=None)
@given(contracts)
def test_occ_symbols_round_trip(contract: OptionContract) -> None:
    compact, padded = contract.occ(), contract.occ(padded=True)
    assert parse_occ(compact) == contract
    assert parse_occ(padded) == contract
    assert len(padded) == 21
    assert compact == contract.symbol
    assert is_occ(compact) and is_occ(padded)
    assert parse_occ(compact).occ() == compact


def test_known_symbols() -> None:
    c = parse_occ("SPY   261120C00590000")
    assert c == OptionContract("SPY", date(2026, 11, 20), Decimal(590), Right.CALL)
    assert c.symbol == "SPY261120C00590000"
    assert parse_occ("nvda261127p00142500").strike == Decimal("142.5")


def test_expiries_the_symbol_cannot_carry_are_refused() -> None:
    # The symbol's two-digit year reads as 20YY: other centuries would come back changed.
    with pytest.raises(ValidationError, match="2000-2099"):
        OptionContract("SPY", date(1999, 1, 15), Decimal(5), Right.CALL)
    with pytest.raises(ValidationError, match="2000-2099"):
        OptionContract("SPY", date(2100, 1, 15), Decimal(5), Right.CALL)
    # A datetime is not an expiry date (it would never equal the parsed contract).
    with pytest.raises(ValidationError, match="is a date"):
        OptionContract("SPY", datetime(2026, 1, 16, 10), Decimal(5), Right.CALL)
