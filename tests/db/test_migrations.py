"""Migrations build exactly the schema ``db.tables`` declares, from an empty database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from db.engine import alembic_config, migrate
from db.tables import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPECTED_TABLES = {
    "users",
    "credentials",
    "algo_orders",
    "rebalance_plans",
    "rebalance_trades",
    "alerts",
    "signals",
    "orders",
    "order_status_history",
    "fills",
    "positions",
    "trade_executions",
    "daily_pnl",
    "commands",
    "settings",
    "executor_lease",
    "reconciliation_diffs",
    "risk_decisions",
    "paper_accounts",
    "paper_orders",
    "paper_fills",
}


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrate_from_empty_matches_the_models(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert tables == EXPECTED_TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == EXPECTED_TABLES
    assert _schema_diff(engine) == []


def test_migrate_is_idempotent_and_records_head(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [version]  # one head, and the database is at it


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert _schema_diff(engine) == []


def test_sqlite_pragmas_and_foreign_keys(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            fks = inspect(conn).get_foreign_keys("fills")
            assert fks and fks[0]["referred_table"] == "orders"
            return
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_alembic_command_line_uses_axion_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli' / 'axion.db'}"
    env = {**os.environ, "AXION_DATABASE_URL": url}
    cli = [sys.executable, "-m", "alembic", "-c", "db/alembic.ini"]
    subprocess.run(
        [*cli, "upgrade", "head"], cwd=REPO_ROOT, env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [*cli, "current"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    )
    (head,) = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert f"{head} (head)" in out.stdout


def test_revision_0002_upgrades_a_database_that_has_data_at_0001(tmp_path):
    """A store created at 0001 with rows in it migrates to head without losing them."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from core.domain import Direction, Signal
    from db.engine import make_engine, migrate
    from db.store import SqlStore

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO signals (symbol, direction, trade_type, timeframe, entry, stop,"
                " conviction, source, order_type, status, metadata, created_at)"
                " VALUES ('AAPL', 'long', 'day', '10Min', '100', '99', 75, 'api', 'market',"
                " 'pending', '{}', '2026-11-20 15:00:00.000000')"
            )
        )
    migrate(engine)
    store = SqlStore(engine)
    with store.unit_of_work() as uow:
        (s,) = uow.signals.pending()
        assert isinstance(s, Signal) and s.entry == Decimal(100) and s.direction is Direction.LONG
        assert uow.decisions.for_signal(s.id or 0) == []
        assert s.created_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    engine.dispose()
