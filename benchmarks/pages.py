"""Dashboard speed: each page's server-side render time on a big store, and the kill switch's
click-to-halt time.

    python benchmarks/pages.py [--trades 100000] [--orders 10000] [--runs 20] [--kill-runs 30]

* pages: the real ``app/main.py`` (login gate, header, navigation and the page) under
  ``streamlit.testing.v1.AppTest``, signed in as an administrator, on a SQLite store holding
  ``--trades`` journal rows and ``--orders`` orders (with their fills and status histories).
  Each page is run twice to warm up, then ``--runs`` times; the figure is the wall time of a
  whole script run (AppTest's own overhead included, so it is an upper bound). Baseline, same
  run: a script that only writes one line, under the same AppTest. Goal: p95 ≤ 300 ms a page.
* kill switch: an executor thread (paper broker, simulated market) with five resting entry
  orders; the clock starts when the dashboard's code writes the ``kill_switch_on`` command (and
  wakes the executor, as the page does) and stops when the store shows the command applied and
  every entry order cancelled. Baseline, same run: a command that changes nothing
  (``kill_switch_off`` while off) over the same path. Goal: p99 ≤ 1 s.

Exit status is non-zero only on an error (a page raising, a halt that never completes), never on
a timing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery"
SYMBOLS = ["SPY", "QQQ", "NVDA", "TQQQ", "SOXL", "SPXL", "AAPL", "MSFT", "AMD", "TSLA"]
STRATEGIES = ["ema_cloud", "rebalance", "manual", "breakout"]
TRIGGERS = ["ema_cloud", "rebalance", "manual", "drift"]
EXITS = ["target", "stop", "time_stop", "eod_close", "cloud_flip", "rebalance", "manual"]
SECTORS = ["technology", "broad_market", "semiconductors", "consumer"]
REGIMES = ["trending", "ranging", "volatile"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def fill_store(url: str, trades: int, orders: int, seed: int = 1) -> None:
    """Bulk rows straight into the tables (the pages only read them)."""
    import sqlalchemy as sa

    from db.tables import FILLS, ORDER_HISTORY, ORDERS, TRADES

    rng = random.Random(seed)
    engine = sa.create_engine(url)
    start = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
    with engine.begin() as conn:
        rows = []
        for i in range(trades):
            entry = start + timedelta(minutes=7 * i)
            price = Decimal(rng.randint(2000, 60000)) / 100
            closed = i < trades - 10
            exit_price = (price * Decimal(1 + rng.uniform(-0.03, 0.035))).quantize(Decimal("0.01"))
            shares = Decimal(rng.randint(1, 200))
            rows.append(
                {
                    "ticker": rng.choice(SYMBOLS),
                    "instrument_type": rng.choice(["stock", "leveraged_etf"]),
                    "leverage": Decimal(1),
                    "direction": rng.choice(["long", "short"]),
                    "trade_type": rng.choice(["scalp", "day", "swing"]),
                    "entry_price": price,
                    "exit_price": exit_price if closed else None,
                    "shares": shares,
                    "stop_loss": price * Decimal("0.98"),
                    "target_price": price * Decimal("1.04"),
                    "conviction": rng.randint(1, 10),
                    "status": "closed" if closed else "open",
                    "exit_reason": rng.choice(EXITS) if closed else None,
                    "pnl": ((exit_price - price) * shares) if closed else None,
                    "pnl_pct": ((exit_price - price) / price * 100) if closed else None,
                    "broker": "paper",
                    "order_id": f"bench-{i}",
                    "entry_time": entry,
                    "exit_time": entry + timedelta(minutes=rng.randint(1, 600)) if closed else None,
                    "metadata_json": {},
                    "created_at": entry,
                    "trigger": rng.choice(TRIGGERS),
                    "strategy": rng.choice(STRATEGIES),
                    "sector": rng.choice(SECTORS),
                    "regime": rng.choice(REGIMES),
                    "factor_scores": None,
                    "portfolio_value": Decimal(100000),
                    "notes": None,
                }
            )
            if len(rows) == 5000:
                conn.execute(sa.insert(TRADES), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(TRADES), rows)

        order_rows, fill_rows, history_rows = [], [], []
        for i in range(orders):
            at = start + timedelta(minutes=5 * i)
            coid = f"bench-o{i}"
            status = "filled" if i % 10 else rng.choice(["cancelled", "rejected", "accepted"])
            price = Decimal(rng.randint(2000, 60000)) / 100
            qty = Decimal(rng.randint(1, 100))
            symbol = rng.choice(SYMBOLS)
            side = rng.choice(["buy", "sell"])
            order_rows.append(
                {
                    "client_order_id": coid,
                    "broker": "paper",
                    "broker_order_id": f"p-{i}",
                    "signal_id": None,
                    "parent_id": None,
                    "symbol": symbol,
                    "side": side,
                    "qty": qty,
                    "order_type": "limit",
                    "time_in_force": "day",
                    "limit_price": price,
                    "stop_price": None,
                    "trail_percent": None,
                    "trail_price": None,
                    "take_profit_price": None,
                    "stop_loss_price": None,
                    "reduce_only": False,
                    "instrument_type": "stock",
                    "status": status,
                    "filled_qty": qty if status == "filled" else Decimal(0),
                    "avg_fill_price": price if status == "filled" else None,
                    "reason": None,
                    "created_at": at,
                    "updated_at": at + timedelta(seconds=2),
                }
            )
            history_rows.append(
                {
                    "client_order_id": coid,
                    "seq": 1,
                    "from_status": None,
                    "to_status": "new",
                    "at": at,
                }
            )
            history_rows.append(
                {
                    "client_order_id": coid,
                    "seq": 2,
                    "from_status": "new",
                    "to_status": status,
                    "at": at + timedelta(seconds=2),
                }
            )
            if status == "filled":
                fill_rows.append(
                    {
                        "fill_id": f"f-{i}",
                        "broker": "paper",
                        "client_order_id": coid,
                        "broker_order_id": f"p-{i}",
                        "symbol": symbol,
                        "side": side,
                        "qty": qty,
                        "price": price,
                        "expected_price": price,
                        "slippage_bps": Decimal(rng.randint(-5, 15)),
                        "commission": Decimal("0.35"),
                        "at": at + timedelta(seconds=2),
                    }
                )
        conn.execute(sa.insert(ORDERS), order_rows)
        conn.execute(sa.insert(ORDER_HISTORY), [{**r, "reason": None} for r in history_rows])
        conn.execute(sa.insert(FILLS), fill_rows)
    engine.dispose()


def time_runs(at, runs: int, before=None) -> list[float]:
    for _ in range(2):
        at.run()
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t0 = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - t0) * 1000)
        if at.exception:
            raise SystemExit(f"page raised: {at.exception[0].message}")
    return times


def bench_pages(args: argparse.Namespace, work: Path) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app.navigation import PAGES
    from app.runtime import build_runtime
    from app.settings import AxionSettings
    from core.user_admin import UserAdmin

    os.environ.update(
        AXION_DATABASE_URL=f"sqlite:///{work / 'pages.db'}",
        AXION_EXECUTOR="external",
        AXION_DEMO="0",
        AXION_SECRETS_DIR=str(work / "secrets"),
    )
    runtime = build_runtime(AxionSettings())
    UserAdmin(runtime.store, runtime.market.clock).create_first_admin(
        "admin", "Admin", "", PASSWORD
    )
    t0 = time.perf_counter()
    fill_store(os.environ["AXION_DATABASE_URL"], args.trades, args.orders)
    print(
        f"store: {args.trades:,} journal rows, {args.orders:,} orders "
        f"(filled in {time.perf_counter() - t0:.1f} s)"
    )
    runtime.store.engine.dispose()
    st.cache_resource.clear()

    def baseline_script() -> None:
        import streamlit as st

        st.write("baseline")

    base = time_runs(AppTest.from_function(baseline_script, default_timeout=60), args.runs)
    base_p95 = percentile(base, 95)
    print(
        f"\nbaseline (one st.write under AppTest): p50 {statistics.median(base):.1f} ms, "
        f"p95 {base_p95:.1f} ms"
    )
    print(f"\n{'page':<18} {'p50 ms':>8} {'p95 ms':>8} {'p95/baseline':>13}")
    main = str(ROOT / "app" / "main.py")
    worst = 0.0
    for spec in PAGES:
        at = AppTest.from_file(main, default_timeout=60)
        at.session_state["authentication_status"] = True
        at.session_state["username"] = "admin"
        at.session_state["name"] = "Admin"
        at.run()
        at.switch_page(str(ROOT / "app" / "pages" / spec.file))
        times = time_runs(at, args.runs)
        p95 = percentile(times, 95)
        worst = max(worst, p95)
        print(f"{spec.title:<18} {statistics.median(times):8.1f} {p95:8.1f} {p95 / base_p95:13.1f}")
        if spec.url == "journal":
            # The journal keeps query results until the journal, fills or reconciliation tables
            # change; measure the page with that cache emptied before every run too.
            from db.queries.journal_sql import _CACHE

            cold = time_runs(at, args.runs, before=_CACHE.clear)
            p95 = percentile(cold, 95)
            worst = max(worst, p95)
            title = "  (cold cache)"
            print(f"{title:<18} {statistics.median(cold):8.1f} {p95:8.1f} {p95 / base_p95:13.1f}")
    print(f"\nworst page p95: {worst:.1f} ms (goal ≤ 300 ms)")


def bench_kill_switch(args: argparse.Namespace, work: Path) -> None:
    from app.runtime import build_runtime
    from app.settings import AxionSettings
    from core.domain import CommandStatus, CommandType, OrderStatus
    from core.user_admin import UserAdmin

    settings = AxionSettings(
        database_url=f"sqlite:///{work / 'kill.db'}",
        executor="thread",
        secrets_dir=work / "secrets-kill",
        tick_ms=250,
    )
    runtime = build_runtime(settings)
    UserAdmin(runtime.store, runtime.market.clock).create_first_admin(
        "admin", "Admin", "", PASSWORD
    )
    service = runtime.service()
    runtime.start_executor()

    def wait_command(cid: int, timeout: float = 10.0) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            command = service.command(cid)
            if command is not None and command.status is not CommandStatus.PENDING:
                if command.status is CommandStatus.REJECTED:
                    raise SystemExit(f"command {cid} rejected: {command.result}")
                return
            time.sleep(0.002)
        raise SystemExit(f"command {cid} not applied within {timeout} s")

    def open_entries() -> int:
        with runtime.store.unit_of_work(read_only=True) as uow:
            return sum(1 for o in uow.orders.open_orders() if not o.request.reduce_only)

    def round_trip(kind: CommandType, payload: dict, until_flat: bool) -> float:
        t0 = time.perf_counter()
        cid = service.send_command("admin", kind, payload)
        runtime.wake()
        wait_command(cid)
        while until_flat and open_entries():
            time.sleep(0.002)
        return (time.perf_counter() - t0) * 1000

    import asyncio

    halts, noops = [], []
    try:
        # wait for the executor to lead
        deadline = time.perf_counter() + 20
        while not runtime.queries.status.executor().running:
            if time.perf_counter() > deadline:
                raise SystemExit("the executor did not start")
            time.sleep(0.05)
        quote = asyncio.run(runtime.market.quote("SPY"))
        low = (quote.bid * Decimal("0.8")).quantize(Decimal("0.01"))
        for _ in range(args.kill_runs):
            noops.append(round_trip(CommandType.KILL_SWITCH_OFF, {"reason": "bench"}, False))
            for _ in range(5):
                cid = service.send_command(
                    "admin",
                    CommandType.MANUAL_ORDER,
                    {
                        "symbol": "SPY",
                        "side": "buy",
                        "qty": "1",
                        "order_type": "limit",
                        "limit_price": str(low),
                        "time_in_force": "gtc",
                    },
                )
                runtime.wake()
                wait_command(cid)
            if open_entries() < 5:
                raise SystemExit("resting orders were not accepted")
            halts.append(round_trip(CommandType.KILL_SWITCH_ON, {"reason": "bench"}, True))
            with runtime.store.unit_of_work(read_only=True) as uow:
                left = [o for o in uow.orders.recent(5) if o.status is not OrderStatus.CANCELLED]
            if left:
                raise SystemExit(f"orders left working by the kill switch: {left}")
            round_trip(CommandType.KILL_SWITCH_OFF, {"reason": "bench reset"}, False)
    finally:
        runtime.stop_executor()
        runtime.store.engine.dispose()
    base = percentile(noops, 99)
    p99 = percentile(halts, 99)
    print(f"\nkill switch, {args.kill_runs} runs, 5 resting entry orders each:")
    print(
        f"  no-op command round trip (baseline): p50 {statistics.median(noops):.1f} ms, "
        f"p99 {base:.1f} ms"
    )
    print(
        f"  click → halted, orders cancelled:     p50 {statistics.median(halts):.1f} ms, "
        f"p99 {p99:.1f} ms ({p99 / base:.1f}x baseline; goal ≤ 1000 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kill-runs", type=int, default=30)
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-kill", action="store_true")
    args = parser.parse_args()
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_pages:
            bench_pages(args, Path(tmp))
        if not args.skip_kill:
            bench_kill_switch(args, Path(tmp))


if __name__ == "__main__":
    main()
