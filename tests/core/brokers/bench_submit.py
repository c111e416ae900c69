"""Cost of ``PaperBroker.submit_order`` for a market order that fills at once.

Run: ``python -m tests.core.brokers.bench_submit``. Prints microseconds per order (best of three
runs) with a MemoryPaperLedger, with a ledger whose ``save`` does nothing, and with persistence
switched off entirely (no serialization either).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from core.brokers.paper import MemoryPaperLedger, PaperBroker, PaperConfig
from core.domain import OrderRequest, Side
from core.marketdata.calendar import ManualClock
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars


class NullLedger(MemoryPaperLedger):
    def save(
        self,
        account: dict[str, Any] | None = None,
        orders: Sequence[dict[str, Any]] = (),
        fills: Sequence[dict[str, Any]] = (),
    ) -> None:
        return None


async def per_order_us(ledger: MemoryPaperLedger, n: int, persist: bool = True) -> float:
    clock = ManualClock(at(20, 15))
    bars = session_bars("AAA", date(2026, 11, 20), volume=10_000_000)
    market = FixedMarket(clock, {"AAA": bars}, adv={"AAA": 50_000_000})
    broker = PaperBroker(market, ledger, PaperConfig(initial_cash=Decimal(10**12)))
    if not persist:
        broker._save = lambda: (broker._dirty.clear(), broker._new_fills.clear())  # type: ignore[method-assign]
    await broker.connect()
    requests = [
        OrderRequest(f"o{i}", "AAA", Side.BUY if i % 2 else Side.SELL, Decimal(10))
        for i in range(n + 200)
    ]
    for request in requests[:200]:  # warm up
        await broker.submit_order(request)
    start = time.perf_counter()
    for request in requests[200:]:
        await broker.submit_order(request)
    return (time.perf_counter() - start) / n * 1e6


async def main(n: int = 10_000) -> None:
    for label, make, persist in (
        ("MemoryPaperLedger", MemoryPaperLedger, True),
        ("save() a no-op", NullLedger, True),
        ("no persistence", NullLedger, False),
    ):
        best = min([await per_order_us(make(), n, persist) for _ in range(3)])
        print(f"submit_order, market, filled at once -- {label}: {best:.1f} us/order")


if __name__ == "__main__":
    asyncio.run(main())
