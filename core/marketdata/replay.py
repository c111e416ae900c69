"""Replay recorded OHLCV bars from a CSV or Parquet file as market data.

File format
-----------
One row per bar, with these columns (names are case-insensitive, extra columns are ignored):

``timestamp``
    The bar's *start*, ISO 8601 with an explicit UTC offset or ``Z``
    (``2026-11-20T14:30:00Z``, ``2026-11-20T09:30:00-05:00``). Naive timestamps are rejected:
    guessing a time zone is how a replay ends up an hour off. In Parquet the column may also be
    a time-zone-aware timestamp type (a naive timestamp type is rejected too).
``symbol``
    The ticker, e.g. ``AAPL`` (stored upper case).
``open``, ``high``, ``low``, ``close``
    Positive prices with ``low <= open, close <= high``.
``volume``
    Shares traded, ``>= 0``.

Numbers are read as text and parsed to :class:`~decimal.Decimal` exactly, never through float
(Parquet numeric columns are cast to text by Arrow, which prints the shortest representation
that round-trips, so ``190.23`` stays ``190.23``). Rows may come in any order; a
``(symbol, timestamp)`` pair may appear only once.

Every bar in a file has the same length, whole minutes and less than a day (``1Min``, ``5Min``,
...). It is detected as the smallest gap between two consecutive bars of a symbol, or given with
``interval=``; bars of one symbol closer together than that are an error. Coarser timeframes
are aggregated from the file's bars (see :mod:`core.marketdata.bars`), so a timeframe must be a
multiple of the interval; ``1Day`` is always available (regular-session bars only).

Any problem raises :class:`ReplayDataError` naming the file and the line (CSV, counting the
header as line 1) or the row (Parquet, 1-based).

Time
----
The market runs on a :class:`ReplayClock` that starts at the first bar's start unless told
otherwise. It stands still until :meth:`ReplayMarket.advance`, :meth:`~ReplayMarket.step` or
:meth:`~ReplayMarket.advance_to` move it (tests, back-tests), or, given a ``speed``, runs that
many times faster than the wall clock (a worker replaying a recorded day). Quotes and bars
follow the same rules as :class:`~core.marketdata.simulated.SimulatedMarket`: only bars with
``end <= now`` are visible, and ``last`` is the close of the symbol's latest completed bar
(before its first bar completes, the open of that first bar, the earliest price the file knows).
"""

from __future__ import annotations

import csv
import threading
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any

from core.domain import Bar, Quote, to_decimal, utc
from core.ports import Clock, MarketCalendar, UnknownSymbol

from .bars import (
    FAR_FUTURE,
    FAR_PAST,
    MINUTE,
    TIMEFRAMES,
    aggregate,
    check_limit,
    quote_prices,
    select,
    timeframe_minutes,
)
from .calendar import EASTERN, ManualClock, WallClock, default_calendar

COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
SAMPLE_PATH = Path(__file__).parent / "data" / "sample_bars.csv"


class ReplayDataError(ValueError):
    """A replay file that cannot be used; the message names the file and line or row."""


@dataclass(frozen=True, slots=True)
class BarFile:
    """Validated bars from one file, sorted by (symbol, start), and their common interval."""

    bars: tuple[Bar, ...]
    interval: timedelta
    source: str


# ---------------------------------------------------------------------------------------------
# Reading and validation
# ---------------------------------------------------------------------------------------------


