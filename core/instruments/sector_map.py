"""Which sector or index a signal ticker belongs to (seed 001, ``select_etf`` rules 1 and 2).

:data:`INDEX_TICKERS` are broad-market index funds; they always trade their own index pair
(SPY -> SPXL/SPXS with UPRO/SPXU as the alternate, QQQ -> TQQQ/SQQQ, IWM -> TNA/TZA,
DIA -> UDOW/SDOW), whatever the sector-mapping setting.

:data:`SECTOR_MAP` covers the largest US stocks (S&P 500 megacaps in every sector) and common
sector and commodity funds. Most map to a sector with a leveraged pair in the seed catalog. Some
sectors have none there (industrials, consumer staples, consumer discretionary outside retail,
communication services, utilities, materials: :data:`SECTORS_WITHOUT_FUNDS`); their stocks trade
the broad-market S&P 500 pair (:data:`BROAD_MARKET`): every mapped stock is an S&P 500 member, so
the index is the nearest leveraged proxy. The same fallback applies when a sector has no fund on
the side a signal needs (healthcare has no inverse fund, so a short healthcare signal trades
SPXS). The fallback index is configurable and can be switched off
(:attr:`~core.instruments.config.InstrumentConfig.sector_fallback_index`).

Classification follows GICS sectors, refined where a catalog fund fits better:
semiconductor companies map to ``semiconductors`` (SOXL/SOXS), the FANG+ names (Amazon,
Alphabet, Meta, Netflix, Tesla) to ``fang`` (FNGU/FNGD), large store-based retailers including
Walmart, Costco and Kroger to ``retail`` (RETL/RETS), large-cap drug developers classed as
biotechnology to ``biotech`` (LABU/LABD), and Newmont, the largest gold miner, to ``gold_miners``
(NUGT/DUST).

Tickers are normalized by :func:`normalize_ticker` (upper case, ``BRK-B``/``BRK/B`` -> ``BRK.B``).
A ticker in neither map is *unknown*; see :class:`~core.instruments.config.InstrumentConfig` for
what the router does with it (by default: no ETF, with a reason).
"""

from __future__ import annotations

from types import MappingProxyType

from core.instruments.catalog import Sector


def normalize_ticker(ticker: str) -> str:
    """Upper-case, trimmed, share-class separator as a dot (``brk-b`` -> ``BRK.B``)."""
    return ticker.strip().upper().replace("-", ".").replace("/", ".")


#: Broad-market index funds -> their index (seed rule: broad market signals use index ETFs).
INDEX_TICKERS: MappingProxyType[str, Sector] = MappingProxyType(
    {
        "SPY": Sector.SP500,
        "VOO": Sector.SP500,
        "IVV": Sector.SP500,
        "SPLG": Sector.SP500,
        "QQQ": Sector.NASDAQ100,
        "QQQM": Sector.NASDAQ100,
        "IWM": Sector.RUSSELL2000,
        "VTWO": Sector.RUSSELL2000,
        "DIA": Sector.DOW30,
    }
)


def _group(sector: Sector, tickers: str) -> tuple[Sector, list[str]]:
    return sector, tickers.split()


def _build(*groups: tuple[Sector, list[str]]) -> dict[str, Sector]:
    """Merge groups into one map; a ticker listed twice is a mistake in this file."""
    out: dict[str, Sector] = {}
    for sector, tickers in groups:
        for ticker in tickers:
            if ticker in out or ticker in INDEX_TICKERS:
                raise ValueError(f"{ticker} is listed twice in the sector map")
            out[ticker] = sector
    return out


