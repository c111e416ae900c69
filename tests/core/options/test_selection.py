from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import ValidationError
from core.marketdata.calendar import EASTERN, default_calendar
from core.options.chain import option_chain
from core.options.occ import Right
from core.options.pricing import OptionQuote
from core.options.selection import (
    ContractSelectionConfig,
    NoContract,
    Selection,
    quotes_by_expiry,
    select_contract,
    trading_session,
)

CAL = default_calendar()


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=EASTERN).astimezone(UTC)


def chain_source(
    underlying: str,
    spot: Decimal,
    now: datetime,
    vol: float = 0.2,
    tweak: Callable[[OptionQuote], OptionQuote] | None = None,
    tweak_expiry: date | None = None,
) -> tuple[Callable[[date], list[OptionQuote]], list[date]]:
    """Quotes from the modelled chain (optionally altered for one expiry) and the expiries
    asked for."""
    asked: list[date] = []
    session = trading_session(now, CAL)

    def quotes(expiry: date) -> list[OptionQuote]:
        asked.append(expiry)
        chain = option_chain(underlying, spot, session, now, vol, CAL, n_strikes=8, expiry=expiry)
        if tweak is not None and (tweak_expiry is None or expiry == tweak_expiry):
            chain = [tweak(q) for q in chain]
        return chain

    return quotes, asked


def select(
    underlying: str,
    bullish: bool,
    spot: str,
    now: datetime,
    config: ContractSelectionConfig | None = None,
    **source: object,
) -> tuple[Selection, list[date]]:
    quotes, asked = chain_source(underlying, Decimal(spot), now, **source)  # type: ignore[arg-type]
    args = (underlying, bullish, Decimal(spot), now, CAL, quotes)
    chosen = select_contract(*args, config) if config else select_contract(*args)
    return chosen, asked


# -- right, expiry kind ------------------------------------------------------------------------


def test_bullish_buys_the_0dte_at_the_money_call() -> None:
    chosen, asked = select("SPY", True, "580.30", et(2026, 11, 18, 11))
    assert chosen.contract.right is Right.CALL
    assert chosen.contract.expiry == date(2026, 11, 18)
    assert chosen.contract.strike == 580
    assert (chosen.expiry_kind, chosen.dte, chosen.fell_back) == ("0DTE", 0, False)
    assert asked == [date(2026, 11, 18)]
    assert "SPY bullish: buying calls" in chosen.reason
    assert "chose SPY 2026-11-18 580 C at the money" in chosen.reason


def test_bearish_buys_puts() -> None:
    chosen, _ = select("QQQ", False, "499.80", et(2026, 11, 18, 11))
    assert chosen.contract.right is Right.PUT
    assert chosen.contract.strike == 500
    assert chosen.expiry_kind == "0DTE"


def test_zero_dte_cutoff_on_a_regular_day() -> None:
    # Wednesday 2026-11-18 closes at 16:00: the cutoff is 15:30.
    at_cutoff, _ = select("SPY", True, "580", et(2026, 11, 18, 15, 30))
    assert at_cutoff.expiry_kind == "0DTE"
    inside, asked = select("SPY", True, "580", et(2026, 11, 18, 15, 31))
    assert inside.contract.expiry == date(2026, 11, 19)
    assert (inside.expiry_kind, inside.dte, inside.fell_back) == ("1DTE", 1, True)
    assert asked == [date(2026, 11, 19)]
    assert "0DTE 2026-11-18 skipped: 29 min to the 16:00 ET close" in inside.reason
    assert "inside the 30 min cutoff" in inside.reason


def test_zero_dte_cutoff_runs_from_an_early_close() -> None:
    # Friday 2026-11-27 (after Thanksgiving) closes at 13:00: 12:45 is inside the cutoff, though
    # it would be early on a regular day; the next SPY expiry is Monday.
    early = et(2026, 11, 27, 12, 45)
    skipped, _ = select("SPY", True, "580", early)
    assert skipped.contract.expiry == date(2026, 11, 30)
    assert skipped.expiry_kind == "3DTE"
    assert "15 min to the 13:00 ET close" in skipped.reason
    kept, _ = select("SPY", True, "580", et(2026, 11, 27, 12, 29))
    assert kept.expiry_kind == "0DTE"
    # after that close the next session's expiry is 0DTE
    after, _ = select("SPY", True, "580", et(2026, 11, 27, 14))
    assert after.contract.expiry == date(2026, 11, 30) and after.expiry_kind == "0DTE"


