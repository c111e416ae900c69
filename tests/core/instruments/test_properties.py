"""Properties of routing over random signals, modes, settings and market volumes."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import AccountState, Direction, InstrumentType, Side, TradeType
from core.instruments.catalog import EXTENDED_ETF_CATALOG, LEVERAGED_ETF_CATALOG
from core.instruments.config import InstrumentConfig
from core.instruments.etf_sizer import LeveragedETFSizer
from core.instruments.modes import InstrumentMode, route_kind
from core.instruments.router import InstrumentRouter, NoInstrument
from core.instruments.sector_map import INDEX_TICKERS, SECTOR_MAP
from tests.core.instruments.support import signal

ALL_FUNDS = sorted(EXTENDED_ETF_CATALOG.tickers)
TICKERS = sorted({*SECTOR_MAP, *INDEX_TICKERS, *ALL_FUNDS, "ZZZT", "QQQX", "BRK-B", "aapl"})

volumes = st.dictionaries(
    st.sampled_from(ALL_FUNDS),
    st.one_of(st.none(), st.integers(0, 60_000_000).map(D)),
)
configs = st.builds(
    InstrumentConfig,
    prefer_3x_for_day_trades=st.booleans(),
    min_etf_daily_volume=st.sampled_from([D(0), D(10_000_000), D(30_000_000)]),
    etf_sector_mapping=st.booleans(),
    both_mode_etf_min_conviction=st.integers(0, 100),
    both_mode_stock_fallback=st.booleans(),
    sector_fallback_index=st.sampled_from([None, "sp500", "nasdaq100"]),
    unknown_ticker_index=st.sampled_from([None, "sp500", "russell2000"]),
)


@settings(max_examples=400, deadline=None)
@given(
    ticker=st.sampled_from(TICKERS),
    direction=st.sampled_from(list(Direction)),
    trade_type=st.sampled_from(list(TradeType)),
    conviction=st.integers(0, 100),
    mode=st.sampled_from(list(InstrumentMode)),
    config=configs,
    extended=st.booleans(),
    table=volumes,
    default_volume=st.sampled_from([None, D(5_000_000), D(80_000_000)]),
)
def test_decision_follows_the_table(
    ticker, direction, trade_type, conviction, mode, config, extended, table, default_volume
) -> None:
    catalog = EXTENDED_ETF_CATALOG if extended else LEVERAGED_ETF_CATALOG
    router = InstrumentRouter(config, catalog)

    def adv(fund: str) -> D | None:
        assert fund in catalog.tickers  # the router only asks about funds that exist
        return table.get(fund, default_volume)

    sig = signal(ticker, direction, trade_type, conviction)
    kind = route_kind(
        mode, trade_type, conviction, etf_min_conviction=config.both_mode_etf_min_conviction
    )
    try:
        decision = router.route(sig, mode, adv)
    except NoInstrument as exc:
        assert kind is InstrumentType.LEVERAGED_ETF
        assert not (mode is InstrumentMode.BOTH and config.both_mode_stock_fallback)
        assert exc.reason
        return
    assert decision.original_ticker == ticker and decision.reason
    assert decision.leverage > 0

    if kind is InstrumentType.OPTION:
        assert decision.instrument_type is InstrumentType.OPTION
        assert decision.ticker == ticker and decision.leverage == 1
        return

    own_ticker = decision.ticker == ticker and decision.selection is None
    if kind is InstrumentType.STOCK or (
        own_ticker and mode is InstrumentMode.BOTH and config.both_mode_stock_fallback
    ):
        assert own_ticker
        assert decision.side is direction.entry_side
        fund = catalog.entry_for(ticker)
        if fund is None:
            assert decision.instrument_type is InstrumentType.STOCK
            assert decision.leverage == 1 and decision.catalog_entry is None
        else:  # a signal on a fund keeps the fund's leverage
            assert decision.instrument_type is InstrumentType.LEVERAGED_ETF
            assert decision.leverage == fund.leverage
        return

    # a leveraged ETF that exists, on the right side, liquid, with the preferred leverage
    assert kind is InstrumentType.LEVERAGED_ETF
    assert decision.instrument_type is InstrumentType.LEVERAGED_ETF
    assert decision.ticker in catalog.tickers
    entry = catalog.entry_for(decision.ticker)
    assert decision.catalog_entry is entry
    assert decision.leverage == entry.leverage
    assert decision.side is Side.BUY
    assert decision.is_inverse == catalog.is_inverse(decision.ticker)
    view = direction
    if catalog.is_inverse(ticker.strip().upper()):
        view = Direction.SHORT if direction is Direction.LONG else Direction.LONG
    assert decision.is_inverse == (view is Direction.SHORT)
    volume = adv(decision.ticker)
    assert volume is not None and volume >= config.min_etf_daily_volume
    selection = decision.selection
    assert selection is not None and selection.entry is entry
    liquid_rivals = [
        e.leverage
        for e in catalog.for_sector(selection.sector)
        if (t := e.ticker_for(view)) is not None
        and (v := adv(t)) is not None
        and v >= config.min_etf_daily_volume
    ]
    if trade_type is not TradeType.SWING and config.prefer_3x_for_day_trades:
        assert entry.leverage == max(liquid_rivals)
    else:
        assert abs(entry.leverage - 2) == min(abs(x - 2) for x in liquid_rivals)


@settings(max_examples=300, deadline=None)
@given(
    equity=st.integers(0, 5_000_000),
    entry=st.integers(1_000, 100_000).map(lambda c: D(c) / 100),
    stop_pct=st.integers(1, 4_000).map(lambda b: D(b) / 10_000),
    price=st.integers(100, 50_000).map(lambda c: D(c) / 100),
    leverage=st.sampled_from([D(1), D("1.5"), D(2), D(3)]),
    conviction=st.integers(0, 100),
    direction=st.sampled_from(list(Direction)),
)
def test_sizer_never_exceeds_risk_or_cap(
    equity, entry, stop_pct, price, leverage, conviction, direction
) -> None:
    offset = max((entry * stop_pct).quantize(D("0.01")), D("0.01"))
    stop = entry - offset if direction is Direction.LONG else entry + offset
    if stop <= 0:
        return
    sig = signal("QQQ", direction, "day", conviction, entry=str(entry), stop=str(stop))

    class Fund:
        ticker = "FUND"

    Fund.leverage = leverage  # type: ignore[attr-defined]
    sizer = LeveragedETFSizer()
    size = sizer.calculate(sig, Fund(), AccountState(D(equity), D(equity), D(equity)), price)
    assert size.shares >= 0 and size.shares == size.shares.to_integral_value()
    assert size.notional == size.shares * price
    assert size.notional <= D(equity) * sizer.max_single_etf_exposure
    assert size.max_loss_at_stop <= size.risk_amount
    assert size.max_hold_days == sizer.max_hold_days(leverage)
    assert (size.shares == 0) == (size.reason is not None)
    if size.etf_stop_price is not None:
        assert size.etf_stop_price < price
