"""Signals per second and signal-to-submit latency through the paper pipeline.

    python benchmarks/pipeline.py [--pipeline full|pass_through] [--signals 20000]
                                  [--latency-signals 2000] [--database-url sqlite:///...]

Everything is real: the SQLite (or PostgreSQL) store with the durable journal, the executor's
write-ahead path and the paper broker with its own persisted ledger, on a simulated market inside
a session. ``--pipeline full`` (the default) is the production pipeline of
``core.stages.use_full_pipeline``: validate, kill switch, instrument router, sizer, entry stage
(order type, scale-in split) and risk gate, in both mode with the aggressive profile, with the
position manager and the kill-switch monitor running each tick. ``pass_through`` validates the
signal and sends its own quantity. Two runs:

* throughput: N pending signals, ticks until all are handled; signals/s = N / elapsed. With the
  full pipeline the risk gate takes at most 10 positions and refuses repeats, so most of the
  signals are rejected there: this is mostly the cost of deciding (routed and rejected counts
  are printed);
* latency: one signal at a time (as signals arrive in life), the time from the tick picking it
  up to the broker's submit returning; p50 and p99, after one warm-up signal per symbol. With the
  full pipeline each signal is priced at the market and sized by the sizer, and every one must
  pass the gate: the clock moves 6 s per signal, one symbol per traded instrument is used (so
  the same order comes back only after the gate's duplicate window), and each position is closed
  once filled, outside the measured span, so the account stays within the gate's limits.

Next to them, in the same run and on the same database, the raw single-row INSERT+COMMIT rate, so
the figures can be read as ratios on any machine. Goals: >= 2,000 signals/s on SQLite, p99 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.brokers.paper import PaperBroker, PaperConfig
from core.brokers.rate_limit import RateLimitConfig
from core.config import ExecutorConfig
from core.domain import (
    CENT,
    Direction,
    OrderRequest,
    OrderType,
    Side,
    Signal,
    TradeType,
    client_order_id_for,
    client_order_id_for_command,
)
from core.executor import TickStats, TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import ManualClock
from core.marketdata.simulated import DEFAULT_UNIVERSE, SimulatedMarket
from core.risk.config import AGGRESSIVE
from core.stages import use_full_pipeline
from db.bench import raw_insert_rate
from db.engine import open_store

SESSION_MINUTE = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # a Friday, 11:00 New York
#: Full pipeline latency run: market time between signals (with one symbol per traded instrument,
#: more than the gate's 60 s duplicate window passes before an order recurs), and the last moment
#: a signal may come (before the 15:55 ET EOD cutoff).
SIGNAL_STEP = timedelta(seconds=6)
LAST_SIGNAL = datetime(2026, 11, 20, 20, 50, tzinfo=UTC)
MIN_PRICE = Decimal(20)
PIPELINES = ("full", "pass_through")


def make_signals(n: int, symbols: list[str]) -> list[Signal]:
    return [
        Signal(
            symbol=symbols[i % len(symbols)],
            direction=Direction.LONG,
            entry=Decimal(100),
            stop=Decimal(99),
            created_at=SESSION_MINUTE,
            qty=Decimal(1),
            order_type=OrderType.MARKET,
            source="bench",
        )
        for i in range(n)
    ]


async def priced_signal(ex: TradeExecutor, symbol: str) -> Signal:
    """A long day-trade signal at the current price with its stop 1 % below; no quantity, so
    the sizer decides (as for a strategy's signals)."""
    last = (await ex.market.quote(symbol)).last
    return Signal(
        symbol=symbol,
        direction=Direction.LONG,
        entry=last,
        stop=(last * Decimal("0.99")).quantize(CENT),
        created_at=ex.clock.now(),
        conviction=80,
        trade_type=TradeType.DAY,
        order_type=OrderType.MARKET,
        source="bench",
    )


def build(url: str, per_tick: int, pipeline: str) -> tuple[TradeExecutor, object]:
    store = open_store(url)
    clock = ManualClock(SESSION_MINUTE)
    market = SimulatedMarket.default(clock=clock, seed=1)
    if pipeline == "full":
        # Orders are sized from equity. No market impact and full participation fill every
        # entry at once, and keep what thousands of round trips cost (spread and commission)
        # well inside the profile's daily loss limit: this measures the executor, not fills.
        paper = PaperConfig(
            initial_cash=Decimal(1_000_000),
            impact_bps_per_pct_adv=Decimal(0),
            participation_rate=Decimal(1),
        )
    else:
        paper = PaperConfig(initial_cash=Decimal(1_000_000_000))
    broker = PaperBroker(market, store.paper_ledger("bench"), paper)
    config = ExecutorConfig(
        account="bench",
        max_signals_per_tick=per_tick,
        mark_interval=timedelta(hours=1),
        reconcile_every_ticks=1_000_000,
        # throughput is measured here, not the order-rate policy (10 entries a minute)
        order_rate=RateLimitConfig(enabled=False),
    )
    ex = TradeExecutor(store, broker, market, config, clock=clock, record_latency=True)
    if pipeline == "full":
        use_full_pipeline(ex, InstrumentMode.BOTH, AGGRESSIVE)
    gc.collect()
    gc.freeze()  # as the worker does: start-up objects never need collecting again
    return ex, store


async def throughput(url: str, n: int, per_tick: int, pipeline: str) -> tuple[float, TickStats]:
    ex, store = build(url, per_tick, pipeline)
    symbols = sorted(ex.market.symbols())
    with store.unit_of_work() as uow:
        uow.signals.add_many(make_signals(n, symbols))
        uow.commit()
    await ex.tick()  # leadership, recovery, first batch
    start = time.perf_counter()
    while ex.stats.signals_routed + ex.stats.signals_rejected < n:
        await ex.tick()
    elapsed = time.perf_counter() - start
    await ex.tick()  # take the fills
    return (n - per_tick) / elapsed, ex.stats


async def close_positions(ex: TradeExecutor, tag: int) -> None:
    """Flatten every position with reduce-only market orders the executor writes ahead itself."""
    requests = [
        OrderRequest(
            client_order_id=client_order_id_for_command(tag, f"close-{symbol}"),
            symbol=symbol,
            side=Side.SELL if pos.qty > 0 else Side.BUY,
            qty=abs(pos.qty),
            reduce_only=True,
            instrument_type=pos.instrument_type,
        )
        for symbol, pos in sorted(ex.journal.positions.items())
        if pos.qty != 0
    ]
    if requests:
        await ex.write_and_submit(requests)


async def latency_full(url: str, n: int) -> tuple[list[float], TickStats]:
    """One signal per step of market time; each is gated, submitted, filled and closed."""
    ex, store = build(url, 1, "full")
    clock = ex.clock
    assert isinstance(clock, ManualClock)
    await ex.tick()

    async def one(symbol: str, tag: int) -> str | None:
        """Send one signal through; the symbol its order went to (None: rejected)."""
        clock.advance(SIGNAL_STEP)
        with store.unit_of_work() as uow:
            sid = uow.signals.add(await priced_signal(ex, symbol))
            uow.commit()
        await ex.tick()  # takes the last close's fill, then picks the signal up: measured
        await ex.tick()  # takes the entry's fill
        await close_positions(ex, tag)
        with store.unit_of_work(read_only=True) as uow:
            order = uow.orders.get(client_order_id_for(sid))
        return None if order is None else order.symbol

    # Warm-up: one signal per symbol, so the market has built each symbol's session and the
    # position manager its clouds (as in a running process) before anything is measured. It
    # also shows where each symbol's signals go: symbols routed to the same instrument (QQQ
    # and TQQQ both trade TQQQ) would repeat an order inside the duplicate window, so only the
    # first symbol of each instrument is used; and instruments under MIN_PRICE are left out
    # (a cent of spread is more than 5 bps there, and thousands of round trips would take the
    # account to the daily loss limit).
    by_instrument: dict[str, str] = {}
    for i, symbol in enumerate(sorted(ex.market.symbols())):
        traded = await one(symbol, i)
        if traded is not None and (await ex.market.quote(traded)).last >= MIN_PRICE:
            by_instrument.setdefault(traded, symbol)
    symbols = sorted(by_instrument.values())
    ex.stats.submit_latencies.clear()
    routed, rejected = ex.stats.signals_routed, ex.stats.signals_rejected
    for i in range(n):
        await one(symbols[i % len(symbols)], len(DEFAULT_UNIVERSE) + i)
    await ex.tick()
    stats = replace(
        ex.stats,
        signals_routed=ex.stats.signals_routed - routed,
        signals_rejected=ex.stats.signals_rejected - rejected,
    )
    return ex.stats.submit_latencies, stats


async def latency(url: str, n: int, pipeline: str) -> tuple[list[float], TickStats]:
    if pipeline == "full":
        return await latency_full(url, n)
    ex, store = build(url, 1, pipeline)
    symbols = sorted(ex.market.symbols())
    await ex.tick()
    # Warm-up: one signal per symbol, so the market has built each symbol's session (as it has
    # in a running process) before anything is measured.
    warm = make_signals(len(symbols), symbols)
    with store.unit_of_work() as uow:
        uow.signals.add_many(warm)
        uow.commit()
    await ex.tick()
    await ex.tick()
    signals = make_signals(n, symbols)
    ex.stats.submit_latencies.clear()
    for s in signals:
        with store.unit_of_work() as uow:
            uow.signals.add(s)
            uow.commit()
        await ex.tick()
    return ex.stats.submit_latencies, ex.stats


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pipeline", choices=PIPELINES, default="full")
    p.add_argument("--signals", type=int, default=20_000)
    p.add_argument("--latency-signals", type=int, default=2_000)
    p.add_argument("--per-tick", type=int, default=200)
    p.add_argument("--database-url")
    args = p.parse_args()
    if args.signals <= args.per_tick or args.latency_signals < 1:
        p.error("--signals must exceed --per-tick and --latency-signals must be positive")
    # The full pipeline's latency run moves the clock one step per signal (warm-up included).
    fit = (LAST_SIGNAL - SESSION_MINUTE) // SIGNAL_STEP - len(DEFAULT_UNIVERSE)
    if args.pipeline == "full" and args.latency_signals > fit:
        p.error(f"--latency-signals: at most {fit} fit in the session with the full pipeline")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.database_url
        url = lambda name: base or f"sqlite:///{Path(tmp) / name}"  # noqa: E731
        store = open_store(url("raw.db"))
        raw = raw_insert_rate(store.engine, 5_000)
        rate, stats = asyncio.run(
            throughput(url("throughput.db"), args.signals, args.per_tick, args.pipeline)
        )
        lats, lat_stats = asyncio.run(
            latency(url("latency.db"), args.latency_signals, args.pipeline)
        )
    if not lats:
        raise SystemExit("no signal reached the broker: nothing to measure")
    lats_ms = sorted(x * 1000 for x in lats)
    p50 = statistics.median(lats_ms)
    p99 = lats_ms[max(int(len(lats_ms) * 0.99) - 1, 0)]
    print(f"database                         : {base or 'sqlite (temp file)'}")
    print(f"pipeline                         : {args.pipeline}")
    print(f"raw INSERT+COMMIT rate           : {raw:,.0f} rows/s")
    run = (
        f"{args.signals} signals, {args.per_tick}/tick, {stats.signals_routed} routed, "
        f"{stats.signals_rejected} rejected, {stats.fills} fills"
    )
    print(f"pipeline throughput              : {rate:,.0f} signals/s ({run})")
    print(f"pipeline / raw insert ratio      : {rate / raw:.2f}")
    lat = f"{p50:.3f} ms / {p99:.3f} ms ({len(lats_ms)} signals submitted, one per tick"
    if lat_stats.signals_rejected:
        lat += f"; {lat_stats.signals_rejected} rejected"
    lat += ")"
    print(f"signal-to-submit latency p50/p99 : {lat}")
    goal_rate = "MET" if rate >= 2000 else "MISSED"
    goal_p99 = "MET" if p99 <= 2 else "MISSED"
    print(
        f"goals                            : >= 2,000 signals/s {goal_rate}; p99 <= 2 ms {goal_p99}"
    )


if __name__ == "__main__":
    main()
