"""The store: ``core.ports.Store`` on SQLite (default) or PostgreSQL with SQLAlchemy 2 and Alembic.

Typical wiring::

    from db import open_store

    store = open_store()  # AXION_DATABASE_URL or sqlite:///./data/axion.db, migrated to head
"""

from db.engine import default_database_url, make_engine, migrate, open_store
from db.errors import DuplicateKeyError, RowNotFoundError, StoreError
from db.store import SqlPaperLedger, SqlStore, SqlUnitOfWork

__all__ = [
    "DuplicateKeyError",
    "RowNotFoundError",
    "SqlPaperLedger",
    "SqlStore",
    "SqlUnitOfWork",
    "StoreError",
    "default_database_url",
    "make_engine",
    "migrate",
    "open_store",
]
