"""Replaying the shipped sample session twice gives the same signals, decisions, orders, fills and
trade journal.

Each run is the whole pipeline on a fresh SQLite store: the EMA-cloud engine scans the sample
bars (AAPL, SPY, TQQQ on 2026-11-20) every minute, the full pipeline (router, sizer, entry stage,
risk gate; leveraged-ETF mode, aggressive profile) routes its signals, the paper broker fills
them and the position manager exits and scales in. The market clock and the executor's wall
clock are ManualClocks stepped through the session a minute at a time, so nothing reads real
time. The two runs are separate processes with different hash seeds, so the outcome may not
depend on the iteration order of sets or dicts of strings either.

Run as a module (``python -m tests.system.test_replay_determinism sqlite:///...``) it replays
the session into that database and prints what it recorded as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import ManualClock
from core.marketdata.replay import SAMPLE_PATH, ReplayMarket
from core.risk.config import AGGRESSIVE
from core.signals.ema_cloud import EmaCloudEngine, EmaCloudSource
from core.stages import use_full_pipeline
from db.engine import open_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SESSION_OPEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # 09:30 New York
#: A few minutes past the 16:00 close, so the last exits are filled and recorded.
REPLAY_END = datetime(2026, 11, 20, 21, 5, tzinfo=UTC)


def _text(value: Any) -> Any:
    """Decimals, datetimes and enums as text; None stays None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(getattr(value, "value", value))


async def _session(ex: TradeExecutor, clock: ManualClock, wall: ManualClock) -> None:
    at = SESSION_OPEN
    while at <= REPLAY_END:
        clock.set(at)
        wall.set(at)
        await ex.tick()
        at += timedelta(minutes=1)
    await ex.shutdown()


def replay(database_url: str) -> dict[str, list[Any]]:
    """Replay the sample session into ``database_url`` (a fresh store) and return what was
    recorded: signals, stage decisions, orders with their fills, and the trade journal."""
    store = open_store(database_url)
    clock = ManualClock(SESSION_OPEN)
    wall = ManualClock(SESSION_OPEN)
    market = ReplayMarket.from_file(SAMPLE_PATH, clock=clock)
    broker = PaperBroker(market, store.paper_ledger("replay"), PaperConfig())
    source = EmaCloudSource(EmaCloudEngine(market), sorted(market.symbols()))
    ex = TradeExecutor(
        store,
        broker,
        market,
        ExecutorConfig(account="replay"),
        clock=clock,
        wall_clock=wall,
        holder_id="replay",
        signal_sources=[source],
    )
    use_full_pipeline(ex, InstrumentMode.LEVERAGED_ETF, AGGRESSIVE)
    asyncio.run(_session(ex, clock, wall))

    with store.unit_of_work(read_only=True) as uow:
        signals = sorted(uow.signals.recent(100_000), key=lambda s: s.id or 0)
        decisions = [d for s in signals if s.id is not None for d in uow.decisions.for_signal(s.id)]
        orders = sorted(uow.orders.recent(100_000), key=lambda o: (o.created_at, o.client_order_id))
        fills = {o.client_order_id: uow.fills.for_order(o.client_order_id) for o in orders}
        trades = sorted(uow.journal.trades(limit=100_000), key=lambda t: t.id or 0)
    store.engine.dispose()
    return {
        "signals": [
            [
                s.id,
                s.symbol,
                s.direction,
                s.trade_type,
                s.entry,
                s.stop,
                s.target,
                s.conviction,
                s.created_at,
                s.status,
                s.reason,
            ]
            for s in signals
        ],
        "decisions": [[d.signal_id, d.stage, d.approved, d.at, d.reason] for d in decisions],
        "orders": [
            [
                o.client_order_id,
                o.symbol,
                o.request.side,
                o.request.qty,
                o.request.order_type,
                o.request.limit_price,
                o.request.reduce_only,
                o.status,
                o.filled_qty,
                o.avg_fill_price,
                o.created_at,
                [[f.fill_id, f.qty, f.price, f.at] for f in fills[o.client_order_id]],
            ]
            for o in orders
        ],
        "trades": [
            [
                t.id,
                t.ticker,
                t.direction,
                t.trade_type,
                t.shares,
                t.entry_price,
                t.entry_time,
                t.exit_price,
                t.exit_time,
                t.exit_reason,
                t.pnl,
                t.status,
            ]
            for t in trades
        ],
    }


def _as_text(record: dict[str, list[Any]]) -> dict[str, list[Any]]:
    def walk(value: Any) -> Any:
        return [walk(v) for v in value] if isinstance(value, list) else _text(value)

    return {key: walk(rows) for key, rows in record.items()}


def _replay_in_subprocess(database_url: str, hash_seed: str) -> dict[str, list[Any]]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-m", "tests.system.test_replay_determinism", database_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_replaying_the_sample_session_twice_records_the_same_orders_and_journal(tmp_path):
    first = _replay_in_subprocess(f"sqlite:///{tmp_path / 'first.db'}", "1")
    second = _replay_in_subprocess(f"sqlite:///{tmp_path / 'second.db'}", "2")

    # the sample session trades: orders were filled and at least one round trip closed
    assert first["orders"], "the replay sent no orders"
    assert any(order[7] == "filled" and order[11] for order in first["orders"])
    assert any(trade[11] == "closed" and trade[7] is not None for trade in first["trades"])

    for key in ("signals", "decisions", "orders", "trades"):
        assert first[key] == second[key], f"the two replays recorded different {key}"


if __name__ == "__main__":
    print(json.dumps(_as_text(replay(sys.argv[1]))))
