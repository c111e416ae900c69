"""Market ticks per second marked to market and exit-checked, with 10 open positions.

    python benchmarks/ticks.py [--ticks 300000] [--repeat 3] [--seed 1]

The hot path of position management: for each market tick (one price for one symbol) the
position in that symbol is marked at the price (``Position.marked``, as
``TradeJournalWriter.mark`` does, without the store write, which happens once per mark interval)
and :meth:`PositionManager.on_price` asks the exit monitor whether an exit fires.

Everything is real: a ``TradeExecutor`` with ``use_full_pipeline`` (so the position manager and
exit monitor are configured as in production), 10 open trades in its journal (long and short
stocks, leveraged ETFs; day trades on 10-minute bars, swings on hourly bars), primed by the
position manager's own ``feed_bars`` with 150 bars per (symbol, timeframe) from the simulated
market. The tick stream is a seeded random walk in cents (Decimal prices) over 90 minutes of a
session (11:00-12:30 ET on 2026-11-20, UTC times); at every minute boundary the bars completed
there (built from the ticks, as a market data feed would) are fed to the monitor with
``on_bar`` before the minute's ticks, as the executor does. Exits that fire are counted; nothing
is sent, so a position whose exit fired stays open and keeps taking the check's slower path
(building the decision) on each of its ticks: a pessimistic mix.

Next to it, in the same run, a baseline: the same stream iterated with one Decimal comparison per
tick, so the figure can be read as a ratio on any machine. Goal: >= 50,000 ticks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import (
    CENT,
    Bar,
    Direction,
    InstrumentType,
    Position,
    TradeExecution,
    TradeType,
)
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.bars import bucket_bounds, cents, timeframe_minutes
from core.marketdata.calendar import ManualClock
from core.marketdata.simulated import SimulatedMarket
from core.ports import MarketCalendar
from core.position_manager import PositionManager
from core.risk.config import AGGRESSIVE
from core.stages import use_full_pipeline
from db.engine import open_store

GOAL = 50_000
STREAM_START = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # a Friday, 11:00 New York
STREAM_MINUTES = 90

# (symbol, direction, trade type, leveraged ETF)
BOOK: tuple[tuple[str, Direction, TradeType, bool], ...] = (
    ("AAPL", Direction.LONG, TradeType.DAY, False),
    ("MSFT", Direction.SHORT, TradeType.DAY, False),
    ("NVDA", Direction.LONG, TradeType.SWING, False),
    ("AMZN", Direction.SHORT, TradeType.SWING, False),
    ("META", Direction.LONG, TradeType.DAY, False),
    ("JPM", Direction.SHORT, TradeType.SWING, False),
    ("TQQQ", Direction.LONG, TradeType.DAY, True),
    ("SOXL", Direction.LONG, TradeType.DAY, True),
    ("SQQQ", Direction.LONG, TradeType.SWING, True),
    ("SPXL", Direction.LONG, TradeType.SWING, True),
)

Tick = tuple[str, Decimal, datetime]
BarFeed = tuple[str, Bar, str]


@dataclass(slots=True)
class World:
    ex: TradeExecutor
    manager: PositionManager
    positions: dict[str, Position]
    primed_bars: int
    timeframes: list[tuple[str, str]]
    start_prices: dict[str, Decimal]


def open_trade(
    symbol: str, direction: Direction, trade_type: TradeType, etf: bool, price: Decimal
) -> tuple[TradeExecution, Position]:
    """The journal's trade and position for one open position entered at ``price``."""
    away = Decimal("0.03") if etf else Decimal("0.015")
    sign = 1 if direction is Direction.LONG else -1
    stop = (price * (1 - sign * away)).quantize(CENT)
    qty = Decimal(100)
    trade = TradeExecution(
        ticker=symbol,
        direction=direction,
        trade_type=trade_type,
        entry_price=price,
        shares=qty,
        entry_time=STREAM_START,
        instrument_type=InstrumentType.LEVERAGED_ETF if etf else InstrumentType.STOCK,
        leverage=Decimal(3) if etf else Decimal(1),
        stop_loss=stop,
    )
    position = Position(
        symbol,
        qty * sign,
        price,
        price,
        instrument_type=trade.instrument_type,
        opened_at=STREAM_START,
    )
    return trade, position


