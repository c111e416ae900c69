from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.domain import ValidationError
from core.marketdata.calendar import default_calendar
from core.options.chain import (
    DAILY_EXPIRY_UNDERLYINGS,
    ExpiredContract,
    expiries,
    is_listed_expiry,
    lists_daily,
    modelled_open_interest,
    modelled_volume,
    nearest_expiry,
    option_chain,
    strike_increment,
    strikes,
    weekly_expiry,
)
from core.options.occ import Right
from core.ports import UnknownSymbol

CAL = default_calendar()


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


# -- expiries -----------------------------------------------------------------------------


def test_daily_underlyings_list_every_session_around_thanksgiving() -> None:
    assert frozenset({"SPY", "QQQ", "IWM"}) == DAILY_EXPIRY_UNDERLYINGS
    assert lists_daily("spy") and not lists_daily("NVDA")
    # Thanksgiving (Thursday 2026-11-26) is no session, so it is no expiry.
    assert expiries("SPY", d(11, 23), CAL, horizon_days=10) == [
        d(11, 23),
        d(11, 24),
        d(11, 25),
        d(11, 27),
        d(11, 30),
        d(12, 1),
        d(12, 2),
        d(12, 3),
    ]
    assert expiries("QQQ", d(11, 21), CAL, horizon_days=2) == [d(11, 23)]  # from a Saturday


def test_weekly_underlyings_list_fridays() -> None:
    assert expiries("NVDA", d(11, 16), CAL, horizon_days=14) == [d(11, 20), d(11, 27)]
    assert expiries("NVDA", d(11, 16), CAL, horizon_days=18) == [d(11, 20), d(11, 27), d(12, 4)]
    # The Friday after Thanksgiving is an early close, still a session and still the expiry.
    assert weekly_expiry(d(11, 23), CAL) == d(11, 27)
    assert expiries("AAPL", d(11, 20), CAL, horizon_days=0) == [d(11, 20)]
    assert expiries("AAPL", d(11, 21), CAL, horizon_days=5) == []


def test_friday_holidays_move_the_weekly_expiry_to_thursday() -> None:
    # Good Friday 2026-04-03 is a holiday: that week's options expire Thursday 2026-04-02.
    assert not CAL.is_session(d(4, 3))
    assert weekly_expiry(d(3, 30), CAL) == d(4, 2)
    assert expiries("NVDA", d(3, 30), CAL, horizon_days=11) == [d(4, 2), d(4, 10)]
    # The horizon ends on that Thursday: the moved expiry is inside it.
    assert expiries("NVDA", d(3, 30), CAL, horizon_days=3) == [d(4, 2)]
    # Christmas 2026 and New Year's Day 2027 fall on Fridays.
    holidays = expiries("TSLA", d(12, 21), CAL, horizon_days=18)
    assert holidays == [d(12, 24), d(12, 31), d(1, 8, 2027)]
    assert is_listed_expiry("TSLA", d(12, 24), CAL)
    assert not is_listed_expiry("TSLA", d(12, 25), CAL)
    assert not is_listed_expiry("TSLA", d(12, 23), CAL)
    assert is_listed_expiry("SPY", d(12, 23), CAL)
    assert not is_listed_expiry("SPY", d(11, 26), CAL)


def test_expiries_refuse_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="date"):
        expiries("SPY", datetime(2026, 11, 20, tzinfo=UTC), CAL)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="horizon_days"):
        expiries("SPY", d(11, 20), CAL, horizon_days=-1)
    with pytest.raises(ValidationError, match="underlying"):
        expiries(" ", d(11, 20), CAL)


# -- strikes ------------------------------------------------------------------------------


def test_strike_increments() -> None:
    assert strike_increment("SPY", Decimal(580)) == 1
    assert strike_increment("QQQ", Decimal(15)) == 1
    assert strike_increment("IWM", Decimal(220)) == 1
    assert strike_increment("SQQQ", Decimal("8")) == Decimal("0.5")
    assert strike_increment("NVDA", Decimal("140")) == 1
    assert strike_increment("AAPL", Decimal("230")) == Decimal("2.5")
    assert strike_increment("META", Decimal("580")) == 5
    assert strike_increment("X", Decimal("199.99")) == 1
    assert strike_increment("X", Decimal("200")) == Decimal("2.5")


