"""Measure the cost of ``quote()`` when the minute has not changed (the paper broker's case).

Not a test (timings depend on the machine); run from the repository root::

    python -m tests.core.marketdata.bench_quote
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from core.marketdata.calendar import ManualClock, SessionClock, default_calendar
from core.marketdata.replay import load_sample
from core.marketdata.simulated import SimulatedMarket
from core.ports import MarketData

N = 200_000
NOON = datetime(2026, 11, 20, 16, 0, 30, tzinfo=UTC)


def per_call(fn: Callable[[], object], n: int = N) -> float:
    """Best of three runs, microseconds per call."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def per_await(market: MarketData, symbol: str, n: int = N) -> float:
    """Microseconds per ``await market.quote(symbol)`` inside one running event loop."""

    async def run() -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                await market.quote(symbol)
            best = min(best, time.perf_counter() - t0)
        return best / n * 1e6

    return asyncio.run(run())


def report(label: str, micros: float) -> None:
    print(f"{label:<48} {micros:8.2f} us")


def main() -> None:
    calendar = default_calendar()
    manual = SimulatedMarket(ManualClock(NOON), calendar)
    manual.quote_sync("AAPL")  # the first call generates the session
    report("SimulatedMarket + ManualClock, quote_sync", per_call(lambda: manual.quote_sync("AAPL")))
    report("SimulatedMarket + ManualClock, await quote", per_await(manual, "AAPL"))

    session = SimulatedMarket(SessionClock(calendar, speed=1.0, start=NOON), calendar)
    session.quote_sync("AAPL")
    report(
        "SimulatedMarket + SessionClock, quote_sync", per_call(lambda: session.quote_sync("AAPL"))
    )
    report("  of which SessionClock.now()", per_call(session.clock.now))

    replay = load_sample()
    replay.step(30)
    replay.quote_sync("AAPL")
    report("ReplayMarket, quote_sync", per_call(lambda: replay.quote_sync("AAPL")))

    clock = ManualClock(NOON)
    moving = SimulatedMarket(clock, calendar)
    moving.quote_sync("AAPL")
    n = 2_000
    t0 = time.perf_counter()
    for _ in range(n):
        clock.advance(60)
        moving.quote_sync("AAPL")
    report("SimulatedMarket, a new minute every call", (time.perf_counter() - t0) / n * 1e6)


if __name__ == "__main__":
    main()
