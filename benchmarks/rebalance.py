"""Rebalancing a portfolio on the paper broker: the time to build the preview, and the time from
the approval to the last fill.

    python benchmarks/rebalance.py [--stocks 20] [--runs 5] [--cash 200000] [--seed 1]

Everything is real: the SQLite store (in a temporary directory), the paper broker with its
persisted ledger, a ``TradeExecutor`` with the rebalance runner and the smart order router
(``use_rebalancing``; no signal pipeline, and no order-rate limit: the broker is not wrapped in a
``ThrottledBroker``), and the ``TradingService`` facade the dashboard uses. The market is the
simulated one, on a manual clock stopped at 11:00 New York on a session day, over ``--stocks``
liquid stocks priced $25 and up (2 bps spread, 20 to 60 million shares a day). The account is
first invested equally (90% of ``--cash``, at most 10% a name; untimed); each run then moves it
to a tilted target (every other name 30% over or under its equal weight), so a run sells half
the names and buys the other half.

* preview: ``TradingService.preview_rebalance`` (positions from the store, NAV from the
  executor's published account, quotes and ADVs, constraints, the trade list with its costs);
  the median over the runs. Baseline, same run: reading the positions and the account and
  fetching the quotes and ADVs the preview needs, with no engine work.
* execution: from the approval command being written to the plan completed with every trade
  filled, the executor ticking as fast as it can (wall clock). Each order is a few hundredths
  of a percent of its ADV with an estimated cost well under 10 bps, so the router works each
  as one marketable limit child (the ``market`` algorithm) that the paper broker fills at submit;
  the ticks are the runner's steps: sells out, fills in, buys out, fills in, plan completed.
  Baseline, same run: an executor tick with nothing to do.

Targets: preview under 100 ms, execution under 5 s. The exit status is non-zero only on an error
(a plan that does not complete, a trade not worked as expected), never on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.brokers.paper import PaperBroker, PaperConfig
from core.brokers.rate_limit import RateLimitConfig
from core.config import ExecutorConfig
from core.domain import OrderStatus, Side
from core.executor import TradeExecutor
from core.marketdata.calendar import EASTERN, ManualClock, default_calendar
from core.marketdata.simulated import SimulatedMarket, SymbolSpec
from core.rebalance.model import LegStatus, PlanStatus, RebalancePlan
from core.rebalance.runner import use_rebalancing
from core.service import TradingService
from db.engine import open_store
from db.store import SqlStore

#: Friday 20 November 2026, 11:00 New York: mid-session, away from the open and the close.
START = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
PREVIEW_TARGET_MS = 100.0
EXECUTION_TARGET_S = 5.0
INVESTED = Decimal("0.90")
MAX_EQUAL_WEIGHT = Decimal("0.10")
TILT = Decimal("0.30")
#: More ticks than a plan of market orders needs (five); a plan still open after them is an error.
MAX_TICKS = 50
ACCOUNT = "bench"


class BenchmarkError(Exception):
    """The benchmark could not measure what it set out to; the message says why."""


def universe(n: int) -> list[SymbolSpec]:
    """``n`` liquid stocks: prices $25 to $500, 2 bps spread, 20 to 60 million shares a day."""
    return [
        SymbolSpec(
            f"STK{i + 1:02d}",
            Decimal(25 + (i * 37) % 476),
            0.25,
            0.05,
            20_000_000 + (i % 5) * 10_000_000,
            Decimal(2),
        )
        for i in range(n)
    ]


class Bench:
    def __init__(self, tmp: Path, stocks: int, cash: Decimal, seed: int) -> None:
        self.store: SqlStore = open_store(f"sqlite:///{tmp / 'rebalance.db'}")
        self.clock = ManualClock(START)
        self.wall = ManualClock(START)
        self.market = SimulatedMarket(self.clock, default_calendar(), universe(stocks), seed=seed)
        self.symbols = sorted(self.market.symbols())
        broker = PaperBroker(
            self.market, self.store.paper_ledger(ACCOUNT), PaperConfig(initial_cash=cash)
        )
        # the algorithms' costs are measured here, not the order-rate policy
        config = ExecutorConfig(account=ACCOUNT, order_rate=RateLimitConfig(enabled=False))
        self.ex = TradeExecutor(
            self.store,
            broker,
            self.market,
            config,
            clock=self.clock,
            wall_clock=self.wall,
            holder_id="bench",
        )
        use_rebalancing(self.ex, commission=broker.config.commission)
        self.service = TradingService(
            self.store,
            self.market,
            clock=self.clock,
            commission=broker.config.commission,
            lease_name=config.lease_name,
        )

    def tick(self) -> None:
        asyncio.run(self.ex.tick())

    def settle(self) -> None:
        """Let a minute pass, so the executor marks the account and its heartbeat publishes it
        (the service values the portfolio with it)."""
        for _ in range(2):
            self.clock.advance(timedelta(seconds=30))
            self.wall.advance(timedelta(seconds=30))
            self.tick()

    def weights(self, run: int) -> dict[str, Decimal]:
        # under the profile's single-position cap (15%) even when tilted up
        equal = min(INVESTED / len(self.symbols), MAX_EQUAL_WEIGHT)
        if run < 0:
            return {s: equal for s in self.symbols}
        return {
            s: equal * (1 + TILT if (i + run) % 2 == 0 else 1 - TILT)
            for i, s in enumerate(self.symbols)
        }

    def plan(self, plan_id: int) -> RebalancePlan:
        plan, _ = self.service.plan(plan_id)
        assert plan is not None
        return plan

    def execute(self, plan: RebalancePlan) -> tuple[float, int]:
        """Store ``plan``, write its approval and tick until it is over: (seconds, ticks)."""
        plan_id = self.service.save_plan(plan)
        loop = asyncio.new_event_loop()
        try:
            started = time.perf_counter()
            self.service.approve_plan(plan_id, "bench")
            ticks = 0
            while ticks < MAX_TICKS:
                loop.run_until_complete(self.ex.tick())
                ticks += 1
                with self.store.unit_of_work(read_only=True) as uow:
                    current = uow.rebalance.get(plan_id)
                assert current is not None
                if current.status.is_terminal:
                    break
            elapsed = time.perf_counter() - started
        finally:
            loop.close()
        done = self.plan(plan_id)
        if done.status is not PlanStatus.COMPLETED:
            raise BenchmarkError(
                f"plan {plan_id} is {done.status.value} after {ticks} ticks: {done.reason}"
            )
        unfilled = [t.symbol for t in done.trades if t.status is not LegStatus.FILLED]
        if unfilled:
            raise BenchmarkError(f"plan {plan_id}: not filled: {', '.join(unfilled)}")
        return elapsed, ticks

    def children_filled_at_submit(self, plan_id: int) -> bool:
        _, parents = self.service.plan(plan_id)
        with self.store.unit_of_work(read_only=True) as uow:
            kids = [c for p in parents for c in uow.orders.children(p.parent_id)]
        return len(kids) == len(parents) and all(c.status is OrderStatus.FILLED for c in kids)


def timed(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    loop.run_until_complete(make())
    return time.perf_counter() - started


async def gather_inputs(bench: Bench) -> None:
    """What a preview reads, without the engine: positions, the account, quotes and ADVs."""
    with bench.store.unit_of_work(read_only=True) as uow:
        uow.positions.all()
    bench.service.account_snapshot()
    for symbol in bench.symbols:
        await bench.market.quote(symbol)
        await bench.market.average_daily_volume(symbol)


def idle_tick_seconds(bench: Bench, n: int = 50) -> float:
    loop = asyncio.new_event_loop()
    try:
        times = [timed(loop, bench.ex.tick) for _ in range(n)]
    finally:
        loop.close()
    return statistics.median(times)


def check_plan(plan: RebalancePlan, adv: dict[str, Decimal]) -> tuple[int, int, Decimal]:
    """(sells, buys, largest share of ADV in %); raises when a trade would not be a market
    order (the figure would then measure a resting limit waiting for the price)."""
    if not plan.sells or not plan.buys:
        raise BenchmarkError(f"the plan has {len(plan.sells)} sells and {len(plan.buys)} buys")
    slow = [f"{t.symbol} ({t.algorithm})" for t in plan.trades if t.algorithm != "market"]
    if slow:
        raise BenchmarkError(f"trades not worked as market orders: {', '.join(slow)}")
    largest = max((t.qty / adv[t.symbol] * 100 for t in plan.trades), default=Decimal(0))
    sells = sum(1 for t in plan.trades if t.side is Side.SELL)
    return sells, len(plan.trades) - sells, largest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stocks", type=int, default=20, help="stocks in the portfolio")
    p.add_argument("--runs", type=int, default=5, help="rebalances measured")
    p.add_argument("--cash", type=Decimal, default=Decimal(200_000), help="starting cash")
    p.add_argument("--seed", type=int, default=1, help="simulated market seed")
    args = p.parse_args()
    if args.stocks < 2 or args.runs < 1 or args.cash <= 0:
        p.error("--stocks must be at least 2, --runs and --cash positive")

    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.stocks, args.cash, args.seed)
        try:
            return measure(bench, args)
        except BenchmarkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            bench.store.engine.dispose()


def measure(bench: Bench, args: argparse.Namespace) -> int:
    loop = asyncio.new_event_loop()
    service = bench.service
    try:
        bench.tick()
        bench.settle()
        # untimed: invest the cash equally (also warms the market's caches)
        initial = loop.run_until_complete(service.preview_rebalance(bench.weights(-1)))
        bench.execute(initial)
        bench.settle()
        adv = {
            s: loop.run_until_complete(bench.market.average_daily_volume(s)) for s in bench.symbols
        }
        gc.collect()

        previews: list[float] = []
        inputs: list[float] = []
        executions: list[float] = []
        ticks: list[int] = []
        shape: tuple[int, int, Decimal] | None = None
        equity = Decimal(0)
        at_submit = True
        for run in range(args.runs):
            target = bench.weights(run)
            inputs.append(timed(loop, lambda: gather_inputs(bench)))
            started = time.perf_counter()
            plan = loop.run_until_complete(service.preview_rebalance(target))
            previews.append(time.perf_counter() - started)
            sells, buys, largest = check_plan(plan, adv)
            shape = (sells, buys, max(largest, shape[2] if shape else Decimal(0)))
            equity = plan.equity
            seconds, n = bench.execute(plan)
            assert plan.id is not None
            at_submit = at_submit and bench.children_filled_at_submit(plan.id)
            executions.append(seconds)
            ticks.append(n)
            bench.settle()
        idle = idle_tick_seconds(bench)
    finally:
        loop.close()

    assert shape is not None
    sells, buys, largest = shape
    preview_ms = statistics.median(previews) * 1000
    inputs_ms = statistics.median(inputs) * 1000
    execution_s = statistics.median(executions)
    new_york = START.astimezone(EASTERN)
    print(
        f"portfolio          : {args.stocks} stocks, equity {equity:,.2f}; paper broker, SQLite in "
        f"a temporary directory, simulated market from {new_york:%Y-%m-%d %H:%M} New York (its "
        "clock stands still while a plan executes), order-rate limit off"
    )
    print(
        f"orders             : {sells} sells then {buys} buys per run, at most {largest:.4f}% of "
        "ADV each: the router works each as one marketable limit (market algorithm)"
        + (", filled by the paper broker at submit" if at_submit else "")
    )
    print(
        f"preview            : median {preview_ms:.1f} ms over {args.runs} runs "
        f"(min {min(previews) * 1000:.1f}, max {max(previews) * 1000:.1f})"
    )
    print(
        f"preview baseline   : {inputs_ms:.1f} ms to read positions, account, quotes and ADVs; "
        f"preview / baseline {preview_ms / inputs_ms:.1f}x"
    )
    print(
        f"approval to fills  : median {execution_s * 1000:.0f} ms over {args.runs} runs "
        f"(max {max(executions) * 1000:.0f} ms), {statistics.median(ticks):.0f} executor ticks"
    )
    print(
        f"execution baseline : {idle * 1000:.2f} ms per idle executor tick; "
        f"approval to fills / idle tick {execution_s / idle:.0f}x"
    )
    preview_ok = "met" if preview_ms < PREVIEW_TARGET_MS else "not met"
    execution_ok = "met" if execution_s < EXECUTION_TARGET_S else "not met"
    print(
        f"targets            : preview < {PREVIEW_TARGET_MS:.0f} ms: {preview_ok}; "
        f"execution < {EXECUTION_TARGET_S:.0f} s: {execution_ok} (seed 000: under 2 minutes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