def test_thanksgiving_is_skipped() -> None:
    chosen, _ = select("IWM", False, "220", et(2026, 11, 25, 15, 45))
    assert chosen.contract.expiry == date(2026, 11, 27)  # not Thursday 26th, a holiday
    assert chosen.expiry_kind == "2DTE"


def test_weekly_underlyings_buy_the_friday() -> None:
    monday, _ = select("NVDA", True, "140.20", et(2026, 11, 16, 10))
    assert monday.contract.expiry == date(2026, 11, 20)
    assert (monday.expiry_kind, monday.fell_back) == ("4DTE", False)
    friday, _ = select("NVDA", True, "140.20", et(2026, 11, 20, 10))
    assert friday.expiry_kind == "0DTE"
    late, _ = select("NVDA", True, "140.20", et(2026, 11, 20, 15, 45))
    assert late.contract.expiry == date(2026, 11, 27)  # next Friday, an early close
    assert late.expiry_kind == "7DTE"


def test_good_friday_moves_the_weekly_to_thursday() -> None:
    thursday, _ = select("NVDA", False, "140", et(2026, 4, 2, 10))
    assert thursday.contract.expiry == date(2026, 4, 2)
    assert thursday.expiry_kind == "0DTE"
    monday, _ = select("NVDA", False, "140", et(2026, 3, 30, 10))
    assert monday.contract.expiry == date(2026, 4, 2)
    assert monday.expiry_kind == "3DTE"


def test_outside_sessions_the_next_session_counts() -> None:
    saturday = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert trading_session(saturday, CAL) == date(2026, 11, 23)
    chosen, _ = select("SPY", True, "580", saturday)
    assert chosen.contract.expiry == date(2026, 11, 23)
    assert chosen.expiry_kind == "0DTE"
    before_open = et(2026, 11, 23, 8)
    assert trading_session(before_open, CAL) == date(2026, 11, 23)


# -- strike -----------------------------------------------------------------------------------


def test_at_the_money_ties_go_to_the_cheaper_contract() -> None:
    call, _ = select("SPY", True, "580.50", et(2026, 11, 18, 11))
    assert call.contract.strike == 581  # the higher strike is the cheaper call
    put, _ = select("SPY", False, "580.50", et(2026, 11, 18, 11))
    assert put.contract.strike == 580  # the lower strike is the cheaper put


def test_target_delta_picks_the_nearest_absolute_delta() -> None:
    now = et(2026, 11, 18, 11)
    for bullish, target in ((True, "0.30"), (False, "0.30"), (True, "0.70"), (False, "0.15")):
        config = ContractSelectionConfig(target_delta=Decimal(target))
        chosen, _ = select("SPY", bullish, "580", now, config)
        right = Right.CALL if bullish else Right.PUT
        quotes, _ = chain_source("SPY", Decimal(580), now)
        options = [
            q
            for q in quotes(date(2026, 11, 18))
            if q.contract.right is right and q.spread_pct is not None and q.spread_pct <= 0.1
        ]
        best = min(abs(abs(q.greeks.delta) - float(target)) for q in options)
        assert abs(abs(chosen.quote.greeks.delta) - float(target)) == best
        assert chosen.contract.right is right
        assert f"nearest the target {target}" in chosen.reason
    otm, _ = select("SPY", True, "580", now, ContractSelectionConfig(target_delta=Decimal("0.3")))
    assert otm.contract.strike > 580


# -- liquidity --------------------------------------------------------------------------------


def thin(q: OptionQuote) -> OptionQuote:
    return dataclasses.replace(q, open_interest=10)


def test_illiquid_0dte_falls_back_to_the_next_expiry() -> None:
    now = et(2026, 11, 18, 11)
    chosen, asked = select("SPY", True, "580", now, tweak=thin, tweak_expiry=date(2026, 11, 18))
    assert asked == [date(2026, 11, 18), date(2026, 11, 19)]
    assert chosen.contract.expiry == date(2026, 11, 19)
    assert (chosen.expiry_kind, chosen.fell_back) == ("1DTE", True)
    assert "0DTE 2026-11-18: none of 17 calls liquid (17 below open interest 100)" in chosen.reason
    assert "trying the next expiry" in chosen.reason
    assert "1DTE (fallback) 2026-11-19" in chosen.reason