def build(tmp: Path, name: str) -> World:
    """A real executor with the full pipeline and 10 open trades, primed with history."""
    store = open_store(f"sqlite:///{tmp / name}")
    clock = ManualClock(STREAM_START)
    market = SimulatedMarket.default(clock=clock, seed=1)
    broker = PaperBroker(market, store.paper_ledger("bench"), PaperConfig())
    ex = TradeExecutor(
        store,
        broker,
        market,
        ExecutorConfig(account="bench"),
        clock=clock,
        wall_clock=ManualClock(STREAM_START),
        holder_id="bench",
    )
    use_full_pipeline(ex, InstrumentMode.BOTH, AGGRESSIVE)
    manager = ex.position_manager
    assert manager is not None
    start_prices: dict[str, Decimal] = {}
    for symbol, direction, trade_type, etf in BOOK:
        price = market.quote_sync(symbol).last
        start_prices[symbol] = price
        trade, position = open_trade(symbol, direction, trade_type, etf, price)
        ex.journal.open_trades[symbol] = trade
        ex.journal.positions[symbol] = position
    manager.sync()
    assert len(manager.watched) == len(BOOK)
    assert all(w.position is not None for w in manager.watched.values())
    timeframes = sorted(manager.timeframes())
    asyncio.run(manager.feed_bars(STREAM_START))  # primes each (symbol, timeframe)
    primed = sum(
        len(market.bars_sync(s, tf, end=STREAM_START, limit=manager.history_bars))
        for s, tf in timeframes
    )
    gc.collect()
    gc.freeze()  # as the worker does: start-up objects never need collecting again
    return World(ex, manager, ex.journal.positions, primed, timeframes, start_prices)


