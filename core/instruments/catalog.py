"""The leveraged ETF universe (seed 001, "Leveraged ETF Universe").

Each :class:`EtfEntry` is a bull ETF and, where one exists, its inverse twin. Both sides share the
entry's leverage and the :class:`Sector` (a sector or index key) they track. An
:class:`EtfCatalog` is an immutable mapping ``key -> EtfEntry`` that checks itself on
construction: keys match the entries' keys, leverage is positive, and every ticker appears once
across all bull and inverse sides, so :meth:`EtfCatalog.inverse_of` is symmetric
(``inverse_of(inverse_of(t)) == t`` for every ticker that has a twin).

:data:`LEVERAGED_ETF_CATALOG` holds exactly the seed's 20 entries under the seed's keys and
numbers. :data:`EXTENDED_ETF_CATALOG` adds 2x index pairs (ProShares Ultra/UltraShort), which the
seed catalog lacks, so that swing trades on index signals can use a 2x fund as the seed's
selection rule prefers; a router uses it only when it is passed in.

Catalog data (tickers, leverage) describes funds whose terms issuers change from time to time;
check it against issuer data before trading real money. The router's liquidity rule rejects a
ticker for which market data reports no volume, so a delisted fund is never traded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from core.domain import Direction, ValidationError, positive


class Sector(StrEnum):
    """A sector or index key: what a signal ticker belongs to and what an ETF tracks."""

    # indexes
    SP500 = "sp500"
    NASDAQ100 = "nasdaq100"
    RUSSELL2000 = "russell2000"
    DOW30 = "dow30"
    # sectors with leveraged ETFs in the seed catalog
    SEMICONDUCTORS = "semiconductors"
    FANG = "fang"
    TECHNOLOGY = "technology"
    FINANCIALS = "financials"
    ENERGY = "energy"
    BIOTECH = "biotech"
    RETAIL = "retail"
    REAL_ESTATE = "real_estate"
    HEALTHCARE = "healthcare"
    # commodities and volatility
    GOLD_MINERS = "gold_miners"
    JUNIOR_GOLD_MINERS = "junior_gold_miners"
    SILVER = "silver"
    NATURAL_GAS = "natural_gas"
    CRUDE_OIL = "crude_oil"
    VIX = "vix"
    # sectors without a leveraged ETF in the seed catalog (see core.instruments.sector_map)
    INDUSTRIALS = "industrials"
    CONSUMER_STAPLES = "consumer_staples"
    CONSUMER_DISCRETIONARY = "consumer_discretionary"
    COMMUNICATION_SERVICES = "communication_services"
    UTILITIES = "utilities"
    MATERIALS = "materials"

    @property
    def is_index(self) -> bool:
        return self in INDEX_SECTORS


INDEX_SECTORS = frozenset({Sector.SP500, Sector.NASDAQ100, Sector.RUSSELL2000, Sector.DOW30})


class EtfCategory(StrEnum):
    INDEX = "index"
    SECTOR = "sector"
    COMMODITY = "commodity"
    VOLATILITY = "volatility"


@dataclass(frozen=True, slots=True)
class EtfEntry:
    """A bull leveraged ETF and its inverse twin (``None`` when the seed lists none)."""

    key: str
    ticker: str
    inverse: str | None
    leverage: Decimal
    tracks: str
    sector: Sector
    category: EtfCategory

    def __post_init__(self) -> None:
        if not self.key:
            raise ValidationError("ETF entry needs a key")
        for name in ("ticker", "inverse"):
            value = getattr(self, name)
            if value is None and name == "inverse":
                continue
            if not isinstance(value, str) or not value or value != value.strip().upper():
                raise ValidationError(f"ETF entry {self.key}: {name} must be an upper-case ticker")
        if self.inverse == self.ticker:
            raise ValidationError(f"ETF entry {self.key}: inverse equals ticker {self.ticker}")
        object.__setattr__(self, "leverage", positive(self.leverage, f"{self.key} leverage"))
        object.__setattr__(self, "sector", Sector(self.sector))
        object.__setattr__(self, "category", EtfCategory(self.category))

    @property
    def tickers(self) -> tuple[str, ...]:
        """The bull ticker, then the inverse ticker if there is one."""
        return (self.ticker,) if self.inverse is None else (self.ticker, self.inverse)

    def ticker_for(self, direction: Direction) -> str | None:
        """The side to buy for a view on the tracked index: bull for long, inverse for short."""
        return self.ticker if Direction(direction) is Direction.LONG else self.inverse

    def is_inverse_ticker(self, ticker: str) -> bool:
        return self.inverse is not None and ticker == self.inverse


class EtfCatalog(Mapping[str, EtfEntry]):
    """An immutable, self-checking ``key -> EtfEntry`` mapping with ticker lookups."""

    __slots__ = ("_by_key", "_by_ticker")

    def __init__(self, entries: Iterable[EtfEntry]) -> None:
        by_key: dict[str, EtfEntry] = {}
        by_ticker: dict[str, EtfEntry] = {}
        for entry in entries:
            if not isinstance(entry, EtfEntry):
                raise ValidationError(f"catalog entries must be EtfEntry, got {entry!r}")
            if entry.key in by_key:
                raise ValidationError(f"duplicate catalog key {entry.key!r}")
            for ticker in entry.tickers:
                if ticker in by_ticker:
                    other = by_ticker[ticker].key
                    raise ValidationError(
                        f"ticker {ticker} appears in catalog entries {other} and {entry.key}"
                    )
                by_ticker[ticker] = entry
            by_key[entry.key] = entry
        self._by_key = MappingProxyType(by_key)
        self._by_ticker = MappingProxyType(by_ticker)

    # Mapping protocol
    def __getitem__(self, key: str) -> EtfEntry:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"EtfCatalog({len(self)} entries)"

    # lookups
    @property
    def tickers(self) -> frozenset[str]:
        """Every tradeable ticker, bull and inverse sides."""
        return frozenset(self._by_ticker)

    def entry_for(self, ticker: str) -> EtfEntry | None:
        """The entry whose bull or inverse side is ``ticker``."""
        return self._by_ticker.get(ticker.strip().upper())

    def inverse_of(self, ticker: str) -> str | None:
        """The other side of ``ticker``'s pair (bull -> inverse, inverse -> bull), else ``None``."""
        ticker = ticker.strip().upper()
        entry = self._by_ticker.get(ticker)
        if entry is None or entry.inverse is None:
            return None
        return entry.inverse if ticker == entry.ticker else entry.ticker

    def is_inverse(self, ticker: str) -> bool:
        """True when ``ticker`` is the inverse side of a catalog entry."""
        ticker = ticker.strip().upper()
        entry = self._by_ticker.get(ticker)
        return entry is not None and entry.is_inverse_ticker(ticker)

    def for_sector(self, sector: Sector | str) -> tuple[EtfEntry, ...]:
        """Entries tracking ``sector``, in catalog order (primary funds before alternates)."""
        sector = Sector(sector)
        return tuple(e for e in self._by_key.values() if e.sector is sector)

    @property
    def sectors(self) -> frozenset[Sector]:
        return frozenset(e.sector for e in self._by_key.values())

    def extended(self, entries: Iterable[EtfEntry]) -> EtfCatalog:
        """A new catalog with ``entries`` appended (checked like any catalog)."""
        return EtfCatalog([*self._by_key.values(), *entries])


