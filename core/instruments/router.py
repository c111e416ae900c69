"""Instrument routing (seed 001, ``instrument_router.py``): which instrument a signal trades.

:meth:`InstrumentRouter.route` applies the mode table of :mod:`core.instruments.modes`. Options
and stock decisions keep the signal's ticker; leveraged ETF decisions come from
:meth:`InstrumentRouter.select_etf`, which follows the seed's selection rules:

1. **Sector or index mapping.** The signal ticker maps to a sector or index
   (:mod:`core.instruments.sector_map`; ``sector_overrides`` come first), e.g. AAPL -> technology ->
   TECL/TECS. A ticker that is itself a catalog fund maps to what that fund tracks (a signal on an
   inverse fund is a view against its index, so long SQQQ is short NASDAQ-100).
2. **Broad-market signals trade index funds.** SPY (and VOO/IVV/SPLG) -> SPXL/SPXS, with UPRO/SPXU
   as the alternate; QQQ -> TQQQ/SQQQ; IWM -> TNA/TZA; DIA -> UDOW/SDOW. This holds even when
   sector mapping is switched off.
3. **Direction.** Long signals buy the bull fund, short signals buy the inverse fund; a leveraged
   ETF trade is always a buy. A sector with no fund on the needed side (healthcare has no inverse;
   industrials have no fund at all) trades the ``sector_fallback_index`` pair (S&P 500 by
   default) or, when that is ``None``, is rejected.
4. **Leverage.** Scalps and day trades try the highest leverage first (3x) when
   ``prefer_3x_for_day_trades``; swing trades (and day trades when that setting is off) try the
   fund closest to 2x first, lower leverage winning a tie, then the rest by closeness to 2x. Where
   a sector has only one leverage (the seed catalog has no index or sector with both 2x and 3x
   funds), that fund is used: a swing signal on QQQ trades TQQQ with the seed catalog and QLD with
   :data:`~core.instruments.catalog.EXTENDED_ETF_CATALOG`. Equal leverage keeps catalog order
   (SPXL before UPRO).
5. **Liquidity.** A fund qualifies if its average daily dollar volume is at least
   ``min_etf_daily_volume`` ($10M). Candidates are tried in preference order, so a failing
   preferred fund passes to the alternate ticker or the alternative leverage; a fund with no
   volume data fails. When none qualifies the signal is rejected with every fund's number.

A stock decision normally has leverage 1; a signal whose ticker is itself a catalog fund (a
day trade on SOXL in *options* mode) keeps that ticker but is reported as a leveraged ETF with the
fund's leverage, so that sizing and holding limits see what it is.

A signal the router cannot place raises :class:`NoInstrument` (a
:class:`~core.pipeline.Rejected`, so the executor stores the reason on the signal). In *both*
mode a day trade with no qualifying fund trades the stock instead (``both_mode_stock_fallback``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.domain import (
    ONE,
    Direction,
    InstrumentType,
    Side,
    Signal,
    TradeType,
    ValidationError,
    to_decimal,
)
from core.instruments.catalog import LEVERAGED_ETF_CATALOG, EtfCatalog, EtfEntry, Sector
from core.instruments.config import InstrumentConfig
from core.instruments.modes import InstrumentMode, route_kind
from core.instruments.sector_map import INDEX_TICKERS, SECTOR_MAP, normalize_ticker
from core.pipeline import Rejected

#: Average daily dollar volume of a ticker, ``None`` when market data has none.
AdvLookup = Callable[[str], Decimal | None]

_TWO = Decimal(2)


class NoInstrument(Rejected):
    """No instrument fits the signal; the message is the reason stored on the signal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ETFSelection:
    """The leveraged fund chosen for a signal, and why."""

    ticker: str
    leverage: Decimal
    tracks: str
    avg_daily_volume: Decimal  # dollars
    is_inverse: bool
    entry: EtfEntry
    sector: Sector
    reason: str


@dataclass(frozen=True, slots=True)
class InstrumentDecision:
    """What a signal trades.

    ``ticker`` is the symbol to order (the signal's for stocks and options, the fund's for ETFs);
    ``side`` is the entry side: the signal's for stocks, always a buy for leveraged ETFs (the
    inverse fund carries the short view) and for options (calls for long signals, puts for short
    ones; the options stage picks and prices the contract). ``leverage`` is 1 for stocks and
    options.
    """

    instrument_type: InstrumentType
    ticker: str
    original_ticker: str
    leverage: Decimal
    is_inverse: bool
    catalog_entry: EtfEntry | None
    reason: str
    side: Side
    selection: ETFSelection | None = None