_STOCK_GROUPS = (
    _group(
        Sector.TECHNOLOGY,
        "AAPL MSFT ORCL CRM ADBE ACN CSCO IBM NOW INTU PANW ANET PLTR CRWD APH SNPS CDNS MSI "
        "DELL HPQ FTNT WDAY ADSK",
    ),
    _group(
        Sector.SEMICONDUCTORS,
        "NVDA AVGO AMD QCOM TXN AMAT MU ADI INTC LRCX KLAC MRVL NXPI MCHP ON",
    ),
    _group(Sector.FANG, "AMZN GOOGL GOOG META NFLX TSLA"),
    _group(
        Sector.FINANCIALS,
        "BRK.B JPM V MA BAC WFC GS MS AXP SPGI PGR BLK C SCHW BX FI CB MMC KKR ICE CME PYPL USB "
        "PNC MCO AON COF AIG MET TRV",
    ),
    _group(Sector.ENERGY, "XOM CVX COP EOG SLB OXY PSX MPC VLO WMB KMI OKE"),
    _group(
        Sector.HEALTHCARE,
        "LLY UNH JNJ ABBV MRK TMO ABT ISRG PFE DHR SYK BSX MDT BMY ELV CI MCK CVS ZTS HCA",
    ),
    _group(Sector.BIOTECH, "AMGN VRTX GILD REGN MRNA BIIB"),
    _group(Sector.RETAIL, "WMT COST HD LOW TJX TGT AZO ORLY ROST DG DLTR BBY KR"),
    _group(Sector.REAL_ESTATE, "PLD AMT EQIX WELL SPG O PSA DLR CCI"),
    _group(Sector.GOLD_MINERS, "NEM"),
    _group(Sector.CONSUMER_DISCRETIONARY, "MCD BKNG SBUX ABNB CMG NKE F GM MAR HLT LULU DASH"),
    _group(Sector.COMMUNICATION_SERVICES, "TMUS DIS VZ CMCSA T"),
    _group(Sector.CONSUMER_STAPLES, "PG KO PEP PM MO MDLZ CL"),
    _group(
        Sector.INDUSTRIALS,
        "GE CAT RTX UBER HON UNP ETN ADP LMT DE UPS TT WM GD NOC ITW EMR CSX NSC FDX MMM BA",
    ),
    _group(Sector.UTILITIES, "NEE SO DUK CEG AEP D SRE EXC"),
    _group(Sector.MATERIALS, "LIN SHW FCX ECL APD"),
)

_FUND_GROUPS = (
    _group(Sector.TECHNOLOGY, "XLK VGT"),
    _group(Sector.SEMICONDUCTORS, "SMH SOXX"),
    _group(Sector.FINANCIALS, "XLF"),
    _group(Sector.ENERGY, "XLE"),
    _group(Sector.HEALTHCARE, "XLV"),
    _group(Sector.BIOTECH, "XBI IBB"),
    _group(Sector.RETAIL, "XRT"),
    _group(Sector.REAL_ESTATE, "XLRE VNQ IYR"),
    _group(Sector.GOLD_MINERS, "GDX"),
    _group(Sector.JUNIOR_GOLD_MINERS, "GDXJ"),
    _group(Sector.SILVER, "SLV"),
    _group(Sector.NATURAL_GAS, "UNG"),
    _group(Sector.CRUDE_OIL, "USO"),
    _group(Sector.VIX, "VXX"),
)

#: Stocks and sector/commodity funds -> sector (index funds are in :data:`INDEX_TICKERS`).
SECTOR_MAP: MappingProxyType[str, Sector] = MappingProxyType(_build(*_STOCK_GROUPS, *_FUND_GROUPS))

#: The single stocks of :data:`SECTOR_MAP` (the largest US companies).
STOCK_TICKERS: frozenset[str] = frozenset(_build(*_STOCK_GROUPS))

#: The broad-market index used whenever a mapped ticker's sector has no usable leveraged fund.
BROAD_MARKET: Sector = Sector.SP500

#: Sectors with no leveraged pair in the seed catalog; their stocks trade the broad-market pair.
SECTORS_WITHOUT_FUNDS: frozenset[Sector] = frozenset(
    {
        Sector.INDUSTRIALS,
        Sector.CONSUMER_STAPLES,
        Sector.CONSUMER_DISCRETIONARY,
        Sector.COMMUNICATION_SERVICES,
        Sector.UTILITIES,
        Sector.MATERIALS,
    }
)


def sector_of(ticker: str) -> Sector | None:
    """The shipped index or sector mapping of ``ticker``, ``None`` when it is unknown."""
    t = normalize_ticker(ticker)
    return INDEX_TICKERS.get(t) or SECTOR_MAP.get(t)
