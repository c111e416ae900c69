"""Engines for SQLite (default) and PostgreSQL, schema migration, and the store factory.

SQLite transactions: Python's ``sqlite3`` driver normally decides itself when to emit ``BEGIN``
(and skips it before SELECTs), which breaks transactional reads and DDL. Following the
SQLAlchemy documentation's pysqlite recipe, the driver's own transaction handling is switched off
(``isolation_level = None``) and SQLAlchemy's ``begin`` event emits the ``BEGIN``.

We emit ``BEGIN IMMEDIATE`` by default: the write lock is taken when the transaction starts. A
deferred ``BEGIN`` reads first and upgrades to a writer later; when two connections (or two
processes) both do that, the second upgrade fails with ``SQLITE_BUSY`` at once, because waiting
could deadlock, and ``busy_timeout`` does not help. Taking the lock up front turns that into an
orderly wait of at most ``busy_timeout``. With WAL, readers never wait for the writer, so a
read-only unit of work asks for a deferred ``BEGIN`` (see :data:`SQLITE_BEGIN_OPTION`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from db.store import SqlStore

DEFAULT_DATABASE_URL = "sqlite:///./data/axion.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Connection execution option choosing how a SQLite transaction begins:
#: ``"IMMEDIATE"`` (default, takes the write lock at once) or ``"DEFERRED"`` (readers).
SQLITE_BEGIN_OPTION = "axion_sqlite_begin"

SQLITE_PRAGMAS = (
    # busy_timeout first, so switching the journal mode waits for other connections too.
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    # With WAL, NORMAL never corrupts the database; a power loss may lose the last commits.
    "PRAGMA synchronous=NORMAL",
    # No checkpoint inside a writer's commit: the executor checkpoints between ticks
    # (SqlStore.checkpoint), so an order never waits behind a WAL checkpoint's fsync.
    "PRAGMA wal_autocheckpoint=0",
)

# Any constant works, as long as every process migrating the same database uses the same one.
_PG_MIGRATION_LOCK = 0x41584D49


def default_database_url() -> str:
    """``AXION_DATABASE_URL`` if set, else the SQLite file ``./data/axion.db``."""
    return os.environ.get("AXION_DATABASE_URL") or DEFAULT_DATABASE_URL


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; plain PostgreSQL URLs are pointed at the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (SQLite or PostgreSQL).

    Extra keyword arguments go to :func:`sqlalchemy.create_engine` (``connect_args``, ``echo``,
    pool settings ...). For a SQLite file the parent directory is created.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _ensure_sqlite_dir(parsed)
        engine = create_engine(parsed, **kwargs)
        _install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")


def _ensure_sqlite_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy (the pysqlite BEGIN recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql("BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code, pointing at ``db/migrations``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (``head``), creating it in an empty database.

    Runs in one transaction. Concurrent first starts are serialized: SQLite by ``BEGIN
    IMMEDIATE``, PostgreSQL by a transaction-scoped advisory lock.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        command.upgrade(alembic_config(connection), revision)


def open_store(url: str | URL | None = None, **engine_kwargs: Any) -> SqlStore:
    """Open the store at ``url`` (default :func:`default_database_url`), migrating it first.

    On first start this creates the database schema (and, for SQLite, the file).
    """
    from db.store import SqlStore

    engine = make_engine(url or default_database_url(), **engine_kwargs)
    migrate(engine)
    return SqlStore(engine)
