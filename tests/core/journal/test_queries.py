"""get_daily_summary and get_trade_history, and the repository queries under them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.domain import DailyPnl, Side, TradeStatus
from core.journal import TradeJournalWriter, get_daily_summary, get_trade_history
from core.journal.queries import COMPUTED_FROM_TRADES, session_span
from db.engine import open_store
from db.store import SqlStore
from tests.core.journal.helpers import T0, D, apply, order

DAY = T0.date()


def _round_trip(
    store: SqlStore,
    writer: TradeJournalWriter,
    n: int,
    symbol: str,
    entry: str,
    exit_: str,
    opened: datetime,
    closed: datetime | None,
) -> None:
    apply(store, writer, order(f"ax-c{n}-manual", symbol, Side.BUY, 10), entry, opened)
    if closed is not None:
        apply(store, writer, order(f"ax-c{n}-manual-x", symbol, Side.SELL, 10), exit_, closed)


def test_daily_summary_is_the_stored_row_when_there_is_one(store: SqlStore) -> None:
    row = DailyPnl(DAY, D(100000), D(100250), D(250), D(0), 2, 1, 1, D("0.001"), False, {"a": 1})
    with store.unit_of_work() as uow:
        uow.journal.upsert_daily_pnl(row)
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        assert get_daily_summary(uow, DAY) == row


def test_daily_summary_is_computed_from_the_days_closed_trades(store: SqlStore) -> None:
    w = TradeJournalWriter()
    day_end = datetime(2024, 5, 6, 23, 59, 59, 999_999, tzinfo=UTC)
    _round_trip(store, w, 1, "AAA", "100", "103", T0, T0 + timedelta(hours=1))  # +30
    _round_trip(store, w, 2, "BBB", "50", "49.5", T0, day_end)  # -5, last instant of the day
    _round_trip(store, w, 3, "CCC", "20", "20", T0, T0 + timedelta(hours=2))  # 0
    _round_trip(store, w, 4, "DDD", "10", "11", T0 - timedelta(days=1), T0 - timedelta(hours=15))
    _round_trip(store, w, 5, "EEE", "10", "12", T0, day_end + timedelta(microseconds=1))
    _round_trip(store, w, 6, "FFF", "10", "", T0, None)  # still open
    with store.unit_of_work(read_only=True) as uow:
        summary = get_daily_summary(uow, DAY)
        empty = get_daily_summary(uow, date(2024, 5, 1))
    assert summary.date == DAY and summary.metadata == {"source": COMPUTED_FROM_TRADES}
    assert summary.realized_pnl == 25
    assert (summary.total_trades, summary.winning_trades, summary.losing_trades) == (3, 1, 1)
    assert summary.starting_equity == 0 and summary.ending_equity == 0
    assert (empty.realized_pnl, empty.total_trades) == (0, 0)


def test_closed_between_is_half_open_and_in_exit_order(store: SqlStore) -> None:
    w = TradeJournalWriter()
    start, end = session_span(DAY)
    _round_trip(store, w, 1, "AAA", "1", "2", T0, end - timedelta(microseconds=1))
    _round_trip(store, w, 2, "BBB", "1", "2", T0, start)
    _round_trip(store, w, 3, "CCC", "1", "2", T0, end)
    with store.unit_of_work(read_only=True) as uow:
        assert [t.ticker for t in uow.journal.closed_between(start, end)] == ["BBB", "AAA"]


def test_trade_history_window_ticker_and_order(store: SqlStore) -> None:
    w = TradeJournalWriter()
    now = T0 + timedelta(days=10)
    _round_trip(store, w, 1, "AAA", "1", "2", now - timedelta(days=30, seconds=1), now)  # too old
    _round_trip(store, w, 2, "AAA", "1", "2", now - timedelta(days=30), now)  # on the edge
    _round_trip(store, w, 3, "BBB", "1", "2", now - timedelta(days=2), None)
    _round_trip(store, w, 4, "CCC", "1", "2", now - timedelta(days=20), now)
    _round_trip(store, w, 5, "AAA", "1", "2", now - timedelta(hours=1), None)
    with store.unit_of_work(read_only=True) as uow:
        everything = get_trade_history(uow, None, 30, now)
        aaa = get_trade_history(uow, "AAA", 30, now)
        week = get_trade_history(uow, None, 7, now)
        none = get_trade_history(uow, "ZZZ", 30, now)
        with pytest.raises(ValueError, match="days"):
            get_trade_history(uow, None, -1, now)
    assert [(t.ticker, t.order_id) for t in everything] == [
        ("AAA", "ax-c5-manual"),
        ("BBB", "ax-c3-manual"),
        ("CCC", "ax-c4-manual"),
        ("AAA", "ax-c2-manual"),
    ]
    assert [t.order_id for t in aaa] == ["ax-c5-manual", "ax-c2-manual"]
    assert [t.order_id for t in week] == ["ax-c5-manual", "ax-c3-manual"]
    assert {t.status for t in everything} == {TradeStatus.OPEN, TradeStatus.CLOSED}
    assert none == []


def test_journal_reads_on_both_engines(pg_or_sqlite_url: str) -> None:
    """The writer and the journal queries on SQLite and PostgreSQL."""
    store = open_store(pg_or_sqlite_url)
    try:
        w = TradeJournalWriter()
        _round_trip(store, w, 1, "AAA", "100.0001", "100.5", T0, T0 + timedelta(minutes=5))
        _round_trip(store, w, 2, "BBB", "50", "49", T0 + timedelta(hours=1), T0 + timedelta(days=1))
        with store.unit_of_work() as uow:
            row = w.update_daily_pnl(uow, DAY, D("100000.25"), T0 + timedelta(hours=2), False)
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            history = get_trade_history(uow, None, 1, T0 + timedelta(days=1))
            summary = get_daily_summary(uow, DAY)
            next_day = get_daily_summary(uow, DAY + timedelta(days=1))
        assert [t.ticker for t in history] == ["BBB", "AAA"]
        assert history[1].metadata["holding_seconds"] == 300
        assert summary == row and summary.realized_pnl == D("4.999")
        assert (next_day.realized_pnl, next_day.losing_trades) == (D(-10), 1)
    finally:
        store.dispose()