def _e(
    key: str,
    ticker: str,
    inverse: str | None,
    leverage: str,
    tracks: str,
    sector: Sector,
    category: EtfCategory,
) -> EtfEntry:
    return EtfEntry(key, ticker, inverse, Decimal(leverage), tracks, sector, category)


_I, _S, _C, _V = (
    EtfCategory.INDEX,
    EtfCategory.SECTOR,
    EtfCategory.COMMODITY,
    EtfCategory.VOLATILITY,
)

#: The seed's 20 entries, keys and numbers as the seed gives them.
LEVERAGED_ETF_CATALOG = EtfCatalog(
    [
        # index ETFs (most liquid, primary instruments)
        _e("bull_spy_3x", "SPXL", "SPXS", "3", "S&P 500", Sector.SP500, _I),
        _e("bull_spy_3x_alt", "UPRO", "SPXU", "3", "S&P 500", Sector.SP500, _I),
        _e("bull_qqq_3x", "TQQQ", "SQQQ", "3", "NASDAQ-100", Sector.NASDAQ100, _I),
        _e("bull_rut_3x", "TNA", "TZA", "3", "Russell 2000", Sector.RUSSELL2000, _I),
        _e("bull_dow_3x", "UDOW", "SDOW", "3", "Dow 30", Sector.DOW30, _I),
        # sector ETFs
        _e("bull_semi_3x", "SOXL", "SOXS", "3", "Semiconductors", Sector.SEMICONDUCTORS, _S),
        _e("bull_fang_3x", "FNGU", "FNGD", "3", "FANG+", Sector.FANG, _S),
        _e("bull_tech_3x", "TECL", "TECS", "3", "Technology", Sector.TECHNOLOGY, _S),
        _e("bull_fin_3x", "FAS", "FAZ", "3", "Financials", Sector.FINANCIALS, _S),
        _e("bull_energy_2x", "ERX", "ERY", "2", "Energy", Sector.ENERGY, _S),
        _e("bull_bio_3x", "LABU", "LABD", "3", "Biotech", Sector.BIOTECH, _S),
        _e("bull_retail_3x", "RETL", "RETS", "3", "Retail", Sector.RETAIL, _S),
        _e("bull_re_3x", "DRN", "DRV", "3", "Real Estate", Sector.REAL_ESTATE, _S),
        _e("bull_health_3x", "CURE", None, "3", "Healthcare", Sector.HEALTHCARE, _S),
        # commodity / precious metal ETFs
        _e("bull_gold_2x", "NUGT", "DUST", "2", "Gold Miners", Sector.GOLD_MINERS, _C),
        # The seed lists 3x; the issuer cut JNUG/JDST to 2x in 2020 (check before live use).
        _e("bull_gold_3x", "JNUG", "JDST", "3", "Jr Gold Miners", Sector.JUNIOR_GOLD_MINERS, _C),
        _e("bull_silver_2x", "AGQ", "ZSL", "2", "Silver", Sector.SILVER, _C),
        _e("bull_natgas_2x", "BOIL", "KOLD", "2", "Natural Gas", Sector.NATURAL_GAS, _C),
        _e("bull_oil_2x", "UCO", "SCO", "2", "Crude Oil", Sector.CRUDE_OIL, _C),
        # volatility ETFs
        # SVXY targets -0.5x of the index, not -1.5x: sizing it as 1.5x under-sizes it.
        _e("bull_vix_1.5x", "UVXY", "SVXY", "1.5", "VIX Short-Term", Sector.VIX, _V),
    ]
)

