"""Unit of work: one transaction at a time, rolled back unless committed."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from core.domain import Direction, Signal, utcnow
from core.ports import Store, UnitOfWork
from db.engine import open_store
from db.store import SqlStore
from tests.db.conftest import TestDatabase


def _signal(symbol: str = "AAPL") -> Signal:
    return Signal(symbol, Direction.LONG, Decimal("10.5"), Decimal("9.5"), utcnow())


def _count(store: SqlStore) -> int:
    with store.unit_of_work(read_only=True) as uow:
        return len(uow.signals.recent(1000))


def test_store_satisfies_the_port(store: SqlStore) -> None:
    port: Store = store
    uow: UnitOfWork = port.unit_of_work()
    assert uow.signals is not None and uow.reconciliation is not None


def test_leaving_without_commit_rolls_back(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.signals.add(_signal())
        assert len(uow.signals.recent()) == 1  # visible inside its own transaction
    assert _count(store) == 0


def test_an_exception_rolls_back(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.signals.add(_signal())
        raise RuntimeError("boom")
    assert _count(store) == 0


def test_commit_then_reuse_then_leave(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.signals.add(_signal("A"))
        uow.commit()
        uow.signals.add(_signal("B"))
        uow.commit()
        uow.signals.add(_signal("C"))  # never committed
    with store.unit_of_work() as uow:
        assert [s.symbol for s in uow.signals.recent()] == ["B", "A"]


def test_explicit_rollback_discards_only_uncommitted_work(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.signals.add(_signal("A"))
        uow.commit()
        uow.signals.add(_signal("B"))
        uow.rollback()
        uow.signals.add(_signal("C"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert [s.symbol for s in uow.signals.recent()] == ["C", "A"]


def test_repositories_need_an_open_unit_of_work(store: SqlStore) -> None:
    uow = store.unit_of_work()
    with pytest.raises(RuntimeError, match="not open"):
        uow.signals.pending()
    with uow:
        uow.signals.pending()
    with pytest.raises(RuntimeError, match="not open"):
        uow.commit()


def test_a_unit_of_work_can_be_opened_again_after_closing(store: SqlStore) -> None:
    uow = store.unit_of_work()
    with uow:
        uow.signals.add(_signal())
        uow.commit()
    with uow:
        assert len(uow.signals.recent()) == 1


def test_sqlite_writer_takes_the_write_lock_at_begin(sqlite_database: TestDatabase) -> None:
    store = open_store(sqlite_database.url)
    path = store.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with store.unit_of_work() as uow:
            uow.signals.pending()  # a read, but the transaction began IMMEDIATE
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with store.unit_of_work(read_only=True) as uow:
            uow.signals.pending()  # a reader does not hold the write lock
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        store.dispose()


def test_read_only_unit_of_work_sees_committed_data(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.signals.add(_signal())
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        assert len(uow.signals.pending()) == 1