def test_strikes_around_spot() -> None:
    assert strikes("SPY", Decimal("580.40"), 2) == [Decimal(n) for n in (578, 579, 580, 581, 582)]
    assert strikes("SPY", Decimal("580.50"), 1) == [Decimal(n) for n in (580, 581, 582)]
    aapl = strikes("AAPL", Decimal("231.30"), 2)
    assert aapl == [Decimal(x) for x in ("227.5", "230.0", "232.5", "235.0", "237.5")]
    assert strikes("SQQQ", Decimal("0.70"), 3) == [Decimal(x) for x in ("0.5", "1.0", "1.5", "2.0")]
    assert strikes("SPY", Decimal(580), 0) == [Decimal(580)]
    with pytest.raises(ValidationError, match="n_each_side"):
        strikes("SPY", Decimal(580), -1)


# -- modelled liquidity ---------------------------------------------------------------------


def test_open_interest_peaks_at_the_money_and_falls_with_distance_and_time() -> None:
    spot = Decimal(580)
    near = [modelled_open_interest("SPY", Decimal(k), spot, 0) for k in range(580, 600, 2)]
    assert near == sorted(near, reverse=True) and near[0] > near[-1]
    below = [modelled_open_interest("SPY", Decimal(k), spot, 0) for k in range(580, 560, -2)]
    assert below == sorted(below, reverse=True)
    atm = [modelled_open_interest("SPY", spot, spot, dte) for dte in range(8)]
    assert atm == sorted(atm, reverse=True) and atm[0] > atm[-1]
    assert modelled_open_interest("SPY", spot, spot, 0) > modelled_open_interest(
        "NVDA", Decimal(140), Decimal(140), 0
    )
    assert modelled_open_interest("SPY", Decimal(700), spot, 0) == 0
    vols = [modelled_volume("SPY", spot, spot, dte) for dte in range(8)]
    assert vols == sorted(vols, reverse=True) and vols[0] == round(atm[0] * 0.5)


# -- the chain ------------------------------------------------------------------------------

FRIDAY_11_ET = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


def test_option_chain_lists_calls_and_puts_by_strike() -> None:
    chain = option_chain("SPY", Decimal("580.40"), d(11, 20), FRIDAY_11_ET, 0.16, CAL, n_strikes=3)
    assert len(chain) == 14
    assert [q.contract.strike for q in chain[::2]] == [Decimal(n) for n in range(577, 584)]
    assert [q.contract.right for q in chain[:2]] == [Right.CALL, Right.PUT]
    assert {q.contract.expiry for q in chain} == {d(11, 20)}  # the nearest: 0DTE
    assert all(q.open_interest and q.volume for q in chain)
    assert all(q.at == FRIDAY_11_ET and q.underlying_price == Decimal("580.40") for q in chain)
    calls = [q for q in chain if q.contract.right is Right.CALL]
    assert [q.theo for q in calls] == sorted((q.theo for q in calls), reverse=True)
    atm = chain[6]
    assert atm.contract.strike == 580 and atm.open_interest == max(q.open_interest for q in chain)


def test_option_chain_expiry_choice() -> None:
    # after Friday's close the nearest expiry is Monday's
    evening = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    assert nearest_expiry("SPY", d(11, 23), evening, CAL) == d(11, 23)
    chain = option_chain("NVDA", Decimal(140), d(11, 23), evening, 0.5, CAL, n_strikes=1)
    assert {q.contract.expiry for q in chain} == {d(11, 27)}
    later = option_chain(
        "SPY", Decimal(580), d(11, 20), FRIDAY_11_ET, 0.16, CAL, n_strikes=1, expiry=d(11, 27)
    )
    assert {q.contract.expiry for q in later} == {d(11, 27)}
    dte0 = option_chain("SPY", Decimal(580), d(11, 20), FRIDAY_11_ET, 0.16, CAL, n_strikes=0)
    assert later[0].open_interest < dte0[0].open_interest


def test_option_chain_refuses_unlisted_and_expired_expiries() -> None:
    with pytest.raises(ValidationError, match="NVDA lists no options expiring 2026-11-24"):
        option_chain("NVDA", Decimal(140), d(11, 20), FRIDAY_11_ET, 0.5, CAL, expiry=d(11, 24))
    with pytest.raises(ValidationError, match="no options expiring 2026-11-26"):
        option_chain("SPY", Decimal(580), d(11, 20), FRIDAY_11_ET, 0.16, CAL, expiry=d(11, 26))
    after_close = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    with pytest.raises(ExpiredContract, match="expired at the close, 2026-11-20 21:00 UTC") as err:
        option_chain("SPY", Decimal(580), d(11, 20), after_close, 0.16, CAL, expiry=d(11, 20))
    assert isinstance(err.value, ValidationError) and isinstance(err.value, UnknownSymbol)
