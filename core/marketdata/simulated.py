"""A seeded, deterministic simulated market: minute bars, quotes and volume for a universe of
symbols, following the exchange calendar (holidays, early closes).

Model
-----
* **Daily skeleton.** For every session of the calendar a symbol gets an overnight log-return
  (20% of the daily variance) and an intraday log-return (the rest, plus the drift), drawn from a
  generator seeded by ``(seed, symbol, year)`` and indexed by the day of the year. Their running
  sum gives each session's open and close; the whole path is scaled so that the *anchor session*
  (by default the session at or before the clock's time when the market is built) opens at the
  symbol's ``start_price``. Early-close sessions get proportionally less intraday variance.
* **Minute path.** Inside a session the log-price is a Brownian bridge from that session's open
  to its close with the per-minute variance of the skeleton, so the joint path is exactly a
  geometric Brownian motion sampled each minute. It is drawn from a generator seeded by
  ``(seed, symbol, session date)``; a minute bar's high and low are exact draws of the bridge's
  maximum and minimum over that minute. Prices are rounded to cents, never below one cent.
* **Volume.** A U-shaped intraday profile (heavy at the open, lighter at midday, heaviest into
  the close) with log-normal noise per minute, scaled so a full session trades the symbol's
  ``adv`` times a session-level log-normal factor (mean 1). Early-close sessions trade in
  proportion to their length.

Because every value is a pure function of the seed, the symbol, the session and the anchor, the
same seed, universe and clock start give identical bars and quotes whatever is asked first or
how often. Sessions are generated on demand and cached.

History
-------
Daily bars are available for ``history_sessions`` sessions before the anchor session (300 by
default), intraday bars for ``intraday_history_sessions`` (20 by default); both run forward
without limit as the clock advances. Every daily bar is the aggregation of that session's minute
path (also for sessions older than the intraday window, which are generated but not served).

Time rules
----------
``bars`` returns completed bars only: ``end`` is capped at ``clock.now()``. ``quote`` uses the
close of the latest completed minute bar; from a session's close until one minute after the next
open it is the previous session's close.

Options
-------
Every symbol of the universe has listed options (:mod:`core.options.chain`: daily expiries for
SPY, QQQ and IWM, weeklies for the rest). ``quote``/``quote_sync`` also accept an OCC symbol
(padded or compact) and return a :class:`~core.domain.Quote` named by the compact symbol, with
bid/ask from :func:`core.options.pricing.option_quote` and ``last`` = mid. The model prices at
the underlying's current ``last`` (the quote above) and its realized volatility: the annualised
standard deviation of the log returns of the last 31 completed *daily* closes (30 returns, 252 a
year; daily closes carry the overnight moves, which minute bars would miss).
:meth:`SimulatedMarket.option_chain` and :meth:`SimulatedMarket.option_quote` give the full
:class:`~core.options.pricing.OptionQuote` (theo, iv, Greeks, modelled open interest and volume);
a symbol's quote and its row in the chain are the same at the same clock time.

``bars`` of an OCC symbol are the underlying's bars repriced by the same model (the realized
volatility as of each bar's start): open = the value at the underlying's open and the bar's
start, close = at its close and the bar's end, high/low = the extremes over the underlying's
high and low at both ends of the bar, on cents; volume = the contract's modelled daily volume
times the underlying bar's share of its nominal daily volume. They stop at the expiry close.

An OCC symbol on an underlying outside the universe, or expiring on a day its underlying lists
no options, raises :class:`UnknownSymbol`; a contract past its expiry close raises
:class:`~core.options.chain.ExpiredContract`, which is both an :class:`UnknownSymbol` (so a
caller marking positions skips it as it skips any symbol the market does not have) and a
:class:`ValidationError`. ``symbols()`` lists the underlyings only: contracts are derived from
them, not a fixed set.
"""

from __future__ import annotations

import hashlib
import math
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from core.domain import CENT, Bar, Quote, ValidationError, to_decimal, utc
from core.options.chain import (
    check_expiry,
    is_listed_expiry,
    modelled_open_interest,
    modelled_volume,
)
from core.options.chain import option_chain as build_option_chain
from core.options.occ import OptionContract, is_occ, parse_occ
from core.options.pricing import (
    DEFAULT_OPTION_MODEL,
    OptionModelConfig,
    OptionQuote,
    black_scholes,
    realized_volatility,
    time_to_expiry,
)
from core.options.pricing import option_quote as price_option
from core.options.selection import trading_session
from core.ports import Clock, MarketCalendar, UnknownSymbol

