"""Engine construction, URLs, first start and the insert-rate yardstick."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from core.domain import Direction, Signal, utcnow
from db.bench import raw_insert_rate
from db.engine import DEFAULT_DATABASE_URL, default_database_url, make_engine, open_store
from tests.db.conftest import TestDatabase


def test_default_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AXION_DATABASE_URL", raising=False)
    assert default_database_url() == DEFAULT_DATABASE_URL == "sqlite:///./data/axion.db"
    monkeypatch.setenv("AXION_DATABASE_URL", "postgresql://u@h/db")
    assert default_database_url() == "postgresql://u@h/db"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_urls_use_psycopg_with_pre_ping(scheme: str) -> None:
    engine = make_engine(f"{scheme}://user@127.0.0.1:1/db", pool_size=2)  # never connects
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.pool._pre_ping is True  # type: ignore[attr-defined]
    assert engine.pool.size() == 2  # type: ignore[attr-defined]


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql://u@h/db")


def test_first_start_creates_directory_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "axion.db"
    store = open_store(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert "orders" in inspect(store.engine).get_table_names()
        with store.unit_of_work() as uow:
            assert uow.signals.pending() == []
    finally:
        store.dispose()
    store = open_store(f"sqlite:///{path}")  # a second start finds the schema at head
    store.dispose()


def test_in_memory_sqlite_works() -> None:
    store = open_store("sqlite://")
    try:
        with store.unit_of_work() as uow:
            assert uow.settings.put("k", 1, "me", utcnow()) == 1
    finally:
        store.dispose()


def test_raw_insert_rate_measures_and_cleans_up(engine: Engine) -> None:
    before = set(inspect(engine).get_table_names())
    rate = raw_insert_rate(engine, 50)
    assert rate > 0
    assert set(inspect(engine).get_table_names()) == before
    with pytest.raises(ValueError):
        raw_insert_rate(engine, 0)


def test_hot_path_with_echo_uses_the_logged_path(
    sqlite_database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(sqlite_database.url, echo=True)
    try:
        with store.unit_of_work() as uow:
            signal_id = uow.signals.add(
                Signal("AAPL", Direction.LONG, Decimal(10), Decimal(9), utcnow())
            )
            uow.signals.mark_routed(signal_id, "ax-1", utcnow())
            uow.commit()
        assert any("UPDATE signals" in r.getMessage() for r in caplog.records)
        with store.unit_of_work() as uow:
            stored = uow.signals.get(signal_id)
            assert stored is not None and stored.status == "routed"
    finally:
        store.dispose()