def read_bars(path: str | Path, *, interval: str | timedelta | None = None) -> BarFile:
    """Read and validate a ``.csv`` or ``.parquet`` bar file (see the module docstring)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows, where = _csv_rows(path), "line"
    elif suffix in (".parquet", ".pq"):
        rows, where = _parquet_rows(path), "row"
    else:
        raise ReplayDataError(
            f"{path.name}: unsupported file type {suffix!r}; use .csv or .parquet"
        )
    return parse_rows(rows, source=path.name, where=where, interval=interval)


def parse_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    source: str = "bars",
    where: str = "row",
    interval: str | timedelta | None = None,
) -> BarFile:
    """Validate ``(number, {column: value})`` rows into a :class:`BarFile`.

    ``where`` is the word used in messages before the number (``line`` or ``row``).
    """
    given = _interval(interval) if interval is not None else None
    seen: dict[tuple[str, datetime], int] = {}
    parsed: list[tuple[Bar, int]] = []
    for number, row in rows:
        label = f"{source} {where} {number}"
        bar = _parse_row(row, label, given or MINUTE)
        key = (bar.symbol, bar.start)
        if key in seen:
            raise ReplayDataError(
                f"{label}: duplicate bar for {bar.symbol} at {bar.start.isoformat()} "
                f"(first at {where} {seen[key]})"
            )
        seen[key] = number
        parsed.append((bar, number))
    if not parsed:
        raise ReplayDataError(f"{source}: no bars")
    parsed.sort(key=lambda item: (item[0].symbol, item[0].start))

    # The interval: the smallest gap between consecutive bars of one symbol.
    smallest: tuple[timedelta, int] | None = None
    for (prev, _), (bar, number) in pairwise(parsed):
        if bar.symbol != prev.symbol:
            continue
        gap = bar.start - prev.start
        if smallest is None or gap < smallest[0]:
            smallest = (gap, number)
    if given is None:
        if smallest is None:
            raise ReplayDataError(
                f"{source}: cannot detect the bar interval with one bar per symbol; "
                "pass interval= (e.g. '1Min')"
            )
        gap, number = smallest
        if gap % MINUTE or gap >= timedelta(days=1):
            raise ReplayDataError(
                f"{source} {where} {number}: bars {gap} apart; the bar interval must be a whole "
                "number of minutes, less than a day"
            )
        detected = gap
    else:
        if smallest is not None and smallest[0] < given:
            raise ReplayDataError(
                f"{source} {where} {smallest[1]}: bar starts {smallest[0]} after the previous bar "
                f"of the same symbol, less than the {given} interval"
            )
        detected = given
    bars = tuple(
        bar if bar.end - bar.start == detected else _with_end(bar, bar.start + detected)
        for bar, _ in parsed
    )
    return BarFile(bars, detected, source)


def _interval(value: str | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        interval = value
    else:
        minutes = TIMEFRAMES.get(value)
        if minutes is None:
            intraday = ", ".join(k for k, v in TIMEFRAMES.items() if v is not None)
            raise ValueError(f"interval must be one of {intraday} or a timedelta, got {value!r}")
        interval = minutes * MINUTE
    if interval <= timedelta(0) or interval % MINUTE or interval >= timedelta(days=1):
        raise ValueError(f"interval must be whole minutes, less than a day, got {interval}")
    return interval


def _with_end(bar: Bar, end: datetime) -> Bar:
    return Bar(bar.symbol, bar.start, end, bar.open, bar.high, bar.low, bar.close, bar.volume)


def _parse_row(row: Mapping[str, Any], label: str, interval: timedelta) -> Bar:
    start = _timestamp(row.get("timestamp"), label)
    symbol = _text(row.get("symbol"), "symbol", label).upper()
    prices = {}
    for column in ("open", "high", "low", "close"):
        price = _number(row.get(column), column, label)
        if price <= 0:
            raise ReplayDataError(f"{label}: {column} must be positive, got {price}")
        prices[column] = price
    o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
    if h < lo:
        raise ReplayDataError(f"{label}: high {h} is below low {lo}")
    for column, price in (("open", o), ("close", c)):
        if not lo <= price <= h:
            raise ReplayDataError(f"{label}: {column} {price} is outside the bar's range {lo}..{h}")
    volume = _number(row.get("volume"), "volume", label)
    if volume < 0:
        raise ReplayDataError(f"{label}: volume must not be negative, got {volume}")
    return Bar(symbol, start, start + interval, o, h, lo, c, volume)


def _text(value: Any, column: str, label: str) -> str:
    if value is None or not str(value).strip():
        raise ReplayDataError(f"{label}: {column} is empty")
    return str(value).strip()


def _number(value: Any, column: str, label: str) -> Decimal:
    text = _text(value, column, label)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ReplayDataError(f"{label}: {column} {text!r} is not a number") from None
    if not number.is_finite():
        raise ReplayDataError(f"{label}: {column} {text!r} is not a finite number")
    return number


def _timestamp(value: Any, label: str) -> datetime:
    if isinstance(value, datetime):
        ts = value
    else:
        text = _text(value, "timestamp", label)
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            raise ReplayDataError(
                f"{label}: timestamp {text!r} is not ISO 8601 (e.g. 2026-11-20T14:30:00Z)"
            ) from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ReplayDataError(
            f"{label}: timestamp {value!s} has no UTC offset; write it with Z or +HH:MM"
        )
    return utc(ts)


def _check_columns(names: Sequence[str], source: str) -> dict[str, str]:
    """Map our column names to the file's (case-insensitive); refuse missing ones."""
    by_lower = {name.strip().lower(): name for name in names}
    missing = [c for c in COLUMNS if c not in by_lower]
    if missing:
        raise ReplayDataError(
            f"{source}: missing column(s) {', '.join(missing)}; need {', '.join(COLUMNS)}"
        )
    return {c: by_lower[c] for c in COLUMNS}


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        names = _check_columns(reader.fieldnames or [], path.name)
        for raw in reader:
            yield reader.line_num, {ours: raw.get(theirs) for ours, theirs in names.items()}


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa  # only Parquet replays need Arrow
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ReplayDataError(f"{path.name}: not a readable Parquet file ({exc})") from None
    names = _check_columns(table.column_names, path.name)
    columns: dict[str, list[Any]] = {}
    for ours, theirs in names.items():
        col = table.column(theirs)
        if ours == "timestamp" and pa.types.is_timestamp(col.type):
            if col.type.tz is None:
                raise ReplayDataError(
                    f"{path.name}: column timestamp has no time zone ({col.type}); "
                    "store UTC-aware timestamps"
                )
            # Microseconds are what datetime holds; whole-minute bars lose nothing.
            col = pc.cast(col, pa.timestamp("us", tz=col.type.tz))
            columns[ours] = col.to_pylist()
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            columns[ours] = col.to_pylist()
        else:
            # Numbers become text here so Decimal sees what the writer meant, not a binary float.
            try:
                columns[ours] = pc.cast(col, pa.string()).to_pylist()
            except pa.ArrowException as exc:
                raise ReplayDataError(
                    f"{path.name}: column {ours} of type {col.type} cannot be read ({exc})"
                ) from None
    for i in range(table.num_rows):
        yield i + 1, {c: columns[c][i] for c in COLUMNS}


