"""TestETFCatalog: the seed's 20 entries, their numbers, and the catalog's consistency."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.domain import Direction, ValidationError
from core.instruments.catalog import (
    EXTENDED_ETF_CATALOG,
    INDEX_2X_ENTRIES,
    LEVERAGED_ETF_CATALOG,
    EtfCatalog,
    EtfCategory,
    EtfEntry,
    Sector,
    entry_for_ticker,
    inverse_of,
)

#: The seed's catalog, verbatim: key -> (ticker, inverse, leverage, tracks).
SEED = {
    "bull_spy_3x": ("SPXL", "SPXS", "3", "S&P 500"),
    "bull_spy_3x_alt": ("UPRO", "SPXU", "3", "S&P 500"),
    "bull_qqq_3x": ("TQQQ", "SQQQ", "3", "NASDAQ-100"),
    "bull_rut_3x": ("TNA", "TZA", "3", "Russell 2000"),
    "bull_dow_3x": ("UDOW", "SDOW", "3", "Dow 30"),
    "bull_semi_3x": ("SOXL", "SOXS", "3", "Semiconductors"),
    "bull_fang_3x": ("FNGU", "FNGD", "3", "FANG+"),
    "bull_tech_3x": ("TECL", "TECS", "3", "Technology"),
    "bull_fin_3x": ("FAS", "FAZ", "3", "Financials"),
    "bull_energy_2x": ("ERX", "ERY", "2", "Energy"),
    "bull_bio_3x": ("LABU", "LABD", "3", "Biotech"),
    "bull_retail_3x": ("RETL", "RETS", "3", "Retail"),
    "bull_re_3x": ("DRN", "DRV", "3", "Real Estate"),
    "bull_health_3x": ("CURE", None, "3", "Healthcare"),
    "bull_gold_2x": ("NUGT", "DUST", "2", "Gold Miners"),
    "bull_gold_3x": ("JNUG", "JDST", "3", "Jr Gold Miners"),
    "bull_silver_2x": ("AGQ", "ZSL", "2", "Silver"),
    "bull_natgas_2x": ("BOIL", "KOLD", "2", "Natural Gas"),
    "bull_oil_2x": ("UCO", "SCO", "2", "Crude Oil"),
    "bull_vix_1.5x": ("UVXY", "SVXY", "1.5", "VIX Short-Term"),
}


class TestETFCatalog:
    def test_has_exactly_the_seed_entries(self) -> None:
        assert len(LEVERAGED_ETF_CATALOG) == 20
        assert list(LEVERAGED_ETF_CATALOG) == list(SEED)
        for key, (ticker, inverse, leverage, tracks) in SEED.items():
            entry = LEVERAGED_ETF_CATALOG[key]
            assert entry.key == key
            assert (entry.ticker, entry.inverse, entry.tracks) == (ticker, inverse, tracks)
            assert entry.leverage == D(leverage)
            assert isinstance(entry.leverage, D)

    @pytest.mark.parametrize("catalog", [LEVERAGED_ETF_CATALOG, EXTENDED_ETF_CATALOG])
    def test_all_entries_valid(self, catalog: EtfCatalog) -> None:
        for key, entry in catalog.items():
            assert isinstance(entry, EtfEntry)
            assert entry.key == key
            assert entry.leverage > 0
            assert entry.ticker.isalpha() and entry.ticker.isupper()
            assert entry.inverse is None or (entry.inverse.isalpha() and entry.inverse.isupper())
            assert isinstance(entry.sector, Sector)
            assert isinstance(entry.category, EtfCategory)
            assert entry.tracks

    @pytest.mark.parametrize("catalog", [LEVERAGED_ETF_CATALOG, EXTENDED_ETF_CATALOG])
    def test_tickers_unique_across_both_sides(self, catalog: EtfCatalog) -> None:
        sides = [t for e in catalog.values() for t in e.tickers]
        assert len(sides) == len(set(sides)) == len(catalog.tickers)

    @pytest.mark.parametrize("catalog", [LEVERAGED_ETF_CATALOG, EXTENDED_ETF_CATALOG])
    def test_inverse_pairs_symmetric(self, catalog: EtfCatalog) -> None:
        for entry in catalog.values():
            assert catalog.entry_for(entry.ticker) is entry
            assert not catalog.is_inverse(entry.ticker)
            if entry.inverse is None:
                assert catalog.inverse_of(entry.ticker) is None
                continue
            assert catalog.entry_for(entry.inverse) is entry
            assert catalog.is_inverse(entry.inverse)
            assert catalog.inverse_of(entry.ticker) == entry.inverse
            assert catalog.inverse_of(entry.inverse) == entry.ticker
        for ticker in catalog.tickers:
            twin = catalog.inverse_of(ticker)
            if twin is not None:
                assert catalog.inverse_of(twin) == ticker

    def test_module_helpers_use_the_seed_catalog(self) -> None:
        assert inverse_of("TQQQ") == "SQQQ"
        assert inverse_of("sqqq") == "TQQQ"
        assert inverse_of("CURE") is None
        assert inverse_of("AAPL") is None
        assert entry_for_ticker("SPXU") is LEVERAGED_ETF_CATALOG["bull_spy_3x_alt"]
        assert entry_for_ticker("QLD") is None  # only in the extended catalog

    def test_ticker_for_direction(self) -> None:
        qqq = LEVERAGED_ETF_CATALOG["bull_qqq_3x"]
        assert qqq.ticker_for(Direction.LONG) == "TQQQ"
        assert qqq.ticker_for(Direction.SHORT) == "SQQQ"
        assert LEVERAGED_ETF_CATALOG["bull_health_3x"].ticker_for(Direction.SHORT) is None

    def test_sectors(self) -> None:
        cat = LEVERAGED_ETF_CATALOG
        assert [e.ticker for e in cat.for_sector(Sector.SP500)] == ["SPXL", "UPRO"]
        assert [e.ticker for e in cat.for_sector("nasdaq100")] == ["TQQQ"]
        assert cat.for_sector(Sector.INDUSTRIALS) == ()
        assert Sector.SP500.is_index and not Sector.TECHNOLOGY.is_index
        index_keys = {"bull_spy_3x", "bull_spy_3x_alt", "bull_qqq_3x", "bull_rut_3x", "bull_dow_3x"}
        for key, entry in cat.items():
            assert (entry.category is EtfCategory.INDEX) == (key in index_keys)
            assert entry.sector.is_index == (key in index_keys)

    def test_extended_catalog_adds_2x_index_pairs(self) -> None:
        assert len(EXTENDED_ETF_CATALOG) == 20 + len(INDEX_2X_ENTRIES)
        for sector in (Sector.SP500, Sector.NASDAQ100, Sector.RUSSELL2000, Sector.DOW30):
            leverages = {e.leverage for e in EXTENDED_ETF_CATALOG.for_sector(sector)}
            assert leverages == {D(2), D(3)}
        assert EXTENDED_ETF_CATALOG.inverse_of("QLD") == "QID"
        assert len(LEVERAGED_ETF_CATALOG) == 20  # extending does not touch the original

    def test_entries_and_catalog_are_immutable(self) -> None:
        entry = LEVERAGED_ETF_CATALOG["bull_qqq_3x"]
        with pytest.raises(AttributeError):
            entry.ticker = "QQQ"  # type: ignore[misc]
        with pytest.raises(TypeError):
            LEVERAGED_ETF_CATALOG["x"] = entry  # type: ignore[index]

    def test_catalog_rejects_inconsistent_data(self) -> None:
        spxl = LEVERAGED_ETF_CATALOG["bull_spy_3x"]
        clash = EtfEntry("other", "SPXS", "SPXL", D(3), "S&P 500", Sector.SP500, EtfCategory.INDEX)
        with pytest.raises(ValidationError, match="appears in catalog entries"):
            EtfCatalog([spxl, clash])
        half = EtfEntry("half", "SPXS", "XYZ", D(3), "S&P 500", Sector.SP500, EtfCategory.INDEX)
        with pytest.raises(ValidationError, match="SPXS"):
            EtfCatalog([spxl, half])
        with pytest.raises(ValidationError, match="duplicate catalog key"):
            EtfCatalog([spxl, spxl])

    @pytest.mark.parametrize(
        ("ticker", "inverse", "leverage"),
        [("SPXL", "SPXL", "3"), ("spxl", "SPXS", "3"), ("SPXL", "SPXS", "0"), ("", None, "3")],
    )
    def test_entry_validation(self, ticker: str, inverse: str | None, leverage: str) -> None:
        with pytest.raises(ValidationError):
            EtfEntry("k", ticker, inverse, D(leverage), "x", Sector.SP500, EtfCategory.INDEX)
