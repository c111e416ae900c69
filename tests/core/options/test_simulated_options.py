from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import Quote, ValidationError
from core.marketdata.calendar import ManualClock, default_calendar
from core.marketdata.simulated import DEFAULT_UNIVERSE, SimulatedMarket
from core.options.chain import ExpiredContract
from core.options.occ import OptionContract, Right
from core.options.pricing import OptionModelConfig, realized_volatility
from core.options.selection import select_contract
from core.ports import UnknownSymbol

CAL = default_calendar()
#: Wednesday 2026-11-18, 11:00 New York.
MIDDAY = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)


def make(at: datetime = MIDDAY, **kwargs) -> SimulatedMarket:
    return SimulatedMarket(ManualClock(at), CAL, seed=7, **kwargs)


def test_an_occ_symbol_is_quoted_like_its_row_in_the_chain() -> None:
    market = make()
    chain = market.option_chain("SPY", n_strikes=5)
    assert len(chain) == 22
    assert {q.contract.expiry for q in chain} == {date(2026, 11, 18)}
    spot = market.quote_sync("SPY").last
    assert all(q.underlying_price == spot for q in chain)
    for row in chain:
        quote = market.quote_sync(row.symbol)
        assert quote == Quote(row.symbol, row.bid, row.ask, row.mid, MIDDAY)
        assert market.option_quote(row.symbol) == row
        assert quote.bid < quote.ask
        assert quote.last == quote.mid
    padded = chain[0].contract.occ(padded=True)
    assert market.quote_sync(padded).symbol == chain[0].symbol
    assert asyncio.run(market.quote(chain[0].symbol)).bid == chain[0].bid


def test_put_call_parity_roughly_holds_on_mids() -> None:
    market = make()
    for expiry in (None, date(2026, 11, 20), date(2026, 11, 27)):
        chain = market.option_chain("QQQ", expiry=expiry, n_strikes=3)
        spot = chain[0].underlying_price
        for call, put in zip(chain[::2], chain[1::2], strict=True):
            assert call.contract.strike == put.contract.strike
            assert (call.contract.right, put.contract.right) == (Right.CALL, Right.PUT)
            t = (CAL.session_close(call.contract.expiry) - MIDDAY).total_seconds() / (365 * 86400)
            forward = spot - call.contract.strike * Decimal(math.exp(-0.04 * t))
            # the mids sit within the two half spreads of the exact parity of the theos
            slack = (call.spread + put.spread) / 2 + Decimal("0.01")
            assert abs(call.mid - put.mid - forward) <= slack
            assert abs(call.theo - put.theo - forward) <= Decimal("0.0002")


def test_realized_volatility_uses_the_last_31_daily_closes() -> None:
    market = make()
    closes = [bar.close for bar in market.bars_sync("NVDA", "1Day", limit=31)]
    assert len(closes) == 31
    assert market.realized_volatility("NVDA") == realized_volatility(closes, 252)
    # the simulated NVDA runs at 50 % a year: the estimate is in that neighbourhood
    assert 0.3 < market.realized_volatility("NVDA") < 0.7
    q = market.option_chain("NVDA", n_strikes=0)[0]
    smile = 0.10 * abs(math.log(q.contract.strike / q.underlying_price))
    assert q.iv == pytest.approx(market.realized_volatility("NVDA") + smile)


def test_weekly_underlyings_quote_their_friday() -> None:
    market = make()
    chain = market.option_chain("NVDA", n_strikes=2)
    assert {q.contract.expiry for q in chain} == {date(2026, 11, 20)}
    with pytest.raises(ValidationError, match="NVDA lists no options expiring 2026-11-19"):
        market.option_chain("NVDA", expiry=date(2026, 11, 19))
    unlisted = OptionContract("NVDA", date(2026, 11, 19), Decimal(140), Right.CALL).symbol
    with pytest.raises(UnknownSymbol, match="NVDA lists no options expiring 2026-11-19"):
        market.quote_sync(unlisted)


def test_unknown_underlyings_and_expired_contracts() -> None:
    market = make()
    with pytest.raises(UnknownSymbol, match="ZZZZ"):
        market.quote_sync("ZZZZ261120C00100000")
    with pytest.raises(UnknownSymbol, match="ZZZZ"):
        market.option_chain("ZZZZ")
    expired = OptionContract("SPY", date(2026, 11, 17), Decimal(580), Right.PUT).symbol
    with pytest.raises(ExpiredContract, match="expired at the close, 2026-11-17 21:00 UTC"):
        market.quote_sync(expired)
    with pytest.raises(ValidationError, match="expired"):
        market.option_quote(expired)
    with pytest.raises(UnknownSymbol):  # a position mark skips it like any unknown symbol
        asyncio.run(market.quote(expired))
    with pytest.raises(ValidationError, match="not an OCC option symbol"):
        market.option_quote("SPY")
    assert market.symbols() == frozenset(spec.symbol for spec in DEFAULT_UNIVERSE)  # underlyings


