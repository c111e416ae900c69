from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import ValidationError
from core.options.selection import NoContract
from core.options.sizing import OptionSize, size_option

D = Decimal


def test_contracts_fill_the_premium_budget() -> None:
    size = size_option(D("1.20"), D(10_000), D("0.05"), D(1), 10)
    assert size == OptionSize(
        contracts=4,
        premium_at_risk=D("480.00"),
        reason=size.reason,
        premium=D("1.20"),
        cost_per_contract=D("120.00"),
        risk_budget=D("500.00"),
        capped=False,
    )
    assert size.reason == (
        "4 contracts x $120.00 = $480.00 premium at risk within the risk budget $500.00 "
        "(5% of equity $10,000.00 x conviction 1)"
    )


def test_conviction_scales_the_budget() -> None:
    assert size_option(D("1.20"), D(10_000), D("0.05"), D("0.5"), 10).contracts == 2
    one = size_option(D("2.50"), D(10_000), D("0.05"), D("0.5"), 10)
    assert one.contracts == 1 and one.reason.startswith("1 contract x $250.00")


def test_max_contracts_caps() -> None:
    size = size_option(D("0.50"), D(100_000), D("0.05"), D(1), 3)
    assert (size.contracts, size.premium_at_risk, size.capped) == (3, D("150.00"), True)
    assert "capped at max_contracts 3 (the budget buys 100)" in size.reason


def test_no_contract_fits_says_why() -> None:
    with pytest.raises(
        NoContract,
        match=r"premium \$600\.00 per contract \(\$6\.00 x 100\) exceeds the risk budget "
        r"\$500\.00 \(5% of equity \$10,000\.00 x conviction 1\)",
    ):
        size_option(D("6.00"), D(10_000), D("0.05"), D(1), 10)
    with pytest.raises(NoContract, match=r"risk budget \$0\.00 .* is nothing"):
        size_option(D("1.00"), D(10_000), D("0.05"), D(0), 10)
    with pytest.raises(NoContract, match="is nothing"):
        size_option(D("1.00"), D(-5), D("0.05"), D(1), 10)
    assert issubclass(NoContract, ValidationError)


def test_bad_input_is_refused() -> None:
    for args in (
        (D(0), D(10_000), D("0.05"), D(1), 10),
        (D("1"), D(10_000), D(0), D(1), 10),
        (D("1"), D(10_000), D("1.5"), D(1), 10),
        (D("1"), D(10_000), D("0.05"), D(-1), 10),
        (D("1"), D(10_000), D("0.05"), D(1), 0),
        (D("1"), D(10_000), D("0.05"), D(1), True),
        (D("1"), "lots", D("0.05"), D(1), 10),
    ):
        with pytest.raises(ValidationError) as err:
            size_option(*args)
        assert not isinstance(err.value, NoContract)


@settings(max_examples=300, deadline=None)
@given(
    st.decimals("0.01", "50", places=2),
    st.decimals("100", "1000000", places=2),
    st.decimals("0.001", "0.2", places=3),
    st.sampled_from([D(0), D("0.5"), D(1)]),
    st.integers(1, 50),
)
def test_premium_at_risk_never_exceeds_the_budget(premium, equity, pct, conviction, cap) -> None:
    budget = equity * pct * conviction
    try:
        size = size_option(premium, equity, pct, conviction, cap)
    except NoContract:
        assert budget < premium * 100
        return
    assert 1 <= size.contracts <= cap
    assert size.premium_at_risk == size.contracts * premium * 100 <= budget
    # one more would break the budget or the cap
    assert size.contracts == cap or (size.contracts + 1) * premium * 100 > budget