#: 2x index pairs that are not in the seed catalog (ProShares Ultra / UltraShort funds).
INDEX_2X_ENTRIES: tuple[EtfEntry, ...] = (
    _e("bull_spy_2x", "SSO", "SDS", "2", "S&P 500", Sector.SP500, _I),
    _e("bull_qqq_2x", "QLD", "QID", "2", "NASDAQ-100", Sector.NASDAQ100, _I),
    _e("bull_rut_2x", "UWM", "TWM", "2", "Russell 2000", Sector.RUSSELL2000, _I),
    _e("bull_dow_2x", "DDM", "DXD", "2", "Dow 30", Sector.DOW30, _I),
)

#: The seed catalog plus :data:`INDEX_2X_ENTRIES`.
EXTENDED_ETF_CATALOG = LEVERAGED_ETF_CATALOG.extended(INDEX_2X_ENTRIES)


def entry_for_ticker(ticker: str) -> EtfEntry | None:
    """The seed-catalog entry whose bull or inverse side is ``ticker``."""
    return LEVERAGED_ETF_CATALOG.entry_for(ticker)


def inverse_of(ticker: str) -> str | None:
    """The other side of ``ticker``'s pair in the seed catalog, else ``None``."""
    return LEVERAGED_ETF_CATALOG.inverse_of(ticker)