def test_missing_liquidity_data_is_not_filtered() -> None:
    def no_data(q: OptionQuote) -> OptionQuote:
        return dataclasses.replace(q, open_interest=None, volume=None)

    chosen, _ = select("SPY", True, "580", et(2026, 11, 18, 11), tweak=no_data)
    assert chosen.expiry_kind == "0DTE" and chosen.quote.open_interest is None


def test_wide_spreads_and_low_volume_are_filtered() -> None:
    def wide_atm(q: OptionQuote) -> OptionQuote:
        if q.contract.strike == 580:
            return dataclasses.replace(q, bid=q.bid / 2)
        return q

    plain, _ = select("SPY", True, "580", et(2026, 11, 18, 11))
    assert plain.contract.strike == 580
    assert "6 with a spread above 10% of mid filtered out" in plain.reason  # cheap far strikes
    chosen, _ = select("SPY", True, "580", et(2026, 11, 18, 11), tweak=wide_atm)
    assert chosen.contract.strike == 581  # 579 and 581 tie: the cheaper call
    assert "7 with a spread above 10% of mid filtered out" in chosen.reason
    config = ContractSelectionConfig(min_volume=10**9)
    with pytest.raises(NoContract, match="below volume 1000000000"):
        select("SPY", True, "580", et(2026, 11, 18, 11), config)


def test_nothing_liquid_raises_with_every_reason() -> None:
    now = et(2026, 11, 18, 11)
    config = ContractSelectionConfig(max_dte=1)
    with pytest.raises(NoContract) as err:
        select("SPY", True, "580", now, config, tweak=thin)
    message = str(err.value)
    assert "0DTE 2026-11-18: none of 17 calls liquid" in message
    assert "1DTE 2026-11-19: none of 17 calls liquid" in message
    assert message.endswith("no liquid call within 1 days")
    assert isinstance(err.value, ValidationError)


def test_no_listed_expiry_within_max_dte() -> None:
    config = ContractSelectionConfig(max_dte=0)
    with pytest.raises(NoContract, match="no NVDA expiry \\(weekly\\) open between 2026-11-16"):
        select("NVDA", True, "140", et(2026, 11, 16, 10), config)
    # Late on the Thursday before Good Friday the next weekly is 8 days away.
    eight = ContractSelectionConfig(max_dte=8)
    late, _ = select("NVDA", False, "140", et(2026, 4, 2, 15, 45), eight)
    assert late.contract.expiry == date(2026, 4, 10) and late.expiry_kind == "8DTE"
    with pytest.raises(NoContract, match=r"skipped.*; no later NVDA expiry within 7 days$"):
        select("NVDA", False, "140", et(2026, 4, 2, 15, 45))  # 8 days > the default 7


def test_quotes_of_other_contracts_are_ignored() -> None:
    now = et(2026, 11, 18, 11)
    session = date(2026, 11, 18)
    other = option_chain("QQQ", Decimal(500), session, now, 0.2, CAL, n_strikes=2)
    spy = option_chain("SPY", Decimal(580), session, now, 0.2, CAL, n_strikes=2)
    source = quotes_by_expiry(other + spy)
    chosen = select_contract("SPY", True, Decimal(580), now, CAL, source)
    assert chosen.contract.underlying == "SPY"
    assert source(date(2030, 1, 1)) == []


def test_selection_config_validates() -> None:
    config = ContractSelectionConfig(target_delta="0.3", zero_dte_cutoff=600, max_dte="5")
    assert config.target_delta == Decimal("0.3")
    assert config.zero_dte_cutoff == timedelta(minutes=10)
    assert config.max_dte == 5
    for bad in (
        {"target_delta": Decimal(1)},
        {"target_delta": Decimal(0)},
        {"min_open_interest": -1},
        {"max_spread_pct": Decimal(0)},
        {"zero_dte_cutoff": -5},
        {"zero_dte_cutoff": timedelta(minutes=-1)},
        {"max_dte": True},
    ):
        with pytest.raises(ValidationError):
            ContractSelectionConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="bullish"):
        select_contract("SPY", "yes", Decimal(580), et(2026, 11, 18, 11), CAL, lambda e: [])  # type: ignore[arg-type]