from .bars import (
    FAR_FUTURE,
    MINUTE,
    cents,
    check_limit,
    quote_prices,
    timeframe_minutes,
)
from .calendar import ExchangeCalendar, SessionClock, default_calendar

_FULL_SESSION_MINUTES = 390
_TRADING_DAYS_PER_YEAR = 252
#: Share of a day's price variance that happens overnight (between close and next open).
_OVERNIGHT_VARIANCE_SHARE = 0.2
#: Session-to-session volume dispersion (log-normal sigma) and minute-to-minute noise.
_SESSION_VOLUME_SIGMA = 0.2
_MINUTE_VOLUME_SIGMA = 0.35
#: Bounded caches: regenerating a session is cheap and deterministic, memory is not free.
_MINUTE_CACHE_SIZE = 2048
_BAR_CACHE_SIZE = 256
#: Daily closes behind an option's realized volatility (30 returns).
_REALIZED_VOL_CLOSES = 31


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Parameters of one simulated symbol.

    ``volatility`` and ``drift`` are annualised (0.25 = 25%/year, arithmetic drift of the GBM);
    ``adv`` is the average daily volume in shares of a full session; ``spread_bps`` is the full
    quoted spread in basis points of the last price (at least one cent each side is enforced).
    """

    symbol: str
    start_price: Decimal
    volatility: float
    drift: float = 0.0
    adv: int = 1_000_000
    spread_bps: Decimal = Decimal(2)

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.strip().upper():
            raise ValidationError(f"symbol must be non-empty upper case, got {self.symbol!r}")
        price = to_decimal(self.start_price, f"{self.symbol} start_price")
        spread = to_decimal(self.spread_bps, f"{self.symbol} spread_bps")
        if price <= 0:
            raise ValidationError(f"{self.symbol} start_price must be positive, got {price}")
        if spread < 0:
            raise ValidationError(f"{self.symbol} spread_bps must not be negative, got {spread}")
        if not (math.isfinite(self.volatility) and self.volatility >= 0):
            raise ValidationError(f"{self.symbol} volatility must be >= 0, got {self.volatility}")
        if not math.isfinite(self.drift):
            raise ValidationError(f"{self.symbol} drift must be finite, got {self.drift}")
        if isinstance(self.adv, bool) or not isinstance(self.adv, int) or self.adv <= 0:
            raise ValidationError(f"{self.symbol} adv must be a positive integer, got {self.adv!r}")
        object.__setattr__(self, "start_price", price)
        object.__setattr__(self, "spread_bps", spread)


def _spec(symbol: str, price: str, vol: float, drift: float, adv: int, spread: str) -> SymbolSpec:
    return SymbolSpec(symbol, Decimal(price), vol, drift, adv, Decimal(spread))


#: Liquid US names and ETFs with plausible late-2020s parameters. Leveraged ETFs carry their
#: multiple of the underlying's volatility, and the inverse ones a negative drift, so they show
#: the usual decay.
DEFAULT_UNIVERSE: tuple[SymbolSpec, ...] = (
    _spec("AAPL", "230.00", 0.28, 0.08, 55_000_000, "2"),
    _spec("MSFT", "420.00", 0.25, 0.08, 22_000_000, "2"),
    _spec("NVDA", "140.00", 0.50, 0.15, 250_000_000, "2"),
    _spec("AMZN", "200.00", 0.33, 0.10, 45_000_000, "2"),
    _spec("GOOGL", "170.00", 0.30, 0.08, 28_000_000, "2"),
    _spec("META", "580.00", 0.38, 0.10, 14_000_000, "3"),
    _spec("TSLA", "250.00", 0.60, 0.05, 95_000_000, "3"),
    _spec("JPM", "230.00", 0.22, 0.07, 9_000_000, "3"),
    _spec("XOM", "115.00", 0.25, 0.04, 15_000_000, "3"),
    _spec("SPY", "580.00", 0.16, 0.07, 60_000_000, "1"),
    _spec("QQQ", "500.00", 0.20, 0.09, 35_000_000, "1"),
    _spec("IWM", "220.00", 0.22, 0.05, 30_000_000, "1.5"),
    _spec("DIA", "420.00", 0.15, 0.06, 3_500_000, "2"),
    _spec("TQQQ", "75.00", 0.60, 0.15, 60_000_000, "3"),
    _spec("SQQQ", "8.00", 0.60, -0.35, 100_000_000, "12"),
    _spec("SOXL", "30.00", 1.10, 0.05, 80_000_000, "5"),
    _spec("SOXS", "20.00", 1.10, -0.60, 90_000_000, "8"),
    _spec("SPXL", "160.00", 0.48, 0.12, 4_000_000, "4"),
    _spec("SPXS", "7.00", 0.48, -0.30, 20_000_000, "14"),
    _spec("UVXY", "30.00", 0.95, -0.80, 25_000_000, "8"),
)


@dataclass(slots=True)
class _Path:
    """A symbol's daily skeleton over every calendar session."""

    spec: SymbolSpec
    key: int
    log_open: np.ndarray
    log_close: np.ndarray
    minute_sigma: np.ndarray


