"""The daily P&L row: running session totals agree with a recomputation from the store."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import ZERO, DailyPnl, Side, TradeStatus
from core.journal import TradeJournalWriter
from core.journal.queries import exact_sum
from core.ports import Store
from db.engine import open_store
from db.repositories.journal import SqlJournalRepository
from db.store import SqlStore
from tests.core.journal.helpers import T0, D, apply, order


def recomputed(store: Store, session: date) -> tuple[Decimal, int, int, int]:
    """Realized P&L, trades, wins and losses of ``session`` from every stored trade."""
    with store.unit_of_work(read_only=True) as uow:
        closed = [
            t
            for t in uow.journal.trades(limit=100_000)
            if t.status is TradeStatus.CLOSED and t.exit_time and t.exit_time.date() == session
        ]
    pnls = [t.pnl or ZERO for t in closed]
    return (
        exact_sum(pnls),
        len(closed),
        sum(1 for p in pnls if p > 0),
        sum(1 for p in pnls if p < 0),
    )


def figures(row: DailyPnl) -> tuple[Decimal, int, int, int]:
    return row.realized_pnl, row.total_trades, row.winning_trades, row.losing_trades


def mark(store: Store, writer: TradeJournalWriter, session: date, equity: Decimal) -> DailyPnl:
    with store.unit_of_work() as uow:
        row = writer.update_daily_pnl(uow, session, equity, T0, False)
        uow.commit()
    return row


step = st.tuples(
    st.sampled_from(["AAA", "BBB", "CCC"]),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(1, 12),  # qty
    st.integers(950_000, 1_050_000),  # price in 1/10,000
    st.integers(0, 14),  # hours until the fill
    st.sampled_from(["none", "mark", "mark", "restart"]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_running_totals_equal_a_recomputation(steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'journal.db'}")
        try:
            writer = TradeJournalWriter()
            now = T0
            for i, (symbol, side, qty, price, hours, action) in enumerate(steps):
                now += timedelta(hours=hours)
                apply(
                    store,
                    writer,
                    order(f"ax-c{i}-manual", symbol, side, qty),
                    D(price) / 10_000,
                    now,
                )
                if action == "restart":
                    writer = TradeJournalWriter()
                    with store.unit_of_work(read_only=True) as uow:
                        writer.load(uow)
                elif action == "mark":
                    session = now.date()
                    row = mark(store, writer, session, D(100_000) + i)
                    assert figures(row) == recomputed(store, session)
            session = now.date()
            incremental = mark(store, writer, session, D(100_000))
            fresh = TradeJournalWriter()
            with store.unit_of_work(read_only=True) as uow:
                fresh.load(uow)
            assert figures(incremental) == recomputed(store, session)
            assert figures(mark(store, fresh, session, D(100_000))) == figures(incremental)
        finally:
            store.dispose()


def test_marks_read_the_store_once_per_session(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-c1-manual", "AAA", Side.BUY, 10), "100", T0)
    apply(store, writer, order("ax-c2-manual", "AAA", Side.SELL, 10), "101", T0)  # +10, day 1
    reads: list[tuple] = []
    original = SqlJournalRepository.closed_between

    def counting(self, start, end):
        reads.append((start, end))
        return original(self, start, end)

    monkeypatch.setattr(SqlJournalRepository, "closed_between", counting)
    day1, day2 = T0.date(), T0.date() + timedelta(days=1)
    assert figures(mark(store, writer, day1, D(1000))) == (D(10), 1, 1, 0)
    apply(store, writer, order("ax-c3-manual", "BBB", Side.SELL, 5), "50", T0)
    apply(store, writer, order("ax-c4-manual", "BBB", Side.BUY, 5), "51", T0)  # -5, day 1
    apply(store, writer, order("ax-c5-manual", "AAA", Side.BUY, 1), "10", T0)
    apply(store, writer, order("ax-c6-manual", "AAA", Side.SELL, 1), "9", T0 + timedelta(days=1))
    row = mark(store, writer, day1, D(990))
    assert figures(row) == (D(5), 2, 1, 1) and len(reads) == 1
    assert row.starting_equity == 1000 and row.ending_equity == 990
    assert row.max_drawdown == D("0.01")
    assert figures(mark(store, writer, day2, D(989))) == (D(-1), 1, 0, 1)  # read once for day 2
    assert figures(mark(store, writer, day2, D(989))) == (D(-1), 1, 0, 1)
    assert len(reads) == 2
