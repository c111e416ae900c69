"""Measure the exit monitor's hot path: ``check`` for 10 open positions per market tick.

Not a test (timings depend on the machine); run from the repository root::

    python -m tests.core.signals.bench_exit_check

Positions are primed with the replay sample's bars up to 12:00 ET; "quiet" means no exit fires
(the usual tick), "firing" that every position has an exit to report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.domain import Direction, InstrumentType, TradeType
from core.exits import ExitMonitor, TrackedPosition
from core.marketdata.replay import load_sample

NOON = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
TICKS = 50_000


def best_of(fn: Callable[[], object], runs: int = 5) -> float:
    """Best wall time of ``runs`` calls, seconds."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    market = load_sample()
    market.advance_to(NOON)
    monitor = ExitMonitor()
    symbols = sorted(market.symbols())
    history = {(s, tf): market.bars_sync(s, tf) for s in symbols for tf in ("1Min", "10Min")}
    history.update({(s, "1Hour"): market.bars_sync(s, "1Hour") for s in symbols})
    for (symbol, tf), bars in history.items():
        monitor.on_bars(symbol, bars, tf)

    kinds = (TradeType.SCALP, TradeType.DAY, TradeType.SWING)
    positions = []
    for i in range(10):
        symbol = symbols[i % len(symbols)]
        last = history[(symbol, "1Min")][-1].close
        direction = Direction.LONG if i % 2 == 0 else Direction.SHORT
        factor = Decimal("0.95") if direction is Direction.LONG else Decimal("1.05")
        etf = i % 4 == 0
        positions.append(
            TrackedPosition(
                symbol=symbol,
                direction=direction,
                entry_price=last,
                stop=(last * factor).quantize(Decimal("0.01")),
                target=None,
                qty=Decimal(10),
                entry_time=NOON,
                trade_type=kinds[i % 3],
                leverage=Decimal(3) if etf else Decimal(1),
                instrument_type=InstrumentType.LEVERAGED_ETF if etf else InstrumentType.STOCK,
            )
        )
    now = NOON + timedelta(seconds=30)
    quiet = [(p, history[(p.symbol, "1Min")][-1].close) for p in positions]
    assert all(monitor.check(p, price, now) is None for p, price in quiet)
    # At the entry price + 50%: every position (long or short) hits its target or its stop.
    firing = [(p, p.entry_price * Decimal("1.5")) for p in positions]
    assert all(monitor.check(p, price, now) is not None for p, price in firing)

    check = monitor.check

    def run(pairs):
        def ticks():
            for _ in range(TICKS):
                for p, price in pairs:
                    check(p, price, now)

        return ticks

    for label, pairs in (("quiet", quiet), ("firing", firing)):
        seconds = best_of(run(pairs))
        calls = TICKS * len(pairs) / seconds
        print(
            f"check, 10 positions, {label:6}: {calls:12,.0f} calls/s  "
            f"{calls / len(pairs):10,.0f} ticks/s  {seconds / (TICKS * len(pairs)) * 1e9:6.0f} ns"
        )

    bars = history[("AAPL", "1Min")]
    scratch = ExitMonitor()
    seconds = best_of(lambda: scratch.on_bars("X", bars, "1Min") and scratch.forget("X", "1Min"))
    print(f"on_bar: {seconds / len(bars) * 1e6:.1f} us per bar")
    p = positions[0]
    seconds = best_of(lambda: monitor.evaluate(p, bars[-200:], now), runs=20)
    print(f"evaluate from 200 bars (for comparison): {seconds * 1e6:.0f} us per call")


if __name__ == "__main__":
    main()
