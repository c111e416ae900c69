"""Signals per second and signal-to-submit latency through the paper pipeline.

    python benchmarks/pipeline.py [--signals 20000] [--database-url sqlite:///...]

Everything is real: the SQLite (or PostgreSQL) store with the durable journal, the executor's
write-ahead path and the paper broker with its own persisted ledger, on a simulated market frozen
inside a session. Two runs:

* throughput: N pending signals, ticks until all are routed; signals/s = N / elapsed;
* latency: one signal at a time (as signals arrive in life), the time from the tick picking it
  up to the broker's submit returning; p50 and p99, after one warm-up signal per symbol.

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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import Direction, OrderType, Signal
from core.executor import TradeExecutor
from core.marketdata.calendar import ManualClock
from core.marketdata.simulated import SimulatedMarket
from db.bench import raw_insert_rate
from db.engine import open_store

SESSION_MINUTE = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # a Friday, 11:00 New York


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


def build(url: str, per_tick: int) -> tuple[TradeExecutor, object]:
    store = open_store(url)
    clock = ManualClock(SESSION_MINUTE)
    market = SimulatedMarket.default(clock=clock, seed=1)
    broker = PaperBroker(
        market, store.paper_ledger("bench"), PaperConfig(initial_cash=Decimal("1000000000"))
    )
    config = ExecutorConfig(
        account="bench",
        max_signals_per_tick=per_tick,
        mark_interval=timedelta(hours=1),
        reconcile_every_ticks=1_000_000,
    )
    ex = TradeExecutor(store, broker, market, config, clock=clock, record_latency=True)
    gc.collect()
    gc.freeze()  # as the worker does: start-up objects never need collecting again
    return ex, store


async def throughput(url: str, n: int, per_tick: int) -> tuple[float, int]:
    ex, store = build(url, per_tick)
    symbols = sorted(ex.market.symbols())
    with store.unit_of_work() as uow:
        uow.signals.add_many(make_signals(n, symbols))
        uow.commit()
    await ex.tick()  # leadership, recovery, first batch
    start = time.perf_counter()
    while ex.stats.signals_routed < n:
        await ex.tick()
    elapsed = time.perf_counter() - start
    await ex.tick()  # take the fills
    return (n - per_tick) / elapsed, ex.stats.fills


async def latency(url: str, n: int) -> list[float]:
    ex, store = build(url, 1)
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
    return ex.stats.submit_latencies


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--signals", type=int, default=20_000)
    p.add_argument("--latency-signals", type=int, default=2_000)
    p.add_argument("--per-tick", type=int, default=200)
    p.add_argument("--database-url")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.database_url
        url = lambda name: base or f"sqlite:///{Path(tmp) / name}"  # noqa: E731
        store = open_store(url("raw.db"))
        raw = raw_insert_rate(store.engine, 5_000)
        rate, fills = asyncio.run(throughput(url("throughput.db"), args.signals, args.per_tick))
        lats = asyncio.run(latency(url("latency.db"), args.latency_signals))
    lats_ms = sorted(x * 1000 for x in lats)
    p50 = statistics.median(lats_ms)
    p99 = lats_ms[int(len(lats_ms) * 0.99) - 1]
    print(f"database                         : {base or 'sqlite (temp file)'}")
    print(f"raw INSERT+COMMIT rate           : {raw:,.0f} rows/s")
    run = f"{args.signals} signals, {args.per_tick}/tick, {fills} fills"
    print(f"pipeline throughput              : {rate:,.0f} signals/s ({run})")
    print(f"pipeline / raw insert ratio      : {rate / raw:.2f}")
    lat = f"{p50:.3f} ms / {p99:.3f} ms ({len(lats_ms)} signals, one per tick)"
    print(f"signal-to-submit latency p50/p99 : {lat}")
    goal_rate = "MET" if rate >= 2000 else "MISSED"
    goal_p99 = "MET" if p99 <= 2 else "MISSED"
    print(
        f"goals                            : >= 2,000 signals/s {goal_rate}; p99 <= 2 ms {goal_p99}"
    )


if __name__ == "__main__":
    main()