# ---------------------------------------------------------------------------------------------
# The clock and the market
# ---------------------------------------------------------------------------------------------


class ReplayClock:
    """Replay time: still unless moved (``speed=None``), or running ``speed`` times faster than
    ``wall`` from wherever it was last set. ``set``/``advance`` work in both modes."""

    def __init__(self, start: datetime, speed: float | None = None, wall: Clock | None = None):
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._wall = wall or WallClock()
        self._lock = threading.Lock()
        self._origin = utc(start)
        self._wall_origin = self._wall.now()

    def now(self) -> datetime:
        if self.speed is None:
            return self._origin
        elapsed = self._wall.now() - self._wall_origin
        return self._origin + elapsed * self.speed

    def set(self, ts: datetime) -> None:
        """Jump to ``ts`` (and, with a speed, keep running from there)."""
        with self._lock:
            self._origin = utc(ts)
            self._wall_origin = self._wall.now()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (seconds or a timedelta)."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self.set(self.now() + delta)
        return self.now()


class ReplayMarket:
    """Implements ``core.ports.MarketData`` over recorded bars (see the module docstring).

    ``clock`` defaults to a :class:`ReplayClock` at ``start`` (default: the first bar's start),
    running at ``speed`` times real time if given, otherwise moved only by the ``advance``
    helpers. A given clock is set to ``start`` if that is given too.

    ``average_daily_volume`` is the symbol's total volume in the data divided by the number of
    sessions it has bars in (whole shares), unless ``adv`` gives a figure for the symbol.
    """

    def __init__(
        self,
        data: BarFile,
        *,
        clock: ReplayClock | ManualClock | None = None,
        start: datetime | None = None,
        speed: float | None = None,
        calendar: MarketCalendar | None = None,
        spread_bps: Decimal | int | str = Decimal(2),
        adv: Mapping[str, Decimal | int | str] | None = None,
    ) -> None:
        self.calendar: MarketCalendar = calendar or default_calendar()
        self.interval: timedelta = data.interval
        self.source = data.source
        self.spread_bps = to_decimal(spread_bps, "spread_bps")
        if self.spread_bps < 0:
            raise ValueError(f"spread_bps must not be negative, got {self.spread_bps}")
        self._bars: dict[str, list[Bar]] = {}
        for bar in data.bars:
            self._bars.setdefault(bar.symbol, []).append(bar)
        for series in self._bars.values():
            series.sort(key=lambda b: b.start)
        self._ends = {s: [b.end for b in series] for s, series in self._bars.items()}
        self._symbols = frozenset(self._bars)
        #: Every moment at which some bar completes: the stops of :meth:`advance`.
        self._boundaries = sorted({b.end for b in data.bars})
        self.data_start: datetime = min(b.start for b in data.bars)
        self.data_end: datetime = self._boundaries[-1]
        if clock is not None and speed is not None:
            raise ValueError("give either clock or speed, not both")
        self._clock: ReplayClock | ManualClock = clock or ReplayClock(
            start or self.data_start, speed
        )
        if clock is not None and start is not None:
            clock.set(start)
        #: The port's view of the clock; move it with the ``advance`` helpers.
        self.clock: Clock = self._clock
        self._adv_override = {
            symbol.upper(): to_decimal(value, f"adv for {symbol}")
            for symbol, value in (adv or {}).items()
        }
        self._adv: dict[str, Decimal] = {}
        self._aggregated: dict[tuple[str, int | None], tuple[list[Bar], list[datetime]]] = {}
        self._quote_cache: dict[str, tuple[datetime, datetime, Decimal, Decimal, Decimal]] = {}

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        interval: str | timedelta | None = None,
        **kwargs: Any,
    ) -> ReplayMarket:
        """Read ``path`` (CSV or Parquet, see the module docstring) and replay it; keywords
        go to the constructor."""
        return cls(read_bars(path, interval=interval), **kwargs)

    # -- clock helpers ----------------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        """True once every bar in the data has completed."""
        return self.clock.now() >= self.data_end

    def advance(self) -> datetime:
        """Move the clock to the next moment a bar completes and return it (no-op when
        exhausted)."""
        now = self.clock.now()
        i = bisect_right(self._boundaries, now)
        if i < len(self._boundaries):
            self._clock.set(self._boundaries[i])
        return self.clock.now()

    def step(self, n_bars: int = 1) -> datetime:
        """:meth:`advance` ``n_bars`` times."""
        if n_bars < 0:
            raise ValueError(f"n_bars must not be negative, got {n_bars}")
        for _ in range(n_bars):
            self.advance()
        return self.clock.now()

    def advance_to(self, ts: datetime) -> datetime:
        """Set the clock to ``ts``, which must not be earlier than now."""
        ts = utc(ts)
        if ts < self.clock.now():
            raise ValueError(f"cannot move a replay back from {self.clock.now()} to {ts}")
        self._clock.set(ts)
        return ts

    # -- MarketData port --------------------------------------------------------------------
    def symbols(self) -> frozenset[str]:
        return self._symbols

    async def quote(self, symbol: str) -> Quote:
        """Bid/ask/last at ``clock.now()`` (see :meth:`quote_sync`)."""
        return self.quote_sync(symbol)

    def quote_sync(self, symbol: str) -> Quote:
        """``last`` = close of the latest completed bar, bid/ask = ``last`` -/+ half the spread
        on whole cents (bid < last < ask), ``at`` = now."""
        now = self.clock.now()
        cached = self._quote_cache.get(symbol)
        if cached is not None and cached[0] <= now < cached[1]:
            return Quote(symbol, cached[2], cached[3], cached[4], now)
        series = self._series(symbol)
        ends = self._ends[symbol]
        i = bisect_right(ends, now) - 1
        if i >= 0:
            last = series[i].close
            valid = (ends[i], ends[i + 1] if i + 1 < len(ends) else FAR_FUTURE)
        else:
            last = series[0].open
            valid = (FAR_PAST, ends[0])
        bid, ask = quote_prices(last, self.spread_bps)
        self._quote_cache[symbol] = (*valid, bid, ask, last)
        return Quote(symbol, bid, ask, last, now)

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
        """Bars with ``start < bar.end <= end`` (``end`` defaults to and is capped at now),
        oldest first, the last ``limit`` of them."""
        minutes = timeframe_minutes(timeframe)
        check_limit(limit)
        series = self._series(symbol)
        now = self.clock.now()
        end = now if end is None else min(utc(end), now)
        start = None if start is None else utc(start)
        if minutes is not None:
            size = minutes * MINUTE
            if size % self.interval:
                raise ValueError(
                    f"cannot build {timeframe} bars from {_describe(self.interval)} bars in "
                    f"{self.source}"
                )
            if size == self.interval:
                return select(series, self._ends[symbol], start, end, limit)
        key = (symbol, minutes)
        cached = self._aggregated.get(key)
        if cached is None:
            combined = aggregate(series, minutes, self.calendar)
            cached = (combined, [b.end for b in combined])
            self._aggregated[key] = cached
        return select(cached[0], cached[1], start, end, limit)

    async def average_daily_volume(self, symbol: str) -> Decimal:
        """Mean volume per session in the data (see the class docstring)."""
        return self.average_daily_volume_sync(symbol)

    def average_daily_volume_sync(self, symbol: str) -> Decimal:
        """Synchronous :meth:`average_daily_volume`."""
        series = self._series(symbol)
        if symbol in self._adv_override:
            return self._adv_override[symbol]
        adv = self._adv.get(symbol)
        if adv is None:
            days = {
                self.calendar.session_date(b.start) or b.start.astimezone(EASTERN).date()
                for b in series
            }
            total = sum((b.volume for b in series), Decimal(0))
            adv = (total / len(days)).quantize(Decimal(1), ROUND_HALF_EVEN)
            self._adv[symbol] = adv
        return adv

    def _series(self, symbol: str) -> list[Bar]:
        try:
            return self._bars[symbol]
        except KeyError:
            raise UnknownSymbol(f"unknown symbol {symbol!r} in {self.source}") from None


def _describe(interval: timedelta) -> str:
    return f"{interval // MINUTE}-minute"


def load_sample(**kwargs: Any) -> ReplayMarket:
    """The shipped sample (``data/sample_bars.csv``: one session of 1-minute bars for a few
    symbols) as a :class:`ReplayMarket`; keywords go to :meth:`ReplayMarket.from_file`."""
    return ReplayMarket.from_file(SAMPLE_PATH, **kwargs)