def make_stream(
    n: int,
    start_prices: dict[str, Decimal],
    timeframes: list[tuple[str, str]],
    calendar: MarketCalendar,
    seed: int,
) -> list[tuple[list[BarFeed], list[Tick]]]:
    """``n`` ticks over STREAM_MINUTES minutes, grouped by minute, each minute led by the bars
    that completed at its start.

    Each symbol walks in whole cents with a per-tick step scaled so that its price moves about
    0.5% (one standard deviation) over an hour, whatever ``n`` is."""
    rng = random.Random(seed)
    symbols = sorted(start_prices)
    span = STREAM_MINUTES * 60
    per_symbol_per_hour = max(1.0, n / len(symbols) * 3600 / span)
    sigma = {
        s: max(0.6, float(start_prices[s]) * 100 * 0.005 / per_symbol_per_hour**0.5)
        for s in symbols
    }
    level = {s: float(int(start_prices[s] / CENT)) for s in symbols}
    minutes: list[tuple[list[BarFeed], list[Tick]]] = [([], []) for _ in range(STREAM_MINUTES + 1)]
    session = calendar.session_date(STREAM_START)
    assert session is not None
    s_open, s_close = calendar.session_open(session), calendar.session_close(session)
    # OHLC being built per (symbol, timeframe): [start, end, open, high, low, close, count]
    building: dict[tuple[str, str], list] = {}
    tf_minutes = {tf: timeframe_minutes(tf) for _, tf in timeframes}
    by_symbol: dict[str, list[str]] = {}
    for symbol, tf in timeframes:
        by_symbol.setdefault(symbol, []).append(tf)

    def close_bars(upto: datetime) -> None:
        for key, b in list(building.items()):
            if b[1] <= upto:
                symbol, tf = key
                bar = Bar(symbol, b[0], b[1], b[2], b[3], b[4], b[5], Decimal(b[6]))
                index = int((b[1] - STREAM_START).total_seconds() // 60)
                minutes[index][0].append((symbol, bar, tf))
                del building[key]

    last_minute = 0
    for i in range(n):
        at = STREAM_START + timedelta(seconds=span * (i + 1) / (n + 1))
        minute = int((at - STREAM_START).total_seconds() // 60)
        if minute != last_minute:
            close_bars(STREAM_START + timedelta(minutes=minute))
            last_minute = minute
        symbol = symbols[rng.randrange(len(symbols))]
        level[symbol] = max(1.0, level[symbol] + rng.gauss(0.0, sigma[symbol]))
        price = cents(round(level[symbol]))
        minutes[minute][1].append((symbol, price, at))
        for tf in by_symbol.get(symbol, ()):
            key = (symbol, tf)
            b = building.get(key)
            if b is None:
                lo, hi = bucket_bounds(at, tf_minutes[tf] or 1, s_open, s_close)
                building[key] = [lo, hi, price, price, price, price, 1]
            else:
                b[3] = max(b[3], price)
                b[4] = min(b[4], price)
                b[5] = price
                b[6] += 1
    close_bars(STREAM_START + timedelta(minutes=STREAM_MINUTES))
    return minutes


def hot_path(world: World) -> Callable[[list[tuple[list[BarFeed], list[Tick]]]], tuple[int, int]]:
    """Feed each minute's bars, then mark and exit-check every tick; (ticks, exits fired)."""
    on_price = world.manager.on_price
    on_bar = world.manager.monitor.on_bar
    positions = world.positions

    def run(stream: list[tuple[list[BarFeed], list[Tick]]]) -> tuple[int, int]:
        ticks = fired = 0
        for bars, minute_ticks in stream:
            for symbol, bar, tf in bars:
                on_bar(symbol, bar, tf)
            for symbol, price, now in minute_ticks:
                pos = positions.get(symbol)
                if pos is not None and pos.current_price != price:
                    positions[symbol] = pos.marked(price)
                if on_price(symbol, price, now) is not None:
                    fired += 1
            ticks += len(minute_ticks)
        return ticks, fired

    return run


def baseline(stream: list[tuple[list[BarFeed], list[Tick]]]) -> tuple[int, int]:
    """The same stream iterated, one Decimal comparison per tick."""
    limit = Decimal(100)
    ticks = above = 0
    for _bars, minute_ticks in stream:
        for _symbol, price, _now in minute_ticks:
            if price > limit:
                above += 1
        ticks += len(minute_ticks)
    return ticks, above


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ticks", type=int, default=300_000)
    p.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.ticks < 1 or args.repeat < 1:
        p.error("--ticks and --repeat must be positive")

    best_hot = best_base = float("inf")
    fired = bars_fed = primed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            # A fresh world per run: the monitor's clouds must see each bar once.
            world = build(Path(tmp), f"ticks-{r}.db")
            primed = world.primed_bars
            stream = make_stream(
                args.ticks,
                world.start_prices,
                world.timeframes,
                world.ex.market.calendar,
                args.seed,
            )
            bars_fed = sum(len(bars) for bars, _ in stream)
            run = hot_path(world)
            start = time.perf_counter()
            n, fired = run(stream)
            best_hot = min(best_hot, time.perf_counter() - start)
            assert n == args.ticks
            start = time.perf_counter()
            baseline(stream)
            best_base = min(best_base, time.perf_counter() - start)
            world.ex.store.engine.dispose()  # type: ignore[attr-defined]
            gc.unfreeze()
    hot_rate = args.ticks / best_hot
    base_rate = args.ticks / best_base
    book = f"{len(BOOK)} open positions, {len(world.timeframes)} (symbol, timeframe) clouds"
    print(f"positions                        : {book}, {primed} history bars primed")
    stream_desc = f"{args.ticks:,} ticks over {STREAM_MINUTES} min, {bars_fed} bars fed"
    print(f"stream                           : {stream_desc}, best of {args.repeat}")
    print(f"baseline (iterate + compare)     : {base_rate:,.0f} ticks/s")
    per_tick = best_hot / args.ticks * 1e6
    print(f"mark + exit check                : {hot_rate:,.0f} ticks/s ({per_tick:.2f} us/tick)")
    print(f"mark + exit check / baseline     : {best_hot / best_base:.1f}x the baseline's time")
    print(f"ticks with an exit firing        : {fired:,} ({fired / args.ticks:.1%})")
    verdict = "met" if hot_rate >= GOAL else "not met"
    print(f"goal 50,000 ticks/s: {verdict}")


if __name__ == "__main__":
    main()
