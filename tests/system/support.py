"""Helpers for tests that run the real worker process against a real database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from core.domain import Direction, OrderStatus, OrderType, Signal
from db.engine import open_store
from db.store import SqlStore

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "paper-default"


class Worker:
    """A ``python -m app.worker`` child process with its output in a file."""

    def __init__(self, db_url: str, log_path: Path, *args: str, fail_points: str = "") -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "AXION_FAIL_POINTS": fail_points,
            # these runs send bursts of entries to test recovery, not the order-rate policy
            "AXION_ORDER_RATE_MAX": "100000",
        }
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait/kill
        cmd = [
            sys.executable,
            "-m",
            "app.worker",
            "--database-url",
            db_url,
            "--status-every",
            "0.5",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def insert_signals(store: SqlStore, n: int, symbol: str = "SPY", qty: str = "5") -> list[int]:
    now = datetime.now(UTC)
    signals = [
        Signal(
            symbol=symbol,
            direction=Direction.LONG if i % 2 == 0 else Direction.SHORT,
            entry=Decimal(100),
            stop=Decimal(99) if i % 2 == 0 else Decimal(101),
            created_at=now,
            qty=Decimal(qty),
            order_type=OrderType.MARKET,
            source="test",
        )
        for i in range(n)
    ]
    with store.unit_of_work() as uow:
        ids = uow.signals.add_many(signals)
        uow.commit()
    return ids


def pending_signal_count(store: SqlStore) -> int:
    with store.unit_of_work() as uow:
        return len(uow.signals.pending(100_000))


def in_flight_count(store: SqlStore) -> int:
    """Orders not yet settled (market orders here fill at once, so they settle quickly)."""
    with store.unit_of_work() as uow:
        return len(
            uow.orders.with_status(
                [
                    OrderStatus.PENDING_SUBMIT,
                    OrderStatus.SUBMITTED,
                    OrderStatus.ACCEPTED,
                    OrderStatus.PARTIALLY_FILLED,
                ]
            )
        )


def pending_submit_count(store: SqlStore) -> int:
    with store.unit_of_work() as uow:
        return len(uow.orders.with_status([OrderStatus.PENDING_SUBMIT]))


def check_no_loss_no_duplicates(store: SqlStore, account: str = ACCOUNT) -> dict[str, int]:
    """The promises after any crash: one order per signal at most, every broker order known to
    us, every broker fill in our journal, nothing left in flight."""
    snapshot = store.paper_ledger(account).load()
    broker_orders = {o["client_order_id"] for o in snapshot.orders}
    broker_fills = {f["fill_id"] for f in snapshot.fills}
    with store.unit_of_work() as uow:
        ours = uow.orders.recent(1_000_000)
        our_fills = uow.fills.recent(1_000_000)
    our_ids = {o.client_order_id for o in ours}
    per_signal = Counter(
        o.request.signal_id for o in ours if o.parent_id is None and o.request.signal_id
    )
    assert all(c == 1 for c in per_signal.values()), (
        f"duplicate orders for signals: {per_signal.most_common(3)}"
    )
    unknown = broker_orders - our_ids
    assert not unknown, f"orders at the broker we have no record of: {sorted(unknown)[:5]}"
    missing_fills = broker_fills - {f.fill_id for f in our_fills}
    assert not missing_fills, f"broker fills missing from the journal: {sorted(missing_fills)[:5]}"
    in_flight = [o.client_order_id for o in ours if o.status is OrderStatus.PENDING_SUBMIT]
    assert not in_flight, f"orders still pending_submit: {in_flight[:5]}"
    return {
        "orders": len(ours),
        "broker_orders": len(broker_orders),
        "fills": len(our_fills),
        "filled": sum(1 for o in ours if o.status is OrderStatus.FILLED),
        "rejected": sum(1 for o in ours if o.status is OrderStatus.REJECTED),
    }


def store_for(url: str) -> SqlStore:
    return open_store(url)
