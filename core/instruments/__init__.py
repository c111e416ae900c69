"""Instrument routing: which instrument a signal trades (stock, options or a leveraged ETF),
which leveraged fund, and how many of its shares.

* :mod:`~core.instruments.modes` -- :class:`InstrumentMode` and the routing table.
* :mod:`~core.instruments.catalog` -- the leveraged ETF universe.
* :mod:`~core.instruments.sector_map` -- ticker -> sector or index.
* :mod:`~core.instruments.router` -- :class:`InstrumentRouter` and its decisions.
* :mod:`~core.instruments.etf_sizer` -- :class:`LeveragedETFSizer`.
"""

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
from core.instruments.config import (
    INSTRUMENT_RUNTIME_SETTINGS,
    InstrumentConfig,
    parse_instrument_mode,
)
from core.instruments.etf_sizer import EtfSize, LeveragedETFSizer, default_conviction_multiplier
from core.instruments.modes import InstrumentMode, route_kind
from core.instruments.router import (
    AdvLookup,
    ETFSelection,
    InstrumentDecision,
    InstrumentRouter,
    NoInstrument,
)
from core.instruments.sector_map import (
    BROAD_MARKET,
    INDEX_TICKERS,
    SECTOR_MAP,
    SECTORS_WITHOUT_FUNDS,
    STOCK_TICKERS,
    normalize_ticker,
    sector_of,
)

__all__ = [
    "BROAD_MARKET",
    "EXTENDED_ETF_CATALOG",
    "INDEX_2X_ENTRIES",
    "INDEX_TICKERS",
    "INSTRUMENT_RUNTIME_SETTINGS",
    "LEVERAGED_ETF_CATALOG",
    "SECTORS_WITHOUT_FUNDS",
    "SECTOR_MAP",
    "STOCK_TICKERS",
    "AdvLookup",
    "ETFSelection",
    "EtfCatalog",
    "EtfCategory",
    "EtfEntry",
    "EtfSize",
    "InstrumentConfig",
    "InstrumentDecision",
    "InstrumentMode",
    "InstrumentRouter",
    "LeveragedETFSizer",
    "NoInstrument",
    "Sector",
    "default_conviction_multiplier",
    "entry_for_ticker",
    "inverse_of",
    "normalize_ticker",
    "parse_instrument_mode",
    "route_kind",
    "sector_of",
]