def _money(value: Decimal) -> str:
    return f"${value:,.0f}"


def _side_word(direction: Direction) -> str:
    return "bull" if direction is Direction.LONG else "inverse"


class InstrumentRouter:
    """Route signals to stock, options or a leveraged ETF (see the module docstring)."""

    def __init__(
        self,
        config: InstrumentConfig | None = None,
        catalog: EtfCatalog = LEVERAGED_ETF_CATALOG,
    ) -> None:
        self.config = config if config is not None else InstrumentConfig()
        if not isinstance(catalog, EtfCatalog):
            raise ValidationError("catalog must be an EtfCatalog")
        self.catalog = catalog

    # -- routing -------------------------------------------------------------------------------

    def route(
        self, signal: Signal, mode: InstrumentMode | str, adv_dollars: AdvLookup
    ) -> InstrumentDecision:
        """Decide the instrument for ``signal`` under ``mode``; :class:`NoInstrument` if none."""
        try:
            mode = InstrumentMode(mode)
        except ValueError:
            raise ValidationError(f"unknown instrument mode {mode!r}") from None
        trade_type = TradeType(signal.trade_type)
        threshold = self.config.both_mode_etf_min_conviction
        kind = route_kind(mode, trade_type, signal.conviction, etf_min_conviction=threshold)
        why = f"{mode.value} mode, {trade_type.value} signal"
        if mode is InstrumentMode.BOTH and trade_type is TradeType.DAY:
            op = ">=" if kind is InstrumentType.LEVERAGED_ETF else "<"
            why += f" with conviction {signal.conviction} {op} {threshold}"
        if kind is InstrumentType.OPTION:
            return InstrumentDecision(
                InstrumentType.OPTION,
                ticker=signal.symbol,
                original_ticker=signal.symbol,
                leverage=ONE,
                is_inverse=False,
                catalog_entry=None,
                reason=f"{why}: options on {signal.symbol}",
                side=Side.BUY,
            )
        if kind is InstrumentType.STOCK:
            return self._own_ticker(signal, f"{why}: trade {signal.symbol} itself")
        try:
            selection = self.select_etf(signal.symbol, signal.direction, trade_type, adv_dollars)
        except NoInstrument as exc:
            if mode is InstrumentMode.BOTH and self.config.both_mode_stock_fallback:
                return self._own_ticker(
                    signal, f"{why}, but {exc.reason}; trading {signal.symbol} itself"
                )
            raise NoInstrument(f"{why}: {exc.reason}") from None
        return InstrumentDecision(
            InstrumentType.LEVERAGED_ETF,
            ticker=selection.ticker,
            original_ticker=signal.symbol,
            leverage=selection.leverage,
            is_inverse=selection.is_inverse,
            catalog_entry=selection.entry,
            reason=f"{why}: {selection.reason}",
            side=Side.BUY,
            selection=selection,
        )

    def _own_ticker(self, signal: Signal, reason: str) -> InstrumentDecision:
        """A stock decision; a signal ticker that is itself a catalog fund keeps its leverage,
        so sizing and holding limits treat it as the leveraged fund it is."""
        side = Direction(signal.direction).entry_side
        entry = self.catalog.entry_for(signal.symbol)
        if entry is None:
            return InstrumentDecision(
                InstrumentType.STOCK,
                ticker=signal.symbol,
                original_ticker=signal.symbol,
                leverage=ONE,
                is_inverse=False,
                catalog_entry=None,
                reason=reason,
                side=side,
            )
        return InstrumentDecision(
            InstrumentType.LEVERAGED_ETF,
            ticker=signal.symbol,
            original_ticker=signal.symbol,
            leverage=entry.leverage,
            is_inverse=self.catalog.is_inverse(signal.symbol),
            catalog_entry=entry,
            reason=f"{reason} ({signal.symbol} is a {entry.leverage}x {entry.tracks} fund)",
            side=side,
        )

    # -- ETF selection -------------------------------------------------------------------------

    def select_etf(
        self,
        original_ticker: str,
        direction: Direction | str,
        trade_type: TradeType | str,
        adv_dollars: AdvLookup,
    ) -> ETFSelection:
        """Pick the leveraged fund for a signal on ``original_ticker`` (rules 1-5 above)."""
        direction = Direction(direction)
        trade_type = TradeType(trade_type)
        ticker = normalize_ticker(original_ticker)
        sector, view, path = self._resolve(ticker, direction)
        candidates = [e for e in self.catalog.for_sector(sector) if e.ticker_for(view)]
        fallback = self.config.sector_fallback_index
        if not candidates and fallback is not None and fallback is not sector:
            path += (
                f"; no {_side_word(view)} {sector.value} fund in the catalog, "
                f"using the {fallback.value} pair"
            )
            sector = fallback
            candidates = [e for e in self.catalog.for_sector(sector) if e.ticker_for(view)]
        if not candidates:
            raise NoInstrument(f"{path}; no {_side_word(view)} {sector.value} fund in the catalog")
        ordered, preference = self._order(candidates, trade_type)
        minimum = self.config.min_etf_daily_volume
        failed: list[str] = []
        for entry in ordered:
            fund = entry.ticker_for(view)
            assert fund is not None
            raw = adv_dollars(fund)
            if raw is None:
                failed.append(f"{fund} ({entry.leverage}x) has no volume data")
                continue
            adv = to_decimal(raw, f"average daily dollar volume of {fund}")
            if adv < minimum:
                failed.append(f"{fund} ({entry.leverage}x) ADV {_money(adv)} < {_money(minimum)}")
                continue
            skipped = f"; passed over: {', '.join(failed)}" if failed else ""
            reason = (
                f"{path} -> {fund} ({entry.leverage}x {_side_word(view)}, {preference}), "
                f"ADV {_money(adv)} >= {_money(minimum)}{skipped}"
            )
            return ETFSelection(
                ticker=fund,
                leverage=entry.leverage,
                tracks=entry.tracks,
                avg_daily_volume=adv,
                is_inverse=entry.is_inverse_ticker(fund),
                entry=entry,
                sector=sector,
                reason=reason,
            )
        raise NoInstrument(
            f"{path}; no leveraged ETF meets the {_money(minimum)} average daily dollar volume "
            f"minimum: {'; '.join(failed)}"
        )

    def _resolve(self, ticker: str, direction: Direction) -> tuple[Sector, Direction, str]:
        """Rule 1/2: the sector or index of ``ticker``, the view on it, and how it was found."""
        cfg = self.config
        entry = self.catalog.entry_for(ticker)
        if entry is not None:
            view = direction
            if entry.is_inverse_ticker(ticker):
                view = Direction.SHORT if direction is Direction.LONG else Direction.LONG
            path = f"{ticker} is a {entry.tracks} fund ({view.value} {entry.sector.value})"
            return entry.sector, view, path
        if ticker in INDEX_TICKERS and ticker not in cfg.sector_overrides:
            sector = INDEX_TICKERS[ticker]
            return sector, direction, f"{ticker} -> {sector.value} index"
        if ticker in cfg.sector_overrides or ticker in SECTOR_MAP:
            sector = cfg.sector_overrides.get(ticker) or SECTOR_MAP[ticker]
            path = f"{ticker} -> {sector.value}"
            if sector.is_index or cfg.etf_sector_mapping:
                return sector, direction, path
            if cfg.sector_fallback_index is None:
                raise NoInstrument(
                    f"{path}; sector mapping is off and no fallback index is configured"
                )
            fallback = cfg.sector_fallback_index
            return fallback, direction, f"{path}; sector mapping is off, using {fallback.value}"
        if cfg.unknown_ticker_index is not None:
            sector = cfg.unknown_ticker_index
            return sector, direction, f"{ticker} is not mapped, using {sector.value}"
        raise NoInstrument(
            f"{ticker} has no sector or index mapping for a leveraged ETF "
            "(add it to sector_overrides or set unknown_ticker_index)"
        )

    def _order(
        self, candidates: Sequence[EtfEntry], trade_type: TradeType
    ) -> tuple[list[EtfEntry], str]:
        """Rule 4: candidates in preference order (stable: ties keep catalog order)."""
        intraday = trade_type in (TradeType.SCALP, TradeType.DAY)
        if intraday and self.config.prefer_3x_for_day_trades:
            ordered = sorted(candidates, key=lambda e: -e.leverage)
            return ordered, f"{trade_type.value} trades prefer the highest leverage"
        ordered = sorted(candidates, key=lambda e: (abs(e.leverage - _TWO), e.leverage))
        note = "" if any(e.leverage == _TWO for e in candidates) else ", none listed"
        return ordered, f"{trade_type.value} trades prefer 2x{note}"