@dataclass(frozen=True, slots=True)
class _Minutes:
    """One symbol-session of minute bars, prices in integer cents."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class SimulatedMarket:
    """Implements ``core.ports.MarketData`` with a seeded simulation (see the module docstring).

    ``average_daily_volume`` is the mean volume of the last ``adv_sessions`` (20) completed
    sessions, so it moves with the simulated tape like a real adapter's figure would.
    """

    def __init__(
        self,
        clock: Clock,
        calendar: ExchangeCalendar | None = None,
        universe: Iterable[SymbolSpec] = DEFAULT_UNIVERSE,
        *,
        seed: int = 7,
        anchor: date | None = None,
        history_sessions: int = 300,
        intraday_history_sessions: int = 20,
        adv_sessions: int = 20,
        option_model: OptionModelConfig = DEFAULT_OPTION_MODEL,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        for name, value in (
            ("history_sessions", history_sessions),
            ("intraday_history_sessions", intraday_history_sessions),
            ("adv_sessions", adv_sessions),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        exchange = calendar or default_calendar()
        self.clock: Clock = clock
        # Typed as the port says (the protocol attribute is invariant); ``exchange`` is used
        # below for the session list, which only ExchangeCalendar offers.
        self.calendar: MarketCalendar = exchange
        self._exchange = exchange
        #: How option contracts on the universe are priced and quoted.
        self.option_model = option_model
        self.seed = seed
        self._specs: dict[str, SymbolSpec] = {}
        for spec in universe:
            if spec.symbol in self._specs:
                raise ValueError(f"{spec.symbol} appears twice in the universe")
            self._specs[spec.symbol] = spec
        if not self._specs:
            raise ValueError("the universe is empty")
        self._symbols = frozenset(self._specs)

        # Plain lists of the calendar's sessions: the hot paths bisect these.
        self._sessions: list[date] = exchange.sessions()
        self._opens: list[datetime] = [exchange.session_open(s) for s in self._sessions]
        self._closes: list[datetime] = [exchange.session_close(s) for s in self._sessions]
        self._index = {s: i for i, s in enumerate(self._sessions)}
        self._n_minutes = np.array(
            [(c - o) // MINUTE for o, c in zip(self._opens, self._closes, strict=True)],
            dtype=np.int64,
        )
        # Clock minute of each open since UTC midnight: places the clock-aligned buckets.
        self._open_minute = np.array([o.hour * 60 + o.minute for o in self._opens], np.int64)
        first_year = self._sessions[0].year
        self._year_row = np.array([s.year - first_year for s in self._sessions], np.int64)
        self._day_row = np.array([s.timetuple().tm_yday - 1 for s in self._sessions], np.int64)
        self._n_years = self._sessions[-1].year - first_year + 1

        if anchor is None:
            anchor = exchange.previous_session(utc(clock.now()))
        if anchor not in self._index:
            raise ValueError(f"anchor {anchor} is not a session of the calendar")
        self.anchor: date = anchor
        a = self._index[anchor]
        self._first_daily = max(0, a - history_sessions)
        self._first_intraday = max(0, a - intraday_history_sessions)
        self._adv_sessions = adv_sessions

        self._lock = threading.RLock()
        self._paths: dict[str, _Path] = {}
        self._minutes: OrderedDict[tuple[str, int], _Minutes] = OrderedDict()
        self._daily: dict[tuple[str, int], tuple[int, int, int, int, int]] = {}
        self._daily_bars: dict[tuple[str, int], Bar] = {}
        self._bar_cache: OrderedDict[tuple[str, int, int], tuple[list[Bar], list[datetime]]] = (
            OrderedDict()
        )
        self._adv_cache: dict[str, tuple[int, Decimal]] = {}
        #: symbol -> (valid from, valid until, bid, ask, last): a quote is recomputed only when
        #: the clock leaves the minute (or the closed period) it was computed for.
        self._quote_cache: dict[str, tuple[datetime, datetime, Decimal, Decimal, Decimal]] = {}
        #: (underlying, index of the last completed session) -> realized volatility.
        self._realized_vol_cache: dict[tuple[str, int], float | None] = {}

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def default(cls, clock: Clock, seed: int = 7, **kwargs: Any) -> SimulatedMarket:
        """The default universe on ``clock`` with the default XNYS calendar."""
        return cls(clock, default_calendar(), DEFAULT_UNIVERSE, seed=seed, **kwargs)

    @classmethod
    def demo(cls, speed: float = 60.0, seed: int = 7, **kwargs: Any) -> SimulatedMarket:
        """The default universe on a :class:`SessionClock` running ``speed`` times real time
        (starting in the current session, or at the open of the most recent one)."""
        calendar = default_calendar()
        clock = SessionClock(calendar, speed=speed)
        return cls(clock, calendar, DEFAULT_UNIVERSE, seed=seed, **kwargs)

    # -- MarketData port --------------------------------------------------------------------
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def spec(self, symbol: str) -> SymbolSpec:
        """The parameters of ``symbol``; raises :class:`UnknownSymbol`."""
        try:
            return self._specs[symbol]
        except KeyError:
            raise UnknownSymbol(f"unknown symbol {symbol!r}") from None

    async def quote(self, symbol: str) -> Quote:
        """Bid/ask/last at ``clock.now()`` (see :meth:`quote_sync`)."""
        return self.quote_sync(symbol)

    def quote_sync(self, symbol: str) -> Quote:
        """Synchronous :meth:`quote`: ``last`` is the close of the latest completed minute bar
        (the previous session's close outside sessions and during a session's first minute),
        bid/ask are ``last`` -/+ half the symbol's spread on whole cents, ``at`` is now.

        An OCC option symbol is quoted by :meth:`option_quote` (``last`` = mid, the symbol in
        its compact form)."""
        now = self.clock.now()
        cached = self._quote_cache.get(symbol)
        if cached is not None and cached[0] <= now < cached[1]:
            return Quote(symbol, cached[2], cached[3], cached[4], now)
        if symbol not in self._specs and is_occ(symbol):
            option = self.option_quote(symbol)
            return Quote(option.symbol, option.bid, option.ask, option.last, option.at)
        return self._quote_slow(symbol, utc(now))

    async def bars(
        self,
        symbol: str,
        timeframe: str = "1Min",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Completed bars, oldest first (see :meth:`bars_sync`)."""
        return self.bars_sync(symbol, timeframe, start=start, end=end, limit=limit)

    def bars_sync(
        self,
        symbol: str,
        timeframe: str = "1Min",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Bars with ``start < bar.end <= end``, oldest first, the last ``limit`` of them.

        ``end`` defaults to, and is capped at, ``clock.now()``: the simulation never hands out
        a bar that has not finished. Raises ``ValueError`` for an unknown timeframe and
        :class:`UnknownSymbol` for an unknown symbol. An OCC symbol gets the contract's bars
        modelled from its underlying's (see the module docstring), up to its expiry close.
        """
        minutes = timeframe_minutes(timeframe)
        check_limit(limit)
        if symbol not in self._specs and is_occ(symbol):
            return self._option_bars(symbol, timeframe, start, end, limit)
        path = self._path(symbol)
        now = utc(self.clock.now())
        end = now if end is None else min(utc(end), now)
        start = None if start is None else utc(start)
        if limit == 0 or (start is not None and start >= end):
            return []
        with self._lock:
            if minutes is None:
                return self._daily_range(path, start, end, limit)
            return self._intraday_range(path, minutes, start, end, limit)

    async def average_daily_volume(self, symbol: str) -> Decimal:
        """Mean volume (shares) of the last 20 completed sessions (see the class docstring)."""
        return self.average_daily_volume_sync(symbol)

    def average_daily_volume_sync(self, symbol: str) -> Decimal:
        """Synchronous :meth:`average_daily_volume`, rounded to whole shares."""
        path = self._path(symbol)
        last = bisect_right(self._closes, utc(self.clock.now())) - 1
        cached = self._adv_cache.get(symbol)
        if cached is not None and cached[0] == last:
            return cached[1]
        with self._lock:
            first = max(0, last - self._adv_sessions + 1)
            volumes = [self._daily_ohlcv(path, i)[4] for i in range(first, last + 1)]
            adv = (
                Decimal(sum(volumes)) / Decimal(len(volumes)) if volumes else Decimal(path.spec.adv)
            ).quantize(Decimal(1), ROUND_HALF_EVEN)
            self._adv_cache[symbol] = (last, adv)
            return adv

    # -- options ----------------------------------------------------------------------------
    def realized_volatility(self, underlying: str) -> float | None:
        """Annualised volatility of the last 31 completed daily closes of ``underlying``
        (``None`` with fewer than 3); raises :class:`UnknownSymbol`."""
        return self._realized_vol_at(underlying, utc(self.clock.now()))

    def _realized_vol_at(self, underlying: str, ts: datetime) -> float | None:
        """:meth:`realized_volatility` from the sessions that closed by ``ts``."""
        path = self._path(underlying)
        last = bisect_right(self._closes, ts) - 1
        key = (underlying, last)
        if key in self._realized_vol_cache:
            return self._realized_vol_cache[key]
        bars: list[Bar] = []
        if last >= 0:
            with self._lock:
                bars = self._daily_range(path, None, self._closes[last], _REALIZED_VOL_CLOSES)
        vol = realized_volatility([bar.close for bar in bars], _TRADING_DAYS_PER_YEAR)
        self._realized_vol_cache[key] = vol
        return vol

    def _listed_contract(self, symbol: str) -> OptionContract:
        """The contract ``symbol`` names; :class:`UnknownSymbol` if its underlying is not in
        the universe or does not list its expiry."""
        contract = parse_occ(symbol)
        self.spec(contract.underlying)
        if not is_listed_expiry(contract.underlying, contract.expiry, self._exchange):
            raise UnknownSymbol(
                f"unknown option {symbol!r}: {contract.underlying} lists no options "
                f"expiring {contract.expiry}"
            )
        return contract

    def _option_bars(
        self,
        symbol: str,
        timeframe: str,
        start: datetime | None,
        end: datetime | None,
        limit: int | None,
    ) -> list[Bar]:
        contract = self._listed_contract(symbol)
        expiry_close = self._exchange.session_close(contract.expiry)
        end = expiry_close if end is None else min(utc(end), expiry_close)
        underlying = self.bars_sync(
            contract.underlying, timeframe, start=start, end=end, limit=limit
        )
        return [self._option_bar(contract, bar) for bar in underlying]

    def _option_bar(self, contract: OptionContract, bar: Bar) -> Bar:
        """A contract's bar priced from its underlying's bar: the model value at the bar's
        open (underlying open, bar start) and close (underlying close, bar end); high and low
        the extremes over the underlying's high and low at both ends of the bar."""
        model = self.option_model
        rv = self._realized_vol_at(contract.underlying, bar.start)
        k = float(contract.strike)

        def value(spot: Decimal, ts: datetime) -> Decimal:
            s = float(spot)
            t = time_to_expiry(ts, contract.expiry, self._exchange)
            iv = model.implied_vol(rv, s, k)
            theo = black_scholes(s, k, t, model.rate, iv, contract.right, model.dividend_yield)
            return Decimal(repr(theo)).quantize(CENT, ROUND_HALF_EVEN)

        o, c = value(bar.open, bar.start), value(bar.close, bar.end)
        extremes = [value(p, ts) for p in (bar.high, bar.low) for ts in (bar.start, bar.end)]
        session = self._exchange.session_date(bar.start) or contract.expiry
        dte = (contract.expiry - session).days
        daily = modelled_volume(contract.underlying, contract.strike, bar.close, dte)
        share = float(bar.volume) / self.spec(contract.underlying).adv
        return Bar(
            contract.symbol,
            bar.start,
            bar.end,
            o,
            max(o, c, *extremes),
            min(o, c, *extremes),
            c,
            Decimal(round(daily * share)),
        )

    def option_quote(self, symbol: str) -> OptionQuote:
        """The modelled quote of the OCC contract ``symbol`` at ``clock.now()``.

        Raises :class:`ValidationError` if ``symbol`` is not an OCC symbol,
        :class:`UnknownSymbol` if its underlying is not in the universe or does not list that
        expiry, :class:`~core.options.chain.ExpiredContract` (both) once it has expired."""
        contract = self._listed_contract(symbol)
        now = utc(self.clock.now())
        check_expiry(contract.underlying, contract.expiry, now, self._exchange)
        spot = self.quote_sync(contract.underlying).last
        session = trading_session(now, self._exchange)
        dte = (contract.expiry - session).days
        return price_option(
            contract,
            spot,
            now,
            self.realized_volatility(contract.underlying),
            self._exchange,
            self.option_model,
            open_interest=modelled_open_interest(contract.underlying, contract.strike, spot, dte),
            volume=modelled_volume(contract.underlying, contract.strike, spot, dte),
        )

    def option_chain(
        self, underlying: str, expiry: date | None = None, n_strikes: int = 10
    ) -> list[OptionQuote]:
        """Calls and puts of ``underlying`` for ``expiry`` (default: the nearest one not yet
        expired), ``n_strikes`` strikes each side of spot, at ``clock.now()``
        (:func:`core.options.chain.option_chain`). Raises :class:`UnknownSymbol` for an
        underlying outside the universe, :class:`ValidationError` for an expiry it does not
        list and :class:`~core.options.chain.ExpiredContract` for one that has expired."""
        self.spec(underlying)
        now = utc(self.clock.now())
        return build_option_chain(
            underlying,
            self.quote_sync(underlying).last,
            trading_session(now, self._exchange),
            now,
            self.realized_volatility(underlying),
            self._exchange,
            self.option_model,
            n_strikes=n_strikes,
            expiry=expiry,
        )

    # -- quotes -----------------------------------------------------------------------------
    def _quote_slow(self, symbol: str, now: datetime) -> Quote:
        path = self._path(symbol)
        i = bisect_right(self._opens, now) - 1
        if i < 0:
            raise ValueError(f"{now} is before the first session of the calendar")
        with self._lock:
            if now < self._closes[i]:
                done = (now - self._opens[i]) // MINUTE  # completed minutes in this session
                valid_from = self._opens[i] + done * MINUTE
                valid_until = valid_from + MINUTE
                if done > 0:
                    last_cents = int(self._session_minutes(path, i).close[done - 1])
                elif i > 0:
                    last_cents = int(self._session_minutes(path, i - 1).close[-1])
                else:  # the calendar's very first session has no previous close
                    last_cents = int(self._session_minutes(path, i).open[0])
            else:
                last_cents = int(self._session_minutes(path, i).close[-1])
                valid_from = self._closes[i]
                valid_until = self._opens[i + 1] if i + 1 < len(self._opens) else FAR_FUTURE
            last = cents(last_cents)
            bid, ask = quote_prices(last, path.spec.spread_bps)
            self._quote_cache[symbol] = (valid_from, valid_until, bid, ask, last)
        return Quote(symbol, bid, ask, last, now)

    # -- bar selection ----------------------------------------------------------------------
    def _daily_range(
        self, path: _Path, start: datetime | None, end: datetime, limit: int | None
    ) -> list[Bar]:
        hi = bisect_right(self._closes, end) - 1  # last session closed by ``end``
        lo = self._first_daily
        if start is not None:
            lo = max(lo, bisect_right(self._closes, start))  # first session closing after start
        if limit is not None:
            lo = max(lo, hi - limit + 1)
        return [self._daily_bar(path, i) for i in range(lo, hi + 1)]

    def _intraday_range(
        self, path: _Path, minutes: int, start: datetime | None, end: datetime, limit: int | None
    ) -> list[Bar]:
        hi = bisect_right(self._opens, end) - 1  # last session opened by ``end``
        lo = self._first_intraday
        if start is not None:
            lo = max(lo, bisect_right(self._closes, start))
        chunks: list[list[Bar]] = []
        count = 0
        # Walk back from the newest session so a ``limit`` query touches only what it needs.
        for i in range(hi, lo - 1, -1):
            bars, ends = self._session_bars(path, i, minutes)
            a = 0 if start is None else bisect_right(ends, start)
            b = bisect_right(ends, end)
            if b > a:
                chunks.append(bars[a:b])
                count += b - a
            if limit is not None and count >= limit:
                break
        out = [bar for chunk in reversed(chunks) for bar in chunk]
        return out[-limit:] if limit is not None else out

    def _session_bars(self, path: _Path, i: int, minutes: int) -> tuple[list[Bar], list[datetime]]:
        """All of session ``i``'s bars of ``minutes`` length (future ones included: callers
        cut at ``end``) and their end times."""
        key = (path.spec.symbol, i, minutes)
        cached = self._bar_cache.get(key)
        if cached is not None:
            self._bar_cache.move_to_end(key)
            return cached
        m = self._session_minutes(path, i)
        n = int(self._n_minutes[i])
        s_open, s_close = self._opens[i], self._closes[i]
        if minutes == 1:
            o, h, lo, c, v = m.open, m.high, m.low, m.close, m.volume
            offsets = np.arange(n + 1, dtype=np.int64)
        else:
            # Buckets sit on the clock grid: bucket of minute k = (minute of day + k) // size.
            first = int(self._open_minute[i])
            bucket = (first + np.arange(n, dtype=np.int64)) // minutes
            starts = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1))
            o = m.open[starts]
            c = m.close[np.concatenate((starts[1:], [n])) - 1]
            h = np.maximum.reduceat(m.high, starts)
            lo = np.minimum.reduceat(m.low, starts)
            v = np.add.reduceat(m.volume, starts)
            offsets = np.concatenate((starts, [n]))
        symbol = path.spec.symbol
        times = [s_open + int(k) * MINUTE for k in offsets]
        times[-1] = s_close
        rows = zip(o.tolist(), h.tolist(), lo.tolist(), c.tolist(), v.tolist(), strict=True)
        bars = [
            Bar(symbol, times[j], times[j + 1], cents(a), cents(b), cents(d), cents(e), Decimal(f))
            for j, (a, b, d, e, f) in enumerate(rows)
        ]
        result = (bars, times[1:])
        self._bar_cache[key] = result
        if len(self._bar_cache) > _BAR_CACHE_SIZE:
            self._bar_cache.popitem(last=False)
        return result

    def _daily_bar(self, path: _Path, i: int) -> Bar:
        key = (path.spec.symbol, i)
        bar = self._daily_bars.get(key)
        if bar is None:
            o, h, lo, c, v = self._daily_ohlcv(path, i)
            bar = Bar(
                path.spec.symbol,
                self._opens[i],
                self._closes[i],
                cents(o),
                cents(h),
                cents(lo),
                cents(c),
                Decimal(v),
            )
            self._daily_bars[key] = bar
        return bar

    def _daily_ohlcv(self, path: _Path, i: int) -> tuple[int, int, int, int, int]:
        key = (path.spec.symbol, i)
        daily = self._daily.get(key)
        if daily is None:
            self._session_minutes(path, i)  # stores the aggregate as a side effect
            daily = self._daily[key]
        return daily

    # -- generation -------------------------------------------------------------------------
    def _path(self, symbol: str) -> _Path:
        path = self._paths.get(symbol)
        if path is not None:
            return path
        spec = self.spec(symbol)
        with self._lock:
            path = self._paths.get(symbol)
            if path is None:
                path = self._build_path(spec)
                self._paths[symbol] = path
            return path

    def _build_path(self, spec: SymbolSpec) -> _Path:
        key = _symbol_key(spec.symbol)
        # One block of draws per calendar year, row = day of the year: a session's draws do not
        # depend on how far the calendar reaches in either direction.
        first_year = self._sessions[0].year
        blocks = np.stack(
            [
                np.random.default_rng([self.seed, key, first_year + y]).standard_normal((366, 2))
                for y in range(self._n_years)
            ]
        )
        z = blocks[self._year_row, self._day_row]
        sigma2_day = spec.volatility**2 / _TRADING_DAYS_PER_YEAR
        share = self._n_minutes / _FULL_SESSION_MINUTES
        overnight = math.sqrt(sigma2_day * _OVERNIGHT_VARIANCE_SHARE) * z[:, 0]
        intraday_var = sigma2_day * (1 - _OVERNIGHT_VARIANCE_SHARE) * share
        log_drift = (spec.drift - spec.volatility**2 / 2) / _TRADING_DAYS_PER_YEAR * share
        intraday = log_drift + np.sqrt(intraday_var) * z[:, 1]
        # log open_i = sum of all earlier returns + overnight_i; then scale at the anchor.
        before = np.concatenate(([0.0], np.cumsum(overnight + intraday)[:-1]))
        log_open = before + overnight
        log_open += math.log(spec.start_price) - log_open[self._index[self.anchor]]
        log_close = log_open + intraday
        minute_sigma = np.sqrt(intraday_var / self._n_minutes)
        return _Path(spec, key, log_open, log_close, minute_sigma)

    def _session_minutes(self, path: _Path, i: int) -> _Minutes:
        key = (path.spec.symbol, i)
        cached = self._minutes.get(key)
        if cached is not None:
            self._minutes.move_to_end(key)
            return cached
        m = self._generate_session(path, i)
        self._minutes[key] = m
        if len(self._minutes) > _MINUTE_CACHE_SIZE:
            self._minutes.popitem(last=False)
        self._daily[key] = (
            int(m.open[0]),
            int(m.high.max()),
            int(m.low.min()),
            int(m.close[-1]),
            int(m.volume.sum()),
        )
        return m

    def _generate_session(self, path: _Path, i: int) -> _Minutes:
        n = int(self._n_minutes[i])
        rng = np.random.default_rng([self.seed, path.key, self._sessions[i].toordinal()])
        z = rng.standard_normal(n)
        u = rng.random((2, n))
        volume_z = rng.standard_normal(n)
        session_z = float(rng.standard_normal())

        # Brownian bridge in log-price from the skeleton's open to its close.
        sigma = float(path.minute_sigma[i])
        a, b = float(path.log_open[i]), float(path.log_close[i])
        walk = np.concatenate(([0.0], np.cumsum(z * sigma)))
        t = np.arange(n + 1) / n
        logp = a + t * (b - a) + walk - t * walk[-1]
        x0, x1 = logp[:-1], logp[1:]
        # Exact max/min of a Brownian bridge between x0 and x1 over one minute.
        var = sigma * sigma
        spread_hi = np.sqrt((x1 - x0) ** 2 - 2.0 * var * np.log1p(-u[0]))
        spread_lo = np.sqrt((x1 - x0) ** 2 - 2.0 * var * np.log1p(-u[1]))
        log_high = (x0 + x1 + spread_hi) / 2.0
        log_low = (x0 + x1 - spread_lo) / 2.0

        price = np.maximum(np.rint(np.exp(logp) * 100.0), 1).astype(np.int64)
        o, c = price[:-1], price[1:]
        h = np.maximum(np.rint(np.exp(log_high) * 100.0).astype(np.int64), np.maximum(o, c))
        lo = np.maximum(
            np.minimum(np.rint(np.exp(log_low) * 100.0).astype(np.int64), np.minimum(o, c)), 1
        )

        weights = _volume_profile(n) * np.exp(
            _MINUTE_VOLUME_SIGMA * volume_z - _MINUTE_VOLUME_SIGMA**2 / 2
        )
        session_volume = (
            path.spec.adv
            * (n / _FULL_SESSION_MINUTES)
            * math.exp(_SESSION_VOLUME_SIGMA * session_z - _SESSION_VOLUME_SIGMA**2 / 2)
        )
        v = np.maximum(np.rint(weights / weights.sum() * session_volume), 1).astype(np.int64)
        return _Minutes(o, h, lo, c, v)


def _volume_profile(n: int) -> np.ndarray:
    """Relative volume of each of ``n`` minutes: a U (parabola) plus a burst right after the
    open and a larger one into the close (closing auction imbalance)."""
    x = (np.arange(n) + 0.5) / n
    minutes_from_open = np.arange(n)
    minutes_to_close = n - 1 - minutes_from_open
    return (
        1.0
        + 2.0 * (2.0 * x - 1.0) ** 2
        + 2.5 * np.exp(-minutes_from_open / 8.0)
        + 3.5 * np.exp(-minutes_to_close / 6.0)
    )


def _symbol_key(symbol: str) -> int:
    """A stable 64-bit number for ``symbol`` (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")