def test_quotes_follow_the_clock_to_expiry() -> None:
    clock = ManualClock(MIDDAY)
    market = SimulatedMarket(clock, CAL, seed=7)
    symbol = market.option_chain("SPY", n_strikes=0)[0].symbol  # the 0DTE ATM call
    morning = market.option_quote(symbol)
    clock.advance(timedelta(hours=4, minutes=59))  # 15:59 New York
    late = market.option_quote(symbol)
    assert late.iv == pytest.approx(morning.iv, abs=0.1)
    assert late.greeks.vega < morning.greeks.vega  # less time left
    clock.advance(timedelta(minutes=1))  # the close
    with pytest.raises(ExpiredContract):
        market.option_quote(symbol)
    nxt = market.option_chain("SPY", n_strikes=0)
    assert nxt[0].contract.expiry == date(2026, 11, 19)


def test_outside_sessions_options_quote_on_the_last_close() -> None:
    saturday = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    market = make(saturday)
    chain = market.option_chain("IWM", n_strikes=1)
    assert {q.contract.expiry for q in chain} == {date(2026, 11, 23)}
    assert chain[0].underlying_price == market.quote_sync("IWM").last
    assert all(q.bid < q.ask for q in chain)


def test_the_option_model_is_configurable() -> None:
    wide = make(option_model=OptionModelConfig(spread_pct_of_premium=Decimal("0.2")))
    narrow = make()
    w = wide.option_chain("SPY", n_strikes=0)[0]
    n = narrow.option_chain("SPY", n_strikes=0)[0]
    assert w.theo == n.theo and w.spread > n.spread


def test_selection_on_the_simulated_chain() -> None:
    market = make()
    spot = market.quote_sync("SPY").last
    chosen = select_contract(
        "SPY",
        True,
        spot,
        MIDDAY,
        CAL,
        lambda expiry: market.option_chain("SPY", expiry=expiry),
    )
    assert chosen.expiry_kind == "0DTE"
    assert abs(chosen.contract.strike - spot) <= Decimal("0.5")
    assert market.quote_sync(chosen.contract.symbol).ask == chosen.quote.ask


def test_option_bars_are_the_underlyings_repriced() -> None:
    market = make()
    row = market.option_chain("SPY", n_strikes=0)[1]  # the 0DTE at-the-money put
    bars = market.bars_sync(row.symbol, "1Min", limit=30)
    spy = market.bars_sync("SPY", "1Min", limit=30)
    assert [(b.start, b.end) for b in bars] == [(b.start, b.end) for b in spy]
    assert all(b.symbol == row.symbol for b in bars)
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.low >= 0 and bar.volume >= 0
        assert bar.close == bar.close.quantize(Decimal("0.01"))
    # the last bar closes at the model value of the quote (both at the same minute)
    assert bars[-1].end == MIDDAY
    assert bars[-1].close == row.theo.quantize(Decimal("0.01"))
    # a put moves against its underlying
    up = [(o.close > spy[i - 1].close) for i, o in enumerate(spy) if i]
    put_down = [(b.close <= bars[i - 1].close) for i, b in enumerate(bars) if i]
    assert sum(u == d for u, d in zip(up, put_down, strict=True)) >= 0.8 * len(up)
    assert market.bars_sync(row.symbol, "1Day", limit=2)[-1].symbol == row.symbol


def test_option_bars_stop_at_the_expiry_close() -> None:
    evening = datetime(2026, 11, 18, 23, 0, tzinfo=UTC)
    market = make(evening)
    expired = OptionContract("SPY", date(2026, 11, 18), Decimal(580), Right.CALL).symbol
    bars = market.bars_sync(expired, "5Min")
    assert bars and bars[-1].end == CAL.session_close(date(2026, 11, 18))
    later = datetime(2026, 11, 19, 20, 0, tzinfo=UTC)
    assert market.bars_sync(expired, "1Min", start=later) == []
    with pytest.raises(UnknownSymbol):
        market.bars_sync("ZZZZ261120C00100000")
    with pytest.raises(UnknownSymbol, match="lists no options"):
        market.bars_sync(OptionContract("NVDA", date(2026, 11, 18), Decimal(140), Right.PUT).symbol)
