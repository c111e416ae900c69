"""The shipped sector map: coverage, consistency with the catalog, and where each ticker goes."""

from __future__ import annotations

import pytest

from core.domain import Direction, InstrumentType, TradeType
from core.instruments.catalog import (
    EXTENDED_ETF_CATALOG,
    LEVERAGED_ETF_CATALOG,
    EtfCatalog,
    Sector,
)
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentRouter
from core.instruments.sector_map import (
    BROAD_MARKET,
    INDEX_TICKERS,
    SECTOR_MAP,
    SECTORS_WITHOUT_FUNDS,
    STOCK_TICKERS,
    normalize_ticker,
    sector_of,
)
from tests.core.instruments.support import all_liquid, signal

MAPPED = sorted({*SECTOR_MAP, *INDEX_TICKERS})


def test_covers_the_largest_us_stocks_and_index_funds() -> None:
    assert len(STOCK_TICKERS) >= 100
    assert STOCK_TICKERS.issubset(SECTOR_MAP)
    for ticker in ("SPY", "QQQ", "IWM", "DIA"):
        assert ticker in INDEX_TICKERS
    megacaps = "AAPL MSFT NVDA AMZN GOOGL META BRK.B AVGO TSLA LLY JPM V XOM UNH WMT MA"
    assert set(megacaps.split()) <= STOCK_TICKERS
    # every GICS sector is represented
    assert {SECTOR_MAP[t] for t in STOCK_TICKERS} >= {
        Sector.TECHNOLOGY,
        Sector.FINANCIALS,
        Sector.ENERGY,
        Sector.HEALTHCARE,
        Sector.REAL_ESTATE,
        Sector.INDUSTRIALS,
        Sector.CONSUMER_STAPLES,
        Sector.CONSUMER_DISCRETIONARY,
        Sector.COMMUNICATION_SERVICES,
        Sector.UTILITIES,
        Sector.MATERIALS,
    }


def test_keys_are_normalized_and_disjoint() -> None:
    for ticker in MAPPED:
        assert normalize_ticker(ticker) == ticker
    assert not set(SECTOR_MAP) & set(INDEX_TICKERS)
    assert not set(MAPPED) & LEVERAGED_ETF_CATALOG.tickers


def test_every_sector_has_funds_or_is_a_documented_fallback() -> None:
    with_funds = LEVERAGED_ETF_CATALOG.sectors
    for sector in set(SECTOR_MAP.values()) | set(INDEX_TICKERS.values()):
        assert (sector in with_funds) != (sector in SECTORS_WITHOUT_FUNDS), sector
    assert BROAD_MARKET in with_funds and BROAD_MARKET.is_index
    assert all(s.is_index for s in INDEX_TICKERS.values())


def test_normalize_and_lookup() -> None:
    assert normalize_ticker(" brk-b ") == "BRK.B"
    assert normalize_ticker("BRK/B") == "BRK.B"
    assert sector_of("brk-b") is Sector.FINANCIALS
    assert sector_of("qqq") is Sector.NASDAQ100
    assert sector_of("NOPE") is None


@pytest.mark.parametrize(
    ("ticker", "long_fund", "short_fund"),
    [
        ("AAPL", "TECL", "TECS"),  # the seed's example
        ("MSFT", "TECL", "TECS"),
        ("NVDA", "SOXL", "SOXS"),
        ("AMZN", "FNGU", "FNGD"),
        ("JPM", "FAS", "FAZ"),
        ("XOM", "ERX", "ERY"),
        ("AMGN", "LABU", "LABD"),
        ("HD", "RETL", "RETS"),
        ("PLD", "DRN", "DRV"),
        ("LLY", "CURE", "SPXS"),  # no inverse healthcare fund -> S&P 500 inverse
        ("NEM", "NUGT", "DUST"),
        ("GDXJ", "JNUG", "JDST"),
        ("SLV", "AGQ", "ZSL"),
        ("UNG", "BOIL", "KOLD"),
        ("USO", "UCO", "SCO"),
        ("VXX", "UVXY", "SVXY"),
        ("CAT", "SPXL", "SPXS"),  # industrials: no fund -> S&P 500 pair
        ("KO", "SPXL", "SPXS"),
        ("NEE", "SPXL", "SPXS"),
        ("SPY", "SPXL", "SPXS"),
        ("QQQ", "TQQQ", "SQQQ"),
        ("IWM", "TNA", "TZA"),
        ("DIA", "UDOW", "SDOW"),
    ],
)
def test_examples(ticker: str, long_fund: str, short_fund: str) -> None:
    router = InstrumentRouter()
    liquid = all_liquid(LEVERAGED_ETF_CATALOG)
    assert router.select_etf(ticker, "long", "day", liquid).ticker == long_fund
    assert router.select_etf(ticker, "short", "day", liquid).ticker == short_fund


@pytest.mark.parametrize("catalog", [LEVERAGED_ETF_CATALOG, EXTENDED_ETF_CATALOG])
@pytest.mark.parametrize("trade_type", list(TradeType))
@pytest.mark.parametrize("direction", list(Direction))
def test_every_mapped_ticker_routes_to_a_catalog_fund(
    catalog: EtfCatalog, trade_type: TradeType, direction: Direction
) -> None:
    router = InstrumentRouter(catalog=catalog)
    liquid = all_liquid(catalog)
    for ticker in MAPPED:
        decision = router.route(
            signal(ticker, direction, trade_type), InstrumentMode.LEVERAGED_ETF, liquid
        )
        assert decision.instrument_type is InstrumentType.LEVERAGED_ETF
        assert decision.ticker in catalog.tickers
        entry = catalog.entry_for(decision.ticker)
        assert decision.catalog_entry is entry
        assert decision.is_inverse == (direction is Direction.SHORT)
        sector = INDEX_TICKERS.get(ticker) or SECTOR_MAP[ticker]
        if sector in SECTORS_WITHOUT_FUNDS or (
            sector is Sector.HEALTHCARE and direction is Direction.SHORT
        ):
            assert entry.sector is BROAD_MARKET, ticker  # the documented fallback
        else:
            assert entry.sector is sector, ticker
